package flows

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"gorm.io/gorm"

	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/params"
	"github.com/dripflow/dripflow/pkg/store"
)

type job struct {
	f    Flow
	opts Options
	meta store.Definition

	mu    sync.Mutex
	built map[*engine.Resources]*built
}

// built is a flow's source and sink, connected once per process (per
// Resources) and shared by its runs.
type built struct {
	once sync.Once
	src  Source
	sink Sink
	err  error
}

func (j *job) Definition() store.Definition { return j.meta }
func (j *job) Defaults() store.RunOptions   { return j.opts }
func (j *job) Params() params.Schema        { return params.Schema{Fields: []params.Field{}} }
func (j *job) Runtime() engine.Runtime      { return j.f.Runtime }

func (j *job) CanonicalParams(raw json.RawMessage) (json.RawMessage, error) {
	if s := strings.TrimSpace(string(raw)); s != "" && s != "{}" && s != "null" {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
			return nil, &params.Error{Message: "params must be a JSON object"}
		}
		for k := range obj {
			return nil, &params.Error{Field: k, Message: "is not a parameter of this definition"}
		}
	}
	return json.RawMessage(`{}`), nil
}

func (j *job) Open(ctx context.Context, env engine.Env, raw json.RawMessage) (engine.Pipeline, error) {
	if _, err := j.CanonicalParams(raw); err != nil {
		return nil, err
	}
	res := env.Resources
	if res == nil {
		// A caller outside a dripflow process (a test, a tool): connect
		// for this pipeline alone.
		src, sink, err := j.build(ctx, engine.NewResources(env.DB, nil, env.Logger))
		if err != nil {
			return nil, err
		}
		return &pipeline{f: &j.f, src: src, sink: sink}, nil
	}
	j.mu.Lock()
	b, ok := j.built[res]
	if !ok {
		b = &built{}
		j.built[res] = b
	}
	j.mu.Unlock()
	b.once.Do(func() { b.src, b.sink, b.err = j.build(ctx, res) })
	if b.err != nil {
		// Not cached: a connection that failed may work next time.
		j.mu.Lock()
		if j.built[res] == b {
			delete(j.built, res)
		}
		j.mu.Unlock()
		return nil, b.err
	}
	return &pipeline{f: &j.f, src: b.src, sink: b.sink}, nil
}

func (j *job) build(ctx context.Context, res *engine.Resources) (Source, Sink, error) {
	src, err := j.f.Source.Build(ctx, res)
	if err != nil {
		return nil, nil, fmt.Errorf("flow %q: build %s source: %w", j.f.Name, j.f.Source.Kind(), err)
	}
	sink, err := j.f.Sink.Build(ctx, res)
	if err != nil {
		src.Close()
		return nil, nil, fmt.Errorf("flow %q: build %s sink: %w", j.f.Name, j.f.Sink.Kind(), err)
	}
	// Built connectors live as long as the process's resources.
	res.OnClose(func() error { return errors.Join(src.Close(), sink.Close()) })
	return src, sink, nil
}

// pipeline is one run's view of a flow.
type pipeline struct {
	f    *Flow
	src  Source
	sink Sink
}

var (
	_ engine.Pipeline       = (*pipeline)(nil)
	_ engine.BatchProcessor = (*pipeline)(nil)
	_ engine.Acker          = (*pipeline)(nil)
)

func (p *pipeline) Start(watermark string) string {
	if p.src.Resumes() {
		return watermark
	}
	return ""
}

func (p *pipeline) Incremental() bool { return p.src.Resumes() }

// MaxBatches bounds a run's plan for offset sources (0: no bound).
func (p *pipeline) MaxBatches() int {
	if p.src.Shape() == Offset {
		return p.f.MaxBatchesPerRun
	}
	return 0
}

// WritesTo is the sink's database when it can join the checkpoint's
// transaction; the worker shares the transaction only when that is the
// store's database.
func (p *pipeline) WritesTo() *gorm.DB {
	if tx, ok := p.sink.(TxSink); ok {
		return tx.DB()
	}
	return nil
}

func (p *pipeline) Next(ctx context.Context, lo string, size int) (string, bool, bool, error) {
	s, err := p.src.Next(ctx, lo, size)
	if err != nil || s.Hi == "" {
		return "", false, false, err
	}
	return s.Hi, !s.Last, true, nil
}

func (p *pipeline) Count(ctx context.Context) (int64, bool, error) {
	if c, ok := p.src.(Counter); ok {
		return c.Count(ctx)
	}
	return 0, false, engine.ErrCannotCount
}

func (p *pipeline) Ack(ctx context.Context, lo, hi string) error {
	if a, ok := p.src.(Acker); ok {
		return a.Ack(ctx, lo, hi)
	}
	return nil
}

func (p *pipeline) Process(ctx context.Context, tx *gorm.DB, lo, hi string) (store.Result, error) {
	return p.ProcessBatch(ctx, tx, store.Batch{Lo: lo, Hi: hi})
}

// ProcessBatch reads the batch's range, transforms it and writes it: in tx
// when the worker passes the checkpoint's transaction (the sink is a TxSink
// on the store's database), else through the sink on its own.
func (p *pipeline) ProcessBatch(ctx context.Context, tx *gorm.DB, b store.Batch) (store.Result, error) {
	recs, err := p.src.Read(ctx, b.Lo, b.Hi)
	if err != nil {
		return store.Result{}, fmt.Errorf("read %s: %w", p.f.Source.Kind(), err)
	}
	res := store.Result{RowsRead: int64(len(recs))}
	for _, t := range p.f.Transforms {
		if recs, err = t.apply(ctx, recs); err != nil {
			return store.Result{}, fmt.Errorf("transform %s: %w", t.Name, err)
		}
	}
	if len(recs) > 0 {
		wb := &Batch{Flow: p.f.Name, Run: b.RunID, Seq: b.Seq, Lo: b.Lo, Hi: b.Hi, Records: recs}
		var n int64
		if ts, ok := p.sink.(TxSink); ok && tx != nil {
			n, err = ts.WriteTx(ctx, tx, wb)
		} else {
			n, err = p.sink.Write(ctx, wb)
		}
		if err != nil {
			return store.Result{}, fmt.Errorf("write %s: %w", p.f.Sink.Kind(), err)
		}
		res.RowsWritten = n
	}
	if skipped := res.RowsRead - int64(len(recs)); skipped > 0 {
		res.RowsSkipped = skipped
	}
	return res, nil
}
