// Command dripflow is dripflow's command line: dev mode, store migrations,
// demo data, generators, and run and flow control over the HTTP API.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	_ "github.com/dripflow/dripflow/examples" // registers the example definitions
	"github.com/dripflow/dripflow/examples/demo"
	"github.com/dripflow/dripflow/internal/cli"
	_ "github.com/dripflow/dripflow/pkg/connectors/all" // registers every connector kind
	"github.com/dripflow/dripflow/pkg/run"
)

const usage = `usage: dripflow <command> [flags]

commands:
  dev [--http-addr A] [--seed-rows N] [--data-dir D]
                     scheduler, worker and web in one process on an embedded
                     Redis and a SQLite file, with demo data
  migrate [--demo]   create or upgrade the store's tables in DRIPFLOW_DATABASE_URL
                     (--demo: also the example tables users and user_backups)
  seed [--rows N]    insert N demo users (default 100000)
  runs …             list, start, show, pause, resume, cancel, retry and watch runs
                     over the HTTP API (dripflow runs help)
  flows …            list, show, apply -f FILE, validate -f FILE, activate, deactivate,
                     trigger and delete flows over the HTTP API (dripflow flows help)
  new backfill NAME [--element | --range] [--dir app/backfills]
  new flow NAME [--dir app/flows]
                     write a definition that compiles, in your definitions package
  new flow NAME --yaml [--dir flows]
                     write a commented flow spec to apply with dripflow flows apply
  init MODULE [--dir DIR] [--dripflow-version vX.Y.Z | --dripflow-path DIR]
                     scaffold an application: mains for worker, scheduler, web and
                     dev, a configuration sample, a Dockerfile and a compose file
  completion bash|zsh|fish
                     print a script that completes commands and flags in that shell
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "dev":
		err = run.DevWith(ctx, os.Args[2:], os.Stdout, &run.DevOptions{Demo: demo.Dev})
	case "runs":
		os.Exit(cli.Runs(ctx, os.Args[2:], cli.Env{Stdout: os.Stdout, Stderr: os.Stderr, IsTerminal: isTerminal(os.Stdout)}))
	case "flows":
		os.Exit(cli.Flows(ctx, os.Args[2:], cli.Env{Stdout: os.Stdout, Stderr: os.Stderr, IsTerminal: isTerminal(os.Stdout)}))
	case "new":
		os.Exit(cli.New(os.Args[2:], cli.Env{Stdout: os.Stdout, Stderr: os.Stderr}))
	case "init":
		os.Exit(cli.Init(os.Args[2:], cli.Env{Stdout: os.Stdout, Stderr: os.Stderr}))
	case "completion":
		os.Exit(cli.Completion(os.Args[2:], cli.Env{Stdout: os.Stdout, Stderr: os.Stderr}))
	case "migrate":
		err = run.MigrateWith(ctx, os.Args[2:], os.Stdout, &run.DevOptions{Demo: demo.Dev})
	case "seed":
		err = run.Seed(ctx, os.Args[2:], os.Stdout, demo.Dev)
	case "help", "-h", "--help":
		fmt.Print(usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "%s\n\n%s", cli.UnknownCommand(os.Args[1]), usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "dripflow "+os.Args[1]+":", err)
		os.Exit(1)
	}
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
