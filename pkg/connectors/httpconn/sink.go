package httpconn

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/flows"
)

// Kind is the connector's registered kind name.
const Kind = "http"

func init() {
	flows.RegisterConnector(flows.Connector{
		Kind:        Kind,
		Description: "POST each batch as JSON to an HTTP endpoint, with an idempotency key, retries and backoff",
		Delivery:    "idempotent when the receiver honours the Idempotency-Key header (the batch id, the same on every attempt); at least once otherwise",
		Sink:        func() flows.SinkConfig { return &Sink{} },
	})
}

// Body shapes of a request.
const (
	// BodyObject sends {"records": [...]}.
	BodyObject = "object"
	// BodyArray sends [...].
	BodyArray = "array"
)

// EnvPrefix starts a header value that is read from an environment
// variable of the process that builds the sink ("$env:API_TOKEN"), so
// secrets stay out of the stored flow configuration.
const EnvPrefix = "$env:"

// Defaults of the settings a Sink leaves empty.
const (
	DefaultIdempotencyHeader = "Idempotency-Key"
	DefaultTimeout           = 30 * time.Second
	DefaultMaxAttempts       = 5
	DefaultBackoff           = 500 * time.Millisecond
	DefaultMaxBackoff        = 30 * time.Second
)

// maxErrorBody is how much of a failed response's body an error quotes.
const maxErrorBody = 1024

// Sink is the configuration of a sink that sends each batch to an HTTP
// endpoint as JSON.
//
// Every request carries an idempotency key: the batch's id
// ("<flow>/<run>/<seq>", the same for every attempt of the batch), with
// "/part-<n>" appended when MaxRecords splits the batch into several
// requests. The sink declares itself idempotent: that holds when the
// receiver honours the key (it ignores, or answers as before, a request
// whose key it has already processed). A receiver that does not may see a
// batch twice (at least once) after a crash or a retry.
//
// A request that fails with a 5xx status, 408, 429 or a network error is
// retried up to MaxAttempts times in all, waiting Backoff, then twice as
// long each time (with jitter, at most MaxBackoff), or what a Retry-After
// header says. Any other status outside 2xx fails the batch at once with
// the status and the start of the response body; the worker retries the
// batch by the flow's MaxAttempts.
type Sink struct {
	// URL receives the requests (http or https).
	URL string `json:"url" help:"endpoint that receives the batches (http or https)"`
	// Method is POST (default), PUT or PATCH.
	Method string `json:"method,omitempty" help:"POST (default), PUT or PATCH"`
	// Body is "object" ({"records": [...]}, default) or "array" ([...]).
	Body string `json:"body,omitempty" help:"object sends {\"records\": [...]} (default); array sends [...]"`
	// IdempotencyHeader names the header carrying the idempotency key;
	// default Idempotency-Key.
	IdempotencyHeader string `json:"idempotency_header,omitempty" help:"header carrying the batch id as idempotency key; default Idempotency-Key"`
	// Headers are extra request headers. A value "$env:NAME" is read from
	// the environment variable NAME when the sink is built; when the
	// process lacks it, every batch it writes fails with an error naming it
	// (a scheduler, which builds sinks but never writes, need not have it).
	Headers map[string]string `json:"headers,omitempty" help:"extra headers; a value $env:NAME is read from the environment variable NAME"`
	// Timeout bounds one request (Go duration, e.g. "10s"); default 30s.
	Timeout string `json:"timeout,omitempty" help:"time limit of one request, e.g. 10s; default 30s"`
	// MaxRecords is the most records one request carries; 0: the whole
	// batch in one request.
	MaxRecords int `json:"max_records,omitempty" help:"records per request; 0 sends the whole batch in one"`
	// MaxAttempts bounds the attempts of one request; default 5.
	MaxAttempts int `json:"max_attempts,omitempty" help:"attempts per request on 5xx, 408, 429 and network errors; default 5"`
	// Backoff is the wait before the first retry; default 500ms.
	Backoff string `json:"backoff,omitempty" help:"wait before the first retry, doubled each time; default 500ms"`
	// MaxBackoff bounds the wait between retries; default 30s.
	MaxBackoff string `json:"max_backoff,omitempty" help:"longest wait between retries; default 30s"`
}

var _ flows.SinkConfig = (*Sink)(nil)

// Kind implements flows.SinkConfig.
func (s *Sink) Kind() string { return Kind }

// Guarantee implements flows.SinkConfig: idempotent, provided the receiver
// honours the idempotency key.
func (s *Sink) Guarantee() flows.Guarantee { return flows.Idempotent }

// Validate implements flows.SinkConfig.
func (s *Sink) Validate() error {
	if s.URL == "" {
		return flows.Errorf("url", "is required")
	}
	u, err := url.Parse(s.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return flows.Errorf("url", "must be an absolute http or https URL")
	}
	switch s.Method {
	case "", http.MethodPost, http.MethodPut, http.MethodPatch:
	default:
		return flows.Errorf("method", "must be POST, PUT or PATCH, got %q", s.Method)
	}
	switch s.Body {
	case "", BodyObject, BodyArray:
	default:
		return flows.Errorf("body", "must be %q or %q, got %q", BodyObject, BodyArray, s.Body)
	}
	if s.IdempotencyHeader != "" && !token(s.IdempotencyHeader) {
		return flows.Errorf("idempotency_header", "%q is not a header name", s.IdempotencyHeader)
	}
	names := make([]string, 0, len(s.Headers))
	for k := range s.Headers {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		v := s.Headers[k]
		switch {
		case !token(k):
			return flows.Errorf("headers", "%q is not a header name", k)
		case strings.HasPrefix(v, EnvPrefix) && !envName(strings.TrimPrefix(v, EnvPrefix)):
			return flows.Errorf("headers", "header %s: %q does not name an environment variable", k, v)
		case strings.ContainsAny(v, "\r\n\x00"):
			return flows.Errorf("headers", "header %s: the value holds a control character", k)
		}
	}
	for _, d := range []struct{ field, v string }{{"timeout", s.Timeout}, {"backoff", s.Backoff}, {"max_backoff", s.MaxBackoff}} {
		if d.v == "" {
			continue
		}
		if v, err := time.ParseDuration(d.v); err != nil || v <= 0 {
			return flows.Errorf(d.field, "must be a positive duration such as 10s or 500ms, got %q", d.v)
		}
	}
	switch {
	case s.MaxRecords < 0:
		return flows.Errorf("max_records", "must not be negative")
	case s.MaxAttempts < 0:
		return flows.Errorf("max_attempts", "must not be negative")
	}
	return nil
}

// token reports whether s is an HTTP header name (RFC 9110 token).
func token(s string) bool {
	for _, r := range s {
		if r > 0x7e || r <= ' ' || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r) {
			return false
		}
	}
	return s != ""
}

func envName(s string) bool {
	for i, r := range s {
		switch {
		case r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return s != ""
}

func duration(s string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return d
	}
	return def
}

// Build implements flows.SinkConfig: it resolves $env: header values.
// It connects nowhere and fails only on an invalid configuration.
func (s *Sink) Build(_ context.Context, _ *engine.Resources) (flows.Sink, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	out := &sink{
		url:         s.URL,
		method:      s.Method,
		array:       s.Body == BodyArray,
		keyHeader:   s.IdempotencyHeader,
		header:      http.Header{},
		maxRecords:  s.MaxRecords,
		maxAttempts: s.MaxAttempts,
		backoff:     duration(s.Backoff, DefaultBackoff),
		maxBackoff:  duration(s.MaxBackoff, DefaultMaxBackoff),
		client:      &http.Client{Timeout: duration(s.Timeout, DefaultTimeout)},
	}
	if out.method == "" {
		out.method = http.MethodPost
	}
	if out.keyHeader == "" {
		out.keyHeader = DefaultIdempotencyHeader
	}
	if out.maxAttempts == 0 {
		out.maxAttempts = DefaultMaxAttempts
	}
	if u, err := url.Parse(s.URL); err == nil {
		out.shownURL = u.Redacted()
	}
	out.header.Set("Content-Type", "application/json")
	names := make([]string, 0, len(s.Headers))
	for k := range s.Headers {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		v := s.Headers[k]
		if name, ok := strings.CutPrefix(v, EnvPrefix); ok {
			val, set := os.LookupEnv(name)
			if !set {
				// Not an error here: the scheduler builds the sink too and
				// never writes, so it need not hold the secret.
				if out.unset == nil {
					out.unset = fmt.Errorf("header %s: environment variable %s is not set in this process", k, name)
				}
				continue
			}
			v = val
		}
		out.header.Set(k, v)
	}
	return out, nil
}

// sink is a built Sink; it is safe for concurrent use.
type sink struct {
	url, shownURL, method string
	array                 bool
	keyHeader             string
	header                http.Header
	maxRecords            int
	maxAttempts           int
	backoff, maxBackoff   time.Duration
	client                *http.Client
	// unset is the error of a $env: header whose variable this process
	// lacks; every Write fails with it.
	unset error
}

var _ flows.Sink = (*sink)(nil)

func (s *sink) Guarantee() flows.Guarantee { return flows.Idempotent }

func (s *sink) Close() error {
	s.client.CloseIdleConnections()
	return nil
}

// StatusError is a response that failed a batch: a status outside 2xx, or
// the last of the retried ones.
type StatusError struct {
	Method, URL string
	StatusCode  int
	Status      string
	// Body is the start of the response body: at most 1 KiB, ending in
	// "…" when the body was longer.
	Body string
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("%s %s: %s", e.Method, e.URL, e.Status)
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// Write sends the batch, in requests of at most MaxRecords records.
func (s *sink) Write(ctx context.Context, b *flows.Batch) (int64, error) {
	if len(b.Records) == 0 {
		return 0, nil
	}
	if s.unset != nil {
		return 0, fmt.Errorf("send %s: %w", b.ID(), s.unset)
	}
	chunks := [][]flows.Record{b.Records}
	if s.maxRecords > 0 && len(b.Records) > s.maxRecords {
		chunks = nil
		for lo := 0; lo < len(b.Records); lo += s.maxRecords {
			chunks = append(chunks, b.Records[lo:min(lo+s.maxRecords, len(b.Records))])
		}
	}
	var n int64
	for i, recs := range chunks {
		key := b.ID()
		if len(chunks) > 1 {
			key = fmt.Sprintf("%s/part-%d", key, i)
		}
		var body any = recs
		if !s.array {
			body = map[string]any{"records": recs}
		}
		data, err := json.Marshal(body)
		if err != nil {
			return n, fmt.Errorf("encode batch %s: %w", key, err)
		}
		if err := s.send(ctx, key, data); err != nil {
			return n, fmt.Errorf("send %s (%d records): %w", key, len(recs), err)
		}
		n += int64(len(recs))
	}
	return n, nil
}

// send makes one request, retrying what may succeed later.
func (s *sink) send(ctx context.Context, key string, body []byte) error {
	for attempt := 1; ; attempt++ {
		wait, err := s.try(ctx, key, body)
		if err == nil {
			return nil
		}
		if wait < 0 || ctx.Err() != nil {
			return err
		}
		if attempt >= s.maxAttempts {
			return fmt.Errorf("gave up after %d attempts: %w", attempt, err)
		}
		if wait == 0 {
			wait = s.delay(attempt)
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return fmt.Errorf("the next attempt would be after the batch's deadline (in %s): %w", wait.Round(time.Millisecond), err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (while waiting to retry: %w)", err, ctx.Err())
		case <-t.C:
		}
	}
}

// delay is the jittered exponential backoff before retry attempt+1: a
// random wait between half and all of Backoff·2^(attempt-1), at most
// MaxBackoff.
func (s *sink) delay(attempt int) time.Duration {
	d := s.backoff
	for i := 1; i < attempt && d < s.maxBackoff; i++ {
		d *= 2
	}
	d = min(d, s.maxBackoff)
	half := d / 2
	return half + rand.N(half+1)
}

// try makes one attempt. It returns nil on a 2xx response; else the error
// and how long to wait before retrying: -1 when retrying cannot help, 0
// for the backoff, more when the server said so (Retry-After).
func (s *sink) try(ctx context.Context, key string, body []byte) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, s.method, s.url, bytes.NewReader(body))
	if err != nil {
		return -1, err
	}
	req.Header = s.header.Clone()
	req.Header.Set(s.keyHeader, key)
	resp, err := s.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = fmt.Errorf("%s %s: %w", s.method, s.shownURL, ue.Err)
		}
		return 0, err
	}
	defer resp.Body.Close()
	start, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody+1))
	// Read on (a bounded amount), so the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return 0, nil
	}
	text := string(start)
	if len(start) > maxErrorBody {
		text = strings.ToValidUTF8(string(start[:maxErrorBody]), "") + "…"
	}
	serr := &StatusError{Method: s.method, URL: s.shownURL, StatusCode: resp.StatusCode, Status: resp.Status, Body: strings.TrimSpace(text)}
	switch {
	case resp.StatusCode >= 500, resp.StatusCode == http.StatusRequestTimeout:
		return retryAfter(resp.Header.Get("Retry-After")), serr
	case resp.StatusCode == http.StatusTooManyRequests:
		return retryAfter(resp.Header.Get("Retry-After")), serr
	}
	return -1, serr
}

// retryAfter parses a Retry-After header (seconds or an HTTP date); 0 when
// absent or unreadable.
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(secs) * time.Second
	}
	if at, err := http.ParseTime(v); err == nil {
		if d := time.Until(at); d > 0 {
			return d
		}
	}
	return 0
}
