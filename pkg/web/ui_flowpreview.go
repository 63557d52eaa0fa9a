package web

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/dripflow/dripflow/pkg/flows"
)

const (
	// previewRecords is how many records a spec preview reads.
	previewRecords = 10
	// previewTimeout bounds a spec preview: building the source, reading,
	// transforming.
	previewTimeout = 15 * time.Second
	// previewCellChars bounds a preview cell's text.
	previewCellChars = 200
)

// previewIgnored are source settings a preview leaves out because using
// them changes the outside world: a consumer group or durable consumer
// would be created and advanced, a queue declared. Without them the
// source reads the same records from the start without a trace.
var previewIgnored = []string{"group", "consumer", "durable", "declare"}

// specPreview is what a spec's source reads first, and what its
// transforms make of it. The sink is never built.
type specPreview struct {
	Source  string
	Ignored []string // settings left out, see previewIgnored
	Read    int
	Before  previewTable
	After   previewTable
	// Error says what failed; Stage is "source" or the failing
	// transform's label.
	Error, Stage string
	Took         time.Duration
}

type previewTable struct {
	ID      string // the table's element id
	Columns []string
	Rows    [][]string
}

// previewSpec reads the first records of an unsaved spec's source with
// the process's resources and runs them through its transforms. It never
// builds the sink.
func (s *Server) previewSpec(ctx context.Context, sp flows.Spec, fl flows.Flow) *specPreview {
	start := time.Now()
	p := &specPreview{Source: sp.Source.Kind}
	defer func() { p.Took = time.Since(start).Round(time.Millisecond) }()
	ctx, cancel := context.WithTimeout(ctx, previewTimeout)
	defer cancel()
	fail := func(stage string, err error) *specPreview {
		if ctx.Err() != nil {
			err = fmt.Errorf("gave up after %s: %w", previewTimeout, err)
		}
		p.Stage, p.Error = stage, err.Error()
		s.log.Info("flow spec preview failed", zap.String("definition", sp.Name), zap.String("stage", stage), zapErr(err))
		return p
	}
	cfg := fl.Source
	if settings, ignored := withoutSettings(sp.Source.Settings, previewIgnored); len(ignored) > 0 {
		p.Ignored = ignored
		c, err := flows.DecodeSource(flows.ConnectorConfig{Kind: sp.Source.Kind, Settings: settings})
		if err != nil {
			return fail("source", err)
		}
		cfg = c
	}
	src, err := cfg.Build(ctx, s.opts.Resources)
	if err != nil {
		return fail("source", fmt.Errorf("connect: %w", err))
	}
	defer src.Close()
	split, err := src.Next(ctx, "", previewRecords)
	if err != nil {
		return fail("source", fmt.Errorf("find the first records: %w", err))
	}
	var recs []flows.Record
	if split.Hi != "" {
		if recs, err = src.Read(ctx, "", split.Hi); err != nil {
			return fail("source", fmt.Errorf("read the first records: %w", err))
		}
	}
	if len(recs) > previewRecords {
		recs = recs[:previewRecords]
	}
	p.Read = len(recs)
	p.Before = tableOf("preview-before", recs)
	for i, t := range fl.Transforms {
		if recs, err = applyTransform(ctx, t, recs); err != nil {
			return fail(fmt.Sprintf("transforms[%d] (%s)", i, t.Name), err)
		}
	}
	p.After = tableOf("preview-after", recs)
	return p
}

// applyTransform runs one transform over records as a worker does.
func applyTransform(ctx context.Context, t flows.Transform, recs []flows.Record) ([]flows.Record, error) {
	if t.Batch != nil {
		return t.Batch(ctx, recs)
	}
	var out []flows.Record
	for _, r := range recs {
		next, err := t.Fn(ctx, r)
		if err != nil {
			return nil, err
		}
		out = append(out, next...)
	}
	return out, nil
}

// withoutSettings removes names from a settings object, saying which
// were set.
func withoutSettings(settings json.RawMessage, names []string) (json.RawMessage, []string) {
	var m map[string]json.RawMessage
	if json.Unmarshal(settings, &m) != nil {
		return settings, nil
	}
	var removed []string
	for _, n := range names {
		if raw, ok := m[n]; ok {
			if v := strings.TrimSpace(string(raw)); v != `""` && v != "false" && v != "null" {
				removed = append(removed, n)
			}
			delete(m, n)
		}
	}
	if len(removed) == 0 {
		return settings, nil
	}
	b, _ := json.Marshal(m)
	return b, removed
}

// tableOf renders records as a table: the union of their fields, sorted,
// one row per record. It copies what it shows, so transforms that change
// records in place do not change it.
func tableOf(id string, recs []flows.Record) previewTable {
	seen := map[string]bool{}
	t := previewTable{ID: id}
	for _, r := range recs {
		for k := range r {
			if !seen[k] {
				seen[k] = true
				t.Columns = append(t.Columns, k)
			}
		}
	}
	sort.Strings(t.Columns)
	for _, r := range recs {
		row := make([]string, len(t.Columns))
		for i, c := range t.Columns {
			v, ok := r[c]
			if !ok {
				continue
			}
			row[i] = cellText(v)
		}
		t.Rows = append(t.Rows, row)
	}
	return t
}

// cellText is a value as a preview cell shows it.
func cellText(v any) string {
	var s string
	switch x := v.(type) {
	case nil:
		s = "null"
	case string:
		s = x
	case []byte:
		if utf8.Valid(x) {
			s = string(x)
		} else {
			s = fmt.Sprintf("(%d bytes)", len(x))
		}
	case time.Time:
		s = x.Format(time.RFC3339Nano)
	case fmt.Stringer:
		s = x.String()
	default:
		b, err := json.Marshal(x)
		if err != nil {
			s = fmt.Sprint(x)
		} else {
			s = string(b)
		}
	}
	if utf8.RuneCountInString(s) > previewCellChars {
		s = string([]rune(s)[:previewCellChars]) + "…"
	}
	return s
}
