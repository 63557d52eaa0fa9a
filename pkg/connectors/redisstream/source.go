package redisstream

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/flows"
)

// DefaultIDField is the record field that holds the entry id unless a
// Source's IDField says otherwise.
const DefaultIDField = "_id"

// DefaultConsumer is the consumer of a Source's Group that planned entries
// are delivered to unless Consumer says otherwise.
const DefaultConsumer = "dripflow"

// Source is the configuration of a source that reads a Redis stream.
type Source struct {
	// Connection names a redis:// connection (DRIPFLOW_CONNECTIONS);
	// default "redis", the process's DRIPFLOW_REDIS_URL.
	Connection string `json:"connection,omitempty" help:"named redis:// connection; default redis (DRIPFLOW_REDIS_URL)"`
	// Stream is the stream's key.
	Stream string `json:"stream" help:"key of the stream to read"`
	// Group, when set, is a consumer group kept in step with the flow:
	// planned entries are pending in it until their batch commits, then
	// acknowledged.
	Group string `json:"group,omitempty" help:"consumer group to keep in step (created at 0 if missing); entries are acknowledged after their batch commits"`
	// Consumer is the group's consumer planned entries are delivered to;
	// default "dripflow".
	Consumer string `json:"consumer,omitempty" help:"consumer of the group; default dripflow"`
	// IDField is the record field holding the entry id; default "_id".
	IDField string `json:"id_field,omitempty" help:"record field that holds the entry id; default _id"`
}

var _ flows.SourceConfig = (*Source)(nil)

// Kind implements flows.SourceConfig.
func (s *Source) Kind() string { return Kind }

// Validate implements flows.SourceConfig.
func (s *Source) Validate() error {
	switch {
	case strings.TrimSpace(s.Stream) == "":
		return flows.Errorf("stream", "is required")
	case s.Consumer != "" && s.Group == "":
		return flows.Errorf("consumer", "needs a group")
	case strings.ContainsAny(s.Group, " \t\r\n"):
		return flows.Errorf("group", "%q must not contain white space", s.Group)
	case strings.ContainsAny(s.Consumer, " \t\r\n"):
		return flows.Errorf("consumer", "%q must not contain white space", s.Consumer)
	}
	return nil
}

// Build implements flows.SourceConfig: it connects and, with a Group,
// creates the group when it is missing.
func (s *Source) Build(ctx context.Context, res *engine.Resources) (flows.Source, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	c, err := client(ctx, res, s.Connection)
	if err != nil {
		return nil, err
	}
	src := &source{cfg: *s, rdb: c}
	if src.cfg.IDField == "" {
		src.cfg.IDField = DefaultIDField
	}
	if src.cfg.Group != "" {
		if src.cfg.Consumer == "" {
			src.cfg.Consumer = DefaultConsumer
		}
		if err := src.createGroup(ctx); err != nil {
			return nil, err
		}
	}
	return src, nil
}

// source is a built Source.
type source struct {
	cfg Source
	rdb *redis.Client
}

var (
	_ flows.Source = (*source)(nil)
	_ flows.Acker  = (*source)(nil)
)

func (s *source) Shape() flows.Shape { return flows.Offset }
func (s *source) Resumes() bool      { return true }
func (s *source) Close() error       { return nil }

func (s *source) createGroup(ctx context.Context) error {
	err := s.rdb.XGroupCreateMkStream(ctx, s.cfg.Stream, s.cfg.Group, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("create consumer group %s on %s: %w", s.cfg.Group, s.cfg.Stream, err)
	}
	return nil
}

// after is XRANGE's start for the entries after position lo.
func after(lo string) string {
	if lo == "" {
		return "-"
	}
	return "(" + lo
}

// Next implements flows.Source: the id of the size-th entry after lo (or
// of the last one). With a Group, the range's entries are delivered to the
// group's consumer, so they show as pending until their batch commits.
func (s *source) Next(ctx context.Context, lo string, size int) (flows.Split, error) {
	if err := checkPosition(lo); err != nil {
		return flows.Split{}, err
	}
	if size < 1 {
		return flows.Split{}, fmt.Errorf("batch size %d: must be positive", size)
	}
	msgs, err := s.rdb.XRangeN(ctx, s.cfg.Stream, after(lo), "+", int64(size)+1).Result()
	if err != nil {
		return flows.Split{}, fmt.Errorf("XRANGE %s after %q: %w", s.cfg.Stream, lo, err)
	}
	if len(msgs) == 0 {
		return flows.Split{}, nil
	}
	split := flows.Split{Hi: msgs[len(msgs)-1].ID, Last: true}
	if len(msgs) > size {
		split = flows.Split{Hi: msgs[size-1].ID}
	}
	if s.cfg.Group != "" {
		if err := s.deliver(ctx, lo, split.Hi); err != nil {
			return flows.Split{}, err
		}
	}
	return split, nil
}

// deliverScript delivers the entries in (lo, hi] that the group has not yet
// delivered to the consumer: it moves a group that is behind lo up to lo
// (XGROUP SETID, forward only), then XREADGROUPs exactly the entries up to
// hi. It returns how many it delivered.
var deliverScript = redis.NewScript(`
local function cmp(a, b)
  local am, as = string.match(a, "^(%d+)-(%d+)$")
  local bm, bs = string.match(b, "^(%d+)-(%d+)$")
  if #am ~= #bm then return #am < #bm and -1 or 1 end
  if am ~= bm then return am < bm and -1 or 1 end
  if #as ~= #bs then return #as < #bs and -1 or 1 end
  if as ~= bs then return as < bs and -1 or 1 end
  return 0
end
local last
for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local name, ld
  for i = 1, #g, 2 do
    if g[i] == 'name' then name = g[i+1] elseif g[i] == 'last-delivered-id' then ld = g[i+1] end
  end
  if name == ARGV[1] then last = ld end
end
if not last then return redis.error_reply('NOGROUP no consumer group ' .. ARGV[1]) end
if cmp(last, ARGV[4]) >= 0 then return 0 end
if cmp(last, ARGV[3]) < 0 then
  redis.call('XGROUP', 'SETID', KEYS[1], ARGV[1], ARGV[3])
  last = ARGV[3]
end
local n = #redis.call('XRANGE', KEYS[1], '(' .. last, ARGV[4])
if n > 0 then
  redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', n, 'STREAMS', KEYS[1], '>')
end
return n
`)

func (s *source) deliver(ctx context.Context, lo, hi string) error {
	from := lo
	if from == "" {
		from = "0-0"
	}
	run := func() error {
		return deliverScript.Run(ctx, s.rdb, []string{s.cfg.Stream}, s.cfg.Group, s.cfg.Consumer, from, hi).Err()
	}
	err := run()
	if err != nil && strings.HasPrefix(err.Error(), "NOGROUP") {
		// The group was destroyed since Build: make it again.
		if err = s.createGroup(ctx); err == nil {
			err = run()
		}
	}
	if err != nil {
		return fmt.Errorf("deliver (%s, %s] of %s to group %s: %w", lo, hi, s.cfg.Stream, s.cfg.Group, err)
	}
	return nil
}

// Read implements flows.Source: the entries in (lo, hi].
func (s *source) Read(ctx context.Context, lo, hi string) ([]flows.Record, error) {
	if err := checkPosition(lo); err != nil {
		return nil, err
	}
	if hi == "" {
		return nil, nil
	}
	if err := checkPosition(hi); err != nil {
		return nil, err
	}
	msgs, err := s.rdb.XRange(ctx, s.cfg.Stream, after(lo), hi).Result()
	if err != nil {
		return nil, fmt.Errorf("XRANGE %s (%s, %s]: %w", s.cfg.Stream, lo, hi, err)
	}
	out := make([]flows.Record, len(msgs))
	for i, m := range msgs {
		r := make(flows.Record, len(m.Values)+1)
		for k, v := range m.Values {
			r[k] = v
		}
		r[s.cfg.IDField] = m.ID
		out[i] = r
	}
	return out, nil
}

// ackChunk is how many pending entries one XPENDING/XACK round handles.
const ackChunk = 1000

// Ack implements flows.Acker: it acknowledges the group's pending entries
// in (lo, hi], once the batch's checkpoint has committed.
func (s *source) Ack(ctx context.Context, lo, hi string) error {
	if s.cfg.Group == "" || hi == "" {
		return nil
	}
	if err := errors.Join(checkPosition(lo), checkPosition(hi)); err != nil {
		return err
	}
	start := after(lo)
	for {
		pending, err := s.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{
			Stream: s.cfg.Stream, Group: s.cfg.Group, Start: start, End: hi, Count: ackChunk,
		}).Result()
		if err != nil {
			return fmt.Errorf("XPENDING %s group %s (%s, %s]: %w", s.cfg.Stream, s.cfg.Group, lo, hi, err)
		}
		if len(pending) == 0 {
			return nil
		}
		ids := make([]string, len(pending))
		for i, p := range pending {
			ids[i] = p.ID
		}
		if err := s.rdb.XAck(ctx, s.cfg.Stream, s.cfg.Group, ids...).Err(); err != nil {
			return fmt.Errorf("XACK %s group %s: %w", s.cfg.Stream, s.cfg.Group, err)
		}
		if len(pending) < ackChunk {
			return nil
		}
		start = "(" + ids[len(ids)-1]
	}
}
