package web

import (
	"bytes"
	"fmt"
	"math"
	"sort"
	"time"
)

// chartPoint is one finished batch: when it started and finished and how
// many rows it read.
type chartPoint struct {
	Start, End time.Time
	Rows       int64
}

// Geometry of the throughput chart's viewBox.
const (
	chartW, chartH = 720, 220
	plotX0, plotX1 = 64, 704
	plotY0, plotY1 = 18, 184
	chartBuckets   = 48
)

// throughputChart renders rows per second over time as a standalone SVG:
// the batches' rows are summed into equal time buckets by finish time. It
// uses presentation attributes only (no style), so the page's CSP holds.
func throughputChart(points []chartPoint) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" font-family="system-ui, -apple-system, Segoe UI, sans-serif" font-size="11" fill="#334155">`, chartW, chartH, chartW, chartH)
	b.WriteString(`<rect x="0" y="0" width="100%" height="100%" fill="#ffffff"/>`)
	if len(points) == 0 {
		b.WriteString(`<title>Throughput: no finished batches yet</title>`)
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" fill="#64748b" font-size="14">No finished batches yet</text></svg>`, chartW/2, chartH/2)
		return b.Bytes()
	}
	sort.Slice(points, func(i, j int) bool { return points[i].End.Before(points[j].End) })
	first, last := points[0].End, points[len(points)-1].End
	for i, p := range points {
		if p.Start.IsZero() || p.Start.After(p.End) {
			points[i].Start = p.End
		}
		if points[i].Start.Before(first) {
			first = points[i].Start
		}
	}
	span := last.Sub(first)
	// Buckets hold two batches on average at least, so batches paced a
	// little slower than a bucket do not draw a comb.
	n := max(1, min(chartBuckets, len(points)/2))
	step := niceStep(span / time.Duration(n))
	n = min(chartBuckets, int(span/step)+1)
	rows := make([]float64, n)
	var total int64
	for _, p := range points {
		total += p.Rows
		// A batch's rows are spread over the time it ran.
		d := p.End.Sub(p.Start)
		if d <= 0 {
			rows[min(n-1, int(p.End.Sub(first)/step))] += float64(p.Rows)
			continue
		}
		for i := int(p.Start.Sub(first) / step); i < n; i++ {
			lo, hi := first.Add(time.Duration(i)*step), first.Add(time.Duration(i+1)*step)
			if !lo.Before(p.End) {
				break
			}
			overlap := minTime(hi, p.End).Sub(maxTime(lo, p.Start))
			if overlap > 0 {
				rows[i] += float64(p.Rows) * float64(overlap) / float64(d)
			}
		}
	}
	// The last bucket ends with the last batch, not a whole step later:
	// its rate is over the time it covers, so a chart does not drop to
	// zero at the end of every run. A sliver of a bucket joins the one
	// before it.
	durs := make([]float64, n)
	for i := range durs {
		durs[i] = step.Seconds()
	}
	if covered := last.Sub(first.Add(time.Duration(n-1) * step)); n > 1 && covered < step/4 {
		rows[n-2] += rows[n-1]
		durs[n-2] += covered.Seconds()
		rows, durs, n = rows[:n-1], durs[:n-1], n-1
	} else if covered > 0 && covered < step {
		durs[n-1] = covered.Seconds()
	}
	rates := make([]float64, n)
	top := 0.0
	for i, r := range rows {
		rates[i] = r / durs[i]
		top = math.Max(top, rates[i])
	}
	top = niceCeil(top)
	x := func(i int) float64 {
		if n == 1 {
			return float64(plotX0+plotX1) / 2
		}
		return plotX0 + float64(i)*float64(plotX1-plotX0)/float64(n-1)
	}
	y := func(v float64) float64 { return plotY1 - v/top*float64(plotY1-plotY0) }

	fmt.Fprintf(&b, `<title>Throughput: %s rows in %d batches from %s to %s, peak %s</title>`,
		formatCount(total), len(points), first.UTC().Format("15:04:05"), last.UTC().Format("15:04:05 MST"), formatRate(maxOf(rates)))
	// Grid and y labels.
	for _, frac := range []float64{0, 0.5, 1} {
		yy := y(top * frac)
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#e2e8f0"/>`, plotX0, yy, plotX1, yy)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end" dominant-baseline="middle">%s</text>`, plotX0-6, yy, shortNumber(top*frac))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#64748b">rows/s</text>`, 4, plotY0-6)
	// Area and line.
	var line bytes.Buffer
	for i, r := range rates {
		fmt.Fprintf(&line, "%.1f,%.1f ", x(i), y(r))
	}
	if n == 1 {
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="12" height="%.1f" fill="#2563eb"/>`, x(0)-6, y(rates[0]), plotY1-y(rates[0]))
	} else {
		fmt.Fprintf(&b, `<polygon points="%.1f,%d %s%.1f,%d" fill="#2563eb" fill-opacity="0.15"/>`, x(0), plotY1, line.String(), x(n-1), plotY1)
		fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="#2563eb" stroke-width="2" stroke-linejoin="round"/>`, line.String())
	}
	// Time axis.
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#94a3b8"/>`, plotX0, plotY1, plotX1, plotY1)
	layout := "15:04:05"
	if span >= 24*time.Hour {
		layout = "Jan 2 15:04"
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="start">%s</text>`, plotX0, plotY1+16, first.UTC().Format(layout))
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s UTC</text>`, plotX1, plotY1+16, last.UTC().Format(layout))
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" fill="#64748b">%d batches · buckets of %s</text>`, (plotX0+plotX1)/2, plotY1+16, len(points), bucketLabel(step))
	b.WriteString(`</svg>`)
	return b.Bytes()
}

// niceStep rounds a bucket width up to one a person reads at a glance.
func niceStep(d time.Duration) time.Duration {
	for _, s := range []time.Duration{
		100 * time.Millisecond, 200 * time.Millisecond, 500 * time.Millisecond,
		time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
		time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
		time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour,
	} {
		if s >= d {
			return s
		}
	}
	return (d + 24*time.Hour - 1).Truncate(24 * time.Hour)
}

func bucketLabel(d time.Duration) string {
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func maxOf(v []float64) float64 {
	m := 0.0
	for _, x := range v {
		m = math.Max(m, x)
	}
	return m
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// shortNumber writes axis labels: 950, 1.5k, 2M.
func shortNumber(v float64) string {
	switch {
	case v >= 1e6:
		return trimZero(fmt.Sprintf("%.1f", v/1e6)) + "M"
	case v >= 1e3:
		return trimZero(fmt.Sprintf("%.1f", v/1e3)) + "k"
	case v >= 10 || v == 0:
		return fmt.Sprintf("%.0f", v)
	}
	return trimZero(fmt.Sprintf("%.1f", v))
}

func trimZero(s string) string {
	if len(s) > 2 && s[len(s)-2:] == ".0" {
		return s[:len(s)-2]
	}
	return s
}
