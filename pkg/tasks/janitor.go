package tasks

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// BadEntry is a queue entry CleanQueue removed.
type BadEntry struct {
	List   string // pending, active, lease, scheduled or retry
	ID     string // the entry as found in the list
	Reason string
}

// janitorChunk is how many entries of a list CleanQueue reads at a time.
const janitorChunk = 1000

// taskMessage is asynq's task message type, found in the protobuf registry
// asynq's generated code registers itself in, so entries are decoded exactly
// as asynq decodes them.
func taskMessage() (protoreflect.MessageType, error) {
	mt, err := protoregistry.GlobalTypes.FindMessageByName("asynq.TaskMessage")
	if err != nil {
		return nil, fmt.Errorf("asynq's task message type is not registered: %w", err)
	}
	return mt, nil
}

// CleanQueue removes the entries of the batch queue that asynq cannot use: a
// task id in its pending or active list, or in its lease, scheduled or retry
// set, whose task hash has no message or one that does not decode (pushed by
// hand, written by another program, corrupted). asynq leaves such an entry
// in the active list for good once a worker dequeued it, and its recoverer
// then fails for the whole queue every minute. Each entry is removed from
// every list and set and its hash deleted, atomically and only if it is
// still the same bad entry. It returns what it removed.
func (c *Client) CleanQueue(ctx context.Context) ([]BadEntry, error) {
	mt, err := taskMessage()
	if err != nil {
		return nil, err
	}
	q := "asynq:{" + c.cfg.Queue + "}:"
	lists := []struct {
		name string
		set  bool
	}{{"pending", false}, {"active", false}, {"lease", true}, {"scheduled", true}, {"retry", true}}
	var out []BadEntry
	seen := map[string]bool{}
	for _, l := range lists {
		key := q + l.name
		for start := int64(0); ; start += janitorChunk {
			var ids []string
			if l.set {
				ids, err = c.rdb.ZRange(ctx, key, start, start+janitorChunk-1).Result()
			} else {
				ids, err = c.rdb.LRange(ctx, key, start, start+janitorChunk-1).Result()
			}
			if err != nil {
				return out, fmt.Errorf("clean queue %s: read %s: %w", c.cfg.Queue, l.name, err)
			}
			bad, err := c.badEntries(ctx, q, ids, mt)
			if err != nil {
				return out, fmt.Errorf("clean queue %s: %w", c.cfg.Queue, err)
			}
			removed := 0
			for _, b := range bad {
				if seen[b.ID] {
					continue
				}
				n, err := removeBadEntry.Run(ctx, c.rdb, []string{
					q + "pending", q + "active", q + "lease", q + "scheduled", q + "retry", q + "t:" + b.ID,
				}, b.ID, b.msg, boolInt(b.missing)).Int()
				if err != nil {
					return out, fmt.Errorf("clean queue %s: remove %q: %w", c.cfg.Queue, b.ID, err)
				}
				if n == 1 {
					seen[b.ID] = true
					removed++
					out = append(out, BadEntry{List: l.name, ID: b.ID, Reason: b.reason})
				}
			}
			if len(ids) < janitorChunk {
				break
			}
			// Removed entries shifted the rest of a list down.
			start -= int64(removed)
		}
	}
	return out, nil
}

type badEntry struct {
	ID      string
	msg     string
	missing bool
	reason  string
}

// badEntries returns the ids whose task message is missing or undecodable.
func (c *Client) badEntries(ctx context.Context, q string, ids []string, mt protoreflect.MessageType) ([]badEntry, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	pipe := c.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.HGet(ctx, q+"t:"+id, "msg")
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("read task messages: %w", err)
	}
	var bad []badEntry
	for i, cmd := range cmds {
		msg, err := cmd.Result()
		switch {
		case errors.Is(err, redis.Nil):
			bad = append(bad, badEntry{ID: ids[i], missing: true, reason: "no task message"})
		case err != nil:
			return nil, fmt.Errorf("read task message %q: %w", ids[i], err)
		default:
			if derr := proto.Unmarshal([]byte(msg), mt.New().Interface()); derr != nil {
				bad = append(bad, badEntry{ID: ids[i], msg: msg, reason: "undecodable task message: " + derr.Error()})
			}
		}
	}
	return bad, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// removeBadEntry removes id (ARGV[1]) from the queue's pending and active
// lists and its lease, scheduled and retry sets and deletes its hash
// (KEYS[6]), if the hash still has no message (ARGV[3] = 1) or still has
// the bad message ARGV[2]. It returns 1 if it removed the entry.
var removeBadEntry = redis.NewScript(`
local msg = redis.call('HGET', KEYS[6], 'msg')
if ARGV[3] == '1' then
  if msg then return 0 end
elseif msg ~= ARGV[2] then
  return 0
end
redis.call('LREM', KEYS[1], 0, ARGV[1])
redis.call('LREM', KEYS[2], 0, ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[1])
redis.call('DEL', KEYS[6])
return 1
`)
