package actors

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
)

const routingWorkflow = `
actions:
  noop:
    type: shell
    cmd: "true"
  gpu:
    type: shell
    cmd: "true"
    tags: [gpu]
  build:
    type: docker
    image: alpine
    tags: [gpu]
tasks:
  chain:
    flow:
      a: { action: noop }
      b: { action: gpu, depends_on: [a] }
  fan:
    flow:
      a: { action: noop }
      g: { action: gpu }
  gpuonly:
    flow:
      g: { action: gpu }
  plain:
    flow:
      p: { action: noop }
  inline:
    flow:
      g:
        type: shell
        cmd: "true"
        tags: [gpu]
  image:
    flow:
      b: { action: build }
`

// claimAs is a claim of worker, of shell steps, with tags and exclusive.
func (e *pgEngine) claimAs(t *testing.T, ctx context.Context, worker string, wait time.Duration, tags []string, exclusive bool) *stroem.Assignment {
	t.Helper()
	a, err := e.o.Claim(ctx, stroem.ClaimRequest{
		WorkerID: worker, Capabilities: []string{"shell"}, Tags: tags, Exclusive: exclusive, WaitMS: int(wait.Milliseconds()),
	})
	require.NoError(t, err)
	return a
}

// pollAs opens a long poll of worker with tags in the background.
func (e *pgEngine) pollAs(ctx context.Context, worker string, tags []string) <-chan *stroem.Assignment {
	polled := make(chan *stroem.Assignment, 1)
	go func() {
		a, _ := e.o.Claim(ctx, stroem.ClaimRequest{WorkerID: worker, Capabilities: []string{"shell"}, Tags: tags, WaitMS: 30_000})
		polled <- a
	}()
	return polled
}

// A step whose action has tags waits for a worker that has them: a worker
// without them (or reserved for other tags) is not given it, one with them
// is, and so is an inline step's, whose tags are its action's.
func TestTaggedStepWaitsForAMatchingWorker(t *testing.T) {
	t.Parallel()
	e := newPGEngine(t, routingWorkflow, Config{}, nil)
	ctx := context.Background()
	for _, task := range []string{"gpuonly", "inline"} {
		id := e.create(t, task, nil)
		require.Equal(t, []string{"gpu"}, stepNamed(e.job(t, id), "g").Tags, "%s: the step requires its action's tags", task)
		require.Nil(t, e.claimAs(t, ctx, uuid.NewString(), 300*time.Millisecond, nil, false), "%s: a worker without tags", task)
		require.Nil(t, e.claimAs(t, ctx, uuid.NewString(), 300*time.Millisecond, []string{"gpu", "big"}, true),
			"%s: a worker reserved for gpu and big", task)
		a := e.claimAs(t, ctx, uuid.NewString(), 5*time.Second, []string{"big", "gpu"}, false)
		require.NotNil(t, a, "%s: a worker with gpu and more", task)
		require.Equal(t, [2]string{id, "g"}, [2]string{a.JobID, a.StepName})
	}

	// A worker reserved for gpu does not take an untagged step.
	id := e.create(t, "plain", nil)
	require.Nil(t, e.claimAs(t, ctx, uuid.NewString(), 300*time.Millisecond, []string{"gpu"}, true))
	a := e.claimAs(t, ctx, uuid.NewString(), 5*time.Second, []string{"gpu"}, false)
	require.NotNil(t, a, "a gpu worker that is not exclusive takes it")
	require.Equal(t, id, a.JobID)
}

// A transition hands a step it makes ready only to a request whose worker
// the step's tags route to: not to the completing worker's own claim, nor
// to a waiting long poll without the tags, but to one with them.
func TestHandOffRoutesByTags(t *testing.T) {
	t.Parallel()
	e := newPGEngine(t, routingWorkflow, Config{}, nil)
	w1, plain, gpu := uuid.NewString(), uuid.NewString(), uuid.NewString()
	id := e.create(t, "chain", nil)
	a := e.claimed(t, w1)
	require.Equal(t, "a", a.StepName)

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	plainPoll := e.pollAs(ctx, plain, nil)
	gpuPoll := e.pollAs(ctx, gpu, []string{"gpu"})
	require.Eventually(t, func() bool {
		return e.o.WaitingClaims() == 2 && e.o.idleFor("shell", newRoute([]string{"gpu"}, false))
	}, 5*time.Second, time.Millisecond, "both long polls wait idle")

	next, err := e.completeNext(t, a, w1)
	require.NoError(t, err)
	require.Nil(t, next, "b requires gpu: not the completing worker's")
	select {
	case b := <-gpuPoll:
		require.NotNil(t, b)
		require.Equal(t, [2]string{id, "b"}, [2]string{b.JobID, b.StepName}, "the gpu worker's long poll gets it")
	case <-time.After(5 * time.Second):
		t.Fatal("the gpu worker's long poll got nothing")
	}
	require.Equal(t, gpu, e.state(t, id).Find("b").WorkerID)
	stop()
	require.Nil(t, <-plainPoll, "the long poll without tags got nothing")
}

// A completion's claim is not offered a ready step of its job whose tags
// its worker lacks (handoff.offer); a worker with them claims it.
func TestOfferRoutesByTags(t *testing.T) {
	t.Parallel()
	e := newPGEngine(t, routingWorkflow, Config{}, nil)
	w1 := uuid.NewString()
	id := e.create(t, "fan", nil)
	a := e.claimed(t, w1)
	require.Equal(t, "a", a.StepName, "g requires gpu")
	require.Equal(t, stroem.StepReady, e.state(t, id).Find("g").Status)

	next, err := e.completeNext(t, a, w1)
	require.NoError(t, err)
	require.Nil(t, next, "g is not offered to a worker without gpu")
	require.Equal(t, stroem.StepReady, e.state(t, id).Find("g").Status)

	g := e.claimAs(t, context.Background(), uuid.NewString(), 5*time.Second, []string{"gpu"}, false)
	require.NotNil(t, g)
	require.Equal(t, [2]string{id, "g"}, [2]string{g.JobID, g.StepName})
}

// A claim of a worker without tags that finds nothing does not stand for a
// tagged worker's waiting request (the Dispatcher's short claims cover
// only requests whose route they cover): a gpu step made ready while both
// wait goes to the gpu worker at once, whichever group is claimed first.
func TestShortClaimDoesNotCoverATaggedWorker(t *testing.T) {
	t.Parallel()
	e := newPGEngine(t, routingWorkflow, Config{}, nil)
	for range 4 {
		ctx, stop := context.WithCancel(context.Background())
		plainPoll := e.pollAs(ctx, uuid.NewString(), nil)
		gpuPoll := e.pollAs(ctx, uuid.NewString(), []string{"gpu"})
		require.Eventually(t, func() bool { return e.o.WaitingClaims() == 2 }, 5*time.Second, time.Millisecond)
		id := e.create(t, "gpuonly", nil)
		select {
		case g := <-gpuPoll:
			require.NotNil(t, g)
			require.Equal(t, id, g.JobID)
		case <-time.After(3 * time.Second):
			stop()
			t.Fatal("the gpu worker's long poll was not served")
		}
		stop()
		require.Nil(t, <-plainPoll)
	}
}

// A ready step that no active worker can take for its tags fails after the
// grace, with a message that names them; a worker without the tags does
// not keep it waiting, one with them does. An untagged step fails when the
// only workers are reserved for their tags.
func TestUnmatchedTagsFailAfterGrace(t *testing.T) {
	t.Parallel()
	grace := 300 * time.Millisecond
	e := newPGEngine(t, routingWorkflow, Config{UnmatchedStepTimeout: grace}, nil)
	ctx := context.Background()
	_, err := e.store.WorkerRegister(ctx, stroem.WorkerRegistration{Name: "plain", Capabilities: []string{"shell"}})
	require.NoError(t, err)
	_, err = e.store.WorkerRegister(ctx, stroem.WorkerRegistration{Name: "reserved", Capabilities: []string{"shell"},
		Tags: []string{"gpu", "big"}, Exclusive: true})
	require.NoError(t, err)

	id := e.create(t, "gpuonly", nil)
	e.waitStatus(t, id, stroem.JobFailed)
	msg := stepNamed(e.job(t, id), "g").ErrorMessage
	require.Contains(t, msg, "no worker can run this step: no active worker with the required capability/tags")
	require.Contains(t, msg, "requires the tags gpu")
	require.Contains(t, msg, "(waited 300ms)")

	_, err = e.store.WorkerRegister(ctx, stroem.WorkerRegistration{Name: "gpu", Capabilities: []string{"shell"}, Tags: []string{"gpu"}})
	require.NoError(t, err)
	id = e.create(t, "gpuonly", nil)
	time.Sleep(4 * grace) // a matching worker exists: the step waits for it
	require.Equal(t, stroem.StepReady, e.state(t, id).Find("g").Status)
}

func TestUntaggedStepFailsWhenEveryWorkerIsReserved(t *testing.T) {
	t.Parallel()
	grace := 300 * time.Millisecond
	e := newPGEngine(t, routingWorkflow, Config{UnmatchedStepTimeout: grace}, nil)
	_, err := e.store.WorkerRegister(context.Background(), stroem.WorkerRegistration{Name: "reserved",
		Capabilities: []string{"shell"}, Tags: []string{"gpu"}, Exclusive: true})
	require.NoError(t, err)
	id := e.create(t, "plain", nil)
	e.waitStatus(t, id, stroem.JobFailed)
	require.Contains(t, stepNamed(e.job(t, id), "p").ErrorMessage, `every active worker with the "shell" capability is exclusive`)
}

// Running a task whose docker step requires tags is refused (409) unless a
// registered worker has the docker capability with those tags.
func TestRunRefusedWhenNoWorkerHasTheTags(t *testing.T) {
	t.Parallel()
	e := newPGEngine(t, routingWorkflow, Config{}, nil)
	ctx := context.Background()
	_, err := e.store.WorkerRegister(ctx, stroem.WorkerRegistration{Name: "docker", Capabilities: []string{"docker"}})
	require.NoError(t, err)
	_, err = e.o.JobCreate(ctx, JobRequest{Workspace: "default", Task: "image"})
	var se *stroem.Error
	require.True(t, errors.As(err, &se), "%v", err)
	require.Equal(t, stroem.CodeConflict, se.Code)
	require.Contains(t, err.Error(), "no registered worker has that capability with tags that route the step to it")
	require.Contains(t, err.Error(), "docker (steps b (tags gpu))")

	_, err = e.store.WorkerRegister(ctx, stroem.WorkerRegistration{Name: "docker-gpu", Capabilities: []string{"docker"}, Tags: []string{"gpu"}})
	require.NoError(t, err)
	_, err = e.o.JobCreate(ctx, JobRequest{Workspace: "default", Task: "image"})
	require.NoError(t, err)
}

// A claim's tags are checked as a registration's are.
func TestClaimTagsAreChecked(t *testing.T) {
	t.Parallel()
	e := newPGEngine(t, routingWorkflow, Config{}, nil)
	_, err := e.o.Claim(context.Background(), stroem.ClaimRequest{WorkerID: uuid.NewString(), Capabilities: []string{"shell"}, Tags: []string{" "}})
	require.ErrorContains(t, err, "tags: every entry must be non-empty")
}
