package actors

import (
	"cmp"
	"context"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
)

// waiter is one worker's claim request waiting for a step. reply is answered
// exactly once: an assignment, or nil for "nothing came".
type waiter struct {
	id       uint64
	workerID string
	caps     []string
	// route is the worker's tags: a step goes to the request only if its
	// action type is in caps and route takes its tags (route.go).
	route route
	key   string
	reply chan *stroem.Assignment
	// abandoned is set when the request stopped waiting; a reserved request
	// given back then is answered with nothing instead of queued again.
	abandoned atomic.Bool
	// handed is claimed (0 → 1) by a hand-off before it answers, or by Claim
	// (0 → 2) when it stops listening: a step is never sent to a request
	// nobody reads any more.
	handed atomic.Int32
	// now marks the claim a completion carries for its slot
	// (StepCompleteNext): it never waits for a step to become ready. The
	// Dispatcher answers it nothing as soon as no claim is due for its
	// group (see answerNow), and gives it the first step a claim returns.
	now bool
	// link names the completion a now claim comes with
	// (persistence.HandedLink): the Dispatcher's claim records the step it
	// takes for it as started, under this name (see claimFor).
	link string
}

var waiterIDs atomic.Uint64

// dispatcher hands ready steps to waiting workers. Requests are grouped by
// worker, capability set and route (a worker keeps one long poll open per
// free slot). One claim query runs at a time, for the group at the head of the
// queue, claiming as many steps as that group has waiting requests. A
// wake-up (steps may have become ready) queues every group with waiters; a
// claim that comes back short proves there is nothing more for its
// capabilities and route, so the groups it covers that were queued before
// it started are dropped from the queue instead of each running an empty
// query. No
// readiness signal is lost (a wake-up after a claim started re-queues) and
// no polling loop is needed.
type dispatcher struct {
	o        *Orchestrator
	groups   map[string]*group
	queue    []*group
	gen      uint64 // counts wake-ups
	inFlight bool
	// claiming is the group the claim in flight is for: a hand-off does not
	// reserve its requests (the claim may return a step for each of them).
	claiming string
	// linked are the completions' claims (by link) the claim in flight
	// records its steps as started for: each is answered by claimed, never
	// before, even when it stops waiting meanwhile (see claimFor).
	linked map[string]*waiter
	// empty lists the capability sets (and routes) a short claim found
	// nothing more for, at the generation it started in (see knownEmpty).
	empty []emptyCaps
	// recheckArmed says a recheck is due: requests knownEmpty spared a
	// query look again once what vouched for them is stale.
	recheckArmed bool
}

// emptyCaps says a claim for caps that started at wake-up generation gen
// came back short at time at.
type emptyCaps struct {
	caps  []string
	route route
	gen   uint64
	at    time.Time
}

// knownEmpty reports whether a recent short claim, with no wake-up since,
// covered caps and r (every step they take, it would have taken). Then a
// new request waits without querying: an idle fleet's polls (each slot
// polls again every claim wait) would otherwise cost a query each. Config.EmptyClaimFor bounds "recent" (1 s), so a step that
// became ready without a wake-up is still found by a request soon after.
func (d *dispatcher) knownEmpty(caps []string, r route, now time.Time) bool {
	for _, e := range d.empty {
		if e.gen == d.gen && now.Sub(e.at) < d.o.cfg.EmptyClaimFor && isSubset(caps, e.caps) && e.route.covers(r) {
			return true
		}
	}
	return false
}

// noteEmpty records a short claim, forgetting entries a wake-up or time made
// stale.
func (d *dispatcher) noteEmpty(caps []string, r route, gen uint64, now time.Time) {
	d.empty = slices.DeleteFunc(d.empty, func(e emptyCaps) bool {
		return e.gen != d.gen || now.Sub(e.at) >= d.o.cfg.EmptyClaimFor || isSubset(e.caps, caps) && r.covers(e.route)
	})
	if gen == d.gen && len(d.empty) < 64 {
		d.empty = append(d.empty, emptyCaps{caps: caps, route: r, gen: gen, at: now})
	}
}

// answerNow answers nothing to g's requests that do not wait (waiter.now):
// called when g is neither queued nor being claimed any more, so no step is
// on its way to them.
func (d *dispatcher) answerNow(g *group) {
	if g.queued || d.claiming == g.key {
		return
	}
	g.waiters = slices.DeleteFunc(g.waiters, func(w *waiter) bool {
		if w.now {
			w.reply <- nil
		}
		return w.now
	})
}

// publishIdle publishes the action types some waiting long poll can run,
// with the routes of those long polls (Orchestrator.idleTypes): a long
// poll waits only while its claim found nothing, so no step of those types
// that its route takes is left waiting in line. A transition
// gives a step it makes ready to a completion's claim only then (see
// handoff.assign); otherwise that claim is served in line, oldest ready
// step first, like any claim. A group queued or being claimed does not
// count: its claim has not found nothing yet (ready steps may be what it
// is about to find).
func (d *dispatcher) publishIdle() {
	var idle map[string][]route
	for _, g := range d.groups {
		if g.queued || g.key == d.claiming || !slices.ContainsFunc(g.waiters, func(w *waiter) bool { return !w.now }) {
			continue
		}
		if idle == nil {
			idle = map[string][]route{}
		}
		for _, c := range g.caps {
			// Only the widest routes: one another covers adds nothing, so
			// the set is the same whatever order the groups come in.
			if !slices.ContainsFunc(idle[c], func(r route) bool { return r.covers(g.route) }) {
				idle[c] = append(slices.DeleteFunc(idle[c], g.route.covers), g.route)
			}
		}
	}
	for _, rs := range idle {
		if len(rs) > 1 {
			slices.SortFunc(rs, func(a, b route) int { return strings.Compare(a.key(), b.key()) })
		}
	}
	if old := d.o.idleTypes.Load(); old == nil && idle == nil || old != nil && sameIdle(*old, idle) {
		return
	}
	if idle == nil {
		d.o.idleTypes.Store(nil)
		return
	}
	d.o.idleTypes.Store(&idle)
}

// sameIdle says whether two published idle sets are the same.
func sameIdle(a, b map[string][]route) bool {
	return maps.EqualFunc(a, b, func(x, y []route) bool {
		return slices.EqualFunc(x, y, func(p, q route) bool { return p.key() == q.key() })
	})
}

// idleFor reports whether a waiting long poll can run action type t and
// every step of it that r takes (see publishIdle): then no such step waits
// in line.
func (o *Orchestrator) idleFor(t string, r route) bool {
	idle := o.idleTypes.Load()
	return idle != nil && slices.ContainsFunc((*idle)[t], func(ir route) bool { return ir.covers(r) })
}

// idleType is idleFor a claim without tags.
func (o *Orchestrator) idleType(t string) bool { return o.idleFor(t, route{}) }

// group is the waiting requests of one worker with one capability set and
// route.
type group struct {
	key      string
	workerID string
	caps     []string // sorted, unique
	route    route
	waiters  []*waiter
	queued   bool
	// queuedGen is the wake-up generation the group was last queued at.
	queuedGen uint64
	// spared says requests of the group wait without a query of their own
	// (knownEmpty); the recheck queues it when that is stale.
	spared bool
}

func newDispatcher(o *Orchestrator) *dispatcher {
	return &dispatcher{o: o, groups: map[string]*group{}}
}

func (d *dispatcher) Receive(ctx actor.Context) {
	defer d.publishIdle()
	switch m := ctx.Message().(type) {
	case *claimWait:
		if d.o.draining.Load() {
			m.w.reply <- nil // sent just before the drain: do not wait
			return
		}
		g := d.groups[m.w.key]
		if g == nil {
			g = &group{key: m.w.key, workerID: m.w.workerID, caps: m.w.caps, route: m.w.route}
			d.groups[m.w.key] = g
		}
		g.waiters = append(g.waiters, m.w)
		if !g.queued && d.knownEmpty(g.caps, g.route, time.Now()) {
			// Nothing ready for it: a wake-up queues it, or the recheck
			// once the short claim no longer vouches for it.
			g.spared = true
			d.armRecheck(ctx)
			return
		}
		d.enqueue(g)
		d.pump(ctx)
	case *recheck:
		d.recheckArmed = false
		now := time.Now()
		for _, g := range d.groups {
			if !g.spared || g.queued || len(g.waiters) == 0 {
				continue
			}
			if d.knownEmpty(g.caps, g.route, now) {
				d.armRecheck(ctx) // a newer short claim vouches for it
				continue
			}
			d.enqueue(g)
		}
		d.pump(ctx)
	case *claimAbandon:
		for _, g := range d.groups {
			for i, w := range g.waiters {
				if w.id == m.id {
					g.waiters = slices.Delete(g.waiters, i, i+1)
					if d.linked[w.link] != w {
						w.reply <- nil
					} // else the claim in flight answers it (claimFor)
					d.forgetIfIdle(g)
					return
				}
			}
		}
	case *wakeUp:
		d.gen++
		d.empty = d.empty[:0]
		for _, g := range d.groups {
			if len(g.waiters) > 0 {
				d.enqueue(g)
			}
		}
		d.pump(ctx)
	case *claimDone:
		d.claimed(ctx, m)
	case *reserve:
		m.reply <- d.reserve(m.need)
	case *countWaiting:
		n := 0
		for _, g := range d.groups {
			n += len(g.waiters)
		}
		m.reply <- n
	case *unreserve:
		now := time.Now()
		for _, w := range m.ws {
			if w.handed.Load() == 2 {
				continue // nobody listens any more
			}
			if w.abandoned.Load() || d.o.draining.Load() {
				w.reply <- nil
				continue
			}
			g := d.groups[w.key]
			if w.now && !m.fresh && (g == nil || !g.queued) && d.knownEmpty(w.caps, w.route, now) {
				w.reply <- nil // nothing is ready for it: it does not wait
				continue
			}
			if g == nil {
				g = &group{key: w.key, workerID: w.workerID, caps: w.caps, route: w.route}
				d.groups[w.key] = g
			}
			i, _ := slices.BinarySearchFunc(g.waiters, w.id, func(x *waiter, id uint64) int { return cmp.Compare(x.id, id) })
			g.waiters = slices.Insert(g.waiters, i, w)
			d.enqueue(g)
		}
		d.pump(ctx)
	case *drain, *actor.Stopping, *actor.Restarting:
		for key, g := range d.groups {
			for _, w := range g.waiters {
				if d.linked[w.link] != w {
					w.reply <- nil
				} // else the claim in flight answers it (claimFor)
			}
			delete(d.groups, key)
		}
		d.queue = nil
	}
}

// reserve takes, for each need, up to n waiting long polls that can run
// steps of its action type and tags out of the queue, oldest first: a
// transition hands steps to them directly (see handoff.go). Requests of the group a claim is in flight for are left
// alone, and so are completions' claims (waiter.now): the Dispatcher serves
// those in line.
func (d *dispatcher) reserve(need []stepNeed) []*waiter {
	var out []*waiter
	if d.o.draining.Load() {
		return nil
	}
	polling := func(w *waiter) bool { return !w.now }
	for _, sn := range need {
		for n := sn.n; n > 0; n-- {
			var best *group
			bestAt := -1
			for _, g := range d.groups {
				if g.key == d.claiming || !slices.Contains(g.caps, sn.actionType) || !g.route.takes(sn.tags) {
					continue
				}
				if i := slices.IndexFunc(g.waiters, polling); i >= 0 && (best == nil || g.waiters[i].id < best.waiters[bestAt].id) {
					best, bestAt = g, i
				}
			}
			if best == nil {
				break
			}
			out = append(out, best.waiters[bestAt])
			best.waiters = slices.Delete(best.waiters, bestAt, bestAt+1)
			d.forgetIfIdle(best)
		}
	}
	return out
}

// armRecheck has a recheck sent to the dispatcher once EmptyClaimFor has
// passed, unless one is due already.
func (d *dispatcher) armRecheck(ctx actor.Context) {
	if d.recheckArmed {
		return
	}
	d.recheckArmed = true
	self, root := ctx.Self(), ctx.ActorSystem().Root
	time.AfterFunc(d.o.cfg.EmptyClaimFor, func() { root.Send(self, &recheck{}) })
}

func (d *dispatcher) enqueue(g *group) {
	g.queuedGen = d.gen
	g.spared = false
	if !g.queued {
		g.queued = true
		d.queue = append(d.queue, g)
	}
}

// forgetIfIdle drops a group without waiters, so workers that went away do
// not accumulate.
func (d *dispatcher) forgetIfIdle(g *group) {
	if len(g.waiters) == 0 && !g.queued {
		delete(d.groups, g.key)
	}
}

// pump starts the next claim, unless one is in flight.
func (d *dispatcher) pump(ctx actor.Context) {
	for !d.inFlight && len(d.queue) > 0 {
		g := d.queue[0]
		d.queue = d.queue[1:]
		g.queued = false
		if len(g.waiters) == 0 {
			d.forgetIfIdle(g)
			continue
		}
		d.inFlight, d.claiming = true, g.key
		key, workerID, caps, r, limit, gen := g.key, g.workerID, g.caps, g.route, len(g.waiters), d.gen
		handed := d.claimFor(g)
		o, self, root := d.o, ctx.Self(), ctx.ActorSystem().Root
		o.pool.Go(func() {
			done := o.claimSteps(key, workerID, caps, r, limit, handed)
			done.gen = gen
			root.Send(self, done)
		})
	}
}

// claimFor lists the links of g's completions' claims, in the order the
// Dispatcher serves g's requests (those that do not wait first, see
// claimed): the claim about to run records the steps it takes for them as
// started (persistence.ClaimParams.Handed), so their workers run them
// without a `start` report, and notes them in d.linked.
//
// A step recorded as started is not given back when its answer does not
// reach the worker: the worker repeats a completion whose answer it did not
// get, and is given the step again (handoff.redeliverHanded). So such a
// request is answered by claimed, with its step, even if it stopped
// waiting meanwhile (claimAbandon leaves it to claimed): its completion is
// answered with the step, or, if its caller is gone, the worker repeats
// it. Only when no answer can be sent at all (the request stopped
// listening for good, see stopListening) is the step given back
// (unassignHanded).
func (d *dispatcher) claimFor(g *group) []string {
	var links []string
	d.linked = nil
	for _, w := range g.waiters {
		if !w.now || w.link == "" {
			continue
		}
		if d.linked == nil {
			d.linked = map[string]*waiter{}
		}
		if d.linked[w.link] == nil { // one step per completion
			d.linked[w.link] = w
			links = append(links, w.link)
		}
	}
	return links
}

// claimSteps claims up to limit steps of caps that r takes for one
// worker, the first len(handed) recorded as started for those completions'
// claims, and renders their commands.
func (o *Orchestrator) claimSteps(key, workerID string, caps []string, r route, limit int, handed []string) *claimDone {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := &claimDone{key: key, workerID: workerID, caps: caps, route: r, limit: limit}
	claimed, err := o.store.StepsClaim(c, persistence.ClaimParams{
		WorkerID: workerID, Capabilities: caps, Tags: r.tags, Exclusive: r.exclusive,
		Limit: limit, Lease: o.cfg.Lease, Handed: handed,
	})
	if err != nil {
		done.err = err
		return done
	}
	o.renderClaimed(c, workerID, claimed, done)
	return done
}

// renderClaimed renders the commands of steps claimed for workerID into
// done. A step that cannot be rendered for want of the store is given
// back; one whose command does not render fails, as at claim time.
func (o *Orchestrator) renderClaimed(c context.Context, workerID string, claimed []persistence.ClaimedStep, done *claimDone) {
	hints := stateHints{}
	for _, cs := range claimed {
		giveBack := func() {
			if cs.HandedFor != "" {
				go o.unassignHanded(cs.JobID, cs.StepName, cs.Attempt, workerID, cs.HandedFor)
				return
			}
			go o.Unassign(&stroem.Assignment{JobID: cs.JobID, StepName: cs.StepName, Attempt: cs.Attempt}, workerID)
		}
		p, err := o.planFor(c, cs.SnapshotID)
		if err != nil {
			// The task definition could not be read (the store is likely
			// down): give the step back rather than fail it for good.
			o.storeFailed(err)
			done.failed++
			giveBack()
			continue
		}
		o.stateTemplates(c, p, &cs)
		if err := o.claimEach(c, p, &cs); err != nil {
			o.storeFailed(err)
			done.failed++
			giveBack()
			continue
		}
		spec, err := renderSpec(p, cs)
		spec.Timeout = o.stepTimeout(spec.Timeout)
		if err != nil {
			done.failed++
			o.root.Send(o.orch, &routed{jobID: cs.JobID, msg: &jobEvent{ev: evStepFailed{
				step: cs.StepName, attempt: cs.Attempt, msg: p.masker.MaskError(err),
			}}})
			continue
		}
		o.jobPlans.Store(cs.JobID, p)
		done.assignments = append(done.assignments, &stroem.Assignment{
			JobID: cs.JobID, StepName: cs.StepName, Attempt: cs.Attempt,
			ActionName: cs.ActionName, ActionType: cs.ActionType, Image: cs.Image,
			Workspace: cs.Workspace, Revision: cs.Revision, Spec: spec, Input: cs.Input,
			LeaseMS: o.cfg.Lease.Milliseconds(), Mask: stepMask(p, spec, cs.Input),
			State:   hints.get(c, o, cs.Workspace, cs.TaskName, cs.StateScopes),
			Started: cs.HandedFor != "",
		})
		done.links = append(done.links, cs.HandedFor)
		stampOwner(p, done.assignments[len(done.assignments)-1])
	}
}

// claimed hands claimed steps to waiting workers, oldest request first,
// then decides what to claim next.
func (d *dispatcher) claimed(ctx actor.Context, m *claimDone) {
	d.inFlight, d.claiming = false, ""
	g := d.groups[m.key]
	linked := d.linked
	d.linked = nil
	if m.err != nil {
		d.o.storeFailed(m.err)
		d.o.log.Warn("claim failed", "err", m.err)
		// The store is likely down: waiters keep waiting; their long polls
		// end on their own deadline, and a wake-up or a new request retries.
		// Those that do not wait are answered nothing (those that left
		// first: answerNow takes the others out of g).
		answerLeft(linked, g)
		if g != nil {
			d.answerNow(g)
		}
		d.pump(ctx)
		return
	}
	for i, a := range m.assignments {
		// The claim's lease is watched whatever happens to it next: a step
		// given back (below, or by Claim and the HTTP layer) stays running if
		// the give-back fails, and nothing else would ever expire it.
		ctx.Send(d.o.orch, &routed{jobID: a.JobID, msg: &stepClaimed{
			step: a.StepName, attempt: a.Attempt, leaseIn: d.o.cfg.Lease, timeout: a.Spec.Timeout.D(),
		}})
		if link := m.links[i]; link != "" {
			// Recorded as started for this completion's claim: it is
			// that request's step (see claimFor).
			w := linked[link]
			delete(linked, link)
			if g != nil {
				g.waiters = slices.DeleteFunc(g.waiters, func(x *waiter) bool { return x == w })
			}
			if w == nil || !w.handed.CompareAndSwap(0, 1) {
				// Nobody can be answered with it (the request stopped
				// listening for good): it goes back.
				go d.o.unassignHanded(a.JobID, a.StepName, a.Attempt, m.workerID, link)
				continue
			}
			w.reply <- a
			continue
		}
		if g == nil || len(g.waiters) == 0 {
			// Every waiter left meanwhile: give the step back.
			go d.o.Unassign(a, m.workerID)
			continue
		}
		// A request that does not wait first: a long poll can wait for the
		// next step, and a completion's claim answered nothing costs its
		// slot a long poll of its own.
		i := max(slices.IndexFunc(g.waiters, func(w *waiter) bool { return w.now }), 0)
		w := g.waiters[i]
		g.waiters = slices.Delete(g.waiters, i, i+1)
		w.reply <- a
	}
	answerLeft(linked, g)
	short := len(m.assignments)+m.failed < m.limit && m.failed == 0
	if short {
		// Nothing more is ready for these capabilities and this route as of
		// when the claim started, whether or not its requests are still
		// there: groups it covers, queued no later, need not query, nor new
		// requests for a moment (knownEmpty).
		d.noteEmpty(m.caps, m.route, m.gen, time.Now())
		d.queue = slices.DeleteFunc(d.queue, func(q *group) bool {
			drop := q.queuedGen <= m.gen && isSubset(q.caps, m.caps) && m.route.covers(q.route)
			if drop {
				q.queued = false
				d.answerNow(q)
				d.forgetIfIdle(q)
			}
			return drop
		})
	}
	if g != nil {
		if !short && len(g.waiters) > 0 {
			// Full (more may be ready), or a step failed to render: look again.
			d.enqueue(g)
		}
		d.answerNow(g) // unless a wake-up queued it again meanwhile
		d.forgetIfIdle(g)
	}
	d.pump(ctx)
}

// answerLeft answers nothing to the completions' claims a claim was made
// for (claimFor) that got no step from it and left their group g meanwhile
// (claimAbandon and drain leave them to the claim). Those still in g are
// answered as g's other requests are: it must run before anything takes
// answered requests out of g (answerNow).
func answerLeft(linked map[string]*waiter, g *group) {
	for _, w := range linked {
		if g == nil || !slices.Contains(g.waiters, w) {
			w.reply <- nil
		}
	}
}

// isSubset reports whether every element of a (sorted) is in b (sorted).
func isSubset(a, b []string) bool {
	for _, x := range a {
		if _, ok := slices.BinarySearch(b, x); !ok {
			return false
		}
	}
	return true
}

// normalizeCaps sorts and deduplicates a capability list.
func normalizeCaps(caps []string) []string {
	c := slices.Clone(caps)
	sort.Strings(c)
	return slices.Compact(c)
}

// groupKey groups requests by worker, capability set and route.
func groupKey(workerID string, caps []string, r route) string {
	return workerID + "|" + strings.Join(caps, ",") + "|" + r.key()
}

// Claim waits up to req.WaitMS for a step the worker can run. It always
// returns a step the worker now holds, or nil; a step claimed for a caller
// that went away is given back.
func (o *Orchestrator) Claim(ctx context.Context, req stroem.ClaimRequest) (handed *stroem.Assignment, err error) {
	defer func() {
		if handed != nil && err == nil {
			o.handedOver(handed) // its start must be acknowledged in time (startack.go)
		}
	}()
	if req.WorkerID == "" {
		return nil, stroem.Invalid("worker_id is required")
	}
	if len(req.Capabilities) == 0 {
		return nil, stroem.Invalid("capabilities must list at least one action type")
	}
	if req.WaitMS < 0 {
		return nil, stroem.Invalid("wait_ms must not be negative")
	}
	if err := checkTags("tags", req.Tags); err != nil {
		return nil, err
	}
	wait := o.cfg.MaxWait
	if req.WaitMS < int(o.cfg.MaxWait/time.Millisecond) { // compared before the conversion: it overflows
		wait = time.Duration(req.WaitMS) * time.Millisecond
	}
	if o.draining.Load() {
		return nil, nil
	}
	caps, r := normalizeCaps(req.Capabilities), newRoute(req.Tags, req.Exclusive)
	w := &waiter{
		id: waiterIDs.Add(1), workerID: req.WorkerID, caps: caps, route: r,
		key: groupKey(req.WorkerID, caps, r), reply: make(chan *stroem.Assignment, 1),
	}
	o.root.Send(o.dispatcher, &claimWait{w: w})
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case a := <-w.reply:
		return a, nil
	case <-t.C:
	case <-ctx.Done():
	case <-o.stopped:
	}
	a := o.stopListening(w)
	if a != nil && ctx.Err() != nil {
		o.Unassign(a, req.WorkerID)
		return nil, ctx.Err()
	}
	return a, nil
}

// stopListening ends w's wait and returns the step handed to it meanwhile,
// if any: the Dispatcher drops the request (answering nothing) unless its
// answer is on its way, and a hand-off that reserved it answers within
// ClaimGrace or gives its step back.
func (o *Orchestrator) stopListening(w *waiter) *stroem.Assignment {
	w.abandoned.Store(true)
	o.root.Send(o.dispatcher, &claimAbandon{id: w.id})
	t := time.NewTimer(o.cfg.ClaimGrace)
	defer t.Stop()
	select {
	case a := <-w.reply:
		return a
	case <-t.C:
		if w.handed.CompareAndSwap(0, 2) {
			// Reserved by a transition that has not answered (a slow
			// database), or the Dispatcher is gone (shutdown): nothing was
			// handed to us, and nothing will be.
			return nil
		}
		return <-w.reply // a hand-off is answering right now
	}
}

// nextClaimWait bounds how long a completion's claim waits for the
// Dispatcher once the completion is recorded. It never waits for a step to
// become ready (the Dispatcher answers nothing at once then), only for a
// claim query that is due; this bounds that wait when the store is slow.
const nextClaimWait = time.Second

// StepCompleteNext applies a worker's completion report, fenced by its
// attempt, like StepComplete. With c.Next set it also claims the slot's
// next step, without waiting for one: a step the completing transition
// makes ready is handed to it in the same transaction (handoff.go), else
// the Dispatcher claims a ready one for it at once, if there is one. That
// step is held by the worker and recorded as started (Assignment.Started):
// the worker runs it without a `start`, and repeats the completion if it
// did not get this answer, which brings the step again (handoff.go). A
// completion that is refused (or fails) gets none.
func (o *Orchestrator) StepCompleteNext(ctx context.Context, jobID, step string, c stroem.Completion) (handed *stroem.Assignment, err error) {
	m, err := o.Masker(ctx, jobID)
	if err != nil {
		return nil, err
	}
	next := c.Next
	c.Next = nil
	ev := jobEvent{ev: evComplete{step: step, c: maskCompletion(m, c)}, reply: make(chan error, 1)}
	if next != nil && len(next.Capabilities) == 0 {
		return nil, stroem.Invalid("next.capabilities must list at least one action type")
	}
	if next != nil {
		if err := checkTags("next.tags", next.Tags); err != nil {
			return nil, err
		}
	}
	if next != nil && !o.draining.Load() {
		caps, r := normalizeCaps(next.Capabilities), newRoute(next.Tags, next.Exclusive)
		ev.next = &waiter{
			id: waiterIDs.Add(1), workerID: c.WorkerID, caps: caps, route: r, now: true,
			key: groupKey(c.WorkerID, caps, r), reply: make(chan *stroem.Assignment, 1),
		}
		if id, err := uuid.Parse(jobID); err == nil {
			ev.next.link = persistence.HandedLink(id.String(), step, c.Attempt)
		}
	}
	err = o.requestEvent(ctx, jobID, ev)
	w := ev.next
	if w == nil {
		return nil, err
	}
	if err != nil {
		// Whatever becomes of the claim, it is not this answer's: a step
		// handed to it yet is given back.
		go func() {
			if a := o.stopListening(w); a != nil {
				o.Unassign(a, w.workerID)
			}
		}()
		return nil, err
	}
	t := time.NewTimer(nextClaimWait)
	defer t.Stop()
	var a *stroem.Assignment
	select {
	case a = <-w.reply:
	case <-t.C:
		a = o.stopListening(w)
	case <-ctx.Done():
		a = o.stopListening(w)
	case <-o.stopped:
		a = o.stopListening(w)
	}
	if a != nil && ctx.Err() != nil {
		o.Unassign(a, w.workerID)
		return nil, nil // the completion is recorded; its caller is gone
	}
	if a != nil {
		o.handedOver(a) // its start must be acknowledged in time (startack.go)
	}
	return a, nil
}

// LongPollIdle reports whether a long poll that can run action type t waits
// with nothing found (for tests and diagnostics). Only then does a
// transition hand a step it makes ready to a completion's claim
// (handoff.go); a long poll whose claim is still in flight does not count.
func (o *Orchestrator) LongPollIdle(t string) bool { return o.idleType(t) }

// WaitingClaims counts the claim requests waiting in the Dispatcher (for
// tests and diagnostics); 0 when it does not answer within a second.
func (o *Orchestrator) WaitingClaims() int {
	if o.dispatcher == nil {
		return 0
	}
	r := &countWaiting{reply: make(chan int, 1)}
	o.root.Send(o.dispatcher, r)
	select {
	case n := <-r.reply:
		return n
	case <-time.After(time.Second):
		return 0
	}
}

type countWaiting struct{ reply chan int }

// unassignHanded gives back a step claimed and recorded as started for a
// completion's claim (link) that could not be answered with it (see
// claimFor). The store refuses once a repeat of the completion was given
// the step (StepsHandedFor): then the worker has it. If the store does not
// take it, the step waits for its lease.
func (o *Orchestrator) unassignHanded(jobID, step string, attempt int, workerID, link string) {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := o.store.StepUnclaimHanded(c, jobID, step, attempt, workerID, link); err != nil {
		o.log.Warn("give back undelivered step", "job_id", jobID, "step", step, "err", err)
	}
	o.Wake()
}

// Unassign gives back a step whose assignment never reached its worker.
func (o *Orchestrator) Unassign(a *stroem.Assignment, workerID string) {
	if a.Started {
		// Recorded as started when handed to a completion's claim
		// (handoff.go): it stays the worker's, which repeats a completion
		// whose answer it did not get and is given the step again. If the
		// worker never comes back, the lease runs out.
		o.log.Debug("undelivered step kept for its worker's repeated completion",
			"job_id", a.JobID, "step", a.StepName, "attempt", a.Attempt)
		return
	}
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := o.store.StepUnclaim(c, a.JobID, a.StepName, a.Attempt, workerID); err != nil {
		o.log.Warn("give back undelivered step", "job_id", a.JobID, "step", a.StepName, "err", err)
	}
	o.Wake()
}
