package backfills_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dripflow/dripflow/pkg/backfills"
	"github.com/dripflow/dripflow/pkg/notify"
)

func TestDefinitionHooks(t *testing.T) {
	var completed []string
	j, err := backfills.New(backfills.Definition[Account, struct{}]{
		Name: "hooked",
		ProcessElement: func(context.Context, *backfills.Element[Account, struct{}]) error {
			return nil
		},
		OnComplete: func(_ context.Context, info notify.RunInfo) error {
			completed = append(completed, info.Key)
			return nil
		},
		Webhooks: []notify.Webhook{{URL: "https://hooks.slack.com/services/T/B/SECRET", Format: notify.Slack, Events: []notify.Event{notify.Failed}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	d, ok := j.(notify.Declarer)
	if !ok {
		t.Fatal("a backfill's job does not declare its hooks (notify.Declarer)")
	}
	h := d.Hooks()
	if h.OnComplete == nil || h.OnStart != nil || h.OnError != nil || len(h.Webhooks) != 1 {
		t.Fatalf("Hooks() = %+v", h)
	}
	if err := h.Func(notify.Succeeded)(context.Background(), notify.RunInfo{Key: "k"}); err != nil || !cmp.Equal(completed, []string{"k"}) {
		t.Fatalf("OnComplete through Hooks: %v, calls %v", err, completed)
	}
	// The definition's page shows what it declares, the URL redacted.
	var shown map[string]any
	if err := json.Unmarshal(j.Definition().Config, &shown); err != nil {
		t.Fatal(err)
	}
	want := []any{"on_complete", "webhook https://hooks.slack.com/… (slack: failed)"}
	if diff := cmp.Diff(want, shown["notify"]); diff != "" {
		t.Errorf("config's notify (-want +got):\n%s", diff)
	}
	if strings.Contains(string(j.Definition().Config), "SECRET") {
		t.Errorf("the definition's config shows the webhook's secret path: %s", j.Definition().Config)
	}
}

func TestDefinitionRefusesBadWebhook(t *testing.T) {
	for _, tc := range []struct {
		w    notify.Webhook
		want string
	}{
		{notify.Webhook{URL: "ftp://example.com/x"}, `backfill "bad_hook": webhooks[0].url: must be an http:// or https:// URL, got scheme "ftp"`},
		{notify.Webhook{URL: "https://example.com", Format: "xml"}, `backfill "bad_hook": webhooks[0].format: must be json or slack, got "xml"`},
		{notify.Webhook{URL: "https://example.com", Events: []notify.Event{"done"}}, `backfill "bad_hook": webhooks[0].events: unknown event "done"`},
	} {
		_, err := backfills.New(backfills.Definition[Account, struct{}]{
			Name:           "bad_hook",
			ProcessElement: func(context.Context, *backfills.Element[Account, struct{}]) error { return nil },
			Webhooks:       []notify.Webhook{tc.w},
		})
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("New with %+v = %v, want %q", tc.w, err, tc.want)
		}
	}
}
