package storetest

import (
	"context"
	"crypto/sha256"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
)

// testWorkerCredentials: a worker's credential hash finds its id again; an
// unknown one is CodeNotFound; a worker holds a revision only while it runs
// a step of a job at that revision.
func testWorkerCredentials(t *testing.T, open func(t *testing.T) persistence.Store) {
	s := open(t)
	ctx := context.Background()
	w1 := registerWorker(t, s, "w1")
	w2 := registerWorker(t, s, "w2")
	h1, h2 := sha256.Sum256([]byte("cred-1")), sha256.Sum256([]byte("cred-2"))
	require.NoError(t, s.WorkerCredentialSet(ctx, w1.ID, h1[:]))
	require.NoError(t, s.WorkerCredentialSet(ctx, w2.ID, h2[:]))

	id, err := s.WorkerByCredential(ctx, h1[:])
	require.NoError(t, err)
	require.Equal(t, w1.ID, id)
	id, err = s.WorkerByCredential(ctx, h2[:])
	require.NoError(t, err)
	require.Equal(t, w2.ID, id)
	unknown := sha256.Sum256([]byte("nobody"))
	_, err = s.WorkerByCredential(ctx, unknown[:])
	require.Equal(t, stroem.CodeNotFound, stroem.ErrorCode(err), "%v", err)

	// Replacing a credential forgets the old one.
	h3 := sha256.Sum256([]byte("cred-3"))
	require.NoError(t, s.WorkerCredentialSet(ctx, w1.ID, h3[:]))
	_, err = s.WorkerByCredential(ctx, h1[:])
	require.Equal(t, stroem.CodeNotFound, stroem.ErrorCode(err))
	err = s.WorkerCredentialSet(ctx, uuid.NewString(), h1[:])
	require.Equal(t, stroem.CodeNotFound, stroem.ErrorCode(err), "%v", err)
	require.Equal(t, stroem.CodeInvalid, stroem.ErrorCode(s.WorkerCredentialSet(ctx, w1.ID, nil)))

	// Revisions: only while running a step of a job at it.
	nj := InsertJob(t, s, Step{Name: "a"})
	held, err := s.WorkerHoldsRevision(ctx, w1.ID, nj.Job.Revision)
	require.NoError(t, err)
	require.False(t, held, "no step claimed yet")
	ClaimOne(t, s, w1.ID)
	held, err = s.WorkerHoldsRevision(ctx, w1.ID, nj.Job.Revision)
	require.NoError(t, err)
	require.True(t, held)
	held, err = s.WorkerHoldsRevision(ctx, w2.ID, nj.Job.Revision)
	require.NoError(t, err)
	require.False(t, held, "another worker's step")
	held, err = s.WorkerHoldsRevision(ctx, w1.ID, "other-rev")
	require.NoError(t, err)
	require.False(t, held)
}
