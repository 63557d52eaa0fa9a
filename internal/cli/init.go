package cli

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
)

// semverRE matches a module version such as v1.2.3 or v1.2.3-rc.1.
var semverRE = regexp.MustCompile(`^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$`)

// Init runs `dripflow init MODULE`: it scaffolds an application module with
// mains for worker, scheduler, web and dev importing its definitions, a
// configuration sample, a Dockerfile and a compose file.
func Init(args []string, env Env) int {
	fs := flag.NewFlagSet("init", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	dir := fs.String("dir", ".", "where to write the module")
	local := fs.String("dripflow-path", "", "use a local dripflow checkout (a replace directive) instead of the published module")
	version := fs.String("dripflow-version", "", "require this published dripflow version (vX.Y.Z); default: the version this dripflow was installed at")
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
		fmt.Fprint(env.Stderr, "usage: dripflow init MODULE [--dir DIR] [--dripflow-path PATH | --dripflow-version vX.Y.Z]\n")
		return ExitUsage
	}
	module := pos[0]
	dep, err := resolveDependency(*local, *version)
	if err != nil {
		fmt.Fprintln(env.Stderr, "dripflow init:", err)
		return ExitUsage
	}
	data := map[string]any{"Module": module, "Version": dep.version, "Replace": dep.replace, "Why": dep.why}
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

require github.com/dripflow/dripflow {{.Version}}
{{if .Replace}}
// {{.Why}}
// To use a published release instead, delete this line and run
// go get github.com/dripflow/dripflow@latest.
replace github.com/dripflow/dripflow => {{.Replace}}
{{end}}`

// dependency is how a new application's go.mod finds dripflow.
type dependency struct {
	version string // the require line's version
	replace string // a local checkout, or ""
	why     string // the comment above the replace directive
}

// dripflowModule is dripflow's module path.
const dripflowModule = "github.com/dripflow/dripflow"

// resolveDependency picks what the new go.mod requires, so that `go mod
// tidy` resolves it: a local checkout (--dripflow-path), a published
// version (--dripflow-version), the version this binary was installed at
// (go install …@vX.Y.Z), or, for a binary built from a checkout, that
// checkout. It never writes a version nobody can download.
func resolveDependency(local, version string) (dependency, error) {
	if local != "" && version != "" {
		return dependency{}, errors.New("--dripflow-path and --dripflow-version exclude each other")
	}
	if version != "" {
		if !semverRE.MatchString(version) {
			return dependency{}, fmt.Errorf("--dripflow-version %q is not a version such as v1.2.3", version)
		}
		return dependency{version: version}, nil
	}
	if local != "" {
		abs, err := filepath.Abs(local)
		if err != nil {
			return dependency{}, err
		}
		if !isDripflowCheckout(abs) {
			return dependency{}, fmt.Errorf("--dripflow-path %s: no go.mod of module %s there", abs, dripflowModule)
		}
		return dependency{version: "v0.0.0", replace: abs, why: "dripflow from a local checkout (dripflow init --dripflow-path)."}, nil
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Path == dripflowModule && semverRE.MatchString(bi.Main.Version) && !strings.Contains(bi.Main.Version, "+dirty") {
		return dependency{version: bi.Main.Version}, nil
	}
	// Built from a checkout: this file's path at build time, unless the
	// build trimmed paths.
	if _, file, _, ok := runtime.Caller(0); ok {
		root := filepath.Dir(filepath.Dir(filepath.Dir(file))) // internal/cli/init.go
		if filepath.IsAbs(root) && isDripflowCheckout(root) {
			return dependency{version: "v0.0.0", replace: root, why: "dripflow from the checkout this dripflow command was built from."}, nil
		}
	}
	return dependency{}, errors.New("this dripflow was not installed at a release version and its source checkout is not found: " +
		"pass --dripflow-version vX.Y.Z (a published release) or --dripflow-path DIR (a dripflow checkout)")
}

// isDripflowCheckout reports whether dir holds dripflow's go.mod.
func isDripflowCheckout(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	first, _, _ := bytes.Cut(b, []byte("\n"))
	return strings.TrimSpace(string(first)) == "module "+dripflowModule
}

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
