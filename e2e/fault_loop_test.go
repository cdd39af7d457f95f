package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
)

// kill -9 the server in the middle of a 50-item for_each expansion — its
// transaction has written the loop step's items and 49 of the 50 instances
// and waits (a test trigger holds the insert of the last one) — and again
// while the instances run. After each restart the job goes on: the
// expansion is taken again from scratch (the first one left nothing), and
// every instance runs exactly once (each appends one line to a ledger).
func TestFaultServerKilledDuringLoopExpansion(t *testing.T) {
	t.Parallel()
	const items = 50
	ledger := filepath.Join(t.TempDir(), "ledger")
	workflow := fmt.Sprintf(`
actions:
  fetch:
    type: shell
    cmd: 'echo "OUTPUT: {\"items\": [$(seq -s, 0 %d)]}"'
  mark:
    type: shell
    cmd: 'echo "$STROEM_JOB_ID $STROEM_STEP $STROEM_ATTEMPT" >> %s; sleep 0.3'
tasks:
  fan-out:
    flow:
      fetch: { action: fetch }
      process:
        action: mark
        depends_on: [fetch]
        for_each: "{{ fetch.output.items }}"
      after: { action: mark, depends_on: [process] }
`, items-1, ledger)
	s := startFaultStack(t, faultOpts{workflow: workflow})
	ctx := context.Background()
	db := s.pool()

	// The test's trigger stalls the insert of the last instance until the
	// test releases an advisory lock: the expansion's transaction is open,
	// with 49 instances inserted.
	lock, err := db.Acquire(ctx)
	require.NoError(t, err)
	defer lock.Release()
	_, err = lock.Exec(ctx, `SELECT pg_advisory_lock(4242)`)
	require.NoError(t, err)
	_, err = db.Exec(ctx, fmt.Sprintf(`
		CREATE FUNCTION test_stall_expansion() RETURNS trigger AS $$
		BEGIN
			IF NEW.step_name = 'process[%d]' THEN
				PERFORM pg_advisory_lock_shared(4242);
				PERFORM pg_advisory_unlock_shared(4242);
			END IF;
			RETURN NEW;
		END $$ LANGUAGE plpgsql;
		CREATE TRIGGER test_stall BEFORE INSERT ON job_steps FOR EACH ROW EXECUTE FUNCTION test_stall_expansion();`, items-1))
	require.NoError(t, err)

	s.startWorker("w1", 4, 3*time.Second)
	s.startWorker("w2", 4, 3*time.Second)
	id := s.execute("fan-out", nil)

	var stalled int
	require.Eventually(t, func() bool {
		err := db.QueryRow(ctx, `SELECT pid FROM pg_stat_activity
			WHERE wait_event_type = 'Lock' AND wait_event = 'advisory' AND datname = current_database()`).Scan(&stalled)
		return err == nil
	}, waitFor, 20*time.Millisecond, "the expansion never reached its last instance")

	fault := time.Now()
	kill9(s.server)
	// The crashed server's transaction dies with its connection.
	_, err = db.Exec(ctx, `SELECT pg_terminate_backend($1)`, stalled)
	require.NoError(t, err)
	_, err = lock.Exec(ctx, `SELECT pg_advisory_unlock(4242)`)
	require.NoError(t, err)
	_, err = db.Exec(ctx, `DROP TRIGGER test_stall ON job_steps; DROP FUNCTION test_stall_expansion()`)
	require.NoError(t, err)
	var n int
	require.NoError(t, db.QueryRow(ctx, `SELECT count(*) FROM job_steps WHERE job_id = $1 AND step_name LIKE 'process[%'`, id).Scan(&n))
	require.Zero(t, n, "the interrupted expansion left nothing behind")
	var loopInput *string
	require.NoError(t, db.QueryRow(ctx, `SELECT input::text FROM job_steps WHERE job_id = $1 AND step_name = 'process'`, id).Scan(&loopInput))
	require.Nil(t, loopInput, "nor the loop step's items")

	restart := time.Now()
	figure(t, "server down during the expansion (SIGKILL → restart)", restart.Sub(fault))
	s.startServer()

	// Kill it again while the instances run.
	require.Eventually(t, func() bool { return len(ledgerLines(ledger)) >= 10 }, waitFor, 20*time.Millisecond,
		"the instances never ran after the restart")
	kill9(s.server)
	s.startServer()

	j, d := s.requireJob(id, stroem.JobCompleted)
	figure(t, "first restart → 50-instance job completed (with a second kill)", j.CompletedAt.Sub(restart))
	seen := ledgerCounts(t, ledger)
	require.Len(t, seen, items+1, "every instance and the step after the loop ran")
	for i := range items {
		name := stroem.LoopInstanceName("process", i)
		require.Equal(t, 1, seen[id+" "+name], "instance %s ran once", name)
		require.Len(t, d.Attempts[name], 1, "instance %s: one attempt in PostgreSQL", name)
	}
	require.Equal(t, 1, seen[id+" after"])
	var loop stroem.Step
	for _, st := range j.Steps {
		if st.StepName == "process" {
			loop = st
		}
	}
	require.Equal(t, stroem.StepCompleted, loop.Status)
	require.Len(t, loop.Instances, items)
	require.Equal(t, "process[0]", loop.Instances[0])
	require.Equal(t, "process[49]", loop.Instances[items-1])
	require.Len(t, j.Steps, items+3, "fetch, process, 50 instances, after")
}

func ledgerLines(path string) []string {
	b, _ := readFileIfExists(path)
	s := strings.TrimSpace(string(b))
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func readFileIfExists(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	return b, err
}
