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
	// JobStatus returns a job's status alone, without reading its steps
	// (a log stream asks at every keep-alive, for jobs of any size).
	JobStatus(ctx context.Context, id string) (stroem.JobStatus, error)
	JobList(ctx context.Context, f JobFilter) ([]stroem.Job, error)
	// JobCount counts what JobList pages through (Limit and Offset ignored).
	JobCount(ctx context.Context, f JobFilter) (int, error)
	JobsUnfinished(ctx context.Context) ([]string, error)

	StepsClaim(ctx context.Context, p ClaimParams) ([]ClaimedStep, error)
	// StepsHandedFor returns, as StepsClaim does, the steps a claim
	// recorded as started for the completion link (ClaimParams.Handed)
	// that are still running that attempt for workerID: the worker
	// repeats a completion whose answer it lost, and is given them again.
	// It marks them found: StepUnclaimHanded leaves them alone from then
	// on (the two exclude each other, as StepStart and StepUnclaim do).
	StepsHandedFor(ctx context.Context, workerID, link string) ([]ClaimedStep, error)
	StepUnclaim(ctx context.Context, jobID, step string, attempt int, workerID string) error
	// StepUnclaimHanded undoes, as StepUnclaim does, a claim recorded as
	// started for the completion link (ClaimParams.Handed) whose answer the
	// server never sent, unless StepsHandedFor found it for a repeat.
	StepUnclaimHanded(ctx context.Context, jobID, step string, attempt int, workerID, link string) error
	StepLease(ctx context.Context, jobID, step string) (StepLease, error)
	StepFence(ctx context.Context, jobID, step string, attempt int, workerID string) (bool, error)
	// StepStart records the worker's acknowledgement (its `start` report)
	// of a step handed to it: the attempt is started and is never given
	// back for want of one. Fenced like StepFence (CodeConflict when the
	// worker does not hold that running attempt, e.g. it was given back),
	// idempotent; it returns whether a cancel was requested. A claim or a
	// hand-off leaves its new attempt unacknowledged, except a claim for a
	// completion (ClaimParams.Handed) and a hand-off to a completion's
	// claim (JobUpdate writing StepState.StartedAttempt).
	StepStart(ctx context.Context, jobID, step string, attempt int, workerID string) (bool, error)
	// StepsGiveBackUnstarted gives back, as StepUnclaim does (ready again,
	// first in line, the attempt forgotten), up to limit running steps
	// handed over at least unackedFor ago (their started_at) whose current
	// attempt was never acknowledged, and returns them with the attempt and
	// worker they had. An acknowledgement and a give-back of the same step
	// exclude each other: exactly one of them takes effect. A step whose job
	// is being cancelled is left to its lease.
	StepsGiveBackUnstarted(ctx context.Context, unackedFor time.Duration, limit int) ([]HeldStep, error)
	// StepsRunning lists every running step with the worker holding it: the
	// claims a starting server inherits from an earlier process.
	StepsRunning(ctx context.Context) ([]HeldStep, error)

	LeasesRenew(ctx context.Context, workerID string, running []stroem.StepRef, lease time.Duration) ([]stroem.StepRef, error)
	LeasesExtendAll(ctx context.Context, lease time.Duration) (int64, error)
	LeasesExpired(ctx context.Context, limit int) ([]stroem.StepRef, error)

	WorkerRegister(ctx context.Context, r stroem.WorkerRegistration) (stroem.Worker, error)
	// WorkersSeen records a heartbeat of each listed worker (its
	// last_heartbeat_at) in one write, and returns the ids, as given, of
	// those no worker has (not UUIDs included): they must register again.
	// Several servers may call it at once with overlapping lists.
	WorkersSeen(ctx context.Context, workerIDs []string) (unknown []string, err error)
	WorkerList(ctx context.Context) ([]stroem.Worker, error)
	// WorkerCredentialSet binds a worker's credential (its sha256, never
	// the credential) to its id; WorkerByCredential finds the id again
	// (CodeNotFound when no worker holds it).
	WorkerCredentialSet(ctx context.Context, workerID string, hash []byte) error
	WorkerByCredential(ctx context.Context, hash []byte) (string, error)
	// WorkerHoldsRevision reports whether the worker holds a running step
	// of a job at the workspace revision.
	WorkerHoldsRevision(ctx context.Context, workerID, revision string) (bool, error)

	WorkspaceArchivePut(ctx context.Context, revision string, tarball []byte) error
	WorkspaceArchiveGet(ctx context.Context, revision string) ([]byte, error)

	TriggerLastTick(ctx context.Context, workspace, trigger string) (time.Time, error)
	TriggerJobsUnfinished(ctx context.Context, workspace, trigger string, before time.Time) ([]string, error)

	// LogAppend stores one push of log lines, fenced by attempt (see
	// logs.go): a push from a worker that does not hold the step's running
	// attempt is a stroem.CodeConflict error and stores nothing.
	LogAppend(ctx context.Context, a LogAppend) (LogAppended, error)
	// LogScan calls fn for every stored line of the job with seq > afterSeq
	// in seq order, reading page by page; it stops at the first error fn
	// returns and returns it. A job without lines (or without a row) calls
	// fn never. A step, when not empty, keeps its lines: its own and, for a
	// for_each step, its instances' ("deploy[0]", … for "deploy"), as
	// stroem.InStep says; each is read through an index, never among the
	// job's other lines. An instance's name keeps that instance's lines.
	LogScan(ctx context.Context, jobID string, afterSeq int64, step string, fn func(stroem.LogLine) error) error
	// LogTruncatedSteps names the job's steps whose log reached the size
	// limit.
	LogTruncatedSteps(ctx context.Context, jobID string) ([]string, error)
	// Retention (docs/operations/retention.md): each call is one small
	// batch in its own short transaction. JobsPrune deletes terminal jobs
	// with their steps and attempts; TriggerTicksPrune deletes ticks older
	// than before but keeps each trigger's latest (missed-tick detection
	// needs it) and returns how many went (or would go); WorkersPrune
	// deletes workers not seen since before that hold no running step.
	JobsPrune(ctx context.Context, p PruneParams) (PruneResult, error)
	TriggerTicksPrune(ctx context.Context, before time.Time, limit int, dryRun bool) (int64, error)
	WorkersPrune(ctx context.Context, before time.Time, dryRun bool) (int64, error)
	// MetricsSample reads the gauges /metrics reports (one cheap query per
	// gauge, on partial indexes).
	MetricsSample(ctx context.Context) (MetricsSample, error)

	// Listen blocks until ctx is done, calling onNotify with the payload of
	// every notification on channel (ChannelStepsReady) from any server
	// process, and once with "" after every (re)connect: re-scan then.
	Listen(ctx context.Context, channel string, onNotify func(payload string)) error
	// Origin is the identity this store puts in front of the payloads of
	// its own notifications ("<origin>:<job id>"), so a server can tell its
	// own (whose waiters it already woke) from other servers'.
	Origin() string

	// JobCancelledBy records who cancelled a job; the first one is kept.
	JobCancelledBy(ctx context.Context, jobID, who string) error

	UserStore
	StateArtifactStore
}

// UserStore keeps users, their groups, OIDC links, refresh tokens and API
// keys (package auth's Store). Emails arrive normalized (lower case); ids
// are UUIDs, and an id that is not one names no row. Missing rows are
// stroem.ErrNotFound, a taken email or key prefix stroem.ErrConflict.
type UserStore interface {
	// UserInsert stores a new user with its groups.
	UserInsert(ctx context.Context, u stroem.User) error
	// UserGet and UserGetByEmail return the user with Groups (sorted) and
	// AuthMethods ("password" when it has one, then linked providers).
	UserGet(ctx context.Context, id string) (stroem.User, error)
	UserGetByEmail(ctx context.Context, email string) (stroem.User, error)
	// UserList returns a page of users ordered by email, and the total.
	UserList(ctx context.Context, limit, offset int) ([]stroem.User, int, error)
	UserCount(ctx context.Context) (int, error)
	UserSetAdmin(ctx context.Context, id string, admin bool) error
	UserSetPassword(ctx context.Context, id, hash string) error
	// UserSetGroups replaces the user's groups.
	UserSetGroups(ctx context.Context, id string, groups []string) error
	UserLoggedIn(ctx context.Context, id string, at time.Time) error
	// GroupList returns every distinct group name, sorted.
	GroupList(ctx context.Context) ([]string, error)

	// AuthLinkGet returns the user linked to an OIDC provider's subject.
	AuthLinkGet(ctx context.Context, provider, subject string) (string, error)
	AuthLinkInsert(ctx context.Context, provider, subject, userID string) error

	RefreshTokenInsert(ctx context.Context, t stroem.RefreshToken) error
	RefreshTokenGet(ctx context.Context, hash string) (stroem.RefreshToken, error)
	// RefreshTokenRotate revokes the token (only if not revoked yet) and
	// stores next in one transaction; ErrConflict when it was revoked.
	RefreshTokenRotate(ctx context.Context, hash string, next stroem.RefreshToken, now time.Time) error
	// RefreshTokenRevokeFamily revokes every live token of a session.
	RefreshTokenRevokeFamily(ctx context.Context, family string, now time.Time) error

	// APIKeyInsert fails with ErrConflict when the user already has a key
	// with that prefix.
	APIKeyInsert(ctx context.Context, k stroem.APIKey) error
	APIKeyGet(ctx context.Context, hash string) (stroem.APIKey, error)
	// APIKeyList returns a user's keys, newest first.
	APIKeyList(ctx context.Context, userID string) ([]stroem.APIKey, error)
	APIKeyDelete(ctx context.Context, userID, prefix string) error
	APIKeyUsed(ctx context.Context, hash string, at time.Time) error
}
