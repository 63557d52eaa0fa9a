package nats_test

import (
	"encoding/json"
	"fmt"
	"time"

	natsconn "github.com/dripflow/dripflow/pkg/connectors/nats"
	"github.com/dripflow/dripflow/pkg/connectors/sqlconn"
	"github.com/dripflow/dripflow/pkg/flows"
)

// A flow that moves the ORDERS stream's created orders into PostgreSQL,
// advancing a durable consumer as batches commit; and one that publishes
// changed users, deduplicated by user and version.
func Example() {
	createdOrders := flows.Flow{
		Name:   "created_orders",
		Source: &natsconn.Source{Stream: "ORDERS", Subject: "orders.*.created", Durable: "warehouse"},
		Transforms: []flows.Transform{flows.Map("columns", func(r flows.Record) (flows.Record, error) {
			return flows.Record{"order_id": r["id"], "total": r["total"], "seq": r["_seq"]}, nil
		})},
		Sink:    &sqlconn.Sink{Connection: "warehouse", Table: "orders", Mode: sqlconn.Upsert, Key: []string{"order_id"}},
		Runtime: flows.Heartbeat{Interval: 5 * time.Second},
	}
	changedUsers := flows.Flow{
		Name:   "changed_users",
		Source: &sqlconn.Source{Table: "users", Cursor: []string{"updated_at", "id"}},
		Transforms: []flows.Transform{flows.Map("with_version", func(r flows.Record) (flows.Record, error) {
			r["version"] = fmt.Sprintf("%v@%v", r["id"], r["updated_at"])
			return r, nil
		})},
		Sink:    &natsconn.Sink{Subject: "users.changed", Stream: "USERS", IDField: "version"},
		Runtime: flows.Heartbeat{Interval: time.Minute},
	}
	for _, f := range []flows.Flow{createdOrders, changedUsers} {
		job, err := flows.New(f) // flows.MustRegister(f) in a real program
		if err != nil {
			panic(err)
		}
		var cfg flows.Config
		_ = json.Unmarshal(job.Definition().Config, &cfg)
		fmt.Printf("%s: %s → %s, %s\n", f.Name, cfg.Source.Kind, cfg.Sink.Kind, cfg.Guarantee)
	}
	// Output:
	// created_orders: nats → sql, idempotent
	// changed_users: sql → nats, idempotent
}
