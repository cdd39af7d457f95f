package stroem

import "time"

// TaskStats is GET /api/workspaces/{ws}/tasks/{task}/stats: the durations
// of a task's last Window completed runs and of their completed steps, in
// milliseconds. The server and the Go client share it.
type TaskStats struct {
	Window int `json:"window"`
	Task   struct {
		DurationStats
		Recent []RecentRun `json:"recent"`
	} `json:"task"`
	Steps []StepStats `json:"steps"`
}

// DurationStats summarises durations in milliseconds. The aggregates are
// null when SampleSize is 0.
type DurationStats struct {
	SampleSize int      `json:"sample_size"`
	AvgMS      *float64 `json:"avg_ms"`
	P50MS      *float64 `json:"p50_ms"`
	P95MS      *float64 `json:"p95_ms"`
	MinMS      *float64 `json:"min_ms"`
	MaxMS      *float64 `json:"max_ms"`
}

// RecentRun is one completed run of a task.
type RecentRun struct {
	JobID       string    `json:"job_id"`
	DurationMS  float64   `json:"duration_ms"`
	CompletedAt time.Time `json:"completed_at"`
}

// StepStats are the durations of one step of a task.
type StepStats struct {
	StepName string `json:"step_name"`
	DurationStats
}
