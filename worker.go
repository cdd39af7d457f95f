package stroem

import "time"

// The worker protocol's messages (SPEC §7). The server and the Go client both
// use these types, so the two sides cannot drift apart.

// Worker is a registered worker process as GET /api/workers shows it.
type Worker struct {
	ID           string   `json:"worker_id"`
	Name         string   `json:"name"`
	Capabilities []string `json:"capabilities"`
	Tags         []string `json:"tags"`
	// Exclusive says the worker takes only steps that ask for every one of
	// its tags (see TagsMatch).
	Exclusive       bool      `json:"exclusive"`
	Status          string    `json:"status"` // active | stale (no heartbeat for 3 leases)
	RegisteredAt    time.Time `json:"registered_at"`
	LastHeartbeatAt time.Time `json:"last_heartbeat_at"`
	// MaxConcurrent is the number of steps the worker runs at once (its
	// slots), as it said when registering; 0, and left out of the JSON,
	// when it did not say (a worker older than the field).
	MaxConcurrent int `json:"max_concurrent,omitempty"`
}

// Bounds of a worker's registration: its name, each capability and each
// tag are at most MaxWorkerField bytes, and it lists at most MaxWorkerList
// capabilities and tags. A workflow whose action asks for tags beyond them
// could never run, so its loader refuses it.
const (
	MaxWorkerField = 256
	MaxWorkerList  = 64
)

// WorkerRegistration is the body of POST /worker/register.
type WorkerRegistration struct {
	Name         string   `json:"name"`
	Capabilities []string `json:"capabilities"`
	// Tags are the worker's affinity labels and Exclusive reserves the
	// worker for steps that ask for all of them (TagsMatch). The server
	// keeps them to tell whether an active worker can run a step; the
	// claims carry them too.
	Tags      []string `json:"tags"`
	Exclusive bool     `json:"exclusive,omitempty"`
	// MaxConcurrent is how many steps the worker runs at once, shown to
	// operators (GET /api/workers); 0 means not said. Claims do not use
	// it: each slot long-polls on its own.
	MaxConcurrent int `json:"max_concurrent,omitempty"`
}

// WorkerRegistered answers a registration.
type WorkerRegistered struct {
	WorkerID string `json:"worker_id"`
	// LeaseMS and HeartbeatMS tell the worker how the server times leases, so
	// a worker never has to guess how often to heartbeat.
	LeaseMS     int64 `json:"lease_ms"`
	HeartbeatMS int64 `json:"heartbeat_ms"`
	// IdleHeartbeatMS is how often to heartbeat while no step runs: such
	// a heartbeat renews no lease, it only says the worker is alive.
	// Absent (an older server): HeartbeatMS.
	IdleHeartbeatMS int64 `json:"idle_heartbeat_ms,omitempty"`
	// Credential is this worker's own bearer token for every later call
	// (the shared worker token only registers). It is bound to WorkerID:
	// a call with it may only name this worker and the steps it holds.
	Credential string `json:"credential"`
}

// ClaimRequest is the body of POST /worker/jobs/claim (a long poll).
type ClaimRequest struct {
	WorkerID     string   `json:"worker_id"`
	Capabilities []string `json:"capabilities"`
	// Tags and Exclusive route steps to the worker (TagsMatch): a step is
	// claimed only if it asks for no tag the worker lacks and, for an
	// exclusive worker, for every tag the worker has. Absent (an older
	// worker): no tags, not exclusive.
	Tags      []string `json:"tags,omitempty"`
	Exclusive bool     `json:"exclusive,omitempty"`
	// WaitMS is how long to wait for a step before answering 204; at most 30 s.
	WaitMS int `json:"wait_ms"`
}

// Assignment is a claimed step handed to a worker. The worker holds a lease
// on it from the moment it is returned; the step is already running.
type Assignment struct {
	JobID      string         `json:"job_id"`
	StepName   string         `json:"step_name"`
	Attempt    int            `json:"attempt"`
	ActionName string         `json:"action_name"`
	ActionType string         `json:"action_type"`
	Image      string         `json:"image,omitempty"`
	Workspace  string         `json:"workspace"`
	Revision   string         `json:"revision"`
	Spec       StepSpec       `json:"spec"`
	Input      map[string]any `json:"input"`
	LeaseMS    int64          `json:"lease_ms"`
	// Mask lists the secret values this step holds (in its spec or input),
	// which the worker masks in the step's output before splitting long
	// lines; the server masks again with every secret of the job.
	Mask []string `json:"mask,omitempty"`
	// TraceParent is the W3C trace context of this attempt's span when the
	// server traces (docs/operations/tracing.md); empty otherwise.
	TraceParent string `json:"traceparent,omitempty"`
	// State says which state snapshots (task, global) existed when the
	// step was handed out; the worker downloads only those. Absent (an
	// older server, or one that could not tell) means download both.
	State *AssignmentState `json:"state,omitempty"`
	// Started says the server recorded this attempt as started when it
	// handed it over, in the answer to the worker's own completion
	// (Completion.Next): the worker runs it without a `start` report, and
	// repeats the completion if it did not get the answer, which then
	// brings the same step again. Sending `start` anyway is harmless (it is
	// idempotent). False for every other hand-over, and from older servers.
	Started bool `json:"started,omitempty"`
}

// AssignmentState is which of the step's state scopes had a snapshot when
// the step was handed out. The step's STATE_DIR holds the snapshot newest
// when it is claimed (docs/state-artifacts.md), so a scope without one
// needs no download: most steps write no state, and asking cost two
// requests per step (issue 23).
type AssignmentState struct {
	Task   bool `json:"task"`
	Global bool `json:"global"`
}

// Has reports whether scope ("task" or "global") may have a snapshot to
// download: true unless the server said it had none.
func (s *AssignmentState) Has(scope string) bool {
	switch {
	case s == nil:
		return true
	case scope == "task":
		return s.Task
	case scope == "global":
		return s.Global
	}
	return true
}

// StepSpec is what to execute, rendered on the server.
type StepSpec struct {
	// Exactly one of Cmd and Script is set. Script is a path relative to the
	// workspace root.
	Cmd    string `json:"cmd,omitempty"`
	Script string `json:"script,omitempty"`
	// Args follows Script: shell words (rendered like Cmd) that /bin/sh
	// splits and expands, as in `script: actions/deploy.sh --env prod`.
	Args    string            `json:"args,omitempty"`
	Env     map[string]string `json:"env,omitempty"`
	Timeout Duration          `json:"timeout,omitempty"` // 0: no timeout

	// Code is the inline code of a `type: script` action (rendered), run
	// in Language; with Script instead, the file is run in Language.
	Code string `json:"code,omitempty"`
	// Language is shell, python, javascript, typescript or go; empty means
	// the older behaviour (Cmd with /bin/sh, Script executed directly).
	Language string `json:"language,omitempty"`
	// Interpreter overrides the program that runs Code or Script.
	Interpreter string `json:"interpreter,omitempty"`
	// ArgList are command-line arguments (rendered), one word each.
	ArgList []string `json:"arg_list,omitempty"`
	// Dependencies are packages the worker installs (cached per set)
	// before the step runs.
	Dependencies []string `json:"dependencies,omitempty"`
	// Workdir is the working directory relative to the workspace copy.
	Workdir string `json:"workdir,omitempty"`
}

// StepRef names one attempt of one step.
type StepRef struct {
	JobID   string `json:"job_id"`
	Step    string `json:"step"`
	Attempt int    `json:"attempt"`
}

// Heartbeat is the body of POST /worker/heartbeat: the steps the worker is
// running, whose leases it renews.
type Heartbeat struct {
	WorkerID string    `json:"worker_id"`
	Running  []StepRef `json:"running"`
}

// HeartbeatResponse lists the running steps the worker must stop: cancelled
// by a user, or no longer its own (lease expired, job gone). Their later
// reports will be refused with 409.
type HeartbeatResponse struct {
	Cancel []StepRef `json:"cancel"`
	// HeartbeatMS, when set, asks for the next heartbeat within that long
	// even while no step runs: the server is checking, after a restart,
	// which of the steps it holds for the worker the worker really got.
	HeartbeatMS int64 `json:"heartbeat_ms,omitempty"`
}

// StepStart is the body of POST /worker/jobs/{id}/steps/{step}/start: the
// worker's acknowledgement of a step handed to it, sent before it runs
// anything of the step. A step counts as started only once acknowledged; one
// not acknowledged within the server's start_timeout is given back, and its
// late acknowledgement refused (409). Idempotent.
type StepStart struct {
	WorkerID string `json:"worker_id"`
	Attempt  int    `json:"attempt"`
}

// LogPush is the body of POST /worker/jobs/{id}/steps/{step}/logs.
type LogPush struct {
	WorkerID string `json:"worker_id"`
	Attempt  int    `json:"attempt"`
	// Offset is the index of Lines[0] among all lines this attempt has
	// printed (0-based). The server drops lines it already stored, so a push
	// retried after a lost acknowledgement stores nothing twice.
	Offset int64      `json:"offset"`
	Lines  []PushLine `json:"lines"`
	// Ordered asks the server to store the push only once every line of
	// the attempt before Offset is stored; a push that comes early (a
	// worker with several pushes in flight) stores nothing and is answered
	// with Ahead set. Without it a push ahead of the stored lines is
	// stored at once (a worker that skipped a refused batch).
	Ordered bool `json:"ordered,omitempty"`
}

// PushLine is one line as the worker sends it; the server assigns Seq.
type PushLine struct {
	TS     time.Time `json:"ts"`
	Stream Stream    `json:"stream"`
	Text   string    `json:"text"`
}

// LogPushResponse acknowledges a push; every line in it is stored durably.
// Cancel tells the worker early that the step should stop.
type LogPushResponse struct {
	Stored int  `json:"stored"`
	Cancel bool `json:"cancel,omitempty"`
	// Ahead says an Ordered push came before the attempt's earlier lines
	// were stored, and stored nothing: send it again once the earlier
	// pushes are answered.
	Ahead bool `json:"ahead,omitempty"`
	// Ordered echoes the push's Ordered: the server honours it. A worker
	// keeps one push in flight until it has seen this (an older server
	// would store an early push and then drop the one before it).
	Ordered bool `json:"ordered,omitempty"`
}

// Completion is the body of POST /worker/jobs/{id}/steps/{step}/complete.
// A step completed when ExitCode is 0 and Error is empty.
type Completion struct {
	WorkerID string `json:"worker_id"`
	Attempt  int    `json:"attempt"`
	ExitCode int    `json:"exit_code"`
	Output   any    `json:"output"`
	// Error says why the step failed (exit code and last stderr lines,
	// malformed OUTPUT, timeout, cancellation).
	Error string `json:"error"`
	// Next, when set, says the slot that ran this attempt is free and
	// asks for its next step in the same request (a claim that does not
	// wait). Absent: the completion alone, as before the field.
	Next *NextClaim `json:"next,omitempty"`
}

// NextClaim is the claim a completion carries for its slot: the worker (the
// completion's own worker_id) and the action types the slot runs, as in a
// ClaimRequest. The server never waits for a step for it: the answer carries
// one only if one could be handed out at once.
type NextClaim struct {
	WorkerID     string   `json:"worker_id"`
	Capabilities []string `json:"capabilities"`
	Tags         []string `json:"tags,omitempty"`
	Exclusive    bool     `json:"exclusive,omitempty"`
}

// CompletionResponse answers a completion.
type CompletionResponse struct {
	// Next is the slot's next step, when the completion asked for one
	// (Completion.Next) and one was ready at once: a claim like any other,
	// which the worker acknowledges (`start`) before running it. Absent:
	// nothing was ready (or an older server): the slot long-polls a claim.
	Next *Assignment `json:"next,omitempty"`
}

// Succeeded reports whether the completion is a success.
func (c Completion) Succeeded() bool { return c.ExitCode == 0 && c.Error == "" }

// TagsMatch reports whether a worker with workerTags (exclusive or not) may
// run a step that requires stepTags, as the upstream Strøm routes since its
// migration 042: every tag the step asks for is one of the worker's
// (affinity), and an exclusive worker also refuses a step that does not ask
// for every one of its own tags (a reserved worker). A worker without tags
// runs only steps that ask for none; exclusive changes nothing for it. The
// action type (capability) is matched separately. Both lists are sets:
// order and repeats do not matter.
func TagsMatch(stepTags, workerTags []string, exclusive bool) bool {
	if len(stepTags) == 0 && (!exclusive || len(workerTags) == 0) {
		return true // the common case: nothing asked, nothing reserved
	}
	if !subsetOf(stepTags, workerTags) {
		return false
	}
	return !exclusive || subsetOf(workerTags, stepTags)
}

// subsetOf reports whether every element of a is in b. The lists are
// short (a handful of tags): a nested loop allocates nothing.
func subsetOf(a, b []string) bool {
outer:
	for _, x := range a {
		for _, y := range b {
			if x == y {
				continue outer
			}
		}
		return false
	}
	return true
}
