package file

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/dripflow/dripflow/pkg/flows"
)

// Column types a CSV source can convert values to (Source.Types).
const (
	TypeString = "string"
	TypeInt    = "int"
	TypeFloat  = "float"
	TypeBool   = "bool"
	TypeTime   = "time"
)

var columnTypes = []string{TypeString, TypeInt, TypeFloat, TypeBool, TypeTime}

// recordReader reads the records of one file's byte range [start, end),
// one at a time, without holding more than a buffer of the file.
type recordReader struct {
	path   string
	format Format
	types  map[string]string
	f      *os.File
	start  int64
	pos    int64 // offset just after the last record read (absolute)

	lines  *bufio.Reader // JSONL
	csv    *csv.Reader   // CSV
	header []string
}

// openRange opens path's byte range [start, end) for reading records. For
// CSV it reads the header row first: it is the range's first row when
// start is 0, else the file's first row.
func openRange(path string, format Format, comma rune, types map[string]string, start, end int64) (*recordReader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	r := &recordReader{path: path, format: format, types: types, f: f, start: start, pos: start}
	section := io.NewSectionReader(f, start, end-start)
	if format == JSONL {
		r.lines = bufio.NewReaderSize(section, 64<<10)
		return r, nil
	}
	newCSV := func(rd io.Reader) *csv.Reader {
		c := csv.NewReader(rd)
		c.Comma = comma
		c.FieldsPerRecord = -1
		return c
	}
	r.csv = newCSV(section)
	if start == 0 {
		r.header, err = r.csv.Read()
		if err == nil {
			r.pos = r.csv.InputOffset()
		}
	} else {
		r.header, err = newCSV(io.NewSectionReader(f, 0, end)).Read()
	}
	if len(r.header) > 0 {
		// A byte order mark (spreadsheet exports) is not part of the name.
		r.header[0] = strings.TrimPrefix(r.header[0], "\ufeff")
	}
	switch {
	case errors.Is(err, io.EOF):
		r.header = nil // no complete header yet: no records
	case err != nil:
		f.Close()
		return nil, fmt.Errorf("%s: header row: %w", path, err)
	}
	return r, nil
}

func (r *recordReader) Close() error { return r.f.Close() }

// next returns the next record and the offset it starts at; io.EOF at the
// end of the range.
func (r *recordReader) next() (flows.Record, int64, error) {
	if r.format == JSONL {
		for {
			at := r.pos
			line, err := r.lines.ReadBytes('\n')
			if len(line) == 0 && err != nil {
				return nil, 0, err
			}
			r.pos += int64(len(line))
			line = bytes.TrimSpace(line)
			if len(line) == 0 {
				continue // blank lines separate nothing
			}
			rec, derr := decodeJSONLine(line)
			if derr != nil {
				return nil, 0, fmt.Errorf("%s at offset %d: %w", r.path, at, derr)
			}
			return rec, at, nil
		}
	}
	if r.header == nil {
		return nil, 0, io.EOF
	}
	at := r.pos
	row, err := r.csv.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, 0, io.EOF
		}
		return nil, 0, fmt.Errorf("%s at offset %d: %w", r.path, at, err)
	}
	r.pos = r.start + r.csv.InputOffset()
	if len(row) != len(r.header) {
		return nil, 0, fmt.Errorf("%s at offset %d: row has %d fields, the header %d", r.path, at, len(row), len(r.header))
	}
	rec := make(flows.Record, len(row))
	for i, name := range r.header {
		v, err := convert(row[i], r.types[name])
		if err != nil {
			return nil, 0, fmt.Errorf("%s at offset %d: column %s: %w", r.path, at, name, err)
		}
		rec[name] = v
	}
	return rec, at, nil
}

// decodeJSONLine decodes one JSONL line, which must be an object; numbers
// become int64 when integral, else float64.
func decodeJSONLine(line []byte) (flows.Record, error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	var rec map[string]any
	if err := dec.Decode(&rec); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	if rec == nil {
		return nil, errors.New("not a JSON object: null")
	}
	if dec.More() {
		return nil, errors.New("more than one JSON value on the line")
	}
	for k, v := range rec {
		rec[k] = flows.Numbers(v)
	}
	return rec, nil
}

// convert turns a CSV value into its column's type; an empty value in a
// typed column is nil.
func convert(s, typ string) (any, error) {
	if typ == "" || typ == TypeString {
		return s, nil
	}
	if s == "" {
		return nil, nil
	}
	switch typ {
	case TypeInt:
		return strconv.ParseInt(s, 10, 64)
	case TypeFloat:
		return strconv.ParseFloat(s, 64)
	case TypeBool:
		return strconv.ParseBool(s)
	case TypeTime:
		return time.Parse(time.RFC3339Nano, s)
	}
	return nil, fmt.Errorf("unknown type %q", typ)
}
