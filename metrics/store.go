package metrics

import (
	"context"
	"errors"
	"time"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
)

// Store wraps a persistence.Store and records what passes through it. Every
// change of a job goes through JobInsert, StepsClaim or JobUpdate (see
// docs/architecture.md), so comparing a job's steps before and after each
// JobUpdate sees every step that started by hand-off or ended, whichever
// actor caused it; the engine itself needs no instrumentation. Methods not
// overridden here pass straight through the embedded Store.
type Store struct {
	persistence.Store
	m   *Server
	now func() time.Time
}

// WrapStore returns s observed by m; with a nil m it returns s itself.
func WrapStore(s persistence.Store, m *Server) persistence.Store {
	if m == nil {
		return s
	}
	return &Store{Store: s, m: m, now: time.Now}
}

// failed counts err when it is the store's fault rather than the request's
// (a missing row, a conflict or invalid input is an answer, not an error).
func (s *Store) failed(op string, err error) {
	if err == nil || errors.Is(err, stroem.ErrNotFound) || errors.Is(err, stroem.ErrConflict) ||
		errors.Is(err, stroem.ErrInvalid) || errors.Is(err, context.Canceled) {
		return
	}
	s.m.storeErrors.WithLabelValues(op).Inc()
}

// JobInsert counts the job as created once it is stored, and as ended too
// when it is stored ended (a skipped tick's job, one whose every root step
// failed to render): no transition ends it later.
func (s *Store) JobInsert(ctx context.Context, j persistence.NewJob) error {
	err := s.Store.JobInsert(ctx, j)
	s.failed("JobInsert", err)
	if err == nil {
		s.m.jobsCreated.WithLabelValues(string(j.Job.SourceType)).Inc()
		if j.Job.Status.Terminal() {
			s.m.jobsCompletedBy.with(string(j.Job.Status)).Inc()
		}
	}
	return err
}

// StepsClaim times the claim query and counts the steps it started.
func (s *Store) StepsClaim(ctx context.Context, p persistence.ClaimParams) ([]persistence.ClaimedStep, error) {
	start := s.now()
	got, err := s.Store.StepsClaim(ctx, p)
	s.m.claimSeconds.Observe(s.now().Sub(start).Seconds())
	s.failed("StepsClaim", err)
	if len(got) > 0 {
		s.m.stepsStartedBy.with("claim").Add(float64(len(got)))
	}
	return got, err
}

// JobUpdate runs fn as given, remembering the state as fn found it (a
// share of its steps, not a copy), and after a successful commit records
// what changed.
func (s *Store) JobUpdate(ctx context.Context, jobID string, fn func(*persistence.JobState) error) (*persistence.JobState, error) {
	var before *persistence.JobState
	after, err := s.Store.JobUpdate(ctx, jobID, func(st *persistence.JobState) error {
		before = st.Share() // again on every retry of the transaction: the last one counts
		return fn(st)
	})
	s.failed("JobUpdate", err)
	if err == nil && after != nil && before != nil {
		s.m.observeUpdate(before, after)
	}
	return after, err
}

// The reads and writes below only count errors.

func (s *Store) JobState(ctx context.Context, jobID string) (*persistence.JobState, error) {
	st, err := s.Store.JobState(ctx, jobID)
	s.failed("JobState", err)
	return st, err
}

func (s *Store) JobGet(ctx context.Context, id string) (*stroem.Job, error) {
	j, err := s.Store.JobGet(ctx, id)
	s.failed("JobGet", err)
	return j, err
}

func (s *Store) JobStatus(ctx context.Context, id string) (stroem.JobStatus, error) {
	st, err := s.Store.JobStatus(ctx, id)
	s.failed("JobStatus", err)
	return st, err
}

func (s *Store) JobList(ctx context.Context, f persistence.JobFilter) ([]stroem.Job, error) {
	js, err := s.Store.JobList(ctx, f)
	s.failed("JobList", err)
	return js, err
}

func (s *Store) LeasesRenew(ctx context.Context, workerID string, running []stroem.StepRef, lease time.Duration) ([]stroem.StepRef, error) {
	stop, err := s.Store.LeasesRenew(ctx, workerID, running, lease)
	s.failed("LeasesRenew", err)
	return stop, err
}

func (s *Store) WorkersSeen(ctx context.Context, workerIDs []string) ([]string, error) {
	unknown, err := s.Store.WorkersSeen(ctx, workerIDs)
	s.failed("WorkersSeen", err)
	return unknown, err
}

func (s *Store) StepLease(ctx context.Context, jobID, step string) (persistence.StepLease, error) {
	l, err := s.Store.StepLease(ctx, jobID, step)
	s.failed("StepLease", err)
	return l, err
}

func (s *Store) StepFence(ctx context.Context, jobID, step string, attempt int, workerID string) (bool, error) {
	ok, err := s.Store.StepFence(ctx, jobID, step, attempt, workerID)
	s.failed("StepFence", err)
	return ok, err
}

func (s *Store) WorkerRegister(ctx context.Context, r stroem.WorkerRegistration) (stroem.Worker, error) {
	w, err := s.Store.WorkerRegister(ctx, r)
	s.failed("WorkerRegister", err)
	return w, err
}

func (s *Store) Ping(ctx context.Context) error {
	err := s.Store.Ping(ctx)
	s.failed("Ping", err)
	return err
}

// observeUpdate records what one committed JobUpdate changed: steps handed
// to a waiting worker (a new running attempt), attempts that ended (with
// their run time, and the hop from their dependencies for first attempts),
// lease expiries, and the job's end.
func (m *Server) observeUpdate(before, after *persistence.JobState) {
	for _, i := range after.Changed() { // the others are as before
		if i >= before.Len() {
			continue // appended by this update
		}
		st, b := after.At(i), before.At(i)
		if st.Attempt > b.Attempt && st.AttemptStatus == stroem.AttemptRunning {
			m.stepsStartedBy.with("handoff").Inc()
		}
		if b.AttemptStatus != stroem.AttemptRunning || st.Attempt != b.Attempt || !st.AttemptStatus.Terminal() {
			continue
		}
		result := string(st.AttemptStatus)
		m.stepsFinishedBy.with(result).Inc()
		if st.AttemptStatus == stroem.AttemptLost {
			m.leaseExpiries.Inc()
		}
		if st.StartedAt == nil {
			continue
		}
		end := after.Now
		if st.CompletedAt != nil {
			end = *st.CompletedAt
		}
		if d := end.Sub(*st.StartedAt); d >= 0 {
			m.stepSecondsBy.with(result).Observe(d.Seconds())
		}
		if st.Attempt == 1 {
			if hop, ok := hopOf(after, &st); ok {
				m.hopSeconds.Observe(hop.Seconds())
			}
		}
	}
	if !before.Job.Status.Terminal() && after.Job.Status.Terminal() {
		m.jobsCompletedBy.with(string(after.Job.Status)).Inc()
	}
}

// hopOf is the time from the last of st's dependencies completing to st's
// first attempt starting, both in the store's clock; false for a root step
// or missing times. A hand-off starts the dependent in the transaction that
// records the completion, so its hop is 0 (a start stamped a moment before
// the completion in that same transaction counts as 0 too); a step claimed
// later shows how long it waited for a worker.
func hopOf(s *persistence.JobState, st *persistence.StepState) (time.Duration, bool) {
	var last time.Time
	for _, name := range st.DependsOn {
		d := s.Find(name)
		if d == nil || d.CompletedAt == nil {
			return 0, false
		}
		if d.CompletedAt.After(last) {
			last = *d.CompletedAt
		}
	}
	if last.IsZero() {
		return 0, false
	}
	return max(0, st.StartedAt.Sub(last)), true
}
