package e2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
)

// loopRun is one run of an example of the upstream pages on conditions and
// loops, and the documented result: the job's status and, per step, its
// status and (for skipped steps) why.
type loopRun struct {
	name  string
	files []string // the example's files, from workspace/testdata/upstream-docs or e2e/testdata/upstream-loops
	task  string
	input map[string]any
	job   stroem.JobStatus
	steps map[string]string // step → "completed", "failed", "skipped/condition", "skipped/cascade", …
	logs  []string
	// stepLogs: text each step's own log (GET …/steps/{step}/logs) holds.
	stepLogs map[string]string
	check    func(t *testing.T, j stroem.Job)
}

// The examples of guides/conditionals.md and guides/loops.md run with the
// results the pages document: a falsy condition skips its step, a skipped
// step satisfies its dependents unless all of them were skipped (the
// cascade), a condition that does not render fails its step; a loop runs
// once per item, in order when sequential, and its dependents see the list
// of its instances' outputs.
func TestUpstreamConditionalsAndLoopsRun(t *testing.T) {
	t.Parallel()
	docs := filepath.Join(repoRoot, "workspace", "testdata", "upstream-docs")
	ex := filepath.Join(repoRoot, "e2e", "testdata", "upstream-loops")
	full := []string{filepath.Join(docs, "guides_conditionals_10.yaml")}
	snip := func(n string) []string {
		return []string{filepath.Join(ex, n+".yaml"), filepath.Join(ex, "stubs.yaml")}
	}
	C, F := stroem.JobCompleted, stroem.JobFailed
	runs := []loopRun{
		// The page's complete example.
		{name: "full-example defaults", files: full, task: "full-example", job: C,
			steps: map[string]string{"verify": "completed", "fast": "completed", "slow": "skipped/condition", "finish": "completed"},
			logs:  []string{"Checking...", "Fast processing", "Cleanup"}},
		{name: "full-example slow", files: full, task: "full-example", input: map[string]any{"use_fast": false}, job: C,
			steps: map[string]string{"verify": "completed", "fast": "skipped/condition", "slow": "completed", "finish": "completed"},
			logs:  []string{"Slow processing"}},
		{name: "full-example no pre-check", files: full, task: "full-example", input: map[string]any{"skip_pre_check": true}, job: C,
			steps: map[string]string{"verify": "skipped/condition", "fast": "skipped/cascade", "slow": "skipped/cascade", "finish": "skipped/cascade"}},
		// The excerpts, with stand-in actions.
		{name: "conditional-task", files: snip("guides_conditionals_00"), task: "conditional-task", job: C,
			steps: map[string]string{"setup": "completed", "check-data": "skipped/condition", "process": "completed"}},
		{name: "conditional-task checks", files: snip("guides_conditionals_00"), task: "conditional-task", input: map[string]any{"run_checks": true}, job: C,
			steps: map[string]string{"setup": "completed", "check-data": "completed", "process": "completed"}},
		{name: "branching-workflow", files: snip("guides_conditionals_02"), task: "branching-workflow", input: map[string]any{"use_fast_path": true}, job: C,
			steps: map[string]string{"fast-check": "completed", "slow-check": "skipped/condition", "process-results": "completed"}},
		{name: "root-conditional", files: snip("guides_conditionals_03"), task: "root-conditional", input: map[string]any{"skip_setup": true}, job: C,
			steps: map[string]string{"setup": "skipped/condition", "main": "skipped/cascade"}},
		{name: "root-conditional runs", files: snip("guides_conditionals_03"), task: "root-conditional", job: C,
			steps: map[string]string{"setup": "completed", "main": "completed"}},
		{name: "error-condition", files: snip("guides_conditionals_04"), task: "error-condition", job: F,
			steps: map[string]string{"check": "completed", "proceed": "failed"},
			check: func(t *testing.T, j stroem.Job) {
				require.Contains(t, stepNamed(j, "proceed").ErrorMessage, "when")
				require.Contains(t, stepNamed(j, "proceed").ErrorMessage, "check.output.status")
			}},
		{name: "if-else", files: snip("guides_conditionals_06"), task: "if-else", input: map[string]any{"mode": "slow"}, job: C,
			steps: map[string]string{"fast-path": "skipped/condition", "slow-path": "completed", "merge": "completed"}},
		{name: "multi-step-branch", files: snip("guides_conditionals_07"), task: "multi-step-branch", input: map[string]any{"enable_advanced": false}, job: C,
			steps: map[string]string{"advanced-setup": "skipped/condition", "advanced-step-1": "skipped/cascade", "advanced-step-2": "skipped/cascade", "summary": "skipped/cascade"}},
		{name: "input-conditional", files: snip("guides_conditionals_08"), task: "input-conditional", input: map[string]any{"skip_validation": true, "data": "d1"}, job: C,
			steps: map[string]string{"prepare": "completed", "validate": "skipped/condition", "process": "completed"},
			logs:  []string{"prepare-data d1"}},
		// Loops.
		{name: "parallel loop fan-in", files: snip("guides_loops_00"), task: "main", job: C,
			steps:    map[string]string{"fetch": "completed", "process": "completed", "process[0]": "completed", "process[1]": "completed", "process[2]": "completed", "aggregate": "completed"},
			logs:     []string{"Processing a", "Processing b", "Processing c"},
			stepLogs: map[string]string{"process[1]": "Processing b\nOUTPUT: {\"result\": \"done-b\"}\n", "process[2]": "Processing c\nOUTPUT: {\"result\": \"done-c\"}\n"},
			check: func(t *testing.T, j stroem.Job) {
				want := []any{map[string]any{"result": "done-a"}, map[string]any{"result": "done-b"}, map[string]any{"result": "done-c"}}
				require.Equal(t, want, stepNamed(j, "aggregate").Input["results"])
				require.Equal(t, []string{"process[0]", "process[1]", "process[2]"}, stepNamed(j, "process").Instances)
				in := stepNamed(j, "process[1]")
				require.Equal(t, "process", in.Loop)
				require.Equal(t, 1, *in.LoopIndex)
				require.Equal(t, map[string]any{"item": "b", "index": float64(1)}, in.Input)
			}},
		{name: "literal loop", files: snip("guides_loops_00"), task: "literal-loop", job: C,
			steps: map[string]string{"deploy": "completed", "deploy[0]": "completed", "deploy[1]": "completed", "deploy[2]": "completed"},
			logs:  []string{"deploying us-east-1 as instance 0", "deploying eu-west-1 as instance 1", "deploying ap-south-1 as instance 2"},
			check: func(t *testing.T, j stroem.Job) {
				require.Len(t, j.Output["deploy"], 3, "a loop as the last step: its list is the job's output")
			}},
		{name: "sequential loop", files: snip("guides_loops_00"), task: "sequential-loop", job: C,
			steps: map[string]string{"migrate": "completed", "migrate[0]": "completed", "migrate[1]": "completed", "migrate[2]": "completed"},
			check: func(t *testing.T, j stroem.Job) {
				for i := 1; i < 3; i++ {
					prev, cur := stepNamed(j, stroem.LoopInstanceName("migrate", i-1)), stepNamed(j, stroem.LoopInstanceName("migrate", i))
					require.False(t, cur.StartedAt.Before(*prev.CompletedAt), "instance %d started before %d ended", i, i-1)
				}
			}},
		{name: "sequential loop failure", files: snip("guides_loops_00"), task: "sequential-loop", input: map[string]any{"fail_on": "orders"}, job: F,
			steps: map[string]string{"migrate": "failed", "migrate[0]": "completed", "migrate[1]": "failed", "migrate[2]": "skipped/dependency"}},
		{name: "when before for_each", files: snip("guides_loops_00"), task: "guarded-loop", job: C,
			steps: map[string]string{"deploy": "skipped/condition"},
			check: func(t *testing.T, j stroem.Job) {
				require.Len(t, j.Steps, 1, "a skipped loop does not expand")
			}},
	}
	workspaces := map[string]string{}
	wsOf := map[string]string{}
	for _, r := range runs {
		key := strings.Join(r.files, ",")
		if wsOf[key] != "" {
			continue
		}
		dir := t.TempDir()
		require.NoError(t, os.MkdirAll(filepath.Join(dir, ".workflows"), 0o755))
		for _, f := range r.files {
			body, err := os.ReadFile(f)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(filepath.Join(dir, ".workflows", filepath.Base(f)), body, 0o644))
		}
		name := strings.NewReplacer("_", "-", ".yaml", "").Replace(filepath.Base(r.files[0]))
		workspaces[name] = dir
		wsOf[key] = name
	}
	s := startStack(t, stackOpts{workspace: workspaces["guides-conditionals-10"], moreWorkspaces: workspaces})
	ids := make([]string, len(runs))
	for i, r := range runs {
		code, body := s.do("POST", "/api/workspaces/"+wsOf[strings.Join(r.files, ",")]+"/tasks/"+r.task+"/execute", map[string]any{"input": r.input})
		require.Equal(t, http.StatusCreated, code, "%s: %s", r.name, body)
		var out struct {
			JobID string `json:"job_id"`
		}
		require.NoError(t, json.Unmarshal(body, &out))
		ids[i] = out.JobID
	}
	for i, r := range runs {
		t.Run(r.name, func(t *testing.T) {
			j := s.waitJob(ids[i])
			require.Equal(t, r.job, j.Status, describeJob(j))
			got := map[string]string{}
			for _, st := range j.Steps {
				v := string(st.Status)
				if st.SkipReason != "" {
					v += "/" + string(st.SkipReason)
				}
				got[st.StepName] = v
			}
			for step, want := range r.steps {
				require.Equal(t, want, got[step], "step %s\n%s", step, describeJob(j))
			}
			logs := s.logs(ids[i])
			for _, l := range r.logs {
				require.Contains(t, logs, l)
			}
			for step, want := range r.stepLogs {
				code, body := s.do("GET", "/api/jobs/"+ids[i]+"/steps/"+url.PathEscape(step)+"/logs?format=text", nil)
				require.Equal(t, http.StatusOK, code, string(body))
				require.Equal(t, want, string(body), "the log of %s holds its own lines only", step)
			}
			if r.check != nil {
				r.check(t, j)
			}
		})
	}

	// A step's stored log by ?step= reads an instance's lines as its path
	// does; a step the job does not have (an instance past the loop's end,
	// a typo) is a 404 in both forms, not an empty log.
	t.Run("stored log of a step the job does not have", func(t *testing.T) {
		id := ids[slices.IndexFunc(runs, func(r loopRun) bool { return r.name == "literal loop" })]
		s.waitJob(id)
		code, body := s.do("GET", "/api/jobs/"+id+"/logs?format=text&step="+url.QueryEscape("deploy[1]"), nil)
		require.Equal(t, http.StatusOK, code, string(body))
		require.Contains(t, string(body), "deploying eu-west-1 as instance 1")
		require.NotContains(t, string(body), "instance 0", "one step's lines only")
		for _, path := range []string{
			"/api/jobs/" + id + "/logs?step=" + url.QueryEscape("deploy[3]"),
			"/api/jobs/" + id + "/steps/" + url.PathEscape("deploy[3]") + "/logs",
			"/api/jobs/" + id + "/logs?format=jsonl&step=deplyo",
		} {
			code, body := s.do("GET", path, nil)
			require.Equal(t, http.StatusNotFound, code, "%s: %s", path, body)
			require.Contains(t, string(body), "has no step", path)
		}
	})
}

func stepNamed(j stroem.Job, name string) stroem.Step {
	for _, st := range j.Steps {
		if st.StepName == name {
			return st
		}
	}
	return stroem.Step{}
}
