package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
)

// Run runs the whole suite. open must return a fresh, empty, migrated store
// for the test it is given and close it when that test ends; every subtest
// opens its own and runs in parallel.
func Run(t *testing.T, open func(t *testing.T) persistence.Store) {
	t.Run("JobInsert", func(t *testing.T) { t.Parallel(); testJobInsert(t, open) })
	t.Run("Snapshots", func(t *testing.T) { t.Parallel(); testSnapshots(t, open) })
	t.Run("JobGet", func(t *testing.T) { t.Parallel(); testJobGet(t, open) })
	t.Run("JobList", func(t *testing.T) { t.Parallel(); testJobList(t, open) })
	t.Run("JobUpdate", func(t *testing.T) { t.Parallel(); testJobUpdate(t, open) })
	t.Run("Claims", func(t *testing.T) { t.Parallel(); testClaims(t, open) })
	t.Run("Fencing", func(t *testing.T) { t.Parallel(); testFencing(t, open) })
	t.Run("Transitions", func(t *testing.T) { t.Parallel(); testTransitions(t, open) })
	t.Run("StepUnclaim", func(t *testing.T) { t.Parallel(); testStepUnclaim(t, open) })
	t.Run("Leases", func(t *testing.T) { t.Parallel(); testLeases(t, open) })
	t.Run("Workers", func(t *testing.T) { t.Parallel(); testWorkers(t, open) })
	t.Run("Sanitizing", func(t *testing.T) { t.Parallel(); testSanitizing(t, open) })
	t.Run("WorkspaceArchives", func(t *testing.T) { t.Parallel(); testArchives(t, open) })
	t.Run("ListenAndPing", func(t *testing.T) { t.Parallel(); testListenAndPing(t, open) })
	t.Run("Triggers", func(t *testing.T) { t.Parallel(); testTriggers(t, open) })
	t.Run("JobContext", func(t *testing.T) { t.Parallel(); testJobContext(t, open) })
	t.Run("Users", func(t *testing.T) { t.Parallel(); testUsers(t, open) })
}

func testJobInsert(t *testing.T, open func(t *testing.T) persistence.Store) {
	t.Run("JobWithStepsInOrder", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := context.Background()
		before := time.Now()
		nj := insertJob(t, s, step{name: "a"}, step{name: "b", deps: []string{"a"}, maxAtt: 3}, step{name: "c", actionType: "docker"})

		j := jobGet(t, s, nj.Job.ID)
		require.Equal(t, nj.Job.ID, j.ID)
		require.Equal(t, stroem.JobPending, j.Status)
		require.Equal(t, "default", j.Workspace)
		require.Equal(t, "hello", j.TaskName)
		require.Equal(t, "distributed", j.Mode)
		require.Equal(t, "rev1", j.Revision)
		require.Equal(t, stroem.SourceAPI, j.SourceType)
		require.Equal(t, map[string]any{"name": "World"}, j.Input)
		require.Nil(t, j.Output)
		require.Nil(t, j.StartedAt)
		require.Nil(t, j.CompletedAt)
		require.Equal(t, time.UTC, j.CreatedAt.Location(), "times are UTC")
		require.WithinDuration(t, before, j.CreatedAt, time.Minute)
		require.Len(t, j.Steps, 3)
		require.Equal(t, []string{"a", "b", "c"}, []string{j.Steps[0].StepName, j.Steps[1].StepName, j.Steps[2].StepName})
		require.Equal(t, stroem.StepReady, j.Steps[0].Status)
		require.Equal(t, stroem.StepPending, j.Steps[1].Status)
		require.Equal(t, []string{}, j.Steps[0].DependsOn)
		require.Equal(t, []string{"a"}, j.Steps[1].DependsOn)
		require.Equal(t, "act-b", j.Steps[1].ActionName)
		require.Equal(t, "docker", j.Steps[2].ActionType)
		require.Equal(t, map[string]any{"step": "a"}, j.Steps[0].Input)
		require.Nil(t, j.Steps[1].Input)
		require.Equal(t, 1, j.Steps[0].MaxAttempts, "0 means one attempt")
		require.Equal(t, 3, j.Steps[1].MaxAttempts)
		require.Equal(t, 0, j.Steps[0].Attempt)
		require.Nil(t, j.Steps[0].WorkerID)
		require.Empty(t, j.Steps[0].Attempts)

		st := jobState(t, s, nj.Job.ID)
		require.Equal(t, "snap-1", st.SnapshotID)
		require.False(t, st.CancelRequested)
		require.NotNil(t, st.Step("a").ReadyAt, "ready steps are claimable at once")
		require.Nil(t, st.Step("b").ReadyAt)
		require.Nil(t, st.Step("a").CompletedAt)
		for i, step := range st.Steps {
			require.Equal(t, i, step.Position)
		}
		require.False(t, st.Now.IsZero())
		require.False(t, st.Step("a").ReadyAt.After(st.Now), "ready no later than now")

		body, err := s.SnapshotGet(ctx, "snap-1")
		require.NoError(t, err)
		require.JSONEq(t, `{"task": "hello"}`, string(body))

		unfinished, err := s.JobsUnfinished(ctx)
		require.NoError(t, err)
		require.Equal(t, []string{nj.Job.ID}, unfinished)
	})

	t.Run("DefaultsAndCanonicalID", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := context.Background()
		nj := newJob(step{name: "a"})
		nj.Job.ID = strings.ToUpper(nj.Job.ID)
		nj.Job.Status, nj.Job.Mode, nj.Job.SourceType, nj.Job.Input = "", "", "", nil
		require.NoError(t, s.JobInsert(ctx, nj))
		j := jobGet(t, s, strings.ToLower(nj.Job.ID))
		require.Equal(t, strings.ToLower(nj.Job.ID), j.ID, "ids read back in canonical form")
		require.Equal(t, stroem.JobPending, j.Status)
		require.Equal(t, "distributed", j.Mode)
		require.Equal(t, stroem.SourceAPI, j.SourceType)
		require.Equal(t, map[string]any{}, j.Input)
		_, err := s.JobGet(ctx, nj.Job.ID)
		require.NoError(t, err, "an upper-case id names the same job")
	})

	t.Run("TerminalJobGetsCompletedAt", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		nj := newJob(step{name: "a"}, step{name: "b", deps: []string{"a"}})
		nj.Job.Status = stroem.JobFailed
		nj.Steps[0].Status, nj.Steps[0].ErrorMessage = stroem.StepFailed, "input does not render"
		nj.Steps[1].Status = stroem.StepSkipped
		require.NoError(t, s.JobInsert(context.Background(), nj))
		j := jobGet(t, s, nj.Job.ID)
		require.Equal(t, stroem.JobFailed, j.Status)
		require.NotNil(t, j.CompletedAt)
		require.Nil(t, j.StartedAt)
		require.NotNil(t, j.Steps[0].CompletedAt)
		require.NotNil(t, j.Steps[1].CompletedAt)
		require.Equal(t, "input does not render", j.Steps[0].ErrorMessage)
		unfinished, err := s.JobsUnfinished(context.Background())
		require.NoError(t, err)
		require.Empty(t, unfinished)
	})

	t.Run("InvalidJobsAreRefused", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := context.Background()
		bad := newJob(step{name: "a"})
		bad.Job.ID = "not-a-uuid"
		require.ErrorIs(t, s.JobInsert(ctx, bad), stroem.ErrInvalid)
		running := newJob(step{name: "a"})
		running.Steps[0].Status = stroem.StepRunning
		require.ErrorIs(t, s.JobInsert(ctx, running), stroem.ErrInvalid, "a step cannot be inserted running")
		unknown := newJob(step{name: "a"})
		unknown.Job.Status = "sleeping"
		require.ErrorIs(t, s.JobInsert(ctx, unknown), stroem.ErrInvalid)
		jobs, err := s.JobList(ctx, persistence.JobFilter{})
		require.NoError(t, err)
		require.Empty(t, jobs)
	})

	t.Run("DuplicateIDIsConflict", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		nj := insertJob(t, s, step{name: "a"})
		again := newJob(step{name: "other"})
		again.Job.ID = nj.Job.ID
		require.ErrorIs(t, s.JobInsert(context.Background(), again), stroem.ErrConflict)
		j := jobGet(t, s, nj.Job.ID)
		require.Len(t, j.Steps, 1)
		require.Equal(t, "a", j.Steps[0].StepName, "the first job is untouched")
	})

	t.Run("AllOrNothing", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := context.Background()
		// The second step's name repeats the first: the insert fails after
		// the snapshot, the job and one step were written.
		nj := newJob(step{name: "a"}, step{name: "a"})
		nj.SnapshotID, nj.SnapshotBody = "snap-atomic", []byte(`{"task": "atomic"}`)
		require.ErrorIs(t, s.JobInsert(ctx, nj), stroem.ErrConflict)

		_, err := s.JobGet(ctx, nj.Job.ID)
		require.ErrorIs(t, err, stroem.ErrNotFound, "no job")
		_, err = s.SnapshotGet(ctx, "snap-atomic")
		require.ErrorIs(t, err, stroem.ErrNotFound, "no snapshot")
		jobs, err := s.JobList(ctx, persistence.JobFilter{})
		require.NoError(t, err)
		require.Empty(t, jobs)
		got, err := s.StepsClaim(ctx, persistence.ClaimParams{WorkerID: "w1", Capabilities: []string{"shell"}, Limit: 10, Lease: testLease})
		require.NoError(t, err)
		require.Empty(t, got, "no step")

		// The same job, fixed, goes in whole: its snapshot body too.
		nj.Steps[1].Name = "b"
		require.NoError(t, s.JobInsert(ctx, nj))
		require.Len(t, jobGet(t, s, nj.Job.ID).Steps, 2)
		body, err := s.SnapshotGet(ctx, "snap-atomic")
		require.NoError(t, err)
		require.JSONEq(t, `{"task": "atomic"}`, string(body))
	})
}

func testSnapshots(t *testing.T, open func(t *testing.T) persistence.Store) {
	s := open(t)
	ctx := context.Background()
	_, err := s.SnapshotGet(ctx, "snap-1")
	require.ErrorIs(t, err, stroem.ErrNotFound)
	insertJob(t, s, step{name: "a"})
	second := newJob(step{name: "a"})
	second.SnapshotBody = nil // the store knows the id: no body needed
	require.NoError(t, s.JobInsert(ctx, second))
	require.Equal(t, "snap-1", jobState(t, s, second.Job.ID).SnapshotID)

	require.NoError(t, s.SnapshotPut(ctx, "snap-1", []byte(`{"other": true}`)), "idempotent")
	body, err := s.SnapshotGet(ctx, "snap-1")
	require.NoError(t, err)
	require.JSONEq(t, `{"task": "hello"}`, string(body), "a snapshot never changes")

	require.NoError(t, s.SnapshotPut(ctx, "snap-2", []byte(`{"n": [1, 2.5, "x"]}`)))
	require.NoError(t, s.SnapshotPut(ctx, "snap-2", []byte(`{"n": [1, 2.5, "x"]}`)))
	body, err = s.SnapshotGet(ctx, "snap-2")
	require.NoError(t, err)
	require.JSONEq(t, `{"n": [1, 2.5, "x"]}`, string(body))

	require.ErrorIs(t, s.SnapshotPut(ctx, "snap-3", []byte(`{not json`)), stroem.ErrInvalid)
	_, err = s.SnapshotGet(ctx, "snap-3")
	require.ErrorIs(t, err, stroem.ErrNotFound)
}

func testJobGet(t *testing.T, open func(t *testing.T) persistence.Store) {
	s := open(t)
	ctx := context.Background()
	insertJob(t, s, step{name: "a"})
	for _, id := range []string{"not-a-uuid", "", uuid.NewString(), "'; DROP TABLE jobs; --"} {
		_, err := s.JobGet(ctx, id)
		require.ErrorIs(t, err, stroem.ErrNotFound, "id %q", id)
		_, err = s.JobState(ctx, id)
		require.ErrorIs(t, err, stroem.ErrNotFound, "id %q", id)
		called := false
		_, err = s.JobUpdate(ctx, id, func(*persistence.JobState) error { called = true; return nil })
		require.ErrorIs(t, err, stroem.ErrNotFound, "id %q", id)
		require.False(t, called, "no state, no callback")
	}
	jobs, err := s.JobList(ctx, persistence.JobFilter{})
	require.NoError(t, err)
	require.Len(t, jobs, 1, "still there")
}

func testJobList(t *testing.T, open func(t *testing.T) persistence.Store) {
	s := open(t)
	ctx := context.Background()

	var ids []string
	for i := range 7 {
		nj := newJob(step{name: "a"})
		if i%2 == 1 {
			nj.Job.TaskName = "other"
		}
		if i == 6 {
			nj.Job.Workspace, nj.Job.SourceType, nj.Job.SourceID = "ws2", stroem.SourceTrigger, "nightly"
		}
		require.NoError(t, s.JobInsert(ctx, nj))
		ids = append(ids, nj.Job.ID)
		time.Sleep(2 * time.Millisecond) // distinct created_at, so the order is the insert order
	}

	all, err := s.JobList(ctx, persistence.JobFilter{})
	require.NoError(t, err)
	require.Len(t, all, 7)
	for i, j := range all {
		require.Equal(t, ids[6-i], j.ID, "newest first")
		require.Nil(t, j.Steps, "lists leave steps out")
	}

	page, err := s.JobList(ctx, persistence.JobFilter{Limit: 2, Offset: 2})
	require.NoError(t, err)
	require.Equal(t, []string{ids[4], ids[3]}, []string{page[0].ID, page[1].ID})
	page, err = s.JobList(ctx, persistence.JobFilter{Limit: 5, Offset: 5})
	require.NoError(t, err)
	require.Equal(t, []string{ids[1], ids[0]}, []string{page[0].ID, page[1].ID}, "the last page is short")
	page, err = s.JobList(ctx, persistence.JobFilter{Offset: 7})
	require.NoError(t, err)
	require.Empty(t, page)
	page, err = s.JobList(ctx, persistence.JobFilter{Limit: -1, Offset: -3})
	require.NoError(t, err)
	require.Len(t, page, 7, "negative limit and offset mean the defaults")

	other, err := s.JobList(ctx, persistence.JobFilter{Workspace: "default", Task: "other"})
	require.NoError(t, err)
	require.Equal(t, []string{ids[5], ids[3], ids[1]}, jobIDs(other))
	hello, err := s.JobList(ctx, persistence.JobFilter{Task: "hello"})
	require.NoError(t, err)
	require.Equal(t, []string{ids[6], ids[4], ids[2], ids[0]}, jobIDs(hello), "task alone, across workspaces")
	ws2, err := s.JobList(ctx, persistence.JobFilter{Workspace: "ws2"})
	require.NoError(t, err)
	require.Equal(t, []string{ids[6]}, jobIDs(ws2))

	trig, err := s.JobList(ctx, persistence.JobFilter{SourceType: stroem.SourceTrigger, SourceID: "nightly"})
	require.NoError(t, err)
	require.Equal(t, []string{ids[6]}, jobIDs(trig))
	require.Equal(t, stroem.SourceTrigger, trig[0].SourceType)
	require.Equal(t, "nightly", trig[0].SourceID)

	c := claimOne(t, s, "w1")
	require.Equal(t, ids[0], c.JobID, "the oldest ready step first")
	running, err := s.JobList(ctx, persistence.JobFilter{Status: stroem.JobRunning})
	require.NoError(t, err)
	require.Equal(t, []string{ids[0]}, jobIDs(running))
	require.NotNil(t, running[0].StartedAt)
	pending, err := s.JobList(ctx, persistence.JobFilter{Status: stroem.JobPending, Workspace: "default"})
	require.NoError(t, err)
	require.Equal(t, []string{ids[5], ids[4], ids[3], ids[2], ids[1]}, jobIDs(pending))

	none, err := s.JobList(ctx, persistence.JobFilter{Workspace: "nope"})
	require.NoError(t, err)
	require.NotNil(t, none, "an empty list, not nil (JSON [])")
	require.Empty(t, none)

	unfinished, err := s.JobsUnfinished(ctx)
	require.NoError(t, err)
	require.Equal(t, ids, unfinished, "oldest first")
	_, err = s.JobUpdate(ctx, ids[2], func(st *persistence.JobState) error {
		st.Steps[0].Status, st.Job.Status = stroem.StepCancelled, stroem.JobCancelled
		return nil
	})
	require.NoError(t, err)
	unfinished, err = s.JobsUnfinished(ctx)
	require.NoError(t, err)
	require.Equal(t, slices.Delete(slices.Clone(ids), 2, 3), unfinished, "a finished job is not resumed")

	// The default page is 50; a limit above 1000 is capped.
	for range 50 {
		insertJob(t, s, step{name: "a"})
	}
	page, err = s.JobList(ctx, persistence.JobFilter{})
	require.NoError(t, err)
	require.Len(t, page, 50)
	page, err = s.JobList(ctx, persistence.JobFilter{Limit: 100_000})
	require.NoError(t, err)
	require.Len(t, page, 57)
	require.True(t, slices.IsSortedFunc(page, func(a, b stroem.Job) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	}), "created_at, then id, descending")
}

func jobIDs(jobs []stroem.Job) []string {
	out := make([]string, len(jobs))
	for i, j := range jobs {
		out[i] = j.ID
	}
	return out
}

func testJobUpdate(t *testing.T, open func(t *testing.T) persistence.Store) {
	type testBundle struct {
		store persistence.Store
		job   persistence.NewJob
	}
	setup := func(t *testing.T) *testBundle {
		t.Helper()
		s := open(t)
		return &testBundle{store: s, job: insertJob(t, s, step{name: "a"}, step{name: "b", deps: []string{"a"}})}
	}

	t.Run("CallbackErrorRollsBackAndIsReturnedUnchanged", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		before := jobState(t, b.store, b.job.Job.ID)
		sentinel := errors.New("no thanks")
		_, err := b.store.JobUpdate(ctx, b.job.Job.ID, func(st *persistence.JobState) error {
			st.Step("a").Status = stroem.StepCancelled
			st.Step("b").Input = map[string]any{"x": 1}
			st.Job.Status = stroem.JobCancelled
			return sentinel
		})
		require.Same(t, sentinel, err, "the callback's error, not wrapped")
		coded := stroem.Errorf(stroem.CodeConflict, "stale")
		_, err = b.store.JobUpdate(ctx, b.job.Job.ID, func(*persistence.JobState) error { return coded })
		require.Same(t, coded, err)
		sameStored(t, before, jobState(t, b.store, b.job.Job.ID), "nothing written")
	})

	t.Run("NoChangeChangesNothing", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		before := jobState(t, b.store, b.job.Job.ID)
		st, err := b.store.JobUpdate(context.Background(), b.job.Job.ID, func(st *persistence.JobState) error {
			st.Step("b").Input = map[string]any{} // changed, then put back
			st.Step("b").Input = nil
			return nil
		})
		require.NoError(t, err)
		require.False(t, st.Now.IsZero(), "Now is the store's clock")
		require.False(t, st.Now.Before(before.Now), "and does not go back")
		sameStored(t, before, st)
		sameStored(t, before, jobState(t, b.store, b.job.Job.ID))
	})

	t.Run("WritesWhatChangedAndReturnsIt", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		st, err := b.store.JobUpdate(context.Background(), b.job.Job.ID, func(st *persistence.JobState) error {
			st.Step("b").Input = map[string]any{"k": "v", "n": 2.5, "list": []any{"x", true}}
			st.CancelRequested = true
			st.Step("a").CancelRequested = true
			return nil
		})
		require.NoError(t, err)
		after := jobState(t, b.store, b.job.Job.ID)
		sameStored(t, st, after, "the returned state is the state as stored")
		require.Equal(t, map[string]any{"k": "v", "n": 2.5, "list": []any{"x", true}}, after.Step("b").Input)
		require.True(t, after.CancelRequested)
		require.True(t, after.Step("a").CancelRequested)
		require.False(t, after.Step("b").CancelRequested)
	})

	t.Run("InvalidTransitionIsRefusedAndRolledBack", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		before := jobState(t, b.store, b.job.Job.ID)
		_, err := b.store.JobUpdate(ctx, b.job.Job.ID, func(st *persistence.JobState) error {
			st.Step("b").Input = map[string]any{"x": 1} // would be written if the update went through
			st.Step("a").Status = stroem.StepCompleted  // ready → completed skips running
			return nil
		})
		require.ErrorContains(t, err, "invalid transition ready → completed")
		sameStored(t, before, jobState(t, b.store, b.job.Job.ID), "rolled back")

		for name, fn := range map[string]func(st *persistence.JobState){
			"a running step needs a worker and a lease": func(st *persistence.JobState) {
				st.Step("a").Status = stroem.StepRunning
			},
			"an attempt status needs an attempt": func(st *persistence.JobState) {
				st.Step("a").AttemptStatus = stroem.AttemptFailed
			},
			"steps cannot be added": func(st *persistence.JobState) {
				st.Steps = append(st.Steps, &persistence.StepState{Name: "c", Position: 2, Status: stroem.StepPending})
			},
			"steps cannot be replaced": func(st *persistence.JobState) {
				st.Steps[1] = &persistence.StepState{Name: "z", Position: 1, Status: stroem.StepPending}
			},
			"steps cannot be reordered": func(st *persistence.JobState) {
				st.Steps[0], st.Steps[1] = st.Steps[1], st.Steps[0]
			},
			"step pending → completed": func(st *persistence.JobState) {
				st.Step("b").Status = stroem.StepCompleted
			},
		} {
			_, err := b.store.JobUpdate(ctx, b.job.Job.ID, func(st *persistence.JobState) error {
				st.Step("b").Input = map[string]any{"x": 1}
				fn(st)
				return nil
			})
			require.Error(t, err, name)
			require.NotErrorIs(t, err, stroem.ErrNotFound, name)
			sameStored(t, before, jobState(t, b.store, b.job.Job.ID), "%s: rolled back", name)
		}

		_, err = b.store.JobUpdate(ctx, b.job.Job.ID, func(st *persistence.JobState) error {
			st.Steps[0].Status, st.Steps[1].Status = stroem.StepCancelled, stroem.StepCancelled
			st.Job.Status = stroem.JobCancelled
			return nil
		})
		require.NoError(t, err)
		_, err = b.store.JobUpdate(ctx, b.job.Job.ID, func(st *persistence.JobState) error {
			st.Job.Status = stroem.JobRunning // cancelled → running
			return nil
		})
		require.ErrorContains(t, err, "invalid transition cancelled → running")
		j := jobGet(t, b.store, b.job.Job.ID)
		require.Equal(t, stroem.JobCancelled, j.Status)
		require.NotNil(t, j.CompletedAt)
		require.Nil(t, j.StartedAt, "cancelled before it ever ran")
	})

	t.Run("TimestampsAndAttempts", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		c := claimOne(t, b.store, "w1")
		require.Equal(t, "a", c.StepName)
		require.Equal(t, 1, c.Attempt)

		// Attempt 1 fails and is retried: back to ready, completed_at cleared.
		st, err := b.store.JobUpdate(ctx, b.job.Job.ID, func(st *persistence.JobState) error {
			a := st.Step("a")
			code := 2
			a.AttemptStatus, a.ExitCode, a.ErrorMessage = stroem.AttemptFailed, &code, "exit 2"
			a.Status = stroem.StepReady
			return nil
		})
		require.NoError(t, err)
		a := st.Step("a")
		require.Nil(t, a.CompletedAt)
		require.Nil(t, a.LeaseExpiresAt, "the lease ends with the run")
		require.NotNil(t, a.ReadyAt)
		require.Equal(t, st.Now, *a.ReadyAt, "ready again now")
		sameStored(t, st, jobState(t, b.store, b.job.Job.ID))

		c2 := claimOne(t, b.store, "w2")
		require.Equal(t, 2, c2.Attempt)
		st, err = b.store.JobUpdate(ctx, b.job.Job.ID, completeFn(report{
			step: "a", worker: "w2", attempt: 2, output: map[string]any{"greeting": "hi"},
		}))
		require.NoError(t, err)
		require.Equal(t, stroem.StepCompleted, st.Step("a").Status)
		require.Equal(t, st.Now, *st.Step("a").CompletedAt)
		require.Nil(t, st.Step("a").LeaseExpiresAt)
		require.Equal(t, stroem.StepReady, st.Step("b").Status)
		require.Equal(t, st.Now, *st.Step("b").ReadyAt)
		require.Equal(t, stroem.JobRunning, st.Job.Status)
		sameStored(t, st, jobState(t, b.store, b.job.Job.ID))

		j := jobGet(t, b.store, b.job.Job.ID)
		atts := j.Steps[0].Attempts
		require.Len(t, atts, 2)
		require.Equal(t, 1, atts[0].Attempt)
		require.Equal(t, "w1", atts[0].WorkerID)
		require.Equal(t, stroem.AttemptFailed, atts[0].Status)
		require.Equal(t, 2, *atts[0].ExitCode)
		require.Equal(t, "exit 2", atts[0].ErrorMessage)
		require.NotNil(t, atts[0].CompletedAt)
		require.False(t, atts[0].StartedAt.IsZero())
		require.Equal(t, 2, atts[1].Attempt)
		require.Equal(t, "w2", atts[1].WorkerID)
		require.Equal(t, stroem.AttemptCompleted, atts[1].Status)
		require.Equal(t, 0, *atts[1].ExitCode)
		require.Empty(t, atts[1].ErrorMessage)
		require.Equal(t, *st.Step("a").CompletedAt, *atts[1].CompletedAt)
		require.False(t, atts[1].StartedAt.Before(atts[0].StartedAt))
		require.Equal(t, map[string]any{"greeting": "hi"}, j.Steps[0].Output)
		require.Equal(t, "w2", *j.Steps[0].WorkerID)
		require.Equal(t, 2, j.Steps[0].Attempt)
		require.Equal(t, stroem.JobRunning, j.Status)
		require.NotNil(t, j.StartedAt)
		require.Nil(t, j.CompletedAt)
		require.Empty(t, j.Steps[1].Attempts)

		c3 := claimOne(t, b.store, "w1")
		require.Equal(t, "b", c3.StepName)
		st, err = b.store.JobUpdate(ctx, b.job.Job.ID, func(st *persistence.JobState) error {
			if err := completeFn(report{step: "b", worker: "w1", attempt: 1})(st); err != nil {
				return err
			}
			st.Job.Output = map[string]any{"b": map[string]any{}}
			return nil
		})
		require.NoError(t, err)
		require.Equal(t, stroem.JobCompleted, st.Job.Status)
		require.Equal(t, st.Now, *st.Job.CompletedAt)
		j = jobGet(t, b.store, b.job.Job.ID)
		require.Equal(t, stroem.JobCompleted, j.Status)
		require.Equal(t, st.Now, *j.CompletedAt)
		require.Equal(t, map[string]any{"b": map[string]any{}}, j.Output)
		require.False(t, j.CompletedAt.Before(*j.StartedAt))
		require.Len(t, j.Steps[1].Attempts, 1)
	})

	t.Run("ChosenTimesAreKept", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		claimOne(t, b.store, "w1")
		var later time.Time
		st, err := b.store.JobUpdate(ctx, b.job.Job.ID, func(st *persistence.JobState) error {
			later = st.Now.Add(90 * time.Second)
			a := st.Step("a")
			a.AttemptStatus, a.Status, a.ReadyAt = stroem.AttemptFailed, stroem.StepReady, &later // a retry backoff
			return nil
		})
		require.NoError(t, err)
		require.Equal(t, later, *st.Step("a").ReadyAt)
		require.Equal(t, later, *jobState(t, b.store, b.job.Job.ID).Step("a").ReadyAt)
	})

	t.Run("ConcurrentUpdatesSerialize", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		const n = 20
		errs := make(chan error, n)
		for i := range n {
			go func() {
				_, err := b.store.JobUpdate(ctx, b.job.Job.ID, func(st *persistence.JobState) error {
					in := st.Step("b").Input
					if in == nil {
						in = map[string]any{}
					}
					count, _ := in["count"].(float64)
					in["count"] = count + 1
					in[fmt.Sprintf("w%d", i)] = true
					st.Step("b").Input = in
					return nil
				})
				errs <- err
			}()
		}
		for range n {
			require.NoError(t, <-errs)
		}
		in := jobState(t, b.store, b.job.Job.ID).Step("b").Input
		require.Equal(t, float64(n), in["count"], "no lost update")
		require.Len(t, in, n+1)
	})
}

func testClaims(t *testing.T, open func(t *testing.T) persistence.Store) {
	t.Run("EachStepClaimedExactlyOnceByConcurrentClaimers", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := context.Background()

		// 2,000 ready steps over 200 jobs, action types mixed: shell, docker, pod.
		types := []string{"shell", "docker", "pod"}
		wantType := map[string]string{}
		var jobIDs []string
		for j := range 200 {
			var steps []step
			for i := range 10 {
				steps = append(steps, step{name: fmt.Sprintf("s%d", i), actionType: types[(j*10+i)%3]})
			}
			nj := insertJob(t, s, steps...)
			jobIDs = append(jobIDs, nj.Job.ID)
			for _, st := range nj.Steps {
				wantType[nj.Job.ID+"/"+st.Name] = st.ActionType
			}
		}

		// 8 claimers with different capabilities: together they cover every type.
		caps := [][]string{{"shell"}, {"docker"}, {"pod"}, {"shell", "docker"}, {"docker", "pod"}, {"shell", "pod"}, {"shell", "docker", "pod"}, {"shell"}}
		var (
			mu      sync.Mutex
			claimed = map[string]string{} // step → worker
			dups    []string
			wg      sync.WaitGroup
			errs    = make(chan error, 1000)
		)
		for w, c := range caps {
			wg.Go(func() {
				worker := fmt.Sprintf("w%d", w)
				for {
					got, err := s.StepsClaim(ctx, persistence.ClaimParams{WorkerID: worker, Capabilities: c, Limit: 7, Lease: testLease})
					if err != nil {
						errs <- err
						return
					}
					if len(got) == 0 {
						return
					}
					mu.Lock()
					for _, g := range got {
						key := g.JobID + "/" + g.StepName
						if _, ok := claimed[key]; ok {
							dups = append(dups, key)
						}
						claimed[key] = worker
						if !slices.Contains(c, g.ActionType) || wantType[key] != g.ActionType {
							errs <- fmt.Errorf("worker %s with %v got a %s step (%s)", worker, c, g.ActionType, key)
						}
						if g.Attempt != 1 {
							errs <- fmt.Errorf("%s: attempt %d", key, g.Attempt)
						}
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		require.Empty(t, dups, "claimed twice")
		require.Len(t, claimed, 2000, "every step claimed")

		for _, id := range jobIDs {
			j := jobGet(t, s, id)
			require.Equal(t, stroem.JobRunning, j.Status)
			require.NotNil(t, j.StartedAt)
			for _, st := range j.Steps {
				require.Equal(t, stroem.StepRunning, st.Status)
				require.Equal(t, 1, st.Attempt)
				require.Equal(t, claimed[id+"/"+st.StepName], *st.WorkerID)
				require.Len(t, st.Attempts, 1)
				require.Equal(t, stroem.AttemptRunning, st.Attempts[0].Status)
			}
		}
		none := claim(t, s, "late", 10, testLease, "shell", "docker", "pod")
		require.Empty(t, none)
	})

	t.Run("ClaimStartsAnAttemptUnderALease", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := context.Background()
		nj := insertJob(t, s, step{name: "a", actionType: "docker"}, step{name: "b", deps: []string{"a"}})

		require.Empty(t, claim(t, s, "w1", 5, testLease, "shell"), "no shell step is ready: b waits for a")
		none, err := s.StepsClaim(ctx, persistence.ClaimParams{WorkerID: "w1", Limit: 5, Lease: testLease})
		require.NoError(t, err)
		require.Empty(t, none, "no capabilities, nothing to run")
		_, err = s.StepsClaim(ctx, persistence.ClaimParams{WorkerID: "w1", Capabilities: []string{"docker"}, Limit: 1})
		require.ErrorIs(t, err, stroem.ErrInvalid, "a claim without a lease is a bug")
		_, err = s.StepsClaim(ctx, persistence.ClaimParams{Capabilities: []string{"docker"}, Limit: 1, Lease: testLease})
		require.ErrorIs(t, err, stroem.ErrInvalid, "a claim without a worker is a bug")
		require.Equal(t, stroem.StepReady, jobState(t, s, nj.Job.ID).Step("a").Status, "refused claims take nothing")

		before := time.Now()
		c := claimOne(t, s, "w1", "docker", "shell")
		require.Equal(t, nj.Job.ID, c.JobID)
		require.Equal(t, "a", c.StepName)
		require.Equal(t, 1, c.Attempt)
		require.Equal(t, "act-a", c.ActionName)
		require.Equal(t, "docker", c.ActionType)
		require.Equal(t, map[string]any{"step": "a"}, c.Input)
		require.Equal(t, "default", c.Workspace)
		require.Equal(t, "hello", c.TaskName)
		require.Equal(t, "rev1", c.Revision)
		require.Equal(t, "snap-1", c.SnapshotID)
		require.WithinDuration(t, before.Add(testLease), c.LeaseExpiresAt, 5*time.Second)

		st := jobState(t, s, nj.Job.ID)
		a := st.Step("a")
		require.Equal(t, stroem.StepRunning, a.Status)
		require.Equal(t, "w1", a.WorkerID)
		require.Equal(t, 1, a.Attempt)
		require.Equal(t, stroem.AttemptRunning, a.AttemptStatus)
		require.NotNil(t, a.StartedAt)
		require.Nil(t, a.CompletedAt)
		require.Equal(t, c.LeaseExpiresAt, *a.LeaseExpiresAt)
		require.Equal(t, stroem.JobRunning, st.Job.Status)
		require.NotNil(t, st.Job.StartedAt)
		require.Equal(t, *a.StartedAt, *st.Job.StartedAt, "the job started with its first claim")
		l, err := s.StepLease(ctx, nj.Job.ID, "a")
		require.NoError(t, err)
		require.Equal(t, c.LeaseExpiresAt, *l.LeaseExpiresAt)
		require.Equal(t, stroem.StepRunning, l.Status)
		require.True(t, l.Now.Before(*l.LeaseExpiresAt))

		require.Empty(t, claim(t, s, "w2", 5, testLease, "docker", "shell"), "a running step is not claimable")
		j := jobGet(t, s, nj.Job.ID)
		require.Equal(t, "w1", *j.Steps[0].WorkerID)
		require.Len(t, j.Steps[0].Attempts, 1)
		require.Equal(t, "w1", j.Steps[0].Attempts[0].WorkerID)
		require.Equal(t, *a.StartedAt, j.Steps[0].Attempts[0].StartedAt)
		require.Nil(t, j.Steps[0].Attempts[0].CompletedAt)
	})

	t.Run("OldestReadyFirstAndFutureReadyAtNotClaimable", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := context.Background()
		first := insertJob(t, s, step{name: "a"})
		readyAt := *jobState(t, s, first.Job.ID).Step("a").ReadyAt
		time.Sleep(2 * time.Millisecond)
		second := insertJob(t, s, step{name: "x"}, step{name: "y"}, step{name: "z", actionType: "docker"})
		time.Sleep(2 * time.Millisecond)
		third := insertJob(t, s, step{name: "a"})
		// The first job's step backs off for an hour: not claimable.
		_, err := s.JobUpdate(ctx, first.Job.ID, func(st *persistence.JobState) error {
			later := st.Now.Add(time.Hour)
			st.Step("a").ReadyAt = &later
			return nil
		})
		require.NoError(t, err)

		got := claim(t, s, "w1", 2, testLease)
		require.Len(t, got, 2, "the limit holds")
		require.Equal(t, []string{second.Job.ID + "/x", second.Job.ID + "/y"},
			[]string{got[0].JobID + "/" + got[0].StepName, got[1].JobID + "/" + got[1].StepName},
			"oldest ready first, then in position order")
		got = claim(t, s, "w1", 10, testLease)
		require.Len(t, got, 1)
		require.Equal(t, third.Job.ID, got[0].JobID)
		require.Empty(t, claim(t, s, "w1", 10, testLease), "a step backing off waits")
		require.Equal(t, stroem.StepReady, jobState(t, s, first.Job.ID).Step("a").Status)
		require.Equal(t, stroem.JobPending, jobGet(t, s, first.Job.ID).Status)

		// The back-off is called off: claimable again, first in line.
		_, err = s.JobUpdate(ctx, first.Job.ID, func(st *persistence.JobState) error {
			st.Step("a").ReadyAt = &readyAt
			return nil
		})
		require.NoError(t, err)
		got = claim(t, s, "w1", 10, testLease, "shell", "docker")
		require.Len(t, got, 2)
		require.Equal(t, first.Job.ID, got[0].JobID, "ready the longest")
		require.Equal(t, second.Job.ID+"/z", got[1].JobID+"/"+got[1].StepName)
	})
}

func testFencing(t *testing.T, open func(t *testing.T) persistence.Store) {
	type testBundle struct {
		store persistence.Store
		job   persistence.NewJob
		claim persistence.ClaimedStep
	}
	setup := func(t *testing.T) *testBundle {
		t.Helper()
		s := open(t)
		nj := insertJob(t, s, step{name: "a"}, step{name: "b", deps: []string{"a"}})
		return &testBundle{store: s, job: nj, claim: claimOne(t, s, "w1")}
	}

	t.Run("StaleCompletionIsRefusedAndChangesNothing", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		before := jobState(t, b.store, b.job.Job.ID)
		for _, r := range []report{
			{step: "a", worker: "w1", attempt: 2}, // an attempt that does not exist
			{step: "a", worker: "w2", attempt: 1}, // another worker
			{step: "a", worker: "w1", attempt: 0}, // an old attempt
			{step: "a", worker: "w2", attempt: 1, exitCode: 1},
		} {
			_, err := b.store.JobUpdate(ctx, b.job.Job.ID, completeFn(r))
			require.ErrorIs(t, err, stroem.ErrConflict, "%+v", r)
		}
		sameStored(t, before, jobState(t, b.store, b.job.Job.ID))

		// After a retry, a report of the first attempt is stale too.
		_, err := b.store.JobUpdate(ctx, b.job.Job.ID, func(st *persistence.JobState) error {
			a := st.Step("a")
			a.AttemptStatus, a.ErrorMessage, a.Status = stroem.AttemptLost, "worker lost (lease expired)", stroem.StepReady
			return nil
		})
		require.NoError(t, err)
		c2 := claimOne(t, b.store, "w2")
		require.Equal(t, 2, c2.Attempt)
		_, err = b.store.JobUpdate(ctx, b.job.Job.ID, completeFn(report{step: "a", worker: "w1", attempt: 1}))
		require.ErrorIs(t, err, stroem.ErrConflict)
		st, err := b.store.JobUpdate(ctx, b.job.Job.ID, completeFn(report{step: "a", worker: "w2", attempt: 2}))
		require.NoError(t, err)
		require.Equal(t, stroem.StepCompleted, st.Step("a").Status)
		atts := jobGet(t, b.store, b.job.Job.ID).Steps[0].Attempts
		require.Len(t, atts, 2)
		require.Equal(t, stroem.AttemptLost, atts[0].Status)
		require.Equal(t, "worker lost (lease expired)", atts[0].ErrorMessage)
		require.Equal(t, stroem.AttemptCompleted, atts[1].Status)
	})

	t.Run("SameCompletionTwiceIsAppliedOnce", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		r := report{step: "a", worker: "w1", attempt: b.claim.Attempt, output: map[string]any{"n": 1}}

		first, err := b.store.JobUpdate(ctx, b.job.Job.ID, completeFn(r))
		require.NoError(t, err)
		require.Equal(t, stroem.StepCompleted, first.Step("a").Status)
		require.Equal(t, stroem.StepReady, first.Step("b").Status)
		stored := jobState(t, b.store, b.job.Job.ID)
		attempts := jobGet(t, b.store, b.job.Job.ID).Steps[0].Attempts

		time.Sleep(2 * time.Millisecond) // a second write would carry a later time
		second, err := b.store.JobUpdate(ctx, b.job.Job.ID, completeFn(r))
		require.NoError(t, err, "a duplicate is accepted")
		require.Equal(t, stroem.StepCompleted, second.Step("a").Status)
		require.Equal(t, first.Step("a").CompletedAt, second.Step("a").CompletedAt)
		sameStored(t, stored, jobState(t, b.store, b.job.Job.ID), "and writes nothing")
		require.Equal(t, attempts, jobGet(t, b.store, b.job.Job.ID).Steps[0].Attempts)

		// A different outcome for the same attempt is a conflict.
		_, err = b.store.JobUpdate(ctx, b.job.Job.ID, completeFn(report{step: "a", worker: "w1", attempt: 1, exitCode: 3}))
		require.ErrorIs(t, err, stroem.ErrConflict)
		sameStored(t, stored, jobState(t, b.store, b.job.Job.ID))
	})

	t.Run("StepFenceForLogPushes", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		id := b.job.Job.ID
		cancel, err := b.store.StepFence(ctx, id, "a", 1, "w1")
		require.NoError(t, err)
		require.False(t, cancel)
		_, err = b.store.StepFence(ctx, strings.ToUpper(id), "a", 1, "w1")
		require.NoError(t, err, "an upper-case job id is the same job")

		_, err = b.store.StepFence(ctx, id, "a", 1, "w2")
		require.ErrorIs(t, err, stroem.ErrConflict)
		require.ErrorContains(t, err, "not the running attempt")
		_, err = b.store.StepFence(ctx, id, "a", 2, "w1")
		require.ErrorIs(t, err, stroem.ErrConflict)
		_, err = b.store.StepFence(ctx, id, "b", 0, "w1")
		require.ErrorIs(t, err, stroem.ErrConflict, "a pending step has no running attempt")
		_, err = b.store.StepFence(ctx, id, "zzz", 1, "w1")
		require.ErrorIs(t, err, stroem.ErrNotFound)
		_, err = b.store.StepFence(ctx, uuid.NewString(), "a", 1, "w1")
		require.ErrorIs(t, err, stroem.ErrNotFound)
		_, err = b.store.StepFence(ctx, "bad", "a", 1, "w1")
		require.ErrorIs(t, err, stroem.ErrNotFound)

		_, err = b.store.JobUpdate(ctx, id, func(st *persistence.JobState) error {
			st.CancelRequested = true
			st.Step("a").CancelRequested = true
			st.Step("b").Status = stroem.StepCancelled
			return nil
		})
		require.NoError(t, err)
		cancel, err = b.store.StepFence(ctx, id, "a", 1, "w1")
		require.NoError(t, err)
		require.True(t, cancel, "the worker learns of the cancel")

		_, err = b.store.JobUpdate(ctx, id, completeFn(report{step: "a", worker: "w1", attempt: 1}))
		require.NoError(t, err)
		_, err = b.store.StepFence(ctx, id, "a", 1, "w1")
		require.ErrorIs(t, err, stroem.ErrConflict, "the attempt is over")
	})
}

func testTransitions(t *testing.T, open func(t *testing.T) persistence.Store) {
	t.Run("FailureSkipsExactlyTheTransitiveDependentsInOneUpdate", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := context.Background()
		// a → b → c → f, a → d, e alone, g after (d, c).
		nj := insertJob(t, s,
			step{name: "a"},
			step{name: "b", deps: []string{"a"}},
			step{name: "c", deps: []string{"b"}},
			step{name: "d", deps: []string{"a"}},
			step{name: "e"},
			step{name: "f", deps: []string{"c"}},
			step{name: "g", deps: []string{"d", "c"}},
		)
		id := nj.Job.ID
		claimed := map[string]bool{}
		claimAll := func() {
			for _, c := range claim(t, s, "w1", 10, testLease) {
				claimed[c.StepName] = true
			}
		}
		claimAll()
		require.Equal(t, map[string]bool{"a": true, "e": true}, claimed)
		_, err := s.JobUpdate(ctx, id, completeFn(report{step: "a", worker: "w1", attempt: 1}))
		require.NoError(t, err)
		claimAll()
		require.True(t, claimed["b"] && claimed["d"])

		st, err := s.JobUpdate(ctx, id, completeFn(report{step: "b", worker: "w1", attempt: 1, exitCode: 1, err: "exit 1"}))
		require.NoError(t, err)
		require.Equal(t, map[string]stroem.StepStatus{
			"a": stroem.StepCompleted, "b": stroem.StepFailed, "c": stroem.StepSkipped, "d": stroem.StepRunning,
			"e": stroem.StepRunning, "f": stroem.StepSkipped, "g": stroem.StepSkipped,
		}, stepStatuses(t, s, id))
		require.Equal(t, stroem.JobRunning, st.Job.Status, "independent branches still run")
		for _, n := range []string{"c", "f", "g"} {
			require.Equal(t, st.Now, *st.Step(n).CompletedAt, n)
			require.Equal(t, 0, st.Step(n).Attempt, "%s never ran", n)
			require.Equal(t, "an upstream step failed", st.Step(n).ErrorMessage)
		}
		require.Equal(t, "exit 1", jobGet(t, s, id).Steps[1].Attempts[0].ErrorMessage)

		_, err = s.JobUpdate(ctx, id, completeFn(report{step: "d", worker: "w1", attempt: 1}))
		require.NoError(t, err)
		j := jobGet(t, s, id)
		require.Equal(t, stroem.JobRunning, j.Status, "e is still running")
		require.Nil(t, j.CompletedAt)

		st, err = s.JobUpdate(ctx, id, completeFn(report{step: "e", worker: "w1", attempt: 1}))
		require.NoError(t, err)
		require.Equal(t, stroem.JobFailed, st.Job.Status, "every step terminal, one failed")
		require.NotNil(t, st.Job.CompletedAt)
		unfinished, err := s.JobsUnfinished(ctx)
		require.NoError(t, err)
		require.NotContains(t, unfinished, id)
		failed, err := s.JobList(ctx, persistence.JobFilter{Status: stroem.JobFailed})
		require.NoError(t, err)
		require.Equal(t, []string{id}, jobIDs(failed))
	})

	t.Run("ContinueOnFailureRunsDependents", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := context.Background()
		nj := insertJob(t, s, step{name: "a", contOnFail: true}, step{name: "b", deps: []string{"a"}})
		claimOne(t, s, "w1")
		st, err := s.JobUpdate(ctx, nj.Job.ID, completeFn(report{step: "a", worker: "w1", attempt: 1, exitCode: 1}))
		require.NoError(t, err)
		require.Equal(t, stroem.StepReady, st.Step("b").Status)
		claimOne(t, s, "w1")
		st, err = s.JobUpdate(ctx, nj.Job.ID, completeFn(report{step: "b", worker: "w1", attempt: 1}))
		require.NoError(t, err)
		require.Equal(t, stroem.JobCompleted, st.Job.Status)
	})

	t.Run("CancelledJobEndsWithoutRunning", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := context.Background()
		nj := insertJob(t, s, step{name: "a"}, step{name: "b", deps: []string{"a"}})
		st, err := s.JobUpdate(ctx, nj.Job.ID, func(st *persistence.JobState) error {
			st.CancelRequested = true
			for _, s := range st.Steps {
				s.Status = stroem.StepCancelled
			}
			st.Job.Status = stroem.JobCancelled
			return nil
		})
		require.NoError(t, err)
		require.Equal(t, st.Now, *st.Job.CompletedAt)
		require.Empty(t, claim(t, s, "w1", 10, testLease), "nothing left to claim")
		j := jobGet(t, s, nj.Job.ID)
		require.Equal(t, stroem.JobCancelled, j.Status)
		for _, step := range j.Steps {
			require.Equal(t, stroem.StepCancelled, step.Status)
			require.NotNil(t, step.CompletedAt)
		}
	})
}

func testStepUnclaim(t *testing.T, open func(t *testing.T) persistence.Store) {
	s := open(t)
	ctx := context.Background()
	nj := insertJob(t, s, step{name: "a"})
	id := nj.Job.ID

	// Attempt 1 fails and is retried; attempt 2's claim is then undone.
	claimOne(t, s, "w1")
	_, err := s.JobUpdate(ctx, id, func(st *persistence.JobState) error {
		a := st.Step("a")
		code := 7
		a.AttemptStatus, a.ExitCode, a.ErrorMessage, a.Status = stroem.AttemptFailed, &code, "exit 7", stroem.StepReady
		return nil
	})
	require.NoError(t, err)
	before := jobState(t, s, id)
	c := claimOne(t, s, "w2")
	require.Equal(t, 2, c.Attempt)

	require.NoError(t, s.StepUnclaim(ctx, id, "a", 2, "w1"), "another worker: no-op")
	require.NoError(t, s.StepUnclaim(ctx, id, "a", 1, "w2"), "another attempt: no-op")
	require.NoError(t, s.StepUnclaim(ctx, id, "b", 2, "w2"), "another step: no-op")
	require.NoError(t, s.StepUnclaim(ctx, "bad", "a", 2, "w2"))
	require.NoError(t, s.StepUnclaim(ctx, uuid.NewString(), "a", 2, "w2"))
	require.Equal(t, stroem.StepRunning, jobState(t, s, id).Step("a").Status)

	require.NoError(t, s.StepUnclaim(ctx, id, "a", 2, "w2"))
	st := jobState(t, s, id)
	a, old := st.Step("a"), before.Step("a")
	require.Equal(t, stroem.StepReady, a.Status)
	require.Equal(t, 1, a.Attempt)
	require.Equal(t, "w1", a.WorkerID)
	require.Equal(t, stroem.AttemptFailed, a.AttemptStatus)
	require.Equal(t, 7, *a.ExitCode)
	require.Equal(t, "exit 7", a.ErrorMessage)
	require.Equal(t, old.StartedAt, a.StartedAt)
	require.Equal(t, old.ReadyAt, a.ReadyAt, "first in line again")
	require.Nil(t, a.LeaseExpiresAt)
	require.Nil(t, a.CompletedAt)
	require.Equal(t, stroem.JobRunning, st.Job.Status)
	sameStored(t, before, st, "as before the claim")
	require.Len(t, jobGet(t, s, id).Steps[0].Attempts, 1, "the attempt is forgotten")

	require.NoError(t, s.StepUnclaim(ctx, id, "a", 2, "w2"), "twice: no-op")
	c = claimOne(t, s, "w3")
	require.Equal(t, 2, c.Attempt, "the attempt number is reused")
	atts := jobGet(t, s, id).Steps[0].Attempts
	require.Len(t, atts, 2)
	require.Equal(t, "w3", atts[1].WorkerID)

	// A first attempt unclaimed leaves a step that never ran.
	fresh := insertJob(t, s, step{name: "x"})
	time.Sleep(time.Millisecond)
	c = claimOne(t, s, "w4")
	require.Equal(t, fresh.Job.ID, c.JobID)
	require.NoError(t, s.StepUnclaim(ctx, fresh.Job.ID, "x", 1, "w4"))
	x := jobState(t, s, fresh.Job.ID).Step("x")
	require.Equal(t, stroem.StepReady, x.Status)
	require.Equal(t, 0, x.Attempt)
	require.Empty(t, x.WorkerID)
	require.Empty(t, x.AttemptStatus)
	require.Nil(t, x.ExitCode)
	require.Nil(t, x.StartedAt)
	require.Empty(t, jobGet(t, s, fresh.Job.ID).Steps[0].Attempts)
}

func testLeases(t *testing.T, open func(t *testing.T) persistence.Store) {
	type testBundle struct {
		store  persistence.Store
		worker stroem.Worker
		job    persistence.NewJob
	}
	setup := func(t *testing.T) *testBundle {
		t.Helper()
		s := open(t)
		w, err := s.WorkerRegister(context.Background(), stroem.WorkerRegistration{Name: "w", Capabilities: []string{"shell"}})
		require.NoError(t, err)
		return &testBundle{store: s, worker: w, job: insertJob(t, s, step{name: "a"}, step{name: "b"}, step{name: "c"})}
	}

	t.Run("RenewHeldCancelTheRest", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		id := b.job.Job.ID
		a := claimOne(t, b.store, b.worker.ID)
		bb := claimOne(t, b.store, b.worker.ID)
		other := claimOne(t, b.store, "someone-else")
		// a: held; b: cancel requested; other: another worker's; plus an old
		// attempt, an unknown job and a malformed id.
		_, err := b.store.JobUpdate(ctx, id, func(st *persistence.JobState) error {
			st.Step(bb.StepName).CancelRequested = true
			return nil
		})
		require.NoError(t, err)
		stale := stroem.StepRef{JobID: id, Step: a.StepName, Attempt: 0}
		gone := stroem.StepRef{JobID: uuid.NewString(), Step: "a", Attempt: 1}
		bad := stroem.StepRef{JobID: "bad", Step: "a", Attempt: 1}
		before, err := b.store.StepLease(ctx, id, a.StepName)
		require.NoError(t, err)
		time.Sleep(10 * time.Millisecond)

		cancel, err := b.store.LeasesRenew(ctx, b.worker.ID, []stroem.StepRef{ref(a), ref(bb), ref(other), stale, gone, bad}, time.Hour)
		require.NoError(t, err)
		require.ElementsMatch(t, []stroem.StepRef{bad, ref(bb), ref(other), stale, gone}, cancel)

		after, err := b.store.StepLease(ctx, id, a.StepName)
		require.NoError(t, err)
		require.Equal(t, 1, after.Attempt)
		require.Equal(t, stroem.StepRunning, after.Status)
		require.True(t, after.LeaseExpiresAt.After(*before.LeaseExpiresAt))
		require.WithinDuration(t, after.Now.Add(time.Hour), *after.LeaseExpiresAt, 5*time.Second)
		otherLease, err := b.store.StepLease(ctx, id, other.StepName)
		require.NoError(t, err)
		require.Equal(t, other.LeaseExpiresAt, *otherLease.LeaseExpiresAt, "another worker's lease is untouched")

		workers, err := b.store.WorkerList(ctx)
		require.NoError(t, err)
		require.Len(t, workers, 1)
		require.True(t, workers[0].LastHeartbeatAt.After(workers[0].RegisteredAt), "the heartbeat is recorded")

		// A renewal never shortens a lease.
		_, err = b.store.LeasesRenew(ctx, b.worker.ID, []stroem.StepRef{ref(a)}, time.Second)
		require.NoError(t, err)
		kept, err := b.store.StepLease(ctx, id, a.StepName)
		require.NoError(t, err)
		require.Equal(t, after.LeaseExpiresAt, kept.LeaseExpiresAt)

		// Upper-case ids are the same UUIDs.
		upper := ref(a)
		upper.JobID = strings.ToUpper(upper.JobID)
		cancel, err = b.store.LeasesRenew(ctx, strings.ToUpper(b.worker.ID), []stroem.StepRef{upper}, time.Hour)
		require.NoError(t, err)
		require.Empty(t, cancel)
	})

	t.Run("ExpiredLeaseIsVisibleAndExtendedAtStart", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		got := claim(t, b.store, b.worker.ID, 1, time.Millisecond)
		require.Len(t, got, 1)
		c := got[0]
		require.Eventually(t, func() bool {
			l, err := b.store.StepLease(ctx, c.JobID, c.StepName)
			return err == nil && l.LeaseExpiresAt.Before(l.Now)
		}, 10*time.Second, 5*time.Millisecond, "the lease runs out by the store's clock")
		l, err := b.store.StepLease(ctx, c.JobID, c.StepName)
		require.NoError(t, err)
		require.Equal(t, stroem.StepRunning, l.Status, "an expired lease does not end the step by itself")
		require.Equal(t, 1, l.Attempt)

		r := ref(c)
		expired, err := b.store.LeasesExpired(ctx, 10)
		require.NoError(t, err)
		require.Equal(t, []stroem.StepRef{r}, expired)

		// A restarting server extends every running lease.
		n, err := b.store.LeasesExtendAll(ctx, time.Minute)
		require.NoError(t, err)
		require.Equal(t, int64(1), n)
		expired, err = b.store.LeasesExpired(ctx, 10)
		require.NoError(t, err)
		require.Empty(t, expired)
		l, err = b.store.StepLease(ctx, c.JobID, c.StepName)
		require.NoError(t, err)
		require.WithinDuration(t, l.Now.Add(time.Minute), *l.LeaseExpiresAt, 5*time.Second)
		// It never shortens a lease.
		_, err = b.store.LeasesExtendAll(ctx, time.Second)
		require.NoError(t, err)
		l2, err := b.store.StepLease(ctx, c.JobID, c.StepName)
		require.NoError(t, err)
		require.Equal(t, l.LeaseExpiresAt, l2.LeaseExpiresAt)
	})

	t.Run("ExpiredLeaseIsRenewedUntilDeclaredLost", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		got := claim(t, b.store, b.worker.ID, 1, time.Millisecond)
		require.Len(t, got, 1)
		c, r := got[0], ref(got[0])
		require.Eventually(t, func() bool {
			l, err := b.store.StepLease(ctx, c.JobID, c.StepName)
			return err == nil && l.LeaseExpiresAt.Before(l.Now)
		}, 10*time.Second, 5*time.Millisecond)
		cancel, err := b.store.LeasesRenew(ctx, b.worker.ID, []stroem.StepRef{r}, time.Hour)
		require.NoError(t, err)
		require.Empty(t, cancel, "the worker is alive and the attempt was not declared lost: keep it")
		l, err := b.store.StepLease(ctx, c.JobID, c.StepName)
		require.NoError(t, err)
		require.WithinDuration(t, l.Now.Add(time.Hour), *l.LeaseExpiresAt, 5*time.Second)

		_, err = b.store.JobUpdate(ctx, c.JobID, func(st *persistence.JobState) error {
			s := st.Step(c.StepName)
			s.Status, s.AttemptStatus, s.ErrorMessage = stroem.StepFailed, stroem.AttemptLost, "worker lost (lease expired)"
			return nil
		})
		require.NoError(t, err)
		cancel, err = b.store.LeasesRenew(ctx, b.worker.ID, []stroem.StepRef{r}, time.Hour)
		require.NoError(t, err)
		require.Equal(t, []stroem.StepRef{r}, cancel, "declared lost: stop it")
	})

	t.Run("LeasesExpiredLongestFirst", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		first := claim(t, b.store, b.worker.ID, 1, time.Millisecond)[0]
		time.Sleep(2 * time.Millisecond)
		second := claim(t, b.store, b.worker.ID, 1, time.Millisecond)[0]
		claimOne(t, b.store, b.worker.ID) // a live lease
		require.Eventually(t, func() bool {
			refs, err := b.store.LeasesExpired(ctx, 10)
			return err == nil && len(refs) == 2
		}, 10*time.Second, 5*time.Millisecond)
		refs, err := b.store.LeasesExpired(ctx, 10)
		require.NoError(t, err)
		require.Equal(t, []stroem.StepRef{ref(first), ref(second)}, refs)
		refs, err = b.store.LeasesExpired(ctx, 1)
		require.NoError(t, err)
		require.Equal(t, []stroem.StepRef{ref(first)}, refs, "the limit holds")
	})

	t.Run("UnknownWorkerMustRegisterAgain", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		for _, w := range []string{uuid.NewString(), "not-a-uuid", ""} {
			_, err := b.store.LeasesRenew(ctx, w, nil, time.Minute)
			require.ErrorIs(t, err, stroem.ErrNotFound, w)
		}
		cancel, err := b.store.LeasesRenew(ctx, b.worker.ID, nil, time.Minute)
		require.NoError(t, err)
		require.Empty(t, cancel)
		_, err = b.store.LeasesRenew(ctx, b.worker.ID, nil, 0)
		require.ErrorIs(t, err, stroem.ErrInvalid, "a renewal without a lease is a bug")
	})

	t.Run("StepLeaseOfUnknownStep", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		_, err := b.store.StepLease(ctx, b.job.Job.ID, "nope")
		require.ErrorIs(t, err, stroem.ErrNotFound)
		_, err = b.store.StepLease(ctx, "bad", "a")
		require.ErrorIs(t, err, stroem.ErrNotFound)
		_, err = b.store.StepLease(ctx, uuid.NewString(), "a")
		require.ErrorIs(t, err, stroem.ErrNotFound)
		l, err := b.store.StepLease(ctx, b.job.Job.ID, "a")
		require.NoError(t, err)
		require.Equal(t, stroem.StepReady, l.Status)
		require.Equal(t, 0, l.Attempt)
		require.Nil(t, l.LeaseExpiresAt)
		require.WithinDuration(t, time.Now(), l.Now, time.Minute)
	})
}

func testWorkers(t *testing.T, open func(t *testing.T) persistence.Store) {
	s := open(t)
	ctx := context.Background()

	empty, err := s.WorkerList(ctx)
	require.NoError(t, err)
	require.NotNil(t, empty)
	require.Empty(t, empty)

	w1, err := s.WorkerRegister(ctx, stroem.WorkerRegistration{Name: "host-1", Capabilities: []string{"shell"}, Tags: []string{"linux"}})
	require.NoError(t, err)
	_, err = uuid.Parse(w1.ID)
	require.NoError(t, err)
	require.Equal(t, strings.ToLower(w1.ID), w1.ID)
	require.Equal(t, "active", w1.Status)
	require.Equal(t, "host-1", w1.Name)
	require.Equal(t, w1.RegisteredAt, w1.LastHeartbeatAt)
	time.Sleep(2 * time.Millisecond)
	w2, err := s.WorkerRegister(ctx, stroem.WorkerRegistration{Name: "host-1\u0000\xff", Capabilities: []string{"shell", "docker"}})
	require.NoError(t, err)
	require.NotEqual(t, w1.ID, w2.ID, "a new id at every registration")
	require.Equal(t, "host-1\\0\uFFFD", w2.Name)

	list, err := s.WorkerList(ctx)
	require.NoError(t, err)
	require.Len(t, list, 2)
	require.Equal(t, w2.ID, list[0].ID, "most recently seen first")
	require.Equal(t, "host-1\\0\uFFFD", list[0].Name)
	require.Equal(t, []string{"shell", "docker"}, list[0].Capabilities)
	require.Equal(t, []string{}, list[0].Tags)
	require.Equal(t, "active", list[0].Status)
	require.Equal(t, w1.ID, list[1].ID)
	require.Equal(t, []string{"linux"}, list[1].Tags)
	require.Equal(t, w1.RegisteredAt, list[1].RegisteredAt)

	// A heartbeat moves w1 to the front.
	time.Sleep(2 * time.Millisecond)
	_, err = s.LeasesRenew(ctx, w1.ID, nil, testLease)
	require.NoError(t, err)
	list, err = s.WorkerList(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{w1.ID, w2.ID}, []string{list[0].ID, list[1].ID})
	require.True(t, list[0].LastHeartbeatAt.After(list[0].RegisteredAt))
	for _, w := range list {
		require.Equal(t, "active", w.Status, w.ID)
	}
}

func testSanitizing(t *testing.T, open func(t *testing.T) persistence.Store) {
	s := open(t)
	ctx := context.Background()
	nj := newJob(step{name: "a"})
	nj.Job.Input = map[string]any{
		"nul":         "a\u0000b",
		"bad":         "x\xffy",
		"key\u0000":   1,
		"key\xfe":     true,
		"nested":      map[string]any{"list": []any{"q\u0000", map[string]any{"k\u0000": "\xff"}}},
		"strings":     []string{"s\u0000"},
		"clean":       "ok",
		"escaped nul": `\u0000 stays literal`,
		"unicode":     "Strøm ✓ 日本",
	}
	nj.Steps[0].Input = map[string]any{"in": "\u0000"}
	nj.Steps[0].ErrorMessage = "err\u0000\xff"
	nj.SnapshotID, nj.SnapshotBody = "snap-nul", []byte(`{"cmd": "echo \u0000"}`)
	require.NoError(t, s.JobInsert(ctx, nj))

	j := jobGet(t, s, nj.Job.ID)
	require.Equal(t, map[string]any{
		"nul":         `a\0b`,
		"bad":         "x\uFFFDy",
		`key\0`:       float64(1),
		"key\uFFFD":   true,
		"nested":      map[string]any{"list": []any{`q\0`, map[string]any{`k\0`: "\uFFFD"}}},
		"strings":     []any{`s\0`},
		"clean":       "ok",
		"escaped nul": `\u0000 stays literal`,
		"unicode":     "Strøm ✓ 日本",
	}, j.Input)
	require.Equal(t, map[string]any{"in": `\0`}, j.Steps[0].Input)
	require.Equal(t, "err\\0\uFFFD", j.Steps[0].ErrorMessage)
	body, err := s.SnapshotGet(ctx, "snap-nul")
	require.NoError(t, err)
	require.JSONEq(t, `{"cmd": "echo \\0"}`, string(body))

	// Outputs and errors written by an update are sanitized too, and the
	// returned state is the state as written.
	c := claimOne(t, s, "w1")
	st, err := s.JobUpdate(ctx, nj.Job.ID, completeFn(report{
		step: "a", worker: "w1", attempt: c.Attempt, exitCode: 1, err: "boom\u0000\xff",
	}))
	require.NoError(t, err)
	require.Equal(t, "boom\\0\uFFFD", st.Step("a").ErrorMessage)
	_, err = s.JobUpdate(ctx, nj.Job.ID, func(st *persistence.JobState) error {
		st.Step("a").Output = map[string]any{"out\u0000": []any{"\u0000"}}
		st.Job.Output = map[string]any{"a": map[string]any{"x": "\xff\u0000"}}
		return nil
	})
	require.NoError(t, err)
	j = jobGet(t, s, nj.Job.ID)
	require.Equal(t, map[string]any{`out\0`: []any{`\0`}}, j.Steps[0].Output)
	require.Equal(t, map[string]any{"a": map[string]any{"x": "\uFFFD\\0"}}, j.Output)
	require.Equal(t, "boom\\0\uFFFD", j.Steps[0].Attempts[0].ErrorMessage)
}

func testArchives(t *testing.T, open func(t *testing.T) persistence.Store) {
	s := open(t)
	ctx := context.Background()
	_, err := s.WorkspaceArchiveGet(ctx, "rev1")
	require.ErrorIs(t, err, stroem.ErrNotFound)
	tarball := []byte{0x1f, 0x8b, 0x00, 0xff, 0x00}
	require.NoError(t, s.WorkspaceArchivePut(ctx, "rev1", tarball))
	require.NoError(t, s.WorkspaceArchivePut(ctx, "rev1", []byte("other")), "a revision is immutable: no-op")
	got, err := s.WorkspaceArchiveGet(ctx, "rev1")
	require.NoError(t, err)
	require.Equal(t, tarball, got)
	require.ErrorIs(t, s.WorkspaceArchivePut(ctx, "", tarball), stroem.ErrInvalid)
	require.NoError(t, s.WorkspaceArchivePut(ctx, "empty", nil))
	got, err = s.WorkspaceArchiveGet(ctx, "empty")
	require.NoError(t, err)
	require.Empty(t, got)
}

func testListenAndPing(t *testing.T, open func(t *testing.T) persistence.Store) {
	s := open(t)
	require.NoError(t, s.Ping(context.Background()))
	ctx, cancel := context.WithCancel(context.Background())
	payloads := make(chan string, 10)
	done := make(chan error, 1)
	go func() { done <- s.Listen(ctx, persistence.ChannelStepsReady, func(p string) { payloads <- p }) }()
	select {
	case p := <-payloads:
		require.Equal(t, "", p, "after connecting, a re-scan hint")
	case <-time.After(30 * time.Second):
		t.Fatal("Listen did not report it is listening")
	}
	cancel()
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(30 * time.Second):
		t.Fatal("Listen did not return when its context ended")
	}
}
