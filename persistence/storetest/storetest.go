// Package storetest is the conformance suite of Strøm's stores: the
// behaviour the orchestrator and the HTTP layer rely on, run against every
// implementation — the PostgreSQL store (package persistence) and the
// embedded SQLite store (package persistence/sqlite) — so the two cannot
// drift apart. It is for tests only.
//
// A store's test calls Run with a function that opens a fresh, empty,
// migrated store for one test. The suite only uses the Store interface: no
// SQL, no peeking at rows, so whatever it checks is what callers see. Checks
// that need a store's insides (PostgreSQL row versions, SQLite pragmas)
// stay in that store's own tests.
package storetest

import (
	"context"
	"time"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
)

// Store is the method set every store implements: what the orchestrator
// (actors.Store, actors.TriggerStore), the HTTP layer (http.Store) and the server wiring
// (cmd/stroem's serverStore) use, plus SnapshotPut.
type Store interface {
	Ping(ctx context.Context) error
	SnapshotPut(ctx context.Context, id string, body []byte) error
	SnapshotGet(ctx context.Context, id string) ([]byte, error)
	JobInsert(ctx context.Context, j persistence.NewJob) error
	JobUpdate(ctx context.Context, jobID string, fn func(*persistence.JobState) error) (*persistence.JobState, error)
	JobState(ctx context.Context, jobID string) (*persistence.JobState, error)
	JobGet(ctx context.Context, id string) (*stroem.Job, error)
	JobList(ctx context.Context, f persistence.JobFilter) ([]stroem.Job, error)
	JobCount(ctx context.Context, f persistence.JobFilter) (int, error)
	JobsUnfinished(ctx context.Context) ([]string, error)
	StepsClaim(ctx context.Context, p persistence.ClaimParams) ([]persistence.ClaimedStep, error)
	StepUnclaim(ctx context.Context, jobID, step string, attempt int, workerID string) error
	StepLease(ctx context.Context, jobID, step string) (persistence.StepLease, error)
	StepFence(ctx context.Context, jobID, step string, attempt int, workerID string) (bool, error)
	LeasesRenew(ctx context.Context, workerID string, running []stroem.StepRef, lease time.Duration) ([]stroem.StepRef, error)
	LeasesExtendAll(ctx context.Context, lease time.Duration) (int64, error)
	LeasesExpired(ctx context.Context, limit int) ([]stroem.StepRef, error)
	WorkerRegister(ctx context.Context, r stroem.WorkerRegistration) (stroem.Worker, error)
	WorkerList(ctx context.Context) ([]stroem.Worker, error)
	WorkspaceArchivePut(ctx context.Context, revision string, tarball []byte) error
	WorkspaceArchiveGet(ctx context.Context, revision string) ([]byte, error)
	TriggerLastTick(ctx context.Context, workspace, trigger string) (time.Time, error)
	TriggerJobsUnfinished(ctx context.Context, workspace, trigger string, before time.Time) ([]string, error)
	Listen(ctx context.Context, channel string, onNotify func(payload string)) error
	Close()
}
