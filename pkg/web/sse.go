package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/dripflow/dripflow/pkg/store"
)

// codeTooManyRequests is the code of a 429: an event stream over the caps.
const codeTooManyRequests = "too_many_requests"

// eventWriteTimeout bounds one write of an event stream: the server has no
// WriteTimeout (it would end every stream), so a client that stops reading
// is dropped here instead.
const eventWriteTimeout = 30 * time.Second

// runEvents streams a run as server-sent events: event "run" with the run
// (and its progress) whenever it changes, until the run ends; a comment
// every 15 s keeps proxies from closing the stream (and finds clients that
// left). Streams are capped per identity and in all (429 beyond), last at
// most EventStreamMaxAge when it is set, and share one poll of the store
// per run (runHub).
func (s *Server) runEvents(w http.ResponseWriter, r *http.Request, who string) {
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
	if err := s.hub.acquire(who); err != nil {
		w.Header().Set("Retry-After", "30")
		writeError(w, http.StatusTooManyRequests, errorf(codeTooManyRequests, "", "%s", err.Error()))
		return
	}
	defer s.hub.release(who)
	rc := http.NewResponseController(w)
	// The request was read whole: the server's ReadTimeout, meant for
	// slow bodies, has nothing more to guard on this connection.
	if err := rc.SetReadDeadline(time.Time{}); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	write := func(format string, args ...any) bool {
		rc.SetWriteDeadline(time.Now().Add(eventWriteTimeout)) //nolint:errcheck // unsupported: no deadline
		if _, err := fmt.Fprintf(w, format, args...); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	send := func(run store.Run) bool {
		b, _ := json.Marshal(runOf(run, time.Now()))
		return write("event: run\ndata: %s\n\n", b)
	}
	if !write("retry: %d\n\n", 3000) || !send(run) || run.State.Terminal() {
		return
	}
	changes, leave := s.hub.subscribe(run)
	defer leave()
	keepAlive := time.NewTicker(15 * time.Second)
	defer keepAlive.Stop()
	var maxAge <-chan time.Time
	if s.opts.EventStreamMaxAge > 0 {
		t := time.NewTimer(s.opts.EventStreamMaxAge)
		defer t.Stop()
		maxAge = t.C
	}
	for {
		select {
		case <-r.Context().Done():
			return
		case <-maxAge:
			// The client reconnects (after retry ms) and gets a fresh place.
			write(": stream age limit, reconnect\n\n")
			return
		case <-keepAlive.C:
			if !write(": keep-alive\n\n") {
				return
			}
		case cur, ok := <-changes:
			if !ok || !send(cur) || cur.State.Terminal() {
				return
			}
		}
	}
}
