package e2edefs

import (
	"time"

	"github.com/dripflow/dripflow/pkg/connectors/redisstream"
	"github.com/dripflow/dripflow/pkg/connectors/sqlconn"
	"github.com/dripflow/dripflow/pkg/flows"
)

// Named connections the broker flows use; the processes that run them get
// them in DRIPFLOW_CONNECTIONS.
const (
	// EventsConnection is the Redis holding EventStream (not the queue's).
	EventsConnection = "e2e_events"
	// WarehouseConnection is the database of e2e_stream_rows, reached as
	// a named connection, so its sink is idempotent, not transactional.
	WarehouseConnection = "e2e_warehouse"
)

// EventStream is the stream StreamCopy reads.
const EventStream = "e2e:events"

// StreamRowsDDL creates StreamCopy's sink table.
const StreamRowsDDL = "CREATE TABLE IF NOT EXISTS e2e_stream_rows (entry_id TEXT PRIMARY KEY, n BIGINT NOT NULL)"

// StreamCopy copies EventStream's entries into e2e_stream_rows by upsert,
// through a consumer group, a little slowly (a millisecond per entry) so a
// test can kill a worker mid-flow.
var StreamCopy = flows.MustRegister(flows.Flow{
	Name:        "e2e_stream_copy",
	Description: "Copy a Redis stream's entries into e2e_stream_rows.",
	Source:      &redisstream.Source{Connection: EventsConnection, Stream: EventStream, Group: "e2e", IDField: "entry_id"},
	Transforms: []flows.Transform{flows.Map("slowly", func(r flows.Record) (flows.Record, error) {
		time.Sleep(time.Millisecond)
		return flows.Record{"entry_id": r["entry_id"], "n": r["n"]}, nil
	})},
	Sink:             &sqlconn.Sink{Connection: WarehouseConnection, Table: "e2e_stream_rows", Mode: sqlconn.Upsert, Key: []string{"entry_id"}},
	Options:          flows.Options{BatchSize: 100, MaxInFlight: 8},
	MaxBatchesPerRun: 1000,
})
