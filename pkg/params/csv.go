package params

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"unicode"
	"unicode/utf8"
)

// TypeCSV is the schema type of a CSV field: a file whose rows become a
// run's input (see backfills.CSVDefinition). The UI's start form shows a
// file upload for it; the API takes the file's text as a JSON string.
const TypeCSV = "csv"

// MaxCSVBytes bounds a CSV param's text: 5 MiB, about 100,000 rows of a
// few columns. The text is stored with the run's params, and so stays,
// even escaped in JSON, within what every store accepts by default
// (MariaDB's max_allowed_packet is 16 MiB).
const MaxCSVBytes = 5 << 20

// CSV is a params field holding a CSV file: a header line naming the
// columns, then one record per line. Decode checks it (UTF-8, a header
// with distinct non-empty names including the field's `headers` tag, every
// row as long as the header, at least one row, at most MaxCSVBytes) and a
// run stores its text. Rows are numbered from 1, the line after the
// header.
//
//	type Params struct {
//		Users params.CSV `json:"users" required:"true" headers:"id,email" help:"id,email per line"`
//	}
type CSV struct {
	text   string
	header []string
	rows   [][]string
}

var csvType = reflect.TypeOf(CSV{})

// ParseCSV parses and checks text as a CSV param whose header must
// include the columns in required; the error says what is wrong and on
// which line.
func ParseCSV(text string, required []string) (CSV, error) {
	if len(text) > MaxCSVBytes {
		return CSV{}, fmt.Errorf("is %d bytes; a CSV holds at most %d bytes (%d MiB)", len(text), MaxCSVBytes, MaxCSVBytes>>20)
	}
	if !utf8.ValidString(text) {
		line := 1 + strings.Count(text[:firstInvalidUTF8(text)], "\n")
		return CSV{}, fmt.Errorf("is not UTF-8 text (line %d); save the file as UTF-8", line)
	}
	// JSON decoders (ours, and a client's encoder) replace bytes that are
	// not UTF-8 with U+FFFD: a file that was not UTF-8 arrives with them.
	if i := strings.IndexRune(text, utf8.RuneError); i >= 0 {
		return CSV{}, fmt.Errorf("is not UTF-8 text (line %d has U+FFFD, left where bytes were not UTF-8); save the file as UTF-8", 1+strings.Count(text[:i], "\n"))
	}
	body := strings.TrimPrefix(text, "\uFEFF") // a BOM some spreadsheets write
	if i := strings.IndexFunc(body, func(r rune) bool {
		return unicode.IsControl(r) && r != '\n' && r != '\r' && r != '\t'
	}); i >= 0 {
		return CSV{}, fmt.Errorf("contains a control character (line %d); a CSV holds text", 1+strings.Count(body[:i], "\n"))
	}
	if strings.TrimSpace(body) == "" {
		return CSV{}, errors.New("is empty; it needs a header line and at least one row")
	}
	r := csv.NewReader(strings.NewReader(body))
	r.ReuseRecord = false
	header, err := r.Read()
	if err != nil {
		return CSV{}, csvError(err)
	}
	seen := map[string]bool{}
	for i, h := range header {
		h = strings.TrimSpace(h)
		header[i] = h
		switch {
		case h == "":
			return CSV{}, fmt.Errorf("header column %d has no name", i+1)
		case seen[h]:
			return CSV{}, fmt.Errorf("header names column %q twice", h)
		}
		seen[h] = true
	}
	var missing []string
	for _, h := range required {
		if !seen[h] {
			missing = append(missing, h)
		}
	}
	if len(missing) > 0 {
		return CSV{}, fmt.Errorf("header lacks the column(s) %s (it has %s)", strings.Join(missing, ", "), strings.Join(header, ", "))
	}
	var rows [][]string
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) && errors.Is(pe.Err, csv.ErrFieldCount) {
				return CSV{}, fmt.Errorf("line %d has %d fields, the header has %d", pe.StartLine, len(rec), len(header))
			}
			return CSV{}, csvError(err)
		}
		rows = append(rows, rec)
	}
	if len(rows) == 0 {
		return CSV{}, errors.New("has a header but no rows")
	}
	return CSV{text: text, header: header, rows: rows}, nil
}

func csvError(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return fmt.Errorf("is not valid CSV: line %d: %v", pe.StartLine, pe.Err)
	}
	return fmt.Errorf("is not valid CSV: %v", err)
}

func firstInvalidUTF8(s string) int {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return len(s)
}

// Text returns the CSV as it was given ("" for none).
func (c CSV) Text() string { return c.text }

// Header returns the column names, trimmed.
func (c CSV) Header() []string { return c.header }

// Len returns the number of rows, the header not counted.
func (c CSV) Len() int { return len(c.rows) }

// Row returns row n (1 is the line after the header) as a record keyed by
// the header's names; nil when there is no such row.
func (c CSV) Row(n int) map[string]string {
	if n < 1 || n > len(c.rows) {
		return nil
	}
	rec := make(map[string]string, len(c.header))
	for i, h := range c.header {
		rec[h] = c.rows[n-1][i]
	}
	return rec
}

// IsZero reports whether the field was left unset.
func (c CSV) IsZero() bool { return c.text == "" }

// MarshalJSON writes the CSV's text as a JSON string (null when unset),
// without escaping <, > and &.
func (c CSV) MarshalJSON() ([]byte, error) {
	if c.text == "" {
		return []byte("null"), nil
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(c.text); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
