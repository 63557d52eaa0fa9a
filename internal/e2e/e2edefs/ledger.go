package e2edefs

import (
	"context"
	"time"

	"gorm.io/gorm"

	"github.com/dripflow/dripflow/pkg/connectors/sqlconn"
	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/flows"
)

// LedgerRow is a row e2e_ledger appends per item: the sink inserts without
// a key, so only the checkpoint's transaction keeps a redelivered batch from
// adding its rows twice.
type LedgerRow struct {
	ID     int64 `gorm:"primaryKey"`
	ItemID int64 `gorm:"not null;index"`
	Val    string
}

// TableName implements gorm's Tabler.
func (LedgerRow) TableName() string { return "e2e_ledger" }

var toLedger = flows.Map("to_ledger", func(r flows.Record) (flows.Record, error) {
	return flows.Record{"item_id": r["id"], "val": r["val"]}, nil
})

// SlowSink is a test connector ("e2e_slow_sql"): the sql sink, pausing
// after each write for PauseMS before the batch's checkpoint, so a worker
// killed mid-batch has most likely written already. Only the checkpoint's
// transaction then keeps the write from counting twice.
type SlowSink struct {
	sqlconn.Sink
	PauseMS int `json:"pause_ms"`
}

// Kind implements flows.SinkConfig.
func (*SlowSink) Kind() string { return "e2e_slow_sql" }

// Build implements flows.SinkConfig.
func (s *SlowSink) Build(ctx context.Context, res *engine.Resources) (flows.Sink, error) {
	inner, err := s.Sink.Build(ctx, res)
	if err != nil {
		return nil, err
	}
	return &slowSink{TxSink: inner.(flows.TxSink), pause: time.Duration(s.PauseMS) * time.Millisecond}, nil
}

type slowSink struct {
	flows.TxSink
	pause time.Duration
}

func (s *slowSink) wait(ctx context.Context) error {
	select {
	case <-time.After(s.pause):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *slowSink) Write(ctx context.Context, b *flows.Batch) (int64, error) {
	n, err := s.TxSink.Write(ctx, b)
	if err != nil {
		return n, err
	}
	return n, s.wait(ctx)
}

func (s *slowSink) WriteTx(ctx context.Context, tx *gorm.DB, b *flows.Batch) (int64, error) {
	n, err := s.TxSink.WriteTx(ctx, tx, b)
	if err != nil {
		return n, err
	}
	return n, s.wait(ctx)
}

func init() {
	flows.RegisterConnector(flows.Connector{Kind: "e2e_slow_sql", Sink: func() flows.SinkConfig { return &SlowSink{} }})
}

var slowLedger = &SlowSink{Sink: sqlconn.Sink{Table: "e2e_ledger", Mode: sqlconn.Insert}, PauseMS: 150}

// Ledger appends a row per item to e2e_ledger: an insert without key, in
// the application database, so exactly once rests on the checkpoint's
// transaction.
var Ledger = flows.MustRegister(flows.Flow{
	Name:       "e2e_ledger",
	Source:     &sqlconn.Source{Table: "e2e_items", Columns: []string{"id", "val"}},
	Transforms: []flows.Transform{toLedger},
	Sink:       slowLedger,
	Options:    flows.Options{BatchSize: 500, MaxInFlight: 8},
})

// Mirror copies the items of the "replica" connection (another database,
// MariaDB in the tests) into the application database's ledger.
var Mirror = flows.MustRegister(flows.Flow{
	Name:       "e2e_mirror",
	Source:     &sqlconn.Source{Connection: "replica", Table: "e2e_items", Columns: []string{"id", "val"}},
	Transforms: []flows.Transform{toLedger},
	Sink:       slowLedger,
	Options:    flows.Options{BatchSize: 500, MaxInFlight: 8},
})
