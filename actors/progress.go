package actors

import (
	"github.com/stroem/stroem/persistence"
)

// progress is what a JobActor remembers of its job's finished steps so that
// a transition of a big job costs what it changes, not what the job holds:
// "is every step finished?" (the job's end, a loop's end) and "which step
// is the next unfinished one?" skip the runs of steps already known to be
// terminal instead of walking them again.
//
// It is a hint, never the truth: a terminal step stays terminal (no
// transition leaves a terminal status), so a step recorded terminal from a
// committed state is terminal in every later state of the job, and each
// answer is checked against the state at hand (steps terminal there but not
// recorded are walked over). A fresh JobActor (a restart, a reload) starts
// with no record and rebuilds it from the state it reads. Only committed
// states are recorded (observe): a transition that is rolled back or run
// again records nothing.
//
// next is a disjoint-set forest over positions: next[i] == i when step i
// is not known to be terminal, else a position after i from which to look
// on (path halving keeps the walks short). A nil *progress knows nothing
// and answers by walking the state.
type progress struct {
	next []int
}

// find returns the first position ≥ i not recorded terminal (Len-capped by
// the caller's check).
func (g *progress) find(i int) int {
	if g == nil {
		return i
	}
	for i < len(g.next) && g.next[i] != i {
		n := g.next[i]
		if n < len(g.next) {
			g.next[i] = g.next[n] // path halving: only ever skips recorded steps
		}
		i = n
	}
	return i
}

// openFrom returns the position of the first step at or after i that is not
// terminal in s, or s.Len() when there is none.
func (g *progress) openFrom(s *persistence.JobState, i int) int {
	n := s.Len()
	for {
		i = g.find(i)
		if i >= n || !s.StatusAt(i).Terminal() {
			return min(i, n)
		}
		i++
	}
}

// observe records the steps at positions that are terminal in s, a state
// the store committed.
func (g *progress) observe(s *persistence.JobState, positions []int) {
	for len(g.next) < s.Len() {
		g.next = append(g.next, len(g.next))
	}
	for _, i := range positions {
		if i < len(g.next) && s.StatusAt(i).Terminal() {
			g.next[i] = i + 1
		}
	}
}

// observeAll records every terminal step of s, a state the store committed
// (a JobActor's first).
func (g *progress) observeAll(s *persistence.JobState) {
	g.next = g.next[:0]
	all := make([]int, s.Len())
	for i := range all {
		all[i] = i
	}
	g.observe(s, all)
}
