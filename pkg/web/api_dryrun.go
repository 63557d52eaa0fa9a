package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/dripflow/dripflow/pkg/api"
	"github.com/dripflow/dripflow/pkg/control"
	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/store"
)

// DryRunTimeout bounds a dry run: its batches hold their rows' locks until
// they are rolled back, and it answers in the request.
const DryRunTimeout = 30 * time.Second

// Dry runs create no run: they are answered in the request, from the
// definition's code in this process, and leave nothing behind — no run to
// clean up, nothing a scheduler or worker could pick up by mistake.

// apiDryRun answers POST /api/v1/runs with "dry_run": true. The caller has
// been authorized to start the definition.
func (s *Server) apiDryRun(w http.ResponseWriter, r *http.Request, who string, req api.CreateRun) {
	if !req.DryRun {
		writeError(w, http.StatusUnprocessableEntity, errorf(codeInvalid, "dry_run_batches", "dry_run_batches is only for a dry run; add \"dry_run\": true"))
		return
	}
	batches := engine.DryRunBatchesDefault
	if req.DryRunBatches != nil {
		batches = *req.DryRunBatches
	}
	n := control.NewRun{Definition: req.Definition, Params: req.Params, CreatedBy: who, BatchSize: req.BatchSize}
	out, err := s.dryRun(r.Context(), n, batches)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// dryRun tries the first batches of a run of n.Definition with n's params
// and batch size, each rolled back (engine.DryRun). Bad input and a
// definition that cannot be dry-run are *store.ArgumentError (422).
func (s *Server) dryRun(ctx context.Context, n control.NewRun, batches int) (api.DryRun, error) {
	if batches < 1 || batches > engine.DryRunBatchesMax {
		return api.DryRun{}, &store.ArgumentError{Field: "dry_run_batches", Message: fmt.Sprintf("must be between 1 and %d, got %d", engine.DryRunBatchesMax, batches)}
	}
	j, err := s.opts.Registry.Resolve(ctx, n.Definition, 0)
	if errors.Is(err, engine.ErrUnknownDefinition) {
		return api.DryRun{}, &store.ArgumentError{Field: "definition", Message: fmt.Sprintf("no definition named %q", n.Definition)}
	}
	if err != nil {
		return api.DryRun{}, err
	}
	params, err := j.CanonicalParams(n.Params)
	if err != nil {
		return api.DryRun{}, err
	}
	opts, _ := s.ctl.EffectiveDefaults(j)
	size := opts.BatchSize
	if n.BatchSize != nil {
		if *n.BatchSize < 1 || *n.BatchSize > store.MaxBatchSize {
			return api.DryRun{}, &store.ArgumentError{Field: "batch_size", Message: fmt.Sprintf("must be between 1 and %d, got %d", store.MaxBatchSize, *n.BatchSize)}
		}
		size = *n.BatchSize
	}
	if s.opts.DB == nil {
		return api.DryRun{}, &store.ArgumentError{Field: "dry_run", Message: "this web process has no application database (DRIPFLOW_DATABASE_URL) to try batches in"}
	}
	ctx, cancel := context.WithTimeout(ctx, DryRunTimeout)
	defer cancel()
	start := time.Now()
	pipe, err := j.Open(ctx, engine.Env{DB: s.opts.DB, Logger: s.log, Resources: s.opts.Resources}, params)
	if err != nil {
		return api.DryRun{}, err
	}
	var watermark string
	if pipe.Incremental() {
		// An incremental flow's run starts at its watermark.
		if fs, err := s.opts.Store.GetFlow(ctx, n.Definition); err == nil {
			watermark = fs.Watermark
		}
	}
	rep, err := engine.DryRun(ctx, pipe, engine.DryRunOptions{Batches: batches, BatchSize: size, Watermark: watermark})
	timedOut := errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil
	switch {
	case errors.Is(err, engine.ErrDryRunUnsupported):
		return api.DryRun{}, &store.ArgumentError{Field: "dry_run", Message: strings.TrimPrefix(err.Error(), engine.ErrDryRunUnsupported.Error()+": ")}
	case err != nil && !timedOut:
		return api.DryRun{}, err
	}
	out := api.DryRun{
		Definition: n.Definition, Params: params, BatchSize: size, More: rep.More, Sampled: rep.Sampled,
		TimedOut: timedOut, DurationMS: time.Since(start).Milliseconds(), Batches: []api.DryRunBatch{},
	}
	for _, b := range rep.Batches {
		ab := api.DryRunBatch{
			Seq: b.Seq, Lo: b.Lo, Hi: b.Hi, Error: b.Error, Leaked: b.Leaked,
			Rows:       api.Rows{Read: b.Result.RowsRead, Written: b.Result.RowsWritten, Skipped: b.Result.RowsSkipped},
			DurationMS: b.Result.Duration.Milliseconds(),
		}
		for _, c := range b.Sample {
			ab.Sample = append(ab.Sample, api.DryRunRow{Key: c.Key, Before: c.Before, After: c.After, Deleted: c.After == nil, Changed: c.Changed})
		}
		out.Batches = append(out.Batches, ab)
	}
	s.log.Info("dry run", zap.String("definition", n.Definition), zap.String("by", n.CreatedBy),
		zap.Int("batches", len(out.Batches)), zap.Bool("timed_out", timedOut))
	return out, nil
}

// getDefinition answers GET /api/v1/definitions/{name}: the definition
// with its effective defaults (DRIPFLOW_DEFAULT_* applied) and where they
// come from.
func (s *Server) getDefinition(w http.ResponseWriter, r *http.Request, _ string) {
	j, err := s.job(r.Context(), r.PathValue("name"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.definitionOf(j))
}
