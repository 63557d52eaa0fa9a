package flows_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/dripflow/dripflow/pkg/connectors/sqlconn"
	"github.com/dripflow/dripflow/pkg/flows"
)

// A flow that copies active users into user_backups every 30 seconds,
// moving only what changed since the last run.
func Example() {
	job, err := flows.New(flows.Flow{
		Name: "user_sync",
		Source: &sqlconn.Source{
			Table:  "users",
			Where:  "active = ?",
			Args:   []any{true},
			Cursor: []string{"updated_at", "id"},
		},
		Transforms: []flows.Transform{
			flows.Map("to_backup", func(r flows.Record) (flows.Record, error) {
				return flows.Record{"user_id": r["id"], "email": r["email"]}, nil
			}),
		},
		Sink:    &sqlconn.Sink{Table: "user_backups", Mode: sqlconn.Upsert, Key: []string{"user_id"}},
		Runtime: flows.Heartbeat{Interval: 30 * time.Second},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	// flows.MustRegister(…) would add it to engine.DefaultRegistry.
	fmt.Println(job.Definition().Name, job.Definition().Kind)
	// Output: user_sync flow
}

// Connector configuration is checked when the flow is registered; the
// error names the field.
func ExampleNew_invalidConfig() {
	_, err := flows.New(flows.Flow{
		Name:   "broken",
		Source: &sqlconn.Source{Table: "users", Where: "id > ? AND id < ?", Args: []any{1}},
		Sink:   &sqlconn.Sink{Table: "user_backups", Mode: "merge"},
	})
	var fe *flows.FieldError
	if errors.As(err, &fe) {
		fmt.Println(fe.Field)
	}
	fmt.Println(err)
	// Output:
	// source.args
	// flow "broken": source.args: where has 2 placeholders but 1 args are given
}

// A stored configuration (as a flow spec or the API carries it) decodes
// into a validated connector configuration.
func ExampleDecodeSink() {
	sink, err := flows.DecodeSink(flows.ConnectorConfig{
		Kind:     "sql",
		Settings: []byte(`{"connection": "warehouse", "table": "events", "mode": "upsert", "key": ["id"]}`),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(sink.Kind(), sink.Guarantee())

	_, err = flows.DecodeSink(flows.ConnectorConfig{Kind: "sql", Settings: []byte(`{"table": "events", "mode": "upsert", "keys": ["id"]}`)})
	fmt.Println(err)
	// Output:
	// sql idempotent
	// sink.keys: is not a setting of this connector (settings: connection, table, model, mode, key, chunk_size)
}
