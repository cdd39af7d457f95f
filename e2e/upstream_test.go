package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
)

// The upstream Strøm's sample workspace (workspace/testdata/upstream, copied
// unchanged) runs here as it does upstream, every file of it.
// state-test.yaml runs as on a first run (no state yet), then again after a
// state upload. hooks-test.yaml's on_error hook runs as a job of its own.
// xref.yaml runs action remote-cat of workspace "test"
// (e2e/testdata/xref-owner, as in the upstream's e2e setup): with that
// workspace's files and secrets.
func TestUpstreamExampleWorkspace(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOpts{
		workspace:      filepath.Join(repoRoot, "workspace", "testdata", "upstream"),
		moreWorkspaces: map[string]string{"test": filepath.Join(repoRoot, "e2e", "testdata", "xref-owner")},
	})

	type want struct {
		input  map[string]any
		status stroem.JobStatus
		steps  map[string]stroem.StepStatus
		logs   []string
		check  func(t *testing.T, j stroem.Job)
	}
	C, F, S := stroem.StepCompleted, stroem.StepFailed, stroem.StepSkipped
	cases := map[string]want{
		"hello-world": {
			status: stroem.JobCompleted,
			steps:  map[string]stroem.StepStatus{"say-hello": C, "shout-it": C},
			logs:   []string{"Hello World", "HELLO WORLD"},
			check: func(t *testing.T, j stroem.Job) {
				require.Equal(t, map[string]any{"greeting": "Hello World"}, stepOf(t, j, "say-hello").Output)
				require.Nil(t, stepOf(t, j, "shout-it").Output, "no OUTPUT line: null")
			},
		},
		"hello-with-warning": {
			input:  map[string]any{"name": "Ada"},
			status: stroem.JobCompleted,
			steps:  map[string]stroem.StepStatus{"warn-hello": C},
			logs:   []string{"Hello Ada", "this is a warning"},
		},
		"deploy-pipeline": {
			status: stroem.JobCompleted,
			steps:  map[string]stroem.StepStatus{"health-check": C, "deploy-app": C, "send-notification": C},
			logs:   []string{"Checking system status...", "Deployment complete!", "Notification: Deployment to staging completed with status=success"},
			check: func(t *testing.T, j stroem.Job) {
				require.Equal(t, map[string]any{"status": "deployed", "env": "staging"}, stepOf(t, j, "deploy-app").Output)
				require.Equal(t, map[string]any{"healthy": true}, stepOf(t, j, "health-check").Output)
			},
		},
		"always-failing": {
			status: stroem.JobFailed,
			steps:  map[string]stroem.StepStatus{"doom": F},
			logs:   []string{"About to fail"},
			check: func(t *testing.T, j stroem.Job) {
				require.Equal(t, "exit code 1: Error details", stepOf(t, j, "doom").ErrorMessage)
			},
		},
		"fail-in-chain": {
			status: stroem.JobFailed,
			steps:  map[string]stroem.StepStatus{"step-fail": F, "step-after": S},
		},
		"fail-continue": {
			status: stroem.JobFailed,
			steps:  map[string]stroem.StepStatus{"step-fail": F, "step-after": C},
			logs:   []string{"Hello test"},
			check: func(t *testing.T, j stroem.Job) {
				require.Equal(t, map[string]any{"greeting": "Hello test"}, stepOf(t, j, "step-after").Output)
			},
		},
		"data-pipeline": {
			input:  map[string]any{"data": "abc"},
			status: stroem.JobCompleted,
			steps:  map[string]stroem.StepStatus{"transform": C, "summarize": C},
			logs:   []string{"Processing abc", "Summarizing processed-abc"},
			check: func(t *testing.T, j stroem.Job) {
				require.Equal(t, map[string]any{"summarize": map[string]any{"summary": "processed-abc done"}}, j.Output)
			},
		},
		// Before any state exists (task state is not here yet), as upstream
		// on a first run.
		"read-state": {
			status: stroem.JobCompleted,
			steps:  map[string]stroem.StepStatus{"read": C},
			logs:   []string{"FILE_CONTENT: (no file)", "TEMPLATE_GREETING: (no greeting)"},
		},
		// hooks-test.yaml: the Python crash fails the job; its on_error hook
		// runs as a job of its own with the hook context, and the job it
		// reports on stays failed.
		"python-crash-with-hook": {
			status: stroem.JobFailed,
			steps:  map[string]stroem.StepStatus{"crash": F},
			logs:   []string{"KeyError: 'missing_key'"},
			check: func(t *testing.T, j stroem.Job) {
				hook := s.waitHook(j.ID, "on_error")
				require.Equal(t, "_hook:log-hook-result", hook.TaskName)
				require.Equal(t, stroem.SourceHook, hook.SourceType)
				require.Equal(t, j.ID, hook.SourceID)
				require.Equal(t, stroem.JobCompleted, hook.Status, describeJob(hook))
				logs := s.logs(hook.ID)
				for _, l := range []string{"HOOK_FIRED", "workspace=default", "task=python-crash-with-hook", "status=failed", "is_success=false", "error_message=crash: "} {
					require.Contains(t, logs, l)
				}
				require.Contains(t, logs, "KeyError")
				require.Equal(t, stroem.JobFailed, s.job(j.ID).Status, "the hook does not change the job")
			},
		},
		"xref": {
			status: stroem.JobCompleted,
			steps:  map[string]stroem.StepStatus{"run": C},
			// data/marker.txt exists only in workspace test, and the
			// secret only there.
			logs: []string{"owner files: this line comes from workspace test", "secret seen: 23 chars"},
		},
		"multi-select-demo": {
			input:  map[string]any{"environments": []any{"dev", "prod"}, "tags": []any{"smoke", "my-own"}},
			status: stroem.JobCompleted,
			steps:  map[string]stroem.StepStatus{"deploy": C},
			logs:   []string{"Deploying to: dev, prod", "Tags: smoke, my-own"},
		},
	}
	ids := map[string]string{}
	for task, w := range cases {
		ids[task] = s.execute(task, w.input)
	}
	for task, w := range cases {
		t.Run(task, func(t *testing.T) {
			j := s.waitJob(ids[task])
			require.Equal(t, w.status, j.Status, describeJob(j))
			require.Equal(t, w.steps, stepStatuses(j), describeJob(j))
			logs := s.logs(ids[task])
			for _, l := range w.logs {
				require.Contains(t, logs, l)
			}
			if w.check != nil {
				w.check(t, j)
			}
		})
	}

	// After an operator uploads state, as upstream's e2e does: the file is
	// in $STATE_DIR and the value in the `state` template variable.
	t.Run("read-state after a state upload", func(t *testing.T) {
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, "hello.txt"), []byte("hello from state"), 0o644))
		code, out, errOut := s.cli(nil, "state", "upload", "--task", "read-state", "--state", "greeting=Hej fra state",
			filepath.Join(dir, "hello.txt"))
		require.Equal(t, 0, code, "stdout: %s\nstderr: %s", out, errOut)
		j := s.waitJob(s.execute("read-state", nil))
		require.Equal(t, stroem.JobCompleted, j.Status, describeJob(j))
		logs := s.logs(j.ID)
		require.Contains(t, logs, "FILE_CONTENT: hello from state")
		require.Contains(t, logs, "TEMPLATE_GREETING: Hej fra state")
	})

	t.Run("multi-select refuses a value outside the options", func(t *testing.T) {
		code, body := s.do("POST", "/api/workspaces/default/tasks/multi-select-demo/execute", map[string]any{"input": map[string]any{"environments": []any{"moon"}}})
		require.Equal(t, 400, code, string(body))
		var e struct {
			Details []string `json:"details"`
		}
		require.NoError(t, json.Unmarshal(body, &e))
		require.Equal(t, []string{`input "environments": item 0: "moon" is not one of "dev", "staging", "prod", "sandbox"`}, e.Details)
	})
}
