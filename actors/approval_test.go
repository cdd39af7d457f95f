package actors

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
)

const gatesTestWorkflow = `
actions:
  emit:
    type: shell
    cmd: "echo {{ input.value }}"
    input:
      value: { type: string, required: true }
  gate:
    type: approval
    message: "Ship {{ input.version }} ({{ input.env }})? token {{ secret.token }}"
    timeout: 1h
  sub:
    type: task
    task: child
secrets:
  token: "s3cret-value"
tasks:
  child:
    flow:
      one: { action: emit, input: { value: x } }
  gated:
    input:
      env: { type: string, default: prod }
    flow:
      first: { action: emit, input: { value: a } }
      approve: { action: gate, depends_on: [first], input: { version: "1.2" } }
      run: { action: sub, depends_on: [approve], input: { anything: "{{ input.env }}" } }
      last: { action: emit, depends_on: [run], input: { value: "{{ run.output.one.v }}" } }
`

// gatedJob is a job of task gated whose first step completed: its gate
// is suspended.
func gatedJob(t *testing.T) (*plan, *persistence.JobState) {
	t.Helper()
	p, s := newBundle(t, gatesTestWorkflow).newJob(t, "gated", nil)
	report(t, p, s, "first", stroem.Completion{})
	return p, s
}

func TestGateSuspendsThenApprovalCompletesIt(t *testing.T) {
	t.Parallel()
	p, s := gatedJob(t)

	gate := s.Find("approve")
	require.Equal(t, stroem.StepSuspended, gate.Status, "a gate never becomes ready for a worker")
	require.Nil(t, gate.ReadyAt)
	require.Equal(t, s.Now, *gate.StartedAt)
	require.Equal(t, "Ship 1.2 (prod)? token ***", outMap(gate.Output)["message"], "job input under step input; secrets masked")
	require.Equal(t, "2026-01-01T01:00:00Z", outMap(gate.Output)["timeout_at"])
	require.False(t, claimable(s, nil))

	err := evApprove{step: "first", d: Decision{Approved: true, By: "ann"}}.apply(p, s)
	require.ErrorIs(t, err, stroem.ErrConflict, "not a gate")
	err = evApprove{step: "nope", d: Decision{Approved: true, By: "ann"}}.apply(p, s)
	require.ErrorIs(t, err, stroem.ErrNotFound)

	require.NoError(t, evApprove{step: "approve", d: Decision{Approved: true, By: "ann", Message: "ok"}}.apply(p, s))
	advance(p, s)
	gate = s.Find("approve") // a copy, as the state was
	require.Equal(t, stroem.StepCompleted, gate.Status)
	require.Equal(t, map[string]any{"approved": true, "approved_by": "ann", "approved_at": "2026-01-01T00:00:00Z",
		"comment": "ok", "message": "Ship 1.2 (prod)? token ***", "input": map[string]any{"version": "1.2"}}, gate.Output)
	err = evApprove{step: "approve", d: Decision{Approved: false, By: "bob"}}.apply(p, s)
	require.ErrorIs(t, err, stroem.ErrConflict, "the first decision stands")

	run := s.Find("run")
	require.Equal(t, stroem.StepSuspended, run.Status, "the sub-task step waits for its child")
	require.Equal(t, map[string]any{"anything": "prod"}, run.Input, "a task step's input is the child's, not checked against an action schema")

	require.NoError(t, evChildDone{step: "run", childID: "c1", status: stroem.JobCompleted, output: map[string]any{"one": map[string]any{"v": "42"}}}.apply(p, s))
	advance(p, s)
	require.Equal(t, stroem.StepCompleted, s.Find("run").Status)
	require.Equal(t, map[string]any{"value": "42"}, s.Find("last").Input, "dependents read the child's output")
	require.NoError(t, evChildDone{step: "run", childID: "c1", status: stroem.JobFailed}.apply(p, s), "a late duplicate changes nothing")
	require.Equal(t, stroem.StepCompleted, s.Find("run").Status)
}

func TestGateRejectedFailsAndSkipsDependents(t *testing.T) {
	t.Parallel()
	p, s := gatedJob(t)
	require.NoError(t, evApprove{step: "approve", d: Decision{Approved: false, By: "bob", Reason: "not today"}}.apply(p, s))
	advance(p, s)
	gate := s.Find("approve")
	require.Equal(t, stroem.StepFailed, gate.Status)
	require.Equal(t, "rejected by bob: not today", gate.ErrorMessage)
	require.Equal(t, "not today", outMap(gate.Output)["rejection_reason"])
	require.Equal(t, false, outMap(gate.Output)["approved"])
	require.Equal(t, stroem.StepSkipped, s.Find("run").Status)
	require.Equal(t, stroem.JobFailed, s.Job.Status)
}

func TestGateTimesOutOnlyAtItsDeadline(t *testing.T) {
	t.Parallel()
	p, s := gatedJob(t)
	s.Now = s.Now.Add(59 * time.Minute)
	require.NoError(t, evApprovalTimeout{step: "approve"}.apply(p, s))
	require.Equal(t, stroem.StepSuspended, s.Find("approve").Status, "early: nothing happens")
	s.Now = s.Now.Add(time.Minute)
	require.NoError(t, evApprovalTimeout{step: "approve"}.apply(p, s))
	advance(p, s)
	require.Equal(t, stroem.StepFailed, s.Find("approve").Status)
	require.Equal(t, "approval step timed out after 1h", s.Find("approve").ErrorMessage)
	require.Equal(t, stroem.JobFailed, s.Job.Status)
}

func TestCancelEndsWaitsAtOnce(t *testing.T) {
	t.Parallel()
	p, s := gatedJob(t)
	require.NoError(t, evCancel{}.apply(p, s))
	advance(p, s)
	require.Equal(t, stroem.StepCancelled, s.Find("approve").Status)
	require.Equal(t, stroem.JobCancelled, s.Job.Status)
}

func TestChildFailureFailsTheStep(t *testing.T) {
	t.Parallel()
	p, s := gatedJob(t)
	require.NoError(t, evApprove{step: "approve", d: Decision{Approved: true, By: "ann"}}.apply(p, s))
	advance(p, s)
	require.NoError(t, evChildDone{step: "run", childID: "c1", status: stroem.JobFailed, msg: "child job c1 failed (one: exit code 1)"}.apply(p, s))
	advance(p, s)
	require.Equal(t, stroem.StepFailed, s.Find("run").Status)
	require.Equal(t, "child job c1 failed (one: exit code 1)", s.Find("run").ErrorMessage)
	require.Equal(t, stroem.StepSkipped, s.Find("last").Status)
}

func TestDerivedIDsAreStableAndDistinct(t *testing.T) {
	t.Parallel()
	require.Equal(t, ChildJobID("j1", "a"), ChildJobID("j1", "a"))
	require.NotEqual(t, ChildJobID("j1", "a"), ChildJobID("j1", "b"))
	require.NotEqual(t, ChildJobID("j1", "a"), ChildJobID("j2", "a"))
	require.NotEqual(t, HookJobID("j1", "on_error", 0, ""), HookJobID("j1", "on_error", 1, ""))
	require.NotEqual(t, HookJobID("j1", "on_error", 0, ""), HookJobID("j1", "on_success", 0, ""))
	require.NotEqual(t, HookJobID("j1", "on_suspended", 0, "a"), HookJobID("j1", "on_suspended", 0, "b"))
}

// A gate decided before any update recorded its message (its output is
// still null) takes the message rendered now; nothing panics.
func TestGateDecidedBeforeItsMessageWasRecorded(t *testing.T) {
	t.Parallel()
	p, s := gatedJob(t)
	s.Mut("approve").Output = nil
	require.NoError(t, evApprove{step: "approve", d: Decision{Approved: true, By: "ann"}}.apply(p, s))
	gate := s.Find("approve")
	require.Equal(t, stroem.StepCompleted, gate.Status)
	require.NotEmpty(t, outMap(gate.Output)["message"])
}
