package redisstore_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dripflow/dripflow/internal/testenv"
	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/store/redisstore"
)

// TestRunKindIndexedOnFirstUse: runs stored by a dripflow that kept no
// runs:kind keys are listed by kind all the same: the first listing by kind
// indexes them (in steps, here of more than one), and marks it done.
func TestRunKindIndexedOnFirstUse(t *testing.T) {
	ctx := context.Background()
	client, prefix := testenv.Redis(t)
	old, err := redisstore.New(client, redisstore.Config{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	var backfills, flows []int64
	for i := 0; i < 2500; i++ {
		n := store.NewRun{Definition: "b", Kind: store.KindBackfill, Options: opts()}
		if i%500 == 7 {
			n = store.NewRun{Definition: "f", Kind: store.KindFlow, Options: opts()}
		}
		r, err := old.CreateRun(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		if n.Kind == store.KindFlow {
			flows = append([]int64{r.ID}, flows...)
			if _, err := old.CancelRun(ctx, r.ID); err != nil {
				t.Fatal(err)
			}
		} else {
			backfills = append([]int64{r.ID}, backfills...)
		}
	}
	// As an older dripflow left them: no kind index.
	if err := client.Del(ctx, prefix+"runs:kind:backfill", prefix+"runs:kind:flow").Err(); err != nil {
		t.Fatal(err)
	}
	s, err := redisstore.New(client, redisstore.Config{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.ListRuns(ctx, store.RunFilter{Kind: store.KindFlow})
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	for _, r := range p.Items {
		got = append(got, r.ID)
	}
	if diff := cmp.Diff(flows, got); diff != "" {
		t.Errorf("flow runs (-want +got):\n%s", diff)
	}
	if n, _ := client.ZCard(ctx, prefix+"runs:kind:backfill").Result(); n != int64(len(backfills)) {
		t.Errorf("runs:kind:backfill holds %d runs, want %d", n, len(backfills))
	}
	if v, _ := client.Get(ctx, prefix+"layout:runkind").Result(); v != "1" {
		t.Errorf("layout:runkind = %q, want 1", v)
	}
	p, err = s.ListRuns(ctx, store.RunFilter{Kind: store.KindBackfill, Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Items) != 3 || p.Items[0].ID != backfills[0] || p.NextCursor == "" {
		t.Errorf("newest backfills: %d items, first %d, want %d first and a next page", len(p.Items), p.Items[0].ID, backfills[0])
	}
}
