package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
)

// gatesWorkflow exercises approval gates, `type: task` sub-jobs and hooks
// (issue 19 part B; docs/workflows.md).
const gatesWorkflow = `
actions:
  say:
    type: script
    script: echo "say {{ input.text }}"
    input:
      text: { type: string, default: "" }
  emit:
    type: script
    script: |
      echo "child env={{ input.env }}"
      echo 'OUTPUT: {"cleaned": "{{ input.env }}"}'
    input:
      env: { type: string }
  sleepy:
    type: script
    script: sleep 120
  gate:
    type: approval
    message: "Deploy {{ input.version }} to {{ input.env }}?"
  short-gate:
    type: approval
    message: "quick?"
    timeout: 2s
  run-cleanup:
    type: task
    task: cleanup
  run-slow:
    type: task
    task: slow
  run-ping:
    type: task
    task: ping
  run-pong:
    type: task
    task: pong
  record:
    type: script
    script: |
      echo "HOOK event={{ input.event }} task={{ input.task }} status={{ input.status }} ok={{ input.ok }} err={{ input.err }}"
    input:
      event: { type: string }
      task: { type: string }
      status: { type: string }
      ok: { type: string }
      err: { type: string, default: "" }
  broken-hook:
    type: script
    script: "echo hook breaks; exit 7"

on_success:
  - action: record
    input: { event: ws-success, task: "{{ hook.task_name }}", status: "{{ hook.status }}", ok: "{{ hook.is_success }}" }

tasks:
  cleanup:
    input:
      env: { type: string }
    flow:
      clean: { action: emit, input: { env: "{{ input.env }}" } }
  deploy:
    input:
      env: { type: string, default: staging }
    flow:
      build: { action: say, input: { text: build } }
      approve: { action: gate, depends_on: [build], input: { version: "1.2", env: "{{ input.env }}" } }
      cleanup: { action: run-cleanup, depends_on: [approve], input: { env: "{{ input.env }}" } }
      after: { action: say, depends_on: [cleanup], input: { text: "{{ cleanup.output.clean.cleaned }}" } }
    on_suspended:
      - action: record
        input: { event: suspended, task: "{{ hook.task_name }}", status: "{{ hook.status }}", ok: "{{ hook.is_success }}" }
    on_error:
      - action: record
        input: { event: error, task: "{{ hook.task_name }}", status: "{{ hook.status }}", ok: "{{ hook.is_success }}", err: "{{ hook.error_message }}" }
      - action: broken-hook
  timed:
    flow:
      wait: { action: short-gate }
    on_error:
      - action: record
        input: { event: "{{ hook.no_such_thing }}", task: t, status: s, ok: o }
  slow:
    flow:
      nap: { action: sleepy }
  parent-of-slow:
    flow:
      child: { action: run-slow }
    on_cancel:
      - action: record
        input: { event: cancel, task: "{{ hook.task_name }}", status: "{{ hook.status }}", ok: "{{ hook.is_success }}" }
  ping:
    flow:
      again: { action: run-pong }
  pong:
    flow:
      again: { action: run-ping }
`

func TestApprovalGatesSubJobsAndHooks(t *testing.T) {
	t.Parallel()
	// One worker slot: a job waiting at a gate or for its child holds none
	// (the on_suspended hook job runs while the gate waits).
	s := startStack(t, stackOpts{workspace: workspaceDir(t, gatesWorkflow), maxConcurrent: 1})

	t.Run("approved gate, then a sub-job, then the workspace hook", func(t *testing.T) {
		id := s.execute("deploy", map[string]any{"env": "prod"})
		s.waitStep(id, "approve", stroem.StepSuspended)
		j := s.job(id)
		require.Equal(t, stroem.JobRunning, j.Status, "a job waiting at a gate is running")
		gate := stepOf(t, j, "approve")
		require.Equal(t, "Deploy 1.2 to prod?", outMap(gate.Output)["message"])
		require.Nil(t, gate.WorkerID, "a gate holds no worker")
		require.Equal(t, 0, gate.Attempt)

		hook := s.waitHook(id, "on_suspended")
		require.Contains(t, s.logs(hook.ID), "HOOK event=suspended task=deploy status=suspended ok=false")

		code, out, errOut := s.cli(context.Background(), "status", id)
		require.Equal(t, 0, code, errOut)
		require.Contains(t, out, "approve: waiting for approval: Deploy 1.2 to prod?")
		require.Contains(t, out, "stroem approve "+id+" approve")
		require.Contains(t, out, "on_suspended")

		code, out, errOut = s.cli(context.Background(), "approve", id, "approve", "-m", "checked")
		require.Equal(t, 0, code, errOut)
		require.Contains(t, out, "step approve approved: step completed")

		code, body := s.do("POST", "/api/jobs/"+id+"/steps/approve/approve", map[string]any{"approved": false})
		require.Equal(t, http.StatusConflict, code, "the first decision stands: %s", body)
		require.Contains(t, string(body), "not waiting for a decision (it is completed)")

		j = s.waitJob(id)
		require.Equal(t, stroem.JobCompleted, j.Status, describeJob(j))
		gate = stepOf(t, j, "approve")
		require.Equal(t, true, outMap(gate.Output)["approved"])
		require.Equal(t, "anonymous", outMap(gate.Output)["approved_by"])
		require.Equal(t, "checked", outMap(gate.Output)["comment"])
		require.Equal(t, map[string]any{"version": "1.2", "env": "prod"}, outMap(gate.Output)["input"])

		sub := stepOf(t, j, "cleanup")
		require.Equal(t, stroem.StepCompleted, sub.Status)
		require.NotEmpty(t, sub.ChildJobID)
		require.Equal(t, map[string]any{"clean": map[string]any{"cleaned": "prod"}}, sub.Output, "the step takes the child's output")
		require.Contains(t, s.logs(id), "say prod")
		require.Len(t, j.Children, 1)
		require.Equal(t, stroem.JobLink{JobID: sub.ChildJobID, StepName: "cleanup", TaskName: "cleanup", Status: stroem.JobCompleted}, j.Children[0])

		child := s.job(sub.ChildJobID)
		require.Equal(t, stroem.SourceTask, child.SourceType)
		require.Equal(t, id, child.ParentJobID)
		require.Equal(t, "cleanup", child.ParentStepName)
		require.Equal(t, map[string]any{"env": "prod"}, child.Input)
		require.Contains(t, s.logs(child.ID), "child env=prod")

		ws := s.waitHook(id, "on_success")
		require.Contains(t, s.logs(ws.ID), "HOOK event=ws-success task=deploy status=completed ok=true")
		require.Empty(t, s.job(child.ID).Hooks, "child jobs fire no workspace-level hooks")

		code, out, _ = s.cli(context.Background(), "status", id)
		require.Equal(t, 0, code)
		require.Contains(t, out, "children:")
		require.Contains(t, out, sub.ChildJobID)
		code, out, _ = s.cli(context.Background(), "status", child.ID)
		require.Equal(t, 0, code)
		require.Contains(t, out, "parent:    "+id+" (step cleanup)")
	})

	t.Run("rejected gate fails the job; its hooks fire, a failing hook is visible", func(t *testing.T) {
		id := s.execute("deploy", nil)
		s.waitStep(id, "approve", stroem.StepSuspended)
		code, body := s.do("POST", "/api/jobs/"+id+"/steps/approve/approve", map[string]any{"approved": false, "rejection_reason": "wrong version"})
		require.Equal(t, http.StatusOK, code, string(body))
		j := s.waitJob(id)
		require.Equal(t, stroem.JobFailed, j.Status)
		gate := stepOf(t, j, "approve")
		require.Equal(t, "rejected by anonymous: wrong version", gate.ErrorMessage)
		require.Equal(t, false, outMap(gate.Output)["approved"])
		require.Equal(t, "wrong version", outMap(gate.Output)["rejection_reason"])
		require.Equal(t, stroem.StepSkipped, stepOf(t, j, "cleanup").Status)

		rec := s.waitHook(id, "on_error")
		require.Contains(t, s.logs(rec.ID), "HOOK event=error task=deploy status=failed ok=false err=approve: rejected by anonymous: wrong version")
		var broken stroem.JobLink
		require.Eventually(t, func() bool {
			for _, h := range s.job(id).Hooks {
				if h.TaskName == "_hook:broken-hook" && h.Status.Terminal() {
					broken = h
					return true
				}
			}
			return false
		}, waitFor, 50*time.Millisecond)
		require.Equal(t, stroem.JobFailed, broken.Status, "a hook's own failure shows")
		require.Equal(t, stroem.JobFailed, s.job(id).Status, "and changes nothing of the job it reports on")
	})

	t.Run("bad decisions get clear errors", func(t *testing.T) {
		id := s.execute("deploy", nil)
		s.waitStep(id, "approve", stroem.StepSuspended)
		for _, c := range []struct {
			path string
			body any
			code int
			want string
		}{
			{"/api/jobs/" + id + "/steps/approve/approve", map[string]any{}, 400, `is required: true to approve, false to reject`},
			{"/api/jobs/" + id + "/steps/approve/approve", map[string]any{"approved": "yes"}, 400, `field \"approved\": expected bool`},
			{"/api/jobs/" + id + "/steps/approve/approve", map[string]any{"approved": true, "rejection_reason": "x"}, 400, "for rejecting"},
			{"/api/jobs/" + id + "/steps/approve/approve", map[string]any{"approved": false, "rejection_reason": strings.Repeat("x", 5000)}, 400, "at most 4096 bytes"},
			{"/api/jobs/" + id + "/steps/nope/approve", map[string]any{"approved": true}, 404, `has no step \"nope\"`},
			{"/api/jobs/" + id + "/steps/build/approve", map[string]any{"approved": true}, 409, "not an approval gate"},
			{"/api/jobs/6b0f8a8e-0000-4000-8000-000000000000/steps/approve/approve", map[string]any{"approved": true}, 404, "not found"},
		} {
			code, body := s.do("POST", c.path, c.body)
			require.Equal(t, c.code, code, "%s %v: %s", c.path, c.body, body)
			require.Contains(t, string(body), c.want)
		}
		code, body := s.do("POST", "/api/jobs/"+id+"/cancel", nil)
		require.Equal(t, http.StatusOK, code, string(body))
		require.Equal(t, stroem.StepCancelled, stepOf(t, s.waitJob(id), "approve").Status, "a cancel ends a gate at once")
	})

	t.Run("an undecided gate times out", func(t *testing.T) {
		id := s.execute("timed", nil)
		require.Eventually(t, func() bool {
			st := stepOf(t, s.job(id), "wait")
			return st.Status == stroem.StepSuspended && outMap(st.Output)["timeout_at"] != nil && outMap(st.Output)["message"] == "quick?"
		}, waitFor, 20*time.Millisecond, "a root gate shows its message and deadline")
		j := s.waitJob(id)
		require.Equal(t, stroem.JobFailed, j.Status)
		require.Equal(t, "approval step timed out after 2s", stepOf(t, j, "wait").ErrorMessage)

		hook := s.waitHook(id, "on_error")
		require.Equal(t, stroem.JobFailed, hook.Status, "a hook whose input does not render is a failed hook job")
		require.Contains(t, hook.Steps[0].ErrorMessage, "hook input does not render")
		require.Contains(t, hook.Steps[0].ErrorMessage, "hook.no_such_thing")
	})

	t.Run("cancelling the parent cancels the child", func(t *testing.T) {
		id := s.execute("parent-of-slow", nil)
		var childID string
		require.Eventually(t, func() bool {
			j := s.job(id)
			if len(j.Children) == 0 {
				return false
			}
			childID = j.Children[0].JobID
			return stepStatuses(s.job(childID))["nap"] == stroem.StepRunning
		}, waitFor, 50*time.Millisecond)
		code, body := s.do("POST", "/api/jobs/"+id+"/cancel", nil)
		require.Equal(t, http.StatusOK, code, string(body))
		require.Equal(t, stroem.JobCancelled, s.waitJob(id).Status)
		child := s.waitJob(childID)
		require.Equal(t, stroem.JobCancelled, child.Status, describeJob(child))
		require.Equal(t, stroem.StepCancelled, stepOf(t, child, "nap").Status)
		hook := s.waitHook(id, "on_cancel")
		require.Contains(t, s.logs(hook.ID), "HOOK event=cancel task=parent-of-slow status=cancelled ok=false")
	})

	t.Run("tasks that call each other stop at the depth limit", func(t *testing.T) {
		id := s.execute("ping", nil)
		j := s.waitJob(id)
		require.Equal(t, stroem.JobFailed, j.Status)
		depth := 0
		for cur := j; ; depth++ {
			st := stepOf(t, cur, "again")
			if st.ChildJobID == "" {
				require.Contains(t, st.ErrorMessage, "sub-task depth limit reached: a job nested 10 levels deep may not start another (at most 10")
				break
			}
			cur = s.waitJob(st.ChildJobID)
			require.Equal(t, stroem.JobFailed, cur.Status)
		}
		require.Equal(t, 10, depth, "jobs nested 10 levels below the first")
	})
}
