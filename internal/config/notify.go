package config

import (
	"fmt"
	"time"

	"github.com/dripflow/dripflow/pkg/notify"
)

// Notifications are the global webhooks a scheduler sends run events to.
type Notifications struct {
	// WebhookURLs receive run events (DRIPFLOW_WEBHOOK_URLS, separated by
	// commas; http:// or https:// only).
	WebhookURLs []string
	// WebhookSecret signs every delivery (DRIPFLOW_WEBHOOK_SECRET; never
	// logged).
	WebhookSecret string
	// WebhookFormat is json or slack (DRIPFLOW_WEBHOOK_FORMAT, default json).
	WebhookFormat notify.Format
	// WebhookEvents are the events sent (DRIPFLOW_WEBHOOK_EVENTS, any of
	// started, succeeded, failed, cancelled; default the three end events).
	WebhookEvents []notify.Event
	// PublicURL is the UI's address as users reach it (DRIPFLOW_PUBLIC_URL);
	// payloads link to the run's page under it.
	PublicURL string
	// HookTimeout bounds one call of a definition hook (OnStart,
	// OnComplete, OnError; DRIPFLOW_HOOK_TIMEOUT, default 1m).
	HookTimeout time.Duration
}

// String leaves the secret out, so a config printed or logged by mistake
// does not show it.
func (n Notifications) String() string {
	secret := "unset"
	if n.WebhookSecret != "" {
		secret = "set"
	}
	urls := make([]string, len(n.WebhookURLs))
	for i, u := range n.WebhookURLs {
		urls[i] = notify.Redact(u)
	}
	return fmt.Sprintf("webhooks %v (format %s, events %v, secret %s)", urls, n.WebhookFormat, n.WebhookEvents, secret)
}

// GoString is String, for %#v.
func (n Notifications) GoString() string { return n.String() }

// readNotifications reads the DRIPFLOW_WEBHOOK_* settings and
// DRIPFLOW_PUBLIC_URL; get is FromEnv's.
func readNotifications(get func(name, def string) string) (Notifications, error) {
	var n Notifications
	var err error
	if n.WebhookURLs, err = notify.ParseURLs(get("WEBHOOK_URLS", "")); err != nil {
		return n, fmt.Errorf("DRIPFLOW_WEBHOOK_URLS: %w", err)
	}
	n.WebhookSecret = get("WEBHOOK_SECRET", "")
	if n.WebhookFormat, err = notify.ParseFormat(get("WEBHOOK_FORMAT", "json")); err != nil {
		return n, fmt.Errorf("DRIPFLOW_WEBHOOK_FORMAT %w", err)
	}
	if n.WebhookEvents, err = notify.ParseEvents(get("WEBHOOK_EVENTS", "")); err != nil {
		return n, fmt.Errorf("DRIPFLOW_WEBHOOK_EVENTS: %w", err)
	}
	if n.PublicURL = get("PUBLIC_URL", ""); n.PublicURL != "" {
		if err := notify.CheckURL(n.PublicURL); err != nil {
			return n, fmt.Errorf("DRIPFLOW_PUBLIC_URL %w", err)
		}
	}
	if n.HookTimeout, err = time.ParseDuration(get("HOOK_TIMEOUT", "1m")); err != nil || n.HookTimeout <= 0 {
		return n, fmt.Errorf("DRIPFLOW_HOOK_TIMEOUT must be a positive duration such as 1m, got %q", get("HOOK_TIMEOUT", ""))
	}
	return n, nil
}

// Notify returns the notify.Config of the global webhooks.
func (n Notifications) Notify() notify.Config {
	c := notify.Config{Secret: n.WebhookSecret, PublicURL: n.PublicURL, HookTimeout: n.HookTimeout}
	for _, u := range n.WebhookURLs {
		c.Webhooks = append(c.Webhooks, notify.Webhook{URL: u, Format: n.WebhookFormat, Events: n.WebhookEvents})
	}
	return c
}
