package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/dripflow/dripflow/pkg/api"
)

// Flows defined at runtime. A spec is the JSON of a flow spec (name,
// description, source, transforms, sink, runtime, options): see the
// README's "Writing a flow". A spec the server refuses is an *Error with
// Status 422 whose Field names the failing field ("sink.key",
// "transforms[1].where").

func flowURL(name string) string { return "/api/v1/flows/" + url.PathEscape(name) }

// Flow returns one flow: a spec flow with its latest spec and version, a
// code flow with its connector configuration.
func (c *Client) Flow(ctx context.Context, name string) (api.Flow, error) {
	var out api.Flow
	err := c.do(ctx, http.MethodGet, flowURL(name), nil, nil, &out)
	return out, err
}

// CreateFlow stores a new flow from its spec, at version 1 and inactive.
// A flow or definition of that name is a 409.
func (c *Client) CreateFlow(ctx context.Context, spec json.RawMessage) (api.Flow, error) {
	var out api.Flow
	err := c.do(ctx, http.MethodPost, "/api/v1/flows", nil, spec, &out)
	return out, err
}

// UpdateFlow stores a new version of the spec flow name. With ifVersion > 0
// the flow must still be at that version (a 409 otherwise: someone else
// changed it meanwhile). A code flow is read-only (409); an unknown one is a
// 404. The spec's name may be empty (it is the path's).
func (c *Client) UpdateFlow(ctx context.Context, name string, spec json.RawMessage, ifVersion int64) (api.Flow, error) {
	var h http.Header
	if ifVersion > 0 {
		h = http.Header{"If-Match": {strconv.Quote(strconv.FormatInt(ifVersion, 10))}}
	}
	var out api.Flow
	err := c.doWith(ctx, http.MethodPut, flowURL(name), nil, spec, &out, h)
	return out, err
}

// DeleteFlow deletes a spec flow; its versions and runs stay as history.
// While a run of it is live the answer is a 409 whose *Error has the run's
// RunID; a code flow is read-only (409).
func (c *Client) DeleteFlow(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, flowURL(name), nil, nil, nil)
}

// ValidateFlow checks a spec as CreateFlow and UpdateFlow would, storing
// nothing. A refused spec is a 422 *Error naming the field.
func (c *Client) ValidateFlow(ctx context.Context, spec json.RawMessage) (api.FlowValidation, error) {
	var out api.FlowValidation
	err := c.do(ctx, http.MethodPost, "/api/v1/flows/validate", nil, spec, &out)
	return out, err
}

// FlowVersions lists a spec flow's stored versions, newest first.
func (c *Client) FlowVersions(ctx context.Context, name string) ([]api.FlowVersion, error) {
	var p api.Page[api.FlowVersion]
	err := c.do(ctx, http.MethodGet, flowURL(name)+"/versions", nil, nil, &p)
	return p.Items, err
}

// FlowVersion returns one stored version of a spec flow.
func (c *Client) FlowVersion(ctx context.Context, name string, version int64) (api.FlowVersion, error) {
	if version < 1 {
		return api.FlowVersion{}, fmt.Errorf("flow %s: version must be 1 or more, got %d", name, version)
	}
	var out api.FlowVersion
	err := c.do(ctx, http.MethodGet, flowURL(name)+"/versions/"+strconv.FormatInt(version, 10), nil, nil, &out)
	return out, err
}
