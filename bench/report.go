package bench

import (
	"fmt"
	"io"
	"strings"
)

// Target is one goal of the benchmark, met or not in this run.
type Target struct {
	Name  string  `json:"name"`
	Goal  string  `json:"goal"`
	Value float64 `json:"value"`
	Got   string  `json:"got"`
	Met   bool    `json:"met"`
}

// targets evaluates the goals of the sections that ran.
func (res *Results) targets() []Target {
	var ts []Target
	ratio := func(name, goal string, v, limit float64, atMost bool) {
		if v == 0 {
			return // a variant or its baseline did not run
		}
		met := v <= limit
		if !atMost {
			met = v >= limit
		}
		ts = append(ts, Target{Name: name, Goal: goal, Value: v, Got: fmt.Sprintf("%.2f×", v), Met: met})
	}
	if ip := res.InPlace; ip != nil {
		// Issue 13's targets: ProcessRange within 1.25× the best loop,
		// ProcessBatch (records loaded) within 1.6×.
		for _, name := range []string{VariantSQLStoreRecords, VariantRedisRecords} {
			if v := ip.variant(name); v != nil {
				ratio(name+" (ProcessBatch) vs best hand-written loop", "≤ 1.60×", v.VsBestLoop, 1.60, true)
			}
		}
		for _, name := range []string{VariantSQLStore, VariantRedis} {
			if v := ip.variant(name); v != nil {
				ratio(name+" (ProcessRange) vs best hand-written loop", "≤ 1.25×", v.VsBestLoop, 1.25, true)
				if pl := v.Pipeline; pl != nil && pl.Slots > 0 {
					goal := 0.95 * float64(pl.Slots)
					ts = append(ts, Target{Name: name + " busy worker slots (the worker's dripflow_worker_busy_seconds_total / span)", Goal: fmt.Sprintf("≥ %.1f of %d", goal, pl.Slots),
						Value: pl.WorkerBusySlots, Got: fmt.Sprintf("%.2f (batch rows: %.2f, held %.2f)", pl.WorkerBusySlots, pl.BusySlots, pl.HeldSlots), Met: pl.WorkerBusySlots >= goal})
				}
			}
		}
	}
	if ip := res.InPlace; ip != nil {
		// Faster than what a team would pick instead, with either store.
		for _, name := range []string{VariantSQLStore, VariantRedis} {
			if v := ip.variant(name); v != nil {
				for _, peer := range []struct {
					label string
					v     float64
				}{{"River", v.VsRiver}, {"plain asynq", v.VsAsynq}} {
					if peer.v > 0 {
						ts = append(ts, Target{Name: name + " vs " + peer.label + " (same backfill)", Goal: "< 1.00×", Value: peer.v, Got: fmt.Sprintf("%.2f×", peer.v), Met: peer.v < 1})
					}
				}
			}
		}
	}
	if n := res.Noop; n != nil {
		ratio("no-op throughput, Redis store vs plain asynq", "≥ 0.60×", n.DripflowRedis.VsAsynq, 0.60, false)
		ratio("no-op throughput, SQL store vs plain asynq", "≥ 0.25×", n.DripflowSQL.VsAsynq, 0.25, false)
	}
	if f := res.Flow; f != nil {
		ratio("flow copy, SQL store vs INSERT … SELECT", "≤ 2.00×", f.SQLStore.VsInsert, 2.0, true)
		ratio("flow copy, Redis store vs INSERT … SELECT", "≤ 2.00×", f.Redis.VsInsert, 2.0, true)
	}
	if fb := res.FirstBatch; fb != nil && len(fb.Sizes) > 0 {
		flat := func(name string, g float64) {
			ts = append(ts, Target{Name: name, Goal: "±10 %", Value: g, Got: fmt.Sprintf("%+.1f %%", (g-1)*100), Met: g >= 0.9 && g <= 1.1})
		}
		if len(fb.Sizes) > 1 {
			span := fmt.Sprintf(" (%s → %s rows)", count(fb.Sizes[0].Rows), count(fb.Sizes[len(fb.Sizes)-1].Rows))
			flat("scheduler peak RSS growth"+span, fb.RSSGrowthScheduler)
			flat("worker peak RSS growth"+span, fb.RSSGrowthWorker)
		}
		for _, s := range fb.Sizes {
			ms := s.Median.Seconds() * 1000
			ts = append(ts, Target{Name: "time to first batch, median, " + count(s.Rows) + " rows", Goal: "< 100 ms",
				Value: ms, Got: fmt.Sprintf("%.0f ms (max %.0f ms)", ms, s.Max.Seconds()*1000), Met: ms < 100})
		}
	}
	if a := res.Adaptive; a != nil {
		ratio("adaptive (target_batch_ms "+fmt.Sprint(a.Target.Seconds()*1000)+") vs the loop at its best batch size ("+count(a.BestLoop.BatchSize)+")", "≤ 1.10×", a.Dripflow.VsBestLoop, 1.10, true)
		ts = append(ts, Target{Name: "adaptive: longest batch / target", Goal: "≤ 2.00×", Value: a.Dripflow.MaxVsTarget,
			Got: fmt.Sprintf("%.2f×", a.Dripflow.MaxVsTarget), Met: a.Dripflow.MaxVsTarget <= 2})
	}
	return ts
}

// count writes 2000000 as 2M and 50000 as 50k.
func count(n int) string {
	switch {
	case n >= 1_000_000 && n%100_000 == 0:
		return strings.TrimSuffix(strings.TrimSuffix(fmt.Sprintf("%.1f", float64(n)/1e6), "0"), ".") + "M"
	case n >= 1000 && n%100 == 0:
		return strings.TrimSuffix(strings.TrimSuffix(fmt.Sprintf("%.1f", float64(n)/1e3), "0"), ".") + "k"
	}
	return fmt.Sprint(n)
}

// WriteTable writes the results as Markdown tables, the form
// docs/performance.md quotes.
func (res *Results) WriteTable(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	m := res.Machine
	p("dripflow benchmark, %s, %d CPUs (%s), %.0f GiB, PostgreSQL %s, Redis %s, %s; took %.0fs; load average %s before, %s after",
		res.Date.Format("2006-01-02 15:04 MST"), m.CPUs, m.CPUModel, m.MemGiB, m.Postgres, m.Redis, m.Go, res.Elapsed.Seconds(), res.LoadBefore, res.LoadAfter)
	p("")
	if ip := res.InPlace; ip != nil {
		p("### 1. In-place backfill, %s rows, batch size %d", count(ip.Rows), ip.BatchSize)
		p("")
		p("| variant | wall (fastest round) | rows/s | vs UPDATE | vs best loop | mean batch | busy slots: worker; rows (held) | queue wait | rounds |")
		p("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
		for _, v := range ip.Variants {
			mean, busy, wait := "", "", ""
			if v.BatchMean > 0 {
				mean = fmt.Sprintf("%.1f ms", v.BatchMean.Seconds()*1000)
			}
			if pl := v.Pipeline; pl != nil && pl.Batches > 0 {
				busy = fmt.Sprintf("%.2f; %.2f (%.2f) of %d", pl.WorkerBusySlots, pl.BusySlots, pl.HeldSlots, pl.Slots)
				wait = fmt.Sprintf("%.1f ms", ms(pl.QueueWait))
			}
			desc := v.Description
			if v.Settings != "" {
				desc += " (" + v.Settings + ")"
			}
			p("| %s — %s | %.2f s | %s | %.2f× | %.2f× | %s | %s | %s | %s |", v.Name, desc, v.Wall.Seconds(), rate(v.RowsPerSec), v.VsUpdate, v.VsBestLoop, mean, busy, wait, rounds(v.Rounds))
		}
		p("")
		if lines := ip.peerLines(); len(lines) > 0 {
			for _, l := range lines {
				p("%s", l)
			}
			p("")
		}
	}
	if n := res.Noop; n != nil {
		p("### 2. No-op batches, %s, concurrency %d", count(n.Batches), n.Concurrency)
		p("")
		p("| variant | wall (fastest round) | per second | vs asynq | rounds |")
		p("| --- | ---: | ---: | ---: | ---: |")
		for _, v := range []NoopVariant{n.Asynq, n.DripflowRedis, n.DripflowSQL, n.DripflowRedisInProc} {
			if v.Wall == 0 {
				continue
			}
			p("| %s | %.2f s | %s | %.2f× | %s |", v.Description, v.Wall.Seconds(), rate(v.PerSec), v.VsAsynq, rounds(v.Rounds))
		}
		p("")
	}
	if f := res.Flow; f != nil {
		p("### 3. Flow copy with upsert, %s rows, batch size %d", count(f.Rows), f.BatchSize)
		p("")
		p("| variant | wall (fastest round) | rows/s | vs INSERT … SELECT | mean batch | rounds |")
		p("| --- | ---: | ---: | ---: | ---: | ---: |")
		for _, v := range []FlowVariant{f.Insert, f.SQLStore, f.Redis, f.SQLStoreInProc} {
			if v.Wall == 0 {
				continue
			}
			mean := ""
			if v.BatchMean > 0 {
				mean = fmt.Sprintf("%.1f ms", v.BatchMean.Seconds()*1000)
			}
			p("| %s | %.2f s | %s | %.2f× | %s | %s |", v.Description, v.Wall.Seconds(), rate(v.RowsPerSec), v.VsInsert, mean, rounds(v.Rounds))
		}
		p("")
	}
	if fb := res.FirstBatch; fb != nil {
		p("### 4. Time to first batch and memory (scheduler and worker processes, SQL store, worker concurrency %d)", fb.Concurrency)
		p("")
		p("| rows | first batch: median | max | planned | enqueued | samples | full run | scheduler peak RSS | worker peak RSS |")
		p("| ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |")
		for _, s := range fb.Sizes {
			samples := make([]string, len(s.Samples))
			for i, x := range s.Samples {
				samples[i] = fmt.Sprintf("%.0f", x.Seconds()*1000)
			}
			p("| %s | %.1f ms | %.1f ms | %.1f ms | %.1f ms | %s ms | %.1f s (%s rows/s) | %.1f MiB | %.1f MiB |", count(s.Rows),
				s.Median.Seconds()*1000, s.Max.Seconds()*1000, s.Planned.Seconds()*1000, s.Enqueued.Seconds()*1000,
				strings.Join(samples, ", "), s.FullRun.Seconds(), rate(s.RowsPerSec), s.SchedulerPeakMiB, s.WorkerPeakMiB)
		}
		p("")
	}
	if so := res.StoreOps; so != nil {
		p("### 5. Store operations per batch, %s batches (sequential; parallel: %d goroutines claiming and completing)", count(so.Batches), so.Parallel)
		p("")
		p("| store | per batch | p50 | p99 | append (÷16) | enqueue | get run | claim | complete | parallel batches/s |")
		p("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
		for _, c := range []StoreOpsCost{so.SQL, so.Redis} {
			us := func(s Seconds) string { return fmt.Sprintf("%.0f µs", s.Seconds()*1e6) }
			p("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |", c.Description, us(c.PerBatch), us(c.P50), us(c.P99),
				us(c.Ops[opAppend]), us(c.Ops[opEnqueue]), us(c.Ops[opGetRun]), us(c.Ops[opClaim]), us(c.Ops[opComplete]), rate(c.ParallelPerSec))
		}
		p("")
		p("SQL store / Redis store, sequential: %.1f×", so.SQLvsRedis)
		p("")
	}
	if a := res.Adaptive; a != nil {
		d := a.Dripflow
		p("### 6. Adaptive batch size, %s rows, worker concurrency %d", count(a.Rows), a.Concurrency)
		p("")
		p("| variant | wall (fastest round) | rows/s | vs best loop | batches | final / median batch size | longest batch (× target) | rounds |")
		p("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
		p("| hand-written loop at its best batch size, %s | %.2f s | %s | 1.00× | | | | %s |", count(a.BestLoop.BatchSize), a.BestLoop.Wall.Seconds(),
			rate(float64(a.Rows)/a.BestLoop.Wall.Seconds()), rounds(a.BestLoop.Rounds))
		p("| %s — %s | %.2f s | %s | %.2f× | %d | %s / %s | %.0f ms (%.2f×) | %s |", VariantAdaptive, d.Description, d.Wall.Seconds(), rate(float64(a.Rows)/d.Wall.Seconds()),
			d.VsBestLoop, d.Batches, count(d.FinalBatchSize), count(d.MedianBatchSize), d.MaxBatch.Seconds()*1000, d.MaxVsTarget, rounds(d.Rounds))
		p("")
		p("Loop by batch size: %s. Target: %.0f ms a batch, from batch size %s.", a.loopLine(), a.Target.Seconds()*1000, count(a.StartBatchSize))
		p("")
	}
	if sc := res.Scale; sc != nil {
		sc.writeTable(w)
	}
	if len(res.Targets) > 0 {
		p("### Targets")
		p("")
		p("| target | goal | this run | met |")
		p("| --- | --- | ---: | --- |")
		for _, t := range res.Targets {
			met := "no"
			if t.Met {
				met = "yes"
			}
			p("| %s | %s | %s | %s |", t.Name, t.Goal, t.Got, met)
		}
	}
}

// rounds lists the wall times of every round.
func rounds(rs []Seconds) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = fmt.Sprintf("%.2f", r.Seconds())
	}
	return strings.Join(s, ", ") + " s"
}

// rate writes a per-second figure with thousands separators.
func rate(f float64) string {
	s := fmt.Sprintf("%.0f", f)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// peerHeadlines are the dripflow variants compared with the peers, and what
// each one's batches do.
var peerHeadlines = []struct{ name, form string }{
	{VariantSQLStore, "ProcessRange"},
	{VariantRedis, "ProcessRange"},
	{VariantSQLStoreRecords, "ProcessBatch"},
	{VariantRedisRecords, "ProcessBatch"},
}

// peerLines are the "vs River" and "vs asynq" lines of the in-place
// section: each headline dripflow variant's wall time divided by each
// peer's, and the peers' own ratios to the best hand-written loop.
func (r *InPlaceResult) peerLines() []string {
	var lines []string
	for _, peer := range []string{VariantRiver, VariantAsynq} {
		if v := r.variant(peer); v != nil && v.VsBestLoop > 0 {
			lines = append(lines, fmt.Sprintf("- %s: %.2f× the best hand-written loop", peer, v.VsBestLoop))
		}
	}
	for _, h := range peerHeadlines {
		v := r.variant(h.name)
		if v == nil || (v.VsRiver == 0 && v.VsAsynq == 0) {
			continue
		}
		var parts []string
		if v.VsRiver > 0 {
			parts = append(parts, fmt.Sprintf("vs River %.2f×", v.VsRiver))
		}
		if v.VsAsynq > 0 {
			parts = append(parts, fmt.Sprintf("vs asynq %.2f×", v.VsAsynq))
		}
		lines = append(lines, fmt.Sprintf("- %s (%s): %s (below 1: faster than the peer)", h.name, h.form, strings.Join(parts, ", ")))
	}
	return lines
}
