package actors

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
	"github.com/stroem/stroem/workspace"
)

// This file holds the task-level limits of the upstream language: a task's
// `timeout` (else the server's default_job_timeout) bounds the job from its
// creation, and a task's `retry` runs the task again as a new job when the
// job fails. Both are kept in the job's context, fixed when the job is
// created, so a server that takes the job over enforces the same limits.

// Job context keys of the task-level limits.
const (
	// ctxTimeoutAt is the job's deadline (RFC 3339, UTC). A retry job
	// inherits the deadline of the job it retries: upstream's task timeout
	// covers the whole retry chain.
	ctxTimeoutAt = "timeout_at"
	// ctxTimeout is the timeout the deadline came from, for messages.
	ctxTimeout = "timeout"
	// ctxRetryOf names the failed job a task-level retry job retries.
	ctxRetryOf = "retry_of_job_id"
	// ctxTaskAttempt is the retry job's place in the chain (the first job
	// is attempt 1 and has no key).
	ctxTaskAttempt = "task_attempt"
)

// taskRetry is what a task-level retry job carries over from the job it
// retries.
type taskRetry struct {
	of       string
	attempt  int
	deadline time.Time
	timeout  time.Duration
}

// setTaskLimits writes the job's deadline and retry link into its context.
func (o *Orchestrator) setTaskLimits(task *workspace.Task, r JobRequest, s *persistence.JobState) {
	set := func(k string, v any) {
		if s.Context == nil {
			s.Context = map[string]any{}
		}
		s.Context[k] = v
	}
	timeout, deadline := time.Duration(0), time.Time{}
	if r.retry != nil {
		timeout, deadline = r.retry.timeout, r.retry.deadline
		set(ctxRetryOf, r.retry.of)
		set(ctxTaskAttempt, r.retry.attempt)
	} else {
		timeout = task.Timeout.D()
		if timeout <= 0 {
			timeout = o.cfg.DefaultJobTimeout
		}
		if timeout > 0 {
			deadline = s.Now.Add(timeout)
		}
	}
	if !deadline.IsZero() {
		set(ctxTimeoutAt, deadline.UTC().Format(time.RFC3339Nano))
		set(ctxTimeout, timeout.String())
	}
}

// jobDeadline is the stored deadline of a job, if it has one.
func jobDeadline(s *persistence.JobState) (time.Time, bool) {
	v, _ := s.Context[ctxTimeoutAt].(string)
	if v == "" {
		return time.Time{}, false
	}
	at, err := time.Parse(time.RFC3339Nano, v)
	return at, err == nil
}

// taskAttempt is the job's attempt number in its task-level retry chain.
func taskAttempt(s *persistence.JobState) int {
	switch v := s.Context[ctxTaskAttempt].(type) {
	case float64:
		return int(v)
	case int:
		return v
	case int64:
		return int(v)
	}
	return 1
}

// armDeadline starts the job's timeout timer once per JobActor.
func (j *jobActor) armDeadline(ctx actor.Context, s *persistence.JobState) {
	if j.deadline != nil || s.Job.Status.Terminal() {
		return
	}
	at, ok := jobDeadline(s)
	if !ok {
		return
	}
	// Timed on the database clock (s.Now), like leases.
	d := max(at.Sub(s.Now), time.Millisecond)
	timeout, _ := s.Context[ctxTimeout].(string)
	self, root := ctx.Self(), ctx.ActorSystem().Root
	j.deadline = time.AfterFunc(d, func() {
		root.Send(self, &jobEvent{ev: evTimeout{timeout: timeout}})
	})
}

// stopDeadline stops the timer of a finished job.
func (j *jobActor) stopDeadline() {
	if j.deadline != nil {
		j.deadline.Stop()
	}
}

// evTimeout is the task timeout running out: the job is cancelled as a
// user's cancel would (upstream marks a timed-out job cancelled), and steps
// that had not started say why.
type evTimeout struct{ timeout string }

func (e evTimeout) apply(p *plan, s *persistence.JobState) error {
	if s.Job.Status.Terminal() {
		return nil
	}
	if at, ok := jobDeadline(s); ok && s.Now.Before(at) {
		return nil // the deadline moved (never happens) or the clock is behind
	}
	msg := "cancelled: the job timed out"
	if e.timeout != "" {
		msg = fmt.Sprintf("cancelled: the job timed out (task timeout %s)", e.timeout)
	}
	s.CancelRequested = true
	for i, st := range s.All() {
		switch st.Status {
		case stroem.StepPending, stroem.StepReady:
			m := s.MutAt(i)
			m.Status = stroem.StepCancelled
			m.ErrorMessage = msg
			m.ReadyAt = nil
		case stroem.StepRunning:
			s.MutAt(i).CancelRequested = true
		}
	}
	return nil
}

// taskRetryFollows reports whether a finished job is followed by a
// task-level retry job (its task's retry allows another attempt). Upstream
// fires a task's on_error hooks only when it is not.
func taskRetryFollows(p *plan, s *persistence.JobState) bool {
	if s.Job.Status != stroem.JobFailed || p == nil || p.snap == nil || p.snap.Task == nil {
		return false
	}
	if _, child := parentOf(s); child {
		// The parent's step ended with the child: a retry job would run
		// the task again with nobody waiting for it.
		return false
	}
	r := p.snap.Task.Retry
	return r != nil && taskAttempt(s) < r.MaxAttempts
}

// retryTask creates the next job of a failed job's task-level retry chain,
// after the policy's delay, and reports whether it will (then the failed
// job's on_error hooks do not fire: upstream fires them once, for the last
// job of the chain). It runs the task's current definition with the same
// input. A retry whose delay would end after the chain's deadline is not
// made. When the retry job cannot be created (the task was removed, its
// input no longer fits), the failed job's hooks fire then. The delay is
// kept in memory: a retry still waiting when the server stops is not made,
// and neither are the hooks (docs/workflows.md says so).
func (o *Orchestrator) retryTask(p *plan, s *persistence.JobState) bool {
	if !taskRetryFollows(p, s) {
		return false
	}
	r := p.snap.Task.Retry
	attempt := taskAttempt(s)
	delay := retryDelay(r, attempt, rand.Float64)
	next := &taskRetry{of: s.Job.ID, attempt: attempt + 1}
	if at, ok := jobDeadline(s); ok {
		next.deadline = at
		if v, _ := s.Context[ctxTimeout].(string); v != "" {
			next.timeout, _ = time.ParseDuration(v)
		}
		if !s.Now.Add(delay).Before(at) {
			o.log.Info("task retry not made: the task timeout would pass first", "job_id", s.Job.ID, "attempt", attempt+1)
			return false
		}
	}
	req := JobRequest{
		Workspace: s.Job.Workspace, Task: s.Job.TaskName, Input: s.Job.Input,
		SourceType: s.Job.SourceType, SourceID: s.Job.SourceID, CreatedBy: s.Job.CreatedBy,
		Webhook: webhookContext(s), retry: next,
	}
	if s.Job.SourceType == stroem.SourceWebhook {
		// The request's keys are set again after the input is checked.
		req.Input, req.WebhookInput = map[string]any{}, map[string]any{}
		for k, v := range s.Job.Input {
			if workspace.IsWebhookInputKey(k) {
				req.WebhookInput[k] = v
			} else {
				req.Input[k] = v
			}
		}
	}
	time.AfterFunc(delay, func() {
		select {
		case <-o.stopped:
			return
		default:
		}
		c, cancel := context.WithTimeout(context.Background(), o.cfg.RequestTimeout)
		defer cancel()
		id, err := o.JobCreate(c, req)
		if err != nil {
			// No job follows after all: this one is the chain's last, and
			// its on_error hooks fire now (they alert; never lose them).
			o.log.Warn("task retry failed", "job_id", s.Job.ID, "attempt", attempt+1, "err", err)
			ev := hookEvent(s.Job.Status)
			o.fireHooks(p, s, ev, "", hookContext(s, ev))
			return
		}
		o.log.Info("task retried", "job_id", s.Job.ID, "retry_job_id", id, "attempt", attempt+1)
	})
	return true
}
