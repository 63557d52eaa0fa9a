// Package client is a Go client of dripflow's HTTP API v1, used by the
// dripflow CLI. It links only the standard library and the wire types of
// package api (a test checks it). See Example for starting a run and
// reading its progress, and ExampleError for how API errors come back.
package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/dripflow/dripflow/pkg/api"
)

// Client talks to one dripflow web server.
type Client struct {
	base  string
	token string
	http  *http.Client
	ua    string // User-Agent; "" keeps Go's
}

// New returns a client for the server at baseURL (including any base path)
// authenticating with a bearer token.
func New(baseURL, token string) *Client {
	return &Client{base: strings.TrimSuffix(baseURL, "/"), token: token, http: &http.Client{Timeout: 60 * time.Second}}
}

// WithHTTPClient replaces the HTTP client (timeouts, transports).
func (c *Client) WithHTTPClient(h *http.Client) *Client { c.http = h; return c }

// Error is an error answer of the API.
type Error struct {
	Status  int
	Code    string
	Message string
	Field   string
	// RunID is the live run of a flow that refused another run or the
	// flow's deletion (a 409).
	RunID string
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s (%d %s, field %s)", e.Message, e.Status, e.Code, e.Field)
	}
	return fmt.Sprintf("%s (%d %s)", e.Message, e.Status, e.Code)
}

// IsStatus reports whether err is an API error with the status.
func IsStatus(err error, status int) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == status
}

func (c *Client) request(ctx context.Context, method, path string, query url.Values, body any) (*http.Request, error) {
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var rd io.Reader
	if body != nil {
		// Without HTML escaping: a param's text (a CSV) keeps its size
		// on the wire instead of growing sixfold for each <, > or &.
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(body); err != nil {
			return nil, err
		}
		rd = &b
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	if c.ua != "" {
		req.Header.Set("User-Agent", c.ua)
	}
	if body != nil || method != http.MethodGet {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return req, nil
}

func (c *Client) do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	return c.doWith(ctx, method, path, query, body, out, nil)
}

// doWith is do with extra request headers.
func (c *Client) doWith(ctx context.Context, method, path string, query url.Values, body, out any, header http.Header) error {
	req, err := c.request(ctx, method, path, query, body)
	if err != nil {
		return err
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return decodeError(resp)
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

func decodeError(resp *http.Response) error {
	var e api.Error
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if json.Unmarshal(b, &e) != nil || e.Error.Code == "" {
		return &Error{Status: resp.StatusCode, Code: "http", Message: strings.TrimSpace(string(b))}
	}
	return &Error{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message, Field: e.Error.Field, RunID: e.Error.RunID}
}

// Definitions lists the registered definitions.
func (c *Client) Definitions(ctx context.Context) ([]api.Definition, error) {
	var p api.Page[api.Definition]
	err := c.do(ctx, http.MethodGet, "/api/v1/definitions", nil, nil, &p)
	return p.Items, err
}

// Preview counts what a run of the definition would cover (batchSize 0:
// the definition's default).
func (c *Client) Preview(ctx context.Context, name string, params json.RawMessage, batchSize int) (api.Preview, error) {
	q := url.Values{}
	if len(params) > 0 {
		q.Set("params", string(params))
	}
	if batchSize > 0 {
		q.Set("batch_size", strconv.Itoa(batchSize))
	}
	var p api.Preview
	err := c.do(ctx, http.MethodGet, "/api/v1/definitions/"+url.PathEscape(name)+"/preview", q, nil, &p)
	return p, err
}

// CreateRun starts a run.
func (c *Client) CreateRun(ctx context.Context, r api.CreateRun) (api.Run, error) {
	var out api.Run
	err := c.do(ctx, http.MethodPost, "/api/v1/runs", nil, r, &out)
	return out, err
}

// ListRunsOptions filter ListRuns.
type ListRunsOptions struct {
	Status     []string
	Definition string
	CreatedBy  string
	// Kind is "backfill" or "flow"; "" lists both.
	Kind   string
	Mine   bool
	Limit  int
	Cursor string
}

// ListRuns lists runs, newest first.
func (c *Client) ListRuns(ctx context.Context, o ListRunsOptions) (api.Page[api.Run], error) {
	q := url.Values{}
	if len(o.Status) > 0 {
		q.Set("status", strings.Join(o.Status, ","))
	}
	if o.Definition != "" {
		q.Set("definition", o.Definition)
	}
	if o.CreatedBy != "" {
		q.Set("created_by", o.CreatedBy)
	}
	if o.Kind != "" {
		q.Set("kind", o.Kind)
	}
	if o.Mine {
		q.Set("mine", "true")
	}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	if o.Cursor != "" {
		q.Set("cursor", o.Cursor)
	}
	var p api.Page[api.Run]
	err := c.do(ctx, http.MethodGet, "/api/v1/runs", q, nil, &p)
	return p, err
}

func runPath(id string) string { return "/api/v1/runs/" + url.PathEscape(id) }

// Run returns one run with its progress.
func (c *Client) Run(ctx context.Context, id string) (api.Run, error) {
	var out api.Run
	err := c.do(ctx, http.MethodGet, runPath(id), nil, nil, &out)
	return out, err
}

func (c *Client) action(ctx context.Context, id, action string) (api.Run, error) {
	var out api.Run
	err := c.do(ctx, http.MethodPost, runPath(id)+"/"+action, nil, nil, &out)
	return out, err
}

// Pause pauses a running run.
func (c *Client) Pause(ctx context.Context, id string) (api.Run, error) {
	return c.action(ctx, id, "pause")
}

// Resume resumes a paused run.
func (c *Client) Resume(ctx context.Context, id string) (api.Run, error) {
	return c.action(ctx, id, "resume")
}

// Cancel cancels a run.
func (c *Client) Cancel(ctx context.Context, id string) (api.Run, error) {
	return c.action(ctx, id, "cancel")
}

// Retry retries the run's failed batches.
func (c *Client) Retry(ctx context.Context, id string) (api.Retried, error) {
	var out api.Retried
	err := c.do(ctx, http.MethodPost, runPath(id)+"/retry", nil, nil, &out)
	return out, err
}

// RetryBatch retries one failed batch.
func (c *Client) RetryBatch(ctx context.Context, id, batch string) (api.Retried, error) {
	var out api.Retried
	err := c.do(ctx, http.MethodPost, runPath(id)+"/batches/"+url.PathEscape(batch)+"/retry", nil, nil, &out)
	return out, err
}

// Batches lists a run's batches in key order.
func (c *Client) Batches(ctx context.Context, id string, status []string, limit int, cursor string) (api.Page[api.Batch], error) {
	q := url.Values{}
	if len(status) > 0 {
		q.Set("status", strings.Join(status, ","))
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	var p api.Page[api.Batch]
	err := c.do(ctx, http.MethodGet, runPath(id)+"/batches", q, nil, &p)
	return p, err
}

// Watch follows the run's server-sent events, calling fn with the run each
// time it changes, until the run ends (returns nil), fn returns an error, or
// ctx ends.
func (c *Client) Watch(ctx context.Context, id string, fn func(api.Run) error) error {
	req, err := c.request(ctx, http.MethodGet, runPath(id)+"/events", nil, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	h := *c.http
	h.Timeout = 0 // a stream lasts as long as the run
	resp, err := h.Do(req)
	if err != nil {
		return fmt.Errorf("watch run %s: %w", id, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return decodeError(resp)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var event, data string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if event == "run" && data != "" {
				var r api.Run
				if err := json.Unmarshal([]byte(data), &r); err != nil {
					return fmt.Errorf("watch run %s: decode event: %w", id, err)
				}
				if err := fn(r); err != nil {
					return err
				}
				switch r.Status {
				case "succeeded", "failed", "cancelled":
					return nil
				}
			}
			event, data = "", ""
		case strings.HasPrefix(line, "event:"):
			event = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			data += strings.TrimSpace(strings.TrimPrefix(line, "data:"))
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		return fmt.Errorf("watch run %s: %w", id, err)
	}
	return ctx.Err()
}

// Flows lists flows.
func (c *Client) Flows(ctx context.Context) ([]api.Flow, error) {
	var p api.Page[api.Flow]
	err := c.do(ctx, http.MethodGet, "/api/v1/flows", nil, nil, &p)
	return p.Items, err
}

// Connectors lists the connector kinds the server knows, with their
// settings and delivery guarantees.
func (c *Client) Connectors(ctx context.Context) ([]api.Connector, error) {
	var p api.Page[api.Connector]
	err := c.do(ctx, http.MethodGet, "/api/v1/connectors", nil, nil, &p)
	return p.Items, err
}

func flowPath(name, action string) string {
	return "/api/v1/flows/" + url.PathEscape(name) + "/" + action
}

// ActivateFlow activates a flow.
func (c *Client) ActivateFlow(ctx context.Context, name string) (api.Flow, error) {
	var out api.Flow
	err := c.do(ctx, http.MethodPost, flowPath(name, "activate"), nil, nil, &out)
	return out, err
}

// DeactivateFlow deactivates a flow.
func (c *Client) DeactivateFlow(ctx context.Context, name string) (api.Flow, error) {
	var out api.Flow
	err := c.do(ctx, http.MethodPost, flowPath(name, "deactivate"), nil, nil, &out)
	return out, err
}

// TriggerFlow starts a run of the flow now.
func (c *Client) TriggerFlow(ctx context.Context, name string) (api.Run, error) {
	var out api.Run
	err := c.do(ctx, http.MethodPost, flowPath(name, "trigger"), nil, nil, &out)
	return out, err
}
