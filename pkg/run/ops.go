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

// Default addresses of the ops endpoints: distinct, so a worker and a
// scheduler on one host do not collide.
const (
	DefaultWorkerOpsAddr    = ":9090"
	DefaultSchedulerOpsAddr = ":9091"
)

// opsAddr is where the ops endpoints listen: the configured address, the
// process's default when none is, nowhere for "off".
func opsAddr(configured, def string) string {
	switch configured {
	case "off":
		return ""
	case "":
		return def
	}
	return configured
}

// serveOps runs the ops endpoints in the background until ctx ends, on the
// configured address or def.
func serveOps(ctx context.Context, a *app.App, def string) {
	addr := opsAddr(a.Config.MetricsAddr, def)
	if addr == "" {
		return
	}
	go func() {
		if err := serve(ctx, addr, opsHandler(a), a.Log.Named("ops")); err != nil {
			a.Log.Error("ops endpoints stopped", zap.Error(err))
		}
	}()
}
