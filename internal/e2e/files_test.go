package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/dripflow/dripflow/internal/e2e/e2edefs"
	"github.com/dripflow/dripflow/pkg/control"
	"github.com/dripflow/dripflow/pkg/store"
)

// A table → JSONL files flow through a scheduler and worker processes, one
// worker SIGKILLed mid-flow: the run succeeds, every row is in the files
// exactly once, and no temporary or half-written file remains (a killed
// batch's retry rewrites its own files and removes its temporaries).
func TestProcessFilesWorkerKilled(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(e2edefs.FilesDirEnv, dir) // the processes inherit it
	c := newCluster(t)
	ctx := context.Background()
	const items, size = 20_000, 500
	c.seedItems(items)
	c.scheduler()
	w1 := c.worker(4)
	c.worker(4)
	c.waitFor("e2e_files to be registered", 30*time.Second, func() bool {
		_, err := c.st.GetFlow(ctx, "e2e_files")
		return err == nil
	})
	r := c.createRun(control.NewRun{Definition: "e2e_files", BatchSize: ptr(size), MaxInFlight: ptr(8)})
	c.waitFor("8 batches, one running on the first worker", time.Minute, func() bool {
		return c.run(r.ID).BatchesSucceeded >= 8 && c.holdsBatch(r.ID, w1)
	})
	w1.kill(t)
	c.worker(4)
	r = c.waitDone(r.ID, 3*time.Minute)
	const batches = items / size
	if r.State != store.RunSucceeded || r.BatchesSucceeded != batches || r.RowsRead != items || r.RowsWritten != items {
		t.Fatalf("run %d: %s %+v; want succeeded with %d batches and %d rows", r.ID, r.State, r.Counters, batches, items)
	}
	if n := c.batchesWithAttempts(r.ID, 2); n == 0 {
		t.Errorf("no batch needed a second attempt: the kill hit nothing in flight")
	}

	final := regexp.MustCompile(`^e2e_files-\d{6}-\d{6}-\d{4}\.jsonl$`)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	seen := make(map[int64]int, items)
	files := 0
	for _, e := range entries {
		if e.Name() == ".dripflow-tmp" {
			tmps, _ := os.ReadDir(filepath.Join(dir, e.Name()))
			for _, tmp := range tmps {
				t.Errorf("temporary file %s remains", tmp.Name())
			}
			continue
		}
		if !final.MatchString(e.Name()) {
			t.Errorf("unexpected file %s", e.Name())
			continue
		}
		files++
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var rec struct {
				ID  int64  `json:"id"`
				Val string `json:"val"`
			}
			if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
				t.Errorf("%s: half or bad line %q: %v", e.Name(), sc.Text(), err)
				continue
			}
			seen[rec.ID]++
		}
		f.Close()
	}
	if files != batches*3 { // 500 records a batch: parts of 200, 200 and 100
		t.Errorf("%d files, want %d", files, batches*3)
	}
	assertEachIDOnce(t, seen, items)
}
