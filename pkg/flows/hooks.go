package flows

import (
	"encoding/json"
	"errors"

	"github.com/dripflow/dripflow/pkg/notify"
)

// WebhookSpec is one webhook of a spec: where run events of the flow are
// POSTed. The URL is stored with the spec and shown to whoever may read the
// flow: keep secret URLs (a Slack webhook's) in DRIPFLOW_WEBHOOK_URLS.
type WebhookSpec struct {
	// URL is an http:// or https:// URL.
	URL string `json:"url"`
	// Format is json (default) or slack.
	Format string `json:"format,omitempty"`
	// Events are any of started, succeeded, failed, cancelled; default
	// succeeded, failed and cancelled.
	Events []string `json:"events,omitempty"`
}

func (f Flow) hooks() notify.Hooks {
	return notify.Hooks{OnStart: f.OnStart, OnComplete: f.OnComplete, OnError: f.OnError, Webhooks: f.Webhooks}
}

// Hooks implements notify.Declarer.
func (j *job) Hooks() notify.Hooks { return j.f.hooks() }

// webhooks compiles a spec's webhooks; an error is a *FieldError
// ("webhooks[0].url").
func webhooks(specs []WebhookSpec) ([]notify.Webhook, error) {
	var out []notify.Webhook
	for _, ws := range specs {
		w := notify.Webhook{URL: ws.URL, Format: notify.Format(ws.Format)}
		for _, e := range ws.Events {
			w.Events = append(w.Events, notify.Event(e))
		}
		out = append(out, w)
	}
	if err := (notify.Hooks{Webhooks: out}).Validate(); err != nil {
		return nil, fieldError(err)
	}
	for i := range out {
		out[i].Format, _ = notify.ParseFormat(string(out[i].Format))
	}
	return out, nil
}

// fieldError turns notify's *FieldError into this package's.
func fieldError(err error) error {
	var fe *notify.FieldError
	if errors.As(err, &fe) {
		return &FieldError{Field: fe.Field, Message: fe.Message}
	}
	return err
}

// UnmarshalJSON reads a webhook strictly: a setting other than url, format
// and events is a *FieldError (a secret belongs in DRIPFLOW_WEBHOOK_SECRET,
// not in a spec everyone who may read the flow sees).
func (w *WebhookSpec) UnmarshalJSON(b []byte) error {
	type plain WebhookSpec
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return &FieldError{Field: "webhooks", Message: "each webhook must be an object with url, format and events"}
	}
	for k := range m {
		switch k {
		case "url", "format", "events":
		case "secret":
			return &FieldError{Field: "webhooks." + k, Message: "is not a setting of a webhook; webhooks are signed with DRIPFLOW_WEBHOOK_SECRET, which a spec does not show"}
		default:
			return &FieldError{Field: "webhooks." + k, Message: "is not a setting of a webhook (url, format, events)"}
		}
	}
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return &FieldError{Field: "webhooks", Message: "url and format must be strings, events a list of strings"}
	}
	*w = WebhookSpec(p)
	return nil
}
