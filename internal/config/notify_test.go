package config

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dripflow/dripflow/pkg/notify"
)

func TestFromEnvNotifications(t *testing.T) {
	c, err := FromEnv(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if n := c.Notifications; n.WebhookURLs != nil || n.WebhookFormat != notify.JSON || !reflect.DeepEqual(n.WebhookEvents, notify.EndEvents) {
		t.Fatalf("defaults %+v", n)
	}
	c, err = FromEnv(env(map[string]string{
		"DRIPFLOW_WEBHOOK_URLS":   "https://hooks.example.com/a?token=t0ken, http://10.0.0.7:8080/b",
		"DRIPFLOW_WEBHOOK_SECRET": "s3cret-value", "DRIPFLOW_WEBHOOK_FORMAT": "slack",
		"DRIPFLOW_WEBHOOK_EVENTS": "started,failed", "DRIPFLOW_PUBLIC_URL": "https://dripflow.example.com/",
	}))
	if err != nil {
		t.Fatal(err)
	}
	got := c.Notifications.Notify()
	want := notify.Config{
		Secret: "s3cret-value", PublicURL: "https://dripflow.example.com/", HookTimeout: time.Minute,
		Webhooks: []notify.Webhook{
			{URL: "https://hooks.example.com/a?token=t0ken", Format: notify.Slack, Events: []notify.Event{notify.Started, notify.Failed}},
			{URL: "http://10.0.0.7:8080/b", Format: notify.Slack, Events: []notify.Event{notify.Started, notify.Failed}},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Notify() = %+v\nwant %+v", got, want)
	}
	// Printed by mistake, the config shows neither the secret nor a URL's
	// path or query.
	for _, s := range []string{fmt.Sprintf("%+v", c), fmt.Sprintf("%v", c.Notifications), fmt.Sprintf("%#v", c.Notifications)} {
		if strings.Contains(s, "s3cret-value") || strings.Contains(s, "t0ken") {
			t.Errorf("printed config shows a secret: %s", s)
		}
	}
}

func TestFromEnvRejectsBadNotifications(t *testing.T) {
	for _, tc := range []struct{ name, value, want string }{
		{"DRIPFLOW_WEBHOOK_URLS", "https://ok.example, ftp://files.example/SECRET", `DRIPFLOW_WEBHOOK_URLS: entry 2 (ftp://files.example/…): must be an http:// or https:// URL, got scheme "ftp"`},
		{"DRIPFLOW_WEBHOOK_URLS", "hooks.example.com/x", `DRIPFLOW_WEBHOOK_URLS: entry 1`},
		{"DRIPFLOW_WEBHOOK_URLS", "https://", "must name a host"},
		{"DRIPFLOW_WEBHOOK_FORMAT", "xml", `DRIPFLOW_WEBHOOK_FORMAT must be json or slack, got "xml"`},
		{"DRIPFLOW_WEBHOOK_EVENTS", "succeeded,done", `DRIPFLOW_WEBHOOK_EVENTS: unknown event "done"`},
		{"DRIPFLOW_PUBLIC_URL", "dripflow.example.com", "DRIPFLOW_PUBLIC_URL must be an http:// or https:// URL"},
		{"DRIPFLOW_HOOK_TIMEOUT", "0s", "DRIPFLOW_HOOK_TIMEOUT must be a positive duration"},
	} {
		_, err := FromEnv(env(map[string]string{tc.name: tc.value}))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s=%s: error %v, want %q", tc.name, tc.value, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "SECRET") {
			t.Errorf("%s=%s: the error shows the URL's path: %v", tc.name, tc.value, err)
		}
	}
}
