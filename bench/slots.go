package bench

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/dripflow/dripflow/pkg/metrics"
)

// The worker's own measure of its slots: dripflow_worker_busy_seconds_total
// counts the time its handlers spent on batch tasks, claim to commit. The
// batch rows cannot show that on the SQL store, where a checkpoint in the
// data's transaction is written before the COMMIT.

// freeAddr returns a loopback address with a port free right now, for a
// process's metrics listener the benchmark must find again.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// scrapeBusy reads dripflow_worker_busy_seconds_total from a process's
// /metrics at addr.
func scrapeBusy(ctx context.Context, addr string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("scrape worker metrics: %w", err)
	}
	defer resp.Body.Close()
	v, ok, err := metricValue(bufio.NewScanner(resp.Body), "dripflow_worker_busy_seconds_total")
	if err != nil || !ok {
		return 0, fmt.Errorf("scrape worker metrics: dripflow_worker_busy_seconds_total not found (%v)", err)
	}
	return time.Duration(v * float64(time.Second)), nil
}

// metricValue finds an unlabelled sample of name in Prometheus text format.
func metricValue(sc *bufio.Scanner, name string) (float64, bool, error) {
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return v, err == nil, err
		}
	}
	return 0, false, sc.Err()
}

// busyInProcess reads this process's own counter (the in-process shape).
func busyInProcess() time.Duration {
	var m dto.Metric
	if err := metrics.WorkerBusy.Write(&m); err != nil {
		return 0
	}
	return time.Duration(m.GetCounter().GetValue() * float64(time.Second))
}
