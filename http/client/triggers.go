package client

import (
	"context"
	"net/http"

	"github.com/stroem/stroem"
)

// Trigger is a trigger as GET /api/workspaces/{ws}/triggers shows it.
type Trigger = stroem.Trigger

// TriggerJob is the most recent job of a trigger.
type TriggerJob = stroem.TriggerJob

// Triggers lists the triggers of workspace ws, by name.
func (c *Client) Triggers(ctx context.Context, ws string) ([]Trigger, error) {
	var out []Trigger
	_, err := c.do(ctx, request{method: http.MethodGet, path: "/api/workspaces/" + seg(ws) + "/triggers"}, &out)
	return out, err
}

// Trigger returns one trigger of workspace ws.
func (c *Client) Trigger(ctx context.Context, ws, name string) (Trigger, error) {
	var out Trigger
	_, err := c.do(ctx, request{method: http.MethodGet, path: "/api/workspaces/" + seg(ws) + "/triggers/" + seg(name)}, &out)
	return out, err
}
