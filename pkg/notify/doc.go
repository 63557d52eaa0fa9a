// Package notify tells the outside world that a run started or ended: the
// definition hooks OnStart, OnComplete and OnError (maintenance_tasks'
// after_start, after_complete and after_error callbacks), and outgoing
// webhooks — a signed JSON body, or Slack's {"text": …} — sent with retries
// and exponential backoff.
//
// The scheduler that leads calls the hooks and sends the webhooks once per
// run event (see the scheduler's hooks.go and docs/operations.md,
// "Notifications"); this package holds the types definitions declare them
// with, the payload, the signature and the Sender.
//
// A receiver checks a delivery with Verify: the X-Dripflow-Signature header
// is "sha256=" and the hex HMAC-SHA256, under the shared secret, of the
// X-Dripflow-Timestamp header, a ".", and the body; X-Dripflow-Delivery is
// the same on every attempt and every scheduler, so a receiver that
// remembers it drops a duplicate.
package notify
