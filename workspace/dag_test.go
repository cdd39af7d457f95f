package workspace

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
)

// Flows used across the DAG tests.
var (
	flowLinear  = map[string][]string{"a": nil, "b": {"a"}, "c": {"b"}, "d": {"c"}}
	flowFanOut  = map[string][]string{"root": nil, "x": {"root"}, "y": {"root"}, "z": {"root"}}
	flowFanIn   = map[string][]string{"x": nil, "y": nil, "z": nil, "join": {"x", "y", "z"}}
	flowDiamond = map[string][]string{"top": nil, "left": {"top"}, "right": {"top"}, "bottom": {"left", "right"}}
	// Two independent branches: a→b→c and p→q.
	flowTwoBranches = map[string][]string{"a": nil, "b": {"a"}, "c": {"b"}, "p": nil, "q": {"p"}}
)

func TestFindCycle(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		deps map[string][]string
		want []string
	}{
		{"empty", nil, nil},
		{"acyclic linear", flowLinear, nil},
		{"acyclic diamond", flowDiamond, nil},
		{"length 1", map[string][]string{"a": {"a"}}, []string{"a"}},
		{"length 1 among others", map[string][]string{"a": nil, "b": {"a", "b"}}, []string{"b"}},
		{"length 2", map[string][]string{"a": {"b"}, "b": {"a"}}, []string{"a", "b"}},
		{"length 3", map[string][]string{"a": {"b"}, "b": {"c"}, "c": {"a"}}, []string{"a", "b", "c"}},
		// The DFS enters at "a" but the cycle is reported from its smallest name.
		{"length 3 rotated", map[string][]string{"a": {"z"}, "z": {"y"}, "y": {"x"}, "x": {"z"}}, []string{"x", "z", "y"}},
		{"length 5", map[string][]string{"s1": {"s2"}, "s2": {"s3"}, "s3": {"s4"}, "s4": {"s5"}, "s5": {"s1"}}, []string{"s1", "s2", "s3", "s4", "s5"}},
		{"unknown dependency ignored", map[string][]string{"a": {"ghost"}}, nil},
		{"cycle behind a diamond", map[string][]string{"top": nil, "l": {"top", "bottom"}, "r": {"top"}, "bottom": {"l", "r"}}, []string{"bottom", "l"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, FindCycle(tt.deps))
		})
	}
}

func TestFindCycleIsACycleAndDeterministic(t *testing.T) {
	t.Parallel()
	// Random graphs: whatever FindCycle returns must really be a cycle, the
	// same on every call, and nil exactly when NewDAG accepts the graph.
	r := rand.New(rand.NewPCG(1, 2))
	for range 500 {
		n := 1 + r.IntN(8)
		deps := map[string][]string{}
		for i := range n {
			name := fmt.Sprintf("s%d", i)
			deps[name] = nil
			for j := range n {
				if r.IntN(5) == 0 {
					deps[name] = append(deps[name], fmt.Sprintf("s%d", j))
				}
			}
		}
		c := FindCycle(deps)
		require.Equal(t, c, FindCycle(deps))
		_, err := NewDAG(deps)
		if c == nil {
			require.NoError(t, err, "%v", deps)
			continue
		}
		require.Error(t, err)
		require.Contains(t, err.Error(), FormatCycle(c))
		for i, s := range c {
			next := c[(i+1)%len(c)]
			require.Contains(t, deps[s], next, "cycle %v of %v", c, deps)
		}
	}
}

func TestFormatCycle(t *testing.T) {
	t.Parallel()
	require.Equal(t, "a -> b -> c -> a", FormatCycle([]string{"a", "b", "c"}))
	require.Equal(t, "a -> a", FormatCycle([]string{"a"}))
	require.Equal(t, "", FormatCycle(nil))
}

func TestNewDAGErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		steps map[string][]string
		want  string
	}{
		{"unknown dependency", map[string][]string{"a": nil, "b": {"a", "ghost"}}, `step "b" depends on unknown step "ghost"`},
		{"two unknown dependencies", map[string][]string{"a": {"x"}, "b": {"y"}}, `invalid flow: step "a" depends on unknown step "x"; step "b" depends on unknown step "y"`},
		{"self cycle", map[string][]string{"a": {"a"}}, "dependency cycle a -> a"},
		{"cycle of 2", map[string][]string{"a": {"b"}, "b": {"a"}}, "dependency cycle a -> b -> a"},
		{"cycle of 3", map[string][]string{"a": {"c"}, "b": {"a"}, "c": {"b"}, "d": nil}, "dependency cycle a -> c -> b -> a"},
		{"cycle of 4", map[string][]string{"a": {"b"}, "b": {"c"}, "c": {"d"}, "d": {"a"}}, "dependency cycle a -> b -> c -> d -> a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d, err := NewDAG(tt.steps)
			require.Nil(t, d)
			require.ErrorContains(t, err, tt.want)
		})
	}
}

func TestDAGStructure(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		steps  map[string][]string
		order  []string
		roots  []string
		leaves []string
	}{
		{"empty", nil, nil, nil, nil},
		{"single", map[string][]string{"only": nil}, []string{"only"}, []string{"only"}, []string{"only"}},
		{"linear", flowLinear, []string{"a", "b", "c", "d"}, []string{"a"}, []string{"d"}},
		{"fan-out", flowFanOut, []string{"root", "x", "y", "z"}, []string{"root"}, []string{"x", "y", "z"}},
		{"fan-in", flowFanIn, []string{"x", "y", "z", "join"}, []string{"x", "y", "z"}, []string{"join"}},
		{"diamond", flowDiamond, []string{"top", "left", "right", "bottom"}, []string{"top"}, []string{"bottom"}},
		// Ties are broken by name among the steps available at each point:
		// "b" (stReady after "a") comes before "p".
		{"two branches", flowTwoBranches, []string{"a", "b", "c", "p", "q"}, []string{"a", "p"}, []string{"c", "q"}},
		{"duplicate dependency", map[string][]string{"a": nil, "b": {"a", "a"}}, []string{"a", "b"}, []string{"a"}, []string{"b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d, err := NewDAG(tt.steps)
			require.NoError(t, err)
			require.Equal(t, tt.order, d.Order())
			require.Equal(t, tt.roots, d.Roots())
			require.Equal(t, tt.leaves, d.Leaves())
			require.Equal(t, len(tt.steps), d.Len())
			// Every step comes after its dependencies.
			pos := map[string]int{}
			for i, s := range d.Order() {
				pos[s] = i
			}
			for s, deps := range tt.steps {
				for _, dep := range deps {
					require.Less(t, pos[dep], pos[s])
				}
			}
		})
	}
}

func TestDAGOrderDeterministic(t *testing.T) {
	t.Parallel()
	steps := map[string][]string{}
	for i := range 50 {
		steps[fmt.Sprintf("s%02d", i)] = nil
		if i > 0 {
			steps[fmt.Sprintf("s%02d", i)] = []string{fmt.Sprintf("s%02d", i/3)}
		}
	}
	first, err := NewDAG(steps)
	require.NoError(t, err)
	for range 20 {
		d, err := NewDAG(steps)
		require.NoError(t, err)
		require.Equal(t, first.Order(), d.Order())
	}
}

func TestDAGDependentsAndDescendants(t *testing.T) {
	t.Parallel()
	d, err := NewDAG(flowDiamond)
	require.NoError(t, err)
	require.Equal(t, []string{"left", "right"}, d.Dependents("top"))
	require.Equal(t, []string{"bottom"}, d.Dependents("left"))
	require.Nil(t, d.Dependents("bottom"))
	require.Equal(t, []string{"left", "right", "bottom"}, d.Descendants("top"))
	require.Equal(t, []string{"bottom"}, d.Descendants("right"))
	require.Nil(t, d.Descendants("bottom"))
	require.Nil(t, d.Descendants("unknown"))
	require.Equal(t, []string{"left", "right"}, d.DependsOn("bottom"))
	require.True(t, d.Has("top"))
	require.False(t, d.Has("nope"))

	lin, err := NewDAG(flowLinear)
	require.NoError(t, err)
	require.Equal(t, []string{"b", "c", "d"}, lin.Descendants("a"))

	// The returned slices are copies.
	o := lin.Order()
	o[0] = "mutated"
	require.Equal(t, "a", lin.Order()[0])
}

type (
	dagStatuses = map[string]stroem.StepStatus
	dagFlags    = map[string]bool
)

const (
	stPending   = stroem.StepPending
	stReady     = stroem.StepReady
	stRunning   = stroem.StepRunning
	stCompleted = stroem.StepCompleted
	stFailed    = stroem.StepFailed
	stSkipped   = stroem.StepSkipped
	stCancelled = stroem.StepCancelled
)

func TestDAGAdvance(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		steps       map[string][]string
		st          dagStatuses
		cof         dagFlags
		wantReady   []string
		wantSkipped []string
	}{
		{name: "empty dag", steps: nil, st: nil},
		{
			name: "roots of a fresh job", steps: flowTwoBranches, st: dagStatuses{},
			wantReady: []string{"a", "p"},
		},
		{
			name: "linear: completion promotes the next step only", steps: flowLinear,
			st:        dagStatuses{"a": stCompleted, "b": stPending, "c": stPending, "d": stPending},
			wantReady: []string{"b"},
		},
		{
			name: "linear: nothing while running", steps: flowLinear,
			st: dagStatuses{"a": stCompleted, "b": stRunning, "c": stPending, "d": stPending},
		},
		{
			name: "linear: stReady steps are not reported again", steps: flowLinear,
			st: dagStatuses{"a": stCompleted, "b": stReady, "c": stPending, "d": stPending},
		},
		{
			name: "fan-out: all branches become stReady together", steps: flowFanOut,
			st:        dagStatuses{"root": stCompleted, "x": stPending, "y": stPending, "z": stPending},
			wantReady: []string{"x", "y", "z"},
		},
		{
			name: "fan-in: waits for every dependency", steps: flowFanIn,
			st: dagStatuses{"x": stCompleted, "y": stCompleted, "z": stRunning, "join": stPending},
		},
		{
			name: "fan-in: stReady when all are done", steps: flowFanIn,
			st:        dagStatuses{"x": stCompleted, "y": stCompleted, "z": stCompleted, "join": stPending},
			wantReady: []string{"join"},
		},
		{
			name: "fan-in: one failure skips the join at once, even while others run", steps: flowFanIn,
			st:          dagStatuses{"x": stFailed, "y": stRunning, "z": stReady, "join": stPending},
			wantSkipped: []string{"join"},
		},
		{
			name: "diamond: bottom waits for both sides", steps: flowDiamond,
			st: dagStatuses{"top": stCompleted, "left": stCompleted, "right": stRunning, "bottom": stPending},
		},
		{
			name: "diamond: both sides stReady after top", steps: flowDiamond,
			st:        dagStatuses{"top": stCompleted, "left": stPending, "right": stPending, "bottom": stPending},
			wantReady: []string{"left", "right"},
		},
		{
			name: "diamond: top fails, everything below is stSkipped in one call", steps: flowDiamond,
			st:          dagStatuses{"top": stFailed, "left": stPending, "right": stPending, "bottom": stPending},
			wantSkipped: []string{"left", "right", "bottom"},
		},
		{
			name: "failure skips transitively; the independent branch keeps running", steps: flowTwoBranches,
			st:          dagStatuses{"a": stFailed, "b": stPending, "c": stPending, "p": stCompleted, "q": stPending},
			wantReady:   []string{"q"},
			wantSkipped: []string{"b", "c"},
		},
		{
			name: "continue_on_failure: dependents run as if it completed", steps: flowLinear,
			st: dagStatuses{"a": stFailed, "b": stPending, "c": stPending, "d": stPending}, cof: dagFlags{"a": true},
			wantReady: []string{"b"},
		},
		{
			// Upstream: "run even if my dependencies failed".
			name: "continue_on_failure on the dependent: it runs after a failed dependency", steps: flowLinear,
			st: dagStatuses{"a": stFailed, "b": stPending, "c": stPending, "d": stPending}, cof: dagFlags{"b": true},
			wantReady: []string{"b"},
		},
		{
			name: "continue_on_failure on the dependent: it runs after a skipped dependency", steps: flowLinear,
			st: dagStatuses{"a": stFailed, "b": stPending, "c": stPending, "d": stPending}, cof: dagFlags{"c": true},
			wantSkipped: []string{"b"}, wantReady: []string{"c"},
		},
		{
			name: "continue_on_failure does not run a step after a cancelled dependency", steps: flowLinear,
			st: dagStatuses{"a": stCancelled, "b": stPending, "c": stPending, "d": stPending}, cof: dagFlags{"b": true},
			wantSkipped: []string{"b", "c", "d"},
		},
		{
			name: "continue_on_failure on one side of a diamond", steps: flowDiamond,
			st:  dagStatuses{"top": stCompleted, "left": stFailed, "right": stCompleted, "bottom": stPending},
			cof: dagFlags{"left": true}, wantReady: []string{"bottom"},
		},
		{
			name: "cancelled dependency skips", steps: flowLinear,
			st:          dagStatuses{"a": stCancelled, "b": stPending, "c": stPending, "d": stPending},
			wantSkipped: []string{"b", "c", "d"},
		},
		{
			name: "skipped dependency skips (re-derived after a restart)", steps: flowLinear,
			st:          dagStatuses{"a": stFailed, "b": stSkipped, "c": stPending, "d": stPending},
			wantSkipped: []string{"c", "d"},
		},
		{
			name: "missing dagStatuses count as pending", steps: flowLinear,
			st: dagStatuses{"a": stCompleted}, wantReady: []string{"b"},
		},
		{
			name: "terminal steps are left alone", steps: flowLinear,
			st: dagStatuses{"a": stCompleted, "b": stCompleted, "c": stCompleted, "d": stCompleted},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d, err := NewDAG(tt.steps)
			require.NoError(t, err)
			before := maps.Clone(tt.st)
			gotReady, gotSkipped := d.Advance(tt.st, tt.cof)
			require.Equal(t, tt.wantReady, gotReady, "ready")
			require.Equal(t, tt.wantSkipped, gotSkipped, "skipped")
			require.Equal(t, before, tt.st, "Advance must not modify its input")
		})
	}
}

func TestDAGOutcome(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		steps    map[string][]string
		st       dagStatuses
		cof      dagFlags
		wantDone bool
		want     stroem.JobStatus
	}{
		{name: "empty dag is trivially complete", steps: nil, wantDone: true, want: stroem.JobCompleted},
		{name: "running", steps: flowLinear, st: dagStatuses{"a": stCompleted, "b": stRunning, "c": stPending, "d": stPending}},
		{name: "ready is not terminal", steps: flowFanOut, st: dagStatuses{"root": stCompleted, "x": stCompleted, "y": stCompleted, "z": stReady}},
		{name: "all completed", steps: flowDiamond, st: dagStatuses{"top": stCompleted, "left": stCompleted, "right": stCompleted, "bottom": stCompleted}, wantDone: true, want: stroem.JobCompleted},
		{name: "failure with stSkipped dependents", steps: flowLinear, st: dagStatuses{"a": stFailed, "b": stSkipped, "c": stSkipped, "d": stSkipped}, wantDone: true, want: stroem.JobFailed},
		{name: "failure waits for the independent branch", steps: flowTwoBranches, st: dagStatuses{"a": stFailed, "b": stSkipped, "c": stSkipped, "p": stCompleted, "q": stRunning}},
		{name: "failure after the independent branch ends", steps: flowTwoBranches, st: dagStatuses{"a": stFailed, "b": stSkipped, "c": stSkipped, "p": stCompleted, "q": stCompleted}, wantDone: true, want: stroem.JobFailed},
		{name: "continue_on_failure completes the job", steps: flowLinear, st: dagStatuses{"a": stFailed, "b": stCompleted, "c": stCompleted, "d": stCompleted}, cof: dagFlags{"a": true}, wantDone: true, want: stroem.JobCompleted},
		{name: "continue_on_failure on a leaf", steps: flowFanOut, st: dagStatuses{"root": stCompleted, "x": stFailed, "y": stCompleted, "z": stCompleted}, cof: dagFlags{"x": true}, wantDone: true, want: stroem.JobCompleted},
		{name: "cancelled", steps: flowLinear, st: dagStatuses{"a": stCompleted, "b": stCancelled, "c": stSkipped, "d": stSkipped}, wantDone: true, want: stroem.JobCancelled},
		{name: "a real failure wins over a cancel", steps: flowFanOut, st: dagStatuses{"root": stCompleted, "x": stFailed, "y": stCancelled, "z": stCancelled}, wantDone: true, want: stroem.JobFailed},
		{name: "cancel wins over a tolerated failure", steps: flowFanOut, st: dagStatuses{"root": stCompleted, "x": stFailed, "y": stCancelled, "z": stCompleted}, cof: dagFlags{"x": true}, wantDone: true, want: stroem.JobCancelled},
		{name: "missing status is not terminal", steps: flowLinear, st: dagStatuses{"a": stCompleted}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d, err := NewDAG(tt.steps)
			require.NoError(t, err)
			done, status := d.Outcome(tt.st, tt.cof)
			require.Equal(t, tt.wantDone, done)
			require.Equal(t, tt.want, status)
		})
	}
}

// TestDAGSimulation drives random flows to the end the way the orchestrator
// does — Advance after every change, steps finishing in random order — and
// checks the invariants: a step runs only after its dependencies, a failure
// skips exactly its descendants (unless tolerated), and Outcome agrees.
func TestDAGSimulation(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(7, 9))
	for round := range 300 {
		n := 1 + r.IntN(10)
		steps := map[string][]string{}
		names := make([]string, n)
		for i := range n {
			names[i] = fmt.Sprintf("s%d", i)
			steps[names[i]] = nil
			for j := range i { // edges only backwards: acyclic
				if r.IntN(3) == 0 {
					steps[names[i]] = append(steps[names[i]], names[j])
				}
			}
		}
		d, err := NewDAG(steps)
		require.NoError(t, err)
		cof := dagFlags{}
		for _, s := range names {
			cof[s] = r.IntN(4) == 0
		}
		st := dagStatuses{}
		for _, s := range names {
			st[s] = stPending
		}
		var runnable []string
		apply := func() {
			rd, sk := d.Advance(st, cof)
			for _, s := range sk {
				st[s] = stSkipped // decided in the same call, before rd
			}
			for _, s := range rd {
				for _, dep := range steps[s] {
					require.True(t, st[dep] == stCompleted || (st[dep] == stFailed && (cof[dep] || cof[s])) || (st[dep] == stSkipped && cof[s]), "round %d: %s stReady with %s %s", round, s, dep, st[dep])
				}
				st[s] = stReady
				runnable = append(runnable, s)
			}
		}
		apply()
		for len(runnable) > 0 {
			i := r.IntN(len(runnable))
			s := runnable[i]
			runnable = slices.Delete(runnable, i, i+1)
			if r.IntN(4) == 0 {
				st[s] = stFailed
			} else {
				st[s] = stCompleted
			}
			done, _ := d.Outcome(st, cof)
			require.Equal(t, dagAllTerminal(st), done)
			apply()
		}
		done, status := d.Outcome(st, cof)
		require.True(t, done, "round %d: %v", round, st)
		wantStatus := stroem.JobCompleted
		for _, s := range names {
			if st[s] == stFailed && !cof[s] {
				wantStatus = stroem.JobFailed
				// Its direct dependents are skipped, unless they run
				// regardless (continue_on_failure on themselves).
				for _, desc := range d.Descendants(s) {
					if slices.Contains(steps[desc], s) && !cof[desc] {
						require.Equal(t, stSkipped, st[desc], "round %d: dependent %s of stFailed %s", round, desc, s)
					}
				}
			}
		}
		require.Equal(t, wantStatus, status)
	}
}

func dagAllTerminal(st dagStatuses) bool {
	for _, s := range st {
		if !s.Terminal() {
			return false
		}
	}
	return true
}
