// Command web serves dripflow's API, UI and /monitoring with the example definitions.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	_ "github.com/dripflow/dripflow/examples"           // registers the example definitions
	_ "github.com/dripflow/dripflow/pkg/connectors/all" // registers every connector kind
	"github.com/dripflow/dripflow/pkg/run"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run.Web(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "web:", err)
		os.Exit(1)
	}
}
