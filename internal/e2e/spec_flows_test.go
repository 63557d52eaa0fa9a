package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dripflow/dripflow/internal/e2e/e2edefs"
	"github.com/dripflow/dripflow/internal/testenv"
	"github.com/dripflow/dripflow/pkg/control"
	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/events"
	"github.com/dripflow/dripflow/pkg/flows"
	"github.com/dripflow/dripflow/pkg/store"
)

// Flows defined at run time: specs stored in the store (through
// flows.Apply, as the API does, or from DRIPFLOW_FLOWS_DIR), which the
// scheduler and worker processes have never seen compiled.

// specController is a control path that resolves spec flows, as the web
// process's is.
func (c *cluster) specController() *control.Controller {
	reg := engine.NewRegistry()
	reg.SetLoader(flows.SpecLoader(c.st))
	return &control.Controller{Store: c.st, Registry: reg, Events: events.New(c.rdb, "")}
}

// applySpec stores a spec flow (JSON) as the API would.
func (c *cluster) applySpec(js string) store.FlowSpec {
	c.t.Helper()
	s, err := flows.ParseSpec([]byte(js))
	if err != nil {
		c.t.Fatalf("parse spec: %v", err)
	}
	fs, _, err := flows.Apply(context.Background(), c.st, s, "e2e")
	if err != nil {
		c.t.Fatalf("store spec %s: %v", s.Name, err)
	}
	return fs
}

func (c *cluster) runsOf(flow string) []store.Run {
	c.t.Helper()
	page, err := c.st.ListRuns(context.Background(), store.RunFilter{Definition: flow, Limit: 200})
	if err != nil {
		c.t.Fatal(err)
	}
	return page.Items // newest first
}

func (c *cluster) flowState(flow string) store.FlowState {
	c.t.Helper()
	fs, err := c.st.GetFlow(context.Background(), flow)
	if err != nil {
		c.t.Fatalf("flow %s: %v", flow, err)
	}
	return fs
}

func (c *cluster) activate(flow string, on bool) {
	c.t.Helper()
	if _, err := c.st.SetFlowActive(context.Background(), flow, on); err != nil {
		c.t.Fatalf("activate %s=%v: %v", flow, on, err)
	}
}

// seedStream adds entries {n: 1..entries} to a Redis stream and returns a
// client of that Redis and the last entry's id.
func seedStream(t *testing.T, redisURL, stream string, entries int) (*redis.Client, string) {
	t.Helper()
	ctx := context.Background()
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	evs := redis.NewClient(opts)
	t.Cleanup(func() { evs.Close() })
	pipe := evs.Pipeline()
	for i := 1; i <= entries; i++ {
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []any{"n", i}})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	last, err := evs.XRevRangeN(ctx, stream, "+", "-", 1).Result()
	if err != nil || len(last) != 1 {
		t.Fatalf("last entry of %s: %v, %v", stream, last, err)
	}
	return evs, last[0].ID
}

// assertEachIDOnce fails the test unless seen holds each id 1..n exactly
// once.
func assertEachIDOnce[N ~int | ~int64](t *testing.T, seen map[N]int, n N) {
	t.Helper()
	var missing, dup int
	for id := N(1); id <= n; id++ {
		switch seen[id] {
		case 0:
			missing++
		case 1:
		default:
			dup++
		}
	}
	if missing != 0 || dup != 0 || N(len(seen)) != n {
		t.Errorf("records: %d ids missing, %d more than once, %d distinct; want each of %d once", missing, dup, len(seen), n)
	}
}

// readJSONL counts each id in the flow's JSONL files under dir.
func readJSONL(t *testing.T, dir, prefix string) (map[int64]int, int) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int64]int{}
	files := 0
	for _, e := range entries {
		if e.Name() == ".dripflow-tmp" {
			tmps, _ := os.ReadDir(filepath.Join(dir, e.Name()))
			for _, tmp := range tmps {
				t.Errorf("temporary file %s remains", tmp.Name())
			}
			continue
		}
		if !strings.HasPrefix(e.Name(), prefix) || !strings.HasSuffix(e.Name(), ".jsonl") {
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
				ID json.Number `json:"id"`
			}
			if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
				t.Errorf("%s: half or bad line %q: %v", e.Name(), sc.Text(), err)
				continue
			}
			id, err := rec.ID.Int64()
			if err != nil {
				t.Errorf("%s: id %q: %v", e.Name(), rec.ID, err)
				continue
			}
			seen[id]++
		}
		f.Close()
	}
	return seen, files
}

// (a) A spec flow PostgreSQL table → JSONL files, created from a YAML file
// in DRIPFLOW_FLOWS_DIR, activated, run by a scheduler and two workers that
// never saw it compiled, one worker SIGKILLed mid-run: every row is in the
// files exactly once and the watermark moved to the last row.
func TestProcessSpecFlowTableToFiles(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	const items, size = 10_000, 500
	c.seedItems(items)
	out, specs := t.TempDir(), t.TempDir()
	yaml := fmt.Sprintf(`name: e2e_spec_files
description: items to JSONL, from a spec file
source:
  kind: sql
  settings:
    table: e2e_items
    columns: [id, val]
    cursor: [id]
transforms:
  - type: e2e_slow
    sleep_ms: 600
sink:
  kind: file
  settings:
    dir: %s
    format: jsonl
    max_records: 200
options:
  batch_size: %d
  max_in_flight: 4
`, out, size)
	if err := os.WriteFile(filepath.Join(specs, "items-export.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	c.env = append(c.env, "DRIPFLOW_FLOWS_DIR="+specs, "DRIPFLOW_FLOWS_DIR_INTERVAL=500ms")
	c.scheduler()
	w1 := c.worker(2)
	c.worker(2)
	c.waitFor("the spec file's flow", 30*time.Second, func() bool {
		d, err := c.st.GetDefinition(ctx, "e2e_spec_files")
		return err == nil && d.Origin == store.OriginSpec && d.Version == 1
	})
	c.activate("e2e_spec_files", true)
	var r store.Run
	c.waitFor("the activation's run", 30*time.Second, func() bool {
		runs := c.runsOf("e2e_spec_files")
		if len(runs) > 0 {
			r = runs[0]
		}
		return len(runs) == 1
	})
	if r.SpecVersion != 1 || r.CreatedBy != "scheduler" {
		t.Errorf("run %d: spec version %d, created by %q; want version 1 by the scheduler", r.ID, r.SpecVersion, r.CreatedBy)
	}
	c.waitFor("4 batches, one running on the first worker", time.Minute, func() bool {
		return c.run(r.ID).BatchesSucceeded >= 4 && c.holdsBatch(r.ID, w1)
	})
	w1.kill(t)
	c.worker(2)
	r = c.waitDone(r.ID, 3*time.Minute)
	const batches = items / size
	if r.State != store.RunSucceeded || r.BatchesSucceeded != batches || r.RowsRead != items || r.RowsWritten != items {
		t.Fatalf("run %d: %s %+v (%s); want succeeded with %d batches and %d rows", r.ID, r.State, r.Counters, r.Error, batches, items)
	}
	if n := c.batchesWithAttempts(r.ID, 2); n == 0 {
		// The kill came while the worker held a batch (holdsBatch), yet
		// under load its checkpoint may have landed first; what matters
		// above is that every row is there once.
		t.Logf("no batch needed a second attempt: the kill landed after the held batch's checkpoint")
	}
	seen, files := readJSONL(t, out, "e2e_spec_files-")
	if files != batches*3 {
		t.Errorf("%d files, want %d", files, batches*3)
	}
	assertEachIDOnce(t, seen, items)
	fs := c.flowState("e2e_spec_files")
	if !strings.Contains(fs.Watermark, fmt.Sprint(items)) {
		t.Errorf("watermark %q, want the last id %d", fs.Watermark, items)
	}
}

// (b) A spec flow Redis stream → PostgreSQL table stored through the store
// (as the API stores it), started through the control path, a worker
// SIGKILLed mid-run: every entry lands once by key, and the flow's offset
// and the consumer group reached the stream's end.
func TestProcessSpecFlowStreamToTable(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	const entries, size = 4_000, 100
	eventsURL := testenv.RedisDB(t)
	t.Setenv("DRIPFLOW_CONNECTIONS", e2edefs.EventsConnection+"="+eventsURL+","+e2edefs.WarehouseConnection+"="+c.dbURL)
	if err := c.db.Exec(e2edefs.StreamRowsDDL).Error; err != nil {
		t.Fatal(err)
	}
	const stream = "e2e:spec-events"
	evs, lastID := seedStream(t, eventsURL, stream, entries)
	fs := c.applySpec(fmt.Sprintf(`{"name": "e2e_spec_stream",
		"source": {"kind": "redisstream", "settings": {"connection": %q, "stream": %q, "group": "spec", "id_field": "entry_id"}},
		"transforms": [{"type": "select", "fields": ["entry_id", "n"]}, {"type": "e2e_slow", "sleep_ms": 150}],
		"sink": {"kind": "sql", "settings": {"connection": %q, "table": "e2e_stream_rows", "mode": "upsert", "key": ["entry_id"]}},
		"options": {"batch_size": %d, "max_in_flight": 4},
		"max_batches_per_run": 1000}`, e2edefs.EventsConnection, stream, e2edefs.WarehouseConnection, size))
	if fs.Version != 1 {
		t.Fatalf("stored version %d, want 1", fs.Version)
	}
	c.scheduler()
	w1 := c.worker(2)
	c.worker(2)
	r, err := c.specController().CreateRun(ctx, control.NewRun{Definition: "e2e_spec_stream", CreatedBy: "e2e"})
	if err != nil {
		t.Fatalf("create run of the spec flow: %v", err)
	}
	if r.SpecVersion != 1 || r.Kind != store.KindFlow {
		t.Errorf("run: kind %s, spec version %d; want a flow run of version 1", r.Kind, r.SpecVersion)
	}
	c.waitFor("5 batches, one running on the first worker", time.Minute, func() bool {
		return c.run(r.ID).BatchesSucceeded >= 5 && c.holdsBatch(r.ID, w1)
	})
	w1.kill(t)
	c.worker(2)
	r = c.waitDone(r.ID, 3*time.Minute)
	batches := int64(entries / size)
	if r.State != store.RunSucceeded || r.BatchesSucceeded != batches || r.RowsRead != entries {
		t.Errorf("run %d: %s with %+v (%s); want succeeded, %d batches, %d rows read", r.ID, r.State, r.Counters, r.Error, batches, entries)
	}
	var got struct{ Rows, Distinct, Lo, Hi int64 }
	if err := c.db.Raw("SELECT count(*) AS rows, count(DISTINCT n) AS distinct, min(n) AS lo, max(n) AS hi FROM e2e_stream_rows").Scan(&got).Error; err != nil {
		t.Fatal(err)
	}
	if got.Rows != entries || got.Distinct != entries || got.Lo != 1 || got.Hi != entries {
		t.Errorf("e2e_stream_rows: %+v; want every n in 1..%d once", got, entries)
	}
	if st := c.flowState("e2e_spec_stream"); st.Watermark != lastID {
		t.Errorf("offset (watermark) %q, want the last entry %s", st.Watermark, lastID)
	}
	groups, err := evs.XInfoGroups(ctx, stream).Result()
	if err != nil || len(groups) != 1 || groups[0].LastDeliveredID != lastID {
		t.Errorf("consumer groups %+v (%v), want spec delivered up to %s", groups, err, lastID)
	}
	if n := c.batchesWithAttempts(r.ID, 2); n == 0 {
		// The kill came while the worker held a batch (holdsBatch), yet
		// under load its checkpoint may have landed first; what matters
		// above is that every row is there once.
		t.Logf("no batch needed a second attempt: the kill landed after the held batch's checkpoint")
	}
}

// smallFileSpec is a quick spec flow over e2e_items into JSONL files.
func smallFileSpec(name, dir, runtime string, sleepMS, batch int) string {
	return fmt.Sprintf(`{"name": %q,
		"source": {"kind": "sql", "settings": {"table": "e2e_items", "columns": ["id", "val"]}},
		"transforms": [{"type": "e2e_slow", "sleep_ms": %d}],
		"sink": {"kind": "file", "settings": {"dir": %q, "format": "jsonl"}},
		"runtime": %q,
		"options": {"batch_size": %d, "max_in_flight": 1}}`, name, sleepMS, dir, runtime, batch)
}

// (c) Runtimes of spec flows through a real scheduler.
func TestProcessSpecFlowRuntimes(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	c.seedItems(300)
	dir := t.TempDir()
	c.applySpec(smallFileSpec("e2e_spec_once", dir, "once", 0, 100))
	c.applySpec(smallFileSpec("e2e_spec_beat", dir, "every 1s", 1500, 100))
	c.applySpec(smallFileSpec("e2e_spec_cron", dir, "cron @every 2s", 0, 300))
	c.scheduler()
	c.worker(2)

	t.Run("once per activation", func(t *testing.T) {
		// A run by hand before the activation does not count.
		byHand, err := c.specController().CreateRun(ctx, control.NewRun{Definition: "e2e_spec_once", CreatedBy: "e2e"})
		if err != nil {
			t.Fatal(err)
		}
		c.waitDone(byHand.ID, time.Minute)
		c.activate("e2e_spec_once", true)
		c.waitFor("the activation's run", 30*time.Second, func() bool { return len(c.runsOf("e2e_spec_once")) == 2 })
		c.waitFor("it to end", time.Minute, func() bool { return c.runsOf("e2e_spec_once")[0].State.Terminal() })
		time.Sleep(3 * time.Second)
		runs := c.runsOf("e2e_spec_once")
		if len(runs) != 2 {
			t.Fatalf("%d runs after one activation and one run by hand, want 2", len(runs))
		}
		if runs[0].CreatedBy != "scheduler" || runs[0].State != store.RunSucceeded {
			t.Errorf("activation's run: %s by %q", runs[0].State, runs[0].CreatedBy)
		}
		c.activate("e2e_spec_once", false)
		time.Sleep(10 * time.Millisecond)
		c.activate("e2e_spec_once", true)
		c.waitFor("the second activation's run", 30*time.Second, func() bool { return len(c.runsOf("e2e_spec_once")) == 3 })
		c.waitFor("it to end", time.Minute, func() bool { return c.runsOf("e2e_spec_once")[0].State.Terminal() })
		time.Sleep(3 * time.Second)
		if n := len(c.runsOf("e2e_spec_once")); n != 3 {
			t.Fatalf("%d runs after two activations and one run by hand, want 3", n)
		}
	})

	t.Run("heartbeat slower than its interval", func(t *testing.T) {
		// Each run takes about 4.5s (3 batches of 1.5s, one at a time)
		// on a 1s heartbeat.
		activated := time.Now()
		c.activate("e2e_spec_beat", true)
		c.waitFor("three runs of the heartbeat flow to end", 2*time.Minute, func() bool {
			n := 0
			for _, r := range c.runsOf("e2e_spec_beat") {
				if r.State.Terminal() {
					n++
				}
			}
			return n >= 3
		})
		c.activate("e2e_spec_beat", false)
		elapsed := time.Since(activated)
		runs := c.runsOf("e2e_spec_beat")
		sort.Slice(runs, func(a, b int) bool { return runs[a].ID < runs[b].ID })
		for i, r := range runs {
			if r.CreatedBy != "scheduler" {
				t.Errorf("run %d created by %q", r.ID, r.CreatedBy)
			}
			if i > 0 {
				prev := runs[i-1]
				if prev.FinishedAt == nil || r.CreatedAt.Before(*prev.FinishedAt) {
					t.Errorf("run %d created at %s while run %d was live (finished %v): runs overlap", r.ID, r.CreatedAt.Format(time.RFC3339Nano), prev.ID, prev.FinishedAt)
				}
			}
		}
		fs := c.flowState("e2e_spec_beat")
		// Every run of ~4.5s misses 3 or 4 one-second ticks; recorded once
		// per pass (every 500ms) it would be twice as many, more than the
		// seconds that passed.
		if fs.MissedTicks < 4 || fs.LastMissedTick == nil {
			t.Errorf("missed ticks %d (last %v), want at least 4 over %d slow runs", fs.MissedTicks, fs.LastMissedTick, len(runs))
		}
		if max := int64(elapsed / time.Second); fs.MissedTicks > max {
			t.Errorf("missed ticks %d in %s: more than one per tick", fs.MissedTicks, elapsed.Round(time.Second))
		}
		if !c.logged("scheduler", "flow tick missed") {
			t.Errorf("the scheduler did not log the missed ticks")
		}
		t.Logf("%d runs in %s, %d missed ticks", len(runs), elapsed.Round(time.Millisecond), fs.MissedTicks)
	})

	t.Run("cron", func(t *testing.T) {
		c.activate("e2e_spec_cron", true)
		c.waitFor("two cron runs", time.Minute, func() bool {
			n := 0
			for _, r := range c.runsOf("e2e_spec_cron") {
				if r.State == store.RunSucceeded {
					n++
				}
			}
			return n >= 2
		})
		c.activate("e2e_spec_cron", false)
		runs := c.runsOf("e2e_spec_cron")
		for _, r := range runs {
			if r.CreatedBy != "scheduler" || r.SpecVersion != 1 {
				t.Errorf("run %d: by %q, spec version %d", r.ID, r.CreatedBy, r.SpecVersion)
			}
		}
		if gap := runs[0].CreatedAt.Sub(runs[1].CreatedAt); gap < 1500*time.Millisecond {
			t.Errorf("cron runs %s apart, want about 2s", gap)
		}
	})
}

// (d) Two run creations of one flow at the same time through the control
// path: one run, and the other is the store's *FlowBusyError naming it —
// for a spec flow and for a flow in code.
func TestProcessFlowBusyConcurrentCreate(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	c.applySpec(smallFileSpec("e2e_spec_busy", t.TempDir(), "once", 0, 100))
	ctl := c.specController()
	if err := ctl.Registry.Register(e2edefs.Sync); err != nil {
		t.Fatal(err)
	}
	if err := ctl.Registry.Sync(ctx, c.st); err != nil {
		t.Fatal(err)
	}
	for _, flow := range []string{"e2e_spec_busy", "e2e_sync"} {
		for round := 0; round < 5; round++ {
			var wg sync.WaitGroup
			start := make(chan struct{})
			runs := make([]store.Run, 2)
			errs := make([]error, 2)
			for i := range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					runs[i], errs[i] = ctl.CreateRun(ctx, control.NewRun{Definition: flow, CreatedBy: fmt.Sprintf("e2e-%d", i)})
				}()
			}
			close(start)
			wg.Wait()
			won, lost := 0, 1
			if errs[0] != nil {
				won, lost = 1, 0
			}
			var busy *store.FlowBusyError
			switch {
			case errs[won] != nil:
				t.Fatalf("%s round %d: both creations failed: %v; %v", flow, round, errs[0], errs[1])
			case errs[lost] == nil:
				t.Fatalf("%s round %d: two live runs %d and %d", flow, round, runs[0].ID, runs[1].ID)
			case !errors.As(errs[lost], &busy) || !errors.Is(errs[lost], store.ErrConflict):
				t.Fatalf("%s round %d: the second creation failed with %v, want a *store.FlowBusyError", flow, round, errs[lost])
			case busy.RunID != runs[won].ID || busy.Flow != flow:
				t.Errorf("%s round %d: busy error %+v, want it to name run %d", flow, round, busy, runs[won].ID)
			}
			if flow == "e2e_spec_busy" && runs[won].SpecVersion != 1 {
				t.Errorf("spec flow run: spec version %d, want 1", runs[won].SpecVersion)
			}
			if _, err := ctl.Cancel(ctx, runs[won].ID); err != nil {
				t.Fatalf("cancel run %d: %v", runs[won].ID, err)
			}
			c.waitDone(runs[won].ID, 10*time.Second)
		}
	}
}

// DRIPFLOW_FLOWS_DIR: files are applied at start and on change; a bad file
// is logged with its name and field and changes nothing; applying the same
// spec again makes no version; a removed file leaves its flow.
func TestProcessFlowsDir(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	specs, out := t.TempDir(), t.TempDir()
	write := func(name, body string) {
		t.Helper()
		// Modification times may be coarse: a changed size tells too.
		if err := os.WriteFile(filepath.Join(specs, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a.json", smallFileSpec("e2e_dir_a", out, "once", 0, 100))
	write("README.txt", "not a spec")
	c.env = append(c.env, "DRIPFLOW_FLOWS_DIR="+specs, "DRIPFLOW_FLOWS_DIR_INTERVAL=300ms")
	c.scheduler()
	version := func(name string) int64 {
		d, err := c.st.GetDefinition(ctx, name)
		if err != nil {
			return 0
		}
		return d.Version
	}
	c.waitFor("e2e_dir_a version 1", 30*time.Second, func() bool { return version("e2e_dir_a") == 1 })

	// A new version when the spec changes.
	write("a.json", smallFileSpec("e2e_dir_a", out, "every 1h", 0, 250))
	c.waitFor("e2e_dir_a version 2", 30*time.Second, func() bool { return version("e2e_dir_a") == 2 })
	spec, err := c.st.GetFlowSpec(ctx, "e2e_dir_a", 0)
	if err != nil || spec.Version != 2 || spec.CreatedBy != "flows-dir" || !strings.Contains(string(spec.Spec), "every 1h") {
		t.Errorf("latest spec %+v (%v)", spec, err)
	}

	// A bad file: logged with its name and field, nothing changes.
	write("b.yml", "name: e2e_dir_b\nsource: {kind: sql, settings: {table: e2e_items}}\nsink: {kind: file, settings: {dir: /tmp, format: xml}}\n")
	c.waitFor("the bad file to be logged", 30*time.Second, func() bool {
		return c.logged("scheduler", "b.yml") && c.logged("scheduler", "sink.format")
	})
	if v := version("e2e_dir_b"); v != 0 {
		t.Errorf("the bad file made e2e_dir_b version %d", v)
	}
	// A file written again unchanged (another mtime) makes no version.
	write("a.json", smallFileSpec("e2e_dir_a", out, "every 1h", 0, 250)+" ")
	time.Sleep(2 * time.Second)
	if v := version("e2e_dir_a"); v != 2 {
		t.Errorf("an unchanged spec made version %d", v)
	}
	// Fixed, it is applied.
	write("b.yml", "name: e2e_dir_b\nsource: {kind: sql, settings: {table: e2e_items}}\nsink: {kind: file, settings: {dir: /tmp, format: jsonl}}\n")
	c.waitFor("e2e_dir_b version 1", 30*time.Second, func() bool { return version("e2e_dir_b") == 1 })
	// Removed, the flow stays.
	if err := os.Remove(filepath.Join(specs, "a.json")); err != nil {
		t.Fatal(err)
	}
	c.waitFor("the removal to be logged", 30*time.Second, func() bool { return c.logged("scheduler", "flow spec file removed") })
	if v := version("e2e_dir_a"); v != 2 {
		t.Errorf("after its file was removed e2e_dir_a is at version %d, want it kept at 2", v)
	}
}
