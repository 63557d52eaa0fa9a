package file_test

import (
	"fmt"
	"time"

	"github.com/dripflow/dripflow/pkg/connectors/file"
	"github.com/dripflow/dripflow/pkg/connectors/sqlconn"
	"github.com/dripflow/dripflow/pkg/flows"
)

// A table exported every hour into JSONL files of at most 10,000 records,
// and a directory of CSV files (appended to, rotated by date) loaded into
// a table by upsert on where each record was read.
func Example() {
	export := flows.Flow{
		Name:   "orders_export",
		Source: &sqlconn.Source{Table: "orders", Cursor: []string{"updated_at", "id"}},
		Sink: &file.Sink{
			Dir: "/data/exports/orders", Format: file.JSONL,
			MaxRecords: 10_000, MaxBytes: 64 << 20,
		},
		Runtime: flows.Heartbeat{Interval: time.Hour},
	}
	load := flows.Flow{
		Name: "payments_load",
		Source: &file.Source{
			Path: "/data/incoming/payments-*.csv", Format: file.CSV,
			Types: map[string]string{"amount": "float", "paid_at": "time"},
		},
		Sink:    &sqlconn.Sink{Table: "payments", Mode: sqlconn.Upsert, Key: []string{"_file", "_offset"}},
		Runtime: flows.Heartbeat{Interval: time.Minute},
		Options: flows.Options{BatchSize: 5000},
	}
	for _, f := range []flows.Flow{export, load} {
		if _, err := flows.New(f); err != nil {
			fmt.Println(err)
		}
		fmt.Println(f.Name, f.Sink.Guarantee())
	}
	// Output:
	// orders_export idempotent
	// payments_load idempotent
}
