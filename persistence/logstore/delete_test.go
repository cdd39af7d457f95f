package logstore

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
)

func TestDeleteRemovesAJobsLog(t *testing.T) {
	t.Parallel()
	s, err := Open(t.TempDir(), nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	job, other := uuid.NewString(), uuid.NewString()
	for _, id := range []string{job, other} {
		_, err := s.Append(ctx, id, Append{Step: "a", Attempt: 1, Lines: []stroem.PushLine{{Stream: stroem.Stdout, Text: "hello"}}})
		require.NoError(t, err)
	}

	require.NoError(t, s.Delete(job))
	lines, err := s.Read(job, 0, "")
	require.NoError(t, err)
	require.Empty(t, lines, "the deleted job has no log")
	lines, err = s.Read(other, 0, "")
	require.NoError(t, err)
	require.Len(t, lines, 1, "other jobs keep theirs")

	require.NoError(t, s.Delete(job), "deleting twice is fine")
	require.NoError(t, s.Delete(uuid.NewString()), "a job without a log is fine")
	require.ErrorIs(t, s.Delete("../etc/passwd"), stroem.ErrInvalid, "only job ids name files")
}
