package web

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/dripflow/dripflow/pkg/store"
)

func (s *Server) workersPage(w http.ResponseWriter, r *http.Request, q *uiReq) {
	ws, err := s.workers(r.Context())
	if err != nil {
		s.uiFailErr(w, r, q, err)
		return
	}
	p := s.newPage(w, r, q, "Workers", "workers")
	p.Data = ws
	s.render(w, r, http.StatusOK, "workers", p)
}

func (s *Server) uiStart(w http.ResponseWriter, r *http.Request, q *uiReq) {
	s.runAction(w, r, q, func(ctx context.Context, id int64) (string, error) {
		_, err := s.ctl.Start(ctx, id)
		s.noteUI(ctx, err, q, "started now", id)
		return fmt.Sprintf("Run %d started now.", id), err
	})
}

func (s *Server) uiReschedule(w http.ResponseWriter, r *http.Request, q *uiReq) {
	s.runAction(w, r, q, func(ctx context.Context, id int64) (string, error) {
		loc := time.UTC
		if tz := strings.TrimSpace(r.FormValue("tz")); tz != "" && tz != "UTC" {
			l, err := time.LoadLocation(tz)
			if err != nil {
				return "", &store.ArgumentError{Field: "tz", Message: fmt.Sprintf("unknown time zone %q", tz)}
			}
			loc = l
		}
		at, err := parseLocal(strings.TrimSpace(r.FormValue("start_at")), loc)
		if err != nil {
			return "", &store.ArgumentError{Field: "start_at", Message: "must be a date and time such as 2026-01-02T15:04"}
		}
		_, err = s.ctl.Reschedule(ctx, id, at.UTC())
		s.noteUI(ctx, err, q, "rescheduled", id)
		return fmt.Sprintf("Run %d rescheduled for %s.", id, at.UTC().Format("2006-01-02 15:04:05 UTC")), err
	})
}
