// Package events carries "something happened to run N" between dripflow's
// processes over Redis pub/sub, so the scheduler plans the moment a batch
// finishes or a run is created, paused, resumed or retried, instead of
// waiting for its next poll. Events are hints: losing one only delays work
// until the next poll.
package events

import (
	"context"
	"strconv"

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

// RunChanged announces that run id changed. Errors are ignored on purpose:
// an event is a hint, and the scheduler's poll catches what it misses.
func (b *Bus) RunChanged(ctx context.Context, id int64) {
	if b == nil || b.rdb == nil {
		return
	}
	b.rdb.Publish(ctx, b.channel, strconv.FormatInt(id, 10))
}

// Subscribe delivers the ids of changed runs on the returned channel until
// ctx ends. The subscription reconnects by itself after Redis restarts.
func (b *Bus) Subscribe(ctx context.Context) <-chan int64 {
	out := make(chan int64, 1024)
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
				id, err := strconv.ParseInt(m.Payload, 10, 64)
				if err != nil {
					continue
				}
				select {
				case out <- id:
				default: // the scheduler is behind; its poll will catch up
				}
			}
		}
	}()
	return out
}
