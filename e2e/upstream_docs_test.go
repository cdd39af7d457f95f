package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
)

// docRun is one runnable example of the upstream reference pages
// (workspace/testdata/upstream-docs): the task to run (for examples that
// define only actions, a task running the action is added), and what the
// job must show.
type docRun struct {
	file   string
	task   string         // the example's own task; empty: run wrap
	wrap   string         // a flow step running the example's action
	input  map[string]any // the job's input
	status stroem.JobStatus
	logs   []string
	errors []string // in the first step's error
	output any      // the first step's
	skip   func() string
	// Fragments (workspace/testdata/upstream-docs-fragments): extra
	// defines what the example names but does not define.
	fragment bool
	extra    string
	// approve lists gates to approve, in order, once each is suspended.
	approve []string
	// check runs after the job ended with status (status empty: check
	// alone drives the job, e.g. to cancel it).
	check func(t *testing.T, s *stack, id string, j stroem.Job)
}

func noTool(names ...string) func() string {
	return func() string {
		for _, n := range names {
			if _, err := exec.LookPath(n); err == nil {
				return n + " is installed here"
			}
		}
		return ""
	}
}

func needTool(name string) func() string {
	return func() string {
		if _, err := exec.LookPath(name); err != nil {
			return name + " is not installed"
		}
		return ""
	}
}

// Every runnable example of the upstream reference pages runs end to end.
// Examples that need a container runtime, the network or long retry delays
// are validated only (workspace.TestUpstreamDocExamplesValidate). The worker
// has no package registry (its pip index is a closed port): examples with
// dependencies fail with a clear step error.
func TestUpstreamDocExamplesRun(t *testing.T) {
	t.Parallel()
	C, F := stroem.JobCompleted, stroem.JobFailed
	// TypeScript: with bun or deno, its dependency (zod) cannot be
	// installed without a registry; without either, no interpreter.
	tsErrors := []string{"no typescript interpreter on this worker: install one of bun, deno"}
	if noTool("bun", "deno")() != "" {
		tsErrors = []string{"installing dependencies (zod) failed", "access to the package registry"}
	}
	runs := []docRun{
		{file: "examples_hello-world_00", task: "hello-world", status: C, logs: []string{"Hello World", "HELLO WORLD"}},
		{file: "getting-started_quickstart_00", task: "hello-world", input: map[string]any{"name": "Quick"}, status: C, logs: []string{"HELLO QUICK"}},
		{file: "guides_templating_01", task: "hello-world", status: C, logs: []string{"HELLO WORLD"}},
		{file: "guides_workflow-basics_03", task: "hello", status: C, logs: []string{"Hello, World!"}},
		{file: "guides_workflow-basics_04", task: "hello", status: C, logs: []string{"Hello, World!"}},
		{file: "guides_action-types_00", wrap: "{ action: greet, input: { name: Ada } }", status: C, logs: []string{"Hello Ada"}},
		{file: "guides_templating_00", wrap: "{ action: greet, input: { name: Tera } }", status: C, logs: []string{"Hello Tera"}},
		{file: "guides_workflow-basics_01", wrap: "{ action: greet, input: { name: Basic } }", status: C, logs: []string{"Hello Basic"}},
		{file: "guides_action-types_01", wrap: "{ action: deploy }", status: C, logs: []string{"deploying"}},
		{file: "guides_action-types_02", wrap: "{ action: deploy, input: { environment: prod } }", status: C, logs: []string{"deploying prod --region us-east-1"}},
		{file: "guides_action-types_04", wrap: "{ action: analyze-data, input: { url: x } }", status: F,
			errors: []string{"installing dependencies (pandas, requests) failed", "access to the package registry"}},
		{file: "reference_workflow-yaml_01", wrap: "{ action: run-tests }", status: F,
			errors: []string{"installing dependencies (pytest, requests) failed"}},
		{file: "guides_action-types_06", wrap: "{ action: generate-report }", status: F, errors: tsErrors},
		{file: "guides_action-types_07", wrap: "{ action: compute, timeout: 5m }", status: C, output: map[string]any{"result": float64(42)}, skip: needTool("go")},
		{file: "guides_action-types_08", wrap: "{ action: legacy-python }", status: C, logs: []string{"Using Python 3.11"}, skip: needTool("python3.11")},
		{file: "examples_deploy-pipeline_01", task: "multi-region-deploy", status: C,
			logs: []string{"Deploying to us-east-1 (staging)", "Deploying to eu-west-1 (staging)", "Deploying to ap-south-1 (staging)", "regions: success"}},
		{file: "examples_deploy-pipeline_00", task: "deploy-pipeline", input: map[string]any{"env": "production"}, status: C,
			logs: []string{"Checking system status...", "deploying", "Notification: Deployment to production completed with status=success"}},
		// Each region a child job of three steps; the loop step's output
		// is the children's outputs.
		{file: "examples_deploy-pipeline_03", task: "deploy-all-regions", status: C,
			logs: []string{}, check: func(t *testing.T, _ *stack, _ string, j stroem.Job) {
				out, _ := j.Output["deploy"].([]any)
				require.Len(t, out, 3, describeJob(j))
				for _, o := range out {
					require.Equal(t, map[string]any{"passed": true}, o.(map[string]any)["verify"])
				}
			}},
		{file: "reference_workflow-yaml_08", wrap: "{ action: build }", status: C, logs: []string{"Building..."},
			output: map[string]any{"artifact": "dist/app.tar.gz", "size": float64(1024)}},
		// A step whose OUTPUT is a list feeds a for_each.
		{file: "guides_workflow-basics_13", fragment: true, task: "restart-targets", status: C,
			logs: []string{"restarting svc-a", "restarting svc-b"}, extra: `
actions:
  restart-service:
    type: script
    input:
      service: { type: string }
    script: 'echo "restarting {{ input.service }}"; echo "OUTPUT: \"{{ input.service }} restarted\""'
`, output: []any{"svc-a", "svc-b"}, check: func(t *testing.T, _ *stack, _ string, j stroem.Job) {
				require.Equal(t, []any{"svc-a restarted", "svc-b restarted"}, j.Output["restart"], "a JSON string is an output too")
			}},
	}
	runs = append(runs, gateDocRuns()...)
	runs = append(runs, stateDocRuns()...) // upstream_docs_state_test.go
	workspaces := map[string]string{}
	for _, r := range runs {
		if r.skip != nil && r.skip() != "" {
			continue
		}
		dir := t.TempDir()
		require.NoError(t, os.MkdirAll(filepath.Join(dir, ".workflows"), 0o755))
		require.NoError(t, os.MkdirAll(filepath.Join(dir, "actions"), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "actions", "deploy.sh"), []byte("#!/bin/sh\necho \"deploying $*\"\n"), 0o755))
		from := "upstream-docs"
		if r.fragment {
			from = "upstream-docs-fragments"
		}
		body, err := os.ReadFile(filepath.Join(repoRoot, "workspace", "testdata", from, r.file+".yaml"))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, ".workflows", "example.yaml"), body, 0o644))
		if r.extra != "" {
			require.NoError(t, os.WriteFile(filepath.Join(dir, ".workflows", "zz-extra.yaml"), []byte(r.extra), 0o644))
		}
		if r.wrap != "" {
			require.NoError(t, os.WriteFile(filepath.Join(dir, ".workflows", "zz-run.yaml"), []byte("tasks:\n  run:\n    flow:\n      run: "+r.wrap+"\n"), 0o644))
		}
		workspaces[strings.ReplaceAll(r.file, "_", "-")] = dir
	}
	// Docker steps: no worker of this version runs them, so the job is
	// refused at once rather than left waiting.
	for _, f := range []string{"guides_workflow-basics_05", "examples_ci-pipeline_00"} {
		dir := t.TempDir()
		require.NoError(t, os.MkdirAll(filepath.Join(dir, ".workflows"), 0o755))
		body, err := os.ReadFile(filepath.Join(repoRoot, "workspace", "testdata", "upstream-docs", f+".yaml"))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, ".workflows", "example.yaml"), body, 0o644))
		workspaces[strings.ReplaceAll(f, "_", "-")] = dir
	}
	s := startStack(t, stackOpts{
		workspace:      filepath.Join(repoRoot, "workspace", "testdata", "upstream"),
		moreWorkspaces: workspaces,
		workerEnv:      []string{"PIP_INDEX_URL=http://127.0.0.1:9/simple", "PIP_NO_CACHE_DIR=1", "npm_config_registry=http://127.0.0.1:9/", "BUN_CONFIG_REGISTRY=http://127.0.0.1:9/"},
	})
	ids := map[string]string{}
	for _, r := range runs {
		ws := strings.ReplaceAll(r.file, "_", "-")
		if workspaces[ws] == "" {
			continue
		}
		task := r.task
		if task == "" {
			task = "run"
		}
		code, body := s.do("POST", "/api/workspaces/"+ws+"/tasks/"+task+"/execute", map[string]any{"input": r.input})
		require.Equal(t, 201, code, "%s: %s", r.file, body)
		var out struct {
			JobID string `json:"job_id"`
		}
		require.NoError(t, json.Unmarshal(body, &out))
		ids[r.file] = out.JobID
	}
	t.Run("docker steps are refused at once", func(t *testing.T) {
		code, body := s.do("POST", "/api/workspaces/guides-workflow-basics-05/tasks/deploy/execute", map[string]any{})
		require.Equal(t, 409, code, string(body))
		require.Contains(t, string(body), `task \"deploy\" cannot run: no worker can run docker steps`)
		require.Contains(t, string(body), "docker (steps build, deploy)")
		// The page's manual run: the body as an object, though the task
		// declares body: { type: string }.
		code, body = s.do("POST", "/api/workspaces/examples-ci-pipeline-00/tasks/ci-pipeline/execute", map[string]any{"input": map[string]any{"body": map[string]any{"ref": "refs/heads/main"}}})
		require.Equal(t, 409, code, string(body))
		require.Contains(t, string(body), "docker (steps lint, test, build)")
	})
	for _, r := range runs {
		t.Run(r.file, func(t *testing.T) {
			if r.skip != nil {
				if why := r.skip(); why != "" {
					t.Skip(why)
				}
			}
			for _, step := range r.approve {
				s.waitStep(ids[r.file], step, stroem.StepSuspended)
				code, body := s.do("POST", "/api/jobs/"+ids[r.file]+"/steps/"+step+"/approve", map[string]any{"approved": true})
				require.Equal(t, 200, code, string(body))
			}
			if r.status == "" {
				r.check(t, s, ids[r.file], stroem.Job{})
				return
			}
			j := s.waitJob(ids[r.file])
			require.Equal(t, r.status, j.Status, describeJob(j))
			if r.check != nil {
				defer r.check(t, s, ids[r.file], j)
			}
			logs := s.logs(ids[r.file])
			for _, l := range r.logs {
				require.Contains(t, logs, l)
			}
			for _, e := range r.errors {
				require.Contains(t, j.Steps[0].ErrorMessage, e)
			}
			if r.output != nil {
				require.Equal(t, r.output, j.Steps[0].Output)
			}
		})
	}
}

// The examples of the reference's libraries and cross-workspace pages run:
// the library's task of "How Prefixing Works" (as written there, with the
// two actions it names) as common.canary-deploy of every workspace, a
// library action in a workspace task ("Referencing Library Items"), the
// flow step jobs.recalc-agg-sessions ("Syntax"), and the page's typo
// (jobs.recalc-agg-session) refused with 400 naming the action.
func TestUpstreamLibraryAndCrossWorkspaceExamples(t *testing.T) {
	t.Parallel()
	caller := workspaceDir(t, `
actions:
  score-all:
    type: script
    script: 'echo "OUTPUT: {\"dataset\": \"sessions\"}"'
tasks:
  deploy:
    flow:
      notify:
        action: common.slack-notify    # library action
  daily:
    flow:
      run:
        action: score-all
      recalc:
        depends_on: [run]
        action: jobs.recalc-agg-sessions
        input:
          dataset: "{{ run.output.dataset }}"
  typo:
    flow:
      recalc:
        action: jobs.recalc-agg-session
        input: { dataset: x }
`)
	s := startStack(t, stackOpts{
		workspace:      caller,
		moreWorkspaces: map[string]string{"jobs": filepath.Join(repoRoot, "e2e", "testdata", "docs-jobs")},
		libraries:      map[string]any{"common": map[string]any{"type": "folder", "path": filepath.Join(repoRoot, "e2e", "testdata", "docs-library")}},
	})
	runs := map[string][]string{
		"deploy":               {"slack-notify from the library script"},
		"common.canary-deploy": {"slack-notify from the library script", "kubectl apply (library action, run in"},
		"daily":                {"recalc sessions in workspace jobs"},
	}
	s.runCompleted(runs)
	code, body := s.do("POST", "/api/workspaces/default/tasks/typo/execute", map[string]any{})
	require.Equal(t, 400, code, string(body))
	require.Contains(t, string(body), `step recalc: action \"jobs.recalc-agg-session\": workspace jobs has no action \"recalc-agg-session\" (did you mean \"recalc-agg-sessions\"?)`)
	// Every workspace has the library's task; the library's own files
	// are not a workspace's tasks otherwise.
	code, body = s.do("GET", "/api/workspaces/jobs/tasks/common.canary-deploy", nil)
	require.Equal(t, 200, code, string(body))
}
