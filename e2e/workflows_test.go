package e2e

import (
	"time"

	"encoding/json"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
)

// The workflows of the original implementation run unchanged
// (workspace/testdata/compat, copied from /work/shared/compat).
func TestCompatWorkflows(t *testing.T) {
	t.Parallel()
	// Two workers, as the original's end-to-end test ran them.
	s := startStack(t, stackOpts{workspace: filepath.Join(repoRoot, "workspace", "testdata", "compat"), workers: 2})

	hello := s.execute("hello-world", map[string]any{"name": "E2E Test"})
	deploy := s.execute("deploy-pipeline", nil)

	t.Run("hello-world", func(t *testing.T) {
		j := s.waitJob(hello)
		requireEnded(t, j, stroem.JobCompleted, map[string]stroem.StepStatus{"say-hello": stroem.StepCompleted, "shout-it": stroem.StepCompleted})
		require.Equal(t, map[string]any{"greeting": "Hello E2E Test"}, stepOf(t, j, "say-hello").Output)
		logs := s.logs(hello)
		require.Contains(t, logs, "Hello E2E Test")
		require.Contains(t, logs, "HELLO E2E TEST")
	})

	t.Run("trigger --follow", func(t *testing.T) {
		code, out, errOut := s.cli(nil, "trigger", "hello-world", "-i", "name=You", "--follow")
		require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
		require.Contains(t, out, "Hello You")
		require.Contains(t, out, "HELLO YOU")
	})

	t.Run("deploy-pipeline", func(t *testing.T) {
		// deploy-app runs actions/deploy.sh from the workspace archive the
		// worker downloads.
		j := s.waitJob(deploy)
		requireEnded(t, j, stroem.JobCompleted, map[string]stroem.StepStatus{
			"health-check": stroem.StepCompleted, "deploy-app": stroem.StepCompleted, "send-notification": stroem.StepCompleted,
		})
		require.Equal(t, map[string]any{"status": "deployed", "env": "staging"}, stepOf(t, j, "deploy-app").Output)
		logs := s.logs(deploy)
		require.Contains(t, logs, "Deployment complete!")
		require.Contains(t, logs, "Notification: Deployment to staging completed with status=success")
	})
}

// Every task of examples/workspace ends as its comment says.
func TestExampleWorkspace(t *testing.T) {
	t.Parallel()
	const token, hookSecret = "e2e-s3cr3t-t0ken", "e2e-hook-s3cret"
	s := startStack(t, stackOpts{
		workspace: filepath.Join(repoRoot, "examples", "workspace"),
		serverEnv: []string{"EXAMPLE_API_TOKEN=" + token, "EXAMPLE_WEBHOOK_SECRET=" + hookSecret},
	})

	type want struct {
		input  map[string]any
		status stroem.JobStatus
		steps  map[string]stroem.StepStatus
		logs   []string
		check  func(t *testing.T, j stroem.Job, logs string)
		// approve lists approval gates to approve once suspended.
		approve []string
	}
	C, F, S := stroem.StepCompleted, stroem.StepFailed, stroem.StepSkipped
	cases := map[string]want{
		"hello-world": {
			input:  map[string]any{"name": `Ada "the first" Lovelace`},
			status: stroem.JobCompleted,
			steps:  map[string]stroem.StepStatus{"say-hello": C, "shout-it": C},
			logs:   []string{`Hello Ada "the first" Lovelace`, `HELLO ADA "THE FIRST" LOVELACE`},
			check: func(t *testing.T, j stroem.Job, _ string) {
				require.Equal(t, map[string]any{"greeting": `Hello Ada "the first" Lovelace`}, stepOf(t, j, "say-hello").Output)
				require.Equal(t, map[string]any{"shout-it": map[string]any{"shouted": `HELLO ADA "THE FIRST" LOVELACE`}}, j.Output)
			},
		},
		"release": {
			input:  map[string]any{"env": "production", "version": "2.0.0"},
			status: stroem.JobCompleted,
			steps:  map[string]stroem.StepStatus{"build": C, "test": C, "deploy": C, "verify": C, "announce": C},
			logs: []string{
				"Deploying app-2.0.0.tar.gz to production (strategy: rolling, attempt 1)",
				"Deployment complete!", "Checking https://production.example.com/healthz",
				"Released app-2.0.0.tar.gz to production",
			},
		},
		"nightly-report": {
			status: stroem.JobCompleted,
			steps:  map[string]stroem.StepStatus{"plan": C, "region-eu": C, "region-us": C, "region-apac": C, "merge": C},
			logs:   []string{"All regions: 60 orders"},
			check: func(t *testing.T, j stroem.Job, _ string) {
				require.Equal(t, map[string]any{"merge": map[string]any{"total_orders": float64(60)}}, j.Output)
			},
		},
		"failing-pipeline": {
			status: stroem.JobFailed,
			steps:  map[string]stroem.StepStatus{"prepare": C, "migrate": F, "restart": S, "cleanup": C},
			logs:   []string{"preparing", "error: database migration 42 failed", "cleaning up"},
			check: func(t *testing.T, j stroem.Job, logs string) {
				require.Equal(t, "exit code 3: error: database migration 42 failed", stepOf(t, j, "migrate").ErrorMessage)
				require.NotContains(t, logs, "never printed")
			},
		},
		"tolerant-pipeline": {
			status: stroem.JobCompleted,
			steps:  map[string]stroem.StepStatus{"lint": F, "build": C},
			logs:   []string{"error: 3 style warnings", "building despite lint"},
		},
		"flaky-service": {
			status: stroem.JobCompleted,
			steps:  map[string]stroem.StepStatus{"call": C},
			logs:   []string{"calling the service (attempt 1)", "503 Service Unavailable", "calling the service (attempt 2)", "200 OK"},
			check: func(t *testing.T, j stroem.Job, _ string) {
				call := stepOf(t, j, "call")
				require.Equal(t, 2, call.Attempt)
				require.Len(t, call.Attempts, 2)
				require.Equal(t, stroem.AttemptFailed, call.Attempts[0].Status)
				require.Equal(t, stroem.AttemptCompleted, call.Attempts[1].Status)
			},
		},
		"slow-step": {
			status: stroem.JobFailed,
			steps:  map[string]stroem.StepStatus{"wait": F},
			logs:   []string{"sleeping for 30 s"},
			check: func(t *testing.T, j stroem.Job, logs string) {
				require.Equal(t, "timed out after 2s", stepOf(t, j, "wait").ErrorMessage)
				require.NotContains(t, logs, "woke up")
			},
		},
		"deadline": {
			status: stroem.JobCancelled,
			steps:  map[string]stroem.StepStatus{"wait": stroem.StepCancelled},
			check: func(t *testing.T, j stroem.Job, logs string) {
				require.NotContains(t, logs, "woke up")
				require.NotNil(t, j.CompletedAt)
				require.Less(t, j.CompletedAt.Sub(j.CreatedAt), 25*time.Second, "cancelled at its 3s timeout, not after the sleep")
				// The 3s count from the job's creation: on a loaded machine the
				// step may be claimed so late that it is cancelled before its
				// shell printed anything. Its first line must be there when
				// the step ran for a while.
				wait := stepOf(t, j, "wait")
				if wait.StartedAt != nil && j.CompletedAt.Sub(*wait.StartedAt) >= 2*time.Second {
					require.Contains(t, logs, "sleeping for 30 s", "the step ran %s before the cancel", j.CompletedAt.Sub(*wait.StartedAt))
				} else {
					t.Logf("the step was claimed too late to be sure it printed (started %v, job completed %s): its log is not checked", wait.StartedAt, j.CompletedAt)
				}
			},
		},
		"rerun-on-failure": {
			status: stroem.JobFailed,
			steps:  map[string]stroem.StepStatus{"check": F},
			logs:   []string{"calling a service that is down"},
			check: func(t *testing.T, j stroem.Job, _ string) {
				// The task's retry: a second job of the task, then no more.
				var list struct{ Items []stroem.Job }
				require.Eventually(t, func() bool {
					require.Equal(t, 200, s.getJSON("/api/jobs?task=rerun-on-failure", &list))
					return len(list.Items) == 2 && list.Items[0].Status.Terminal() && list.Items[1].Status.Terminal()
				}, waitFor, 50*time.Millisecond, "no second job")
				for _, other := range list.Items {
					require.Equal(t, stroem.JobFailed, other.Status)
				}
				// Newest first: the retry names the job it retries.
				require.Equal(t, list.Items[1].ID, list.Items[0].RetryOfJobID)
				require.Empty(t, list.Items[1].RetryOfJobID)
			},
		},
		"countdown": {
			input:  map[string]any{"seconds": 2},
			status: stroem.JobCompleted,
			steps:  map[string]stroem.StepStatus{"count": C},
			logs:   []string{"T-2\nT-1\nliftoff"},
		},
		"use-secret": {
			status: stroem.JobCompleted,
			steps:  map[string]stroem.StepStatus{"call": C},
			logs:   []string{"token: ***", "token length: 16"},
			check: func(t *testing.T, _ stroem.Job, logs string) {
				require.NotContains(t, logs, token, "a resolved secret is masked in stored logs")
			},
		},
	}

	cases["guarded-release"] = want{
		status: stroem.JobCompleted,
		steps:  map[string]stroem.StepStatus{"check": C, "announce": C, "rollback": S, "cleanup": C},
		logs:   []string{"release is ready", "cleaning up"},
		check: func(t *testing.T, j stroem.Job, logs string) {
			require.Equal(t, stroem.SkipCondition, stepOf(t, j, "rollback").SkipReason)
			require.NotContains(t, logs, "rolling back")
		},
	}
	cases["regional-rollout"] = want{
		status: stroem.JobCompleted,
		steps:  map[string]stroem.StepStatus{"regions": C, "deploy": C, "deploy[0]": C, "deploy[1]": C, "deploy[2]": C, "summary": C},
		logs: []string{"deploying to eu-west (instance 0 of the loop)", "deploying to ap-south (instance 2 of the loop)",
			"deployed: eu-west, us-east, ap-south"},
		check: func(t *testing.T, j stroem.Job, _ string) {
			require.Equal(t, map[string]any{"summary": map[string]any{"deployed": float64(3)}}, j.Output)
			require.Equal(t, []string{"deploy[0]", "deploy[1]", "deploy[2]"}, stepOf(t, j, "deploy").Instances)
		},
	}
	cases["ordered-migrations"] = want{
		status: stroem.JobCompleted,
		steps:  map[string]stroem.StepStatus{"migrate": C, "migrate[0]": C, "migrate[1]": C, "migrate[2]": C},
		logs:   []string{"migrating schema users (0)\nmigrating schema orders (1)\nmigrating schema billing (2)"},
	}
	cases["languages"] = want{
		status: stroem.JobCompleted,
		steps:  map[string]stroem.StepStatus{"python": C, "shell": C, "javascript": C, "go": C, "report": C},
		logs: []string{
			"primes up to 30: [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]", "counting words of: 10 primes, the largest 29",
			"sum of 4 numbers: 10", "fib(20) = 6765", "Regions: 3 regions: eu, us, apac",
		},
		check: func(t *testing.T, j stroem.Job, _ string) {
			require.Equal(t, map[string]any{"count": float64(10), "largest": float64(29)}, stepOf(t, j, "python").Output)
			require.Equal(t, map[string]any{"words": float64(5)}, stepOf(t, j, "shell").Output)
			require.Equal(t, map[string]any{"total": float64(10)}, stepOf(t, j, "javascript").Output)
			require.Equal(t, map[string]any{"fib": float64(6765)}, stepOf(t, j, "go").Output)
			require.Equal(t, map[string]any{"regions": float64(3), "title": "Regions"}, stepOf(t, j, "report").Output)
		},
	}
	// gates.yaml: approval gates, sub-tasks, hooks.
	cases["approved-release"] = want{
		status: stroem.JobCompleted, approve: []string{"go-live"},
		steps: map[string]stroem.StepStatus{"check": C, "go-live": C, "publish": C},
		logs:  []string{"publishing 1.4.2"},
		check: func(t *testing.T, j stroem.Job, _ string) {
			require.Equal(t, "Publish 1.4.2 to production?", outMap(stepOf(t, j, "go-live").Output)["message"])
		},
	}
	cases["clean-cache"] = want{status: stroem.JobCompleted, steps: map[string]stroem.StepStatus{"clean": C}, logs: []string{"cleaning the eu cache"}}
	cases["cache-maintenance"] = want{
		status: stroem.JobCompleted, steps: map[string]stroem.StepStatus{"sweep": C, "report": C}, logs: []string{"freed 128 MB"},
		check: func(t *testing.T, j stroem.Job, _ string) {
			require.Len(t, j.Children, 1)
			require.Contains(t, s.logs(j.Children[0].JobID), "cleaning the us cache")
		},
	}
	cases["nightly-backup"] = want{
		status: stroem.JobFailed, steps: map[string]stroem.StepStatus{"backup": F}, logs: []string{"backing up"},
		check: func(t *testing.T, j stroem.Job, _ string) {
			h := s.waitHook(j.ID, "on_error")
			require.Contains(t, s.logs(h.ID), "notify: backup nightly-backup failed: backup: exit code 2: error: disk full")
		},
	}
	if hasAnyTool("bun", "deno") {
		cases["typescript"] = want{status: stroem.JobCompleted, steps: map[string]stroem.StepStatus{"greet": C}, logs: []string{"Hello from TypeScript, world"}}
	} else {
		cases["typescript"] = want{status: stroem.JobFailed, steps: map[string]stroem.StepStatus{"greet": F},
			check: func(t *testing.T, j stroem.Job, _ string) {
				require.Equal(t, "no typescript interpreter on this worker: install one of bun, deno, or set the action's interpreter", stepOf(t, j, "greet").ErrorMessage)
			}}
	}

	// Every task of the workspace is covered.
	var tasks []struct {
		Name string `json:"name"`
	}
	require.Equal(t, 200, s.getJSON("/api/workspaces/default/tasks", &tasks))
	var names []string
	for _, tk := range tasks {
		names = append(names, tk.Name)
	}
	for name := range cases {
		require.Contains(t, names, name)
	}
	require.Len(t, names, len(cases), "a task of examples/workspace has no case here: %v", names)

	// deadline first: its 3 s job timeout counts from creation, and behind
	// the others it would often be cancelled before its step printed a line.
	jobs := map[string]string{"deadline": s.execute("deadline", cases["deadline"].input)}
	for name, c := range cases {
		if name != "deadline" {
			jobs[name] = s.execute(name, c.input)
		}
	}

	// The webhook trigger `hello` starts hello-world with the body as input,
	// and only with its secret.
	code, body := s.post("/hooks/hello", "", `{"name": "Hook"}`)
	require.Equal(t, http.StatusUnauthorized, code, body)
	code, body = s.post("/hooks/hello", hookSecret, `{"name": "Hook"}`)
	require.Equal(t, http.StatusAccepted, code, body)
	var hooked struct {
		JobID string `json:"job_id"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &hooked))
	t.Run("webhook hello", func(t *testing.T) {
		j := s.waitJob(hooked.JobID)
		require.Equal(t, stroem.JobCompleted, j.Status, describeJob(j))
		require.Equal(t, stroem.SourceWebhook, j.SourceType)
		require.Contains(t, s.logs(hooked.JobID), "HELLO HOOK")
	})
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			for _, step := range c.approve {
				s.waitStep(jobs[name], step, stroem.StepSuspended)
				code, body := s.do("POST", "/api/jobs/"+jobs[name]+"/steps/"+step+"/approve", map[string]any{"approved": true})
				require.Equal(t, http.StatusOK, code, body)
			}
			j := s.waitJob(jobs[name])
			logs := s.logs(jobs[name])
			require.Equal(t, c.status, j.Status, "%slogs:\n%s", describeJob(j), logs)
			require.Equal(t, c.steps, stepStatuses(j))
			for _, l := range c.logs {
				require.Contains(t, logs, l)
			}
			if c.check != nil {
				c.check(t, j, logs)
			}
		})
	}
}

// `stroem validate` accepts the example workspace and explains a broken one.
func TestValidateExitCodes(t *testing.T) {
	t.Parallel()
	if skipAll {
		t.Skip("end-to-end tests are skipped under -short")
	}
	code, out, _ := runCLI(t, nil, "validate", filepath.Join(repoRoot, "examples", "workspace"))
	require.Equal(t, 0, code, out)
	// Warnings (the hello webhook's secret, unset here) may come first.
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.True(t, strings.HasPrefix(lines[len(lines)-1], "ok: "), out)

	bad := workspaceDir(t, `
actions:
  a: { type: shell, cmd: "echo hi" }
tasks:
  t:
    flow:
      one: { action: a }
      two: { action: missing, depends_on: [nowhere] }
`)
	code, out, _ = runCLI(t, nil, "validate", bad)
	require.Equal(t, 1, code, out)
	require.Contains(t, out, filepath.Join(bad, ".workflows", "test.yaml")+":8:")
	require.Contains(t, out, "missing")
	require.Contains(t, out, "nowhere")

	code, _, errOut := runCLI(t, nil, "validate", filepath.Join(t.TempDir(), "does-not-exist"))
	require.Equal(t, 2, code, errOut)
}

// hasAnyTool reports whether one of the programs is on PATH.
func hasAnyTool(names ...string) bool {
	for _, n := range names {
		if _, err := exec.LookPath(n); err == nil {
			return true
		}
	}
	return false
}
