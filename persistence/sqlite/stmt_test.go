package sqlite

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem/persistence"
	"github.com/stroem/stroem/persistence/storetest"
)

// A statement a transaction ran is prepared once the transaction is over,
// and the next transaction runs it prepared, with the same results; a
// statement that cannot be prepared runs unprepared, and closing the store
// closes the prepared ones.
func TestTransactionsRunTheirStatementsPrepared(t *testing.T) {
	t.Parallel()
	s := openTemp(t)
	ctx := context.Background()
	nj := storetest.InsertJob(t, s, storetest.Step{Name: "a"}, storetest.Step{Name: "b"})
	prepared := func(c *stmtCache, q string) bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.ready[q] != nil
	}
	require.False(t, prepared(s.writeStmts, claimSQL))
	first := storetest.ClaimOne(t, s, "w1")
	require.True(t, prepared(s.writeStmts, claimSQL), "prepared after its first run")
	second := storetest.ClaimOne(t, s, "w1")
	require.NotEqual(t, first.StepName, second.StepName, "the prepared claim moves on")

	st, err := s.JobState(ctx, nj.Job.ID)
	require.NoError(t, err)
	require.True(t, prepared(s.readStmts, readStepsSQL), "reads too")
	again, err := s.JobState(ctx, nj.Job.ID)
	require.NoError(t, err)
	require.Equal(t, st.Len(), again.Len())

	// A text that fails is remembered as such and keeps failing plainly.
	for range 2 {
		err := s.writeTx(ctx, func(tx *txn, _ time.Time) error {
			_, err := tx.ExecContext(ctx, `UPDATE no_such_table SET x = 1`)
			return err
		})
		require.ErrorContains(t, err, "no such table")
	}
	s.writeStmts.mu.Lock()
	st2, tried := s.writeStmts.ready[`UPDATE no_such_table SET x = 1`]
	s.writeStmts.mu.Unlock()
	require.True(t, tried)
	require.Nil(t, st2)

	_, err = s.JobUpdate(ctx, nj.Job.ID, func(*persistence.JobState) error { return nil })
	require.NoError(t, err)
	s.Close()
	require.Nil(t, s.writeStmts.get(claimSQL), "closed")
	require.Empty(t, s.writeStmts.wanted)
}
