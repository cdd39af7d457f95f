package actors

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
)

// Messages between the actors. Plain structs; replies to callers outside the
// actor system travel on buffered channels carried in the message, answered
// exactly once.

// --- to the Orchestrator actor ---

// routed carries a message for the JobActor of jobID; the Orchestrator spawns
// that actor if it has none.
type routed struct {
	jobID string
	msg   any
}

// jobCreated spawns the JobActor of a job that was just inserted, with its
// plan and state, so it needs no database read.
type jobCreated struct {
	plan  *plan
	state *persistence.JobState
}

// recoverJobs spawns a JobActor for each unfinished job at start.
type recoverJobs struct{ ids []string }

// jobFinished tells the Orchestrator a JobActor is done; it is forgotten and
// poisoned (messages already queued to it are still handled).
type jobFinished struct {
	jobID string
	pid   *actor.PID
}

// --- to a JobActor ---

// jobEvent asks for a change of the job; reply (may be nil) gets the outcome.
type jobEvent struct {
	ev    event
	reply chan error
	// next is the claim a completion carries for its slot
	// (Orchestrator.StepCompleteNext): the transition may hand it a step
	// it makes ready (handoff.go). Nil for every other event.
	next *waiter
}

// stepClaimed tells the JobActor a step was handed to a worker, so a
// StepActor watches its lease.
type stepClaimed struct {
	step    string
	attempt int
	leaseIn time.Duration
	timeout time.Duration
}

// stepResync asks the JobActor to re-read the job and reconfigure its
// StepActors (sent by a StepActor that was restarted and lost its timers).
type stepResync struct{}

type stateLoaded struct {
	state *persistence.JobState
	plan  *plan
	err   error
}

type loadRetry struct{}

type updateDone struct {
	events  []jobEvent
	results []error
	state   *persistence.JobState
	// changed are the positions of the steps the update changed.
	changed []int
	before  stroem.JobStatus
	err     error
}

// --- to a StepActor ---

// stepWatch (re)configures a StepActor from the step's stored state. Delays
// are relative to the database clock at the time of reading.
type stepWatch struct {
	attempt int
	status  stroem.StepStatus
	leaseIn time.Duration // running: time until the lease expires
	readyIn time.Duration // ready: time until a retry may be claimed
	// timeoutIn is the time until the timeout backstop fires (0: none).
	timeoutIn time.Duration
}

type stepTimer struct {
	gen  int
	kind timerKind
}

type timerKind int

const (
	timerLease timerKind = iota
	timerTimeout
	timerReady
)

type leaseChecked struct {
	gen   int
	lease StepLease
	err   error
}

// --- to the Dispatcher ---

type claimWait struct{ w *waiter }

type claimAbandon struct{ id uint64 }

type wakeUp struct{}

// recheck queues the groups whose requests a short claim spared a query,
// once it no longer vouches for them (dispatcher.knownEmpty).
type recheck struct{}

// drain answers every waiting claim with nothing (shutdown).
type drain struct{}

type claimDone struct {
	key      string
	workerID string
	caps     []string
	route    route
	// gen is the dispatcher's wake-up generation when the claim started.
	gen         uint64
	limit       int
	assignments []*stroem.Assignment
	// links are, by assignment, the completion each was claimed for and
	// recorded as started for (ClaimParams.Handed), "" for none.
	links  []string
	failed int
	err    error
}
