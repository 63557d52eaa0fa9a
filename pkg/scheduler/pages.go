package scheduler

import (
	"context"

	"github.com/dripflow/dripflow/pkg/store"
)

// runPager lists runs a page at a time (store.Store.ListRuns).
type runPager interface {
	ListRuns(ctx context.Context, f store.RunFilter) (store.Page[store.Run], error)
}

// listRuns returns every run in one of states, read page by page.
func listRuns(ctx context.Context, st runPager, states ...store.RunState) ([]store.Run, error) {
	var runs []store.Run
	f := store.RunFilter{States: states, Limit: store.MaxLimit}
	for {
		page, err := st.ListRuns(ctx, f)
		if err != nil {
			return runs, err
		}
		runs = append(runs, page.Items...)
		if page.NextCursor == "" {
			return runs, nil
		}
		f.Cursor = page.NextCursor
	}
}
