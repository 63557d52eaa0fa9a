package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/dripflow/dripflow/pkg/api"
)

// DryRun tries the first batches of a run of r.Definition (r.DryRunBatches
// of them, default 3) in transactions that are rolled back, and reports
// what each would change. It creates no run; r.DryRun is set for you.
func (c *Client) DryRun(ctx context.Context, r api.CreateRun) (api.DryRun, error) {
	r.DryRun = true
	var out api.DryRun
	err := c.do(ctx, http.MethodPost, "/api/v1/runs", nil, r, &out)
	return out, err
}

// Definition returns one definition with its effective defaults (the
// server's DRIPFLOW_DEFAULT_* applied) and where they come from.
func (c *Client) Definition(ctx context.Context, name string) (api.Definition, error) {
	var out api.Definition
	err := c.do(ctx, http.MethodGet, "/api/v1/definitions/"+url.PathEscape(name), nil, nil, &out)
	return out, err
}
