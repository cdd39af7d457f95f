package actors

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
	"github.com/stroem/stroem/persistence/postgres"
)

const nextWorkflow = `
actions:
  noop:
    type: shell
    cmd: "true"
tasks:
  chain:
    flow:
      a: { action: noop }
      b: { action: noop, depends_on: [a] }
  pair:
    flow:
      a: { action: noop }
      b: { action: noop }
  one:
    flow:
      a: { action: noop }
  four:
    flow:
      s1: { action: noop }
      s2: { action: noop }
      s3: { action: noop }
      s4: { action: noop }
`

// completeNext reports a's attempt as succeeded by worker, with a claim for
// the worker's slot, and returns what the claim brought.
func (e *pgEngine) completeNext(t *testing.T, a *stroem.Assignment, worker string) (*stroem.Assignment, error) {
	t.Helper()
	return e.o.StepCompleteNext(context.Background(), a.JobID, a.StepName, stroem.Completion{
		WorkerID: worker, Attempt: a.Attempt, Next: &stroem.NextClaim{WorkerID: worker, Capabilities: []string{"shell"}},
	})
}

// idleLongPoll opens worker's long poll and waits until it waits idle (its
// claim came back empty): a long poll still being claimed may find older
// ready steps, and then a completion's claim does not take the step it
// makes ready (handoff.go). The channel gets what the poll brought.
func (e *pgEngine) idleLongPoll(t *testing.T, ctx context.Context, worker string) <-chan *stroem.Assignment {
	t.Helper()
	polled := make(chan *stroem.Assignment, 1)
	go func() {
		got, _ := e.o.Claim(ctx, stroem.ClaimRequest{WorkerID: worker, Capabilities: []string{"shell"}, WaitMS: 30_000})
		polled <- got
	}()
	require.Eventually(t, func() bool { return e.o.WaitingClaims() == 1 && e.o.idleType("shell") }, 5*time.Second, time.Millisecond)
	return polled
}

// A step the completion makes ready goes to the completing slot's claim, in
// the completing transaction, before a long poll that waits meanwhile; when
// nothing is ready the claim is answered nothing, without waiting.
func TestCompletionClaimTakesTheStepItMadeReady(t *testing.T) {
	t.Parallel()
	e := newPGEngine(t, nextWorkflow, Config{}, nil)
	w1, w2 := uuid.NewString(), uuid.NewString()
	id := e.create(t, "chain", nil)
	a := e.claimed(t, w1)
	require.Equal(t, "a", a.StepName)

	pollCtx, stopPoll := context.WithCancel(context.Background())
	polled := e.idleLongPoll(t, pollCtx, w2)

	b, err := e.completeNext(t, a, w1)
	require.NoError(t, err)
	require.NotNil(t, b, "b became ready in the completing transaction")
	require.Equal(t, "b", b.StepName)
	require.Equal(t, 1, b.Attempt)
	st := e.state(t, id).Find("b")
	require.Equal(t, stroem.StepRunning, st.Status)
	require.Equal(t, w1, st.WorkerID, "held by the completing worker")
	require.Equal(t, 1, e.o.WaitingClaims(), "the waiting long poll got nothing")

	done, err := e.completeNext(t, b, w1)
	require.NoError(t, err)
	require.Nil(t, done, "nothing is ready: the claim is answered nothing")
	e.waitStatus(t, id, stroem.JobCompleted)

	stopPoll()
	require.Nil(t, <-polled)
}

// A step of the job ready before the completion is offered to the
// completion's claim in the completing transaction (handoff.offer).
func TestCompletionClaimTakesAReadyStep(t *testing.T) {
	t.Parallel()
	e := newPGEngine(t, nextWorkflow, Config{}, nil)
	w1 := uuid.NewString()
	id := e.create(t, "pair", nil)
	first := e.claimed(t, w1)

	second, err := e.completeNext(t, first, w1)
	require.NoError(t, err)
	require.NotNil(t, second)
	require.NotEqual(t, first.StepName, second.StepName)
	st := e.state(t, id).Find(second.StepName)
	require.Equal(t, stroem.StepRunning, st.Status)
	require.Equal(t, w1, st.WorkerID)

	// Claimed for the completion, it is started already; an acknowledgement
	// sent anyway (an older worker) is accepted, and the job ends with its
	// report.
	w := NewWorkers(e.o, e.store, nil, nil)
	require.NoError(t, w.Start(context.Background(), id, second.StepName, stroem.StepStart{WorkerID: w1, Attempt: second.Attempt}))
	none, err := e.completeNext(t, second, w1)
	require.NoError(t, err)
	require.Nil(t, none)
	e.waitStatus(t, id, stroem.JobCompleted)
}

// A refused completion (stale: not the running attempt, or another worker's)
// gets no step: the ready step stays for the next claim.
func TestStaleCompletionClaimsNothing(t *testing.T) {
	t.Parallel()
	e := newPGEngine(t, nextWorkflow, Config{}, nil)
	w1, w2 := uuid.NewString(), uuid.NewString()
	id := e.create(t, "pair", nil)
	first := e.claimed(t, w1)

	stale := *first
	stale.Attempt = 7
	got, err := e.completeNext(t, &stale, w1)
	require.ErrorIs(t, err, stroem.ErrConflict)
	require.Nil(t, got)
	got, err = e.completeNext(t, first, w2)
	require.ErrorIs(t, err, stroem.ErrConflict, "another worker's report")
	require.Nil(t, got)

	other := map[string]string{"a": "b", "b": "a"}[first.StepName]
	require.Equal(t, stroem.StepReady, e.state(t, id).Find(other).Status, "nothing was claimed for a refused completion")
	require.Equal(t, other, e.claimed(t, w2).StepName)
}

// A duplicate of an accepted completion is accepted again: the report
// changes nothing, and its claim is given the step the first run's claim
// took (here the Dispatcher's, no long poll being idle), not another one.
func TestDuplicateCompletionWithClaim(t *testing.T) {
	t.Parallel()
	e := newPGEngine(t, nextWorkflow, Config{}, nil)
	w1 := uuid.NewString()
	id := e.create(t, "chain", nil)
	a := e.claimed(t, w1)
	b, err := e.completeNext(t, a, w1)
	require.NoError(t, err)
	require.NotNil(t, b)
	again, err := e.completeNext(t, a, w1)
	require.NoError(t, err, "the same report again is a no-op")
	require.NotNil(t, again)
	require.Equal(t, [2]any{b.StepName, b.Attempt}, [2]any{again.StepName, again.Attempt}, "the same step, the same attempt")
	require.Equal(t, w1, e.state(t, id).Find("b").WorkerID)
	require.Equal(t, 1, e.state(t, id).Find("b").Attempt)
}

// A step of its job that was ready before a completion is given to the
// completion's claim in the completing transaction (an offer the store
// took), with no claim statement of its own: recorded as started, never
// given back for want of a `start`, and brought again by a repeat of the
// completion whose answer the worker lost.
func TestCompletionClaimTakesItsJobsReadyStepInTheTransition(t *testing.T) {
	t.Parallel()
	counted := &countedHandedClaims{}
	e := newPGEngine(t, nextWorkflow, Config{}, func(ps *postgres.Store) Store { counted.Store = ps; return counted })
	w1, w2 := uuid.NewString(), uuid.NewString()
	id := e.create(t, "pair", nil)
	first := e.claimed(t, w1)
	other := map[string]string{"a": "b", "b": "a"}[first.StepName]

	second, err := e.completeNext(t, first, w1)
	require.NoError(t, err)
	require.NotNil(t, second)
	require.Equal(t, other, second.StepName)
	require.Zero(t, counted.n.Load(), "no claim statement was made for the completion")
	e.startedAndRedelivered(t, id, first, second, w1)
	e.endAfterRedelivery(t, id, first, second, w1, w2)
	require.Equal(t, 1, e.state(t, id).Find(other).Attempt, "run once")
}

// countedHandedClaims counts the claims made for completions
// (ClaimParams.Handed).
type countedHandedClaims struct {
	*postgres.Store
	n atomic.Int32
}

func (s *countedHandedClaims) StepsClaim(ctx context.Context, p persistence.ClaimParams) ([]persistence.ClaimedStep, error) {
	if len(p.Handed) > 0 {
		s.n.Add(1)
	}
	return s.Store.StepsClaim(ctx, p)
}

// A ready step of another job, ready since earlier, comes before the
// completion's own job's: the offer of its job's step is not taken (the
// transition commits without it, with no conflict), and the Dispatcher
// claims the older step for the completion.
func TestCompletionClaimLeavesItsJobForAnOlderStep(t *testing.T) {
	t.Parallel()
	e := newPGEngine(t, nextWorkflow, Config{}, nil)
	w1 := uuid.NewString()
	id := e.create(t, "pair", nil)
	first := e.claimed(t, w1)
	other := map[string]string{"a": "b", "b": "a"}[first.StepName]
	older := e.create(t, "one", nil)
	_, err := e.store.Pool().Exec(context.Background(),
		`UPDATE job_steps SET ready_at = ready_at - interval '1 hour' WHERE job_id = $1`, older)
	require.NoError(t, err)

	second, err := e.completeNext(t, first, w1)
	require.NoError(t, err)
	require.NotNil(t, second)
	require.Equal(t, [2]string{older, "a"}, [2]string{second.JobID, second.StepName}, "the older step")
	require.True(t, second.Started, "claimed for the completion: started")
	st := e.state(t, id)
	require.Equal(t, stroem.StepCompleted, st.Find(first.StepName).Status, "the completion is recorded")
	require.Equal(t, stroem.StepReady, st.Find(other).Status, "the offer was not taken")
	require.Zero(t, st.Find(other).Attempt)
	require.Equal(t, other, e.claimed(t, w1).StepName, "and stays the Dispatcher's")
}

// A step the Dispatcher claims for a completion's claim (here of another
// job: the completion's own has none left) is recorded as started by the
// claim itself, under the completion's name: the worker runs it without a
// `start`, it is never given back for want of one, and a repeat of the
// completion, whose answer the worker lost, brings it again.
func TestCompletionClaimFromTheDispatcherIsStartedAndRedelivered(t *testing.T) {
	t.Parallel()
	e := newPGEngine(t, nextWorkflow, Config{}, nil)
	w1, w2 := uuid.NewString(), uuid.NewString()
	e.create(t, "one", nil)
	first := e.claimed(t, w1)
	require.False(t, first.Started, "a long poll's claim waits for its start")
	id := e.create(t, "one", nil)

	second, err := e.completeNext(t, first, w1)
	require.NoError(t, err)
	require.NotNil(t, second)
	require.Equal(t, [2]string{id, "a"}, [2]string{second.JobID, second.StepName})
	e.startedAndRedelivered(t, id, first, second, w1)
	e.endAfterRedelivery(t, id, first, second, w1, w2)
	require.Equal(t, 1, e.state(t, id).Find("a").Attempt, "run once")
}

// slowHandedClaims holds a claim made for completions (ClaimParams.Handed)
// until release is closed, and says on claiming when one began.
type slowHandedClaims struct {
	*postgres.Store
	claiming chan struct{}
	release  chan struct{}
	claimed  atomic.Int32 // claims for completions that have returned
}

func (s *slowHandedClaims) StepsClaim(ctx context.Context, p persistence.ClaimParams) ([]persistence.ClaimedStep, error) {
	if len(p.Handed) > 0 {
		s.claiming <- struct{}{}
		<-s.release
		defer s.claimed.Add(1)
	}
	return s.Store.StepsClaim(ctx, p)
}

// slowClaim is two one-step jobs on an engine whose claims for completions
// wait (slowHandedClaims): worker ran first, of the first job, and
// completed it with a claim (on a context cancel ends), whose answer got
// brings; the Dispatcher's claim of other, the step of the second job (id),
// for that completion has begun.
type slowClaim struct {
	e                 *pgEngine
	slow              *slowHandedClaims
	id, worker, other string
	first             *stroem.Assignment
	cancel            context.CancelFunc
	got               <-chan *stroem.Assignment
}

func startSlowClaim(t *testing.T, cfg Config) *slowClaim {
	t.Helper()
	slow := &slowHandedClaims{claiming: make(chan struct{}, 1), release: make(chan struct{})}
	e := newPGEngine(t, nextWorkflow, cfg, func(ps *postgres.Store) Store { slow.Store = ps; return slow })
	r := &slowClaim{e: e, slow: slow, worker: uuid.NewString(), other: "a"}
	e.create(t, "one", nil)
	r.first = e.claimed(t, r.worker)
	r.id = e.create(t, "one", nil)
	r.cancel, r.got = e.completeNextAsync(r.first, r.worker)
	t.Cleanup(func() {
		r.cancel()
		select {
		case <-slow.release:
		default:
			close(slow.release) // a test that failed before releasing the claim
		}
	})
	<-slow.claiming
	return r
}

// completeNextAsync reports first as succeeded with a claim, on a context
// it returns the cancel of, and sends what it brought.
func (e *pgEngine) completeNextAsync(first *stroem.Assignment, worker string) (context.CancelFunc, <-chan *stroem.Assignment) {
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan *stroem.Assignment, 1)
	go func() {
		a, _ := e.o.StepCompleteNext(ctx, first.JobID, first.StepName, stroem.Completion{
			WorkerID: worker, Attempt: first.Attempt, Next: &stroem.NextClaim{WorkerID: worker, Capabilities: []string{"shell"}},
		})
		got <- a
	}()
	return cancel, got
}

// A completion whose caller leaves while the Dispatcher claims a step for
// it: the step is recorded as started and stays the worker's, which
// repeats the completion it got no answer to, and gets the step then.
func TestStartedClaimForALeftCallerWaitsForTheRepeat(t *testing.T) {
	t.Parallel()
	r := startSlowClaim(t, Config{})
	e, id, first, w1, other := r.e, r.id, r.first, r.worker, r.other
	r.cancel() // the caller leaves while the claim runs (it listens ClaimGrace more)
	time.Sleep(50 * time.Millisecond)
	close(r.slow.release)
	require.Nil(t, <-r.got, "its caller is gone")
	var st *persistence.StepState
	require.Eventually(t, func() bool {
		st = e.state(t, id).Find(other)
		return st.Status == stroem.StepRunning && st.Attempt == 1
	}, 10*time.Second, 5*time.Millisecond, "claimed")
	require.Equal(t, st.Attempt, st.StartedAttempt, "started")
	time.Sleep(100 * time.Millisecond) // time enough for a wrong give-back
	require.Equal(t, stroem.StepRunning, e.state(t, id).Find(other).Status, "kept for the worker's repeat")

	again, err := e.completeNext(t, first, w1)
	require.NoError(t, err)
	require.NotNil(t, again, "the repeat brings it")
	require.Equal(t, [2]any{other, st.Attempt}, [2]any{again.StepName, again.Attempt})
	require.True(t, again.Started)
}

// failingHandedClaims fails every claim made for completions.
type failingHandedClaims struct{ *postgres.Store }

func (s *failingHandedClaims) StepsClaim(ctx context.Context, p persistence.ClaimParams) ([]persistence.ClaimedStep, error) {
	if len(p.Handed) > 0 {
		return nil, stroem.Errorf(stroem.CodeUnavailable, "database unavailable: test")
	}
	return s.Store.StepsClaim(ctx, p)
}

// A completion whose claim fails is answered nothing (its completion stays
// recorded), and the step stays ready for the next claim.
func TestFailedStartedClaimAnswersNothing(t *testing.T) {
	t.Parallel()
	e := newPGEngine(t, nextWorkflow, Config{}, func(ps *postgres.Store) Store { return &failingHandedClaims{ps} })
	w1 := uuid.NewString()
	done := e.create(t, "one", nil)
	first := e.claimed(t, w1)
	id := e.create(t, "one", nil)
	got, err := e.completeNext(t, first, w1)
	require.NoError(t, err)
	require.Nil(t, got)
	require.Equal(t, stroem.StepCompleted, e.state(t, done).Find("a").Status)
	require.Equal(t, stroem.StepReady, e.state(t, id).Find("a").Status)
	c := e.claimed(t, w1)
	require.Equal(t, [2]string{id, "a"}, [2]string{c.JobID, c.StepName}, "the Dispatcher goes on")
}

// A completion whose claim takes longer than it waits (nextClaimWait, a
// slow database) still gets the step recorded as started for it: answered
// nothing, its worker would never run it.
func TestSlowStartedClaimStillAnswersItsCompletion(t *testing.T) {
	t.Parallel()
	r := startSlowClaim(t, Config{})
	e, id, other := r.e, r.id, r.other
	time.Sleep(nextClaimWait + 100*time.Millisecond)
	close(r.slow.release)
	a := <-r.got
	require.NotNil(t, a, "answered with its step")
	require.Equal(t, other, a.StepName)
	require.True(t, a.Started)
	require.Equal(t, a.Attempt, e.state(t, id).Find(other).StartedAttempt)
}

// A step claimed as started for a completion's claim that can no longer
// be answered at all (the request stopped listening for good before the
// claim came back: a database slower than nextClaimWait + ClaimGrace)
// goes back to ready with its attempt forgotten: no answer carries it,
// and its worker, answered nothing, would not repeat.
func TestUndeliverableStartedClaimGoesBack(t *testing.T) {
	t.Parallel()
	r := startSlowClaim(t, Config{ClaimGrace: 10 * time.Millisecond})
	e, id, w1, other := r.e, r.id, r.worker, r.other
	// The request waits nextClaimWait, then ClaimGrace, and stops
	// listening for good; the claim comes back only then.
	require.Nil(t, <-r.got, "stopped listening")
	close(r.slow.release)
	// Ready before the claim ran, and again once it is given back.
	require.Eventually(t, func() bool {
		return r.slow.claimed.Load() > 0 && e.state(t, id).Find(other).Status == stroem.StepReady
	}, 10*time.Second, 5*time.Millisecond, "given back")
	st := e.state(t, id).Find(other)
	require.Equal(t, 0, st.Attempt, "the attempt forgotten")
	c := e.claimed(t, w1)
	require.Equal(t, other, c.StepName)
	require.False(t, c.Started, "claimed again for a long poll: not started")
	require.NotEqual(t, c.Attempt, e.state(t, id).Find(other).StartedAttempt)
}

// A draining server hands nothing out, through a completion's claim as
// through a long poll; the completion itself is recorded.
func TestDrainingCompletionClaimsNothing(t *testing.T) {
	t.Parallel()
	e := newPGEngine(t, nextWorkflow, Config{}, nil)
	w1 := uuid.NewString()
	id := e.create(t, "pair", nil)
	first := e.claimed(t, w1)
	e.o.Drain()
	got, err := e.completeNext(t, first, w1)
	require.NoError(t, err)
	require.Nil(t, got)
	require.Equal(t, stroem.StepCompleted, e.state(t, id).Find(first.StepName).Status)
}

// The Dispatcher serves a completion's claim before a long poll of the same
// worker: the long poll can wait for the next step, and the completion's
// claim answered nothing would cost its slot a long poll of its own.
func TestCompletionClaimServedBeforeALongPoll(t *testing.T) {
	t.Parallel()
	e, cs := spiedEngine(t, Config{})
	w1 := uuid.NewString()
	e.create(t, "pair", nil)
	first := e.claimed(t, w1)

	// A long poll of the same worker waits: its claim found nothing (the
	// ready step hidden, as SKIP LOCKED would).
	cs.hide.Store(true)
	n := cs.n.Load()
	pollCtx, stopPoll := context.WithCancel(context.Background())
	polled := make(chan *stroem.Assignment, 1)
	go func() {
		got, _ := e.o.Claim(pollCtx, stroem.ClaimRequest{WorkerID: w1, Capabilities: []string{"shell"}, WaitMS: 30_000})
		polled <- got
	}()
	require.Eventually(t, func() bool { return e.o.WaitingClaims() == 1 && cs.n.Load() > n }, 5*time.Second, time.Millisecond)
	cs.hide.Store(false)

	second, err := e.completeNext(t, first, w1)
	require.NoError(t, err)
	require.NotNil(t, second, "the ready step goes to the completion's claim")
	require.NotEqual(t, first.StepName, second.StepName)
	require.Equal(t, 1, e.o.WaitingClaims(), "the long poll still waits")
	stopPoll()
	require.Nil(t, <-polled)
}

// A completion's claim waits in line like any claim: with no long poll
// waiting, an older ready step (of another job) comes before the step the
// completion made ready, which stays ready for the next claim.
func TestCompletionClaimDoesNotOvertakeOlderSteps(t *testing.T) {
	t.Parallel()
	e := newPGEngine(t, nextWorkflow, Config{}, nil)
	w1, w2 := uuid.NewString(), uuid.NewString()
	chain := e.create(t, "chain", nil)
	a := e.claimed(t, w1)
	require.Equal(t, chain, a.JobID)
	older := e.create(t, "pair", nil) // its steps are ready before b

	next, err := e.completeNext(t, a, w1)
	require.NoError(t, err)
	require.NotNil(t, next)
	require.Equal(t, older, next.JobID, "the oldest ready step first")
	require.Equal(t, stroem.StepReady, e.state(t, chain).Find("b").Status)

	// The next claims take the rest in line: the pair's other step, then b.
	require.Equal(t, older, e.claimed(t, w2).JobID)
	require.Equal(t, "b", e.claimed(t, w2).StepName)
}

// blockingClaims holds the first claim query that reaches the store until
// released, as a slow database would.
type blockingClaims struct {
	*postgres.Store
	entered chan struct{}
	release chan struct{}
	once    atomic.Bool
}

func (s *blockingClaims) StepsClaim(ctx context.Context, p persistence.ClaimParams) ([]persistence.ClaimedStep, error) {
	if s.once.CompareAndSwap(false, true) {
		close(s.entered)
		<-s.release
	}
	return s.Store.StepsClaim(ctx, p)
}

// A long poll whose claim is still on its way (queued or in flight) does
// not vouch that nothing waits in line: older ready steps are what that
// claim is about to find. A completion's claim meanwhile is served in line
// (an older step), not with the step its completion made ready.
func TestCompletionClaimDoesNotOvertakeWhileALongPollIsBeingClaimed(t *testing.T) {
	t.Parallel()
	bc := &blockingClaims{entered: make(chan struct{}), release: make(chan struct{})}
	bc.once.Store(true) // not yet
	e := newPGEngine(t, nextWorkflow, Config{EmptyClaimFor: time.Nanosecond}, func(ps *postgres.Store) Store {
		bc.Store = ps
		return bc
	})
	w1, w2 := uuid.NewString(), uuid.NewString()
	chain := e.create(t, "chain", nil)
	a := e.claimed(t, w1)
	require.Equal(t, chain, a.JobID)
	older := e.create(t, "pair", nil) // its steps are ready before b

	t.Cleanup(func() {
		select {
		case <-bc.release:
		default:
			close(bc.release)
		}
	})
	bc.once.Store(false) // the next claim query blocks: the long poll's
	polled := make(chan *stroem.Assignment, 1)
	go func() {
		got, _ := e.o.Claim(context.Background(), stroem.ClaimRequest{WorkerID: w2, Capabilities: []string{"shell"}, WaitMS: 30_000})
		polled <- got
	}()
	<-bc.entered

	type answer struct {
		a   *stroem.Assignment
		err error
	}
	completed := make(chan answer, 1)
	go func() {
		next, err := e.completeNext(t, a, w1)
		completed <- answer{next, err}
	}()
	require.Eventually(t, func() bool { return e.state(t, chain).Find("b").Status != stroem.StepPending },
		10*time.Second, time.Millisecond, "the completion's transition committed")
	close(bc.release)

	got := <-completed
	require.NoError(t, got.err)
	if got.a != nil { // nil too is in line: it waits at most nextClaimWait
		require.Equal(t, older, got.a.JobID, "an older ready step, not the one the completion made ready")
	}
	require.Equal(t, stroem.StepReady, e.state(t, chain).Find("b").Status, "b waits in line behind the older steps")
	p := <-polled
	require.NotNil(t, p)
	require.Equal(t, older, p.JobID, "the long poll's claim found an older step")
}

// A step handed to a completion's own claim is recorded as started in the
// completing transaction, so its worker sends no `start`; a duplicate of
// that completion (its answer was lost) brings the same step again. A
// step handed to a long poll still waits for its `start`.
func TestCompletionClaimHandOffIsStartedAndRedelivered(t *testing.T) {
	t.Parallel()
	e := newPGEngine(t, nextWorkflow, Config{}, nil)
	ctx := context.Background()
	w1, w2 := uuid.NewString(), uuid.NewString()
	id := e.create(t, "chain", nil)
	a := e.claimed(t, w1)
	require.Equal(t, "a", a.StepName)
	require.False(t, a.Started, "a long poll's claim waits for its start")

	pollCtx, stopPoll := context.WithCancel(ctx)
	defer stopPoll()
	e.idleLongPoll(t, pollCtx, w2)

	b, err := e.completeNext(t, a, w1)
	require.NoError(t, err)
	require.NotNil(t, b)
	require.Equal(t, "b", b.StepName)
	e.startedAndRedelivered(t, id, a, b, w1)
	e.endAfterRedelivery(t, id, a, b, w1, w2)
}

// startedAndRedelivered checks next, which first's completion (by worker)
// brought: it came started and is recorded so, it is not given back for
// want of a `start`, and a repeat of the completion (its answer lost)
// brings the same step, the same attempt, again.
func (e *pgEngine) startedAndRedelivered(t *testing.T, id string, first, next *stroem.Assignment, worker string) {
	t.Helper()
	require.True(t, next.Started, "brought by the completion's claim: started")
	require.Equal(t, next.Attempt, e.state(t, id).Find(next.StepName).StartedAttempt, "recorded as started")
	given, err := e.store.StepsGiveBackUnstarted(context.Background(), 0, 0)
	require.NoError(t, err)
	require.Empty(t, given, "a started step is not given back for want of a start")
	again, err := e.completeNext(t, first, worker)
	require.NoError(t, err)
	require.NotNil(t, again, "the duplicate brings the step brought the first time")
	require.Equal(t, [2]any{next.StepName, next.Attempt}, [2]any{again.StepName, again.Attempt})
	require.True(t, again.Started)
	require.Equal(t, next.Spec, again.Spec)
}

// endAfterRedelivery checks the end of a job whose step first's completion
// (by worker) brought next, started, twice: another worker's report of
// first is refused and brings nothing; next's completion ends the job;
// after that, a duplicate of first's completion has nothing to bring.
func (e *pgEngine) endAfterRedelivery(t *testing.T, id string, first, next *stroem.Assignment, worker, another string) {
	t.Helper()
	got, err := e.completeNext(t, first, another)
	require.ErrorIs(t, err, stroem.ErrConflict)
	require.Nil(t, got, "another worker's report brings nothing")
	none, err := e.completeNext(t, next, worker)
	require.NoError(t, err)
	require.Nil(t, none)
	e.waitStatus(t, id, stroem.JobCompleted)
	late, err := e.completeNext(t, first, worker)
	require.NoError(t, err)
	require.Nil(t, late, "once the step ended, a duplicate has nothing to bring")
}

// A step a completion without a claim makes ready goes to a waiting long
// poll, unstarted: that worker acknowledges it as before.
func TestLongPollHandOffWaitsForItsStart(t *testing.T) {
	t.Parallel()
	e := newPGEngine(t, nextWorkflow, Config{}, nil)
	ctx := context.Background()
	w1, w2 := uuid.NewString(), uuid.NewString()
	id := e.create(t, "chain", nil)
	a := e.claimed(t, w1)
	polled := e.idleLongPoll(t, ctx, w2)
	none, err := e.o.StepCompleteNext(ctx, a.JobID, a.StepName, stroem.Completion{WorkerID: w1, Attempt: a.Attempt})
	require.NoError(t, err)
	require.Nil(t, none)
	b := <-polled
	require.NotNil(t, b)
	require.Equal(t, "b", b.StepName)
	require.False(t, b.Started)
	require.NotEqual(t, b.Attempt, e.state(t, id).Find("b").StartedAttempt, "not started until acknowledged")
}

// Two completions of one worker in one transition each brought a step,
// and their answers were lost: each repeat, in a transition of its own,
// brings its own step again — found by its completion's link — not the
// other's, which the worker would refuse as one it already runs, leaving
// its own to expire. (The two steps started at the same time, when both
// completed steps ended: by worker and start time they cannot be told
// apart. A job failed so when its server was killed at that moment,
// TestFaultServerKilledDuringLoopExpansion.) The transition is written
// here as the hand-off writes it (handoff.hand).
func TestRepeatedCompletionsOfOneWorkerBringEachItsOwnStep(t *testing.T) {
	t.Parallel()
	e := newPGEngine(t, nextWorkflow, Config{}, nil)
	worker := uuid.NewString()
	id := e.create(t, "four", nil)
	s1, s2 := e.claimed(t, worker), e.claimed(t, worker)
	require.Equal(t, []string{"s1", "s2"}, []string{s1.StepName, s2.StepName})
	_, err := e.store.JobUpdate(context.Background(), id, func(st *persistence.JobState) error {
		now := st.Now
		lease := now.Add(time.Minute)
		for _, done := range []string{"s1", "s2"} {
			x := st.Mut(done)
			x.Status, x.AttemptStatus, x.LeaseExpiresAt = stroem.StepCompleted, stroem.AttemptCompleted, nil
		}
		for _, h := range [][2]string{{"s3", "s1"}, {"s4", "s2"}} {
			i := st.Index(h[0])
			x := st.MutAt(i)
			x.Status, x.Attempt, x.AttemptStatus, x.WorkerID = stroem.StepRunning, 1, stroem.AttemptRunning, worker
			x.LeaseExpiresAt, x.StartedAt, x.StartedAttempt = &lease, &now, 1
			st.HandFor(i, persistence.HandedLink(id, h[1], 1))
		}
		return nil
	})
	require.NoError(t, err)
	st := e.state(t, id)
	require.Equal(t, *st.Find("s1").CompletedAt, *st.Find("s4").StartedAt, "one transition's time")

	// s2's repeat first: by worker and start time, s3 would come first.
	for _, r := range [][2]any{{s2, "s4"}, {s1, "s3"}, {s2, "s4"}} {
		again, err := e.completeNext(t, r[0].(*stroem.Assignment), worker)
		require.NoError(t, err)
		require.NotNil(t, again, "the repeat of %s brings its step", r[0].(*stroem.Assignment).StepName)
		require.Equal(t, r[1], again.StepName, "the repeat of %s brings the step its lost answer carried",
			r[0].(*stroem.Assignment).StepName)
		require.True(t, again.Started)
		require.Equal(t, 1, again.Attempt)
	}
}
