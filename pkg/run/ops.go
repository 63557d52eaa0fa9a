package run

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/dripflow/dripflow/internal/app"
)

// opsHandler serves /metrics, /healthz and /readyz for a worker or a
// scheduler.
func opsHandler(a *app.App) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		problems := map[string]string{}
		if err := a.Store.Ping(ctx); err != nil {
			problems["store"] = "unreachable"
		}
		if err := a.Redis.Ping(ctx).Err(); err != nil {
			problems["redis"] = "unreachable"
		}
		w.Header().Set("Content-Type", "application/json")
		if len(problems) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			json.NewEncoder(w).Encode(map[string]any{"status": "unavailable", "problems": problems})
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"status": "ready"})
	})
	return mux
}

// serveOps runs the ops endpoints in the background until ctx ends.
func serveOps(ctx context.Context, a *app.App) {
	if a.Config.MetricsAddr == "" {
		return
	}
	go func() {
		if err := serve(ctx, a.Config.MetricsAddr, opsHandler(a), a.Log.Named("ops")); err != nil {
			a.Log.Error("ops endpoints stopped", zap.Error(err))
		}
	}()
}
