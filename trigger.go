package stroem

import "time"

// Trigger is a trigger as GET /api/workspaces/{ws}/triggers shows it; the
// server and the Go client share it. A webhook's secret is never shown, only
// whether it has one.
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
	// NextFireAt is when this server's scheduler fires the trigger next;
	// null for webhooks, disabled triggers and crons that never fire again.
	NextFireAt *time.Time `json:"next_fire_at"`
	// Webhooks.
	Mode           string `json:"mode,omitempty"`
	TimeoutSecs    int    `json:"timeout_secs,omitempty"`
	Path           string `json:"path,omitempty"`
	SecretRequired *bool  `json:"secret_required,omitempty"`
	// LastJob is the trigger's most recent job; null when it has none.
	LastJob *TriggerJob `json:"last_job"`
}

// TriggerJob is the most recent job of a trigger.
type TriggerJob struct {
	JobID     string    `json:"job_id"`
	Status    JobStatus `json:"status"`
	CreatedAt time.Time `json:"created_at"`
}
