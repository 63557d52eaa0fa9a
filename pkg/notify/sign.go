package notify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Headers of a webhook request.
const (
	// HeaderSignature is "sha256=" and the hex HMAC-SHA256 of the
	// timestamp, ".", and the body, under the secret. Absent when no secret
	// is configured.
	HeaderSignature = "X-Dripflow-Signature"
	// HeaderTimestamp is when the attempt was sent, in Unix seconds; it is
	// part of what is signed, so a captured request cannot be replayed
	// later than the receiver's tolerance.
	HeaderTimestamp = "X-Dripflow-Timestamp"
	// HeaderDelivery identifies the event's delivery, the same on every
	// attempt and every scheduler: a receiver that remembers it drops
	// duplicates.
	HeaderDelivery = "X-Dripflow-Delivery"
	// HeaderEvent is the event (started, succeeded, failed, cancelled).
	HeaderEvent = "X-Dripflow-Event"
)

// Sign returns the X-Dripflow-Signature value of body sent at timestamp
// (Unix seconds) under secret.
func Sign(secret string, timestamp int64, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(strconv.FormatInt(timestamp, 10)))
	mac.Write([]byte("."))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Errors of Verify.
var (
	ErrBadSignature = errors.New("webhook signature does not match")
	ErrStale        = errors.New("webhook timestamp is outside the tolerance")
)

// Verify checks a delivery as a receiver gets it: signature and timestamp
// are the X-Dripflow-Signature and X-Dripflow-Timestamp headers. A
// timestamp further than tolerance from now (either way) is ErrStale; a
// signature that does not match ErrBadSignature. The comparison takes
// constant time.
func Verify(secret, signature, timestamp string, body []byte, tolerance time.Duration, now time.Time) error {
	ts, err := strconv.ParseInt(strings.TrimSpace(timestamp), 10, 64)
	if err != nil {
		return ErrStale
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return ErrStale
	}
	if !hmac.Equal([]byte(Sign(secret, ts, body)), []byte(strings.TrimSpace(signature))) {
		return ErrBadSignature
	}
	return nil
}
