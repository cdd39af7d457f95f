package client

import (
	"context"

	"github.com/stroem/stroem"
)

// Trigger is a trigger as GET /api/workspaces/{ws}/triggers shows it.
type Trigger = stroem.Trigger

// TriggerJob is the most recent job of a trigger.
type TriggerJob = stroem.TriggerJob

// Triggers lists the triggers of workspace ws, by name.
func (c *Client) Triggers(ctx context.Context, ws string) ([]Trigger, error) {
	return get[[]Trigger](ctx, c, "/api/workspaces/"+seg(ws)+"/triggers")
}

// Trigger returns one trigger of workspace ws.
func (c *Client) Trigger(ctx context.Context, ws, name string) (Trigger, error) {
	return get[Trigger](ctx, c, "/api/workspaces/"+seg(ws)+"/triggers/"+seg(name))
}
