package actors

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/blob"
	"github.com/stroem/stroem/persistence/sqlite/sqlitetest"
	"github.com/stroem/stroem/persistence/storetest"
)

// zeros is a reader of n zero bytes.
func zeros(n int64) io.Reader { return io.LimitReader(zeroReader{}, n) }

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// bomb is a small gzip tarball whose one file unpacks to n bytes.
func bomb(t *testing.T, n int64) []byte {
	var buf bytes.Buffer
	tw := blob.NewWriter(&buf)
	require.NoError(t, tw.Add("zeros.bin", n, zeros(n)))
	require.NoError(t, tw.Close())
	return buf.Bytes()
}

// A snapshot's bound is on its tarball, which compresses: what it unpacks
// to (on every worker that runs the task) is bounded too, so a small
// upload cannot fill the workers' disks.
func TestStateUnpackedSizeIsBounded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := sqlitetest.Store(t)
	const limit = 64 << 10
	f := NewFiles(st, FileLimits{MaxStateBytes: limit})
	big := bomb(t, StateUnpackFactor*limit+1)
	require.Less(t, len(big), limit, "the tarball itself is within the limit")
	ok := bomb(t, StateUnpackFactor*limit-4096)

	_, err := f.StateUpload(ctx, StateUpload{Workspace: "ws", Task: "t", By: "ada"}, bytes.NewReader(big))
	require.Equal(t, stroem.CodeTooLarge, stroem.ErrorCode(err), "%v", err)
	_, err = f.StateUpload(ctx, StateUpload{Workspace: "ws", Task: "t", By: "ada"}, bytes.NewReader(ok))
	require.NoError(t, err)

	nj := storetest.InsertJob(t, st, storetest.Step{Name: "a"})
	w1 := "6f2b3c1e-0000-4000-8000-000000000001"
	ca := storetest.ClaimStarted(t, st, w1)
	mine := StepWrite{JobID: nj.Job.ID, Step: ca.StepName, Attempt: ca.Attempt, WorkerID: w1}
	_, err = f.StatePut(WithCaller(ctx, w1), mine, ScopeTask, bytes.NewReader(big))
	require.Equal(t, stroem.CodeTooLarge, stroem.ErrorCode(err), "%v", err)
	_, err = f.StatePut(WithCaller(ctx, w1), mine, ScopeTask, bytes.NewReader(ok))
	require.NoError(t, err)
}
