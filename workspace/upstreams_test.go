package workspace

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// reachesBrute says whether start depends on step, walking every path.
func reachesBrute(deps map[string][]string, start, step string) bool {
	seen := map[string]bool{}
	stack := []string{start}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, d := range deps[n] {
			if !seen[d] {
				seen[d] = true
				stack = append(stack, d)
			}
		}
	}
	return seen[step]
}

// The walks answer as a walk of every path does, in any order of
// questions, with cycles too (a task with more cycles than are reported
// keeps some).
func TestUpstreamsAnswerAsEveryPathDoes(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(3, 4))
	for round := range 300 {
		n := 2 + r.IntN(12)
		names := make([]string, n)
		for i := range names {
			names[i] = fmt.Sprintf("s%d", i)
		}
		deps := map[string][]string{}
		cyclic := round%3 == 0
		for i, name := range names {
			deps[name] = nil
			for j := range names {
				if (j < i || (cyclic && j != i)) && r.IntN(4) == 0 {
					deps[name] = append(deps[name], names[j])
				}
			}
		}
		up := NewUpstreams(deps)
		walks := map[string]*UpstreamWalk{}
		for range 3 * n {
			start, step := names[r.IntN(n)], names[r.IntN(n)]
			if walks[start] == nil {
				walks[start] = up.From(start)
			}
			require.Equal(t, reachesBrute(deps, start, step), walks[start].Has(step),
				"round %d: does %s depend on %s? deps %v", round, start, step, deps)
		}
	}
}

// What a step learnt about another serves the steps after it: in a chain
// whose every step asks about the first, each walk takes one step.
func TestUpstreamsRememberWhatDependsOnAStep(t *testing.T) {
	t.Parallel()
	deps := map[string][]string{"s0": nil}
	for i := 1; i < 100; i++ {
		deps[fmt.Sprintf("s%d", i)] = []string{fmt.Sprintf("s%d", i-1)}
	}
	up := NewUpstreams(deps)
	for i := 1; i < 100; i++ {
		w := up.From(fmt.Sprintf("s%d", i))
		require.True(t, w.Has("s0"))
		require.Len(t, w.seen, 1, "s%d walked further than its own dependency", i)
	}
	require.False(t, up.From("s0").Has("s1"))
}

// largeTaskWorkspace writes a workspace whose one task has n steps, in one
// of the shapes below, and returns its folder.
func largeTaskWorkspace(t testing.TB, shape string, n int) string {
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, ".workflows"), 0o755))
	var w strings.Builder
	w.WriteString("actions:\n  a:\n    type: shell\n    cmd: echo \"$X\"\n    input:\n      x: { type: string }\n\ntasks:\n  big:\n    flow:\n")
	for i := range n {
		fmt.Fprintf(&w, "      s%05d:\n        action: a\n", i)
		switch {
		case shape == "fanout":
			fmt.Fprintf(&w, "        input: { x: \"%d\" }\n", i)
		case shape == "chain-first" && i > 0: // every step uses the first one's output
			fmt.Fprintf(&w, "        depends_on: [s%05d]\n        input: { x: \"{{ s00000.output.v }}\" }\n", i-1)
		case shape == "chain-last" && i > 0: // every step uses the one before's
			fmt.Fprintf(&w, "        depends_on: [s%05d]\n        input: { x: \"{{ s%05d.output.v }}\" }\n", i-1, i-1)
		default:
			w.WriteString("        input: { x: \"\" }\n")
		}
	}
	if shape == "fanout" { // and one step that uses every other step's output
		w.WriteString("      all:\n        action: a\n        depends_on: [")
		for i := range n {
			if i > 0 {
				w.WriteString(", ")
			}
			fmt.Fprintf(&w, "s%05d", i)
		}
		w.WriteString("]\n        input: { x: \"")
		for i := range n {
			fmt.Fprintf(&w, "{{ s%05d.output.v }}", i)
		}
		w.WriteString("\" }\n")
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".workflows", "big.yaml"), []byte(w.String()), 0o644))
	return dir
}

// allocatedLoading returns the bytes allocated while dir loads.
func allocatedLoading(t *testing.T, dir string) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	ws, err := Load(dir)
	runtime.ReadMemStats(&after)
	require.NoError(t, err)
	require.Empty(t, ws.Problems)
	require.Contains(t, ws.Tasks, "big")
	return after.TotalAlloc - before.TotalAlloc
}

// Loading a task grows linearly with its steps, measured in bytes
// allocated (not in time: the machine's speed varies). With every step's
// upstream set made up front, and the task's step names mapped again for
// each step, four times the steps allocated 14.5 to 15 times the bytes.
func TestLoadingGrowsLinearlyWithTheSteps(t *testing.T) {
	// Not parallel: other tests' allocations would count.
	for _, shape := range []string{"fanout", "chain-first", "chain-last"} {
		small := allocatedLoading(t, largeTaskWorkspace(t, shape, 500))
		large := allocatedLoading(t, largeTaskWorkspace(t, shape, 2000))
		ratio := float64(large) / float64(small)
		t.Logf("%s: 500 steps %d KB, 2,000 steps %d KB: ×%.1f", shape, small>>10, large>>10, ratio)
		require.Less(t, ratio, 6.0, "%s: four times the steps allocated ×%.1f the bytes", shape, ratio)
	}
}

// go test -run '^$' -bench LoadLargeTask ./workspace
func BenchmarkLoadLargeTask(b *testing.B) {
	for _, shape := range []string{"fanout", "chain-first", "chain-last"} {
		b.Run(shape, func(b *testing.B) {
			dir := largeTaskWorkspace(b, shape, 10000)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Load(dir); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
