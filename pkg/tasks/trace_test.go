package tasks_test

import (
	"context"
	"strings"
	"testing"

	"github.com/dripflow/dripflow/internal/testenv"
	"github.com/dripflow/dripflow/pkg/tasks"
)

const tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

// A payload's trace context travels with it, is no part of its task id,
// and a payload written before it existed decodes as it did.
func TestPayloadTrace(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		want tasks.BatchPayload
	}{
		// Written by a dripflow without tracing, or with tracing off.
		{`{"run":3,"seq":4,"def":"fill"}`, tasks.BatchPayload{RunID: 3, Seq: 4, Definition: "fill"}},
		{`{"run":3,"seq":4,"retry":1,"def":"fill","rescue":"r2"}`, tasks.BatchPayload{RunID: 3, Seq: 4, Retry: 1, Definition: "fill", Rescue: "r2"}},
		{`{"run":3,"seq":4,"def":"fill","trace":"` + tp + `"}`, tasks.BatchPayload{RunID: 3, Seq: 4, Definition: "fill", Trace: tp}},
		// A trace context that is not one is dropped: the batch still runs.
		{`{"run":3,"seq":4,"trace":"` + strings.ToUpper(tp) + `"}`, tasks.BatchPayload{RunID: 3, Seq: 4}},
		{`{"run":3,"seq":4,"trace":"00-00000000000000000000000000000000-b7ad6b7169203331-01"}`, tasks.BatchPayload{RunID: 3, Seq: 4}},
		{`{"run":3,"seq":4,"trace":"00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01"}`, tasks.BatchPayload{RunID: 3, Seq: 4}},
		{`{"run":3,"seq":4,"trace":"ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}`, tasks.BatchPayload{RunID: 3, Seq: 4}},
		{`{"run":3,"seq":4,"trace":"` + tp + `-x"}`, tasks.BatchPayload{RunID: 3, Seq: 4}},
		{`{"run":3,"seq":4,"trace":"garbage"}`, tasks.BatchPayload{RunID: 3, Seq: 4}},
	} {
		got, err := tasks.DecodeBatchPayload([]byte(tc.raw))
		if err != nil || got != tc.want {
			t.Errorf("DecodeBatchPayload(%s) = %+v, %v; want %+v", tc.raw, got, err, tc.want)
		}
		if got.TaskID() != "3:4" && got.TaskID() != "3:4:1:r2" {
			t.Errorf("%s: task id %q depends on the trace", tc.raw, got.TaskID())
		}
	}
}

// Enqueueing writes the trace into the task only when there is one: with
// tracing off a task is byte for byte what it was before tracing existed,
// and a bad trace context is refused before anything is enqueued.
func TestEnqueueTrace(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	ctx := context.Background()
	c, err := tasks.NewClient(rdb, tasks.Config{Queue: prefix + "q"})
	if err != nil {
		t.Fatal(err)
	}
	msg := func(id string) string {
		m, err := rdb.HGet(ctx, "asynq:{"+prefix+"q}:t:"+id, "msg").Result()
		if err != nil {
			t.Fatalf("task %s: %v", id, err)
		}
		return m
	}
	if _, err := c.EnqueueBatch(ctx, tasks.BatchPayload{RunID: 1, Seq: 1, Definition: "fill"}, tasks.EnqueueOptions{MaxAttempts: 1}); err != nil {
		t.Fatal(err)
	}
	if m := msg("1:1"); !strings.Contains(m, `{"run":1,"seq":1,"def":"fill"}`) || strings.Contains(m, "trace") {
		t.Errorf("task without trace: %q", m)
	}
	if _, err := c.EnqueueBatch(ctx, tasks.BatchPayload{RunID: 1, Seq: 2, Definition: "fill", Trace: tp}, tasks.EnqueueOptions{MaxAttempts: 1}); err != nil {
		t.Fatal(err)
	}
	if m := msg("1:2"); !strings.Contains(m, `{"run":1,"seq":2,"def":"fill","trace":"`+tp+`"}`) {
		t.Errorf("task with trace: %q", m)
	}
	added, err := c.EnqueueBatch(ctx, tasks.BatchPayload{RunID: 1, Seq: 3, Trace: "00-xyz"}, tasks.EnqueueOptions{MaxAttempts: 1})
	if err == nil || added || !strings.Contains(err.Error(), "bad trace") {
		t.Errorf("enqueue with a bad trace: added %v, %v; want an error naming the trace", added, err)
	}
	if st, err := c.BatchTaskState(ctx, tasks.BatchPayload{RunID: 1, Seq: 3}); err != nil || st != tasks.TaskMissing {
		t.Errorf("the refused task is %s, %v; want missing", st, err)
	}
}

// BenchmarkPayload is the per-batch cost of a task's payload, encoded by
// the scheduler and decoded by the worker, without a trace (tracing off)
// and with one.
func BenchmarkPayload(b *testing.B) {
	for _, bc := range []struct {
		name string
		p    tasks.BatchPayload
	}{
		{"off", tasks.BatchPayload{RunID: 123456, Seq: 789, Definition: "add_default_role_to_users"}},
		{"traced", tasks.BatchPayload{RunID: 123456, Seq: 789, Definition: "add_default_role_to_users", Trace: tp}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				enc := tasks.EncodeForBench(bc.p)
				if _, err := tasks.DecodeBatchPayload(enc); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(tasks.EncodeForBench(bc.p))), "payload-bytes")
		})
	}
}
