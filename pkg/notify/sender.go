package notify

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"

	"go.uber.org/zap"
)

// Defaults of Config.
const (
	// AttemptsDefault is how many times a webhook is tried.
	AttemptsDefault = 5
	// BackoffDefault is the wait after the first failed attempt; each next
	// one doubles (4s, 8s, 16s, 32s: five attempts over about a minute).
	BackoffDefault = 4 * time.Second
	// MaxBackoffDefault caps one wait.
	MaxBackoffDefault = time.Minute
	// TimeoutDefault bounds one attempt.
	TimeoutDefault = 10 * time.Second
	// HookTimeoutDefault bounds one call of a definition hook.
	HookTimeoutDefault = time.Minute
)

// Config configures notifications: the global webhooks and how every
// webhook is sent. Zero values mean defaults (WithDefaults).
type Config struct {
	// Webhooks get the events they name of every backfill run, and the
	// failed runs of flows (a recurring flow would otherwise notify every
	// tick; a flow declares its own webhooks for more).
	// DRIPFLOW_WEBHOOK_URLS, DRIPFLOW_WEBHOOK_FORMAT, DRIPFLOW_WEBHOOK_EVENTS.
	Webhooks []Webhook
	// Secret signs every webhook without a Secret of its own
	// (DRIPFLOW_WEBHOOK_SECRET); empty sends no signature.
	Secret string
	// PublicURL is the UI's address as users reach it
	// (DRIPFLOW_PUBLIC_URL); payloads link to the run's page under it.
	PublicURL string
	// Attempts, Backoff, MaxBackoff and Timeout: see the defaults.
	Attempts   int
	Backoff    time.Duration
	MaxBackoff time.Duration
	Timeout    time.Duration
	// HookTimeout bounds one call of a definition hook.
	HookTimeout time.Duration
	// Client sends the requests; default a client with Timeout.
	Client *http.Client
	Logger *zap.Logger
}

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	c.Attempts = cmp.Or(c.Attempts, AttemptsDefault)
	c.Backoff = cmp.Or(c.Backoff, BackoffDefault)
	c.MaxBackoff = cmp.Or(c.MaxBackoff, MaxBackoffDefault)
	c.Timeout = cmp.Or(c.Timeout, TimeoutDefault)
	c.HookTimeout = cmp.Or(c.HookTimeout, HookTimeoutDefault)
	if c.Client == nil {
		c.Client = &http.Client{Timeout: c.Timeout}
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c
}

// Validate checks every webhook and the public URL, and refuses negative
// numbers. Its errors never contain a secret or a URL's path.
func (c Config) Validate() error {
	for i, w := range c.Webhooks {
		if err := w.Validate(); err != nil {
			return fmt.Errorf("webhook %d (%s): %w", i+1, Redact(w.URL), err)
		}
	}
	if c.PublicURL != "" {
		if err := CheckURL(c.PublicURL); err != nil {
			return fmt.Errorf("public URL: %w", err)
		}
	}
	switch {
	case c.Attempts < 0:
		return errors.New("notify: Attempts must not be negative")
	case c.Backoff < 0 || c.MaxBackoff < 0 || c.Timeout < 0 || c.HookTimeout < 0:
		return errors.New("notify: durations must not be negative")
	}
	return nil
}

// Sender sends webhooks.
type Sender struct {
	cfg Config
}

// NewSender validates cfg and returns a Sender.
func NewSender(cfg Config) (*Sender, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Sender{cfg: cfg}, nil
}

// Config returns the sender's configuration with defaults applied.
func (s *Sender) Config() Config { return s.cfg }

// StatusError is a response that is not 2xx.
type StatusError struct {
	Code int
	// Body is the start of the response body, printable characters only.
	Body string
}

func (e *StatusError) Error() string {
	if e.Body == "" {
		return "HTTP " + strconv.Itoa(e.Code)
	}
	return fmt.Sprintf("HTTP %d: %s", e.Code, e.Body)
}

// Temporary reports whether another attempt may succeed: 408, 429 and 5xx.
func (e *StatusError) Temporary() bool {
	return e.Code == http.StatusRequestTimeout || e.Code == http.StatusTooManyRequests || e.Code >= 500
}

// Delivery is how a Deliver went.
type Delivery struct {
	// Attempts is how many requests were sent.
	Attempts int
	// Status is the last response's status code (0: no response).
	Status int
}

// Deliver POSTs p to w in w's format, signed, and retries with exponential
// backoff (and jitter) after a network error, a timeout or a 408, 429 or
// 5xx response, up to Attempts times; another 4xx is final at once. It
// returns when a 2xx arrives, attempts run out, or ctx ends. Every attempt
// carries the same X-Dripflow-Delivery (p.DeliveryID) and a fresh signed
// timestamp.
func (s *Sender) Deliver(ctx context.Context, w Webhook, p Payload) (Delivery, error) {
	format, err := ParseFormat(string(w.Format))
	if err != nil {
		return Delivery{}, err
	}
	body, err := p.Body(format)
	if err != nil {
		return Delivery{}, fmt.Errorf("encode payload: %w", err)
	}
	secret := cmp.Or(w.Secret, s.cfg.Secret)
	log := s.cfg.Logger.With(zap.String("webhook", Redact(w.URL)), zap.String("delivery", p.DeliveryID))
	var d Delivery
	for {
		d.Attempts++
		d.Status, err = s.attempt(ctx, w.URL, secret, p, body)
		if err == nil {
			return d, nil
		}
		var se *StatusError
		if errors.As(err, &se) && !se.Temporary() {
			return d, err
		}
		if d.Attempts >= s.cfg.Attempts || ctx.Err() != nil {
			return d, err
		}
		wait := s.backoff(d.Attempts)
		log.Debug("webhook attempt failed; retrying", zap.Int("attempt", d.Attempts), zap.Duration("in", wait), zap.Error(err))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return d, fmt.Errorf("%w (gave up: %v)", err, ctx.Err())
		case <-t.C:
		}
	}
}

// backoff is the wait after attempt n (1, 2, …): Backoff doubled n-1
// times, capped at MaxBackoff, ±20 %.
func (s *Sender) backoff(n int) time.Duration {
	d := s.cfg.Backoff
	for i := 1; i < n && d < s.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, s.cfg.MaxBackoff)
	jitter := time.Duration((rand.Float64()*0.4 - 0.2) * float64(d))
	return d + jitter
}

func (s *Sender) attempt(ctx context.Context, url, secret string, p Payload, body []byte) (int, error) {
	actx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		// The URL was checked; this cannot leak it.
		return 0, errors.New("build request")
	}
	ts := time.Now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "dripflow-webhook/1")
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderDelivery, p.DeliveryID)
	req.Header.Set(HeaderEvent, string(p.Event))
	if secret != "" {
		req.Header.Set(HeaderSignature, Sign(secret, ts, body))
	}
	resp, err := s.cfg.Client.Do(req)
	if err != nil {
		return 0, redactURLError(err)
	}
	defer resp.Body.Close()
	head, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp.StatusCode, nil
	}
	return resp.StatusCode, &StatusError{Code: resp.StatusCode, Body: printable(string(head))}
}

// redactURLError drops the URL (which may hold a secret) from a client
// error, keeping what went wrong.
func redactURLError(err error) error {
	var ue interface {
		Unwrap() error
		Timeout() bool
	}
	if errors.As(err, &ue) {
		if ue.Timeout() {
			return errors.New("request timed out")
		}
		if inner := ue.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}

func printable(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return ' '
	}, s)
	return strings.TrimSpace(s)
}
