package stroem

import (
	"slices"
	"time"
)

// StepStatus is where one step of a job is in its lifecycle (SPEC §4).
type StepStatus string

// Step statuses. pending waits for dependencies; ready may be claimed by a
// worker; running is held by a worker under a lease.
const (
	StepPending   StepStatus = "pending"
	StepReady     StepStatus = "ready"
	StepRunning   StepStatus = "running"
	StepCompleted StepStatus = "completed"
	StepFailed    StepStatus = "failed"
	StepSkipped   StepStatus = "skipped"
	StepCancelled StepStatus = "cancelled"
	// StepSuspended is a server-side step waiting for something other than
	// a worker: an approval gate for a decision, a `type: task` step for
	// its child job. It holds no worker slot (docs/workflows.md).
	StepSuspended StepStatus = "suspended"
)

// StepStatuses lists every step status, in lifecycle order.
var StepStatuses = []StepStatus{StepPending, StepReady, StepRunning, StepCompleted, StepFailed, StepSkipped, StepCancelled, StepSuspended}

// Valid reports whether s is a known step status.
func (s StepStatus) Valid() bool { return slices.Contains(StepStatuses, s) }

// Terminal reports whether the step has finished for good.
func (s StepStatus) Terminal() bool {
	switch s {
	case StepCompleted, StepFailed, StepSkipped, StepCancelled:
		return true
	}
	return false
}

// stepTransitions lists the allowed moves:
//   - pending → failed happens when the step's input does not render once its
//     dependencies are done; ready → failed when its command does not render at
//     claim time.
//   - pending → running is a hand-off: the step's dependencies just completed
//     and a worker was already waiting for it, so it is claimed in the same
//     transaction that makes it runnable.
//   - running → ready is a retry: the attempt failed and the retry policy allows
//     another one.
//   - pending/ready → suspended: a server-side step (approval, task) began to
//     wait; it ends completed, failed or cancelled.
var stepTransitions = map[StepStatus][]StepStatus{
	StepPending:   {StepReady, StepSkipped, StepCancelled, StepFailed, StepRunning, StepSuspended},
	StepReady:     {StepRunning, StepCancelled, StepFailed, StepSkipped, StepSuspended},
	StepRunning:   {StepCompleted, StepFailed, StepCancelled, StepReady},
	StepSuspended: {StepCompleted, StepFailed, StepCancelled},
}

// CanTransition reports whether a step may move from s to next.
func (s StepStatus) CanTransition(next StepStatus) bool {
	return slices.Contains(stepTransitions[s], next)
}

// Step is one node of a job's DAG, as the API shows it.
type Step struct {
	StepName   string `json:"step_name"`
	ActionName string `json:"action_name"`
	ActionType string `json:"action_type"`
	// Tags are the worker tags the step requires (its action's): only a
	// worker they match runs it (TagsMatch). Absent: none.
	Tags         []string       `json:"tags,omitempty"`
	DependsOn    []string       `json:"depends_on"`
	Status       StepStatus     `json:"status"`
	Input        map[string]any `json:"input"`
	Output       any            `json:"output"`
	WorkerID     *string        `json:"worker_id"`
	StartedAt    *time.Time     `json:"started_at"`
	CompletedAt  *time.Time     `json:"completed_at"`
	ErrorMessage string         `json:"error_message,omitempty"`
	// Attempt is the number of the latest execution (0 before the first claim).
	Attempt     int       `json:"attempt"`
	MaxAttempts int       `json:"max_attempts"`
	Attempts    []Attempt `json:"attempts,omitempty"`
	// LogsTruncated is set when the step's log reached the server's
	// per-step size limit: a marker line ends what was stored.
	LogsTruncated bool `json:"logs_truncated"`
	// ChildJobID is the child job of a `type: task` step, once created.
	ChildJobID string `json:"child_job_id,omitempty"`
	// Loop and LoopIndex are set on an instance of a for_each step
	// ("deploy[2]": loop "deploy", index 2); Instances on the loop step
	// itself (its instances' names, in index order).
	Loop      string   `json:"loop,omitempty"`
	LoopIndex *int     `json:"loop_index,omitempty"`
	Instances []string `json:"instances,omitempty"`
	// SkipReason says why a skipped step did not run (see SkipReasonOf).
	SkipReason SkipReason `json:"skip_reason,omitempty"`
}

// AttemptStatus is the outcome of one execution of a step.
type AttemptStatus string

// Attempt statuses. lost means the worker stopped renewing its lease; a
// report from it for that attempt is refused.
const (
	AttemptRunning   AttemptStatus = "running"
	AttemptCompleted AttemptStatus = "completed"
	AttemptFailed    AttemptStatus = "failed"
	AttemptCancelled AttemptStatus = "cancelled"
	AttemptLost      AttemptStatus = "lost"
)

// Terminal reports whether the attempt has ended.
func (s AttemptStatus) Terminal() bool { return s != AttemptRunning && s != "" }

// Attempt is one execution of a step on a worker; retries add attempts.
type Attempt struct {
	Attempt      int           `json:"attempt"`
	WorkerID     string        `json:"worker_id"`
	Status       AttemptStatus `json:"status"`
	ExitCode     *int          `json:"exit_code"`
	ErrorMessage string        `json:"error_message,omitempty"`
	StartedAt    time.Time     `json:"started_at"`
	CompletedAt  *time.Time    `json:"completed_at"`
}
