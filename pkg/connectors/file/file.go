package file

import (
	"github.com/dripflow/dripflow/pkg/flows"
)

// Kind is the connector's registered kind name.
const Kind = "file"

func init() {
	flows.RegisterConnector(flows.Connector{
		Kind:        Kind,
		Description: "JSONL or CSV files: read a file or a directory glob as it grows, write each batch as files in a directory",
		Delivery:    "idempotent: each batch writes files with names of its own under a temporary name, renamed on success; a retry rewrites them",
		Source:      func() flows.SourceConfig { return &Source{} },
		Sink:        func() flows.SinkConfig { return &Sink{} },
	})
}

// Format is a file format.
type Format string

const (
	// JSONL is one JSON object per line.
	JSONL Format = "jsonl"
	// CSV is comma-separated values (RFC 4180) whose first row names the
	// fields.
	CSV Format = "csv"
)

// Metadata fields a Source adds to every record it reads, so a sink can key
// an upsert on where the record came from.
const (
	// FieldFile holds the path of the file the record was read from, as the
	// source's Path matched it.
	FieldFile = "_file"
	// FieldOffset holds the byte offset (int64) at which the record starts
	// in its file.
	FieldOffset = "_offset"
)

func validFormat(f Format) error {
	if f != JSONL && f != CSV {
		return flows.Errorf("format", "must be %q or %q, got %q", JSONL, CSV, f)
	}
	return nil
}
