package file

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/flows"
)

// Sink is the configuration of a sink that writes each batch into JSONL or
// CSV files in a directory.
//
// A batch's records go to <prefix>-<run>-<seq>-<part>.<format> (run and
// seq zero-padded to 6 digits, part to 4, so names sort in order): part 0,
// and further parts when MaxRecords or MaxBytes roll the batch over. Each
// part is written into a temporary file in Dir/.dripflow-tmp, fsynced and
// renamed to its final name, and Dir is fsynced before the batch is
// reported written: a crashed batch leaves no half file under a final name,
// and its retry writes the same names again, replacing what an earlier
// attempt wrote and removing the temporary files that attempt left and
// any parts beyond its own. The guarantee is therefore idempotent.
//
// Rolling by time is the flow's runtime: it decides when runs happen
// (Once, Heartbeat, Cron), and every batch of every run makes its own
// files, so with a heartbeat of an hour each hour's records are in that
// hour's run's files.
type Sink struct {
	// Dir is the directory the files go to; the first batch written
	// creates it if missing.
	Dir string `json:"dir" help:"directory to write the files to (created if missing)"`
	// Format is jsonl or csv.
	Format Format `json:"format" help:"jsonl or csv"`
	// Prefix starts every file name; default the flow's name.
	Prefix string `json:"prefix,omitempty" help:"file name prefix; default the flow name"`
	// MaxRecords rolls to a new part after this many records; 0: no limit.
	MaxRecords int `json:"max_records,omitempty" help:"records per file before rolling to the next part; 0 means no limit"`
	// MaxBytes rolls to a new part before a file grows past this many
	// bytes (a single larger record still gets a part of its own); 0: no
	// limit.
	MaxBytes int64 `json:"max_bytes,omitempty" help:"bytes per file before rolling to the next part; 0 means no limit"`
	// Columns are the CSV columns, in order; default the sorted union of
	// the batch's field names.
	Columns []string `json:"columns,omitempty" help:"CSV columns in order; default every field of the batch, sorted"`
	// Comma is the CSV field delimiter; default ",".
	Comma string `json:"comma,omitempty" help:"CSV field delimiter; default ,"`
}

var _ flows.SinkConfig = (*Sink)(nil)

// Kind implements flows.SinkConfig.
func (s *Sink) Kind() string { return Kind }

// Validate implements flows.SinkConfig.
func (s *Sink) Validate() error {
	switch {
	case s.Dir == "":
		return flows.Errorf("dir", "is required")
	case s.Prefix != "" && !safeName(s.Prefix):
		return flows.Errorf("prefix", "%q must be a plain file name (no separators, not starting with a dot)", s.Prefix)
	case s.MaxRecords < 0:
		return flows.Errorf("max_records", "must not be negative")
	case s.MaxBytes < 0:
		return flows.Errorf("max_bytes", "must not be negative")
	}
	if err := validFormat(s.Format); err != nil {
		return err
	}
	if s.Format != CSV {
		switch {
		case s.Comma != "":
			return flows.Errorf("comma", "is for the csv format only")
		case len(s.Columns) > 0:
			return flows.Errorf("columns", "is for the csv format only")
		}
	}
	if _, err := comma(s.Comma); err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, c := range s.Columns {
		if c == "" || seen[c] {
			return flows.Errorf("columns", "column names must be non-empty and distinct, got %q", c)
		}
		seen[c] = true
	}
	return nil
}

func safeName(s string) bool {
	return s != "" && !strings.HasPrefix(s, ".") && !strings.ContainsAny(s, `/\`+"\x00") && filepath.Base(s) == s
}

// Guarantee implements flows.SinkConfig: a redelivered batch replaces its
// own files.
func (s *Sink) Guarantee() flows.Guarantee { return flows.Idempotent }

// Build implements flows.SinkConfig. It touches no file: the scheduler
// builds sinks too, and may run where Dir is not writable; Write creates
// Dir.
func (s *Sink) Build(_ context.Context, _ *engine.Resources) (flows.Sink, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	c, _ := comma(s.Comma)
	return &sink{cfg: *s, comma: c}, nil
}

// sink is a built Sink; it keeps no state between batches.
type sink struct {
	cfg   Sink
	comma rune
}

var _ flows.Sink = (*sink)(nil)

func (s *sink) Guarantee() flows.Guarantee { return flows.Idempotent }
func (s *sink) Close() error               { return nil }

// base returns the batch's file name without part and extension.
func (s *sink) base(b *flows.Batch) string {
	prefix := s.cfg.Prefix
	if prefix == "" {
		prefix = sanitize(b.Flow)
	}
	return fmt.Sprintf("%s-%06d-%06d", prefix, b.Run, b.Seq)
}

// sanitize makes a flow name usable as a file name.
func sanitize(name string) string {
	out := strings.Map(func(r rune) rune {
		switch {
		case r == '/' || r == '\\' || r == 0 || r == ':' || r < ' ':
			return '_'
		}
		return r
	}, name)
	out = strings.TrimLeft(out, ".")
	if out == "" {
		out = "batch"
	}
	return out
}

// partName is the final name of one part of a batch.
func (s *sink) partName(base string, part int) string {
	return fmt.Sprintf("%s-%04d.%s", base, part, s.cfg.Format)
}

// Write writes the batch's parts, each atomically, and fsyncs the
// directory.
func (s *sink) Write(ctx context.Context, b *flows.Batch) (int64, error) {
	if len(b.Records) == 0 {
		return 0, nil
	}
	base := s.base(b)
	if err := os.MkdirAll(filepath.Join(s.cfg.Dir, tmpDir), 0o755); err != nil {
		return 0, fmt.Errorf("write batch %s: %w", b.ID(), err)
	}
	if err := s.removeTemps(base); err != nil {
		return 0, err
	}
	parts, err := s.encode(b.Records)
	if err != nil {
		return 0, fmt.Errorf("encode batch %s: %w", b.ID(), err)
	}
	for i, data := range parts {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		if err := s.writeFile(s.partName(base, i), data); err != nil {
			return 0, fmt.Errorf("write batch %s: %w", b.ID(), err)
		}
	}
	// Parts beyond ours were written by an earlier attempt that rolled
	// differently (the sink's limits changed): they would duplicate records.
	if err := s.removeParts(base, len(parts)); err != nil {
		return 0, fmt.Errorf("write batch %s: %w", b.ID(), err)
	}
	if err := syncDir(s.cfg.Dir); err != nil {
		return 0, fmt.Errorf("write batch %s: %w", b.ID(), err)
	}
	return int64(len(b.Records)), nil
}

// tmpDir is the directory, inside Dir, where parts are written before
// they are renamed into Dir. Its name starts with a dot, so a file source
// reading Dir skips it.
const tmpDir = ".dripflow-tmp"

// removeTemps removes the temporary files of the batch named base that an
// earlier, crashed attempt left.
func (s *sink) removeTemps(base string) error {
	dir := filepath.Join(s.cfg.Dir, tmpDir)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("list %s: %w", dir, err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), base+"-") {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("remove %s: %w", e.Name(), err)
			}
		}
	}
	return nil
}

// removeParts removes the batch's parts numbered from and up (parts are
// numbered without gaps).
func (s *sink) removeParts(base string, from int) error {
	for i := from; ; i++ {
		err := os.Remove(filepath.Join(s.cfg.Dir, s.partName(base, i)))
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// writeFile writes data to name in Dir: into a temporary file of its own
// first, fsynced, then renamed, so name holds either nothing, an earlier
// attempt's whole file or this one's.
func (s *sink) writeFile(name string, data []byte) error {
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	tmp := filepath.Join(s.cfg.Dir, tmpDir, name+"."+hex.EncodeToString(rnd[:]))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(s.cfg.Dir, name))
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// encode renders the records into parts, rolling over at MaxRecords and
// MaxBytes.
func (s *sink) encode(recs []flows.Record) ([][]byte, error) {
	var header []byte
	var cols []string
	if s.cfg.Format == CSV {
		cols = s.cfg.Columns
		if len(cols) == 0 {
			cols = fields(recs)
		}
		var err error
		if header, err = s.csvRow(cols); err != nil {
			return nil, err
		}
	}
	var parts [][]byte
	var cur bytes.Buffer
	n := 0
	flush := func() {
		parts = append(parts, bytes.Clone(cur.Bytes()))
		cur.Reset()
		n = 0
	}
	cur.Write(header)
	for i, r := range recs {
		var line []byte
		var err error
		if s.cfg.Format == CSV {
			row := make([]string, len(cols))
			for j, c := range cols {
				row[j] = csvValue(r[c])
			}
			line, err = s.csvRow(row)
		} else {
			line, err = json.Marshal(r)
			line = append(line, '\n')
		}
		if err != nil {
			return nil, fmt.Errorf("record %d: %w", i, err)
		}
		full := s.cfg.MaxRecords > 0 && n >= s.cfg.MaxRecords ||
			s.cfg.MaxBytes > 0 && n > 0 && int64(cur.Len()+len(line)) > s.cfg.MaxBytes
		if full {
			flush()
			cur.Write(header)
		}
		cur.Write(line)
		n++
	}
	flush()
	return parts, nil
}

func (s *sink) csvRow(row []string) ([]byte, error) {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.Comma = s.comma
	if err := w.Write(row); err != nil {
		return nil, err
	}
	w.Flush()
	return buf.Bytes(), w.Error()
}

// fields returns the sorted union of the records' field names.
func fields(recs []flows.Record) []string {
	set := map[string]bool{}
	for _, r := range recs {
		for k := range r {
			set[k] = true
		}
	}
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// csvValue renders a value for CSV: nil is empty, times RFC 3339, byte
// slices as text, maps and slices as JSON.
func csvValue(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case []byte:
		return string(x)
	case time.Time:
		return x.Format(time.RFC3339Nano)
	case map[string]any, []any:
		b, _ := json.Marshal(x)
		return string(b)
	}
	return fmt.Sprint(v)
}
