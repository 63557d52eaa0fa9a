package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultPresenceKey is the Redis key of the workers' registry.
const DefaultPresenceKey = "dripflow:workers"

// Heartbeat defaults: a worker beats every DefaultHeartbeatInterval, and
// counts as dead DefaultHeartbeatTTL after its last beat.
const (
	DefaultHeartbeatInterval = 2 * time.Second
	DefaultHeartbeatTTL      = 6 * time.Second
)

// Presence is the registry of workers in Redis. Each worker writes its
// record (who it is, which batches it holds, when it last beat) into one
// hash, and an alive key that expires a TTL after its last beat: whether a
// worker is alive is judged by Redis's clock, not by the clocks of the
// hosts. The scheduler rescues the claims of a worker whose alive key
// expired and then forgets it; a worker that stops gracefully removes
// itself.
//
// Keys: <key> (hash: worker id → JSON WorkerInfo) and <key>:alive:<id>
// (string with a TTL).
type Presence struct {
	rdb redis.UniversalClient
	key string
}

// NewPresence returns the registry at key (default DefaultPresenceKey).
func NewPresence(rdb redis.UniversalClient, key string) *Presence {
	if key == "" {
		key = DefaultPresenceKey
	}
	return &Presence{rdb: rdb, key: key}
}

// BatchRef names a batch a worker holds.
type BatchRef struct {
	RunID int64 `json:"run_id"`
	Seq   int64 `json:"seq"`
}

// WorkerInfo is one worker's record.
type WorkerInfo struct {
	ID          string    `json:"id"`
	Queue       string    `json:"queue"`
	Concurrency int       `json:"concurrency"`
	StartedAt   time.Time `json:"started_at"`
	// LastHeartbeat is the worker's clock at its last beat.
	LastHeartbeat time.Time `json:"last_heartbeat"`
	// Batches are the batches it was processing at its last beat.
	Batches []BatchRef `json:"batches"`
	// Alive is false once the worker's heartbeat has stopped for longer
	// than its TTL (set on reading).
	Alive bool `json:"alive"`
}

func (p *Presence) aliveKey(id string) string { return p.key + ":alive:" + id }

// pipeline is a MULTI/EXEC pipeline on one Redis (a record and its alive key
// change together). On a Redis Cluster the two keys live in different hash
// slots, where a transaction is refused (CROSSSLOT): there the commands go as
// a plain pipeline, in the same order. A beat half done (record written, the
// alive key not) looks like a missed beat, which the TTL already tolerates.
func (p *Presence) pipeline() redis.Pipeliner {
	if _, ok := p.rdb.(*redis.ClusterClient); ok {
		return p.rdb.Pipeline()
	}
	return p.rdb.TxPipeline()
}

// Beat records w as alive for ttl.
func (p *Presence) Beat(ctx context.Context, w WorkerInfo, ttl time.Duration) error {
	w.Alive = true
	if w.Batches == nil {
		w.Batches = []BatchRef{}
	}
	b, err := json.Marshal(w)
	if err != nil {
		return fmt.Errorf("encode heartbeat of worker %s: %w", w.ID, err)
	}
	pipe := p.pipeline()
	pipe.HSet(ctx, p.key, w.ID, b)
	pipe.Set(ctx, p.aliveKey(w.ID), "1", ttl)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("heartbeat of worker %s: %w", w.ID, err)
	}
	return nil
}

// Forget removes a worker's record.
func (p *Presence) Forget(ctx context.Context, id string) error {
	pipe := p.pipeline()
	pipe.HDel(ctx, p.key, id)
	pipe.Del(ctx, p.aliveKey(id))
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("forget worker %s: %w", id, err)
	}
	return nil
}

// List returns every registered worker, alive or not, ordered by id.
func (p *Presence) List(ctx context.Context) ([]WorkerInfo, error) {
	all, err := p.rdb.HGetAll(ctx, p.key).Result()
	if err != nil {
		return nil, fmt.Errorf("list workers: %w", err)
	}
	out := make([]WorkerInfo, 0, len(all))
	for id, raw := range all {
		var w WorkerInfo
		if err := json.Unmarshal([]byte(raw), &w); err != nil || w.ID != id {
			// A record this version cannot read still names a worker.
			w = WorkerInfo{ID: id}
		}
		out = append(out, w)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	if len(out) == 0 {
		return out, nil
	}
	pipe := p.rdb.Pipeline()
	alive := make([]*redis.IntCmd, len(out))
	for i, w := range out {
		alive[i] = pipe.Exists(ctx, p.aliveKey(w.ID))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("list workers: %w", err)
	}
	for i := range out {
		out[i].Alive = alive[i].Val() == 1
	}
	return out, nil
}
