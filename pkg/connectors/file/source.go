package file

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/flows"
)

// Source is the configuration of a source that reads JSONL or CSV files.
//
// Path is one file, a directory (its files) or a glob; the files are read
// in name order, each from where the last run stopped. A run reads what the
// files hold when it is planned: files that appear later, and lines
// appended to a file, are read by later runs. Only complete records (ended
// by a newline) are read from the newest file, so a half-written last line
// is read once it is complete; a file that is not the newest is complete,
// its last line counts without a newline. Files ordered before the one a
// run stopped in are not read again: append only to the newest file (as a
// log writer does before it rotates) and give new files names that sort
// after the old ones (timestamps, sequence numbers).
//
// Every record gets the metadata fields _file (the path) and _offset (the
// byte offset where the record starts): together a unique key to upsert on.
//
// The scheduler plans by reading the files and workers read the planned
// ranges, so both must see the files under the same path.
type Source struct {
	// Path is a file, a directory or a glob (filepath.Match syntax, e.g.
	// "/data/in/*.jsonl"). Files whose names start with "." are skipped
	// (temporary files, including the file sink's).
	Path string `json:"path" help:"file, directory or glob (e.g. /data/in/*.jsonl); files are read in name order"`
	// Format is jsonl or csv.
	Format Format `json:"format" help:"jsonl or csv"`
	// Comma is the CSV field delimiter; default ",".
	Comma string `json:"comma,omitempty" help:"CSV field delimiter; default ,"`
	// Types converts CSV columns (by header name) to string, int, float,
	// bool or time (RFC 3339); other columns are strings. An empty value in
	// a typed column is null.
	Types map[string]string `json:"types,omitempty" help:"CSV column types by header name: string, int, float, bool or time (RFC 3339); default string"`
	// NoMetadata leaves out the _file and _offset fields.
	NoMetadata bool `json:"no_metadata,omitempty" help:"do not add the _file and _offset fields to records"`
}

var _ flows.SourceConfig = (*Source)(nil)

// Kind implements flows.SourceConfig.
func (s *Source) Kind() string { return Kind }

// Validate implements flows.SourceConfig.
func (s *Source) Validate() error {
	if s.Path == "" {
		return flows.Errorf("path", "is required")
	}
	if _, err := filepath.Match(s.Path, ""); err != nil {
		return flows.Errorf("path", "%q is not a valid glob: %v", s.Path, err)
	}
	if err := validFormat(s.Format); err != nil {
		return err
	}
	if s.Format != CSV {
		switch {
		case s.Comma != "":
			return flows.Errorf("comma", "is for the csv format only")
		case len(s.Types) > 0:
			return flows.Errorf("types", "is for the csv format only")
		}
	}
	if _, err := comma(s.Comma); err != nil {
		return err
	}
	cols := make([]string, 0, len(s.Types))
	for c := range s.Types {
		cols = append(cols, c)
	}
	sort.Strings(cols)
	for _, c := range cols {
		if !validType(s.Types[c]) {
			return flows.Errorf("types", "column %s: type %q is not one of %s", c, s.Types[c], strings.Join(columnTypes, ", "))
		}
	}
	return nil
}

func validType(t string) bool {
	for _, k := range columnTypes {
		if t == k {
			return true
		}
	}
	return false
}

// comma returns the CSV delimiter a Comma setting names.
func comma(s string) (rune, error) {
	if s == "" {
		return ',', nil
	}
	r, n := utf8.DecodeRuneInString(s)
	if n != len(s) || r == utf8.RuneError || r == '"' || r == '\r' || r == '\n' {
		return 0, flows.Errorf("comma", "must be one character other than a quote or a newline, got %q", s)
	}
	return r, nil
}

// Build implements flows.SourceConfig. It opens nothing: every call looks
// at the files as they are.
func (s *Source) Build(_ context.Context, _ *engine.Resources) (flows.Source, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	c, _ := comma(s.Comma)
	return &source{cfg: *s, comma: c}, nil
}

// source is a built Source. It keeps no state between calls, so it is safe
// for concurrent use.
type source struct {
	cfg   Source
	comma rune
}

var _ flows.Source = (*source)(nil)

func (s *source) Shape() flows.Shape { return flows.Offset }
func (s *source) Resumes() bool      { return true }
func (s *source) Close() error       { return nil }

// files returns the paths Path matches now, sorted, without hidden names.
func (s *source) files() ([]string, error) {
	pattern := s.cfg.Path
	if st, err := os.Stat(pattern); err == nil && st.IsDir() {
		pattern = filepath.Join(pattern, "*")
	}
	matches, err := filepath.Glob(pattern)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", pattern, err)
	}
	out := matches[:0]
	for _, m := range matches {
		if !strings.HasPrefix(filepath.Base(m), ".") {
			out = append(out, m)
		}
	}
	sort.Strings(out)
	return out, nil
}

// ErrShrunk is returned (wrapped, naming the file) when a file is shorter
// than a position the flow has read it to: it was truncated or replaced,
// and reading on would lose or repeat records.
var ErrShrunk = errors.New("file is shorter than the position already read: truncated or replaced")

// statAt stats path and checks that it holds at least off bytes.
func statAt(path string, off int64) (int64, error) {
	st, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	if !st.Mode().IsRegular() {
		return 0, fmt.Errorf("%s is not a regular file", path)
	}
	if st.Size() < off {
		return 0, fmt.Errorf("%s: %w (%d bytes, position %d)", path, ErrShrunk, st.Size(), off)
	}
	return st.Size(), nil
}

// Next returns the range after lo of at most size records. A range never
// spans files: it ends in the first file after lo that has a complete
// record.
func (s *source) Next(ctx context.Context, lo string, size int) (flows.Split, error) {
	p, err := decodePosition(lo)
	if err != nil {
		return flows.Split{}, err
	}
	if size < 1 {
		size = 1
	}
	files, err := s.files()
	if err != nil {
		return flows.Split{}, err
	}
	// Files before lo's were read; lo's file (when it still exists) is read
	// on from lo's offset, the ones after from their start.
	i := sort.SearchStrings(files, p.Name)
	for ; i < len(files); i++ {
		if err := ctx.Err(); err != nil {
			return flows.Split{}, err
		}
		name, start := files[i], int64(0)
		if name == p.Name {
			start = p.Offset
		} else if !regular(name) {
			continue // a directory, or removed since it was listed
		}
		newest := true
		for _, later := range files[i+1:] {
			if regular(later) {
				newest = false
				break
			}
		}
		n, hi, more, err := s.scan(name, start, size, newest)
		if err != nil {
			return flows.Split{}, err
		}
		if n > 0 {
			return flows.Split{Hi: position{Name: name, Offset: hi}.encode(), Last: newest && !more}, nil
		}
	}
	return flows.Split{}, nil
}

// regular reports whether path is a regular file (or a link to one).
func regular(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular()
}

// scan counts up to size records of path from start and returns how many
// there are, the offset after the last, and whether another complete
// record follows in the file.
func (s *source) scan(path string, start int64, size int, newest bool) (n int, hi int64, more bool, err error) {
	fileSize, err := statAt(path, start)
	if err != nil {
		return 0, 0, false, err
	}
	end := fileSize
	if newest {
		if end, err = completeEnd(path, start, fileSize); err != nil {
			return 0, 0, false, err
		}
	}
	if end <= start {
		return 0, start, false, nil
	}
	r, err := openRange(path, s.cfg.Format, s.comma, s.cfg.Types, start, end)
	if err != nil {
		return 0, 0, false, err
	}
	defer r.Close()
	hi = r.pos
	for n < size {
		if _, _, err := r.next(); err != nil {
			if errors.Is(err, io.EOF) {
				return n, hi, false, nil
			}
			if n > 0 {
				// Plan up to the bad record; the next split starts there and
				// reports it.
				return n, hi, true, nil
			}
			if newest && errors.Is(err, csv.ErrQuote) {
				// A quoted field still open where the complete lines end: a
				// record with a newline in a value, half written.
				return 0, start, false, nil
			}
			return 0, 0, false, err
		}
		n++
		hi = r.pos
	}
	_, _, err = r.next()
	return n, hi, !errors.Is(err, io.EOF), nil
}

// completeEnd returns the offset just after the last newline of path at or
// after start (start when there is none): the end of its complete records.
func completeEnd(path string, start, size int64) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for end := size; end > start; {
		from := max(start, end-int64(len(buf)))
		chunk := buf[:end-from]
		if _, err := f.ReadAt(chunk, from); err != nil && !errors.Is(err, io.EOF) {
			return 0, fmt.Errorf("read %s: %w", path, err)
		}
		for i := len(chunk) - 1; i >= 0; i-- {
			if chunk[i] == '\n' {
				return from + int64(i) + 1, nil
			}
		}
		end = from
	}
	return start, nil
}

// Read returns the records in (lo, hi]: the records of hi's file from lo's
// offset (or from the start, when lo is in an earlier file) to hi's.
func (s *source) Read(ctx context.Context, lo, hi string) ([]flows.Record, error) {
	from, err := decodePosition(lo)
	if err != nil {
		return nil, err
	}
	to, err := decodePosition(hi)
	if err != nil {
		return nil, err
	}
	if to.Name == "" {
		return nil, nil
	}
	start := int64(0)
	switch {
	case from.Name == to.Name:
		start = from.Offset
		if start > to.Offset {
			return nil, fmt.Errorf("file range (%s, %s] is backwards", lo, hi)
		}
	case from.Name > to.Name:
		return nil, fmt.Errorf("file range (%s, %s] is backwards", lo, hi)
	}
	if _, err := statAt(to.Name, to.Offset); err != nil {
		return nil, err
	}
	if start == to.Offset {
		return nil, nil
	}
	r, err := openRange(to.Name, s.cfg.Format, s.comma, s.cfg.Types, start, to.Offset)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var out []flows.Record
	for {
		if len(out)%1024 == 1023 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		rec, at, err := r.next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if !s.cfg.NoMetadata {
			rec[FieldFile] = to.Name
			rec[FieldOffset] = at
		}
		out = append(out, rec)
	}
}
