package e2e

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
)

// gateDocRuns are the examples of guides/hooks.md and the task and approval
// parts of guides/action-types.md, run with the actions they name but do
// not define (workspace/testdata/upstream-docs-fragments), and the results
// those pages document.
func gateDocRuns() []docRun {
	C, F := stroem.JobCompleted, stroem.JobFailed
	hookLogs := func(event string, want ...string) func(t *testing.T, s *stack, id string, j stroem.Job) {
		return func(t *testing.T, s *stack, id string, j stroem.Job) {
			h := s.waitHook(id, event)
			logs := s.logs(h.ID)
			for _, w := range want {
				require.Contains(t, logs, w)
			}
		}
	}
	return []docRun{
		// A task action: the step runs the other task as a child job.
		{file: "guides_action-types_14", fragment: true, task: "deploy", status: C, extra: `
actions:
  build-app: { type: script, script: echo building }
  cleanup-resources-action:
    type: script
    script: echo "cleaning {{ input.env }}"
    input: { env: { type: string } }
`, check: func(t *testing.T, s *stack, id string, j stroem.Job) {
			st := stepOf(t, j, "cleanup")
			require.Equal(t, stroem.StepCompleted, st.Status)
			child := s.waitJob(st.ChildJobID)
			require.Equal(t, stroem.JobCompleted, child.Status)
			require.Equal(t, "cleanup-resources", child.TaskName)
			require.Equal(t, id, child.ParentJobID)
			require.Contains(t, s.logs(child.ID), "cleaning staging")
		}},
		// Basic approval: the job waits until approved, then goes on.
		{file: "guides_action-types_19", fragment: true, task: "deploy", approve: []string{"approve"}, status: C, logs: []string{"deploying"},
			extra: "actions:\n  deploy-script: { type: script, script: echo deploying }\n",
			check: func(t *testing.T, s *stack, id string, j stroem.Job) {
				gate := stepOf(t, j, "approve")
				require.Equal(t, true, outMap(gate.Output)["approved"])
				require.Equal(t, "Approve deployment to production?", outMap(gate.Output)["message"])
				require.NotEmpty(t, outMap(gate.Output)["approved_at"])
			}},
		// A templated message shows the approver the job's context.
		{file: "guides_action-types_20", fragment: true, task: "deploy", approve: []string{"approve"}, status: C, logs: []string{"deploying 2.0 to prod"},
			input: map[string]any{"version": "2.0", "environment": "prod", "current_version": "1.9", "deployer_email": "ann@example.com"},
			extra: `
actions:
  deploy-script:
    type: script
    script: echo "deploying {{ input.version }} to {{ input.environment }}"
    input: { version: { type: string }, environment: { type: string } }
`, check: func(t *testing.T, s *stack, id string, j stroem.Job) {
				msg, _ := outMap(stepOf(t, j, "approve").Output)["message"].(string)
				require.Contains(t, msg, "Approve deployment of **2.0** to **prod**?")
				require.Contains(t, msg, "Current version: 1.9")
				require.Contains(t, msg, "Deployer: ann@example.com")
			}},
		// on_success / on_error with hook.* and secret.*.
		{file: "guides_hooks_00", fragment: true, task: "deploy", status: C, extra: notifySlack + `
  build-app: { type: script, script: echo building }
  deploy-app: { type: script, script: echo deploying }
`, check: hookLogs("on_success", "slack: Deploy deploy succeeded (")},
		// on_cancel fires for a cancelled job.
		{file: "guides_hooks_01", fragment: true, task: "deploy", extra: notifySlack + `
  build-app: { type: script, script: "echo building; sleep 120" }
  deploy-app: { type: script, script: echo deploying }
`, check: func(t *testing.T, s *stack, id string, _ stroem.Job) {
			s.waitStep(id, "build", stroem.StepRunning)
			code, body := s.do("POST", "/api/jobs/"+id+"/cancel", nil)
			require.Equal(t, 200, code, string(body))
			require.Equal(t, stroem.JobCancelled, s.waitJob(id).Status)
			hookLogs("on_cancel", "slack: Deploy deploy was cancelled")(t, s, id, stroem.Job{})
		}},
		// on_suspended notifies the approvers of a gate.
		{file: "guides_hooks_02", fragment: true, task: "deploy-production", approve: []string{"approve"}, status: C, logs: []string{"deploying"},
			extra: `
actions:
  notify-approvers:
    type: script
    script: 'echo "notify {{ input.channel }}: {{ input.message }}"' 
    input: { channel: { type: string }, message: { type: string } }
  deploy-script: { type: script, script: echo deploying }
`, check: hookLogs("on_suspended", "notify #deploy-approvals: deploy-production in guides-hooks-02 is awaiting approval")},
		{file: "guides_hooks_04", fragment: true, task: "critical-maintenance", approve: []string{"approve"}, status: C, logs: []string{"maintaining"},
			extra: `
secrets:
  pagerduty_service_id: PD123
actions:
  create-pagerduty-incident:
    type: script
    script: echo "incident {{ input.title }} service={{ input.service_id }} job={{ input.job_id }}"
    input: { title: { type: string }, service_id: { type: string }, job_id: { type: string } }
  maintenance-script: { type: script, script: echo maintaining }
`, check: hookLogs("on_suspended", // the secret is masked in the log
				"incident critical-maintenance awaiting approval in guides-hooks-04 service=*** job=")},
		// Workspace-level hooks are the fallback of a task without its own
		// (the example's notify-slack posts to $WEBHOOK_URL, unset here: the
		// hook job fails, visibly, and the job stays completed).
		{file: "guides_hooks_05", fragment: true, task: "deploy", status: C, extra: `
actions:
  deploy-app: { type: script, script: echo deploying }
  backup-db: { type: script, script: echo backing up }
`, check: func(t *testing.T, s *stack, id string, _ stroem.Job) {
			h := s.waitHook(id, "on_success")
			require.Equal(t, "_hook:notify-slack", h.TaskName)
			require.Equal(t, stroem.JobCompleted, s.job(id).Status)
		}},
		// A hook action of type task runs a whole task as the hook job.
		{file: "guides_hooks_06", fragment: true, task: "deploy", status: F, extra: `
actions:
  deploy-app: { type: script, script: "echo deploy fails; exit 1" }
  run-cleanup:
    type: task
    task: cleanup-resources
  cleanup-action:
    type: script
    script: echo "cleaning {{ input.env }}"
    input: { env: { type: string } }
tasks:
  cleanup-resources:
    input: { env: { type: string } }
    flow:
      cleanup: { action: cleanup-action, input: { env: "{{ input.env }}" } }
`, check: func(t *testing.T, s *stack, id string, _ stroem.Job) {
			h := s.waitHook(id, "on_error")
			require.Equal(t, "cleanup-resources", h.TaskName)
			require.Equal(t, stroem.SourceHook, h.SourceType)
			require.Contains(t, s.logs(h.ID), "cleaning guides-hooks-06")
		}},
	}
}

// notifySlack defines the examples' notify-slack and its secret, printing
// instead of posting.
const notifySlack = `
secrets:
  SLACK_WEBHOOK_URL: "https://hooks.slack.example/T000"
actions:
  notify-slack:
    type: script
    script: 'echo "slack: {{ input.message }}"' 
    input: { webhook_url: { type: string }, message: { type: string } }`
