package storetest

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
)

// Blobs, artifacts and state snapshots (issue 22).
func testStateArtifacts(t *testing.T, open func(t *testing.T) persistence.Store) {
	ctx := context.Background()
	putBlob := func(t *testing.T, s persistence.Store, chunks ...[]byte) string {
		t.Helper()
		id := uuid.NewString()
		for n, c := range chunks {
			require.NoError(t, s.BlobChunkPut(ctx, id, n, c))
		}
		return id
	}
	artifacts := func(t *testing.T, s persistence.Store, jobID string) []persistence.Artifact {
		t.Helper()
		list, err := s.ArtifactList(ctx, jobID)
		require.NoError(t, err)
		return list
	}
	// running inserts a job of one step, a, which w1 claims and
	// acknowledges: the fence of that attempt.
	running := func(t *testing.T, s persistence.Store) persistence.AttemptFence {
		t.Helper()
		nj := InsertJob(t, s, Step{Name: "a"})
		c := ClaimStarted(t, s, "w1")
		return persistence.AttemptFence{JobID: nj.Job.ID, Step: "a", Attempt: c.Attempt, WorkerID: "w1"}
	}
	// end reports that the attempt of f ended with exitCode.
	end := func(t *testing.T, s persistence.Store, f persistence.AttemptFence, exitCode int) {
		t.Helper()
		report(t, s, f.JobID, Report{Step: f.Step, Worker: f.WorkerID, Attempt: f.Attempt, ExitCode: exitCode})
	}

	t.Run("BlobChunks", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		big := bytes.Repeat([]byte{0, 1, 2, 255}, persistence.BlobChunkSize/4)
		id := putBlob(t, s, big, []byte("tail"), []byte{})
		got, err := s.BlobChunkGet(ctx, id, 0)
		require.NoError(t, err)
		require.Equal(t, big, got, "binary bytes kept exactly")
		got, err = s.BlobChunkGet(ctx, id, 2)
		require.NoError(t, err)
		require.Empty(t, got)
		require.NoError(t, s.BlobChunkPut(ctx, id, 1, []byte("again")), "a repeated put replaces")
		got, err = s.BlobChunkGet(ctx, id, 1)
		require.NoError(t, err)
		require.Equal(t, "again", string(got))

		_, err = s.BlobChunkGet(ctx, id, 3)
		require.ErrorIs(t, err, stroem.ErrNotFound)
		_, err = s.BlobChunkGet(ctx, "not-a-uuid", 0)
		require.ErrorIs(t, err, stroem.ErrNotFound)
		require.Equal(t, stroem.CodeInvalid, stroem.ErrorCode(s.BlobChunkPut(ctx, "not-a-uuid", 0, []byte("x"))))
	})

	// As log lines (PushBeforeTheStartIsRefused): nothing is stored for an
	// attempt its worker has not acknowledged; it may be given back and
	// its number used by the next worker's run.
	t.Run("NothingIsStoredBeforeTheStart", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		nj, c := ClaimedJob(t, s, "w1")
		f := persistence.AttemptFence{JobID: nj.Job.ID, Step: "a", Attempt: c.Attempt, WorkerID: "w1"}
		err := s.ArtifactCommit(ctx, persistence.Artifact{Name: "report.txt", ContentType: "text/plain", SizeBytes: 1, SHA256: "abc", BlobID: putBlob(t, s, []byte("x"))}, f, 100)
		require.ErrorIs(t, err, stroem.ErrConflict)
		require.ErrorContains(t, err, "not acknowledged")
		err = s.StateSnapshotPut(ctx, persistence.StateSnapshot{ID: uuid.NewString(), Workspace: nj.Job.Workspace, Task: nj.Job.TaskName,
			Source: persistence.StateSourceStep, JobID: f.JobID, StepName: f.Step, BlobID: putBlob(t, s, []byte("tgz")), SizeBytes: 3, SHA256: "abc"}, &f, 0)
		require.ErrorIs(t, err, stroem.ErrConflict)
		_, err = s.StateSnapshotLatest(ctx, nj.Job.Workspace, nj.Job.TaskName)
		require.ErrorIs(t, err, stroem.ErrNotFound, "no snapshot was stored")

		_, err = s.StepStart(ctx, f.JobID, f.Step, f.Attempt, "w1")
		require.NoError(t, err)
		require.NoError(t, s.ArtifactCommit(ctx, persistence.Artifact{Name: "report.txt", ContentType: "text/plain", SizeBytes: 1, SHA256: "abc", BlobID: putBlob(t, s, []byte("x"))}, f, 100))
	})

	t.Run("ArtifactsFencedAndVisibleOnceCompleted", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		f := running(t, s)
		art := func(name string, size int64) persistence.Artifact {
			return persistence.Artifact{Name: name, ContentType: "text/plain", SizeBytes: size, SHA256: "abc", BlobID: putBlob(t, s, []byte("x"))}
		}
		require.NoError(t, s.ArtifactCommit(ctx, art("report.txt", 10), f, 100))
		require.NoError(t, s.ArtifactCommit(ctx, art("sub/b.bin", 20), f, 100))

		// Another worker, or an old attempt, cannot write for the step.
		stale := f
		stale.WorkerID = "w2"
		require.ErrorIs(t, s.ArtifactCommit(ctx, art("x", 1), stale, 0), stroem.ErrConflict)
		stale = f
		stale.Attempt++
		require.ErrorIs(t, s.ArtifactCommit(ctx, art("x", 1), stale, 0), stroem.ErrConflict)
		// Names that leave the directory are refused by the store too.
		for _, bad := range []string{"", "../x", "/abs", "a/../b", "a\x00b", "a//b"} {
			require.Equal(t, stroem.CodeInvalid, stroem.ErrorCode(s.ArtifactCommit(ctx, art(bad, 1), f, 0)), "%q", bad)
		}
		// The job's artifacts together are bounded; a replacement counts
		// only once.
		err := s.ArtifactCommit(ctx, art("c", 71), f, 100)
		require.Equal(t, stroem.CodeTooLarge, stroem.ErrorCode(err), "%v", err)
		require.NoError(t, s.ArtifactCommit(ctx, art("sub/b.bin", 90), f, 100))

		list := artifacts(t, s, f.JobID)
		require.Empty(t, list, "nothing is listed while the step runs")
		_, err = s.ArtifactGet(ctx, f.JobID, "report.txt")
		require.ErrorIs(t, err, stroem.ErrNotFound)

		end(t, s, f, 0)
		list = artifacts(t, s, f.JobID)
		require.Len(t, list, 2)
		require.Equal(t, "report.txt", list[0].Name)
		require.Equal(t, "sub/b.bin", list[1].Name)
		require.Equal(t, int64(90), list[1].SizeBytes, "last writer wins")
		require.Equal(t, "a", list[1].StepName)
		require.Equal(t, f.Attempt, list[1].Attempt)
		require.WithinDuration(t, time.Now(), list[1].CreatedAt, time.Minute)
		got, err := s.ArtifactGet(ctx, f.JobID, "sub/b.bin")
		require.NoError(t, err)
		require.Equal(t, list[1], got)
		require.Equal(t, f.JobID, got.JobID)

		// Written after the attempt ended: refused.
		require.ErrorIs(t, s.ArtifactCommit(ctx, art("late", 1), f, 0), stroem.ErrConflict)
		list = artifacts(t, s, "not-a-uuid")
		require.Empty(t, list)
	})

	t.Run("ArtifactsOfAFailedAttemptAreNotListed", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		f := running(t, s)
		require.NoError(t, s.ArtifactCommit(ctx, persistence.Artifact{Name: "half", ContentType: "text/plain", SizeBytes: 1, SHA256: "x", BlobID: uuid.NewString()}, f, 0))
		end(t, s, f, 1)
		list := artifacts(t, s, f.JobID)
		require.Empty(t, list)
	})

	t.Run("BlobsPruneOnlyUnnamed", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		f := running(t, s)
		named := putBlob(t, s, []byte("kept"), []byte("kept too"))
		require.NoError(t, s.ArtifactCommit(ctx, persistence.Artifact{Name: "k", ContentType: "text/plain", SizeBytes: 12, SHA256: "x", BlobID: named}, f, 0))
		snapBlob := putBlob(t, s, []byte("tar"))
		require.NoError(t, s.StateSnapshotPut(ctx, persistence.StateSnapshot{ID: uuid.NewString(), Workspace: "w", Task: "t",
			Source: persistence.StateSourceUpload, BlobID: snapBlob, SizeBytes: 3, SHA256: "x"}, nil, 0))
		orphan := putBlob(t, s, []byte("half an upload"), []byte("more"))

		n, err := s.BlobsPrune(ctx, time.Now().Add(-time.Hour), 10, false)
		require.NoError(t, err)
		require.Zero(t, n, "nothing was written before the cutoff")
		n, err = s.BlobsPrune(ctx, time.Now().Add(time.Hour), 10, true)
		require.NoError(t, err)
		require.Equal(t, int64(1), n)
		_, err = s.BlobChunkGet(ctx, orphan, 1)
		require.NoError(t, err, "a dry run deletes nothing")
		n, err = s.BlobsPrune(ctx, time.Now().Add(time.Hour), 10, false)
		require.NoError(t, err)
		require.Equal(t, int64(1), n)
		for i := range 2 {
			_, err = s.BlobChunkGet(ctx, orphan, i)
			require.ErrorIs(t, err, stroem.ErrNotFound, "every chunk of the orphan goes")
			_, err = s.BlobChunkGet(ctx, named, i)
			require.NoError(t, err)
		}
		_, err = s.BlobChunkGet(ctx, snapBlob, 0)
		require.NoError(t, err)
	})

	t.Run("StateSnapshots", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		put := func(task string, st map[string]any, f *persistence.AttemptFence, keep int) (persistence.StateSnapshot, error) {
			sn := persistence.StateSnapshot{ID: uuid.NewString(), Workspace: "ws", Task: task, Source: persistence.StateSourceUpload,
				UploadedBy: "ada@example.com", State: st, BlobID: putBlob(t, s, []byte("tgz")), SizeBytes: 3, SHA256: "abc"}
			if f != nil {
				sn.Source, sn.JobID, sn.StepName = persistence.StateSourceStep, f.JobID, f.Step
			}
			return sn, s.StateSnapshotPut(ctx, sn, f, keep)
		}
		_, err := s.StateSnapshotLatest(ctx, "ws", "t")
		require.ErrorIs(t, err, stroem.ErrNotFound)
		scopes := func(task string) [2]bool {
			hasTask, hasGlobal, err := s.StateScopes(ctx, "ws", task)
			require.NoError(t, err)
			return [2]bool{hasTask, hasGlobal}
		}
		require.Equal(t, [2]bool{false, false}, scopes("t"), "no snapshot yet")

		var ids []string
		for i := range 4 {
			sn, err := put("t", map[string]any{"n": float64(i), "nested": map[string]any{"ok": true}}, nil, 3)
			require.NoError(t, err)
			ids = append(ids, sn.ID)
		}
		require.Equal(t, [2]bool{true, false}, scopes("t"))
		require.Equal(t, [2]bool{false, false}, scopes("other"), "another task's state is not this task's")
		g, err := put("", map[string]any{"token": "g"}, nil, 0)
		require.NoError(t, err)
		require.Equal(t, [2]bool{true, true}, scopes("t"))
		require.Equal(t, [2]bool{false, true}, scopes("other"), "the global state is every task's")

		latest, err := s.StateSnapshotLatest(ctx, "ws", "t")
		require.NoError(t, err)
		require.Equal(t, ids[3], latest.ID)
		require.Equal(t, map[string]any{"n": float64(3), "nested": map[string]any{"ok": true}}, latest.State)
		require.Equal(t, "ada@example.com", latest.UploadedBy)
		require.Equal(t, persistence.StateSourceUpload, latest.Source)
		require.Equal(t, int64(3), latest.SizeBytes)

		list, err := s.StateSnapshotList(ctx, "ws", "t", 0)
		require.NoError(t, err)
		require.Len(t, list, 3, "keep bounds the history")
		require.Equal(t, []string{ids[3], ids[2], ids[1]}, []string{list[0].ID, list[1].ID, list[2].ID}, "newest first")
		_, err = s.StateSnapshotGet(ctx, "ws", "t", ids[0])
		require.ErrorIs(t, err, stroem.ErrNotFound, "the oldest was pruned")
		got, err := s.StateSnapshotGet(ctx, "ws", "t", ids[1])
		require.NoError(t, err)
		require.Equal(t, list[2], got)
		_, err = s.StateSnapshotGet(ctx, "ws", "other", ids[1])
		require.ErrorIs(t, err, stroem.ErrNotFound, "a snapshot is found only under its own task")
		_, err = s.StateSnapshotGet(ctx, "ws", "t", "nope")
		require.ErrorIs(t, err, stroem.ErrNotFound)

		gl, err := s.StateSnapshotLatest(ctx, "ws", "")
		require.NoError(t, err)
		require.Equal(t, g.ID, gl.ID, "global state is kept apart from task state")

		// Written by a step: fenced like a log push; outlives its job.
		f := running(t, s)
		bad := f
		bad.WorkerID = "w2"
		_, err = put("t", nil, &bad, 3)
		require.ErrorIs(t, err, stroem.ErrConflict)
		sn, err := put("t", nil, &f, 3)
		require.NoError(t, err)
		latest, err = s.StateSnapshotLatest(ctx, "ws", "t")
		require.NoError(t, err)
		require.Equal(t, sn.ID, latest.ID)
		require.Equal(t, f.JobID, latest.JobID)
		require.Equal(t, "a", latest.StepName)
		require.Equal(t, map[string]any{}, latest.State)

		end(t, s, f, 0)
		res, err := s.JobsPrune(ctx, persistence.PruneParams{Before: time.Now().Add(time.Hour)})
		require.NoError(t, err)
		require.Equal(t, int64(1), res.Jobs)
		latest, err = s.StateSnapshotLatest(ctx, "ws", "t")
		require.NoError(t, err)
		require.Equal(t, sn.ID, latest.ID, "a snapshot survives its job")
		require.Empty(t, latest.JobID)

		bogus := persistence.StateSnapshot{ID: uuid.NewString(), Workspace: "ws", Task: "t", Source: "nope", BlobID: uuid.NewString()}
		require.Equal(t, stroem.CodeInvalid, stroem.ErrorCode(s.StateSnapshotPut(ctx, bogus, nil, 0)))
	})

	// A transition and a claim read which state scopes of the job's task
	// have a snapshot with the job, for the assignments they hand out.
	t.Run("StateScopesReadWithTheJob", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		nj := InsertJob(t, s, Step{Name: "a"}, Step{Name: "b"})
		inUpdate := func() stroem.AssignmentState {
			t.Helper()
			var got *stroem.AssignmentState
			st, err := s.JobUpdate(ctx, nj.Job.ID, func(st *persistence.JobState) error {
				got = st.StateScopes
				return nil
			})
			require.NoError(t, err)
			require.NotNil(t, got, "read with the job")
			require.Equal(t, got, st.StateScopes, "returned as read")
			return *got
		}
		put := func(task string) {
			t.Helper()
			require.NoError(t, s.StateSnapshotPut(ctx, persistence.StateSnapshot{ID: uuid.NewString(),
				Workspace: nj.Job.Workspace, Task: task, Source: persistence.StateSourceUpload,
				BlobID: putBlob(t, s, []byte("tgz")), SizeBytes: 3, SHA256: "abc"}, nil, 0))
		}
		require.Equal(t, stroem.AssignmentState{}, inUpdate())
		put("another-task")
		require.Equal(t, stroem.AssignmentState{}, inUpdate(), "another task's state is not this job's")
		put(nj.Job.TaskName)
		require.Equal(t, stroem.AssignmentState{Task: true}, inUpdate())
		c := ClaimOne(t, s, "w1")
		require.Equal(t, &stroem.AssignmentState{Task: true}, c.StateScopes)
		put("")
		require.Equal(t, stroem.AssignmentState{Task: true, Global: true}, inUpdate())
		c = ClaimOne(t, s, "w1")
		require.Equal(t, &stroem.AssignmentState{Task: true, Global: true}, c.StateScopes)
	})

	t.Run("ArtifactsGoWithTheirJob", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		f := running(t, s)
		b := putBlob(t, s, []byte("x"))
		require.NoError(t, s.ArtifactCommit(ctx, persistence.Artifact{Name: "a.txt", ContentType: "text/plain", SizeBytes: 1, SHA256: "x", BlobID: b}, f, 0))
		end(t, s, f, 0)
		_, err := s.JobsPrune(ctx, persistence.PruneParams{Before: time.Now().Add(time.Hour)})
		require.NoError(t, err)
		list := artifacts(t, s, f.JobID)
		require.Empty(t, list)
		n, err := s.BlobsPrune(ctx, time.Now().Add(time.Hour), 10, false)
		require.NoError(t, err)
		require.Equal(t, int64(1), n, "the deleted job's blob is an orphan now")
	})
}
