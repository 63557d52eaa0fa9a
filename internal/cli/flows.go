package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dripflow/dripflow/pkg/api"
	"github.com/dripflow/dripflow/pkg/client"
	"github.com/dripflow/dripflow/pkg/flows"
)

const flowsUsage = `usage: dripflow flows <command> [flags]

commands:
  list                               flows with origin (code or spec), version, runtime, watermark
  show NAME [--version N]            a flow; a spec flow's spec as YAML (--output yaml: the spec alone)
  apply -f FILE [--dry-run]          create or update a spec flow from a YAML or JSON file; prints
                                     "created", "unchanged" or the changed lines, and the version
                                     (--dry-run: validate and show the diff, change nothing)
  validate -f FILE                   check a spec against the server's connectors; stores nothing
  activate NAME | deactivate NAME    let the scheduler run the flow by its runtime, or stop it
  trigger NAME                       start a run now (refused while a run of the flow is live)
  delete NAME                        delete a spec flow (refused while a run of it is live; its
                                     versions and runs stay as history)

flags for every command:
  --url URL        the dripflow web server (DRIPFLOW_URL, default http://127.0.0.1:8080)
  --token TOKEN    bearer token (DRIPFLOW_TOKEN)
  --output FORMAT  text or json (show: also yaml)

A refused spec prints the failing field (sink.key, transforms[1].where, runtime).
exit codes: 0 ok, 1 request failed or spec refused, 2 usage
`

// flowsCommands are the commands of `dripflow flows`.
var flowsCommands = []string{"list", "show", "apply", "validate", "activate", "deactivate", "trigger", "delete", "help"}

// Flows runs `dripflow flows …` and returns the exit code.
func Flows(ctx context.Context, args []string, env Env) int {
	if env.Getenv == nil {
		env.Getenv = os.Getenv
	}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(env.Stderr, flowsUsage)
		if len(args) == 0 {
			return ExitUsage
		}
		return ExitOK
	}
	cmd, rest := args[0], args[1:]
	fs := flag.NewFlagSet("flows "+cmd, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	url := fs.String("url", envOr(env.Getenv, "DRIPFLOW_URL", "http://127.0.0.1:8080"), "dripflow web server")
	token := fs.String("token", env.Getenv("DRIPFLOW_TOKEN"), "bearer token")
	output := fs.String("output", "text", "text or json")
	var (
		file    string
		dryRun  bool
		version int64
	)
	want := 1
	switch cmd {
	case "list":
		want = 0
	case "show":
		fs.Int64Var(&version, "version", 0, "a stored version of a spec flow (default the latest)")
	case "apply":
		want = 0
		fs.StringVar(&file, "f", "", "the spec file (YAML or JSON)")
		fs.BoolVar(&dryRun, "dry-run", false, "validate and show the diff; change nothing")
	case "validate":
		want = 0
		fs.StringVar(&file, "f", "", "the spec file (YAML or JSON)")
	case "activate", "deactivate", "trigger", "delete":
	default:
		fmt.Fprintf(env.Stderr, "%s\n\n%s", unknownCommand("dripflow flows", cmd, flowsCommands), flowsUsage)
		return ExitUsage
	}
	pos, code, ok := parseArgs(fs, rest, env.Stderr, "dripflow flows "+cmd, "dripflow flows help", flowsUsage)
	if !ok {
		return code
	}
	if *output != "text" && *output != "json" && !(cmd == "show" && *output == "yaml") {
		fmt.Fprintf(env.Stderr, "dripflow flows %s: --output must be text or json%s\n", cmd, map[bool]string{true: " or yaml"}[cmd == "show"])
		return ExitUsage
	}
	if len(pos) != want {
		fmt.Fprintf(env.Stderr, "dripflow flows %s: want %d argument(s), got %d\n\n%s", cmd, want, len(pos), flowsUsage)
		return ExitUsage
	}
	if (cmd == "apply" || cmd == "validate") && file == "" {
		fmt.Fprintf(env.Stderr, "dripflow flows %s: -f FILE is required (the spec file, YAML or JSON)\n", cmd)
		return ExitUsage
	}
	f := flowsCmd{out: out{Env: env, json: *output == "json", group: "flows", url: *url}, c: client.New(*url, *token), yaml: *output == "yaml"}
	var err error
	switch cmd {
	case "list":
		err = f.list(ctx)
	case "show":
		err = f.show(ctx, pos[0], version)
	case "apply":
		err = f.apply(ctx, file, dryRun)
	case "validate":
		err = f.validate(ctx, file)
	case "activate", "deactivate":
		do := map[string]func(context.Context, string) (api.Flow, error){"activate": f.c.ActivateFlow, "deactivate": f.c.DeactivateFlow}[cmd]
		var fl api.Flow
		if fl, err = do(ctx, pos[0]); err == nil {
			if f.json {
				f.print(fl)
			} else {
				fmt.Fprintf(env.Stdout, "flow %s is %s\n", fl.Name, activeText(fl.Active))
			}
		}
	case "trigger":
		var r api.Run
		if r, err = f.c.TriggerFlow(ctx, pos[0]); err == nil {
			f.run(r)
		}
	case "delete":
		if err = f.c.DeleteFlow(ctx, pos[0]); err == nil {
			if f.json {
				f.print(map[string]any{"deleted": pos[0]})
			} else {
				fmt.Fprintf(env.Stdout, "deleted flow %s (its versions and runs are kept as history)\n", pos[0])
			}
		}
	}
	if err != nil {
		return f.fail(cmd, err)
	}
	return ExitOK
}

type flowsCmd struct {
	out
	c    *client.Client
	yaml bool
}

func activeText(active bool) string {
	if active {
		return "active"
	}
	return "inactive"
}

func (f flowsCmd) list(ctx context.Context) error {
	items, err := f.c.Flows(ctx)
	if err != nil {
		return err
	}
	if f.json {
		f.print(api.Page[api.Flow]{Items: items})
		return nil
	}
	tw := tabwriter.NewWriter(f.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tORIGIN\tVERSION\tSTATUS\tRUNTIME\tWATERMARK\tLAST RUN")
	for _, fl := range items {
		v := "-"
		if fl.Origin == api.OriginSpec {
			v = strconv.FormatInt(fl.Version, 10)
		}
		last := "-"
		if fl.LastRun != nil {
			last = fl.LastRun.ID + " " + fl.LastRun.Status
		}
		wm := fl.Watermark
		if wm == "" {
			wm = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", fl.Name, fl.Origin, v, activeText(fl.Active), fl.Runtime, wm, last)
	}
	return tw.Flush()
}

func (f flowsCmd) show(ctx context.Context, name string, version int64) error {
	if version > 0 {
		v, err := f.c.FlowVersion(ctx, name, version)
		if err != nil {
			return err
		}
		switch {
		case f.json:
			f.print(v)
		case f.yaml:
			return f.writeSpecYAML(v.Spec)
		default:
			fmt.Fprintf(f.Stdout, "flow %s version %d, by %s at %s\n", v.Name, v.Version, v.CreatedBy, v.CreatedAt.Local().Format(time.RFC3339))
			return f.writeSpecYAML(v.Spec)
		}
		return nil
	}
	fl, err := f.c.Flow(ctx, name)
	if err != nil {
		return err
	}
	switch {
	case f.json:
		f.print(fl)
		return nil
	case f.yaml:
		if fl.Origin != api.OriginSpec {
			return fmt.Errorf("flow %s is defined in code: it has no spec", name)
		}
		return f.writeSpecYAML(fl.Spec)
	}
	tw := tabwriter.NewWriter(f.Stdout, 0, 4, 2, ' ', 0)
	origin := fl.Origin
	if fl.Origin == api.OriginSpec {
		origin = fmt.Sprintf("spec, version %d", fl.Version)
	} else {
		origin += ", read-only here"
	}
	fmt.Fprintf(tw, "flow\t%s (%s)\n", fl.Name, origin)
	if fl.Description != "" {
		fmt.Fprintf(tw, "description\t%s\n", fl.Description)
	}
	fmt.Fprintf(tw, "status\t%s\n", activeText(fl.Active))
	fmt.Fprintf(tw, "runtime\t%s\n", fl.Runtime)
	if fl.Watermark != "" {
		fmt.Fprintf(tw, "watermark\t%s\n", fl.Watermark)
	}
	if fl.MissedTicks > 0 {
		fmt.Fprintf(tw, "missed ticks\t%d (a run was still live)\n", fl.MissedTicks)
	}
	if fl.LastRun != nil {
		fmt.Fprintf(tw, "last run\t%s %s (%s)\n", fl.LastRun.ID, fl.LastRun.Status, progressText(*fl.LastRun))
	}
	tw.Flush()
	if fl.Origin == api.OriginSpec {
		fmt.Fprintln(f.Stdout, "spec:")
		return f.writeSpecYAML(fl.Spec)
	}
	if len(fl.Config) > 0 {
		var b bytes.Buffer
		json.Indent(&b, fl.Config, "", "  ")
		fmt.Fprintf(f.Stdout, "config:\n%s\n", b.String())
	}
	return nil
}

// writeSpecYAML prints a stored spec as YAML.
func (f flowsCmd) writeSpecYAML(raw json.RawMessage) error {
	y, err := specYAML(raw)
	if err != nil {
		return err
	}
	_, err = f.Stdout.Write(y)
	return err
}

// specYAML renders a JSON spec as YAML, in the fields' order.
func specYAML(raw json.RawMessage) ([]byte, error) {
	sp, err := flows.ParseSpec(raw)
	if err != nil {
		return nil, fmt.Errorf("stored spec: %w", err)
	}
	return canonicalSpec(sp).YAML()
}

// canonicalSpec writes absent connector settings as {}, as the server
// stores a spec, and their keys in order (a YAML file's or the stored
// JSON's order is no change).
func canonicalSpec(sp flows.Spec) flows.Spec {
	for _, c := range []*flows.ConnectorConfig{&sp.Source, &sp.Sink} {
		if t := bytes.TrimSpace(c.Settings); len(t) == 0 || string(t) == "null" {
			c.Settings = json.RawMessage("{}")
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(c.Settings))
		dec.UseNumber()
		var v any
		if dec.Decode(&v) == nil {
			if js, err := json.Marshal(v); err == nil {
				c.Settings = js
			}
		}
	}
	return sp
}

// readSpecFile reads a spec file, YAML or JSON (a file whose first
// character is "{"), checking only its shape: the server checks the rest.
func readSpecFile(path string) (flows.Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return flows.Spec{}, err
	}
	var sp flows.Spec
	if bytes.HasPrefix(bytes.TrimSpace(data), []byte("{")) {
		sp, err = flows.ParseSpec(data)
	} else {
		sp, err = flows.ParseSpecYAML(data)
	}
	if err != nil {
		return sp, fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	return sp, nil
}

func (f flowsCmd) validate(ctx context.Context, file string) error {
	sp, err := readSpecFile(file)
	if err != nil {
		return err
	}
	raw, _ := json.Marshal(sp)
	v, err := f.c.ValidateFlow(ctx, raw)
	if err != nil {
		return err
	}
	if f.json {
		f.print(v)
		return nil
	}
	fmt.Fprintf(f.Stdout, "%s: valid: flow %s, runtime %s", file, v.Name, v.Runtime)
	if v.Delivery != "" {
		fmt.Fprintf(f.Stdout, ", delivery %s", v.Delivery)
	}
	fmt.Fprintln(f.Stdout)
	return nil
}

// applyResult is what apply prints with --output json.
type applyResult struct {
	Name string `json:"name"`
	// Action is created, updated or unchanged (with --dry-run: would
	// create, would update, unchanged).
	Action  string `json:"action"`
	Version int64  `json:"version,omitempty"`
	// Previous is the version an update replaced.
	Previous int64  `json:"previous,omitempty"`
	Diff     string `json:"diff,omitempty"`
}

// apply creates the file's flow, or stores a new version of it when its spec
// differs from the stored latest one, guarded by that version (a change
// made meanwhile by someone else is a 409, not overwritten).
func (f flowsCmd) apply(ctx context.Context, file string, dryRun bool) error {
	sp, err := readSpecFile(file)
	if err != nil {
		return err
	}
	raw, _ := json.Marshal(sp)
	cur, err := f.c.Flow(ctx, sp.Name)
	exists := err == nil
	switch {
	case client.IsStatus(err, http.StatusNotFound):
	case err != nil:
		return err
	case cur.Origin != api.OriginSpec:
		return fmt.Errorf("flow %s is defined in code and is read-only here: change its Go definition, or give the spec another name", sp.Name)
	}
	res := applyResult{Name: sp.Name}
	if exists {
		old, err := specYAML(cur.Spec)
		if err != nil {
			return err
		}
		nw, err := canonicalSpec(sp).YAML()
		if err != nil {
			return err
		}
		res.Diff = unifiedDiff(fmt.Sprintf("%s version %d (stored)", sp.Name, cur.Version), file, string(old), string(nw))
		res.Version = cur.Version
	}
	switch {
	case dryRun:
		if _, err := f.c.ValidateFlow(ctx, raw); err != nil {
			return err
		}
		switch {
		case !exists:
			res.Action = "would create"
		case res.Diff == "":
			res.Action = "unchanged"
		default:
			res.Action, res.Previous, res.Version = "would update", cur.Version, 0
		}
	case !exists:
		fl, err := f.c.CreateFlow(ctx, raw)
		if err != nil {
			return err
		}
		res.Action, res.Version = "created", fl.Version
	case res.Diff == "":
		res.Action = "unchanged"
	default:
		fl, err := f.c.UpdateFlow(ctx, sp.Name, raw, cur.Version)
		if err != nil {
			return err
		}
		res.Action, res.Previous, res.Version = "updated", cur.Version, fl.Version
	}
	if f.json {
		f.print(res)
		return nil
	}
	if res.Diff != "" {
		fmt.Fprint(f.Stdout, res.Diff)
	}
	switch res.Action {
	case "created":
		fmt.Fprintf(f.Stdout, "flow %s created, version %d (inactive: dripflow flows activate %s)\n", res.Name, res.Version, res.Name)
	case "updated":
		fmt.Fprintf(f.Stdout, "flow %s updated, version %d -> %d\n", res.Name, res.Previous, res.Version)
	case "unchanged":
		fmt.Fprintf(f.Stdout, "flow %s unchanged, version %d\n", res.Name, res.Version)
	case "would create":
		fmt.Fprintf(f.Stdout, "flow %s is valid and would be created (dry run: nothing changed)\n", res.Name)
	case "would update":
		fmt.Fprintf(f.Stdout, "flow %s is valid and would be updated from version %d (dry run: nothing changed)\n", res.Name, res.Previous)
	}
	return nil
}

// unifiedDiff is a line diff of a and b in the unified format with three
// lines of context, "" when they are equal.
func unifiedDiff(nameA, nameB, a, b string) string {
	if a == b {
		return ""
	}
	x, y := splitLines(a), splitLines(b)
	// Longest common subsequence, from the ends (spec files are small).
	lcs := make([][]int, len(x)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(y)+1)
	}
	for i := len(x) - 1; i >= 0; i-- {
		for j := len(y) - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	type line struct {
		op   byte // ' ', '-' or '+'
		text string
		ai   int // line numbers (1-based) in a and b where the line is
		bi   int
	}
	var lines []line
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		switch {
		case i < len(x) && j < len(y) && x[i] == y[j]:
			lines = append(lines, line{' ', x[i], i + 1, j + 1})
			i, j = i+1, j+1
		case i < len(x) && (j == len(y) || lcs[i+1][j] >= lcs[i][j+1]):
			// Removals before additions, as diff -u shows them.
			lines = append(lines, line{'-', x[i], i + 1, j + 1})
			i++
		default:
			lines = append(lines, line{'+', y[j], i + 1, j + 1})
			j++
		}
	}
	const context = 3
	var sb strings.Builder
	fmt.Fprintf(&sb, "--- %s\n+++ %s\n", nameA, nameB)
	for k := 0; k < len(lines); {
		if lines[k].op == ' ' {
			k++
			continue
		}
		start := max(0, k-context)
		end := k
		// Extend the hunk while changes are within 2*context lines.
		for end < len(lines) {
			if lines[end].op != ' ' {
				end++
				continue
			}
			next := end
			for next < len(lines) && lines[next].op == ' ' {
				next++
			}
			if next == len(lines) || next-end > 2*context {
				end = min(len(lines), end+context)
				break
			}
			end = next
		}
		var na, nb int
		for _, l := range lines[start:end] {
			if l.op != '+' {
				na++
			}
			if l.op != '-' {
				nb++
			}
		}
		fmt.Fprintf(&sb, "@@ -%d,%d +%d,%d @@\n", lines[start].ai, na, lines[start].bi, nb)
		for _, l := range lines[start:end] {
			sb.WriteByte(l.op)
			sb.WriteString(l.text)
			sb.WriteByte('\n')
		}
		k = end
	}
	return sb.String()
}

func splitLines(s string) []string {
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}
