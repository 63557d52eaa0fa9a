package client

import (
	"context"
	"net/http"
	"time"

	"github.com/dripflow/dripflow/pkg/api"
)

// Start starts a scheduled run now, before its start time.
func (c *Client) Start(ctx context.Context, id string) (api.Run, error) {
	return c.action(ctx, id, "start")
}

// Reschedule moves a scheduled run's start time.
func (c *Client) Reschedule(ctx context.Context, id string, at time.Time) (api.Run, error) {
	var out api.Run
	err := c.do(ctx, http.MethodPost, runPath(id)+"/reschedule", nil, api.Reschedule{StartAt: &at}, &out)
	return out, err
}

// Workers lists the queue's workers with their heartbeats.
func (c *Client) Workers(ctx context.Context) ([]api.Worker, error) {
	var out api.Workers
	err := c.do(ctx, http.MethodGet, "/api/v1/workers", nil, nil, &out)
	return out.Items, err
}
