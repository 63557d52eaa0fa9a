package e2e

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/dripflow/dripflow/examples"
	"github.com/dripflow/dripflow/pkg/control"
	"github.com/dripflow/dripflow/pkg/store"
)

func TestBackfillInProcess(t *testing.T) {
	e := newEnv(t)
	const n = 5000
	if err := examples.Seed(context.Background(), e.db, n); err != nil {
		t.Fatal(err)
	}
	e.start(2)
	bs := 100
	r, err := e.ctl.CreateRun(context.Background(), control.NewRun{
		Definition: "add_default_role_to_users", Params: json.RawMessage(`{"role":"guest"}`), CreatedBy: "test", BatchSize: &bs,
	})
	if err != nil {
		t.Fatal(err)
	}
	done := e.waitRun(r.ID, time.Minute)
	if done.State != store.RunSucceeded {
		t.Fatalf("run ended %s: %s", done.State, done.Error)
	}
	var nullRoles, guests int64
	e.db.Model(&examples.User{}).Where("role IS NULL").Count(&nullRoles)
	e.db.Model(&examples.User{}).Where("role = ?", "guest").Count(&guests)
	if nullRoles != 0 || guests != n/2 {
		t.Fatalf("after the run: %d users without role, %d guests; want 0 and %d", nullRoles, guests, n/2)
	}
	if done.RowsWritten != n/2 || done.RowsRead != n/2 || done.BatchesSucceeded != n/2/int64(bs) || done.Total != n/2 {
		t.Fatalf("counters: %+v total %d", done.Counters, done.Total)
	}
}
