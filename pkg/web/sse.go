package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/dripflow/dripflow/pkg/store"
)

// runEvents streams a run as server-sent events: event "run" with the run
// (and its progress) whenever it changes, until the run ends; a comment
// every 15 s keeps proxies from closing the stream.
func (s *Server) runEvents(w http.ResponseWriter, r *http.Request, _ string) {
	id, err := pathID(r, "id")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	run, err := s.opts.Store.GetRun(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, errorf(codeInternal, "", "streaming unsupported"))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	send := func(run store.Run) bool {
		b, _ := json.Marshal(runOf(run, time.Now()))
		if _, err := fmt.Fprintf(w, "event: run\ndata: %s\n\n", b); err != nil {
			return false
		}
		flusher.Flush()
		return true
	}
	if !send(run) || run.State.Terminal() {
		return
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	keepAlive := time.NewTicker(15 * time.Second)
	defer keepAlive.Stop()
	last := run
	for {
		select {
		case <-r.Context().Done():
			return
		case <-keepAlive.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return
			}
			flusher.Flush()
		case <-tick.C:
			cur, err := s.opts.Store.GetRun(r.Context(), id)
			if err != nil {
				return
			}
			if cur.State == last.State && cur.Counters == last.Counters && cur.Total == last.Total && cur.UpdatedAt.Equal(last.UpdatedAt) {
				continue
			}
			if !send(cur) || cur.State.Terminal() {
				return
			}
			last = cur
		}
	}
}
