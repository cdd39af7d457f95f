package actors

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
)

// Hand-off: a transition that makes steps ready gives them straight to
// workers already waiting in a long-poll claim, in the same transaction.
//
// Without it a dependent step costs a second transaction: the transition
// commits the step as ready, wakes the Dispatcher, which claims it in its own
// transaction and answers the waiting worker. With it, the JobActor's
// transition reserves waiting requests from the Dispatcher (they leave its
// queue), writes the step as running for the reserved worker — a new
// attempt under a lease, exactly what a claim writes — and after the commit
// answers the reserved requests. Requests it did not use go back to the
// Dispatcher. A step no request was reserved for stays ready for the
// Dispatcher as before.
//
// The steps this transition made ready are handed off this way. A step
// that was already ready when the transition read the job is committed as
// ready, so the Dispatcher may be claiming it at that very moment (claims
// lock step rows the transition reads unlocked): handing it to long polls
// too made the transition's write find the step moved and the whole
// JobUpdate run again (a fifth of a fan-out's transitions did). Those steps
// are the Dispatcher's, which claims them for the waiting requests anyway —
// except for a completion's own claim (below, offer), whose write is
// conditional and never makes the update run again.
//
// A completion may carry a claim for its slot (StepCompleteNext,
// jobEvent.next). The transition that applies it offers a step it makes
// ready to that claim first, before any waiting long poll: in a chain the
// slot that ran a step gets the next one in the answer to its completion,
// with no reservation asked of the Dispatcher and no request of its own.
// It does so only while some long poll waits for that action type (the
// Dispatcher publishes those types: idleType): then no older step of the
// type waits in line, which the new one would overtake. A claim whose
// completion was refused (stale, fenced) is given nothing. One not used goes
// to the Dispatcher, which claims the oldest ready step for it or answers
// nothing at once: it never waits.
//
// A step handed to a completion's own claim in the transition is recorded
// as started in that same transaction (StepState.StartedAttempt), and its
// assignment says so (Assignment.Started): the worker runs it without a
// `start` report, which in a chain was a request and a commit per step.
// The completion's answer stands for the acknowledgement because the
// worker repeats a completion whose answer it did not get: a duplicate of
// an accepted completion with a claim is given again the step its first
// run handed over, which the worker runs unless it already does (its
// running steps are keyed by attempt). The hand-over records the
// completion's name (its link) on the step (JobState.HandFor), as the
// claim statement does for a step the Dispatcher claims for a completion's
// claim (dispatcher.claimFor), and a duplicate finds its step by that name
// (redeliverHanded), on any server, after a restart too. (It was found by
// its worker and start time; when two completions of one worker in one
// transition each had a step, a repeat could be given the other's, which
// the worker already ran, and its own was never delivered.) A duplicate is
// given no other step. A worker that dies before it reads the answer
// leaves the step running under its lease: the lease runs out and the
// attempt counts as lost, as for a worker that dies a moment after its
// `start`.
//
// In a fan-out the completion's claim is offered, in the transition, the
// job's oldest step of its types that was ready already (offer): the store
// takes it only if nothing holds it and no other job has an older one
// ready, so a fan-out's steps mostly go from completion to completion
// without a claim statement of their own. Taken, it is handed over like a
// step the transition made ready, and found again the same way; not taken,
// the claim goes to the Dispatcher. Steps handed
// to long polls still wait for `start` (startack.go): a long poll that
// lost its answer does not ask again for the same step.

// reserve asks the Dispatcher for waiting requests that can run the steps
// of each need, oldest first.
type reserve struct {
	need  []stepNeed
	reply chan []*waiter
}

// stepNeed asks for n requests that can run steps of actionType requiring
// tags.
type stepNeed struct {
	actionType string
	tags       []string
	n          int
}

// unreserve gives reserved requests back to the Dispatcher. fresh says the
// sender's transition left a step ready: a request that does not wait
// (waiter.now) is then claimed for even if a recent claim found nothing.
type unreserve struct {
	ws    []*waiter
	fresh bool
}

// handoff collects, across the runs of one JobUpdate's function (a
// conflict makes it run again), the requests reserved for the job's ready
// steps and the steps given to them.
type handoff struct {
	o        *Orchestrator
	reserved []*waiter
	// given maps a step handed off in the latest run to its request.
	given map[string]*waiter
	// own are the claims the transition's completions carry.
	own []ownClaim
}

// ownClaim is a completion's claim for its slot: event is the completion's
// index in the batch; accepted says the latest run accepted the completion
// (applied, or a duplicate of an accepted one).
type ownClaim struct {
	w        *waiter
	event    int
	accepted bool
	// duplicate: the completion was a duplicate of an accepted one. Its
	// claim gets the step its first run handed over, if any, found by the
	// completion's link after the commit (giveBack): never another.
	duplicate bool
}

// newHandoff returns the hand-off of a transition applying events.
func newHandoff(o *Orchestrator, events []jobEvent) *handoff {
	h := &handoff{o: o}
	for i, e := range events {
		if e.next != nil {
			h.own = append(h.own, ownClaim{w: e.next, event: i})
		}
	}
	return h
}

// candidates lists the requests a step may be handed to, in order of
// preference: the claims of accepted completions, then the reserved
// requests.
func (h *handoff) candidates() []*waiter {
	var out []*waiter
	for _, c := range h.own {
		if c.accepted && !c.duplicate && c.w.handed.Load() == 0 && !c.w.abandoned.Load() {
			out = append(out, c.w)
		}
	}
	return append(out, h.reserved...)
}

// assign runs inside the transition's function, after advance: it hands the
// job's claimable steps to the completions' claims and reserved requests,
// reserving more when needed. wasReady says whether the step at a position
// was ready in the state as read (readyAsRead; nil: none was): those are
// left to the Dispatcher, and offered to the completions' claims (offer,
// which skips the steps g knows finished). results are the outcomes of the
// transition's events.
func (h *handoff) assign(s *persistence.JobState, g *progress, wasReady func(int) bool, results []error) {
	h.given = map[string]*waiter{}
	for i := range h.own {
		r := results[h.own[i].event]
		h.own[i].duplicate = errors.Is(r, errDuplicate)
		h.own[i].accepted = r == nil || h.own[i].duplicate
	}
	if s.CancelRequested || s.Job.Status.Terminal() || h.o.draining.Load() {
		return
	}
	// A step the transition made ready is one it changed: only those are
	// looked at, not every step of the job (Changed is in position order).
	var ready []int
	for _, i := range s.Changed() {
		if s.StatusAt(i) != stroem.StepReady || (wasReady != nil && wasReady(i)) {
			continue
		}
		if st := s.At(i); st.ReadyAt == nil || !st.ReadyAt.After(s.Now) {
			ready = append(ready, i)
		}
	}
	if len(ready) > 0 {
		h.assignReady(s, ready)
	}
	h.offer(s, g, wasReady)
}

// assignReady hands the steps the transition made ready (ready, by
// position) to the completions' claims and reserved requests, reserving
// more when needed.
func (h *handoff) assignReady(s *persistence.JobState, ready []int) {
	free := h.candidates()
	take := func(actionType string, tags []string) *waiter {
		for i, w := range free {
			// Only a request whose worker the step's tags route to. A
			// completion's claim takes a step only when no step of its type
			// that it could take waits in line (idleFor): otherwise the step
			// it made ready would overtake older ones, and the Dispatcher
			// serves the claim in line instead.
			if w != nil && slices.Contains(w.caps, actionType) && w.route.takes(tags) &&
				(!w.now || h.o.idleFor(actionType, w.route)) {
				free[i] = nil
				return w
			}
		}
		return nil
	}
	var need []stepNeed
	for _, i := range ready {
		at, tags := s.At(i).ActionType, s.TagsAt(i)
		if take(at, tags) != nil {
			continue
		}
		k := slices.IndexFunc(need, func(n stepNeed) bool { return n.actionType == at && slices.Equal(n.tags, tags) })
		if k < 0 {
			need = append(need, stepNeed{actionType: at, tags: tags})
			k = len(need) - 1
		}
		need[k].n++
	}
	if len(need) > 0 {
		h.reserved = append(h.reserved, h.o.reserveWaiters(need)...)
	}
	free = h.candidates()
	for _, i := range ready {
		if w := take(s.At(i).ActionType, s.TagsAt(i)); w != nil {
			h.hand(s, i, w)
		}
	}
	if len(h.given) > 0 && s.Job.Status == stroem.JobPending {
		s.Job.Status = stroem.JobRunning
	}
}

// hand makes the step at i running for w's worker under a new attempt,
// recorded as started when w is a completion's claim.
func (h *handoff) hand(s *persistence.JobState, i int, w *waiter) {
	lease := s.Now.Add(h.o.cfg.Lease)
	st := s.MutAt(i)
	now := s.Now
	st.Status = stroem.StepRunning
	st.Attempt++
	st.WorkerID = w.workerID
	st.AttemptStatus = stroem.AttemptRunning
	st.ExitCode = nil
	st.ErrorMessage = ""
	st.LeaseExpiresAt = &lease
	st.StartedAt = &now
	st.CompletedAt = nil
	if h.isOwn(w) {
		st.StartedAttempt = st.Attempt // the answer stands for `start`
		s.HandFor(i, w.link)           // a repeat of the completion finds it by this
	}
	h.given[st.Name] = w
}

// offer gives each completion's claim left without a step one of the job's
// steps that were ready when the transition read the job: of the claim's
// action types, the one ready longest (then by position), which is what
// the Dispatcher's claim would take from this job. In a fan-out this saves
// the claim its own statement and transaction. The write is an offer
// (persistence.JobState.Offer): the store takes the step only if no claim
// holds it by then (the Dispatcher may be claiming the job's ready steps
// for others at this moment: the rows are read unlocked) and no other job
// has a step of those types ready since earlier, which a claim would take
// first. A claim whose step was not taken goes to the Dispatcher after the
// commit, as before (deliver, giveBack). Long polls are not offered steps:
// the Dispatcher serves them in line.
func (h *handoff) offer(s *persistence.JobState, g *progress, wasReady func(int) bool) {
	var claims []*waiter
	for _, c := range h.own {
		// Not a duplicate's: its first run may have been given a step by
		// the Dispatcher, which the repeat must bring (giveBack).
		if c.accepted && !c.duplicate && c.w.handed.Load() == 0 && !c.w.abandoned.Load() && !h.gave(c.w) {
			claims = append(claims, c.w)
		}
	}
	if len(claims) == 0 || wasReady == nil {
		return
	}
	// The len(claims) oldest claimable steps of the claims' types, in
	// claim order (ready_at, then position), among the job's first
	// offerScan ready steps by position: a big job's transition reads that
	// many steps, not every ready one (reading each was 13 % of the
	// server's CPU samples in a fan-out of 10,000 steps), and it skips the
	// runs of steps g knows finished. A step of the job ready
	// since earlier but further on waits for a later claim, and when none of
	// those steps suits the claims, the Dispatcher serves them; across jobs
	// the store keeps the order (persistence.JobState.Offer).
	type ready struct {
		at         time.Time
		pos        int
		actionType string
	}
	var oldest []ready
	seen := 0
	for i := g.openFrom(s, 0); i < s.Len(); i = g.openFrom(s, i+1) {
		if !wasReady(i) {
			continue
		}
		if seen++; seen > offerScan {
			break
		}
		at, t, ok := s.ReadyAt(i)
		if !ok || !slices.ContainsFunc(claims, func(w *waiter) bool { return slices.Contains(w.caps, t) && w.route.takes(s.TagsAt(i)) }) {
			continue
		}
		if len(oldest) == len(claims) && !at.Before(oldest[len(oldest)-1].at) {
			continue // positions ascend: an equal time comes after
		}
		k := len(oldest)
		for k > 0 && at.Before(oldest[k-1].at) {
			k--
		}
		oldest = slices.Insert(oldest, k, ready{at: at, pos: i, actionType: t})
		if len(oldest) > len(claims) {
			oldest = oldest[:len(claims)]
		}
	}
	for _, w := range claims {
		for k, r := range oldest {
			if r.pos >= 0 && slices.Contains(w.caps, r.actionType) && w.route.takes(s.TagsAt(r.pos)) {
				h.hand(s, r.pos, w)
				s.Offer(r.pos, w.route.persistenceRoute(w.caps))
				oldest[k].pos = -1
				break
			}
		}
	}
}

// offerScan bounds the steps offer compares (see there).
const offerScan = 64

// gave says whether the latest run gave w a step.
func (h *handoff) gave(w *waiter) bool {
	for _, x := range h.given {
		if x == w {
			return true
		}
	}
	return false
}

// isOwn says whether w is the claim of one of the transition's
// completions.
func (h *handoff) isOwn(w *waiter) bool {
	return slices.ContainsFunc(h.own, func(c ownClaim) bool { return c.w == w })
}

// redeliverHanded gives the claim of a duplicate completion the step the
// Dispatcher claimed for the completion's first run and recorded as
// started (dispatcher.claimFor), if its worker still runs that attempt:
// the worker repeats a completion whose answer it did not get. With none,
// the claim goes to the Dispatcher like any other. When the store cannot
// say, the claim is answered nothing: claiming it another step could leave
// the first one to its lease. The store marks the step found, so that an
// undo racing with this repeat (unassignHanded, on any server) cannot take
// back a step this answer carries.
func (o *Orchestrator) redeliverHanded(w *waiter, fresh bool) {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	claimed, err := o.store.StepsHandedFor(c, w.workerID, w.link)
	if err != nil {
		o.storeFailed(err)
		o.log.Warn("find the step claimed for a repeated completion", "worker_id", w.workerID, "err", err)
		w.reply <- nil
		return
	}
	if len(claimed) == 0 {
		o.root.Send(o.dispatcher, &unreserve{ws: []*waiter{w}, fresh: fresh})
		return
	}
	done := &claimDone{}
	o.renderClaimed(c, w.workerID, claimed[:1], done)
	if len(done.assignments) == 0 {
		// Its plan could not be read (it stays for the next repeat, or its
		// lease: a step found for a repeat is not undone), or its command
		// did not render (it failed): see renderClaimed.
		w.reply <- nil
		return
	}
	a := done.assignments[0]
	o.root.Send(o.orch, &routed{jobID: a.JobID, msg: &stepClaimed{
		step: a.StepName, attempt: a.Attempt, leaseIn: o.cfg.Lease, timeout: a.Spec.Timeout.D(),
	}})
	if !w.handed.CompareAndSwap(0, 1) {
		// Nobody listens any more. The step stays the worker's for its
		// next repeat (or its lease): once found for a repeat, a step is
		// never undone (StepsHandedFor), since an earlier repeat's answer
		// may have carried it.
		return
	}
	w.reply <- a
}

// readyAsRead says, by position, whether a step of s was ready when the
// store gave s to the transition's function, whatever the function changed
// since (persistence.JobState.ReadStatusAt), without a walk over the job's
// steps: it is asked about the steps the transition changed, and offer's
// first ready ones. (A bitmap of every step, made at the start of each
// transition, was 6 % of the server's CPU samples in a 10,000-step
// fan-out, and its allocation fed the collector.) A step appended since is
// not one that was ready.
func readyAsRead(s *persistence.JobState) func(int) bool {
	return func(i int) bool {
		st, ok := s.ReadStatusAt(i)
		return ok && st == stroem.StepReady
	}
}

// deliver runs after the transition committed: each handed-off step's
// command is rendered and its request answered; unused requests go back.
// A step whose command does not render fails, as at claim time. g lets the
// check for steps left ready skip the finished ones (claimable).
func (h *handoff) deliver(p *plan, s *persistence.JobState, g *progress) {
	hints := stateHints{} // the steps share their job's task
	for name, w := range h.given {
		st := s.Find(name)
		if st == nil || st.Status != stroem.StepRunning || st.WorkerID != w.workerID {
			// An offer the store did not take (offer): the request goes
			// to the Dispatcher below.
			continue
		}
		cs := persistence.ClaimedStep{
			JobID: s.Job.ID, StepName: st.Name, Attempt: st.Attempt, ActionName: st.ActionName,
			ActionType: st.ActionType, Image: st.Image, Input: st.Input, Workspace: s.Job.Workspace,
			TaskName: s.Job.TaskName, Revision: s.Job.Revision, SnapshotID: s.SnapshotID,
			Each: eachOf(p, s, st.Name), StateScopes: s.StateScopes,
		}
		a, err := h.assignment(p, cs, hints)
		if err != nil {
			h.o.root.Send(h.o.orch, &routed{jobID: cs.JobID, msg: &jobEvent{ev: evStepFailed{
				step: cs.StepName, attempt: cs.Attempt, msg: p.masker.MaskError(err),
			}}})
			continue // the request goes back below
		}
		// Recorded as started: handed to a completion's own claim.
		a.Started = st.StartedAttempt == st.Attempt
		h.took(w)
		if !w.handed.CompareAndSwap(0, 1) {
			// The request stopped listening (the transition took longer than
			// the long poll): give the step back instead (a started one stays
			// for the completion's repeat: Unassign).
			go h.o.Unassign(a, w.workerID)
			continue
		}
		w.reply <- a
	}
	h.giveBack(claimable(s, g))
}

// took drops w, which a step was handed to, from the requests still held.
func (h *handoff) took(w *waiter) {
	h.reserved = slices.DeleteFunc(h.reserved, func(x *waiter) bool { return x == w })
	h.own = slices.DeleteFunc(h.own, func(c ownClaim) bool { return c.w == w })
}

func (h *handoff) assignment(p *plan, cs persistence.ClaimedStep, hints stateHints) (*stroem.Assignment, error) {
	h.o.stateTemplates(context.Background(), p, &cs)
	spec, err := renderSpec(p, cs)
	if err != nil {
		return nil, err
	}
	spec.Timeout = h.o.stepTimeout(spec.Timeout)
	a := &stroem.Assignment{
		JobID: cs.JobID, StepName: cs.StepName, Attempt: cs.Attempt,
		ActionName: cs.ActionName, ActionType: cs.ActionType, Image: cs.Image,
		Workspace: cs.Workspace, Revision: cs.Revision, Spec: spec, Input: cs.Input,
		LeaseMS: h.o.cfg.Lease.Milliseconds(), Mask: stepMask(p, spec, cs.Input),
		State: hints.get(context.Background(), h.o, cs.Workspace, cs.TaskName, cs.StateScopes),
	}
	stampOwner(p, a)
	return a, nil
}

// release gives every still reserved request back to the Dispatcher and
// answers the completions' claims with nothing: the transition failed.
func (h *handoff) release() {
	for i := range h.own {
		h.own[i].accepted = false
	}
	h.giveBack(false)
}

// giveBack gives every still reserved request back to the Dispatcher, with
// the claims of accepted completions not used; the others are answered
// nothing. fresh says a step of the job is left ready (see unreserve).
func (h *handoff) giveBack(fresh bool) {
	ws := slices.DeleteFunc(h.reserved, func(w *waiter) bool { return w == nil })
	for _, c := range h.own {
		switch {
		case !c.accepted:
			c.w.reply <- nil
		case c.duplicate && c.w.link != "":
			// Its first run may have been given a step by the Dispatcher.
			go h.o.redeliverHanded(c.w, fresh)
		default:
			ws = append(ws, c.w)
		}
	}
	h.reserved, h.given, h.own = nil, nil, nil
	if len(ws) > 0 {
		h.o.root.Send(h.o.dispatcher, &unreserve{ws: ws, fresh: fresh})
	}
}

// reserveWaiters takes up to n waiting requests per need (action type and
// tags) out of the Dispatcher's queue. It is called from a transition's
// goroutine, never from an actor.
func (o *Orchestrator) reserveWaiters(need []stepNeed) []*waiter {
	if o.dispatcher == nil || o.draining.Load() {
		return nil
	}
	r := &reserve{need: need, reply: make(chan []*waiter, 1)}
	o.root.Send(o.dispatcher, r)
	select {
	case ws := <-r.reply:
		return ws
	case <-time.After(time.Second):
		// The Dispatcher did not answer (stopping): hand off nothing. If it
		// answers later, its reservations would be stranded, so give them
		// back as soon as they arrive.
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			select {
			case ws := <-r.reply:
				(&handoff{o: o, reserved: ws}).release()
			case <-ctx.Done():
			}
		}()
		return nil
	}
}
