package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/dripflow/dripflow/pkg/api"
)

// WithUserAgent sets the User-Agent of the client's requests. The server
// names the channel of an action on a run's timeline from it: the CLI sends
// "dripflow-cli/…".
func (c *Client) WithUserAgent(ua string) *Client { c.ua = ua; return c }

// Timeline returns the run's events after the event id after ("" or "0":
// from the first), oldest first, at most limit (0: the server's default,
// 100). Poll for new events with after = the answer's NextAfter.
func (c *Client) Timeline(ctx context.Context, id, after string, limit int) (api.Timeline, error) {
	q := url.Values{}
	if after != "" {
		q.Set("after", after)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var t api.Timeline
	err := c.do(ctx, http.MethodGet, runPath(id)+"/timeline", q, nil, &t)
	return t, err
}

// AllTimeline returns every event of the run, oldest first, page by page.
func (c *Client) AllTimeline(ctx context.Context, id string) ([]api.RunEvent, error) {
	var all []api.RunEvent
	after := ""
	for {
		t, err := c.Timeline(ctx, id, after, 1000)
		if err != nil {
			return nil, err
		}
		all = append(all, t.Items...)
		if len(t.Items) < 1000 {
			return all, nil
		}
		after = t.NextAfter
	}
}
