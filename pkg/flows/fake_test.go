package flows

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	"github.com/dripflow/dripflow/pkg/engine"
)

// memSource and memSink are an in-memory connector ("mem") for the tests of
// this package's own logic; connectors are tested against their real
// services in their own packages.
type memSource struct {
	N    int    `json:"n"`
	Fail string `json:"fail,omitempty"`
}

func (*memSource) Kind() string { return "mem" }
func (s *memSource) Validate() error {
	if s.N < 0 {
		return Errorf("n", "must not be negative")
	}
	return nil
}
func (s *memSource) Build(context.Context, *engine.Resources) (Source, error) {
	if s.Fail == "build" {
		return nil, fmt.Errorf("cannot connect")
	}
	return &memSourceLive{n: s.N}, nil
}

type memSourceLive struct {
	n     int
	mu    sync.Mutex
	acked [][2]string
}

func (*memSourceLive) Shape() Shape  { return Offset }
func (*memSourceLive) Resumes() bool { return true }
func (*memSourceLive) Close() error  { return nil }
func (s *memSourceLive) Next(_ context.Context, lo string, size int) (Split, error) {
	from, _ := strconv.Atoi(lo)
	if from >= s.n {
		return Split{}, nil
	}
	hi := min(from+size, s.n)
	return Split{Hi: strconv.Itoa(hi), Last: hi == s.n}, nil
}
func (s *memSourceLive) Read(_ context.Context, lo, hi string) ([]Record, error) {
	from, _ := strconv.Atoi(lo)
	to, _ := strconv.Atoi(hi)
	var out []Record
	for i := from + 1; i <= to; i++ {
		out = append(out, Record{"id": i})
	}
	return out, nil
}
func (s *memSourceLive) Ack(_ context.Context, lo, hi string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.acked = append(s.acked, [2]string{lo, hi})
	return nil
}

type memSink struct {
	Mode string `json:"mode,omitempty"`
}

func (*memSink) Kind() string { return "mem" }
func (s *memSink) Validate() error {
	if s.Mode != "" && s.Mode != "dedupe" {
		return Errorf("mode", "must be dedupe or empty, got %q", s.Mode)
	}
	return nil
}
func (s *memSink) Guarantee() Guarantee {
	if s.Mode == "dedupe" {
		return Idempotent
	}
	return AtLeastOnce
}
func (s *memSink) Build(context.Context, *engine.Resources) (Sink, error) {
	return &memSinkLive{cfg: *s, seen: map[string]bool{}}, nil
}

type memSinkLive struct {
	cfg     memSink
	mu      sync.Mutex
	seen    map[string]bool
	batches []string
	rows    []Record
}

func (s *memSinkLive) Guarantee() Guarantee { return s.cfg.Guarantee() }
func (s *memSinkLive) Close() error         { return nil }
func (s *memSinkLive) Write(_ context.Context, b *Batch) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.batches = append(s.batches, b.ID())
	var n int64
	for i, r := range b.Records {
		id := b.RecordID(i, "id")
		if s.cfg.Mode == "dedupe" && s.seen[id] {
			continue
		}
		s.seen[id] = true
		s.rows = append(s.rows, r)
		n++
	}
	return n, nil
}

func init() {
	RegisterConnector(Connector{
		Kind:   "mem",
		Source: func() SourceConfig { return &memSource{} },
		Sink:   func() SinkConfig { return &memSink{} },
	})
}
