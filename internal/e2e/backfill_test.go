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

// The canonical examples do what they say on real data.
func TestExamplesInProcess(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const n = 3000
	if err := examples.Seed(ctx, e.db, n); err != nil {
		t.Fatal(err)
	}
	e.start(1)

	r, err := e.ctl.CreateRun(ctx, control.NewRun{Definition: "fix_user_emails", CreatedBy: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if done := e.waitRun(r.ID, time.Minute); done.State != store.RunSucceeded || done.RowsWritten != n {
		t.Fatalf("fix_user_emails: %s, %+v", done.State, done.Counters)
	}
	var users []examples.User
	if err := e.db.Find(&users).Error; err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		if !u.EmailVerified || u.Email != examples.NormalizeEmail(u.Email) || u.Email == "" {
			t.Fatalf("user %d after fix_user_emails: %q verified=%v", u.ID, u.Email, u.EmailVerified)
		}
	}

	// user_sync copies active users only: the seed made one in ten
	// inactive, so a filter that copies everyone fails below.
	var inactive int64
	if err := e.db.Model(&examples.User{}).Where("active = ?", false).Count(&inactive).Error; err != nil || inactive == 0 {
		t.Fatalf("the demo seed made %d inactive users (%v); user_sync's filter would go untested", inactive, err)
	}
	// user_sync: activating it starts a run at once (heartbeat, never ran).
	if _, err := e.st.SetFlowActive(ctx, "user_sync", true); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		var active, backups int64
		e.db.Model(&examples.User{}).Where("active = ?", true).Count(&active)
		e.db.Model(&examples.UserBackup{}).Count(&backups)
		if active == backups && backups > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("user_sync: %d backups for %d active users", backups, active)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var mismatched int64
	e.db.Raw(`SELECT COUNT(*) FROM users u JOIN user_backups b ON b.user_id = u.id WHERE b.email <> u.email OR u.active = false`).Scan(&mismatched)
	var orphans int64
	e.db.Raw(`SELECT COUNT(*) FROM user_backups b LEFT JOIN users u ON u.id = b.user_id AND u.active = true WHERE u.id IS NULL`).Scan(&orphans)
	if orphans != 0 {
		t.Fatalf("%d backups of inactive or missing users", orphans)
	}
	if mismatched != 0 {
		t.Fatalf("%d backups differ from their users", mismatched)
	}
}
