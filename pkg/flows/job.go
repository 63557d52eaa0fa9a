package flows

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"gorm.io/gorm"

	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/params"
	"github.com/dripflow/dripflow/pkg/store"
)

type job struct {
	f    Flow
	opts Options
	meta store.Definition
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
	if env.DB == nil {
		return nil, fmt.Errorf("flow %q: no database configured", j.f.Name)
	}
	if _, err := j.CanonicalParams(raw); err != nil {
		return nil, err
	}
	return &pipeline{f: j.f, db: env.DB}, nil
}

type pipeline struct {
	f  Flow
	db *gorm.DB
}

func (p *pipeline) Start(watermark string) string {
	if p.f.Source.Incremental() {
		return watermark
	}
	return ""
}

func (p *pipeline) Incremental() bool  { return p.f.Source.Incremental() }
func (p *pipeline) WritesTo() *gorm.DB { return p.db }

func (p *pipeline) Next(ctx context.Context, lo string, size int) (string, bool, bool, error) {
	return p.f.Source.Next(ctx, p.db, lo, size)
}

func (p *pipeline) Count(ctx context.Context) (int64, bool, error) {
	return p.f.Source.Count(ctx, p.db)
}

func (p *pipeline) Process(ctx context.Context, tx *gorm.DB, lo, hi string) (store.Result, error) {
	if tx == nil {
		var res store.Result
		err := p.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			var err error
			res, err = p.process(ctx, tx, lo, hi)
			return err
		})
		return res, err
	}
	return p.process(ctx, tx, lo, hi)
}

func (p *pipeline) process(ctx context.Context, tx *gorm.DB, lo, hi string) (store.Result, error) {
	recs, err := p.f.Source.Read(ctx, tx, lo, hi)
	if err != nil {
		return store.Result{}, fmt.Errorf("read %s: %w", p.f.Source.Connector(), err)
	}
	res := store.Result{RowsRead: int64(len(recs))}
	for _, t := range p.f.Transforms {
		next := recs[:0:0]
		for _, r := range recs {
			out, err := t.Fn(ctx, r)
			if err != nil {
				return store.Result{}, fmt.Errorf("transform %s: %w", t.Name, err)
			}
			next = append(next, out...)
		}
		recs = next
	}
	if len(recs) > 0 {
		n, err := p.f.Sink.Write(ctx, tx, recs)
		if err != nil {
			return store.Result{}, fmt.Errorf("write %s: %w", p.f.Sink.Connector(), err)
		}
		res.RowsWritten = n
	}
	if skipped := res.RowsRead - int64(len(recs)); skipped > 0 {
		res.RowsSkipped = skipped
	}
	return res, nil
}
