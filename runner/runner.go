package runner

import (
	"context"

	"github.com/stroem/stroem"
)

// Runner executes one attempt of one step. Backends: ShellRunner (the
// `shell` action type); Docker and Kubernetes runners come later.
//
// Run blocks until the step has ended and everything it started is gone. It
// calls sink once per output line, in the order the lines were read, from
// one goroutine at a time and never after Run returns, so sink needs no
// locking against itself but must not block for long (the process's pipe
// fills while it does). Lines are already split at 64 KiB and sanitized with
// stroem.SanitizeText. When ctx is cancelled, Run stops the step (SIGTERM,
// grace, SIGKILL to its process group) and returns a Result with Cancelled
// set; context.Cause(ctx) is quoted in Result.Error. Run never panics on bad
// input: every failure is a Result with an Error.
type Runner interface {
	Run(ctx context.Context, step Step, sink func(stroem.PushLine)) Result
}

// Step is one attempt of one step, as a runner needs it.
type Step struct {
	JobID   string
	Name    string
	Attempt int
	// Spec is the rendered command or script, environment and timeout.
	Spec stroem.StepSpec
	// Input is the step's rendered input; each field becomes an INPUT_<NAME>
	// environment variable.
	Input map[string]any
	// Workspace is a directory holding the workspace files at the job's
	// revision; the step's working directory holds a copy of them.
	// Empty means the step starts in an empty directory.
	Workspace string
	// Mask hides the secrets the step was given in everything it prints,
	// before long lines are split; nil masks nothing.
	Mask *stroem.Masker
	// TraceParent is the W3C trace context of the attempt's span on the
	// server ("" when the server does not trace).
	TraceParent string
}

// Result is how an attempt ended.
type Result struct {
	// ExitCode is the process's exit status; 128+N when a signal N killed
	// it; -1 when no process ran (the working directory or the script could
	// not be set up).
	ExitCode int
	// Output is the value of the last `OUTPUT: <json>` stdout line of a
	// successful step (any JSON value), or nil.
	Output any
	// Error says why the attempt failed; empty means it succeeded.
	Error string
	// Cancelled is set when ctx ended the step; TimedOut when its timeout did.
	Cancelled bool
	TimedOut  bool
	// Cleanup removes what the attempt left behind (its working directory).
	// The caller runs it after reporting the result, which keeps the cleanup
	// off the path from one step to the next. Nil when there is nothing to do.
	Cleanup func() `json:"-"`
	// leftRunning: a process of the step may outlive it (ShellRunner: no
	// supervisor reported its whole tree killed), so what it could reach
	// is not handed to another step.
	leftRunning bool
}

// Succeeded reports whether the attempt completed.
func (r Result) Succeeded() bool { return r.Error == "" && r.ExitCode == 0 }

// Completion turns the result into the worker protocol's report.
func (r Result) Completion(workerID string, attempt int) stroem.Completion {
	// A step that printed no OUTPUT line has no output (null), as upstream.
	return stroem.Completion{WorkerID: workerID, Attempt: attempt, ExitCode: r.ExitCode, Output: r.Output, Error: r.Error}
}
