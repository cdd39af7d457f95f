package actors

import (
	"context"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
	"github.com/stroem/stroem/persistence/postgres"
)

const engineWorkflow = `
actions:
  noop:
    type: shell
    cmd: "true"
  slow:
    type: shell
    cmd: "sleep 1"
    timeout: 1s
tasks:
  one:
    flow:
      only: { action: noop }
  timed:
    flow:
      only: { action: slow }
  pair:
    flow:
      a: { action: noop }
      b: { action: noop }
`

// A claim given back (its answer never reached the worker) after the job
// was cancelled must not make the step claimable again: a cancelled job
// never starts another attempt, and the job must end cancelled.
func TestUnclaimAfterCancelDoesNotRunAgain(t *testing.T) {
	t.Parallel()
	e := newPGEngine(t, engineWorkflow, Config{Lease: time.Second}, nil)
	ctx := context.Background()
	id := e.create(t, "one", nil)
	w1, w2 := uuid.NewString(), uuid.NewString()
	a := e.claimed(t, w1)
	require.NoError(t, e.o.JobCancel(ctx, id))
	// The answer never reached w1 (write failed, inherited claim undone).
	e.o.Unassign(a, w1)

	b := e.claim(t, w2, 500*time.Millisecond)
	require.Nil(t, b, "a step of a cancelled job was handed out again")
	e.waitStatus(t, id, stroem.JobCancelled, "job stays %s", e.job(t, id).Status)
}

// The server's timeout backstop of an attempt is measured from that
// attempt's start: a claim given back and made again (same attempt number)
// must not inherit the first claim's deadline.
func TestTimeoutBackstopAfterUnclaimAndReclaim(t *testing.T) {
	t.Parallel()
	e := newPGEngine(t, engineWorkflow, Config{TimeoutGrace: time.Second}, nil)
	id := e.create(t, "timed", nil)
	w1, w2 := uuid.NewString(), uuid.NewString()
	a := e.claimed(t, w1)
	e.o.Unassign(a, w1) // never reached w1
	// Deliberate: most of the first claim's 2 s backstop passes.
	time.Sleep(1500 * time.Millisecond)
	beforeB := time.Now()
	b := e.claimed(t, w2)
	require.Equal(t, a.Attempt, b.Attempt, "the given-back attempt number is used again")
	e.waitStatus(t, id, stroem.JobFailed, "the backstop still fires for the new attempt")
	// Backstop for b: 1s timeout + 1s grace after its start; the first
	// claim's would have fired about 0.5 s after b's claim. The failure's
	// own time is compared (not the status sampled at a moment, which a busy
	// machine may read late).
	st := e.job(t, id).Steps[0]
	require.NotNil(t, st.CompletedAt, "a failed step has its completion time")
	require.GreaterOrEqual(t, st.CompletedAt.Sub(beforeB), 2*time.Second,
		"failed %s after the second claim: %s", st.CompletedAt.Sub(beforeB), st.ErrorMessage)
}

// slowLeaseStore delays lease reads (a slow database) until stop is closed.
type slowLeaseStore struct {
	*postgres.Store
	delay time.Duration
	stop  <-chan struct{}
}

func (s *slowLeaseStore) StepLease(ctx context.Context, jobID, step string) (StepLease, error) {
	select {
	case <-time.After(s.delay):
	case <-ctx.Done():
	case <-s.stop:
	}
	return s.Store.StepLease(ctx, jobID, step)
}

// A StepActor reconfigured while a lease read is in flight must still act
// on the lease: a worker that died is declared lost, never forgotten.
// (Lease and delays are long enough that, on a loaded machine, the second
// claim and both acknowledgements still come well before the first lease
// runs out: a 400 ms lease made the test fail now and then.)
func TestLeaseWatchSurvivesReconfigureDuringCheck(t *testing.T) {
	t.Parallel()
	stop := make(chan struct{})
	e := newPGEngine(t, engineWorkflow, Config{Lease: 2 * time.Second}, func(ps *postgres.Store) Store {
		return &slowLeaseStore{Store: ps, delay: 3 * time.Second, stop: stop}
	})
	t.Cleanup(func() { close(stop) }) // before the engine stops: no read outlives the test
	ctx := context.Background()
	id := e.create(t, "pair", nil)
	w := uuid.NewString()
	for range 2 {
		a := e.claimed(t, w)
		_, err := e.store.StepStart(ctx, a.JobID, a.StepName, a.Attempt, w) // the worker started it
		require.NoError(t, err)
	}
	// No heartbeat: the worker is dead. The lease timers fire at ~2 s and
	// their reads take 3 s; meanwhile the job is updated (any event).
	time.Sleep(3 * time.Second)
	e.o.root.Send(e.o.orch, &routed{jobID: id, msg: &stepResync{}})
	e.waitStatus(t, id, stroem.JobFailed, "steps of a dead worker stay %s", e.job(t, id).Steps[0].Status)
}

// finishParent stands in for the Orchestrator: it spawns a JobActor and,
// like the Orchestrator, routes messages to it until it handles the
// actor's jobFinished, then poisons it.
type finishParent struct {
	o        *Orchestrator
	id       string
	child    *actor.PID
	finished chan struct{}
}

type toChild struct{ msg any }
type poisonChild struct{}

func (p *finishParent) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		p.child = ctx.Spawn(actor.PropsFromProducer(func() actor.Actor { return newJobActor(p.o, p.id) }))
	case *jobFinished:
		close(p.finished)
	case *toChild:
		ctx.Send(p.child, m.msg)
	case *poisonChild:
		ctx.Poison(p.child)
	}
}

// A request routed to a JobActor that has just finished (the Orchestrator
// has not yet read its jobFinished, and poisons it next) is still answered.
func TestRequestToFinishingJobActorIsAnswered(t *testing.T) {
	t.Parallel()
	e := newPGEngine(t, engineWorkflow, Config{}, nil)
	id := e.create(t, "one", nil)
	w := uuid.NewString()
	a := e.claimed(t, w)
	e.complete(t, a, w, stroem.Completion{})

	p := &finishParent{o: e.o, id: id, finished: make(chan struct{})}
	pid := e.o.root.Spawn(actor.PropsFromProducer(func() actor.Actor { return p }))
	t.Cleanup(func() { e.o.root.Stop(pid) })
	<-p.finished // the JobActor found the job finished and said so

	reply := make(chan error, 1)
	e.o.root.Send(pid, &toChild{msg: &jobEvent{ev: evCancel{}, reply: reply}})
	e.o.root.Send(pid, &poisonChild{})
	select {
	case err := <-reply:
		require.ErrorIs(t, err, stroem.ErrConflict, "cancelling a completed job")
	case <-time.After(3 * time.Second):
		t.Fatal("the request was never answered")
	}
}

// flakyStore makes claims slow and gives back nothing (a database that
// fails the give-back).
type flakyStore struct {
	*postgres.Store
	claimDelay time.Duration
}

func (s *flakyStore) StepsClaim(ctx context.Context, p persistence.ClaimParams) ([]persistence.ClaimedStep, error) {
	time.Sleep(s.claimDelay)
	return s.Store.StepsClaim(ctx, p)
}

func (s *flakyStore) StepUnclaim(context.Context, string, string, int, string) error {
	return stroem.Errorf(stroem.CodeUnavailable, "database unavailable: test")
}

// A claim that comes back after its request left is given back; when that
// fails, the step — never acknowledged by a worker — is given back by the
// start-acknowledgement sweep instead, its attempt not used, and the job
// goes on instead of waiting forever.
func TestClaimForLeftRequestWatchedWhenGiveBackFails(t *testing.T) {
	t.Parallel()
	e := newPGEngine(t, engineWorkflow, Config{Lease: 500 * time.Millisecond, ClaimGrace: 10 * time.Millisecond}, func(ps *postgres.Store) Store {
		return &flakyStore{Store: ps, claimDelay: 300 * time.Millisecond}
	})
	id := e.create(t, "one", nil)
	require.Nil(t, e.claim(t, uuid.NewString(), 50*time.Millisecond), "the request leaves before the claim returns")
	require.Eventually(t, func() bool {
		st := e.job(t, id).Steps[0]
		return st.Status == stroem.StepReady && st.Attempt == 0
	}, 5*time.Second, 20*time.Millisecond, "the claimed step stays running although no worker has it")
	require.False(t, e.job(t, id).Status.Terminal())
}

// A step claimed behind the orchestrator's back (a claim committed while
// its answer from the database was lost: no StepActor watches it) still has
// its lease expired, by the store sweep.
func TestLeaseSweepCatchesAnUnwatchedStep(t *testing.T) {
	t.Parallel()
	e := newPGEngine(t, engineWorkflow, Config{Lease: 500 * time.Millisecond}, nil)
	ctx := context.Background()
	id := e.create(t, "one", nil)
	got, err := e.store.StepsClaim(ctx, persistence.ClaimParams{WorkerID: "00000000-0000-4000-8000-000000000001",
		Capabilities: []string{"shell"}, Limit: 1, Lease: 500 * time.Millisecond})
	require.NoError(t, err)
	require.Len(t, got, 1)
	// The worker got it and acknowledged it: now only the lease decides.
	_, err = e.store.StepStart(ctx, id, got[0].StepName, got[0].Attempt, "00000000-0000-4000-8000-000000000001")
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		j, err := e.store.JobGet(ctx, id)
		return err == nil && j.Status == stroem.JobFailed
	}, 10*time.Second, 20*time.Millisecond, "the sweep failed the unwatched step")
	j := e.job(t, id)
	require.Contains(t, j.Steps[0].ErrorMessage, "worker lost")
}

// A starting server gives every running step one lease plus the idle
// heartbeat period: no heartbeat could reach it while it was down, and an
// idle worker's first heartbeat to it may take that long (inherited.go
// needs two of them before a claim its worker never got is undone).
func TestStartExtendsRunningLeasesByALeaseAndTheIdlePeriod(t *testing.T) {
	t.Parallel()
	cfg := Config{Lease: 4 * time.Second}
	e := newPGEngine(t, engineWorkflow, cfg, nil)
	ctx := context.Background()
	id := e.create(t, "one", nil)
	a := e.claimed(t, uuid.NewString())
	before, err := e.store.StepLease(ctx, id, a.StepName)
	require.NoError(t, err)
	require.NotNil(t, before.LeaseExpiresAt)
	require.WithinDuration(t, before.Now.Add(cfg.Lease), *before.LeaseExpiresAt, time.Second, "a claim's lease")

	startOrchestrator(t, cfg, e.store, loadWorkspace(t, engineWorkflow)) // a server starting on the database
	after, err := e.store.StepLease(ctx, id, a.StepName)
	require.NoError(t, err)
	require.Equal(t, 2*time.Second, idleHeartbeat(cfg.Lease))
	require.False(t, after.LeaseExpiresAt.Before(after.Now.Add(cfg.Lease+idleHeartbeat(cfg.Lease)-time.Second)),
		"extended to at least lease + idle period from the start: %s left", after.LeaseExpiresAt.Sub(after.Now))
}
