package workspace

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/stroem/stroem"
)

// FindCycle returns the steps of one dependency cycle in order, or nil when
// deps (step → the steps it depends on) has none. The result [a b c] means
// a depends on b, b on c and c on a; a step that depends on itself gives [a].
//
// The answer is deterministic — steps and dependencies are visited in name
// order and the cycle is rotated to start at its smallest name — so the
// validator prints the same cycle on every run. Dependencies naming steps
// that are not keys of deps are ignored here: they are a different problem,
// reported on their own.
func FindCycle(deps map[string][]string) []string {
	const (
		white = iota // not visited
		grey         // on the current DFS path
		black        // finished, no cycle through it
	)
	color := make(map[string]int, len(deps))
	var path []string
	var cycle []string

	var visit func(n string) bool
	visit = func(n string) bool {
		color[n] = grey
		path = append(path, n)
		next := slices.Clone(deps[n])
		sort.Strings(next)
		for _, d := range next {
			if _, known := deps[d]; !known {
				continue
			}
			switch color[d] {
			case grey:
				i := slices.Index(path, d)
				cycle = slices.Clone(path[i:])
				return true
			case white:
				if visit(d) {
					return true
				}
			}
		}
		path = path[:len(path)-1]
		color[n] = black
		return false
	}

	names := make([]string, 0, len(deps))
	for n := range deps {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if color[n] == white && visit(n) {
			break
		}
	}
	if cycle == nil {
		return nil
	}
	// Rotate so that the smallest name comes first: the same cycle found
	// from another entry point prints the same way.
	m := 0
	for i, n := range cycle {
		if n < cycle[m] {
			m = i
		}
	}
	return append(slices.Clone(cycle[m:]), cycle[:m]...)
}

// FormatCycle prints a cycle from FindCycle the way users read it:
// "a -> b -> c -> a".
func FormatCycle(cycle []string) string {
	if len(cycle) == 0 {
		return ""
	}
	return strings.Join(cycle, " -> ") + " -> " + cycle[0]
}

// DAG is a task's flow reduced to names and edges. The orchestrator keeps no
// state of its own about a job's progress: it feeds the stored step statuses
// to Advance and Outcome after every change (and after a restart), so every
// scheduling decision is a pure function of what is in the database.
//
// A DAG is immutable after NewDAG and safe for concurrent use.
type DAG struct {
	deps       map[string][]string // step → its dependencies, sorted, deduplicated
	dependents map[string][]string // step → steps depending on it directly, sorted
	order      []string
	pos        map[string]int // step → index in order
}

// NewDAG builds the DAG of steps (step → the steps it depends on). It fails
// when a dependency names an unknown step or when the dependencies form a
// cycle; the error names the culprits and prints the cycle.
func NewDAG(steps map[string][]string) (*DAG, error) {
	d := &DAG{
		deps:       make(map[string][]string, len(steps)),
		dependents: make(map[string][]string, len(steps)),
		pos:        make(map[string]int, len(steps)),
	}
	var problems []string
	for step, deps := range steps {
		clean := make([]string, 0, len(deps))
		for _, dep := range deps {
			if _, ok := steps[dep]; !ok {
				problems = append(problems, fmt.Sprintf("step %q depends on unknown step %q", step, dep))
				continue
			}
			if !slices.Contains(clean, dep) {
				clean = append(clean, dep)
			}
		}
		sort.Strings(clean)
		d.deps[step] = clean
		for _, dep := range clean {
			d.dependents[dep] = append(d.dependents[dep], step)
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return nil, fmt.Errorf("invalid flow: %s", strings.Join(problems, "; "))
	}
	if c := FindCycle(d.deps); c != nil {
		return nil, fmt.Errorf("invalid flow: dependency cycle %s", FormatCycle(c))
	}
	for _, ds := range d.dependents {
		sort.Strings(ds)
	}

	// Kahn's algorithm, taking the smallest name among the steps whose
	// dependencies are all placed, so the order never depends on map
	// iteration.
	remaining := make(map[string]int, len(d.deps))
	var avail []string
	for step, deps := range d.deps {
		remaining[step] = len(deps)
		if len(deps) == 0 {
			avail = append(avail, step)
		}
	}
	sort.Strings(avail)
	for len(avail) > 0 {
		n := avail[0]
		avail = avail[1:]
		d.pos[n] = len(d.order)
		d.order = append(d.order, n)
		for _, m := range d.dependents[n] {
			remaining[m]--
			if remaining[m] == 0 {
				i, _ := slices.BinarySearch(avail, m)
				avail = slices.Insert(avail, i, m)
			}
		}
	}
	return d, nil
}

// Len is the number of steps.
func (d *DAG) Len() int { return len(d.order) }

// Has reports whether the DAG has the step.
func (d *DAG) Has(step string) bool {
	_, ok := d.pos[step]
	return ok
}

// Order returns every step in a deterministic topological order:
// dependencies before dependents, ties broken by name. Jobs store their
// steps in this order.
func (d *DAG) Order() []string { return slices.Clone(d.order) }

// DependsOn returns the direct dependencies of step, sorted.
func (d *DAG) DependsOn(step string) []string { return slices.Clone(d.deps[step]) }

// Roots returns the steps without dependencies, in order. They start ready
// when a job is created.
func (d *DAG) Roots() []string { return d.without(d.deps) }

// Leaves returns the steps nothing depends on, in order. The job's output is
// made of their outputs.
func (d *DAG) Leaves() []string { return d.without(d.dependents) }

// without returns the steps that edges (deps or dependents) maps to no
// step, in order.
func (d *DAG) without(edges map[string][]string) []string {
	var out []string
	for _, n := range d.order {
		if len(edges[n]) == 0 {
			out = append(out, n)
		}
	}
	return out
}

// Dependents returns the steps that depend on step directly, sorted.
func (d *DAG) Dependents(step string) []string { return slices.Clone(d.dependents[step]) }

// Descendants returns every step that depends on step directly or
// transitively, in topological order: the steps a failure of step skips.
func (d *DAG) Descendants(step string) []string {
	seen := map[string]bool{}
	stack := slices.Clone(d.dependents[step])
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[n] {
			continue
		}
		seen[n] = true
		stack = append(stack, d.dependents[n]...)
	}
	return d.inOrder(seen)
}

func (d *DAG) inOrder(set map[string]bool) []string {
	if len(set) == 0 {
		return nil
	}
	out := make([]string, 0, len(set))
	for _, n := range d.order {
		if set[n] {
			out = append(out, n)
		}
	}
	return out
}

// Advance decides what happens to the pending steps given the current
// statuses (st; a step missing from st counts as pending) and the
// continue_on_failure flag of each step:
//
//   - a pending step whose dependencies are all done — completed, or failed
//     with continue_on_failure set on that dependency — becomes ready;
//     a step with continue_on_failure set on itself also runs when a
//     dependency failed or was skipped (upstream: "run even if my
//     dependencies failed, and my own failure is tolerable");
//   - otherwise a pending step with a dependency that is skipped,
//     cancelled, or failed without continue_on_failure is skipped, even
//     while its other dependencies still run: it can never run any more.
//
// Skipping is applied transitively in the same call (the whole chain below a
// failure is skipped at once); readiness is not, because a ready step has
// yet to run. Both lists are in topological order. st is not modified.
func (d *DAG) Advance(st map[string]stroem.StepStatus, continueOnFailure map[string]bool) (ready, skipped []string) {
	skippedNow := map[string]bool{}
	status := func(n string) stroem.StepStatus {
		if skippedNow[n] {
			return stroem.StepSkipped
		}
		if s, ok := st[n]; ok && s != "" {
			return s
		}
		return stroem.StepPending
	}
	// One pass in topological order is a fixpoint: every dependency is
	// decided before its dependents are looked at.
	for _, n := range d.order {
		if status(n) != stroem.StepPending {
			continue
		}
		switch run, skip := d.Decide(n, status, continueOnFailure); {
		case skip:
			skippedNow[n] = true
			skipped = append(skipped, n)
		case run:
			ready = append(ready, n)
		}
	}
	return ready, skipped
}

// Decide applies Advance's rule to one pending step, given the statuses of
// its dependencies (status; a step Advance skipped in the same call counts
// as skipped): run when they are all done, skip when one can never let it
// run, neither while one is still under way. It lets a caller that knows
// which steps' dependencies changed decide those alone, by the same rule.
func (d *DAG) Decide(n string, status func(string) stroem.StepStatus, continueOnFailure map[string]bool) (run, skip bool) {
	run = true
	for _, dep := range d.deps[n] {
		switch status(dep) {
		case stroem.StepCompleted:
		case stroem.StepFailed:
			// A tolerated failure lets its dependents run; a step with
			// continue_on_failure runs even after a failed dependency.
			if !continueOnFailure[dep] && !continueOnFailure[n] {
				skip = true
			}
		case stroem.StepSkipped:
			if !continueOnFailure[n] {
				skip = true
			}
		case stroem.StepCancelled:
			skip = true
		default:
			run = false
		}
	}
	return run && !skip, skip
}

// Outcome says whether a job is over and how it ended, from its steps'
// statuses alone. The job is done when every step is terminal (completed,
// failed, skipped or cancelled). It then ended:
//
//   - failed, when some step failed without continue_on_failure;
//   - otherwise cancelled, when some step was cancelled;
//   - otherwise completed (failures with continue_on_failure and the steps
//     they skipped do not fail the job).
//
// A cancel request is the orchestrator's business: it cancels the
// unfinished steps, and this rule then yields cancelled unless a step had
// already failed for real. While some step is not terminal, done is false
// and status is empty.
func (d *DAG) Outcome(st map[string]stroem.StepStatus, continueOnFailure map[string]bool) (done bool, status stroem.JobStatus) {
	failed, cancelled := false, false
	for _, n := range d.order {
		s := st[n]
		if !s.Terminal() {
			return false, ""
		}
		switch s {
		case stroem.StepFailed:
			if !continueOnFailure[n] {
				failed = true
			}
		case stroem.StepCancelled:
			cancelled = true
		}
	}
	switch {
	case failed:
		return true, stroem.JobFailed
	case cancelled:
		return true, stroem.JobCancelled
	default:
		return true, stroem.JobCompleted
	}
}

// Upstreams answers, for a task's steps, whether one depends on another,
// directly or through other steps. Sets of every step's upstream steps,
// made up front, cost time and memory quadratic in the task's steps (a
// 4,000-step chain took 2.3 s and 890 MB to load, and as long again to
// start a job of it; issue 23), and most steps never ask. So each step's
// questions walk depends_on from it only as far as the answers need
// (From), and a step found to depend on another is remembered: a step
// that reaches it needs to walk no further.
//
// Its methods are not safe for concurrent use.
type Upstreams struct {
	deps    map[string][]string
	reaches map[string]map[string]bool // step → steps known to depend on it
}

// NewUpstreams answers for deps (step → the steps it depends on).
func NewUpstreams(deps map[string][]string) *Upstreams {
	return &Upstreams{deps: deps, reaches: map[string]map[string]bool{}}
}

// From returns the questions of one step, start.
func (u *Upstreams) From(start string) *UpstreamWalk {
	return &UpstreamWalk{all: u, start: start, stack: []string{start}}
}

// UpstreamWalk is one step's walk through depends_on, taken up again by
// each question where the last one stopped.
type UpstreamWalk struct {
	all   *Upstreams
	start string
	seen  map[string]bool // reached so far
	stack []string        // reached, its own dependencies not walked yet
}

// Has reports whether start depends on step (a cycle through start makes
// start its own upstream step).
func (u *UpstreamWalk) Has(step string) bool {
	known := u.all.reaches[step]
	found := u.seen[step] || known[u.start]
	for !found && len(u.stack) > 0 {
		n := u.stack[len(u.stack)-1]
		u.stack = u.stack[:len(u.stack)-1]
		for _, d := range u.all.deps[n] { // all of them: the next question goes on from here
			if u.seen[d] {
				continue
			}
			if u.seen == nil {
				u.seen = map[string]bool{}
			}
			u.seen[d] = true
			u.stack = append(u.stack, d)
			found = found || d == step || known[d]
		}
	}
	if found && !known[u.start] {
		if known == nil {
			known = map[string]bool{}
			u.all.reaches[step] = known
		}
		known[u.start] = true
	}
	return found
}
