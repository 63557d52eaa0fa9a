package redisstream

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/flows"
)

// DefaultDedupeTTL is how long a Sink remembers a message id unless its
// DedupeTTL says otherwise.
const DefaultDedupeTTL = 24 * time.Hour

// sinkChunk is how many records one script call appends.
const sinkChunk = 500

// Sink is the configuration of a sink that appends records to a Redis
// stream, at most once per message id while the id is remembered.
type Sink struct {
	// Connection names a redis:// connection; default "redis".
	Connection string `json:"connection,omitempty" help:"named redis:// connection; default redis (DRIPFLOW_REDIS_URL)"`
	// Stream is the stream's key.
	Stream string `json:"stream" help:"key of the stream to append to"`
	// MaxLen, when positive, trims the stream to about that many entries
	// on each XADD (MAXLEN ~).
	MaxLen int64 `json:"max_len,omitempty" help:"trim the stream to about this many entries (MAXLEN ~); 0 keeps all"`
	// IDField is the record field whose value is the message id; without
	// it (or when a record lacks it) the id is the record's place in its
	// batch, "<flow>/<run>/<seq>/<i>", which dedupes redeliveries of the
	// same batch only.
	IDField string `json:"id_field,omitempty" help:"record field holding the message id; default the record's place in its batch"`
	// MessageIDField, when set, also writes the message id into the entry
	// under this field, for consumers to dedupe on.
	MessageIDField string `json:"message_id_field,omitempty" help:"entry field to write the message id to; default none"`
	// JSONField, when set, writes the whole record as one JSON value under
	// this field; otherwise each record field is an entry field (strings
	// as they are, other values as JSON).
	JSONField string `json:"json_field,omitempty" help:"write the record as JSON under this one field instead of field by field"`
	// DedupeTTL is how long a message id is remembered, as a Go duration
	// ("24h", the default).
	DedupeTTL string `json:"dedupe_ttl,omitempty" help:"how long message ids are remembered, e.g. 24h (default)"`
	// DedupePrefix is the prefix of the keys that remember message ids;
	// default "dripflow:msgid:{<stream>}:" (in the stream's cluster slot).
	DedupePrefix string `json:"dedupe_prefix,omitempty" help:"key prefix of remembered message ids; default dripflow:msgid:{stream}:"`
}

var _ flows.SinkConfig = (*Sink)(nil)

// Kind implements flows.SinkConfig.
func (s *Sink) Kind() string { return Kind }

// Guarantee implements flows.SinkConfig: idempotent while message ids are
// remembered.
func (s *Sink) Guarantee() flows.Guarantee { return flows.Idempotent }

// Validate implements flows.SinkConfig.
func (s *Sink) Validate() error {
	switch {
	case strings.TrimSpace(s.Stream) == "":
		return flows.Errorf("stream", "is required")
	case s.MaxLen < 0:
		return flows.Errorf("max_len", "must not be negative")
	}
	if s.DedupeTTL != "" {
		d, err := time.ParseDuration(s.DedupeTTL)
		if err != nil || d < time.Second {
			return flows.Errorf("dedupe_ttl", "must be a duration of at least 1s such as 24h, got %q", s.DedupeTTL)
		}
	}
	return nil
}

// Build implements flows.SinkConfig.
func (s *Sink) Build(ctx context.Context, res *engine.Resources) (flows.Sink, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	c, err := client(ctx, res, s.Connection)
	if err != nil {
		return nil, err
	}
	out := &sink{cfg: *s, rdb: c, ttl: DefaultDedupeTTL, prefix: s.DedupePrefix}
	if s.DedupeTTL != "" {
		out.ttl, _ = time.ParseDuration(s.DedupeTTL)
	}
	if out.prefix == "" {
		out.prefix = "dripflow:msgid:{" + hashTag(s.Stream) + "}:"
	}
	return out, nil
}

// hashTag is the part of key Redis Cluster hashes: so dedupe keys tagged
// with it live in the stream's slot and one script may touch both.
func hashTag(key string) string {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			return key[i+1 : i+1+j]
		}
	}
	return key
}

// sink is a built Sink.
type sink struct {
	cfg    Sink
	rdb    *redis.Client
	ttl    time.Duration
	prefix string
}

var _ flows.Sink = (*sink)(nil)

func (s *sink) Guarantee() flows.Guarantee { return flows.Idempotent }
func (s *sink) Close() error               { return nil }

// addScript appends entries whose message id is new. KEYS[1] is the
// stream, KEYS[1+i] the dedupe key of entry i; ARGV holds the TTL in ms, the
// MAXLEN (0: none), then per entry its field count and fields and values.
// It returns how many entries it added.
var addScript = redis.NewScript(`
local ttl, maxlen = ARGV[1], tonumber(ARGV[2])
local a, added = 3, 0
for i = 2, #KEYS do
  local n = tonumber(ARGV[a])
  local fields = {}
  for j = 1, 2 * n do fields[j] = ARGV[a + j] end
  a = a + 1 + 2 * n
  if redis.call('SET', KEYS[i], '1', 'NX', 'PX', ttl) then
    if maxlen > 0 then
      redis.call('XADD', KEYS[1], 'MAXLEN', '~', maxlen, '*', unpack(fields))
    else
      redis.call('XADD', KEYS[1], '*', unpack(fields))
    end
    added = added + 1
  end
end
return added
`)

// Write implements flows.Sink: it appends the batch's records whose message
// ids are new and returns how many it appended.
func (s *sink) Write(ctx context.Context, b *flows.Batch) (int64, error) {
	var written int64
	for from := 0; from < len(b.Records); from += sinkChunk {
		to := min(from+sinkChunk, len(b.Records))
		keys := []string{s.cfg.Stream}
		args := []any{s.ttl.Milliseconds(), s.cfg.MaxLen}
		for i := from; i < to; i++ {
			id := b.RecordID(i, s.cfg.IDField)
			keys = append(keys, s.prefix+id)
			fields, err := s.fields(b.Records[i], id)
			if err != nil {
				return written, fmt.Errorf("record %d: %w", i, err)
			}
			if len(fields) == 0 {
				// XADD needs at least one field.
				fields = []any{"_", ""}
			}
			args = append(args, len(fields)/2)
			args = append(args, fields...)
		}
		n, err := addScript.Run(ctx, s.rdb, keys, args...).Int64()
		if err != nil {
			return written, fmt.Errorf("XADD %d entries to %s: %w", to-from, s.cfg.Stream, err)
		}
		written += n
	}
	return written, nil
}

// fields returns a record's entry fields and values, in field order.
func (s *sink) fields(r flows.Record, id string) ([]any, error) {
	var out []any
	if s.cfg.JSONField != "" {
		data, err := json.Marshal(r)
		if err != nil {
			return nil, err
		}
		out = append(out, s.cfg.JSONField, string(data))
	} else {
		keys := make([]string, 0, len(r))
		for k := range r {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			v, err := text(r[k])
			if err != nil {
				return nil, fmt.Errorf("field %s: %w", k, err)
			}
			out = append(out, k, v)
		}
	}
	if s.cfg.MessageIDField != "" {
		out = append(out, s.cfg.MessageIDField, id)
	}
	return out, nil
}

// text is a record value as an entry value: strings as they are, times in
// RFC 3339, nil as "", anything else as JSON.
func text(v any) (string, error) {
	switch x := v.(type) {
	case nil:
		return "", nil
	case string:
		return x, nil
	case []byte:
		return string(x), nil
	case time.Time:
		return x.Format(time.RFC3339Nano), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case int:
		return strconv.Itoa(x), nil
	}
	data, err := json.Marshal(v)
	return string(data), err
}
