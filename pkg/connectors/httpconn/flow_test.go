package httpconn_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dripflow/dripflow/pkg/connectors/file"
	"github.com/dripflow/dripflow/pkg/connectors/httpconn"
	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/flows"
	"github.com/dripflow/dripflow/pkg/store"
)

// TestFlowFilesToHTTP: a JSONL file flows to an endpoint through flows.New,
// job.Open and the pipeline as a worker runs it: each batch is one request
// whose key is the batch's "<flow>/<run>/<seq>"; a batch processed again
// (a retry) sends the same key and body; a batch failing on a 400 reports
// the status.
func TestFlowFilesToHTTP(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	var lines []byte
	for i := 1; i <= 7; i++ {
		lines = fmt.Appendf(lines, `{"id": %d}`+"\n", i)
	}
	if err := os.WriteFile(filepath.Join(dir, "in.jsonl"), lines, 0o644); err != nil {
		t.Fatal(err)
	}
	srv := newServer(t)
	job, err := flows.New(flows.Flow{
		Name:   "files_to_http",
		Source: &file.Source{Path: dir, Format: file.JSONL, NoMetadata: true},
		Sink:   &httpconn.Sink{URL: srv.URL, Body: httpconn.BodyArray},
	})
	if err != nil {
		t.Fatal(err)
	}
	p, err := job.Open(ctx, engine.Env{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	bp := p.(engine.BatchProcessor)
	var batches []store.Batch
	for lo, seq := p.Start(""), int64(1); ; seq++ {
		hi, _, ok, err := p.Next(ctx, lo, 3)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		batches = append(batches, store.Batch{RunID: 9, Seq: seq, Lo: lo, Hi: hi})
		lo = hi
	}
	for _, b := range append(batches, batches[1]) { // batch 2 delivered twice
		res, err := bp.ProcessBatch(ctx, nil, b)
		if err != nil {
			t.Fatalf("batch %d: %v", b.Seq, err)
		}
		if res.RowsWritten != res.RowsRead || res.RowsRead == 0 {
			t.Errorf("batch %d: %+v", b.Seq, res)
		}
	}
	reqs := srv.requests()
	wantKeys := []string{"files_to_http/9/1", "files_to_http/9/2", "files_to_http/9/3", "files_to_http/9/2"}
	if diff := cmp.Diff(wantKeys, keys(reqs, "Idempotency-Key")); diff != "" {
		t.Fatalf("keys (-want +got):\n%s", diff)
	}
	if reqs[1].Body != reqs[3].Body || reqs[1].Body != `[{"id":4},{"id":5},{"id":6}]` {
		t.Errorf("batch 2 sent %s, then %s", reqs[1].Body, reqs[3].Body)
	}
	var all []map[string]int
	for _, r := range reqs[:3] {
		var recs []map[string]int
		if err := json.Unmarshal([]byte(r.Body), &recs); err != nil {
			t.Fatal(err)
		}
		all = append(all, recs...)
	}
	if len(all) != 7 || all[6]["id"] != 7 {
		t.Errorf("records sent: %v", all)
	}

	bad := newServer(t, reply{status: 422, body: `{"error": "id 1 is taken"}`})
	job, err = flows.New(flows.Flow{Name: "files_to_http_bad", Source: &file.Source{Path: dir, Format: file.JSONL}, Sink: &httpconn.Sink{URL: bad.URL}})
	if err != nil {
		t.Fatal(err)
	}
	p, err = job.Open(ctx, engine.Env{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.(engine.BatchProcessor).ProcessBatch(ctx, nil, batches[0])
	if err == nil || len(bad.requests()) != 1 {
		t.Fatalf("batch against a 422: %v after %d requests", err, len(bad.requests()))
	}
	for _, want := range []string{"write http", "422", "id 1 is taken", "files_to_http_bad/9/1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}
