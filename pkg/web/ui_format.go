package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/dripflow/dripflow/pkg/keyset"
	"github.com/dripflow/dripflow/pkg/store"
)

func (s *Server) templateFuncs(u *ui) template.FuncMap {
	return template.FuncMap{
		// url prefixes a path with the base path; dynamic segments go
		// through pathesc first.
		"url": func(parts ...string) string { return s.base + strings.Join(parts, "") },
		"static": func(name string) string {
			return s.base + "/static/" + name + "?v=" + u.staticHash[name]
		},
		"pathesc":     url.PathEscape,
		"queryesc":    url.QueryEscape,
		"num":         formatAnyCount,
		"pct":         formatPercent,
		"dur":         formatSeconds,
		"ms":          func(ms int64) string { return formatSeconds(float64(ms) / 1000) },
		"rate":        formatRate,
		"iso":         isoTime,
		"when":        humanTime,
		"json":        prettyJSON,
		"stateClass":  func(st string) string { return "state state-" + st },
		"monitorTask": s.monitorTaskURL,
		"monitorQueue": func(status string) string {
			u := s.base + "/monitoring/queues/" + url.PathEscape(s.opts.Queue)
			if status != "" {
				u += "?status=" + url.QueryEscape(status)
			}
			return u
		},
		"keyRange": keyRange,
		"humanKey": humanKey,
		"batchCount": func(m map[store.BatchState]int64, st string) int64 {
			return m[store.BatchState(st)]
		},
		"join": strings.Join,
		// card passes a page, a value and where actions return to a
		// partial template.
		"card": func(p *page, v any, back string) cardCtx { return cardCtx{Page: p, V: v, Back: back} },
	}
}

type cardCtx struct {
	Page *page
	V    any
	Back string
}

func pathEscape(s string) string { return url.PathEscape(s) }

func formatAnyCount(v any) string {
	switch n := v.(type) {
	case int:
		return formatCount(int64(n))
	case int64:
		return formatCount(n)
	case int32:
		return formatCount(int64(n))
	case uint64:
		return formatCount(int64(min(n, math.MaxInt64)))
	case float64:
		return formatCount(int64(math.Round(n)))
	}
	return fmt.Sprint(v)
}

// monitorTaskURL is asynqmon's page of a batch's task.
func (s *Server) monitorTaskURL(taskID string) string {
	return s.base + "/monitoring/queues/" + url.PathEscape(s.opts.Queue) + "/tasks/" + url.PathEscape(taskID)
}

// formatCount writes n with thousands separators: 1,234,567.
func formatCount(n int64) string {
	neg := n < 0
	if neg {
		n = -n
	}
	d := strconv.FormatInt(n, 10)
	var b strings.Builder
	for i, c := range d {
		if i > 0 && (len(d)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func formatPercent(p float64) string {
	if p < 0 || math.IsNaN(p) {
		return "—"
	}
	return strconv.FormatFloat(p, 'f', 1, 64) + " %"
}

// formatSeconds writes a duration for people: "2h 5m", "3m 20s", "4.2s".
func formatSeconds(sec float64) string {
	if sec < 0 || math.IsNaN(sec) || math.IsInf(sec, 0) {
		return "—"
	}
	if sec < 10 {
		return strconv.FormatFloat(sec, 'f', 1, 64) + "s"
	}
	t := int64(math.Round(sec))
	d, h, m, s := t/86400, t/3600%24, t/60%60, t%60
	two := func(a int64, ua string, b int64, ub string) string {
		if b == 0 {
			return fmt.Sprintf("%d%s", a, ua)
		}
		return fmt.Sprintf("%d%s %d%s", a, ua, b, ub)
	}
	switch {
	case d > 0:
		return two(d, "d", h, "h")
	case h > 0:
		return two(h, "h", m, "m")
	case m > 0:
		return two(m, "m", s, "s")
	}
	return fmt.Sprintf("%ds", s)
}

func formatRate(r float64) string {
	if r <= 0 || math.IsNaN(r) || math.IsInf(r, 0) {
		return "—"
	}
	if r >= 100 {
		return formatCount(int64(math.Round(r))) + " rows/s"
	}
	return strconv.FormatFloat(r, 'f', 1, 64) + " rows/s"
}

func timeOf(v any) (time.Time, bool) {
	switch t := v.(type) {
	case time.Time:
		return t, !t.IsZero()
	case *time.Time:
		if t == nil {
			return time.Time{}, false
		}
		return *t, !t.IsZero()
	}
	return time.Time{}, false
}

// isoTime is the machine-readable form of a time (for <time datetime>).
func isoTime(v any) string {
	t, ok := timeOf(v)
	if !ok {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// humanTime is a time in UTC; app.js shows it in the reader's time zone.
func humanTime(v any) string {
	t, ok := timeOf(v)
	if !ok {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// prettyJSON indents JSON for display; the template escapes it.
func prettyJSON(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	raw = shortenLongStrings(raw)
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return string(raw)
	}
	return buf.String()
}

// keyRange shows a batch's half-open key range.
func keyRange(lo, hi string) string { return keyset.HumanRange(lo, hi) }

// humanKey shows a stored key as its values (keyset.Human).
func humanKey(s string) string { return keyset.Human(s) }
