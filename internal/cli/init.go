package cli

import (
	"flag"
	"fmt"
	"path/filepath"
	"strings"
)

// Init runs `dripflow init MODULE`: it scaffolds an application module with
// mains for worker, scheduler, web and dev importing its definitions, a
// configuration sample, a Dockerfile and a compose file.
func Init(args []string, env Env) int {
	fs := flag.NewFlagSet("init", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	dir := fs.String("dir", ".", "where to write the module")
	local := fs.String("dripflow-path", "", "use a local dripflow checkout (a replace directive) instead of the published module")
	var pos []string
	rest := args
	for {
		if err := fs.Parse(rest); err != nil {
			return ExitUsage
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(pos) != 1 || strings.ContainsAny(pos[0], " \t") || pos[0] == "" {
		fmt.Fprint(env.Stderr, "usage: dripflow init MODULE [--dir DIR] [--dripflow-path PATH]\n")
		return ExitUsage
	}
	module := pos[0]
	data := map[string]any{"Module": module, "Replace": ""}
	if *local != "" {
		abs, err := filepath.Abs(*local)
		if err != nil {
			fmt.Fprintln(env.Stderr, "dripflow init:", err)
			return ExitError
		}
		data["Replace"] = abs
	}
	files := []struct{ path, tmpl string }{
		{"go.mod", goModTmpl},
		{"app/backfills/doc.go", strings.ReplaceAll(docTmpl, "{{.Package}}", "backfills")},
		{"app/flows/doc.go", strings.ReplaceAll(docTmpl, "{{.Package}}", "flows")},
		{"cmd/worker/main.go", mainTmpl("worker", "Worker", "run.Worker(ctx, os.Args[1:])")},
		{"cmd/scheduler/main.go", mainTmpl("scheduler", "Scheduler", "run.Scheduler(ctx, os.Args[1:])")},
		{"cmd/web/main.go", mainTmpl("web", "Web", "run.Web(ctx, os.Args[1:])")},
		{"cmd/dev/main.go", mainTmpl("dev", "Dev", "run.Dev(ctx, os.Args[1:], os.Stdout)")},
		{"cmd/dripflow/main.go", mainTmpl("dripflow", "Migrate", "run.Migrate(ctx, os.Args[1:], os.Stdout)")},
		{"dripflow.env.sample", envSample},
		{"Dockerfile", dockerfileTmpl},
		{"docker-compose.yml", composeTmpl},
	}
	for _, f := range files {
		path := filepath.Join(*dir, f.path)
		if err := writeGo(path, f.tmpl, data, false); err != nil {
			fmt.Fprintln(env.Stderr, "dripflow init:", err)
			return ExitError
		}
		fmt.Fprintln(env.Stdout, "wrote", path)
	}
	fmt.Fprintf(env.Stdout, `
Next:
  cd %s && go mod tidy
  go run github.com/dripflow/dripflow/cmd/dripflow new backfill FixSomething   # or: new flow copy_something
  go run ./cmd/dev                      # UI on http://127.0.0.1:8080 (embedded Redis, SQLite)
`, *dir)
	return ExitOK
}

func mainTmpl(name, what, call string) string {
	doc := map[string]string{
		"worker":    "runs batches",
		"scheduler": "plans runs into batches",
		"web":       "serves the API, the UI and /monitoring",
		"dev":       "runs scheduler, worker and web in one process for development",
		"dripflow":  "migrates the store's schema (dripflow migrate)",
	}[name]
	body := call
	if name == "dripflow" {
		return `// Command dripflow ` + doc + `.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/dripflow/dripflow/pkg/run"
)

func main() {
	if len(os.Args) < 2 || os.Args[1] != "migrate" {
		fmt.Fprintln(os.Stderr, "usage: dripflow migrate")
		os.Exit(2)
	}
	if err := run.Migrate(context.Background(), os.Args[2:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "migrate:", err)
		os.Exit(1)
	}
}
`
	}
	return `// Command ` + name + ` ` + doc + ` with this application's definitions.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	_ "{{.Module}}/app/backfills" // registers the backfills
	_ "{{.Module}}/app/flows"     // registers the flows
	"github.com/dripflow/dripflow/pkg/run"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := ` + body + `; err != nil {
		fmt.Fprintln(os.Stderr, "` + name + `:", err)
		os.Exit(1)
	}
}
`
}

const goModTmpl = `module {{.Module}}

go 1.26

require github.com/dripflow/dripflow v0.0.0
{{if .Replace}}
replace github.com/dripflow/dripflow => {{.Replace}}
{{end}}`

const envSample = `# Copy to dripflow.env and adjust. Every setting can also be a flag.
DRIPFLOW_REDIS_URL=redis://127.0.0.1:6379/0
DRIPFLOW_DATABASE_URL=postgres://app:app@127.0.0.1:5432/app?sslmode=disable
# sql (checkpoints commit with your data) or redis
DRIPFLOW_STORE=sql
# name:token pairs for the API and the UI's login (tokens of 16+ characters)
DRIPFLOW_AUTH_TOKENS=ops:change-me-to-a-long-random-token
DRIPFLOW_LOG_FORMAT=json
DRIPFLOW_LOG_LEVEL=info
DRIPFLOW_WORKER_CONCURRENCY=8
DRIPFLOW_HTTP_ADDR=:8080
DRIPFLOW_METRICS_ADDR=:9090
`

const dockerfileTmpl = `# syntax=docker/dockerfile:1
FROM golang:1.26 AS build
WORKDIR /src
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /out/ ./cmd/...

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ /usr/local/bin/
USER nonroot
`

const composeTmpl = `services:
  redis:
    image: redis:7
  postgres:
    image: postgres:16
    environment:
      POSTGRES_USER: app
      POSTGRES_PASSWORD: app
      POSTGRES_DB: app
  migrate:
    build: .
    command: ["dripflow", "migrate"]
    env_file: dripflow.env
    depends_on: [postgres]
  scheduler:
    build: .
    command: ["scheduler"]
    env_file: dripflow.env
    depends_on: [redis, postgres, migrate]
  worker:
    build: .
    command: ["worker"]
    env_file: dripflow.env
    depends_on: [redis, postgres, migrate]
  web:
    build: .
    command: ["web"]
    env_file: dripflow.env
    ports: ["8080:8080"]
    depends_on: [redis, postgres, migrate]
`
