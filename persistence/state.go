package persistence

import (
	"iter"
	"slices"
	"time"

	"github.com/stroem/stroem"
)

// A JobState's steps are copy-on-write, so that a transition of a big job
// costs what it changes, not what the job holds. A store's JobUpdate gives
// its callback a state whose steps are shared with the before-image (and,
// in PostgreSQL, with the cache of the job's steps); the callback reads
// copies (At, Find, All) and changes a step only through MutAt or Mut,
// which copy the step the first time and record it; Diff then visits only
// the recorded steps. The steps are unexported so that the compiler finds
// every change: there is no other way to write one.

// cow is the copy-on-write bookkeeping of a JobState's steps.
type cow struct {
	// shared: the steps not in owned belong to another state too (the
	// store's before-image or cache) and are copied before a change.
	shared bool
	// owned holds the positions this state may change in place.
	owned map[int]struct{}
	// touched holds the positions handed out by MutAt and Mut and the
	// appended ones, in first-change order.
	touched []int
	// index finds a step by name; shared read-only between states.
	index *StepIndex
	// offers maps the positions whose write is an offer (Offer) to the
	// route of the claim offered the step.
	offers map[int]*Route
	// handedFor maps the positions handed to a completion's claim to the
	// completion's link (HandFor).
	handedFor map[int]string
	// readLen is the number of steps when the state was shared out
	// (Share), 0 for a state that was not; read keeps the status as then
	// of each of those steps the state has copied since (see ReadStatusAt).
	readLen int
	read    map[int]stroem.StepStatus
}

// StepIndex maps the names of a job's first steps to their positions
// (names and positions never change; appended steps are found by a scan
// after them). It is never modified once built, so states share it.
type StepIndex struct {
	pos map[string]int
}

// Len is the number of steps the index holds: the job's first Len steps.
func (x *StepIndex) Len() int { return len(x.pos) }

// Position is the position of the named step among those the index holds;
// ok is false for a step it does not hold (one appended after it was built).
func (x *StepIndex) Position(name string) (pos int, ok bool) {
	pos, ok = x.pos[name]
	return pos, ok
}

// indexMin is the step count from which a name lookup uses an index: below
// it, a scan is cheaper than building the map.
const indexMin = 32

// SetSteps gives the state its steps as a store loaded them (this state
// owns them) and, when not nil, the index a store kept for the same steps
// (see StepIndex).
func (s *JobState) SetSteps(steps []*StepState, idx *StepIndex) {
	s.steps = steps
	s.cow = cow{index: idx}
}

// Len is the number of steps.
func (s *JobState) Len() int { return len(s.steps) }

// At returns a copy of the step at position i. Its maps and pointers are
// shared with the state: read them, never write through them.
func (s *JobState) At(i int) StepState { return *s.steps[i] }

// StatusAt is the status of the step at position i: what a walk over a big
// job's steps usually asks, without copying each step as At does.
func (s *JobState) StatusAt(i int) stroem.StepStatus { return s.steps[i].Status }

// ReadyAt is, for a step at position i that is ready and may be claimed now
// (not in a retry's backoff, not cancelled), when it became ready, and its
// action type; ok is false for any other step. Like StatusAt, it copies no
// step.
func (s *JobState) ReadyAt(i int) (at time.Time, actionType string, ok bool) {
	st := s.steps[i]
	if st.Status != stroem.StepReady || st.CancelRequested || st.ReadyAt == nil || st.ReadyAt.After(s.Now) {
		return time.Time{}, "", false
	}
	return *st.ReadyAt, st.ActionType, true
}

// TagsAt is the tags the step at position i requires (shared: never write
// through it), without copying the step.
func (s *JobState) TagsAt(i int) []string { return s.steps[i].Tags }

// Index is the position of the named step, or -1.
func (s *JobState) Index(name string) int {
	n := 0
	if idx := s.StepIndex(); idx != nil {
		if i, ok := idx.pos[name]; ok {
			return i
		}
		n = len(idx.pos)
	}
	for i := n; i < len(s.steps); i++ {
		if s.steps[i].Name == name {
			return i
		}
	}
	return -1
}

// StepIndex returns the state's index of step names, building it when the
// job is big enough and has none (or too many steps were appended since);
// nil for a small job. A store may keep it with the steps for later states
// of the same job (SetSteps).
func (s *JobState) StepIndex() *StepIndex {
	if len(s.steps) < indexMin {
		return nil
	}
	if s.index == nil || len(s.steps)-len(s.index.pos) > indexMin {
		idx := &StepIndex{pos: make(map[string]int, len(s.steps))}
		for i, st := range s.steps {
			idx.pos[st.Name] = i
		}
		s.index = idx
	}
	return s.index
}

// Find returns a copy of the named step (as At), or nil.
func (s *JobState) Find(name string) *StepState {
	i := s.Index(name)
	if i < 0 {
		return nil
	}
	c := *s.steps[i]
	return &c
}

// All yields each step's position and a copy of it (as At), in position
// order.
func (s *JobState) All() iter.Seq2[int, StepState] {
	return func(yield func(int, StepState) bool) {
		for i, st := range s.steps {
			if !yield(i, *st) {
				return
			}
		}
	}
}

// MutAt returns the step at position i to be changed in place: the first
// time, a copy of it when it is shared. The store writes what changed.
func (s *JobState) MutAt(i int) *StepState {
	if _, ok := s.owned[i]; ok {
		return s.steps[i]
	}
	if s.shared {
		if i < s.readLen {
			if s.read == nil {
				s.read = map[int]stroem.StepStatus{}
			}
			if _, ok := s.read[i]; !ok {
				s.read[i] = s.steps[i].Status
			}
		}
		s.steps[i] = s.steps[i].Clone()
	}
	s.own(i)
	return s.steps[i]
}

// ReadStatusAt is the status the step at position i had when this state
// was shared out (Share: what a store's callback is given), whatever the
// state changed since, without a walk over the job's steps; ok is false
// for a step appended since, and for every step of a state that was not
// shared out.
func (s *JobState) ReadStatusAt(i int) (status stroem.StepStatus, ok bool) {
	if i < 0 || i >= s.readLen {
		return "", false
	}
	if st, ok := s.read[i]; ok {
		return st, true
	}
	return s.steps[i].Status, true
}

// Mut is MutAt for the named step; nil when there is none.
func (s *JobState) Mut(name string) *StepState {
	i := s.Index(name)
	if i < 0 {
		return nil
	}
	return s.MutAt(i)
}

// Append adds a step after the others (a loop's instance); its Position
// must be Len() before the call. The state owns it.
func (s *JobState) Append(st *StepState) {
	s.steps = append(s.steps, st)
	s.own(len(s.steps) - 1)
}

func (s *JobState) own(i int) {
	if s.owned == nil {
		s.owned = map[int]struct{}{}
	}
	s.owned[i] = struct{}{}
	s.touched = append(s.touched, i)
}

// Offer makes the write of the step at i conditional: the step was ready
// when the state was read, and the callback made it running for a
// completion's claim for its slot, whose worker takes the steps of r. The
// store writes the offered steps only if, at the write, each is still ready
// and no claim holds it, and no other job has a step that r (any offer's
// route of the update: OfferBound) takes ready since before the newest
// offered step became ready: the Dispatcher would claim that one first. A
// step not taken is left as read: the state JobUpdate returns holds it as
// it was, ready, and no attempt of it is recorded. Nothing else of the
// update depends on it.
func (s *JobState) Offer(i int, r Route) {
	if s.offers == nil {
		s.offers = map[int]*Route{}
	}
	s.offers[i] = &r
}

// HandFor records that the step at i is handed to the claim of the
// completion link names (HandedLink), in this update's write: a repeat of
// that completion, whose answer its worker did not get, finds the step by
// the link (Store.StepsHandedFor) and is given it again — the very step,
// where two completions of one worker in one update each had one.
func (s *JobState) HandFor(i int, link string) {
	if s.handedFor == nil {
		s.handedFor = map[int]string{}
	}
	s.handedFor[i] = link
}

// HandedFor returns the link the step at i was handed for (HandFor); ""
// when none.
func (s *JobState) HandedFor(i int) string { return s.handedFor[i] }

// Offered returns the route of the claim the step at i was offered to
// (Offer); nil when its write is not conditional.
func (s *JobState) Offered(i int) *Route { return s.offers[i] }

// Untake sets the step at i back to from's: for a store whose conditional
// write (Offer) did not take the step. from is the state the update read.
func (s *JobState) Untake(i int, from *JobState) {
	s.steps[i] = from.steps[i]
	delete(s.owned, i)
}

// Changed returns, in ascending order and each once, the positions of the
// steps handed out by MutAt and Mut or appended since the state was loaded
// (a superset of the steps that changed; Diff tells them apart). A step
// taken again after Seal (a Share in the middle of a callback) is recorded
// twice: listed twice, Diff would write it twice, and PostgreSQL's second
// write, finding the step moved by the first, would fail the update.
func (s *JobState) Changed() []int {
	c := slices.Clone(s.touched)
	slices.Sort(c)
	return slices.Compact(c)
}

// Share returns a state whose steps are those of s, shared: each state
// copies a step before changing it (s too, from now on), so neither sees
// the other's changes. The job's own fields are copied deeply (as Clone).
// A store gives fn a Share of what it read, and keeps the read state as the
// before-image. It costs a copy of the step pointers, not of the steps.
func (s *JobState) Share() *JobState {
	c := *s
	c.Job.Input = deepCopyMap(s.Job.Input)
	c.Job.Output = deepCopyMap(s.Job.Output)
	c.Job.StartedAt, c.Job.CompletedAt = copyTime(s.Job.StartedAt), copyTime(s.Job.CompletedAt)
	c.steps = slices.Clone(s.steps)
	c.cow = cow{shared: true, index: s.index, readLen: len(c.steps)}
	s.Seal()
	return &c
}

// Seal makes every step of s shared: a later change copies it first. A
// store seals the state it returns from JobUpdate, whose steps it keeps
// (Changed still reports what the update changed).
func (s *JobState) Seal() {
	s.shared = true
	s.owned = nil
}

// StepsShared returns the state's steps, for a store that keeps them
// (after Seal): they must never be changed.
func (s *JobState) StepsShared() []*StepState {
	return slices.Clone(s.steps)
}

// SharedAt returns the step at position i itself, for a store that keeps
// it (after Seal): it must never be changed. Unlike StepsShared it copies
// nothing: a big job's transition takes back a few steps, not all.
func (s *JobState) SharedAt(i int) *StepState { return s.steps[i] }
