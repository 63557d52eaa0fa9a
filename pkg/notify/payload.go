package notify

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Payload is the JSON body of a webhook of format json. Ids are strings and
// times RFC 3339, as in the HTTP API.
type Payload struct {
	// Event is started, succeeded, failed or cancelled.
	Event Event `json:"event"`
	// DeliveryID is the X-Dripflow-Delivery header: the same on every
	// attempt and from every scheduler.
	DeliveryID string `json:"delivery_id"`
	RunID      string `json:"run_id"`
	Definition string `json:"definition"`
	Kind       string `json:"kind"`
	// State is the run's state when the event happened.
	State     string `json:"state"`
	CreatedBy string `json:"created_by,omitempty"`

	// Total is the number of records in scope (-1: unknown).
	Total            int64 `json:"total"`
	RowsRead         int64 `json:"rows_read"`
	RowsWritten      int64 `json:"rows_written"`
	RowsSkipped      int64 `json:"rows_skipped"`
	Batches          int64 `json:"batches"`
	BatchesSucceeded int64 `json:"batches_succeeded"`
	BatchesFailed    int64 `json:"batches_failed"`
	BatchesCancelled int64 `json:"batches_cancelled"`

	// Error is the run's error summary; FirstBatchError the error of its
	// first failed batch.
	Error           string `json:"error,omitempty"`
	FirstBatchError string `json:"first_batch_error,omitempty"`

	StartedAt  *time.Time `json:"started_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	DurationMS int64      `json:"duration_ms"`
	// URL is the run's page in the UI, when DRIPFLOW_PUBLIC_URL is set.
	URL string `json:"url,omitempty"`
}

// NewPayload returns the payload of info; publicURL (DRIPFLOW_PUBLIC_URL,
// the UI's address as users reach it) makes its URL, "" leaves it out.
func NewPayload(info RunInfo, publicURL string) Payload {
	r := info.Run
	p := Payload{
		Event: info.Event, DeliveryID: info.Key, RunID: strconv.FormatInt(r.ID, 10),
		Definition: r.Definition, Kind: string(r.Kind), State: string(r.State), CreatedBy: r.CreatedBy,
		Total: r.Total, RowsRead: r.RowsRead, RowsWritten: r.RowsWritten, RowsSkipped: r.RowsSkipped,
		Batches: r.BatchesTotal(), BatchesSucceeded: r.BatchesSucceeded, BatchesFailed: r.BatchesFailed,
		BatchesCancelled: r.BatchesCancelled,
		Error:            r.Error, FirstBatchError: info.FirstBatchError,
		StartedAt: utc(r.StartedAt), DurationMS: info.Duration.Milliseconds(),
	}
	if info.Event != Started {
		p.FinishedAt = utc(r.FinishedAt)
	}
	if publicURL != "" {
		p.URL = RunURL(publicURL, r.ID)
	}
	return p
}

// RunURL is the run's page under the UI's public address.
func RunURL(publicURL string, runID int64) string {
	return strings.TrimRight(publicURL, "/") + "/runs/" + strconv.FormatInt(runID, 10)
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// Body returns the request body of format f for p.
func (p Payload) Body(f Format) ([]byte, error) {
	if f == Slack {
		return json.Marshal(map[string]string{"text": p.SlackText()})
	}
	return json.Marshal(p)
}

// SlackText is the one-line message of format slack:
//
//	:white_check_mark: dripflow run 42 (fix_emails) succeeded: 10,000 rows written in 10 batches, 12s. <https://…/runs/42|Open run 42>
func (p Payload) SlackText() string {
	icon := map[Event]string{Started: ":arrow_forward:", Succeeded: ":white_check_mark:", Failed: ":x:", Cancelled: ":no_entry_sign:"}[p.Event]
	var b strings.Builder
	fmt.Fprintf(&b, "%s dripflow run %s (%s) %s", icon, p.RunID, slackEscape(p.Definition), p.Event)
	switch p.Event {
	case Started:
		if p.CreatedBy != "" {
			fmt.Fprintf(&b, ", started by %s", slackEscape(p.CreatedBy))
		}
	default:
		fmt.Fprintf(&b, ": %s rows written in %s batches", thousands(p.RowsWritten), thousands(p.Batches))
		if p.BatchesFailed > 0 {
			fmt.Fprintf(&b, ", %s failed", thousands(p.BatchesFailed))
		}
		if p.DurationMS > 0 {
			fmt.Fprintf(&b, ", %s", (time.Duration(p.DurationMS) * time.Millisecond).Round(time.Second))
		}
		if p.Error != "" {
			fmt.Fprintf(&b, ". %s", slackEscape(p.Error))
		}
		if p.FirstBatchError != "" {
			fmt.Fprintf(&b, " (first error: %s)", slackEscape(truncate(p.FirstBatchError, 300)))
		}
	}
	b.WriteString(".")
	if p.URL != "" {
		fmt.Fprintf(&b, " <%s|Open run %s>", p.URL, p.RunID)
	}
	return b.String()
}

// slackEscape escapes what Slack's mrkdwn treats as markup.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}

func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		s = "-" + s
	}
	return s
}
