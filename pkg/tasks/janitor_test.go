package tasks_test

import (
	"context"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/dripflow/dripflow/internal/testenv"
	"github.com/dripflow/dripflow/pkg/tasks"
)

// Garbage in the queue's lists — a task hash whose message does not decode,
// an id pushed by hand with no task behind it — is removed, each entry
// reported; real tasks stay.
func TestCleanQueueRemovesUndecodableEntries(t *testing.T) {
	ctx := context.Background()
	rdb, prefix := testenv.Redis(t)
	queue := prefix + "q"
	q := "asynq:{" + queue + "}:"
	t.Cleanup(func() { testenv.DeletePrefix(context.Background(), rdb, q) })
	client, err := tasks.NewClient(rdb, tasks.Config{Queue: queue})
	if err != nil {
		t.Fatal(err)
	}
	good := tasks.BatchPayload{RunID: 1, Seq: 1}
	if _, err := client.EnqueueBatch(ctx, good, tasks.EnqueueOptions{MaxAttempts: 1}); err != nil {
		t.Fatal(err)
	}
	// A dequeued garbage task: in the active list and the lease set.
	rdb.HSet(ctx, q+"t:garbage", "msg", "garbage, not protobuf", "state", "active")
	rdb.LPush(ctx, q+"active", "garbage")
	rdb.ZAdd(ctx, q+"lease", redisZ(time.Now().Add(-time.Minute), "garbage"))
	// A raw message pushed onto the pending list by hand.
	rdb.LPush(ctx, q+"pending", `{"run":1,"seq":2}`)
	// An undecodable retry.
	rdb.HSet(ctx, q+"t:broken", "msg", "\xff\xff\xff", "state", "retry")
	rdb.ZAdd(ctx, q+"retry", redisZ(time.Now(), "broken"))

	removed, err := client.CleanQueue(ctx)
	if err != nil {
		t.Fatalf("CleanQueue: %v", err)
	}
	var got []string
	for _, b := range removed {
		if b.Reason == "" {
			t.Errorf("removed %q from %s without a reason", b.ID, b.List)
		}
		got = append(got, b.List+" "+b.ID)
	}
	sort.Strings(got)
	want := []string{"active garbage", `pending {"run":1,"seq":2}`, "retry broken"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("removed entries (-want +got):\n%s", diff)
	}
	for key, wantIDs := range map[string][]string{"pending": {good.TaskID()}, "active": nil} {
		ids, _ := rdb.LRange(ctx, q+key, 0, -1).Result()
		if !slices.Equal(ids, wantIDs) {
			t.Errorf("%s list %v, want %v", key, ids, wantIDs)
		}
	}
	for _, key := range []string{"lease", "retry"} {
		if n, _ := rdb.ZCard(ctx, q+key).Result(); n != 0 {
			t.Errorf("%s set still has %d entries", key, n)
		}
	}
	for _, key := range []string{"t:garbage", "t:broken"} {
		if n, _ := rdb.Exists(ctx, q+key).Result(); n != 0 {
			t.Errorf("hash %s still exists", key)
		}
	}
	if state, err := client.BatchTaskState(ctx, good); err != nil || state != tasks.TaskPending {
		t.Errorf("the real task is %s (%v), want still pending", state, err)
	}
	// Nothing left to remove.
	if again, err := client.CleanQueue(ctx); err != nil || len(again) != 0 {
		t.Errorf("second CleanQueue: %+v, %v; want nothing", again, err)
	}
}

func redisZ(at time.Time, member string) redis.Z {
	return redis.Z{Score: float64(at.Unix()), Member: member}
}
