package storetest

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
)

func testJobInsert(t *testing.T, open func(t *testing.T) persistence.Store) {
	t.Run("JobWithStepsInOrder", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := context.Background()
		before := time.Now()
		nj := InsertJob(t, s, Step{Name: "a"}, Step{Name: "b", Deps: []string{"a"}, MaxAttempts: 3}, Step{Name: "c", ActionType: "docker"})

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
		require.NotNil(t, st.Find("a").ReadyAt, "ready steps are claimable at once")
		require.Nil(t, st.Find("b").ReadyAt)
		require.Nil(t, st.Find("a").CompletedAt)
		for i, step := range st.All() {
			require.Equal(t, i, step.Position)
		}
		require.False(t, st.Now.IsZero())
		require.False(t, st.Find("a").ReadyAt.After(st.Now), "ready no later than now")

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
		nj := NewJob(Step{Name: "a"})
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
		nj := NewJob(Step{Name: "a"}, Step{Name: "b", Deps: []string{"a"}})
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
		bad := NewJob(Step{Name: "a"})
		bad.Job.ID = "not-a-uuid"
		require.ErrorIs(t, s.JobInsert(ctx, bad), stroem.ErrInvalid)
		running := NewJob(Step{Name: "a"})
		running.Steps[0].Status = stroem.StepRunning
		require.ErrorIs(t, s.JobInsert(ctx, running), stroem.ErrInvalid, "a step cannot be inserted running")
		unknown := NewJob(Step{Name: "a"})
		unknown.Job.Status = "sleeping"
		require.ErrorIs(t, s.JobInsert(ctx, unknown), stroem.ErrInvalid)
		jobs, err := s.JobList(ctx, persistence.JobFilter{})
		require.NoError(t, err)
		require.Empty(t, jobs)
	})

	t.Run("DuplicateIDIsConflict", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		nj := InsertJob(t, s, Step{Name: "a"})
		again := NewJob(Step{Name: "other"})
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
		nj := NewJob(Step{Name: "a"}, Step{Name: "a"})
		nj.SnapshotID, nj.SnapshotBody = "snap-atomic", []byte(`{"task": "atomic"}`)
		require.ErrorIs(t, s.JobInsert(ctx, nj), stroem.ErrConflict)

		_, err := s.JobGet(ctx, nj.Job.ID)
		require.ErrorIs(t, err, stroem.ErrNotFound, "no job")
		_, err = s.SnapshotGet(ctx, "snap-atomic")
		require.ErrorIs(t, err, stroem.ErrNotFound, "no snapshot")
		jobs, err := s.JobList(ctx, persistence.JobFilter{})
		require.NoError(t, err)
		require.Empty(t, jobs)
		got, err := s.StepsClaim(ctx, persistence.ClaimParams{WorkerID: "w1", Capabilities: []string{"shell"}, Limit: 10, Lease: Lease})
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
	InsertJob(t, s, Step{Name: "a"})
	second := NewJob(Step{Name: "a"})
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
	nj := InsertJob(t, s, Step{Name: "a"})
	for _, id := range []string{"not-a-uuid", "", uuid.NewString(), "'; DROP TABLE jobs; --"} {
		_, err := s.JobGet(ctx, id)
		require.ErrorIs(t, err, stroem.ErrNotFound, "id %q", id)
		_, err = s.JobStatus(ctx, id)
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

	// JobStatus follows the job's status, and JobGet agrees; the upper
	// case of a UUID names the same job.
	status := func() stroem.JobStatus {
		t.Helper()
		st, err := s.JobStatus(ctx, strings.ToUpper(nj.Job.ID))
		require.NoError(t, err)
		j, err := s.JobGet(ctx, nj.Job.ID)
		require.NoError(t, err)
		require.Equal(t, j.Status, st, "JobStatus and JobGet")
		return st
	}
	require.Equal(t, stroem.JobPending, status())
	c := ClaimOne(t, s, "w1")
	require.Equal(t, stroem.JobRunning, status())
	_, err = s.JobUpdate(ctx, c.JobID, Complete(Report{Step: "a", Worker: "w1", Attempt: c.Attempt}))
	require.NoError(t, err)
	require.Equal(t, stroem.JobCompleted, status())
}

func testJobList(t *testing.T, open func(t *testing.T) persistence.Store) {
	s := open(t)
	ctx := context.Background()

	var ids []string
	for i := range 7 {
		nj := NewJob(Step{Name: "a"})
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

	c := ClaimOne(t, s, "w1")
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

	// JobCount counts what JobList pages through, ignoring limit and offset.
	for _, c := range []struct {
		f    persistence.JobFilter
		want int
	}{
		{persistence.JobFilter{}, 7},
		{persistence.JobFilter{Limit: 2, Offset: 5}, 7},
		{persistence.JobFilter{Status: stroem.JobPending, Workspace: "default"}, 5},
		{persistence.JobFilter{Task: "other"}, 3},
		{persistence.JobFilter{Workspace: "nope"}, 0},
	} {
		n, err := s.JobCount(ctx, c.f)
		require.NoError(t, err)
		require.Equal(t, c.want, n, "%+v", c.f)
	}

	// A created_at range: after is inclusive, before exclusive.
	third, err := s.JobGet(ctx, ids[2])
	require.NoError(t, err)
	fifth, err := s.JobGet(ctx, ids[4])
	require.NoError(t, err)
	ranged, err := s.JobList(ctx, persistence.JobFilter{CreatedAfter: third.CreatedAt, CreatedBefore: fifth.CreatedAt})
	require.NoError(t, err)
	require.Equal(t, []string{ids[3], ids[2]}, jobIDs(ranged))
	n, err := s.JobCount(ctx, persistence.JobFilter{CreatedAfter: fifth.CreatedAt})
	require.NoError(t, err)
	require.Equal(t, 3, n)

	unfinished, err := s.JobsUnfinished(ctx)
	require.NoError(t, err)
	require.Equal(t, ids, unfinished, "oldest first")
	update(t, s, ids[2], func(st *persistence.JobState) {
		st.MutAt(0).Status, st.Job.Status = stroem.StepCancelled, stroem.JobCancelled
	})
	unfinished, err = s.JobsUnfinished(ctx)
	require.NoError(t, err)
	require.Equal(t, slices.Delete(slices.Clone(ids), 2, 3), unfinished, "a finished job is not resumed")

	// The default page is 50; a limit above 1000 is capped.
	for range 50 {
		InsertJob(t, s, Step{Name: "a"})
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
