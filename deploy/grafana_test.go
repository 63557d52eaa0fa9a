package deploy

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dripflow/dripflow/pkg/metrics"
)

// metricLabels returns every dripflow metric's name and label names, read
// from the metrics' own descriptions, with the series a histogram adds.
func metricLabels(t *testing.T) map[string][]string {
	t.Helper()
	descRE := regexp.MustCompile(`fqName: "([^"]+)".*variableLabels: \{([^}]*)\}`)
	out := map[string][]string{}
	for _, c := range metrics.All() {
		ch := make(chan *prometheus.Desc, 4)
		go func() { c.Describe(ch); close(ch) }()
		for d := range ch {
			m := descRE.FindStringSubmatch(d.String())
			if m == nil {
				t.Fatalf("cannot read metric description %s", d)
			}
			var labels []string
			for _, l := range strings.Split(m[2], ",") {
				if l = strings.TrimSpace(l); l != "" {
					labels = append(labels, l)
				}
			}
			out[m[1]] = labels
			if _, ok := c.(*prometheus.HistogramVec); ok || isHistogram(c) {
				out[m[1]+"_bucket"] = append(slices.Clone(labels), "le")
				out[m[1]+"_sum"] = labels
				out[m[1]+"_count"] = labels
			}
		}
	}
	return out
}

func isHistogram(c prometheus.Collector) bool {
	_, ok := c.(prometheus.Histogram)
	return ok
}

// The Grafana dashboard in deploy/grafana queries only metrics dripflow
// exports, with labels they have, and shows every one of them.
func TestGrafanaDashboard(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(root, "deploy", "grafana", "dripflow.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		UID    string `json:"uid"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name       string `json:"name"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("deploy/grafana/dripflow.json is not valid JSON: %v", err)
	}
	if dash.UID == "" || len(dash.Panels) == 0 {
		t.Fatalf("dashboard has no uid or no panels")
	}
	known := metricLabels(t)
	var exprs []string
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, v := range dash.Templating.List {
		if v.Definition != "" {
			exprs = append(exprs, v.Definition)
		}
	}

	nameRE := regexp.MustCompile(`\bdripflow_[a-z_]+`)
	selectorRE := regexp.MustCompile(`\b(dripflow_[a-z_]+)\{([^}]*)\}`)
	matcherRE := regexp.MustCompile(`([a-z_]+)\s*(=~|!~|!=|=)`)
	byRE := regexp.MustCompile(`\bby \(([^)]*)\)`)
	used := map[string]bool{}
	for _, e := range exprs {
		names := nameRE.FindAllString(e, -1)
		if len(names) == 0 {
			t.Errorf("query %q names no dripflow metric", e)
		}
		for _, n := range names {
			if _, ok := known[n]; !ok {
				t.Errorf("query %q: metric %s is not exported by dripflow", e, n)
			}
			used[strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_sum"), "_count")] = true
		}
		for _, m := range selectorRE.FindAllStringSubmatch(e, -1) {
			for _, l := range matcherRE.FindAllStringSubmatch(m[2], -1) {
				if !slices.Contains(known[m[1]], l[1]) {
					t.Errorf("query %q: %s has no label %q (labels: %v)", e, m[1], l[1], known[m[1]])
				}
			}
		}
		if len(names) == 1 {
			for _, m := range byRE.FindAllStringSubmatch(e, -1) {
				for _, l := range strings.Split(m[1], ",") {
					if l = strings.TrimSpace(l); l != "" && !slices.Contains(known[names[0]], l) {
						t.Errorf("query %q: %s has no label %q to group by (labels: %v)", e, names[0], l, known[names[0]])
					}
				}
			}
		}
	}
	for n := range known {
		if strings.HasSuffix(n, "_bucket") || strings.HasSuffix(n, "_sum") || strings.HasSuffix(n, "_count") {
			continue
		}
		if !used[n] {
			t.Errorf("metric %s is on no panel of the dashboard", n)
		}
	}
}
