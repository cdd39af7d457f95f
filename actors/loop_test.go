package actors

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
	"github.com/stroem/stroem/workspace"
)

const loopWorkflow = `
actions:
  emit:
    type: shell
    cmd: "echo {{ input.value }} {{ each.item | default(value='-') }}"
    input:
      value: { type: string }
  plain:
    type: shell
    cmd: "echo item={{ each.item }} index={{ each.index }}"
tasks:
  cond:
    input:
      flag: { type: string, default: "true" }
    flow:
      setup: { action: emit, input: { value: s } }
      check: { action: emit, depends_on: [setup], when: "{{ input.flag }}", input: { value: c } }
      process: { action: emit, depends_on: [setup, check], input: { value: p } }
      only-check: { action: emit, depends_on: [check], input: { value: o } }
      bad-when: { action: emit, depends_on: [setup], when: "{{ setup.output.nope }}", input: { value: b } }
  branches:
    input:
      fast: { type: boolean, default: true }
    flow:
      fast-path: { action: emit, when: "{{ input.fast }}", input: { value: f } }
      slow-path: { action: emit, when: "{{ not input.fast }}", input: { value: s } }
      merge: { action: emit, depends_on: [fast-path, slow-path], input: { value: m } }
  fail-chain:
    flow:
      a: { action: emit, input: { value: a } }
      b: { action: emit, depends_on: [a], input: { value: b } }
  loop:
    flow:
      fetch: { action: emit, input: { value: f } }
      each-item:
        action: emit
        depends_on: [fetch]
        for_each: "{{ fetch.output.items }}"
        input: { value: "{{ each.item }}-{{ each.index }}" }
      aggregate:
        action: emit
        depends_on: [each-item]
        input: { value: "{{ each_item.output | length }}:{{ each_item.output[1].r }}" }
  tolerant:
    flow:
      each-item:
        action: emit
        for_each: [a, b, c]
        continue_on_failure: true
        retry: { max_attempts: 2 }
        input: { value: "{{ each.item }}" }
      after:
        action: emit
        depends_on: [each-item]
        input: { value: "{{ each_item.output | json_encode() }}" }
  literal:
    flow:
      deploy:
        action: plain
        for_each: ["us", "eu"]
        sequential: true
  guarded:
    input:
      go: { type: boolean, default: false }
    flow:
      deploy:
        action: plain
        for_each: ["us", "eu"]
        when: "{{ input.go }}"
`

func TestWhenFalsyValues(t *testing.T) {
	t.Parallel()
	b := newBundle(t, loopWorkflow)
	for flag, runs := range map[string]bool{
		"": false, "false": false, "False": false, "FALSE": false, "0": false, "null": false, "NULL": false,
		"none": false, "None": false, " false ": false,
		"{}": false, "[]": false, "{\"a\":1}": true, "[0]": true,
		"true": true, "1": true, "yes": true, "no": true, "00": true, "anything": true,
	} {
		p, s := b.newJob(t, "cond", map[string]any{"flag": flag})
		run(t, p, s, "setup", true, map[string]any{"x": 1})
		if runs {
			require.Equal(t, stroem.StepReady, s.Find("check").Status, "flag %q", flag)
			continue
		}
		check := s.Find("check")
		require.Equal(t, stroem.StepSkipped, check.Status, "flag %q", flag)
		require.Equal(t, stroem.SkipCondition, stroem.SkipReasonOf(check.Status, check.ErrorMessage))
		// Convergence: setup completed, check skipped by its condition.
		require.Equal(t, stroem.StepReady, s.Find("process").Status, "flag %q", flag)
		// Cascade: the only dependency was skipped by a condition.
		only := s.Find("only-check")
		require.Equal(t, stroem.StepSkipped, only.Status)
		require.Equal(t, stroem.SkipCascade, stroem.SkipReasonOf(only.Status, only.ErrorMessage))
	}
}

func TestWhenRenderErrorFailsTheStep(t *testing.T) {
	t.Parallel()
	p, s := newBundle(t, loopWorkflow).newJob(t, "cond", nil)
	run(t, p, s, "setup", true, map[string]any{"x": 1})
	st := s.Find("bad-when")
	require.Equal(t, stroem.StepFailed, st.Status)
	require.Contains(t, st.ErrorMessage, "when")
}

func TestWhenConvergenceAndJobOutcome(t *testing.T) {
	t.Parallel()
	b := newBundle(t, loopWorkflow)
	for _, fast := range []bool{true, false} {
		p, s := b.newJob(t, "branches", map[string]any{"fast": fast})
		taken, other := "fast-path", "slow-path"
		if !fast {
			taken, other = other, taken
		}
		require.Equal(t, stroem.StepSkipped, s.Find(other).Status, "root conditions are decided at creation")
		run(t, p, s, taken, true, nil)
		run(t, p, s, "merge", true, map[string]any{"done": true})
		require.Equal(t, stroem.JobCompleted, s.Job.Status)
	}
}

// A failed step's dependents are skipped for their dependency, not for a
// condition; in a sequential loop, the instances after a failed one are
// skipped so, and the loop fails.
func TestFailureSkipsDependents(t *testing.T) {
	t.Parallel()
	b := newBundle(t, loopWorkflow)
	for _, c := range []struct {
		task, fail, skipped string
		failed              []string
	}{
		{task: "fail-chain", fail: "a", skipped: "b"},
		{task: "literal", fail: "deploy[0]", skipped: "deploy[1]", failed: []string{"deploy"}},
	} {
		p, s := b.newJob(t, c.task, nil)
		run(t, p, s, c.fail, false, nil)
		st := s.Find(c.skipped)
		require.Equal(t, stroem.StepSkipped, st.Status, c.task)
		require.Equal(t, stroem.SkipDependency, stroem.SkipReasonOf(st.Status, st.ErrorMessage), c.task)
		for _, name := range c.failed {
			require.Equal(t, stroem.StepFailed, s.Find(name).Status, c.task)
		}
		require.Equal(t, stroem.JobFailed, s.Job.Status, c.task)
	}
}

func TestForEachExpandsRunsAndAggregates(t *testing.T) {
	t.Parallel()
	p, s := newBundle(t, loopWorkflow).newJob(t, "loop", nil)
	run(t, p, s, "fetch", true, map[string]any{"items": []any{"a", "b", "c"}})
	loop := s.Find("each-item")
	require.Equal(t, stroem.StepPending, loop.Status, "the loop step waits for its instances")
	require.Equal(t, []any{"a", "b", "c"}, loop.Input["items"])
	require.Equal(t, s.Now, *loop.StartedAt, "a loop starts when it expands")
	for i, item := range []string{"a", "b", "c"} {
		in := s.Find(fmt.Sprintf("each-item[%d]", i))
		require.NotNil(t, in)
		require.Equal(t, stroem.StepReady, in.Status, "parallel: all ready at once")
		require.Equal(t, map[string]any{"value": fmt.Sprintf("%s-%d", item, i)}, in.Input)
	}
	n := s.Len()
	advance(p, s) // deciding again expands nothing again
	require.Equal(t, n, s.Len())

	run(t, p, s, "each-item[1]", true, map[string]any{"r": "done-b"})
	run(t, p, s, "each-item[0]", true, map[string]any{"r": "done-a"})
	require.Equal(t, stroem.StepPending, s.Find("aggregate").Status)
	run(t, p, s, "each-item[2]", true, map[string]any{"r": "done-c"})
	require.Equal(t, stroem.StepCompleted, s.Find("each-item").Status)
	require.Equal(t, map[string]any{"value": "3:done-b"}, s.Find("aggregate").Input)
	run(t, p, s, "aggregate", true, nil)
	require.Equal(t, stroem.JobCompleted, s.Job.Status)
}

func TestForEachInstanceFailureFailsTheLoop(t *testing.T) {
	t.Parallel()
	p, s := newBundle(t, loopWorkflow).newJob(t, "loop", nil)
	run(t, p, s, "fetch", true, map[string]any{"items": []any{"a", "b"}})
	run(t, p, s, "each-item[0]", false, nil)
	require.Equal(t, stroem.StepPending, s.Find("each-item").Status, "the other instance still runs")
	require.Equal(t, stroem.StepReady, s.Find("each-item[1]").Status)
	run(t, p, s, "each-item[1]", true, nil)
	require.Equal(t, stroem.StepFailed, s.Find("each-item").Status)
	require.Equal(t, "1 of 2 instances failed", s.Find("each-item").ErrorMessage)
	require.Equal(t, stroem.StepSkipped, s.Find("aggregate").Status)
	require.Equal(t, stroem.JobFailed, s.Job.Status)
}

func TestForEachBadLists(t *testing.T) {
	t.Parallel()
	b := newBundle(t, loopWorkflow)
	many := make([]any, workspace.MaxLoopItems+1)
	for out, want := range map[string]struct {
		v      any
		status stroem.StepStatus
		msg    string
	}{
		"empty":     {[]any{}, stroem.StepSkipped, "no items"},
		"string":    {"abc", stroem.StepFailed, "want a list"},
		"object":    {map[string]any{"a": 1}, stroem.StepFailed, "an object"},
		"too many":  {many, stroem.StepFailed, "at most 10000"},
		"undefined": {nil, stroem.StepFailed, "for_each"},
	} {
		p, s := b.newJob(t, "loop", nil)
		o := map[string]any{"items": want.v}
		if want.v == nil {
			o = map[string]any{}
		}
		run(t, p, s, "fetch", true, o)
		st := s.Find("each-item")
		require.Equal(t, want.status, st.Status, out)
		require.Contains(t, st.ErrorMessage, want.msg, out)
		if want.status == stroem.StepSkipped {
			require.Equal(t, stroem.SkipEmptyLoop, stroem.SkipReasonOf(st.Status, st.ErrorMessage))
			agg := s.Find("aggregate")
			require.Equal(t, stroem.SkipCascade, stroem.SkipReasonOf(agg.Status, agg.ErrorMessage), "its only dependency was skipped, not failed")
			require.Equal(t, stroem.JobCompleted, s.Job.Status)
		}
	}
}

func TestForEachSequentialLiteralAndEachInAction(t *testing.T) {
	t.Parallel()
	p, s := newBundle(t, loopWorkflow).newJob(t, "literal", nil)
	require.Equal(t, stroem.StepReady, s.Find("deploy[0]").Status, "a root loop expands at creation")
	require.Equal(t, stroem.StepPending, s.Find("deploy[1]").Status, "sequential: one at a time")
	spec, err := renderSpec(p, persistence.ClaimedStep{JobID: "j", StepName: "deploy[1]", Each: eachOf(p, s, "deploy[1]")})
	require.NoError(t, err)
	require.Equal(t, "echo item=eu index=1", spec.Cmd)
	run(t, p, s, "deploy[0]", true, nil)
	require.Equal(t, stroem.StepReady, s.Find("deploy[1]").Status)
	run(t, p, s, "deploy[1]", true, map[string]any{"ok": true})
	require.Equal(t, stroem.JobCompleted, s.Job.Status)
	require.Equal(t, map[string]any{"deploy": []any{map[string]any{}, map[string]any{"ok": true}}}, s.Job.Output)
}

func TestWhenBeforeForEach(t *testing.T) {
	t.Parallel()
	_, s := newBundle(t, loopWorkflow).newJob(t, "guarded", nil)
	require.Equal(t, stroem.StepSkipped, s.Find("deploy").Status)
	require.Nil(t, s.Find("deploy[0]"), "a skipped loop does not expand")
	require.Equal(t, stroem.JobCompleted, s.Job.Status)
}

func TestCancelDuringLoopWaitsForRunningInstances(t *testing.T) {
	t.Parallel()
	p, s := newBundle(t, loopWorkflow).newJob(t, "loop", nil)
	run(t, p, s, "fetch", true, map[string]any{"items": []any{"a", "b"}})
	claim(s, "each-item[0]", "w")
	require.NoError(t, evCancel{}.apply(p, s))
	advance(p, s)
	require.Equal(t, stroem.StepCancelled, s.Find("each-item[1]").Status)
	require.False(t, s.Job.Status.Terminal(), "an instance still runs")
	require.NoError(t, evComplete{step: "each-item[0]", c: stroem.Completion{WorkerID: "w", Attempt: 1, ExitCode: 1}}.apply(p, s))
	advance(p, s)
	require.Equal(t, stroem.JobCancelled, s.Job.Status)
}

func TestForEachContinueOnFailureAndRetry(t *testing.T) {
	t.Parallel()
	p, s := newBundle(t, loopWorkflow).newJob(t, "tolerant", nil)
	require.Equal(t, 2, s.Find("each-item[1]").MaxAttempts, "instances take the step's retry")
	run(t, p, s, "each-item[1]", false, nil)
	require.Equal(t, stroem.StepReady, s.Find("each-item[1]").Status, "retried")
	run(t, p, s, "each-item[1]", false, nil)
	require.Equal(t, stroem.StepFailed, s.Find("each-item[1]").Status)
	run(t, p, s, "each-item[0]", true, map[string]any{"n": 0})
	run(t, p, s, "each-item[2]", true, map[string]any{"n": 2})
	loop := s.Find("each-item")
	require.Equal(t, stroem.StepCompleted, loop.Status, "continue_on_failure: the loop completes")
	require.Equal(t, "1 of 3 instances failed (continue_on_failure)", loop.ErrorMessage)
	// (a JSON list given as text to a string input arrives as the list)
	require.Equal(t, []any{map[string]any{"n": float64(0)}, nil, map[string]any{"n": float64(2)}}, s.Find("after").Input["value"], "a failed instance is null")
	run(t, p, s, "after", true, nil)
	require.Equal(t, stroem.JobCompleted, s.Job.Status)
}
