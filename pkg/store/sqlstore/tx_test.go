package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"

	"github.com/dripflow/dripflow/internal/testenv"
)

func TestRetryable(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{&pgconn.PgError{Code: "40P01"}, true},
		{&pgconn.PgError{Code: "40001"}, true},
		{fmt.Errorf("claim batch 1/2: %w", &pgconn.PgError{Code: "40P01"}), true},
		{&pgconn.PgError{Code: "23505"}, false},
		{&mysql.MySQLError{Number: 1213}, true},
		{&mysql.MySQLError{Number: 1205}, true},
		{&mysql.MySQLError{Number: 1062}, false},
		{errors.New("deadlock"), false},
		{context.Canceled, false},
	}
	for _, tt := range tests {
		if got := retryable(tt.err); got != tt.want {
			t.Errorf("retryable(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

// Two transactions that lock two rows in opposite orders deadlock; the
// database aborts one and inTx runs it again, so both succeed.
func TestInTxRetriesDeadlocks(t *testing.T) {
	for _, d := range []struct {
		name string
		url  func(testing.TB) string
	}{{"postgres", testenv.PostgresURL}, {"mysql", testenv.MySQLURL}} {
		t.Run(d.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			url := d.url(t)
			if err := MigrateURL(ctx, url); err != nil {
				t.Fatal(err)
			}
			s, err := Open(ctx, url, Config{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			db := s.DB().WithContext(ctx)
			if err := db.Exec("CREATE TABLE deadlock_rows (id INTEGER NOT NULL PRIMARY KEY, v INTEGER NOT NULL)").Error; err != nil {
				t.Fatal(err)
			}
			if err := db.Exec("INSERT INTO deadlock_rows (id, v) VALUES (1, 0), (2, 0)").Error; err != nil {
				t.Fatal(err)
			}
			var attempts atomic.Int64
			var holding sync.WaitGroup
			holding.Add(2)
			var once [2]sync.Once
			var wg sync.WaitGroup
			errs := make([]error, 2)
			for i, order := range [][2]int{{1, 2}, {2, 1}} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs[i] = s.inTx(ctx, func(tx *gorm.DB) error {
						attempts.Add(1)
						if err := tx.Exec("UPDATE deadlock_rows SET v = v + 1 WHERE id = ?", order[0]).Error; err != nil {
							return err
						}
						// The first time, wait until both hold their first row.
						once[i].Do(func() { holding.Done(); holding.Wait() })
						return tx.Exec("UPDATE deadlock_rows SET v = v + 1 WHERE id = ?", order[1]).Error
					})
				}()
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("transaction %d: %v", i, err)
				}
			}
			if attempts.Load() < 3 {
				t.Errorf("%d attempts, want a retried deadlock victim (3 or more)", attempts.Load())
			}
			var sum int64
			if err := db.Raw("SELECT SUM(v) FROM deadlock_rows").Scan(&sum).Error; err != nil {
				t.Fatal(err)
			}
			if sum != 4 {
				t.Fatalf("rows sum to %d, want 4: each transaction committed exactly once", sum)
			}
		})
	}
}
