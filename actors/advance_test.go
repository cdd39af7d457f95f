package actors

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
	"github.com/stroem/stroem/workspace"
)

// randomFlowWorkflow is a task of n steps, each depending on up to three
// earlier ones, some with continue_on_failure, a when condition on an
// input flag, or a loop (sequential or not).
func randomFlowWorkflow(r *rand.Rand, n int) string {
	var b strings.Builder
	b.WriteString(`
actions:
  emit:
    type: shell
    cmd: "echo {{ input.value }}"
    input:
      value: { type: string }
tasks:
  random:
    input:
      on: { type: boolean, default: true }
      off: { type: boolean, default: false }
    flow:
`)
	for i := range n {
		fmt.Fprintf(&b, "      s%02d:\n        action: emit\n", i)
		var deps []string
		for k := 0; k < 3 && i > 0; k++ {
			if d := fmt.Sprintf("s%02d", r.IntN(i)); r.IntN(3) > 0 && !strings.Contains(strings.Join(deps, ","), d) {
				deps = append(deps, d)
			}
		}
		if len(deps) > 0 {
			fmt.Fprintf(&b, "        depends_on: [%s]\n", strings.Join(deps, ", "))
		}
		input := "v"
		switch r.IntN(9) {
		case 0:
			b.WriteString("        continue_on_failure: true\n")
		case 1:
			b.WriteString("        when: \"{{ input.off }}\"\n")
		case 2:
			b.WriteString("        when: \"{{ input.on }}\"\n")
		case 3:
			b.WriteString("        for_each: [a, b, c]\n")
		case 4:
			b.WriteString("        for_each: [a, b]\n        sequential: true\n")
		case 5:
			b.WriteString("        retry: { max_attempts: 2 }\n")
		case 6:
			// Every instance fails as it is made ready: the loop ends in
			// the transition that expanded it.
			b.WriteString("        for_each: [a, b]\n")
			input = "{{ each.nope.nope }}"
		}
		fmt.Fprintf(&b, "        input: { value: %q }\n", input)
	}
	return b.String()
}

// A transition that advances only what it changed (advanceFrom, as a
// JobActor's transitions do) leaves the job exactly as advancing every
// step would: random jobs, driven by random reports (success, failure,
// a lost lease, a cancel), compared step by step after every transition,
// with and without the finished steps remembered between transitions.
func TestAdvanceChangedMatchesAdvanceAll(t *testing.T) {
	t.Parallel()
	type job struct {
		yaml, task string
		input      map[string]any
	}
	var jobs []job
	for _, task := range []string{"chain", "retrying", "tolerant", "broken"} {
		jobs = append(jobs, job{testWorkflow, task, nil})
	}
	for _, task := range []string{"cond", "branches", "fail-chain", "loop", "tolerant", "literal", "guarded"} {
		jobs = append(jobs, job{loopWorkflow, task, nil})
	}
	r := rand.New(rand.NewPCG(23, 1))
	for range 12 {
		jobs = append(jobs, job{randomFlowWorkflow(r, 30), "random", nil})
	}
	for ji, jb := range jobs {
		b := newBundle(t, jb.yaml, map[string]string{"deploy.sh": "#!/bin/sh\n"})
		for seed := range 6 {
			r := rand.New(rand.NewPCG(uint64(ji), uint64(seed)))
			var g *progress
			if seed%2 == 0 {
				g = &progress{}
			}
			p, s := b.newJob(t, jb.task, jb.input)
			s.Seal()
			if g != nil {
				g.observeAll(s)
			}
			for round := 0; !s.Job.Status.Terminal() && round < 500; round++ {
				ev := randomEvent(r, p, s)
				if ev == nil {
					break
				}
				changed, all := s.Share(), s.Share()
				require.NoError(t, ev(changed))
				require.NoError(t, ev(all))
				advanceFrom(p, changed, g, false)
				advance(p, all)
				where := fmt.Sprintf("job %d (%s) seed %d round %d", ji, jb.task, seed, round)
				require.Equal(t, all.Job, changed.Job, where)
				require.Equal(t, all.Len(), changed.Len(), where)
				for i := range all.Len() {
					require.Equal(t, all.At(i), changed.At(i), where)
				}
				changed.Seal()
				s = changed
				if g != nil {
					g.observe(s, s.Changed())
				}
			}
			require.True(t, s.Job.Status.Terminal(), "job %d (%s) seed %d ends: %s", ji, jb.task, seed, s.Job.Status)
		}
	}
}

// randomEvent picks what happens next to s: a ready step is claimed and
// reports success or failure, a running one loses its lease, or (rarely)
// the job is cancelled; nil when nothing can happen. The event changes the
// state given as a claim and a report would.
func randomEvent(r *rand.Rand, p *plan, s *persistence.JobState) func(*persistence.JobState) error {
	var ready []string
	for _, st := range s.All() {
		if st.Status == stroem.StepReady || st.Status == stroem.StepRunning {
			ready = append(ready, st.Name)
		}
	}
	if len(ready) == 0 {
		return nil
	}
	name := ready[r.IntN(len(ready))]
	kind := r.IntN(20)
	ok := r.IntN(3) > 0
	return func(s *persistence.JobState) error {
		switch {
		case kind == 0:
			return evCancel{}.apply(p, s)
		case s.Find(name).Status == stroem.StepRunning && kind < 4:
			st := s.Mut(name)
			st.LeaseExpiresAt = nil
			return evLeaseExpired{step: name, attempt: st.Attempt}.apply(p, s)
		}
		st := s.Find(name)
		if st.Status == stroem.StepReady {
			st = claim(s, name, "w")
		}
		c := stroem.Completion{WorkerID: "w", Attempt: st.Attempt, Output: map[string]any{"items": []any{1, 2}, "v": "x", "r": "y"}}
		if !ok {
			c.ExitCode = 1
		}
		return evComplete{step: name, c: c}.apply(p, s)
	}
}

// BenchmarkTransitionFanOut10k is one transition of a running job of
// 10,000 independent steps: a step's report applied and the job advanced,
// as a JobActor does it (advanceFrom: what changed) and by advancing every
// step (advance). The actors' part of a transition should not cost what the
// job holds.
func BenchmarkTransitionFanOut10k(b *testing.B) {
	const n = 10_000
	var y strings.Builder
	y.WriteString("actions:\n  emit:\n    type: shell\n    cmd: \"true\"\ntasks:\n  fan:\n    flow:\n")
	for i := range n {
		fmt.Fprintf(&y, "      s%05d: { action: emit }\n", i)
	}
	p, s := newBundle(b, y.String()).newJob(b, "fan", nil)
	for i := range n {
		claim(s, fmt.Sprintf("s%05d", i), "w")
	}
	s.Seal()
	for _, mode := range []string{"changed", "all"} {
		b.Run(mode, func(b *testing.B) {
			g := &progress{}
			g.observeAll(s)
			i := 0
			for b.Loop() {
				b.StopTimer() // the store's part: a copy of the step pointers
				st := s.Share()
				b.StartTimer()
				name := fmt.Sprintf("s%05d", i%n)
				i++
				_ = evComplete{step: name, c: stroem.Completion{WorkerID: "w", Attempt: 1}}.apply(p, st)
				if mode == "changed" {
					advanceFrom(p, st, g, false)
				} else {
					advance(p, st)
				}
			}
		})
	}
}

// BenchmarkTransitionLoop10k is one transition of a running loop of 10,000
// instances: an instance's report applied and the job advanced, as in
// BenchmarkTransitionFanOut10k.
func BenchmarkTransitionLoop10k(b *testing.B) {
	p, s := newBundle(b, loopWorkflow).newJob(b, "loop", nil)
	items := make([]any, workspace.MaxLoopItems)
	for i := range items {
		items[i] = i
	}
	st := claim(s, "fetch", "w")
	if err := (evComplete{step: "fetch", c: stroem.Completion{WorkerID: "w", Attempt: st.Attempt, Output: map[string]any{"items": items}}}).apply(p, s); err != nil {
		b.Fatal(err)
	}
	advance(p, s)
	for i := range items {
		claim(s, stroem.LoopInstanceName("each-item", i), "w")
	}
	s.Seal()
	for _, mode := range []string{"changed", "all"} {
		b.Run(mode, func(b *testing.B) {
			g := &progress{}
			g.observeAll(s)
			i := 0
			for b.Loop() {
				b.StopTimer() // the store's part: a copy of the step pointers
				st := s.Share()
				b.StartTimer()
				name := stroem.LoopInstanceName("each-item", i%len(items))
				i++
				_ = evComplete{step: name, c: stroem.Completion{WorkerID: "w", Attempt: 1}}.apply(p, st)
				if mode == "changed" {
					advanceFrom(p, st, g, false)
				} else {
					advance(p, st)
				}
			}
		})
	}
}

// An approval gate whose message cannot be rendered fails as the
// transition that made it ready suspends it; its dependents are skipped
// (a loop of such gates ends) by that transition, as for any failed step.
// Advancing only what later transitions changed never looks at the gate
// again: skipped any later, they were left pending and the job never
// ended.
func TestGateFailedAtSuspendSkipsDependents(t *testing.T) {
	t.Parallel()
	const workflow = `
actions:
  emit:
    type: shell
    cmd: "echo {{ input.value }}"
    input:
      value: { type: string }
  gate:
    type: approval
    message: "{{ input.nope.nope }}"
tasks:
  gated:
    flow:
      first: { action: emit, input: { value: a } }
      slow: { action: emit, input: { value: b } }
      approve: { action: gate, depends_on: [first] }
      after: { action: emit, depends_on: [approve], input: { value: c } }
      gates: { action: gate, depends_on: [first], for_each: [x, y] }
      past: { action: emit, depends_on: [gates], input: { value: d } }
`
	p, s := newBundle(t, workflow).newJob(t, "gated", nil)
	s.Seal()
	g := &progress{}
	g.observeAll(s)
	// step is claimed and completes in a transition of its own, advanced
	// as a JobActor's transitions are.
	step := func(name string) {
		n := s.Share()
		st := claim(n, name, "w")
		require.NoError(t, evComplete{step: name, c: stroem.Completion{WorkerID: "w", Attempt: st.Attempt}}.apply(p, n))
		advanceFrom(p, n, g, false)
		n.Seal()
		g.observe(n, n.Changed())
		s = n
	}
	step("first")
	require.Equal(t, stroem.StepFailed, s.Find("approve").Status)
	require.Contains(t, s.Find("approve").ErrorMessage, "approval message")
	require.Equal(t, stroem.StepSkipped, s.Find("after").Status, "a failed gate's dependents are skipped")
	require.Equal(t, stroem.StepFailed, s.Find("gates").Status, "a loop whose gates all failed ends")
	require.Equal(t, stroem.StepSkipped, s.Find("past").Status)
	step("slow")
	require.Equal(t, stroem.JobFailed, s.Job.Status, "every step ended")
}

// TestAdvanceChangedMatchesAdvanceAll with approval gates among the steps,
// some of whose messages do not render (the gate fails as it is
// suspended), decided at random.
func TestAdvanceChangedMatchesAdvanceAllWithGates(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(7, 7))
	for ji := range 20 {
		wf := strings.Replace(randomFlowWorkflow(r, 25), "tasks:\n", `  gate:
    type: approval
    message: "ok {{ input.value }}"
  badgate:
    type: approval
    message: "{{ input.nope.nope }}"
tasks:
`, 1)
		lines := strings.Split(wf, "\n")
		for i, l := range lines {
			if l == "        action: emit" {
				switch r.IntN(6) {
				case 0:
					lines[i] = "        action: gate"
				case 1:
					lines[i] = "        action: badgate"
				}
			}
		}
		b := newBundle(t, strings.Join(lines, "\n"))
		for seed := range 4 {
			r := rand.New(rand.NewPCG(uint64(ji), uint64(seed)))
			g := &progress{}
			p, s := b.newJob(t, "random", nil)
			s.Seal()
			g.observeAll(s)
			for round := 0; !s.Job.Status.Terminal() && round < 500; round++ {
				var open []string
				for _, st := range s.All() {
					switch st.Status {
					case stroem.StepReady, stroem.StepRunning, stroem.StepSuspended:
						open = append(open, st.Name)
					}
				}
				require.NotEmpty(t, open, "job %d seed %d round %d: an unfinished job has a step to move", ji, seed, round)
				name, ok := open[r.IntN(len(open))], r.IntN(3) > 0
				ev := func(s *persistence.JobState) error {
					st := s.Find(name)
					if st.Status == stroem.StepSuspended {
						return evApprove{step: name, d: Decision{Approved: ok, By: "ann"}}.apply(p, s)
					}
					if st.Status == stroem.StepReady {
						st = claim(s, name, "w")
					}
					c := stroem.Completion{WorkerID: "w", Attempt: st.Attempt, Output: map[string]any{"items": []any{1, 2}, "v": "x"}}
					if !ok {
						c.ExitCode = 1
					}
					return evComplete{step: name, c: c}.apply(p, s)
				}
				changed, all := s.Share(), s.Share()
				require.NoError(t, ev(changed))
				require.NoError(t, ev(all))
				advanceFrom(p, changed, g, false)
				advance(p, all)
				where := fmt.Sprintf("job %d seed %d round %d", ji, seed, round)
				require.Equal(t, all.Job, changed.Job, where)
				require.Equal(t, all.Len(), changed.Len(), where)
				for i := range all.Len() {
					require.Equal(t, all.At(i), changed.At(i), where)
				}
				changed.Seal()
				s = changed
				g.observe(s, s.Changed())
			}
			require.True(t, s.Job.Status.Terminal(), "job %d seed %d ends: %s", ji, seed, s.Job.Status)
		}
	}
}
