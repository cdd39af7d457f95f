package e2e

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
)

// gatesFaultWorkflow: a gate, then a sub-job, then a step; the child's step
// waits for a marker file the test writes, so the server can be killed
// while the parent waits for a running child.
func gatesFaultWorkflow(marks string) string {
	return `
actions:
  say:
    type: script
    script: echo "say {{ input.text }}"
    input:
      text: { type: string }
  hold:
    type: script
    script: |
      echo "child holding"
      while [ ! -f ` + filepath.Join(marks, "go") + ` ]; do sleep 0.1; done
      echo 'OUTPUT: {"held": true}'
  gate:
    type: approval
    message: "ship it?"
    timeout: 10m
  run-held:
    type: task
    task: held
tasks:
  held:
    flow:
      hold: { action: hold }
  gated:
    flow:
      pre: { action: say, input: { text: pre } }
      gate: { action: gate, depends_on: [pre] }
      sub: { action: run-held, depends_on: [gate] }
      post: { action: say, depends_on: [sub], input: { text: "{{ sub.output.hold.held }}" } }
`
}

// SIGKILL the server while a job waits at an approval gate, and again while
// it waits for its running child job: after each restart the wait goes on
// from PostgreSQL — the approval completes the job, the child is created
// exactly once, every worker step runs once.
func TestFaultServerKilledDuringApprovalAndSubJob(t *testing.T) {
	t.Parallel()
	marks := t.TempDir()
	s := startFaultStack(t, faultOpts{workflow: gatesFaultWorkflow(marks)})
	s.startWorker("w1", 2, 3*time.Second)
	id := s.execute("gated", nil)
	s.waitStep(id, "gate", stroem.StepSuspended)
	require.Eventually(t, func() bool {
		out, _ := s.job(id).Steps[1].Output.(map[string]any)
		return out["message"] == "ship it?"
	}, waitFor, 20*time.Millisecond)

	kill9(s.server)
	s.startServer()
	j := s.job(id)
	require.Equal(t, stroem.StepSuspended, stepOf(t, j, "gate").Status, "the wait survived the crash")
	require.Equal(t, stroem.JobRunning, j.Status)

	code, body := s.do("POST", "/api/jobs/"+id+"/steps/gate/approve", map[string]any{"approved": true, "message": "after the crash"})
	require.Equal(t, http.StatusOK, code, string(body))

	// The child runs and holds; kill the server while the parent waits.
	var childID string
	require.Eventually(t, func() bool {
		st := stepOf(t, s.job(id), "sub")
		childID = st.ChildJobID
		return childID != "" && stepStatuses(s.job(childID))["hold"] == stroem.StepRunning
	}, waitFor, 20*time.Millisecond, "the child job never ran")
	s.waitLog(childID, "child holding")
	kill9(s.server)
	s.startServer()
	require.NoError(t, os.WriteFile(filepath.Join(marks, "go"), nil, 0o644))

	j = s.waitJobWithin(id, waitFor)
	require.Equal(t, stroem.JobCompleted, j.Status, describeJob(j))
	require.Equal(t, "after the crash", outMap(stepOf(t, j, "gate").Output)["comment"])
	require.Equal(t, map[string]any{"hold": map[string]any{"held": true}}, stepOf(t, j, "sub").Output)
	require.Contains(t, s.logs(id), "say true")
	for _, name := range []string{"pre", "post"} {
		require.Equal(t, 1, stepOf(t, j, name).Attempt, "step %s ran once", name)
	}
	child := s.waitJobWithin(childID, waitFor)
	require.Equal(t, stroem.JobCompleted, child.Status)
	require.Equal(t, 1, stepOf(t, child, "hold").Attempt, "the child's step ran once")

	var children int
	require.NoError(t, s.pool().QueryRow(context.Background(),
		`SELECT count(*) FROM jobs WHERE source_type = 'task' AND starts_with(source_id, $1)`, id+"/").Scan(&children))
	require.Equal(t, 1, children, "the child job was created exactly once")
}
