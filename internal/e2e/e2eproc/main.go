// Command e2eproc is a worker, scheduler or web process ("e2eproc
// worker|scheduler|web [flags]") with the example and the process-test
// definitions.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	_ "github.com/dripflow/dripflow/examples"
	_ "github.com/dripflow/dripflow/internal/e2e/e2edefs"
	_ "github.com/dripflow/dripflow/pkg/connectors/all"
	"github.com/dripflow/dripflow/pkg/run"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: e2eproc worker|scheduler|web [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "worker":
		err = run.Worker(ctx, os.Args[2:])
	case "scheduler":
		err = run.Scheduler(ctx, os.Args[2:])
	case "web":
		err = run.Web(ctx, os.Args[2:])
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, os.Args[1]+":", err)
		os.Exit(1)
	}
}
