package postgres

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
)

// StepStart records the worker's acknowledgement of a step handed to it: the
// attempt is started, and is no longer given back for want of one. It is
// fenced like StepFence (CodeConflict when the worker does not hold that
// running attempt — it was given back, or lost), idempotent, and returns
// whether a cancel was requested.
//
// Acknowledgements that arrive while one is being written are written
// together by the next statement (see starts): a fan-out's workers
// acknowledge many steps at once, and each had cost a transaction and a
// commit of its own.
func (s *Store) StepStart(ctx context.Context, jobID, step string, attempt int, workerID string) (bool, error) {
	if !validUUID(jobID) {
		return false, notFound("job %s not found", jobID)
	}
	r := &startReq{jobID: canonicalUUID(jobID), step: step, attempt: attempt, workerID: canonicalUUID(workerID),
		done: make(chan struct{}), lead: make(chan struct{}, 1)}
	if attempt < 1 || attempt > math.MaxInt32 {
		// No stored attempt (an int column) is this one, and the batch's
		// int4 array would hold it truncated: attempt 2³²+1 would have
		// started attempt 1.
		close(r.done)
	} else if s.starts.enqueue(r) {
		s.writeStarts()
	}
	select {
	case <-r.done:
	case <-r.lead: // the writer of the batch before this one passed it on
		s.writeStarts()
		<-r.done
	case <-ctx.Done():
		if !s.starts.abandon(r) {
			s.writeStarts() // it was this request's turn to write: write for the others
		}
		return false, fmt.Errorf("start step %s of job %s: %w", step, jobID, interpretError(ctx.Err()))
	}
	if r.err != nil {
		return false, fmt.Errorf("start step %s of job %s: %w", step, jobID, interpretError(r.err))
	}
	if !r.held {
		// Not held: StepFence says why (unknown step, or another attempt).
		if _, err := s.StepFence(ctx, jobID, step, attempt, workerID); err != nil {
			return false, err
		}
		return false, stroem.Errorf(stroem.CodeConflict, "step %s of job %s: attempt %d is no longer running", step, jobID, attempt)
	}
	return r.cancel, nil
}

// startReq is one acknowledgement waiting to be written.
type startReq struct {
	jobID, step, workerID string
	attempt               int
	// Set by the write, before done is closed.
	held, cancel bool
	err          error
	done         chan struct{}
	// lead tells the request at the head of the queue to write the next
	// batch.
	lead chan struct{}
}

// starts is a group commit of acknowledgements, without a goroutine of its
// own: the request that finds no write in progress writes the queue; when
// a write ends, the request at the head of the queue (if any) is told to
// write the next batch, which holds everything queued meanwhile.
type starts struct {
	mu      sync.Mutex
	writing bool
	queue   []*startReq
}

// enqueue queues r and reports whether its caller must write now.
func (q *starts) enqueue(r *startReq) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.queue = append(q.queue, r)
	if q.writing {
		return false
	}
	q.writing = true
	return true
}

// take returns the queue to write.
func (q *starts) take() []*startReq {
	q.mu.Lock()
	defer q.mu.Unlock()
	batch := q.queue
	q.queue = nil
	return batch
}

// next ends a write: the head of the queue writes next, or nobody is
// writing.
func (q *starts) next() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.queue) == 0 {
		q.writing = false
		return
	}
	q.queue[0].lead <- struct{}{}
}

// abandon takes r, whose caller gave up, out of the queue. It reports false
// when r had been told to write the next batch: its caller must write it
// still, for the requests queued behind it.
func (q *starts) abandon(r *startReq) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, x := range q.queue {
		if x == r {
			q.queue = append(q.queue[:i:i], q.queue[i+1:]...)
			break
		}
	}
	select {
	case <-r.lead:
		return false
	default:
		return true
	}
}

// writeStarts writes one batch of queued acknowledgements and passes the
// turn on.
func (s *Store) writeStarts() {
	defer s.starts.next()
	batch := s.starts.take()
	if len(batch) == 0 {
		return
	}
	// The batch is written for every request in it: no one caller's
	// context may cancel it.
	ctx, cancel := context.WithTimeout(context.Background(), startWriteTimeout)
	defer cancel()
	jobIDs := make([]string, len(batch))
	steps := make([]string, len(batch))
	attempts := make([]int32, len(batch))
	workers := make([]string, len(batch))
	// With every step's position known from the kept steps of its job, the
	// statement names each row by its full key (startByPositionSQL).
	positions := make([]int32, len(batch))
	for i, r := range batch {
		jobIDs[i], steps[i], attempts[i], workers[i] = r.jobID, r.step, int32(r.attempt), r.workerID
		if positions != nil {
			if pos, ok := s.steps.Position(r.jobID, r.step); ok {
				positions[i] = int32(pos)
			} else {
				positions = nil
			}
		}
	}
	sql, args := startSQL, []any{jobIDs, steps, attempts, workers, string(stroem.StepRunning)}
	if positions != nil {
		sql, args = startByPositionSQL, append(args, positions)
	}
	type key struct{ job, step string }
	type row struct {
		attempt int
		worker  string
		cancel  bool
	}
	var started map[key]row
	err := s.retry(ctx, func() error {
		started = map[key]row{}
		return s.queryKeyed(ctx, func(rows pgx.Rows) error {
			var k key
			var r row
			if err := rows.Scan(&k.job, &k.step, &r.attempt, &r.worker, &r.cancel); err != nil {
				return err
			}
			started[k] = r
			return nil
		}, sql, args...)
	})
	for _, r := range batch {
		if err != nil {
			r.err = err
		} else if got, ok := started[key{r.jobID, r.step}]; ok && got.attempt == r.attempt && got.worker == r.workerID {
			r.held, r.cancel = true, got.cancel
		}
		close(r.done)
	}
}

// startWriteTimeout bounds one write of acknowledgements.
const startWriteTimeout = 10 * time.Second

// startSQL acknowledges a batch of attempts (see StepStart), each only if
// its worker still holds it running. The rows are locked in (job,
// position) order, the order JobUpdate and LeasesRenew use, so a batch
// spanning jobs never deadlocks with them. The status required is a
// parameter ($5, 'running'), not a constant: with the constant, the planner
// can prove the predicate of the partial index of running steps
// (job_steps_lease_idx) and, on a young table whose statistics call that
// index tiny, picked it — a scan of every running step and of their dead
// versions per acknowledgement (about 250 index entries each in the bench's
// fan-out). It runs under keyedPlans. The update finds the held rows by
// position too, so that either unique index finds each by its full key (see
// claimSQL).
const startSQL = `
WITH r AS (
	SELECT * FROM unnest($1::uuid[], $2::text[], $3::int[], $4::text[]) AS r(job_id, step_name, attempt, worker_id)
), held AS MATERIALIZED (
	SELECT s.job_id, s.step_name, s.position
	FROM job_steps s JOIN r ON r.job_id = s.job_id AND r.step_name = s.step_name
	WHERE s.status = $5 AND s.attempt = r.attempt AND s.worker_id = r.worker_id
	ORDER BY s.job_id, s.position
	FOR UPDATE OF s
)
UPDATE job_steps s SET started_attempt = s.attempt
FROM held h WHERE s.job_id = h.job_id AND s.position = h.position AND s.step_name = h.step_name
RETURNING s.job_id::text, s.step_name, s.attempt, s.worker_id, s.cancel_requested`

// startByPositionSQL is startSQL for a batch whose steps' positions are
// known ($6): the steps are found by job, name and position. By job and
// name alone, a generic plan made on statistics of small jobs (or none)
// may pick the (job_id, position) index on job_id alone and read every step
// of the job for each acknowledgement (about 120 rows each in the bench's
// fan-out).
const startByPositionSQL = `
WITH r AS (
	SELECT * FROM unnest($1::uuid[], $2::text[], $3::int[], $4::text[], $6::int[]) AS r(job_id, step_name, attempt, worker_id, position)
), held AS MATERIALIZED (
	SELECT s.job_id, s.step_name, s.position
	FROM job_steps s JOIN r ON r.job_id = s.job_id AND r.position = s.position AND r.step_name = s.step_name
	WHERE s.status = $5 AND s.attempt = r.attempt AND s.worker_id = r.worker_id
	ORDER BY s.job_id, s.position
	FOR UPDATE OF s
)
UPDATE job_steps s SET started_attempt = s.attempt
FROM held h WHERE s.job_id = h.job_id AND s.position = h.position AND s.step_name = h.step_name
RETURNING s.job_id::text, s.step_name, s.attempt, s.worker_id, s.cancel_requested`

// giveBackSQL puts back to ready, as unclaimSQL does, the running steps
// whose current attempt was handed over at least $1 ms ago and never
// acknowledged, in one statement: the acknowledgement (StepStart) and the
// give-back lock the same row, so exactly one of them wins. It finds them
// among the running steps (job_steps_lease_idx; as many as the fleet has
// slots): no index names started_attempt, so that an acknowledgement is a
// HOT update (migration 00180).
const giveBackSQL = `
WITH picked AS MATERIALIZED (
	SELECT job_id, step_name, attempt, worker_id
	FROM job_steps
	WHERE status = 'running' AND started_attempt <> attempt AND NOT cancel_requested
		AND started_at <= now() - $1 * interval '1 millisecond'
	ORDER BY started_at, job_id, position
	LIMIT $2
	FOR UPDATE SKIP LOCKED
), undone AS (
	UPDATE job_steps s SET
		status = 'ready', attempt = s.attempt - 1,
		worker_id = prev.worker_id,
		attempt_status = coalesce(prev.status, ''),
		exit_code = prev.exit_code,
		error_message = coalesce(prev.error_message, ''),
		started_at = prev.started_at,
		lease_expires_at = NULL, completed_at = NULL
	FROM picked p LEFT JOIN step_attempts prev
		ON prev.job_id = p.job_id AND prev.step_name = p.step_name AND prev.attempt = p.attempt - 1
	WHERE s.job_id = p.job_id AND s.step_name = p.step_name
	RETURNING s.job_id, s.step_name, p.attempt, p.worker_id
), forgotten AS (
	DELETE FROM step_attempts a USING undone u
	WHERE a.job_id = u.job_id AND a.step_name = u.step_name AND a.attempt = u.attempt
)
SELECT u.job_id::text, u.step_name, u.attempt, coalesce(u.worker_id, ''),
	pg_notify('` + persistence.ChannelStepsReady + `', $3 || ':' || u.job_id::text)
FROM undone u`

// StepsGiveBackUnstarted gives back up to limit running steps handed to a
// worker at least unackedFor ago that the worker never acknowledged
// (StepStart): each is ready again, first in line, with its attempt
// forgotten, as StepUnclaim does. A step whose job is being cancelled is
// left to its lease. It returns the steps given back, with the attempt and
// worker they had.
func (s *Store) StepsGiveBackUnstarted(ctx context.Context, unackedFor time.Duration, limit int) ([]persistence.HeldStep, error) {
	if limit <= 0 {
		limit = 100
	}
	var out []persistence.HeldStep
	err := s.retry(ctx, func() error {
		rows, err := s.pool.Query(ctx, giveBackSQL, unackedFor.Milliseconds(), limit, s.origin)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (persistence.HeldStep, error) {
			var h persistence.HeldStep
			err := row.Scan(&h.JobID, &h.Step, &h.Attempt, &h.WorkerID, nil)
			return h, err
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("give back unstarted steps: %w", interpretError(err))
	}
	return out, nil
}
