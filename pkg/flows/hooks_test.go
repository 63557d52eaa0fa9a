package flows

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dripflow/dripflow/pkg/notify"
)

func TestSpecWebhooks(t *testing.T) {
	const spec = `
name: events_notify
source: {kind: mem}
sink: {kind: mem}
webhooks:
  - url: https://hooks.example.com/dripflow
  - url: https://hooks.slack.com/services/T/B/X
    format: slack
    events: [started, failed]
`
	s, err := ParseSpecYAML([]byte(spec))
	if err != nil {
		t.Fatal(err)
	}
	f, err := s.Compile()
	if err != nil {
		t.Fatal(err)
	}
	want := []notify.Webhook{
		{URL: "https://hooks.example.com/dripflow", Format: notify.JSON},
		{URL: "https://hooks.slack.com/services/T/B/X", Format: notify.Slack, Events: []notify.Event{notify.Started, notify.Failed}},
	}
	if diff := cmp.Diff(want, f.Webhooks); diff != "" {
		t.Fatalf("compiled webhooks (-want +got):\n%s", diff)
	}
	j, err := New(f)
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := j.(notify.Declarer); !ok || len(d.Hooks().Webhooks) != 2 {
		t.Fatalf("the flow's job does not declare its webhooks")
	}
	// The spec round-trips through JSON (the store) with its webhooks.
	js, _ := json.Marshal(s)
	back, err := ParseSpec(js)
	if err != nil || !cmp.Equal(back.Webhooks, s.Webhooks) {
		t.Fatalf("round trip: %v, %+v", err, back.Webhooks)
	}
	var cfg Config
	if err := json.Unmarshal(j.Definition().Config, &cfg); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"webhook https://hooks.example.com/… (json: succeeded, failed, cancelled)", "webhook https://hooks.slack.com/… (slack: started, failed)"}, cfg.Notify); diff != "" {
		t.Errorf("shown config (-want +got):\n%s", diff)
	}
}

func TestSpecWebhookErrorsNameTheField(t *testing.T) {
	base := `{"name": "a", "source": {"kind": "mem"}, "sink": {"kind": "mem"}, "webhooks": `
	for _, tc := range []struct{ name, webhooks, field, msg string }{
		{"ftp", `[{"url": "ftp://x.example/y"}]`, "webhooks[0].url", "must be an http:// or https:// URL"},
		{"no url", `[{"url": "https://ok.example"}, {"format": "slack"}]`, "webhooks[1].url", "got an empty one"},
		{"format", `[{"url": "https://ok.example", "format": "teams"}]`, "webhooks[0].format", "must be json or slack"},
		{"event", `[{"url": "https://ok.example", "events": ["done"]}]`, "webhooks[0].events", `unknown event "done"`},
		{"secret", `[{"url": "https://ok.example", "secret": "x"}]`, "webhooks.secret", "DRIPFLOW_WEBHOOK_SECRET"},
		{"unknown setting", `[{"url": "https://ok.example", "headers": {}}]`, "webhooks.headers", "is not a setting of a webhook"},
		{"not an object", `["https://ok.example"]`, "webhooks", "must be an object"},
		{"events not a list", `[{"url": "https://ok.example", "events": "failed"}]`, "webhooks", "events a list of strings"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ParseSpec([]byte(base + tc.webhooks + "}"))
			if err == nil {
				_, err = s.Compile()
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field || !strings.Contains(fe.Message, tc.msg) {
				t.Errorf("webhooks %s: %v; want field %q saying %q", tc.webhooks, err, tc.field, tc.msg)
			}
		})
	}
}
