// Package events carries "something happened to run N" between dripflow's
// processes over Redis pub/sub, so the scheduler plans the moment a batch
// finishes or a run is created, paused, resumed or retried, instead of
// waiting for its next poll. Events are hints: losing one only delays work
// until the next poll.
package events

import (
	"context"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// DefaultChannel is the pub/sub channel of run events.
const DefaultChannel = "dripflow:events"

// Bus publishes and receives run events.
type Bus struct {
	rdb     redis.UniversalClient
	channel string
}

// New returns a Bus on channel (DefaultChannel when empty).
func New(rdb redis.UniversalClient, channel string) *Bus {
	if channel == "" {
		channel = DefaultChannel
	}
	return &Bus{rdb: rdb, channel: channel}
}

// Event says that a run changed; Resumed marks a run that was resumed or
// had batches retried, whose queued tasks the scheduler re-checks at once.
type Event struct {
	RunID   int64
	Resumed bool
}

// RunChanged announces that run id changed. Errors are ignored on purpose:
// an event is a hint, and the scheduler's poll catches what it misses.
func (b *Bus) RunChanged(ctx context.Context, id int64) { b.publish(ctx, id, "") }

// RunResumed announces that run id was resumed or had batches retried.
func (b *Bus) RunResumed(ctx context.Context, id int64) { b.publish(ctx, id, ":resumed") }

func (b *Bus) publish(ctx context.Context, id int64, suffix string) {
	if b == nil || b.rdb == nil {
		return
	}
	b.rdb.Publish(ctx, b.channel, strconv.FormatInt(id, 10)+suffix)
}

// Subscribe delivers run events on the returned channel until ctx ends. The
// subscription reconnects by itself after Redis restarts.
func (b *Bus) Subscribe(ctx context.Context) <-chan Event {
	out := make(chan Event, 1024)
	sub := b.rdb.Subscribe(ctx, b.channel)
	go func() {
		defer close(out)
		defer sub.Close()
		ch := sub.Channel()
		for {
			select {
			case <-ctx.Done():
				return
			case m, ok := <-ch:
				if !ok {
					return
				}
				payload, resumed := strings.CutSuffix(m.Payload, ":resumed")
				id, err := strconv.ParseInt(payload, 10, 64)
				if err != nil {
					continue
				}
				select {
				case out <- Event{RunID: id, Resumed: resumed}:
				default: // the scheduler is behind; its poll will catch up
				}
			}
		}
	}()
	return out
}
