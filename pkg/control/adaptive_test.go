package control_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/dripflow/dripflow/internal/testenv"
	"github.com/dripflow/dripflow/pkg/backfills"
	"github.com/dripflow/dripflow/pkg/control"
	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/store/redisstore"
)

type adaptiveRow struct{ ID int64 }

// A definition's adaptive batch size is every run's default: the run keeps
// the bounds it adapts within (the defaults filled in); a run may turn it
// off with a zero target or set its own bounds; bad bounds are refused
// naming the field, and nothing is created.
func TestCreateRunAdaptiveDefaults(t *testing.T) {
	ctx := context.Background()
	rdb, prefix := testenv.Redis(t)
	st, err := redisstore.New(rdb, redisstore.Config{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	job, err := backfills.New(backfills.Definition[adaptiveRow, struct{}]{
		Name:         "adaptive_def",
		ProcessRange: func(ctx context.Context, r *backfills.Range[adaptiveRow, struct{}]) error { return nil },
		Options:      backfills.Options{BatchSize: 2000, TargetBatchTime: 300 * time.Millisecond, MaxBatchSize: 50_000},
	})
	if err != nil {
		t.Fatal(err)
	}
	reg := engine.NewRegistry()
	if err := reg.Register(job); err != nil {
		t.Fatal(err)
	}
	ctl := &control.Controller{Store: st, Registry: reg}
	ptr := func(n int) *int { return &n }

	r, err := ctl.CreateRun(ctx, control.NewRun{Definition: "adaptive_def"})
	if o := r.Options; err != nil || o.TargetBatchTime != 300*time.Millisecond || o.BatchSize != 2000 || o.MinBatchSize != 20 || o.MaxBatchSize != 50_000 {
		t.Fatalf("run with the definition's defaults: %+v, %v; want target 300ms, bounds 20 (batch size / 100) and 50,000", o, err)
	}
	off := time.Duration(0)
	r, err = ctl.CreateRun(ctx, control.NewRun{Definition: "adaptive_def", TargetBatchTime: &off})
	if err != nil || r.Options.Adaptive() {
		t.Fatalf("run turning it off: %+v, %v", r.Options, err)
	}
	r, err = ctl.CreateRun(ctx, control.NewRun{Definition: "adaptive_def", BatchSize: ptr(100), MinBatchSize: ptr(50), MaxBatchSize: ptr(400)})
	if o := r.Options; err != nil || o.MinBatchSize != 50 || o.MaxBatchSize != 400 || o.BatchSize != 100 {
		t.Fatalf("run with its own bounds: %+v, %v", o, err)
	}
	before, _ := st.ListRuns(ctx, store.RunFilter{})
	for field, n := range map[string]control.NewRun{
		"min_batch_size":    {Definition: "adaptive_def", MinBatchSize: ptr(2001)},
		"max_batch_size":    {Definition: "adaptive_def", BatchSize: ptr(60_000)},
		"target_batch_time": {Definition: "adaptive_def", TargetBatchTime: func() *time.Duration { d := 11 * time.Minute; return &d }()},
	} {
		_, err := ctl.CreateRun(ctx, n)
		var ae *store.ArgumentError
		if !errors.As(err, &ae) || ae.Field != field {
			t.Errorf("bad %s: %v, want an ArgumentError naming it", field, err)
		}
	}
	if after, _ := st.ListRuns(ctx, store.RunFilter{}); len(after.Items) != len(before.Items) {
		t.Errorf("refused runs were created: %d runs, were %d", len(after.Items), len(before.Items))
	}
}
