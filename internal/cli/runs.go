// Package cli implements the dripflow command's run and flow control over
// the HTTP API: `dripflow runs list|start|show|pause|resume|cancel|retry|watch`
// and `dripflow flows list|show|apply|validate|activate|deactivate|trigger|delete`,
// and its generators (`dripflow new`, `dripflow init`).
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dripflow/dripflow/pkg/api"
	"github.com/dripflow/dripflow/pkg/client"
	"github.com/dripflow/dripflow/pkg/keyset"
)

// Exit codes of `dripflow runs`.
const (
	ExitOK        = 0
	ExitError     = 1 // the request failed (network, auth, bad input, conflict)
	ExitUsage     = 2
	ExitFailed    = 3 // the watched run ended failed
	ExitCancelled = 4 // the watched run ended cancelled
)

// Env is what the commands read besides their args.
type Env struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	// IsTerminal says whether Stdout is a terminal (a live bar) or not (one
	// line per change).
	IsTerminal bool
}

const runsUsage = `usage: dripflow runs <command> [flags]

commands:
  list [--status S,…] [--definition D] [--kind backfill|flow] [--mine] [--limit N] [--cursor C]
  start DEFINITION [--params JSON] [--param NAME=VALUE|NAME=@FILE …] [--batch-size N] [--max-in-flight N] [--rows-per-second N]
        [--sleep-ms N] [--max-attempts N] [--error-budget N] [--batch-timeout DURATION]
        [--target-batch-ms N [--min-batch-size N] [--max-batch-size N]]   adaptive batch size
        [--start-at RFC3339] [--watch]
        [--dry-run [--dry-run-batches N]]   try the first N batches (default 3), rolled back; no run
  show RUN [--timeline]              --timeline: who did what, failed attempts, the scheduler's decisions
  pause RUN | resume RUN | cancel RUN
  start-now RUN                      start a scheduled run at once
  reschedule RUN --at RFC3339        move a scheduled run's start
  retry RUN [--batch BATCH]
  watch RUN

flags for every command:
  --url URL        the dripflow web server (DRIPFLOW_URL, default http://127.0.0.1:8080)
  --token TOKEN    bearer token (DRIPFLOW_TOKEN)
  --output FORMAT  text or json

exit codes: 0 ok, 1 request failed, 2 usage, 3 watched run failed, 4 watched run cancelled
`

// Runs runs `dripflow runs …` and returns the exit code.
func Runs(ctx context.Context, args []string, env Env) int {
	if env.Getenv == nil {
		env.Getenv = os.Getenv
	}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(env.Stderr, runsUsage)
		if len(args) == 0 {
			return ExitUsage
		}
		return ExitOK
	}
	cmd, rest := args[0], args[1:]
	fs := flag.NewFlagSet("runs "+cmd, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	url := fs.String("url", envOr(env.Getenv, "DRIPFLOW_URL", "http://127.0.0.1:8080"), "dripflow web server")
	token := fs.String("token", env.Getenv("DRIPFLOW_TOKEN"), "bearer token")
	output := fs.String("output", "text", "text or json")
	var (
		status, definition, cursor, params, startAt, batch string
		kind                                               string
		paramFlags                                         paramList
		mine, watch                                        bool
		limit, batchSize, maxInFlight, rps                 int
		maxAttempts, errorBudget                           int
		minBatchSize, maxBatchSize                         int
		targetBatchMS                                      int64
		sleepMS                                            int64
		batchTimeout                                       time.Duration
		dry                                                *dryRunFlags
	)
	var withTimeline bool
	switch cmd {
	case "list":
		fs.StringVar(&status, "status", "", "comma-separated run states")
		fs.StringVar(&definition, "definition", "", "definition name")
		fs.StringVar(&kind, "kind", "", "backfill or flow: only runs of that kind")
		fs.BoolVar(&mine, "mine", false, "only my runs")
		fs.IntVar(&limit, "limit", 20, "runs per page")
		fs.StringVar(&cursor, "cursor", "", "next_cursor of the previous page")
	case "start":
		fs.StringVar(&params, "params", "", "params as a JSON object")
		fs.Var(&paramFlags, "param", "one param as NAME=VALUE, or NAME=@FILE for a file's text (a CSV); repeatable")
		fs.IntVar(&batchSize, "batch-size", 0, "records per batch (default: the definition's)")
		fs.IntVar(&maxInFlight, "max-in-flight", 0, "batches queued or running at once")
		fs.IntVar(&rps, "rows-per-second", 0, "throttle")
		fs.Int64Var(&sleepMS, "sleep-ms", -1, "pause between batches")
		fs.IntVar(&maxAttempts, "max-attempts", 0, "attempts per batch before it fails (default: the definition's)")
		fs.IntVar(&errorBudget, "error-budget", 0, "stop the run after this many failed batches (0: never early)")
		fs.DurationVar(&batchTimeout, "batch-timeout", 0, "bound one attempt of a batch, such as 30s or 2m (0: none)")
		fs.Int64Var(&targetBatchMS, "target-batch-ms", 0, "adapt the batch size so each batch takes about this many ms (10..600000; 0: off), starting from --batch-size")
		fs.IntVar(&minBatchSize, "min-batch-size", 0, "least batch size of an adaptive run (default: batch size / 100)")
		fs.IntVar(&maxBatchSize, "max-batch-size", 0, "greatest batch size of an adaptive run (default: batch size × 100)")
		fs.StringVar(&startAt, "start-at", "", "start later (RFC 3339 time)")
		fs.BoolVar(&watch, "watch", false, "follow the run until it ends")
		dry = startDryRunFlags(fs) // dryrun.go
	case "retry":
		fs.StringVar(&batch, "batch", "", "retry only this batch")
	case "reschedule":
		fs.StringVar(&startAt, "at", "", "the new start (RFC 3339 time)")
	case "show":
		fs.BoolVar(&withTimeline, "timeline", false, "also print the run's timeline, oldest first")
	case "pause", "resume", "cancel", "watch", "start-now":
	default:
		fmt.Fprintf(env.Stderr, "%s\n\n%s", unknownCommand("dripflow runs", cmd, runsCommands), runsUsage)
		return ExitUsage
	}
	// Positional arguments may come before or after the flags.
	pos, code, ok := parseArgs(fs, rest, env.Stderr, "dripflow runs "+cmd, "dripflow runs help", runsUsage)
	if !ok {
		return code
	}
	if *output != "text" && *output != "json" {
		fmt.Fprintf(env.Stderr, "dripflow runs %s: --output must be text or json\n", cmd)
		return ExitUsage
	}
	want := map[string]int{"list": 0, "start": 1}[cmd]
	if cmd != "list" && cmd != "start" {
		want = 1
	}
	if len(pos) != want {
		fmt.Fprintf(env.Stderr, "dripflow runs %s: want %d argument(s), got %d\n\n%s", cmd, want, len(pos), runsUsage)
		return ExitUsage
	}
	if cmd != "list" && cmd != "start" {
		if err := checkRunID(pos[0]); err != nil {
			fmt.Fprintf(env.Stderr, "dripflow runs %s: %v\n", cmd, err)
			return ExitUsage
		}
	}
	c := client.New(*url, *token).WithUserAgent(cliUserAgent)
	o := out{Env: env, json: *output == "json", url: *url}
	var err error
	switch cmd {
	case "list":
		var page api.Page[api.Run]
		if kind != "" && kind != "backfill" && kind != "flow" {
			fmt.Fprintf(env.Stderr, "dripflow runs list: --kind must be backfill or flow, not %q\n", kind)
			return ExitUsage
		}
		opts := client.ListRunsOptions{Definition: definition, Kind: kind, Mine: mine, Limit: limit, Cursor: cursor}
		if status != "" {
			opts.Status = strings.Split(status, ",")
		}
		if page, err = c.ListRuns(ctx, opts); err == nil {
			o.runs(page)
		}
	case "start":
		req := api.CreateRun{Definition: pos[0]}
		if params != "" {
			if !json.Valid([]byte(params)) {
				fmt.Fprintln(env.Stderr, "dripflow runs start: --params is not valid JSON")
				return ExitUsage
			}
			req.Params = json.RawMessage(params)
		}
		if len(paramFlags) > 0 {
			merged, perr := paramFlags.merge(ctx, c, pos[0], req.Params)
			if perr != nil {
				fmt.Fprintf(env.Stderr, "dripflow runs start: %v\n", perr)
				return ExitUsage
			}
			req.Params = merged
		}
		if batchSize > 0 {
			req.BatchSize = &batchSize
		}
		if maxInFlight > 0 {
			req.MaxInFlight = &maxInFlight
		}
		if rps > 0 || flagSet(fs, "rows-per-second") {
			// An explicit 0 is "unlimited", not the server's default.
			req.RowsPerSecond = &rps
		}
		if sleepMS >= 0 {
			req.SleepMS = &sleepMS
		}
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if set["max-attempts"] {
			req.MaxAttempts = &maxAttempts
		}
		if set["error-budget"] {
			req.ErrorBudget = &errorBudget
		}
		if set["target-batch-ms"] {
			req.TargetBatchMS = &targetBatchMS
		}
		if set["min-batch-size"] {
			req.MinBatchSize = &minBatchSize
		}
		if set["max-batch-size"] {
			req.MaxBatchSize = &maxBatchSize
		}
		if set["batch-timeout"] {
			if batchTimeout < 0 || batchTimeout%time.Millisecond != 0 {
				fmt.Fprintln(env.Stderr, "dripflow runs start: --batch-timeout must be 0 (none) or a positive duration in whole milliseconds, such as 30s")
				return ExitUsage
			}
			ms := batchTimeout.Milliseconds()
			req.BatchTimeoutMS = &ms
		}
		if startAt != "" {
			t, perr := time.Parse(time.RFC3339, startAt)
			if perr != nil {
				fmt.Fprintln(env.Stderr, "dripflow runs start: --start-at must be an RFC 3339 time such as 2026-12-01T09:00:00+01:00")
				return ExitUsage
			}
			req.StartAt = &t
		}
		if dry.set(fs) {
			return dry.run(ctx, c, o, req, watch)
		}
		var r api.Run
		if r, err = c.CreateRun(ctx, req); err == nil {
			if watch {
				return o.watch(ctx, c, r.ID)
			}
			o.run(r)
		}
	case "show":
		var r api.Run
		if r, err = c.Run(ctx, pos[0]); err == nil {
			var failed api.Page[api.Batch]
			if r.Progress.Batches["failed"] > 0 || r.Error != "" {
				// Best effort: the run itself is what was asked for.
				failed, _ = c.Batches(ctx, r.ID, []string{"failed"}, 5, "")
			}
			if withTimeline {
				err = o.runWithTimeline(ctx, c, r, failed.Items)
				break
			}
			o.run(r, failed.Items...)
		}
	case "reschedule":
		t, perr := time.Parse(time.RFC3339, startAt)
		if perr != nil {
			fmt.Fprintln(env.Stderr, "dripflow runs reschedule: --at must be an RFC 3339 time such as 2026-12-01T09:00:00+01:00")
			return ExitUsage
		}
		var r api.Run
		if r, err = c.Reschedule(ctx, pos[0], t); err == nil {
			o.run(r)
		}
	case "pause", "resume", "cancel", "start-now":
		do := map[string]func(context.Context, string) (api.Run, error){"pause": c.Pause, "resume": c.Resume, "cancel": c.Cancel, "start-now": c.Start}[cmd]
		var r api.Run
		if r, err = do(ctx, pos[0]); err == nil {
			o.run(r)
		}
	case "retry":
		var res api.Retried
		if batch != "" {
			res, err = c.RetryBatch(ctx, pos[0], batch)
		} else {
			res, err = c.Retry(ctx, pos[0])
		}
		if err == nil {
			if o.json {
				o.print(res)
			} else {
				fmt.Fprintf(env.Stdout, "retried %d batch(es) of run %s; it is %s\n", res.Retried, res.Run.ID, res.Run.Status)
			}
		} else if why := nothingToRetry(ctx, c, pos[0], err); why != "" && !o.json {
			fmt.Fprintf(env.Stderr, "dripflow runs retry: %s\n", why)
			return ExitError
		}
	case "watch":
		return o.watch(ctx, c, pos[0])
	}
	if err != nil {
		return o.fail(cmd, err)
	}
	return ExitOK
}

func envOr(getenv func(string) string, name, def string) string {
	if v := getenv(name); v != "" {
		return v
	}
	return def
}

// runsCommands are the commands of `dripflow runs`.
var runsCommands = []string{"list", "start", "show", "pause", "resume", "cancel", "start-now", "reschedule", "retry", "watch", "help"}

// nothingToRetry explains a refused retry by the run's state, or "".
func nothingToRetry(ctx context.Context, c *client.Client, id string, err error) string {
	var ae *client.Error
	if !errors.As(err, &ae) || ae.Code != "conflict" {
		return ""
	}
	r, gerr := c.Run(ctx, id)
	if gerr != nil {
		return ""
	}
	switch r.Status {
	case "succeeded":
		return fmt.Sprintf("run %s succeeded: it has no failed batch to retry", r.ID)
	case "cancelled", "cancelling":
		return fmt.Sprintf("run %s is %s: its batches will not run again; start a new run (dripflow runs start %s)", r.ID, r.Status, r.Definition)
	}
	if r.Progress.Batches["failed"] == 0 {
		return fmt.Sprintf("run %s is %s and has no failed batch to retry", r.ID, r.Status)
	}
	return ""
}

type out struct {
	Env
	json bool
	url  string
	// group is the command group for error messages: "runs" (the
	// default) or "flows".
	group string
}

func (o out) print(v any) {
	enc := json.NewEncoder(o.Stdout)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func (o out) fail(cmd string, err error) int {
	var ae *client.Error
	if o.json && errors.As(err, &ae) {
		enc := json.NewEncoder(o.Stderr)
		enc.Encode(api.Error{Error: api.ErrorDetail{Code: ae.Code, Message: ae.Message, Field: ae.Field, RunID: ae.RunID}})
		return ExitError
	}
	group := o.group
	if group == "" {
		group = "runs"
	}
	if msg, ok := unreachable(err, o.url); ok {
		fmt.Fprintf(o.Stderr, "dripflow %s %s: %s\n", group, cmd, msg)
	} else {
		fmt.Fprintf(o.Stderr, "dripflow %s %s: %v\n", group, cmd, err)
	}
	return ExitError
}

func (o out) runs(p api.Page[api.Run]) {
	if o.json {
		o.print(p)
		return
	}
	tw := tabwriter.NewWriter(o.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tDEFINITION\tSTATUS\tPROGRESS\tBY\tCREATED")
	for _, r := range p.Items {
		status := r.Status
		if r.Held != nil {
			status += " (held)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Definition, status, progressText(r), r.CreatedBy, cliTime(r.CreatedAt))
	}
	tw.Flush()
	if p.NextCursor != "" {
		fmt.Fprintf(o.Stdout, "more: --cursor %s\n", p.NextCursor)
	}
}

func progressText(r api.Run) string {
	p := r.Progress
	switch {
	case p.Total >= 0 && p.Percent >= 0:
		est := ""
		if p.TotalEstimated {
			est = "~"
		}
		return fmt.Sprintf("%.1f%% (%s/%s%s)", p.Percent, thousands(p.Processed), est, thousands(p.Total))
	default:
		return fmt.Sprintf("%s rows", thousands(p.Processed))
	}
}

// cliTime writes a time in the local zone with its offset, one format for
// every command.
func cliTime(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05 -07:00") }

// run prints a run and, when given, its failed batches' errors.
func (o out) run(r api.Run, failed ...api.Batch) {
	if o.json {
		o.print(r)
		return
	}
	tw := tabwriter.NewWriter(o.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "run\t%s\n", r.ID)
	fmt.Fprintf(tw, "definition\t%s (%s)\n", r.Definition, r.Kind)
	fmt.Fprintf(tw, "status\t%s\n", r.Status)
	if h := r.Held; h != nil {
		fmt.Fprintf(tw, "held\t%s since %s (check %s): no new batch starts until it passes\n", h.Reason, cliTime(h.Since), h.Check)
	}
	fmt.Fprintf(tw, "progress\t%s\n", progressText(r))
	if o := r.Options; o.TargetBatchMS > 0 {
		now := ""
		if r.BatchSizeNow > 0 {
			now = fmt.Sprintf(", now %s per batch", thousands(int64(r.BatchSizeNow)))
		}
		fmt.Fprintf(tw, "batch size\tadaptive: target %s%s (from %s, between %s and %s)\n", time.Duration(o.TargetBatchMS)*time.Millisecond,
			now, thousands(int64(o.BatchSize)), thousands(int64(o.MinBatchSize)), thousands(int64(o.MaxBatchSize)))
	}
	b := r.Progress.Batches
	fmt.Fprintf(tw, "batches\t%d succeeded, %d failed, %d running, %d queued, %d pending, %d cancelled\n",
		b["succeeded"], b["failed"], b["running"], b["enqueued"], b["pending"], b["cancelled"])
	if r.Progress.Rate > 0 {
		fmt.Fprintf(tw, "rate\t%s rows/s\n", thousands(int64(r.Progress.Rate+0.5)))
	}
	if r.Progress.ETA > 0 {
		fmt.Fprintf(tw, "eta\t%s\n", (time.Duration(r.Progress.ETA) * time.Second).String())
	}
	fmt.Fprintf(tw, "params\t%s\n", string(r.Params))
	fmt.Fprintf(tw, "created by\t%s at %s\n", r.CreatedBy, cliTime(r.CreatedAt))
	if r.StartedAt != nil {
		fmt.Fprintf(tw, "started\t%s\n", cliTime(*r.StartedAt))
	}
	if r.FinishedAt != nil {
		fmt.Fprintf(tw, "finished\t%s\n", cliTime(*r.FinishedAt))
	}
	if r.Error != "" {
		fmt.Fprintf(tw, "error\t%s\n", r.Error)
	}
	for i, c := range r.Options.HealthChecks {
		label := ""
		if i == 0 {
			label = "health checks"
		}
		fmt.Fprintf(tw, "%s\t%s\n", label, c.String())
	}
	tw.Flush()
	if len(failed) > 0 {
		fmt.Fprintln(o.Stdout, "failed batches:")
		for _, b := range failed {
			msg, _, _ := strings.Cut(b.Error, "\n")
			size := ""
			if b.Size > 0 {
				size = fmt.Sprintf(" (%s keys)", thousands(int64(b.Size)))
			}
			fmt.Fprintf(o.Stdout, "  #%s %s%s after %d attempt(s): %s\n", b.ID, keyset.HumanRange(b.Lo, b.Hi), size, b.Attempts, msg)
		}
		if n := r.Progress.Batches["failed"]; n > int64(len(failed)) {
			fmt.Fprintf(o.Stdout, "  … %d more: dripflow runs show %s --output json, or the run page\n", n-int64(len(failed)), r.ID)
		}
	}
}

// watch follows a run until it ends; the exit code says how it ended.
func (o out) watch(ctx context.Context, c *client.Client, id string) int {
	var last api.Run
	err := c.Watch(ctx, id, func(r api.Run) error {
		last = r
		switch {
		case o.json:
			json.NewEncoder(o.Stdout).Encode(r)
		case o.IsTerminal:
			fmt.Fprintf(o.Stdout, "\r\033[K%s", bar(r))
		default:
			fmt.Fprintln(o.Stdout, bar(r))
		}
		return nil
	})
	if o.IsTerminal && !o.json {
		fmt.Fprintln(o.Stdout)
	}
	if err != nil {
		return o.fail("watch", err)
	}
	switch last.Status {
	case "failed":
		if !o.json {
			fmt.Fprintf(o.Stderr, "run %s failed: %s\n", last.ID, last.Error)
		}
		return ExitFailed
	case "cancelled":
		return ExitCancelled
	}
	return ExitOK
}

// bar draws "run 7 running [#########-----------]  45.0% 4500/10000 1200 rows/s eta 4s".
func bar(r api.Run) string {
	const width = 30
	p := r.Progress
	filled := 0
	if p.Percent > 0 {
		filled = int(p.Percent / 100 * width)
	}
	s := fmt.Sprintf("run %s %-10s [%s%s] %s", r.ID, r.Status, strings.Repeat("#", filled), strings.Repeat("-", width-filled), progressText(r))
	if p.Rate > 0 {
		s += fmt.Sprintf(" %s rows/s", thousands(int64(p.Rate+0.5)))
	}
	if p.ETA > 0 {
		s += " eta " + (time.Duration(p.ETA) * time.Second).String()
	}
	return s
}
