package web

import (
	"math"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestSafeNext(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/runs/7?batches=failed#batches", "/runs/7?batches=failed#batches"},
		{"/", "/"},
		{"", "/"},
		{"runs", "/"},
		{"//evil.example/x", "/"},
		{"/\\evil.example", "/"},
		{"/x\\y", "/"},
		{"/\t/evil.example", "/"},
		{"/\r\n/evil.example", "/"},
		{"https://evil.example", "/"},
		{"javascript:alert(1)", "/"},
		{"/login?next=/x", "/"},
		{"/logout", "/"},
		{"/%2f%2fevil.example", "/%2f%2fevil.example"},
	} {
		if got := safeNext(tc.in); got != tc.want {
			t.Errorf("safeNext(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzSafeNext checks that whatever comes in, the result is a path on this
// site: a browser given base+result never leaves it.
func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{"/runs", "//x", "/\\x", "http://x", "/a?b=//c", "/\x00", "/%5cx", " /x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got := safeNext(in)
		if !strings.HasPrefix(got, "/") || strings.HasPrefix(got, "//") || strings.ContainsAny(got, "\\") {
			t.Fatalf("safeNext(%q) = %q", in, got)
		}
		for _, c := range got {
			if c < 0x20 || c == 0x7f {
				t.Fatalf("safeNext(%q) = %q has a control character", in, got)
			}
		}
		u, err := url.Parse(got)
		if err != nil || u.Host != "" || u.Scheme != "" {
			t.Fatalf("safeNext(%q) = %q parses to host %q scheme %q (%v)", in, got, u.Host, u.Scheme, err)
		}
	})
}

func TestLocalHost(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost:8080": true, "127.0.0.1:80": true, "[::1]:8080": true, "app.localhost": true,
		"dripflow.example.com": false, "10.0.0.5:8080": false, "": false,
	} {
		if got := localHost(host); got != want {
			t.Errorf("localHost(%q) = %v", host, got)
		}
	}
}

func TestFormats(t *testing.T) {
	for in, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -4500: "-4,500"} {
		if got := formatCount(in); got != want {
			t.Errorf("formatCount(%d) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[float64]string{-1: "—", 0: "0.0s", 4.25: "4.2s", 10: "10s", 90: "1m 30s", 120: "2m", 3600: "1h", 3660: "1h 1m", 90000: "1d 1h", 172800: "2d"} {
		if got := formatSeconds(in); got != want {
			t.Errorf("formatSeconds(%v) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[float64]string{-1: "—", 0: "0.0 %", 42.345: "42.3 %", 100: "100.0 %"} {
		if got := formatPercent(in); got != want {
			t.Errorf("formatPercent(%v) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[float64]string{0: "—", 12.34: "12.3 rows/s", 1234.5: "1,235 rows/s"} {
		if got := formatRate(in); got != want {
			t.Errorf("formatRate(%v) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[float64]float64{0: 1, 0.3: 0.5, 7: 10, 12: 20, 480: 500, 1001: 2000} {
		if got := niceCeil(in); got < want*0.999 || got > want*1.001 {
			t.Errorf("niceCeil(%v) = %v, want %v", in, got, want)
		}
	}
	for _, tc := range []struct{ lo, hi, want string }{
		{"", "[10]", "(start, 10]"},
		{"[1999]", "[2999]", "(1999, 2999]"},
		{`[{"t":"2026-12-02T00:40:16Z"},1000]`, `[{"t":"2026-12-02T00:41:00.5Z"},1]`, "((2026-12-02 00:40:16Z, 1000), (2026-12-02 00:41:00.5Z, 1)]"},
		{`["bob"]`, `["carol, jr."]`, `("bob", "carol, jr."]`},
		{"1700000000000-0", "1700000000123-4", "(1700000000000-0, 1700000000123-4]"}, // a stream's ids
	} {
		if got := keyRange(tc.lo, tc.hi); got != tc.want {
			t.Errorf("keyRange(%q, %q) = %q, want %q", tc.lo, tc.hi, got, tc.want)
		}
	}
}

func TestThroughputChart(t *testing.T) {
	empty := string(throughputChart(nil))
	if !strings.Contains(empty, "No finished batches yet") {
		t.Errorf("empty chart: %s", empty)
	}
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var pts []chartPoint
	for i := range 100 {
		end := t0.Add(time.Duration(i+1) * time.Second)
		pts = append(pts, chartPoint{Start: end.Add(-time.Second), End: end, Rows: 500})
	}
	svg := string(throughputChart(pts))
	for _, want := range []string{"<polyline", "50,000 rows in 100 batches", "03:04:05", "03:05:45 UTC", "buckets of 5s", "peak 500 rows/s"} {
		if !strings.Contains(svg, want) {
			t.Errorf("chart lacks %q:\n%s", want, svg)
		}
	}
	for _, bad := range []string{"style", "<script", "NaN", "Inf"} {
		if strings.Contains(svg, bad) {
			t.Errorf("chart contains %q", bad)
		}
	}
	// A steady run draws a flat line to its end, whatever the last
	// bucket's share of a step: it does not drop at the end.
	polyline := regexp.MustCompile(`<polyline points="([^"]+)"`)
	for _, count := range []int{100, 101, 103, 117} {
		var steady []chartPoint
		for i := range count {
			end := t0.Add(time.Duration(i+1) * time.Second)
			steady = append(steady, chartPoint{Start: end.Add(-time.Second), End: end, Rows: 500})
		}
		m := polyline.FindStringSubmatch(string(throughputChart(steady)))
		if m == nil {
			t.Fatalf("%d batches: no line", count)
		}
		pts := strings.Fields(m[1])
		var ys []float64
		for _, p := range pts {
			_, y, _ := strings.Cut(p, ",")
			v, err := strconv.ParseFloat(y, 64)
			if err != nil {
				t.Fatalf("point %q: %v", p, err)
			}
			ys = append(ys, v)
		}
		for i, y := range ys {
			if math.Abs(y-ys[0]) > 2 {
				t.Errorf("%d steady batches: point %d of %d at y=%.1f, the first at y=%.1f (%s)", count, i+1, len(ys), y, ys[0], m[1])
				break
			}
		}
	}
	one := string(throughputChart([]chartPoint{{End: t0, Rows: 7}}))
	if !strings.Contains(one, "<rect") || strings.Contains(one, "NaN") {
		t.Errorf("one-batch chart:\n%s", one)
	}
}

func TestParseRunFormTimes(t *testing.T) {
	paris, _ := time.LoadLocation("Europe/Paris")
	for _, tc := range []struct {
		in   string
		want time.Time
	}{
		{"2026-03-29T01:30", time.Date(2026, 3, 29, 0, 30, 0, 0, time.UTC)},
		{"2026-07-01T12:00:30", time.Date(2026, 7, 1, 10, 0, 30, 0, time.UTC)},
		{"2026-07-01 12:00", time.Date(2026, 7, 1, 10, 0, 0, 0, time.UTC)},
		{"2026-07-01T12:00:00Z", time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)},
	} {
		got, err := parseLocal(tc.in, paris)
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("parseLocal(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	if _, err := parseLocal("tomorrow", paris); err == nil {
		t.Error("parseLocal accepted tomorrow")
	}
}
