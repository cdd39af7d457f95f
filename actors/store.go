package actors

import (
	"context"
	"time"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
	"github.com/stroem/stroem/workspace"
)

// Store is what the orchestrator needs from durable storage. Every persistence.Store
// (PostgreSQL in production, SQLite in `stroem dev`) implements it.
type Store interface {
	// Ping checks that the store answers (the outage watch).
	Ping(ctx context.Context) error
	SnapshotGet(ctx context.Context, id string) ([]byte, error)
	JobInsert(ctx context.Context, j persistence.NewJob) error
	JobUpdate(ctx context.Context, jobID string, fn func(*persistence.JobState) error) (*persistence.JobState, error)
	JobState(ctx context.Context, jobID string) (*persistence.JobState, error)
	JobsUnfinished(ctx context.Context) ([]string, error)
	StepsClaim(ctx context.Context, p persistence.ClaimParams) ([]persistence.ClaimedStep, error)
	// StepsHandedFor finds the started claims made for a completion the
	// worker repeats (see handoff.go).
	StepsHandedFor(ctx context.Context, workerID, link string) ([]persistence.ClaimedStep, error)
	StepUnclaim(ctx context.Context, jobID, step string, attempt int, workerID string) error
	StepUnclaimHanded(ctx context.Context, jobID, step string, attempt int, workerID, link string) error
	StepLease(ctx context.Context, jobID, step string) (persistence.StepLease, error)
	LeasesExtendAll(ctx context.Context, lease time.Duration) (int64, error)
	LeasesExpired(ctx context.Context, limit int) ([]stroem.StepRef, error)
	// StepsRunning lists the running steps a starting server inherits from
	// an earlier process (see inherited.go).
	StepsRunning(ctx context.Context) ([]persistence.HeldStep, error)
	// StepsGiveBackUnstarted puts back hand-offs their workers did not
	// acknowledge in time (see startack.go).
	StepsGiveBackUnstarted(ctx context.Context, unackedFor time.Duration, limit int) ([]persistence.HeldStep, error)
}

// StepLease is the stored lease of a step's current attempt.
type StepLease = persistence.StepLease

// Workspaces gives the current definitions of a workspace by name.
type Workspaces interface {
	Get(name string) *workspace.Workspace
}

// Events receives what the rest of the server must hear about jobs.
type Events interface {
	// JobFinished is called after a job's terminal status is stored.
	JobFinished(jobID string, status stroem.JobStatus)
}

// DefaultLease is how long a claim stays valid without a heartbeat unless
// configured otherwise (the server's `lease`); workers heartbeat every
// lease/5.
const DefaultLease = 10 * time.Second

// Config tunes the orchestrator; zero fields take defaults.
type Config struct {
	// Lease is how long a claim stays valid without a heartbeat.
	Lease time.Duration
	// TimeoutGrace is how long after a step's timeout the server fails it if
	// the worker has not reported (the worker enforces the timeout itself).
	TimeoutGrace time.Duration
	// RequestTimeout bounds how long a caller waits for a JobActor.
	RequestTimeout time.Duration
	// MaxWait caps a claim's long poll.
	MaxWait time.Duration
	// ClaimGrace is how long a claim that stopped waiting still listens for
	// an answer already on its way (default 5 s).
	ClaimGrace time.Duration
	// EmptyClaimFor is how long a claim that came back short spares new
	// requests with the capabilities it covered a query of their own, while
	// no wake-up came (default 1 s; see dispatcher.knownEmpty).
	EmptyClaimFor time.Duration
	// OnSecrets, when set, is told the secret values of every task plan
	// compiled (as the plan resolved them), so the server's own log can
	// mask them too.
	OnSecrets func(values []string)
	// MaskExtra are values masked with every job's secrets (the worker
	// token, should a step find it somewhere).
	MaskExtra []string
	// StartTimeout is how long a step handed to a worker waits for the
	// worker's acknowledgement before it is given back (default
	// DefaultStartTimeout, and never more than half the lease).
	StartTimeout time.Duration
	// DefaultStepTimeout bounds an attempt of a step whose action and step
	// set no timeout (the server's default_step_timeout); 0: none.
	DefaultStepTimeout time.Duration
	// DefaultJobTimeout bounds a job whose task sets no timeout (the
	// server's default_job_timeout), from its creation; 0: none.
	DefaultJobTimeout time.Duration
	// UnmatchedStepTimeout is how long a ready step waits for an active
	// worker with its capability before it fails (default 30 s; see
	// unmatched.go).
	UnmatchedStepTimeout time.Duration
}

func (c Config) withDefaults() Config {
	orDefault(&c.Lease, DefaultLease)
	orDefault(&c.TimeoutGrace, 30*time.Second)
	orDefault(&c.RequestTimeout, 30*time.Second)
	orDefault(&c.MaxWait, 30*time.Second)
	orDefault(&c.EmptyClaimFor, time.Second)
	orDefault(&c.ClaimGrace, 5*time.Second)
	orDefault(&c.UnmatchedStepTimeout, DefaultUnmatchedStepTimeout)
	orDefault(&c.StartTimeout, DefaultStartTimeout)
	// Given back before its lease could run out: an unacknowledged step
	// must never cost an attempt.
	c.StartTimeout = max(min(c.StartTimeout, c.Lease/2), 10*time.Millisecond)
	return c
}

// orDefault sets an unset (zero or negative) setting to its default.
func orDefault[T ~int | ~int64](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}
