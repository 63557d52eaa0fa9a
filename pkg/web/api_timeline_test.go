package web_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/dripflow/dripflow/pkg/api"
	"github.com/dripflow/dripflow/pkg/client"
	"github.com/dripflow/dripflow/pkg/store"
)

// The timeline API shows who did what to a run, in order, through the API
// and the CLI; it pages with after and limit and refuses bad input.
func TestAPITimeline(t *testing.T) {
	for _, sql := range []bool{false, true} {
		name := map[bool]string{false: "redis", true: "sql"}[sql]
		t.Run(name, func(t *testing.T) {
			e := newAPIEnvOn(t, sql, nil)
			ctx := context.Background()
			run, err := e.alice.CreateRun(ctx, api.CreateRun{Definition: "add_default_role_to_users", BatchSize: ptr(25)})
			if err != nil {
				t.Fatal(err)
			}
			id, _ := strconv.ParseInt(run.ID, 10, 64)
			if _, err := e.st.TransitionRun(ctx, id, store.RunRunning, nil); err != nil {
				t.Fatal(err)
			}
			if _, err := e.alice.Pause(ctx, run.ID); err != nil {
				t.Fatal(err)
			}
			cli := client.New(e.srv.URL, bobToken).WithUserAgent("dripflow-cli/test")
			if _, err := cli.Resume(ctx, run.ID); err != nil {
				t.Fatal(err)
			}
			running, err := e.alice.Run(ctx, run.ID)
			if err != nil {
				t.Fatal(err)
			}
			e.failedBatch(running)
			if _, err := e.st.TransitionRun(ctx, id, store.RunFailed, nil); err != nil {
				t.Fatal(err)
			}
			if _, err := e.bob.RetryBatch(ctx, run.ID, "1"); err != nil {
				t.Fatal(err)
			}
			if _, err := e.alice.Cancel(ctx, run.ID); err != nil {
				t.Fatal(err)
			}
			// A refused action writes nothing.
			if _, err := e.alice.Pause(ctx, run.ID); !client.IsStatus(err, 409) {
				t.Fatalf("pause of a cancelled run: %v, want 409", err)
			}

			tl, err := e.alice.Timeline(ctx, run.ID, "", 0)
			if err != nil {
				t.Fatal(err)
			}
			type row struct{ kind, actor, batch, msg string }
			want := []row{
				{api.EventCreated, "user:alice", "", "created by alice (API): backfill add_default_role_to_users"},
				{api.EventPaused, "user:alice", "", "paused by alice (API)"},
				{api.EventResumed, "user:bob", "", "resumed by bob (CLI)"},
				{api.EventRetried, "user:bob", "1", "batch 1 retried by bob (API)"},
				{api.EventCancelled, "user:alice", "", "cancelled by alice (API)"},
			}
			if len(tl.Items) != len(want) {
				t.Fatalf("timeline has %d events, want %d: %+v", len(tl.Items), len(want), tl.Items)
			}
			for i, w := range want {
				got := tl.Items[i]
				if got.Kind != w.kind || got.Actor != w.actor || got.Batch != w.batch || !strings.HasPrefix(got.Message, w.msg) ||
					got.RunID != run.ID || got.ID != strconv.Itoa(i+1) || got.At.IsZero() {
					t.Errorf("event %d = %+v, want %+v", i, got, w)
				}
			}
			if !strings.Contains(tl.Items[0].Message, "batch size 25") {
				t.Errorf("created event %q does not show the options", tl.Items[0].Message)
			}
			if tl.NextAfter != "5" {
				t.Errorf("next_after = %q, want 5", tl.NextAfter)
			}

			// Paging: after an id, at most limit; nothing new keeps the cursor.
			page, err := e.bob.Timeline(ctx, run.ID, "2", 2)
			if err != nil || len(page.Items) != 2 || page.Items[0].ID != "3" || page.NextAfter != "4" {
				t.Fatalf("after 2, limit 2: %+v, %v", page, err)
			}
			page, err = e.bob.Timeline(ctx, run.ID, "5", 0)
			if err != nil || len(page.Items) != 0 || page.NextAfter != "5" || page.Items == nil {
				t.Fatalf("after the last: %+v, %v; want [] and next_after 5", page, err)
			}

			for _, tc := range []struct {
				path, token string
				status      int
				field       string
			}{
				{"/api/v1/runs/" + run.ID + "/timeline?after=abc", aliceToken, 422, "after"},
				{"/api/v1/runs/" + run.ID + "/timeline?after=-1", aliceToken, 422, "after"},
				{"/api/v1/runs/" + run.ID + "/timeline?limit=1001", aliceToken, 422, "limit"},
				{"/api/v1/runs/" + run.ID + "/timeline?limit=x", aliceToken, 422, "limit"},
				{"/api/v1/runs/99999999/timeline", aliceToken, 404, ""},
				{"/api/v1/runs/abc/timeline", aliceToken, 404, ""},
				{"/api/v1/runs/" + run.ID + "/timeline", "", 401, ""},
			} {
				status, detail, _ := e.raw("GET", tc.path, tc.token, "")
				if status != tc.status || detail.Field != tc.field {
					t.Errorf("GET %s: %d field %q (%s), want %d field %q", tc.path, status, detail.Field, detail.Message, tc.status, tc.field)
				}
			}
		})
	}
}
