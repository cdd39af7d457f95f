package stroem

import (
	"slices"
	"strings"
	"time"
)

// JobStatus is where a job is in its lifecycle (SPEC §4).
type JobStatus string

// Job statuses. A job starts pending, becomes running when its first step is
// claimed, and ends in exactly one terminal status.
const (
	JobPending   JobStatus = "pending"
	JobRunning   JobStatus = "running"
	JobCompleted JobStatus = "completed"
	JobFailed    JobStatus = "failed"
	JobCancelled JobStatus = "cancelled"
	// JobSkipped is a job that never ran: a tick of a `concurrency: skip`
	// trigger while the trigger's previous job was unfinished, recorded for
	// visibility as upstream does. It is created terminal, with no steps,
	// and fires no hooks.
	JobSkipped JobStatus = "skipped"
)

// JobStatuses lists every job status, in lifecycle order.
var JobStatuses = []JobStatus{JobPending, JobRunning, JobCompleted, JobFailed, JobCancelled, JobSkipped}

// Valid reports whether s is a known job status, so that filters coming from
// users can be rejected with a clear error instead of silently matching nothing.
func (s JobStatus) Valid() bool { return slices.Contains(JobStatuses, s) }

// Terminal reports whether the job has finished and will never change again.
func (s JobStatus) Terminal() bool {
	return s == JobCompleted || s == JobFailed || s == JobCancelled || s == JobSkipped
}

// jobTransitions lists the allowed moves. A pending job may end without ever
// running (cancelled before a claim, or every root step failed to render).
// No job becomes skipped: it is stored so.
var jobTransitions = map[JobStatus][]JobStatus{
	JobPending: {JobRunning, JobCompleted, JobFailed, JobCancelled},
	JobRunning: {JobCompleted, JobFailed, JobCancelled},
}

// CanTransition reports whether a job may move from s to next. Staying in the
// same status is not a transition.
func (s JobStatus) CanTransition(next JobStatus) bool {
	return slices.Contains(jobTransitions[s], next)
}

// SourceType says what created a job.
type SourceType string

// Job sources (SPEC §5).
const (
	SourceAPI     SourceType = "api"
	SourceUser    SourceType = "user"
	SourceTrigger SourceType = "trigger"
	SourceWebhook SourceType = "webhook"
	// SourceHook is a job a hook started (SourceID: the job it reports
	// on); SourceTask a child job of a `type: task` step (SourceID:
	// TaskSourceID of its parent job and step). Neither fires
	// workspace-level hooks; hook jobs fire none.
	SourceHook SourceType = "hook"
	SourceTask SourceType = "task"
)

// TriggerSourceID is the source_id of a job a trigger (cron or webhook)
// started: "workspace/trigger", the trigger's key in the workspace (a
// webhook's `name:` does not count), as upstream's. The concurrency checks
// and a webhook's job status find the trigger's jobs by it.
func TriggerSourceID(workspace, trigger string) string { return workspace + "/" + trigger }

// TaskSourceID is the source_id of the child job of a `type: task` step:
// "parent_job_id/step", the step as the parent's job_steps name it (a
// for_each instance's "deploy[2]"), as upstream's. It says which step of
// which job made the child, which the parent's id alone did not.
func TaskSourceID(parentJobID, step string) string { return parentJobID + "/" + step }

// ParseTaskSourceID splits a child job's source_id into its parent job and
// step at the first "/": a job id has none, a step name may. A source_id
// without "/" (the parent's id alone, as servers before migration 00241
// wrote it) is the parent with an empty step.
func ParseTaskSourceID(sourceID string) (parentJobID, step string) {
	parentJobID, step, _ = strings.Cut(sourceID, "/")
	return parentJobID, step
}

// Job is one execution of a task, as the API shows it.
type Job struct {
	ID          string         `json:"job_id"`
	Workspace   string         `json:"workspace"`
	TaskName    string         `json:"task_name"`
	Mode        string         `json:"mode"`
	Input       map[string]any `json:"input"`
	Output      map[string]any `json:"output"`
	Status      JobStatus      `json:"status"`
	SourceType  SourceType     `json:"source_type"`
	SourceID    string         `json:"source_id,omitempty"`
	Revision    string         `json:"revision,omitempty"`
	CreatedAt   time.Time      `json:"created_at"`
	StartedAt   *time.Time     `json:"started_at"`
	CompletedAt *time.Time     `json:"completed_at"`
	// CreatedBy and CancelledBy name who created and who cancelled the
	// job: a user's email, "<email> (api key strm_…)" for an API key, or
	// empty (a trigger, a webhook, a server without authentication).
	CreatedBy   string `json:"created_by"`
	CancelledBy string `json:"cancelled_by"`
	// RetryOfJobID names the failed job this one retries (a task-level
	// retry); empty otherwise.
	RetryOfJobID string `json:"retry_of_job_id,omitempty"`
	// Steps is filled by the single-job view and left out of lists.
	Steps []Step `json:"steps,omitempty"`
	// Sub-jobs and hooks (single-job view): a child job's parent, a job's
	// children (its `type: task` steps' jobs) and hook jobs.
	ParentJobID    string    `json:"parent_job_id,omitempty"`
	ParentStepName string    `json:"parent_step_name,omitempty"`
	Children       []JobLink `json:"children,omitempty"`
	Hooks          []JobLink `json:"hooks,omitempty"`
}

// JobLink is a job related to another: a child job (StepName: the parent's
// step) or a hook job (Event: on_success, on_error, on_cancel, on_suspended).
type JobLink struct {
	JobID    string    `json:"job_id"`
	StepName string    `json:"step_name,omitempty"`
	Event    string    `json:"event,omitempty"`
	TaskName string    `json:"task_name"`
	Status   JobStatus `json:"status"`
}
