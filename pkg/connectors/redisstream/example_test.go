package redisstream_test

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/dripflow/dripflow/pkg/connectors/redisstream"
	"github.com/dripflow/dripflow/pkg/connectors/sqlconn"
	"github.com/dripflow/dripflow/pkg/flows"
)

// A flow that copies what arrived on the "orders" stream into a warehouse
// table every 10 seconds, keeping the "warehouse" consumer group in step;
// and one that appends users to a stream once per user id.
func Example() {
	ordersToWarehouse := flows.Flow{
		Name:   "orders_to_warehouse",
		Source: &redisstream.Source{Connection: "events", Stream: "orders", Group: "warehouse", IDField: "entry_id"},
		Transforms: []flows.Transform{flows.Map("columns", func(r flows.Record) (flows.Record, error) {
			return flows.Record{"entry_id": r["entry_id"], "order_id": r["order_id"], "total": r["total"]}, nil
		})},
		Sink:             &sqlconn.Sink{Connection: "warehouse", Table: "orders", Mode: sqlconn.Upsert, Key: []string{"entry_id"}},
		Runtime:          flows.Heartbeat{Interval: 10 * time.Second},
		Options:          flows.Options{BatchSize: 500},
		MaxBatchesPerRun: 200,
	}
	usersToStream := flows.Flow{
		Name:    "users_to_stream",
		Source:  &sqlconn.Source{Table: "users", Cursor: []string{"updated_at", "id"}},
		Sink:    &redisstream.Sink{Stream: "users", IDField: "id", MessageIDField: "msg_id", MaxLen: 1_000_000},
		Runtime: flows.Heartbeat{Interval: time.Minute},
	}
	for _, f := range []flows.Flow{ordersToWarehouse, usersToStream} {
		// flows.MustRegister(f) in a real program.
		job, err := flows.New(f)
		if err != nil {
			panic(err)
		}
		var cfg flows.Config
		_ = json.Unmarshal(job.Definition().Config, &cfg)
		fmt.Printf("%s: %s → %s, %s\n", f.Name, cfg.Source.Kind, cfg.Sink.Kind, cfg.Guarantee)
	}
	// Output:
	// orders_to_warehouse: redisstream → sql, idempotent
	// users_to_stream: sql → redisstream, idempotent
}
