package web

import (
	"context"
	"net/http"
	"strconv"

	"github.com/dripflow/dripflow/pkg/api"
	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/worker"
)

func (s *Server) startRun(w http.ResponseWriter, r *http.Request, who string) {
	s.control(w, r, who, "started now", s.ctl.Start)
}

func (s *Server) rescheduleRun(w http.ResponseWriter, r *http.Request, who string) {
	var req api.Reschedule
	if !s.decodeBody(w, r, &req) {
		return
	}
	if req.StartAt == nil {
		writeError(w, http.StatusUnprocessableEntity, errorf(codeInvalid, "start_at", "start_at is required (RFC 3339)"))
		return
	}
	s.control(w, r, who, "rescheduled", func(ctx context.Context, id int64) (store.Run, error) {
		return s.ctl.Reschedule(ctx, id, *req.StartAt)
	})
}

// workers lists the queue's workers from their heartbeats.
func (s *Server) workers(ctx context.Context) ([]api.Worker, error) {
	if s.opts.Redis == nil {
		return []api.Worker{}, nil
	}
	ws, err := worker.NewPresence(s.opts.Redis, s.opts.PresenceKey).List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]api.Worker, 0, len(ws))
	for _, w := range ws {
		a := api.Worker{ID: w.ID, Queue: w.Queue, Concurrency: w.Concurrency, Alive: w.Alive,
			StartedAt: w.StartedAt, LastHeartbeat: w.LastHeartbeat, Batches: []api.WorkerBatch{}}
		for _, b := range w.Batches {
			a.Batches = append(a.Batches, api.WorkerBatch{RunID: strconv.FormatInt(b.RunID, 10), Seq: strconv.FormatInt(b.Seq, 10)})
		}
		out = append(out, a)
	}
	return out, nil
}

func (s *Server) listWorkers(w http.ResponseWriter, r *http.Request, _ string) {
	ws, err := s.workers(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.Workers{Items: ws})
}
