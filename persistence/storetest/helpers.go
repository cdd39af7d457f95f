package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
)

// Lease is the lease of the helpers' claims.
const Lease = 30 * time.Second

// Step describes a step of a test job: its name, action type (default
// shell) and dependencies.
type Step struct {
	Name              string
	ActionType        string
	Tags              []string // the worker tags the step requires
	Deps              []string
	ContinueOnFailure bool
	MaxAttempts       int
}

// NewJob builds a NewJob whose roots are ready and the rest pending, as the
// orchestrator would.
func NewJob(steps ...Step) persistence.NewJob {
	nj := persistence.NewJob{
		Job: stroem.Job{
			ID: uuid.NewString(), Workspace: "default", TaskName: "hello", Mode: "distributed",
			Input: map[string]any{"name": "World"}, Status: stroem.JobPending, SourceType: stroem.SourceAPI,
			Revision: "rev1",
		},
		SnapshotID:   "snap-1",
		SnapshotBody: []byte(`{"task": "hello"}`),
	}
	for _, s := range steps {
		st := persistence.NewStep{
			Name: s.Name, ActionName: "act-" + s.Name, ActionType: s.ActionType, Tags: s.Tags, DependsOn: s.Deps,
			ContinueOnFailure: s.ContinueOnFailure, MaxAttempts: s.MaxAttempts, Status: stroem.StepPending,
		}
		if st.ActionType == "" {
			st.ActionType = "shell"
		}
		if len(s.Deps) == 0 {
			st.Status = stroem.StepReady
			st.Input = map[string]any{"step": s.Name}
		}
		nj.Steps = append(nj.Steps, st)
	}
	return nj
}

func InsertJob(t testing.TB, s persistence.Store, steps ...Step) persistence.NewJob {
	t.Helper()
	nj := NewJob(steps...)
	require.NoError(t, s.JobInsert(context.Background(), nj))
	return nj
}

func claim(t testing.TB, s persistence.Store, worker string, limit int, lease time.Duration, caps ...string) []persistence.ClaimedStep {
	t.Helper()
	if len(caps) == 0 {
		caps = []string{"shell"}
	}
	got, err := s.StepsClaim(context.Background(), persistence.ClaimParams{
		WorkerID: worker, Capabilities: caps, Limit: limit, Lease: lease,
	})
	require.NoError(t, err)
	return got
}

func ClaimOne(t testing.TB, s persistence.Store, worker string, caps ...string) persistence.ClaimedStep {
	t.Helper()
	got := claim(t, s, worker, 1, Lease, caps...)
	require.Len(t, got, 1)
	return got[0]
}

// ClaimStarted claims one step for worker and acknowledges it (its start):
// a worker reports nothing for an attempt before that (the fences refuse
// it).
func ClaimStarted(t testing.TB, s persistence.Store, worker string, caps ...string) persistence.ClaimedStep {
	t.Helper()
	c := ClaimOne(t, s, worker, caps...)
	_, err := s.StepStart(context.Background(), c.JobID, c.StepName, c.Attempt, worker)
	require.NoError(t, err)
	return c
}

// ClaimedJob inserts a job of one step, "a", which worker claims (and has
// not acknowledged yet).
func ClaimedJob(t testing.TB, s persistence.Store, worker string) (persistence.NewJob, persistence.ClaimedStep) {
	t.Helper()
	nj := InsertJob(t, s, Step{Name: "a"})
	return nj, ClaimOne(t, s, worker)
}

// startedJob inserts a job of one step, which worker claims and
// acknowledges: the step runs, held by worker. It returns the job's id.
func startedJob(t testing.TB, s persistence.Store, worker string, step Step) string {
	t.Helper()
	id := InsertJob(t, s, step).Job.ID
	c := ClaimOne(t, s, worker)
	_, err := s.StepStart(context.Background(), id, c.StepName, c.Attempt, worker)
	require.NoError(t, err)
	return id
}

// claimExpired claims one step for worker with a lease that runs out at
// once, and waits until it has by the store's clock.
func claimExpired(t testing.TB, s persistence.Store, worker string) persistence.ClaimedStep {
	t.Helper()
	got := claim(t, s, worker, 1, time.Millisecond)
	require.Len(t, got, 1)
	c := got[0]
	require.Eventually(t, func() bool {
		l, err := s.StepLease(context.Background(), c.JobID, c.StepName)
		return err == nil && l.LeaseExpiresAt.Before(l.Now)
	}, 10*time.Second, 5*time.Millisecond, "the lease runs out by the store's clock")
	return c
}

func jobState(t testing.TB, s persistence.Store, id string) *persistence.JobState {
	t.Helper()
	st, err := s.JobState(context.Background(), id)
	require.NoError(t, err)
	return st
}

func jobGet(t testing.TB, s persistence.Store, id string) *stroem.Job {
	t.Helper()
	j, err := s.JobGet(context.Background(), id)
	require.NoError(t, err)
	return j
}

// stepLease reads a step's lease.
func stepLease(t testing.TB, s persistence.Store, jobID, step string) persistence.StepLease {
	t.Helper()
	l, err := s.StepLease(context.Background(), jobID, step)
	require.NoError(t, err)
	return l
}

// giveBack gives back every claimed step not yet acknowledged.
func giveBack(t testing.TB, s persistence.Store) []persistence.HeldStep {
	t.Helper()
	given, err := s.StepsGiveBackUnstarted(context.Background(), 0, 0)
	require.NoError(t, err)
	return given
}

// sameStored asserts that two reads of a job show the same stored state
// (Now, the clock at the time of reading, and StateScopes, which only
// JobUpdate must read, aside).
func sameStored(t testing.TB, want, got *persistence.JobState, msgAndArgs ...any) {
	t.Helper()
	require.Equal(t, storedOf(want), storedOf(got), msgAndArgs...)
}

// stored is what a JobState holds, by value, without its copy-on-write
// bookkeeping, the clock at the time of reading and StateScopes.
type stored struct {
	Job             stroem.Job
	SnapshotID      string
	CancelRequested bool
	Context         map[string]any
	Steps           []persistence.StepState
}

func storedOf(st *persistence.JobState) stored {
	v := stored{Job: st.Job, SnapshotID: st.SnapshotID, CancelRequested: st.CancelRequested, Context: st.Context}
	for _, step := range st.All() {
		v.Steps = append(v.Steps, step)
	}
	return v
}

// Report is a worker's completion of one attempt.
type Report struct {
	Step     string
	Worker   string
	Attempt  int
	ExitCode int
	Output   any
	Err      string
}

// Complete is a minimal version of the orchestrator's completion logic,
// enough to exercise a store: fence the report by (worker, attempt) — a
// stale one is CodeConflict, a duplicate of an applied one a no-op —
// record the outcome, then apply the DAG rules (Advance).
func Complete(r Report) func(*persistence.JobState) error {
	return func(st *persistence.JobState) error {
		s := st.Mut(r.Step)
		if s == nil {
			return stroem.Errorf(stroem.CodeNotFound, "no step %s", r.Step)
		}
		if s.Attempt != r.Attempt || s.WorkerID != r.Worker {
			return stroem.Errorf(stroem.CodeConflict, "stale report: attempt %d of %s, step is at attempt %d of %s",
				r.Attempt, r.Worker, s.Attempt, s.WorkerID)
		}
		want := stroem.AttemptCompleted
		if r.ExitCode != 0 || r.Err != "" {
			want = stroem.AttemptFailed
		}
		if s.AttemptStatus.Terminal() {
			if s.AttemptStatus == want {
				return nil // the same report again: already applied
			}
			return stroem.Errorf(stroem.CodeConflict, "attempt %d already ended %s", r.Attempt, s.AttemptStatus)
		}
		code := r.ExitCode
		s.AttemptStatus, s.ExitCode, s.ErrorMessage = want, &code, r.Err
		if want == stroem.AttemptCompleted {
			s.Status, s.Output = stroem.StepCompleted, r.Output
		} else {
			s.Status = stroem.StepFailed
		}
		Advance(st)
		return nil
	}
}

// Advance applies the DAG rules by hand (SPEC §4): skip every pending step
// with a dependency that failed (without continue_on_failure), was skipped
// or cancelled — transitively, in position order, which is topological;
// make ready the pending steps whose dependencies are all done; end the job
// when every step is terminal.
func Advance(st *persistence.JobState) {
	for i, s := range st.All() {
		if s.Status != stroem.StepPending {
			continue
		}
		done, skip := true, false
		for _, dep := range s.DependsOn {
			d := st.Mut(dep)
			switch {
			case d.Status == stroem.StepCompleted, d.Status == stroem.StepFailed && d.ContinueOnFailure:
			case d.Status == stroem.StepFailed, d.Status == stroem.StepSkipped, d.Status == stroem.StepCancelled:
				skip = true
			default:
				done = false
			}
		}
		switch {
		case skip:
			m := st.MutAt(i)
			m.Status, m.ErrorMessage = stroem.StepSkipped, "an upstream step failed"
		case done:
			m := st.MutAt(i)
			m.Status, m.Input = stroem.StepReady, map[string]any{"step": s.Name}
		}
	}
	failed := false
	for _, s := range st.All() {
		if !s.Status.Terminal() {
			return
		}
		if s.Status == stroem.StepFailed && !s.ContinueOnFailure {
			failed = true
		}
	}
	if failed {
		st.Job.Status = stroem.JobFailed
	} else {
		st.Job.Status = stroem.JobCompleted
	}
}

func StepStatuses(t testing.TB, s persistence.Store, jobID string) map[string]stroem.StepStatus {
	t.Helper()
	out := map[string]stroem.StepStatus{}
	for _, st := range jobGet(t, s, jobID).Steps {
		out[st.StepName] = st.Status
	}
	return out
}

func ref(c persistence.ClaimedStep) stroem.StepRef {
	return stroem.StepRef{JobID: c.JobID, Step: c.StepName, Attempt: c.Attempt}
}

// update runs a JobUpdate whose change cannot fail and requires it to be
// written: the state after it.
func update(t testing.TB, s persistence.Store, jobID string, change func(st *persistence.JobState)) *persistence.JobState {
	t.Helper()
	st, err := s.JobUpdate(context.Background(), jobID, func(st *persistence.JobState) error {
		change(st)
		return nil
	})
	require.NoError(t, err)
	return st
}

// report applies a worker's report (Complete) and requires it to be
// accepted: the state after it.
func report(t testing.TB, s persistence.Store, jobID string, r Report) *persistence.JobState {
	t.Helper()
	st, err := s.JobUpdate(context.Background(), jobID, Complete(r))
	require.NoError(t, err)
	return st
}

// registerWorker registers a shell worker of the given name.
func registerWorker(t testing.TB, s persistence.Store, name string) stroem.Worker {
	t.Helper()
	w, err := s.WorkerRegister(context.Background(), stroem.WorkerRegistration{Name: name, Capabilities: []string{"shell"}})
	require.NoError(t, err)
	return w
}
