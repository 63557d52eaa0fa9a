package app

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dripflow/dripflow/internal/testenv"
	"github.com/dripflow/dripflow/pkg/store/sqlstore"
)

func TestWithIdleTxTimeout(t *testing.T) {
	for _, tc := range []struct {
		in    string
		lease time.Duration
		want  string
	}{
		{"postgres://app@db:5432/app?sslmode=disable", time.Minute, "postgres://app@db:5432/app?idle_in_transaction_session_timeout=60000&sslmode=disable"},
		{"postgresql://db/app", 2 * time.Second, "postgresql://db/app?idle_in_transaction_session_timeout=10000"},
		{"postgres://db/app?idle_in_transaction_session_timeout=0", time.Minute, "postgres://db/app?idle_in_transaction_session_timeout=0"},
		{"mysql://root@127.0.0.1:3306/test", time.Minute, "mysql://root@127.0.0.1:3306/test"},
		{"sqlite:///tmp/x.db", time.Minute, "sqlite:///tmp/x.db"},
	} {
		if got := withIdleTxTimeout(tc.in, tc.lease); got != tc.want {
			t.Errorf("withIdleTxTimeout(%q, %s) = %q, want %q", tc.in, tc.lease, got, tc.want)
		}
	}
}

// A transaction left idle past the limit (a frozen process) is ended by
// PostgreSQL, which frees its row locks for everyone else.
func TestIdleTxTimeoutFreesLocks(t *testing.T) {
	base := testenv.PostgresURL(t)
	ctx := context.Background()
	u := strings.Replace(withIdleTxTimeout(base, time.Minute), "=60000", "=1000", 1) // 1 s for the test
	frozen, err := sqlstore.OpenDB(ctx, u, 2)
	if err != nil {
		t.Fatal(err)
	}
	other, err := sqlstore.OpenDB(ctx, base, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Exec("CREATE TABLE locked (id int PRIMARY KEY, n int); INSERT INTO locked VALUES (1, 0)").Error; err != nil {
		t.Fatal(err)
	}
	tx := frozen.Begin()
	if err := tx.Exec("UPDATE locked SET n = n + 1 WHERE id = 1").Error; err != nil {
		t.Fatal(err)
	}
	// The transaction now sleeps, as a SIGSTOPped worker's would; the other
	// connection waits for its row lock only until PostgreSQL ends it.
	start := time.Now()
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := other.WithContext(wctx).Exec("UPDATE locked SET n = n + 10 WHERE id = 1").Error; err != nil {
		t.Fatalf("the other update: %v (after %s)", err, time.Since(start))
	}
	if waited := time.Since(start); waited > 10*time.Second {
		t.Errorf("the lock was held %s", waited)
	}
	if err := tx.Commit().Error; err == nil {
		t.Fatalf("the idle transaction committed after its session was ended")
	} else if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("commit: %v", err)
	}
	var n int
	if err := other.Raw("SELECT n FROM locked WHERE id = 1").Scan(&n).Error; err != nil || n != 10 {
		t.Fatalf("n = %d (%v), want 10: only the other update applies", n, err)
	}
}
