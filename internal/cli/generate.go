package cli

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"go/format"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"text/template"
	"unicode"
)

const newUsage = `usage:
  dripflow new backfill NAME [--element | --range] [--dir app/backfills]
  dripflow new flow NAME [--dir app/flows]
  dripflow new flow NAME --yaml [--dir flows]   a flow spec for dripflow flows apply
  dripflow init MODULE [--dir DIR] [--dripflow-path PATH]

NAME may be CamelCase or snake_case (FixUserEmails or fix_user_emails).
`

var identRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)

// names returns the CamelCase Go name and the snake_case definition name.
func names(name string) (camel, snake string, err error) {
	if !identRE.MatchString(name) {
		return "", "", fmt.Errorf("name %q: use letters, digits and underscores, starting with a letter", name)
	}
	var sb strings.Builder
	runes := []rune(name)
	for i, r := range runes {
		if unicode.IsUpper(r) {
			if i > 0 && runes[i-1] != '_' && (unicode.IsLower(runes[i-1]) || (i+1 < len(runes) && unicode.IsLower(runes[i+1]))) {
				sb.WriteByte('_')
			}
			sb.WriteRune(unicode.ToLower(r))
		} else {
			sb.WriteRune(r)
		}
	}
	snake = sb.String()
	for _, part := range strings.Split(snake, "_") {
		if part != "" {
			camel += strings.ToUpper(part[:1]) + part[1:]
		}
	}
	return camel, snake, nil
}

// New runs `dripflow new backfill|flow NAME` and returns the exit code.
func New(args []string, env Env) int {
	if len(args) < 2 {
		fmt.Fprint(env.Stderr, newUsage)
		return ExitUsage
	}
	kind, name := args[0], args[1]
	fs := flag.NewFlagSet("new "+kind, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	element, ranged := false, false
	dir := "app/" + kind + "s"
	if kind == "backfill" {
		fs.BoolVar(&element, "element", false, "generate ProcessElement (one record at a time) instead of ProcessBatch")
		fs.BoolVar(&ranged, "range", false, "generate ProcessRange (one set-based statement per batch, no record loaded) instead of ProcessBatch")
	}
	yamlSpec := false
	if kind == "flow" {
		fs.BoolVar(&yamlSpec, "yaml", false, "write a flow spec (YAML, for dripflow flows apply) instead of Go; --dir defaults to flows")
	}
	fs.StringVar(&dir, "dir", dir, "the definitions package directory")
	if err := fs.Parse(args[2:]); err != nil {
		return ExitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(env.Stderr, "dripflow new: unexpected argument %q (flags go after NAME)\n", fs.Arg(0))
		return ExitUsage
	}
	if yamlSpec {
		dirSet := false
		fs.Visit(func(f *flag.Flag) { dirSet = dirSet || f.Name == "dir" })
		if !dirSet {
			dir = "flows"
		}
		return newFlowSpec(name, dir, env)
	}
	if element && ranged {
		fmt.Fprintln(env.Stderr, "dripflow new: --element and --range are exclusive: a backfill has one way to process")
		return ExitUsage
	}
	if kind != "backfill" && kind != "flow" {
		fmt.Fprintf(env.Stderr, "dripflow new: unknown kind %q\n\n%s", kind, newUsage)
		return ExitUsage
	}
	camel, snake, err := names(name)
	if err != nil {
		fmt.Fprintln(env.Stderr, "dripflow new:", err)
		return ExitUsage
	}
	data := map[string]any{"Camel": camel, "Snake": snake, "Element": element, "Range": ranged, "Package": packageName(dir)}
	tmpl := backfillTmpl
	if kind == "flow" {
		tmpl = flowTmpl
	}
	path := filepath.Join(dir, snake+".go")
	if err := writeGo(path, tmpl, data, false); err != nil {
		fmt.Fprintln(env.Stderr, "dripflow new:", err)
		return ExitError
	}
	if err := writeGo(filepath.Join(dir, "doc.go"), docTmpl, data, true); err != nil && !errors.Is(err, os.ErrExist) {
		fmt.Fprintln(env.Stderr, "dripflow new:", err)
		return ExitError
	}
	fmt.Fprintf(env.Stdout, "wrote %s: %s %q, registered when %s is imported\n", path, kind, snake, dir)
	return ExitOK
}

func packageName(dir string) string {
	base := filepath.Base(filepath.Clean(dir))
	base = strings.Map(func(r rune) rune {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			return unicode.ToLower(r)
		}
		return -1
	}, base)
	if base == "" || unicode.IsDigit(rune(base[0])) {
		base = "defs" + base
	}
	return base
}

// writeGo renders tmpl, gofmts it and writes path; an existing file is an
// error (os.ErrExist) so nothing a user wrote is ever overwritten.
func writeGo(path, tmpl string, data any, quietIfExists bool) error {
	var buf bytes.Buffer
	if err := template.Must(template.New("").Parse(tmpl)).Execute(&buf, data); err != nil {
		return err
	}
	src := buf.Bytes()
	if strings.HasSuffix(path, ".go") {
		formatted, err := format.Source(src)
		if err != nil {
			return fmt.Errorf("generated %s does not parse: %w", path, err)
		}
		src = formatted
	}
	return writeNew(path, src, quietIfExists)
}

func writeNew(path string, content []byte, quietIfExists bool) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, os.ErrExist) {
		if quietIfExists {
			return os.ErrExist
		}
		return fmt.Errorf("%s exists; not overwriting it", path)
	}
	if err != nil {
		return err
	}
	if _, err := f.Write(content); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

const docTmpl = `// Package {{.Package}} holds this application's dripflow definitions. Each
// registers itself when the package is imported: import it (with _) in the
// worker, scheduler and web mains.
package {{.Package}}
`

const backfillTmpl = `package {{.Package}}

import (
	"context"

	"gorm.io/gorm"

	"github.com/dripflow/dripflow/pkg/backfills"
)

// {{.Camel}}Record is the table {{.Camel}} changes. Replace it with your
// own gorm model and delete this type.
type {{.Camel}}Record struct {
	ID    int64 ` + "`gorm:\"primaryKey\"`" + `
	Value string
}

// TableName is the table of {{.Camel}}Record.
func ({{.Camel}}Record) TableName() string { return "{{.Snake}}_records" }

// {{.Camel}}Params are the backfill's params, shown as a form in the UI.
// Add fields with json, default, enum, required and help tags.
type {{.Camel}}Params struct {
	Value string ` + "`json:\"value\" default:\"done\" help:\"value to set\"`" + `
}

// {{.Camel}} is registered as "{{.Snake}}" when the package is imported.
var {{.Camel}} = backfills.MustRegister(backfills.Definition[{{.Camel}}Record, {{.Camel}}Params]{
	Name:        "{{.Snake}}",
	Description: "TODO: say what {{.Snake}} changes.",
	// Scope narrows the records to change; it is applied when planning and
	// again inside each batch's key range.
	Scope: func(db *gorm.DB, p {{.Camel}}Params) *gorm.DB {
		return db.Where("value IS NULL OR value <> ?", p.Value)
	},
{{- if .Element}}
	// ProcessElement changes one record; write through e.DB, the batch's
	// transaction. Return backfills.ErrSkip to count a record as skipped.
	ProcessElement: func(ctx context.Context, e *backfills.Element[{{.Camel}}Record, {{.Camel}}Params]) error {
		return e.DB.Model(e.Record).Update("value", e.Params.Value).Error
	},
{{- else if .Range}}
	// ProcessRange changes the batch's records with one statement, loading
	// none: r.Update runs UPDATE … WHERE <scope> AND <the batch's key range>
	// in the batch's transaction and counts the rows it changed.
	ProcessRange: func(ctx context.Context, r *backfills.Range[{{.Camel}}Record, {{.Camel}}Params]) error {
		return r.Update("value", r.Params.Value)
	},
{{- else}}
	// ProcessBatch changes a batch's records; write through b.DB, the
	// batch's transaction, which commits with the batch's checkpoint.
	ProcessBatch: func(ctx context.Context, b *backfills.Batch[{{.Camel}}Record, {{.Camel}}Params]) error {
		res := b.DB.Model(&{{.Camel}}Record{}).Where("id IN ?", b.Keys()).Update("value", b.Params.Value)
		b.Wrote(res.RowsAffected)
		return res.Error
	},
{{- end}}
	Options: backfills.Options{BatchSize: 1000},
})
`

const flowTmpl = `package {{.Package}}

import (
	"time"

	"github.com/dripflow/dripflow/pkg/connectors/sqlconn"
	"github.com/dripflow/dripflow/pkg/flows"
)

// {{.Camel}} is registered as flow "{{.Snake}}" when the package is
// imported. Activate it in the UI or with the API; it then runs by its
// Runtime.
var {{.Camel}} = flows.MustRegister(flows.Flow{
	Name:        "{{.Snake}}",
	Description: "TODO: say what {{.Snake}} moves.",
	// An incremental source: each run reads rows changed since the last
	// successful one. TODO: your table, columns and condition.
	Source: &sqlconn.Source{
		Table:   "{{.Snake}}_source",
		Columns: []string{"id", "value", "updated_at"},
		Cursor:  []string{"updated_at", "id"},
	},
	Transforms: []flows.Transform{
		flows.Map("copy", func(r flows.Record) (flows.Record, error) {
			return flows.Record{"source_id": r["id"], "value": r["value"]}, nil
		}),
	},
	// Upsert by key makes redelivered batches harmless.
	Sink:    &sqlconn.Sink{Table: "{{.Snake}}_target", Mode: sqlconn.Upsert, Key: []string{"source_id"}},
	Runtime: flows.Heartbeat{Interval: time.Minute},
})
`
