// Command dripflow-bench measures dripflow against a single SQL statement, a
// hand-written loop and plain asynq, on local PostgreSQL and Redis, and
// prints a table (`make bench`; see bench/doc.go and docs/performance.md).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/dripflow/dripflow/bench"
)

func main() {
	if bench.IsProcess() {
		os.Exit(bench.ProcessMain())
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := bench.ParseFlags(os.Args[1:], os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "dripflow-bench:", err)
		os.Exit(2)
	}
	cfg.Command = "dripflow-bench " + strings.Join(os.Args[1:], " ")
	cfg.Progress = os.Stderr
	res, err := bench.Run(ctx, cfg)
	if res != nil {
		res.WriteTable(os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "dripflow-bench:", err)
		os.Exit(1)
	}
}
