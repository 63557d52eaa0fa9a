package notify

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Format is how a webhook's body is written.
type Format string

// Webhook body formats.
const (
	// JSON is the Payload as JSON (the default).
	JSON Format = "json"
	// Slack is {"text": "…"}, what a Slack (or Mattermost, Rocket.Chat,
	// Discord's /slack endpoint) incoming webhook takes.
	Slack Format = "slack"
)

// ParseFormat reads "json" (or "") and "slack".
func ParseFormat(s string) (Format, error) {
	switch f := Format(strings.ToLower(strings.TrimSpace(s))); f {
	case "", JSON:
		return JSON, nil
	case Slack:
		return Slack, nil
	default:
		return "", fmt.Errorf("must be json or slack, got %q", s)
	}
}

// Webhook is one receiver of run events.
type Webhook struct {
	// URL is where the body is POSTed: http or https.
	URL string `json:"url"`
	// Format is json (default) or slack.
	Format Format `json:"format,omitempty"`
	// Events are the events sent; nil means EndEvents (succeeded, failed,
	// cancelled).
	Events []Event `json:"events,omitempty"`
	// Secret signs the body; empty means the global one
	// (DRIPFLOW_WEBHOOK_SECRET). Never serialised.
	Secret string `json:"-"`
}

// Wants reports whether the webhook is sent for e.
func (w Webhook) Wants(e Event) bool {
	events := w.Events
	if events == nil {
		events = EndEvents
	}
	for _, k := range events {
		if k == e {
			return true
		}
	}
	return false
}

// Validate checks the URL (absolute, http or https, with a host), the
// format and the events. The error is a *FieldError naming "url", "format"
// or "events"; it never contains the URL's path, query or user info, which
// may hold a secret (a Slack webhook's path does).
func (w Webhook) Validate() error {
	if err := CheckURL(w.URL); err != nil {
		return &FieldError{Field: "url", Message: err.Error()}
	}
	if _, err := ParseFormat(string(w.Format)); err != nil {
		return &FieldError{Field: "format", Message: err.Error()}
	}
	for _, e := range w.Events {
		if !e.Valid() {
			return &FieldError{Field: "events", Message: fmt.Sprintf("unknown event %q (known: %s)", e, eventList(Events))}
		}
	}
	return nil
}

// CheckURL reports why raw cannot be a webhook URL: it must be an absolute
// http:// or https:// URL with a host. The error shows at most the scheme
// and host.
func CheckURL(raw string) error {
	if strings.TrimSpace(raw) == "" {
		return errors.New("must be an http:// or https:// URL, got an empty one")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("must be an http:// or https:// URL; it does not parse")
	}
	switch u.Scheme {
	case "http", "https":
	default:
		return fmt.Errorf("must be an http:// or https:// URL, got scheme %q", u.Scheme)
	}
	if u.Host == "" || u.Hostname() == "" {
		return fmt.Errorf("must name a host, got %s://", u.Scheme)
	}
	return nil
}

// Redact returns the URL as it may be logged: scheme and host only, with
// "/…" when it has a path or query (a Slack webhook's path is its secret).
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(invalid URL)"
	}
	s := u.Scheme + "://" + u.Host
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		s += "/…"
	}
	return s
}

// ID returns a short stable name of the webhook's URL (8 hex digits of its
// SHA-256), which says which receiver a timeline entry is about without
// showing the URL.
func (w Webhook) ID() string {
	sum := sha256.Sum256([]byte(w.URL))
	return hex.EncodeToString(sum[:4])
}

// FieldError says which setting of a webhook is wrong.
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

// prefix puts p in front of a *FieldError's field (p.field), and wraps any
// other error as one for p.
func prefix(p string, err error) error {
	var fe *FieldError
	if errors.As(err, &fe) {
		f := p
		if fe.Field != "" {
			f += "." + fe.Field
		}
		return &FieldError{Field: f, Message: fe.Message}
	}
	return &FieldError{Field: p, Message: err.Error()}
}

// ParseURLs reads DRIPFLOW_WEBHOOK_URLS: URLs separated by commas, spaces
// or new lines. Each must pass CheckURL; the error names the entry by its
// position and redacted form.
func ParseURLs(raw string) ([]string, error) {
	var out []string
	for i, u := range strings.FieldsFunc(raw, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' }) {
		if err := CheckURL(u); err != nil {
			return nil, fmt.Errorf("entry %d (%s): %w", i+1, Redact(u), err)
		}
		out = append(out, u)
	}
	return out, nil
}
