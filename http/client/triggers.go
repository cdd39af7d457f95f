package client

import (
	"context"
	"net/http"
	"time"

	"github.com/stroem/stroem"
)

// Trigger is a trigger as GET /api/workspaces/{ws}/triggers shows it.
type Trigger struct {
	Name    string         `json:"name"`
	Type    string         `json:"type"` // scheduler | webhook
	Task    string         `json:"task"`
	Enabled bool           `json:"enabled"`
	Input   map[string]any `json:"input"`
	// Scheduler triggers.
	Cron        string `json:"cron,omitempty"`
	Timezone    string `json:"timezone,omitempty"`
	Concurrency string `json:"concurrency,omitempty"`
	// NextFireAt is nil for webhooks and disabled triggers.
	NextFireAt *time.Time `json:"next_fire_at"`
	// Webhooks.
	Mode           string `json:"mode,omitempty"`
	TimeoutSecs    int    `json:"timeout_secs,omitempty"`
	Path           string `json:"path,omitempty"`
	SecretRequired *bool  `json:"secret_required,omitempty"`
	// LastJob is nil when the trigger never started a job.
	LastJob *TriggerJob `json:"last_job"`
}

// TriggerJob is the most recent job of a trigger.
type TriggerJob struct {
	JobID     string           `json:"job_id"`
	Status    stroem.JobStatus `json:"status"`
	CreatedAt time.Time        `json:"created_at"`
}

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
