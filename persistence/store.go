package persistence

import (
	"context"
	"time"

	"github.com/stroem/stroem"
)

// Store is the contract every store implements — PostgreSQL
// (persistence/postgres) in production, SQLite (persistence/sqlite) for
// `stroem dev` — and the conformance suite (persistence/storetest) checks.
// Consumers still declare the smaller interface of the methods they call
// (actors.Store, http.Store); this is the union the server wiring needs.
//
// Every capability is a method: a store that cannot do something answers
// with its closest honest equivalent (SQLite's Listen hears nothing, as it
// is one process), so a store wrapped by another (a test double, a metrics
// decorator) never loses a feature silently, as it would if callers
// discovered features by type assertion.
type Store interface {
	// Ping checks that the store answers (used by /readyz and the outage
	// watch); an unreachable store is a stroem.CodeUnavailable error.
	Ping(ctx context.Context) error
	Close()

	SnapshotPut(ctx context.Context, id string, body []byte) error
	SnapshotGet(ctx context.Context, id string) ([]byte, error)

	JobInsert(ctx context.Context, j NewJob) error
	JobUpdate(ctx context.Context, jobID string, fn func(*JobState) error) (*JobState, error)
	JobState(ctx context.Context, jobID string) (*JobState, error)
	JobGet(ctx context.Context, id string) (*stroem.Job, error)
	JobList(ctx context.Context, f JobFilter) ([]stroem.Job, error)
	JobsUnfinished(ctx context.Context) ([]string, error)

	StepsClaim(ctx context.Context, p ClaimParams) ([]ClaimedStep, error)
	StepUnclaim(ctx context.Context, jobID, step string, attempt int, workerID string) error
	StepLease(ctx context.Context, jobID, step string) (StepLease, error)
	StepFence(ctx context.Context, jobID, step string, attempt int, workerID string) (bool, error)
	// StepsRunning lists every running step with the worker holding it: the
	// claims a starting server inherits from an earlier process.
	StepsRunning(ctx context.Context) ([]HeldStep, error)

	LeasesRenew(ctx context.Context, workerID string, running []stroem.StepRef, lease time.Duration) ([]stroem.StepRef, error)
	LeasesExtendAll(ctx context.Context, lease time.Duration) (int64, error)
	LeasesExpired(ctx context.Context, limit int) ([]stroem.StepRef, error)

	WorkerRegister(ctx context.Context, r stroem.WorkerRegistration) (stroem.Worker, error)
	WorkerList(ctx context.Context) ([]stroem.Worker, error)

	WorkspaceArchivePut(ctx context.Context, revision string, tarball []byte) error
	WorkspaceArchiveGet(ctx context.Context, revision string) ([]byte, error)

	TriggerLastTick(ctx context.Context, workspace, trigger string) (time.Time, error)
	TriggerJobsUnfinished(ctx context.Context, workspace, trigger string, before time.Time) ([]string, error)

	// LogAppend stores one push of log lines, fenced by attempt (see
	// logs.go): a push from a worker that does not hold the step's running
	// attempt is a stroem.CodeConflict error and stores nothing.
	LogAppend(ctx context.Context, a LogAppend) (LogAppended, error)
	// LogScan calls fn for every stored line of the job with seq > afterSeq
	// (of step only, when not empty) in seq order, reading page by page; it
	// stops at the first error fn returns and returns it. A job without
	// lines (or without a row) calls fn never.
	LogScan(ctx context.Context, jobID string, afterSeq int64, step string, fn func(stroem.LogLine) error) error
	// LogTruncatedSteps names the job's steps whose log reached the size
	// limit.
	LogTruncatedSteps(ctx context.Context, jobID string) ([]string, error)
	// Notify sends payload on channel to every server's Listen (SQLite,
	// one process: to its own listeners).
	Notify(ctx context.Context, channel, payload string) error

	// Listen blocks until ctx is done, calling onNotify with the payload of
	// every notification on channel (ChannelStepsReady) from any server
	// process, and once with "" after every (re)connect: re-scan then.
	Listen(ctx context.Context, channel string, onNotify func(payload string)) error
	// Origin is the identity this store puts in front of the payloads of
	// its own notifications ("<origin>:<job id>"), so a server can tell its
	// own (whose waiters it already woke) from other servers'.
	Origin() string
}
