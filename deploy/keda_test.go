package deploy

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dripflow/dripflow/pkg/metrics"
)

type scaledObject struct {
	Spec struct {
		ScaleTargetRef struct {
			APIVersion string `yaml:"apiVersion"`
			Kind       string `yaml:"kind"`
			Name       string `yaml:"name"`
		} `yaml:"scaleTargetRef"`
		MinReplicaCount int `yaml:"minReplicaCount"`
		MaxReplicaCount int `yaml:"maxReplicaCount"`
		Triggers        []struct {
			Type     string            `yaml:"type"`
			Metadata map[string]string `yaml:"metadata"`
		} `yaml:"triggers"`
	} `yaml:"spec"`
}

// The KEDA ScaledObject scales the worker Deployment on metrics dripflow
// exports, one pod per DRIPFLOW_WORKER_CONCURRENCY tasks.
func TestWorkerKEDA(t *testing.T) {
	objs := manifests(t)
	var so scaledObject
	find(t, objs, "ScaledObject", "dripflow-worker").decode(t, &so)
	ref := so.Spec.ScaleTargetRef
	var target workload
	find(t, objs, "Deployment", ref.Name).decode(t, &target)
	if ref.Name != "dripflow-worker" || (ref.Kind != "" && ref.Kind != "Deployment") {
		t.Errorf("the ScaledObject scales %s %s, want the worker Deployment", ref.Kind, ref.Name)
	}
	if so.Spec.MinReplicaCount < 1 || so.Spec.MaxReplicaCount < so.Spec.MinReplicaCount {
		t.Errorf("replicas %d..%d make no sense (0 would leave queued batches without a worker to wake it)", so.Spec.MinReplicaCount, so.Spec.MaxReplicaCount)
	}
	known := map[string]bool{}
	ch := make(chan *prometheus.Desc, 64)
	go func() {
		for _, c := range metrics.All() {
			c.Describe(ch)
		}
		close(ch)
	}()
	nameRE := regexp.MustCompile(`fqName: "([^"]+)"`)
	for d := range ch {
		if m := nameRE.FindStringSubmatch(d.String()); m != nil {
			known[m[1]] = true
		}
	}
	cm, _ := settings(t, objs)
	concurrency := cm["DRIPFLOW_WORKER_CONCURRENCY"]
	found := false
	for _, tr := range so.Spec.Triggers {
		if tr.Type != "prometheus" {
			continue
		}
		found = true
		q := tr.Metadata["query"]
		names := regexp.MustCompile(`dripflow_[a-z_]+`).FindAllString(q, -1)
		if len(names) == 0 {
			t.Errorf("the prometheus trigger's query %q reads no dripflow metric", q)
		}
		for _, n := range names {
			if !known[n] {
				t.Errorf("the query reads %s, which pkg/metrics does not export", n)
			}
		}
		if !strings.Contains(q, "dripflow_queue_depth") {
			t.Errorf("the query %q does not read the queue depth", q)
		}
		if tr.Metadata["threshold"] != concurrency {
			t.Errorf("threshold %q, want DRIPFLOW_WORKER_CONCURRENCY (%q): one pod per that many tasks", tr.Metadata["threshold"], concurrency)
		}
		if _, err := strconv.Atoi(tr.Metadata["threshold"]); err != nil {
			t.Errorf("threshold %q is not a number", tr.Metadata["threshold"])
		}
	}
	if !found {
		t.Error("the ScaledObject has no prometheus trigger")
	}
}
