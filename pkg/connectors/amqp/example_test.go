package amqp_test

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/dripflow/dripflow/pkg/connectors/amqp"
	"github.com/dripflow/dripflow/pkg/connectors/sqlconn"
	"github.com/dripflow/dripflow/pkg/flows"
)

// A flow that copies a RabbitMQ stream queue into PostgreSQL; and one that
// publishes shipped orders to a topic exchange with publisher confirms.
func Example() {
	payments := flows.Flow{
		Name:   "payments_to_warehouse",
		Source: &amqp.Source{Queue: "payments"},
		Transforms: []flows.Transform{flows.Map("columns", func(r flows.Record) (flows.Record, error) {
			return flows.Record{"payment_id": r["id"], "amount": r["amount"], "stream_offset": r["_offset"]}, nil
		})},
		Sink:    &sqlconn.Sink{Connection: "warehouse", Table: "payments", Mode: sqlconn.Upsert, Key: []string{"payment_id"}},
		Runtime: flows.Heartbeat{Interval: 10 * time.Second},
	}
	shipped := flows.Flow{
		Name:    "shipped_orders",
		Source:  &sqlconn.Source{Table: "orders", Where: "status = ?", Args: []any{"shipped"}, Cursor: []string{"updated_at", "id"}},
		Sink:    &amqp.Sink{Exchange: "events", RoutingKey: "orders.shipped", IDField: "id"},
		Runtime: flows.Heartbeat{Interval: time.Minute},
	}
	for _, f := range []flows.Flow{payments, shipped} {
		job, err := flows.New(f) // flows.MustRegister(f) in a real program
		if err != nil {
			panic(err)
		}
		var cfg flows.Config
		_ = json.Unmarshal(job.Definition().Config, &cfg)
		fmt.Printf("%s: %s → %s, %s\n", f.Name, cfg.Source.Kind, cfg.Sink.Kind, cfg.Guarantee)
	}
	// Output:
	// payments_to_warehouse: amqp → sql, idempotent
	// shipped_orders: sql → amqp, at-least-once
}
