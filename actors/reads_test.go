package actors

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
)

const readsWorkflow = `
actions:
  emit:
    type: shell
    cmd: echo
    input:
      value: { type: string }
  gate:
    type: approval
    message: "Ship {{ b.output.v }}?"
tasks:
  chain:
    flow:
      a: { action: emit, input: { value: a } }
      b: { action: emit, depends_on: [a], input: { value: b } }
      c: { action: emit, depends_on: [b], input: { value: "'a' is a letter" } }
      d:
        action: emit
        depends_on: [c]
        when: "{{ b.output.go == 'yes' }}"
        input: { value: "{{ a.output.v }}-{{ c.output.v }}" }
      e: { action: emit, input: { value: "{{ d.output.v | default('none') }}" } }
      ok: { action: gate, depends_on: [d] }
`

// A step's renders get the outputs of the upstream steps its templates
// name — through any number of steps between, in its input, when or an
// approval's message — and only those.
func TestStepReadsTheUpstreamOutputsItsTemplatesName(t *testing.T) {
	t.Parallel()
	b := newBundle(t, readsWorkflow)
	p, s := b.newJob(t, "chain", nil)
	reads := func(step string) []string { return p.steps[step].reads }
	require.Equal(t, []string{"a", "b", "c"}, reads("d"), "named in its input and its when, two and one steps up")
	require.Equal(t, []string{"a"}, reads("c"), "a word in a string counts: it only adds an output")
	require.Empty(t, reads("e"), "d is not upstream of e")
	require.Equal(t, []string{"b"}, reads("ok"), "the approval's message names b")
	require.Empty(t, reads("b"), "a is upstream of b but not named")

	run(t, p, s, "a", true, map[string]any{"v": "A"})
	run(t, p, s, "b", true, map[string]any{"v": "B", "go": "yes"})
	run(t, p, s, "c", true, map[string]any{"v": "C"})
	require.Equal(t, stroem.StepReady, s.Find("d").Status, "when saw b's output")
	require.Equal(t, map[string]any{"value": "A-C"}, s.Find("d").Input)
	require.Equal(t, map[string]any{"value": "none"}, s.Find("e").Input)
	run(t, p, s, "d", true, map[string]any{"v": "D"})
	ok := s.Find("ok")
	require.Equal(t, stroem.StepSuspended, ok.Status)
	require.Equal(t, "Ship B?", outMap(ok.Output)["message"])
}

// bigChainWorkflow is a chain of n steps, each naming the first step's
// output.
func bigChainWorkflow(n int) string {
	var w strings.Builder
	w.WriteString("actions:\n  emit:\n    type: shell\n    cmd: echo\n    input:\n      value: { type: string }\ntasks:\n  big:\n    flow:\n")
	for i := range n {
		fmt.Fprintf(&w, "      s%05d:\n        action: emit\n", i)
		if i > 0 {
			fmt.Fprintf(&w, "        depends_on: [s%05d]\n        input: { value: \"{{ s00000.output.v }}\" }\n", i-1)
		} else {
			w.WriteString("        input: { value: x }\n")
		}
	}
	return w.String()
}

// Compiling a job's plan grows linearly with its steps, in bytes
// allocated (not in time: the machine's speed varies). Every step's full
// set of upstream steps, made up front, was quadratic: four times the
// steps allocated 11.7 times the bytes.
func TestPlanGrowsLinearlyWithTheSteps(t *testing.T) {
	// Not parallel: other tests' allocations would count.
	compiled := func(n int) uint64 {
		ws := loadWorkspace(t, bigChainWorkflow(n))
		id, body, err := newSnapshot(ws, ws.Tasks["big"])
		require.NoError(t, err)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		p, err := compilePlan(id, body)
		runtime.ReadMemStats(&after)
		require.NoError(t, err)
		require.Equal(t, []string{"s00000"}, p.steps[fmt.Sprintf("s%05d", n-1)].reads)
		return after.TotalAlloc - before.TotalAlloc
	}
	small, large := compiled(500), compiled(2000)
	ratio := float64(large) / float64(small)
	t.Logf("500 steps %d KB, 2,000 steps %d KB: ×%.1f", small>>10, large>>10, ratio)
	require.Less(t, ratio, 6.0, "four times the steps allocated ×%.1f the bytes", ratio)
}
