package actors

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
)

// unclaimStore records the claims given back.
type unclaimStore struct {
	schedStore
	unclaimLog
}

func (f *unclaimStore) StepUnclaim(_ context.Context, jobID, step string, attempt int, workerID string) error {
	f.record(step + "/" + workerID)
	return nil
}

// A hand-off answers a reserved request; one whose request stopped
// listening (a transition slower than the long poll and its grace) gives the
// step back instead of sending it to nobody.
func TestHandoffDeliversOrGivesBack(t *testing.T) {
	t.Parallel()
	b := setupTransitions(t)
	p, s := b.newJob(t, "chain", nil)
	store := &unclaimStore{}
	o := New(Config{ClaimGrace: 50 * time.Millisecond}, store, &oneWorkspace{}, nil, nil)
	require.NoError(t, o.Start(context.Background()))
	t.Cleanup(o.Stop)

	claim := func(worker string, wait time.Duration) <-chan *stroem.Assignment {
		got := make(chan *stroem.Assignment, 1)
		go func() {
			a, err := o.Claim(context.Background(), stroem.ClaimRequest{WorkerID: worker, Capabilities: []string{"shell"}, WaitMS: int(wait.Milliseconds())})
			require.NoError(t, err)
			got <- a
		}()
		require.Eventually(t, func() bool { return o.WaitingClaims() == 1 }, 5*time.Second, time.Millisecond)
		return got
	}

	// assign hands off once the request can be reserved: while the
	// Dispatcher's own claim for its group is in flight, it is left to that
	// claim (and nothing changes).
	assign := func(s *persistence.JobState) *handoff {
		var h *handoff
		require.Eventually(t, func() bool {
			h = &handoff{o: o}
			h.assign(s, nil, nil, nil)
			return len(h.given) > 0
		}, 5*time.Second, time.Millisecond)
		return h
	}

	// Listening: the request gets the step.
	got := claim("w1", 10*time.Second)
	h := assign(s)
	require.Len(t, h.given, 1, "first and solo are ready, one request waits: one step is handed off")
	require.Len(t, h.reserved, 1)
	var step string
	for name := range h.given {
		step = name
	}
	require.Equal(t, stroem.StepRunning, s.Find(step).Status)
	require.Equal(t, 1, s.Find(step).Attempt)
	require.Equal(t, "w1", s.Find(step).WorkerID)
	h.deliver(p, s, nil)
	a := <-got
	require.NotNil(t, a)
	require.Equal(t, step, a.StepName)
	require.Empty(t, store.all())

	// Not listening any more: the step is given back.
	_, s = b.newJob(t, "chain", nil)
	got = claim("w2", 300*time.Millisecond)
	h = assign(s)
	require.Nil(t, <-got, "the long poll and its grace ended before the hand-off answered")
	for name := range h.given {
		step = name
	}
	h.deliver(p, s, nil)
	require.Eventually(t, func() bool { return len(store.all()) == 1 }, 5*time.Second, time.Millisecond)
	require.Equal(t, []string{step + "/w2"}, store.all())
	require.Zero(t, o.WaitingClaims(), "the request is not queued again either")
}

// A step already ready when the transition read the job is committed as
// ready, so the Dispatcher may be claiming it at the same moment: the
// hand-off leaves it to the Dispatcher and reserves no request for it. A
// step the transition itself made ready is handed off.
func TestHandoffLeavesStepsReadyAsRead(t *testing.T) {
	t.Parallel()
	b := setupTransitions(t)
	_, s := b.newJob(t, "chain", nil)
	o := New(Config{}, &unclaimStore{}, &oneWorkspace{}, nil, nil)
	require.NoError(t, o.Start(context.Background()))
	t.Cleanup(o.Stop)
	go func() {
		_, _ = o.Claim(context.Background(), stroem.ClaimRequest{WorkerID: "w1", Capabilities: []string{"shell"}, WaitMS: 10_000})
	}()
	require.Eventually(t, func() bool { return o.WaitingClaims() == 1 }, 5*time.Second, time.Millisecond)

	read := s.Share() // as a store gives it to the transition's function
	wasReady := readyAsRead(read)
	anyReady := false
	for i := range read.Len() {
		anyReady = anyReady || wasReady(i)
	}
	require.True(t, anyReady, "the new job has ready steps")
	h := &handoff{o: o}
	h.assign(read, nil, wasReady, nil)
	require.Empty(t, h.given)
	require.Empty(t, h.reserved, "no request is taken from the Dispatcher")
	require.Equal(t, 1, o.WaitingClaims())
	for _, st := range read.All() {
		require.NotEqual(t, stroem.StepRunning, st.Status)
	}

	// The same steps made ready by the transition itself are handed off.
	require.Eventually(t, func() bool {
		h = &handoff{o: o}
		h.assign(s, nil, nil, nil)
		return len(h.given) > 0
	}, 5*time.Second, time.Millisecond)
	h.release()
}

// A claim request that reaches the Dispatcher after it drained (Claim
// checked draining just before Drain) is answered with nothing at once: it
// must not hold the server's shutdown for its whole long poll.
func TestClaimAfterDrainAnsweredAtOnce(t *testing.T) {
	t.Parallel()
	o := New(Config{}, &schedStore{}, &oneWorkspace{}, nil, nil)
	require.NoError(t, o.Start(context.Background()))
	t.Cleanup(o.Stop)
	o.Drain()
	w := &waiter{id: waiterIDs.Add(1), workerID: "w", caps: []string{"shell"}, key: groupKey("w", []string{"shell"}, route{}),
		reply: make(chan *stroem.Assignment, 1)}
	o.root.Send(o.dispatcher, &claimWait{w: w})
	select {
	case a := <-w.reply:
		require.Nil(t, a)
	case <-time.After(2 * time.Second):
		t.Fatal("a request queued after the drain waits for its whole long poll")
	}
	require.Zero(t, o.WaitingClaims())
}

// A completion's claim takes a step its transition made ready without a
// request reserved from the Dispatcher, provided a long poll waits for that
// action type (no older step waits in line); otherwise it is left to the
// Dispatcher. The claim of a refused completion (stale) is given nothing and
// answered nothing at once, not handed to the Dispatcher to claim a step for.
func TestHandoffCompletionClaim(t *testing.T) {
	t.Parallel()
	b := setupTransitions(t)
	o := New(Config{}, &unclaimStore{}, &oneWorkspace{}, nil, nil)
	require.NoError(t, o.Start(context.Background()))
	t.Cleanup(o.Stop)
	slot := func() *waiter {
		return &waiter{id: waiterIDs.Add(1), workerID: "w1", caps: []string{"shell"}, key: groupKey("w1", []string{"shell"}, route{}),
			now: true, reply: make(chan *stroem.Assignment, 1)}
	}
	// Of the new job's ready steps, only "first" counts as made ready by
	// the transition ("solo" was ready already).
	onlyFirst := func(s *persistence.JobState) func(int) bool {
		was, first := readyNow(s), s.Index("first")
		return func(i int) bool { return i != first && was(i) }
	}

	_, s := b.newJob(t, "chain", nil)
	refused := slot()
	h := newHandoff(o, []jobEvent{{next: refused}})
	h.assign(s, nil, onlyFirst(s), []error{stroem.Errorf(stroem.CodeConflict, "stale")})
	require.Empty(t, h.given, "nothing for the claim of a refused completion")
	require.Equal(t, stroem.StepReady, s.Find("first").Status)
	h.giveBack(true)
	require.Nil(t, <-refused.reply, "answered nothing at once")
	require.Zero(t, o.WaitingClaims(), "not queued in the Dispatcher")

	// No long poll waits: older steps may wait in line, so the step the
	// transition made ready is not the claim's. The job's step that was
	// ready already is offered to it: a write the store makes only if no
	// older step waits in line (persistence.JobState.Offer).
	require.False(t, o.idleType("shell"))
	_, s = b.newJob(t, "chain", nil)
	inLine := slot()
	h = newHandoff(o, []jobEvent{{next: inLine}})
	h.assign(s, nil, onlyFirst(s), []error{nil})
	require.Equal(t, map[string]*waiter{"solo": inLine}, h.given)
	require.Equal(t, stroem.StepReady, s.Find("first").Status)
	require.Equal(t, &persistence.Route{Capabilities: []string{"shell"}}, s.Offered(s.Index("solo")), "offered")
	require.Equal(t, s.Find("solo").Attempt, s.Find("solo").StartedAttempt, "started: the answer stands for `start`")
	// Not taken, the step is as read, and the claim goes to the Dispatcher
	// (here it finds nothing).
	p0, asRead := b.newJob(t, "chain", nil)
	h.deliver(p0, asRead, nil)
	require.Nil(t, <-inLine.reply, "the Dispatcher's claim found nothing")

	// A duplicate completion's claim is given nothing in the transition,
	// neither a step it made ready nor an offer: its first run may have
	// handed it a step, which the repeat must bring (found by the
	// completion's link after the commit, redeliverHanded; the store here
	// has none, and the Dispatcher finds nothing).
	_, s = b.newJob(t, "chain", nil)
	dup := slot()
	h = newHandoff(o, []jobEvent{{next: dup}})
	h.assign(s, nil, onlyFirst(s), []error{errDuplicate})
	require.Empty(t, h.given)
	require.Nil(t, s.Offered(s.Index("solo")))
	require.Equal(t, stroem.StepReady, s.Find("first").Status)
	h.giveBack(true)
	require.Nil(t, <-dup.reply)

	pollCtx, stopPoll := context.WithCancel(context.Background())
	polled := make(chan *stroem.Assignment, 1)
	go func() {
		a, _ := o.Claim(pollCtx, stroem.ClaimRequest{WorkerID: "w2", Capabilities: []string{"shell"}, WaitMS: 30_000})
		polled <- a
	}()
	require.Eventually(t, func() bool { return o.idleType("shell") }, 5*time.Second, time.Millisecond)
	p, s := b.newJob(t, "chain", nil)
	mine := slot()
	mine.link = "job/1/before"
	h = newHandoff(o, []jobEvent{{next: mine}})
	h.assign(s, nil, onlyFirst(s), []error{nil})
	require.Equal(t, map[string]*waiter{"first": mine}, h.given)
	require.Equal(t, "job/1/before", s.HandedFor(s.Index("first")), "recorded under the completion's link")
	require.Empty(t, h.reserved, "no request was reserved from the Dispatcher")
	require.Equal(t, "w1", s.Find("first").WorkerID)
	h.deliver(p, s, nil)
	a := <-mine.reply
	require.NotNil(t, a)
	require.Equal(t, "first", a.StepName)
	require.Equal(t, 1, o.WaitingClaims(), "the long poll still waits")
	stopPoll()
	require.Nil(t, <-polled)
}

// A step whose answer could not be written is given back under the
// request's worker_id, or the caller's when the request left it out.
func TestWorkersUnassignAsTheCaller(t *testing.T) {
	t.Parallel()
	store := &unclaimStore{}
	o := New(Config{}, store, &oneWorkspace{}, nil, nil)
	require.NoError(t, o.Start(context.Background()))
	t.Cleanup(o.Stop)
	w := &Workers{o: o}
	caller := "0b7e3c1a-8d61-4b57-9a51-4c1f1f6a2c01"
	ctx := WithCaller(context.Background(), caller)
	w.Unassign(ctx, &stroem.Assignment{JobID: "j", StepName: "a", Attempt: 1}, "")
	w.Unassign(ctx, &stroem.Assignment{JobID: "j", StepName: "b", Attempt: 1}, "0B7E3C1A-8D61-4B57-9A51-4C1F1F6A2C01")
	require.Equal(t, []string{"a/" + caller, "b/" + caller}, store.all())
}

// offerState is a job of n ready shell steps, s0…, ready an hour ago, and
// the completion's claim of a transition of it.
func offerState(t *testing.T, n int) (*Orchestrator, *persistence.JobState, *waiter) {
	t.Helper()
	o := New(Config{}, &unclaimStore{}, &oneWorkspace{}, nil, nil)
	now := time.Now()
	earlier := now.Add(-time.Hour)
	steps := make([]*persistence.StepState, n)
	for i := range steps {
		steps[i] = &persistence.StepState{Name: fmt.Sprintf("s%d", i), Position: i, ActionType: "shell",
			MaxAttempts: 1, Status: stroem.StepReady, ReadyAt: &earlier}
	}
	s := &persistence.JobState{Job: stroem.Job{ID: "job-1", Status: stroem.JobRunning}, Now: now}
	s.SetSteps(steps, nil)
	w := &waiter{id: waiterIDs.Add(1), workerID: "w1", caps: []string{"shell"}, key: groupKey("w1", []string{"shell"}, route{}),
		now: true, reply: make(chan *stroem.Assignment, 1)}
	return o, s, w
}

// A completion's claim is offered the job's step ready longest, then the
// first by position; among the job's first offerScan ready steps only, so
// that a big job's transition does not read every one of them.
func TestOfferTakesTheOldestOfTheFirstReadySteps(t *testing.T) {
	t.Parallel()
	offered := func(o *Orchestrator, s *persistence.JobState, w *waiter) string {
		h := newHandoff(o, []jobEvent{{next: w}})
		h.assign(s, nil, readyNow(s), []error{nil})
		require.Len(t, h.given, 1)
		for name := range h.given {
			require.NotNil(t, s.Offered(s.Index(name)))
			return name
		}
		return ""
	}

	o, s, w := offerState(t, 3)
	require.Equal(t, "s0", offered(o, s, w), "equal times: the first by position")

	o, s, w = offerState(t, 3)
	older := s.Now.Add(-2 * time.Hour)
	s.MutAt(2).ReadyAt = &older
	s.Seal()
	require.Equal(t, "s2", offered(o, s, w), "the one ready longest")

	o, s, w = offerState(t, offerScan+1)
	s.MutAt(offerScan).ReadyAt = &older
	s.Seal()
	require.Equal(t, "s0", offered(o, s, w), "beyond the first offerScan ready steps: not looked at")

	o, s, w = offerState(t, 3)
	later := s.Now.Add(time.Minute)
	s.MutAt(0).ReadyAt = &later // a retry's backoff
	s.MutAt(1).CancelRequested = true
	s.Seal()
	require.Equal(t, "s2", offered(o, s, w), "not one in its backoff, nor a cancelled one")
}

// Offer looks at the steps after the runs its job actor knows finished,
// with the statuses of the state as read: in a job whose first steps have
// ended it offers the first step that was ready as read and still is. A
// step the transition made ready (assign's, not offer's), or appended, is
// not offered.
func TestOfferSkipsFinishedStepsAndLooksAtTheStateAsRead(t *testing.T) {
	t.Parallel()
	o, s, w := offerState(t, 200)
	for i := range 150 {
		s.MutAt(i).Status = stroem.StepCompleted
	}
	s.MutAt(150).Status = stroem.StepPending
	s.Seal()
	var g progress
	g.observeAll(s)
	read := s.Share()                         // as a store gives it to the transition's function
	read.MutAt(150).Status = stroem.StepReady // what the transition did first
	read.Append(&persistence.StepState{Name: "extra", Position: 200, ActionType: "shell", MaxAttempts: 1,
		Status: stroem.StepReady, ReadyAt: read.At(151).ReadyAt})
	h := newHandoff(o, []jobEvent{{next: w}})
	h.assign(read, &g, readyAsRead(read), []error{nil})
	require.Len(t, h.given, 1)
	require.NotNil(t, h.given["s151"], "s150 became ready in this transition; s151 was ready as read")
	require.Equal(t, 150, g.find(0), "the finished steps are known and skipped")
}

// readyNow is what a test's transition read: whether each step of s is
// ready now (readyAsRead without a store's Share).
func readyNow(s *persistence.JobState) func(int) bool {
	r := make([]bool, s.Len())
	for i := range r {
		r[i] = s.StatusAt(i) == stroem.StepReady
	}
	return func(i int) bool { return i < len(r) && r[i] }
}

// A claim's wait is capped at Config.MaxWait, however large wait_ms is (the
// largest int overflowed the conversion to a duration and was refused as
// negative); a negative one is refused.
func TestClaimWaitIsCapped(t *testing.T) {
	t.Parallel()
	o := New(Config{MaxWait: 100 * time.Millisecond}, &unclaimStore{}, &oneWorkspace{}, nil, nil)
	require.NoError(t, o.Start(context.Background()))
	t.Cleanup(o.Stop)
	for _, ms := range []int{1 << 62, int(^uint(0) >> 1)} {
		a, err := o.Claim(context.Background(), stroem.ClaimRequest{WorkerID: "w1", Capabilities: []string{"shell"}, WaitMS: ms})
		require.NoError(t, err, "wait_ms %d", ms)
		require.Nil(t, a)
	}
	_, err := o.Claim(context.Background(), stroem.ClaimRequest{WorkerID: "w1", Capabilities: []string{"shell"}, WaitMS: -1})
	require.Equal(t, stroem.CodeInvalid, stroem.ErrorCode(err))
}
