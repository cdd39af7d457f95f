package actors

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
	"github.com/stroem/stroem/workspace"
)

// Server-side steps (issue 19 part B). A step of a `type: approval` or
// `type: task` action never reaches a worker: when the DAG makes it ready,
// suspendServerSteps moves it to `suspended` in the same transaction, and
// the JobActor waits — for a decision (this file), for the child job
// (subjob.go). Everything a wait needs is stored with the step (its status,
// the time it began, the gate's message in its output), so a server that
// restarts re-arms the timers and re-checks the children from the store
// alone (gatesSync).

// MaxApprovalText bounds a decision's message and rejection reason.
const MaxApprovalText = 4096

// Decision is an approver's answer to an approval gate.
type Decision struct {
	Approved bool
	// By names who decided (auth.Identity.Actor; "anonymous" without
	// authentication).
	By string
	// Reason is the rejection reason; Message an optional comment.
	Reason  string
	Message string
}

// suspendServerSteps moves ready steps of server-side actions to suspended
// (an approval gate gets its rendered message), and marks the job running.
// Part of advance: it runs in every JobUpdate and at job creation (the
// insert stores a root gate's message, and its start as the insert's time).
// A suspended step stored without a start gets one, and its message, in the
// JobActor's next update (gatesSync asks for it).
func suspendServerSteps(p *plan, s *persistence.JobState) {
	if !p.serverSide {
		return
	}
	for i, r := range s.All() {
		ps := p.step(r.Name)
		if ps == nil || !workspace.IsServerSide(ps.action.Type) {
			continue
		}
		if r.Status != stroem.StepReady && (r.Status != stroem.StepSuspended || r.StartedAt != nil) {
			continue
		}
		st := s.MutAt(i)
		now := s.Now
		st.Status, st.ReadyAt, st.StartedAt = stroem.StepSuspended, nil, &now
		if ps.action.Type == workspace.ActionApproval {
			msg, err := approvalMessage(p, s, st)
			if err != nil {
				st.Status, st.ErrorMessage = stroem.StepFailed, p.masker.MaskError(err)
				continue
			}
			out := map[string]any{"message": msg}
			if ps.timeout > 0 {
				out["timeout_at"] = now.Add(ps.timeout).UTC().Format(time.RFC3339)
			}
			st.Output = out
		}
		if s.Job.Status == stroem.JobPending {
			s.Job.Status = stroem.JobRunning
			if s.Job.StartedAt == nil {
				s.Job.StartedAt = &now
			}
		}
	}
}

// approvalMessage renders a gate's message: `input` is the job's input
// with the step's own input over it, and the outputs of the steps before it
// are there as for any step.
func approvalMessage(p *plan, s *persistence.JobState, st *persistence.StepState) (string, error) {
	ps := p.step(st.Name)
	if ps.action.Message == "" {
		return fmt.Sprintf("Approve step %q of task %s?", st.Name, s.Job.TaskName), nil
	}
	t, err := workspace.CompileTemplate(ps.action.Message)
	if err != nil {
		return "", fmt.Errorf("approval message: %w", err)
	}
	ctx := templateContext(p, s, st.Name)
	in := maps.Clone(s.Job.Input)
	if in == nil {
		in = map[string]any{}
	}
	maps.Copy(in, st.Input)
	ctx["input"] = in
	msg, err := t.Render(ctx)
	if err != nil {
		return "", p.renderError("approval message", err)
	}
	return p.masker.Mask(msg), nil
}

// evApprove is an approver's decision on a suspended gate.
type evApprove struct {
	step string
	d    Decision
}

func (e evApprove) apply(p *plan, s *persistence.JobState) error {
	st, err := stepOf(s, e.step)
	if err != nil {
		return err
	}
	ps := p.step(st.Name)
	if ps == nil || ps.action.Type != workspace.ActionApproval {
		return stroem.Errorf(stroem.CodeConflict, "step %q of job %s is not an approval gate", e.step, s.Job.ID)
	}
	if st.Status != stroem.StepSuspended {
		return stroem.Errorf(stroem.CodeConflict, "step %q of job %s is not waiting for a decision (it is %s)", e.step, s.Job.ID, st.Status)
	}
	at := s.Now.UTC().Format(time.RFC3339Nano)
	out := map[string]any{"approved": e.d.Approved, "input": st.Input}
	if st.Input == nil {
		out["input"] = map[string]any{}
	}
	recorded, _ := st.Output.(map[string]any) // nil before its first update recorded it
	if m, ok := recorded["message"]; ok {
		out["message"] = m
	} else if m, err := approvalMessage(p, s, st); err == nil {
		out["message"] = m // decided before its first update recorded it (a root gate)
	}
	if e.d.Approved {
		out["approved_by"], out["approved_at"] = e.d.By, at
		if e.d.Message != "" {
			out["comment"] = e.d.Message
		}
		st.Status, st.ErrorMessage = stroem.StepCompleted, ""
	} else {
		out["rejected_by"], out["rejected_at"], out["rejection_reason"] = e.d.By, at, e.d.Reason
		if e.d.Message != "" {
			out["comment"] = e.d.Message
		}
		st.Status = stroem.StepFailed
		st.ErrorMessage = "rejected by " + e.d.By
		if e.d.Reason != "" {
			st.ErrorMessage += ": " + e.d.Reason
		}
	}
	st.Output = p.masker.MaskMap(out)
	return nil
}

// evApprovalTimeout fails a gate still undecided at its deadline (its
// suspension plus the action's or step's timeout, on the database clock).
type evApprovalTimeout struct{ step string }

func (e evApprovalTimeout) apply(p *plan, s *persistence.JobState) error {
	st := s.Find(e.step)
	ps := p.step(e.step)
	if st == nil || ps == nil || st.Status != stroem.StepSuspended || ps.action.Type != workspace.ActionApproval || ps.timeout <= 0 || st.StartedAt == nil {
		return nil
	}
	if st.StartedAt.Add(ps.timeout).After(s.Now) {
		return nil // early (clocks differ): gatesSync arms it again
	}
	st = s.Mut(e.step)
	st.Status = stroem.StepFailed
	st.ErrorMessage = "approval step timed out after " + shortDuration(ps.timeout)
	return nil
}

// shortDuration writes 24h, 1h30m, 2s rather than 24h0m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// gateState is what a JobActor remembers of its server-side steps, so each
// timer, child check and hook is started once per actor (a new actor, after
// a restart, starts them again from the stored state: each is idempotent).
type gateState struct {
	timers    map[string]bool
	children  map[string]bool
	cancelled map[string]bool
	suspended map[string]bool
}

// gatesSync follows the server-side steps of a stored state: approval
// timers, child jobs to create or to read back, children to cancel, and
// on_suspended hooks. Called from sync after every load and update.
func (j *jobActor) gatesSync(ctx actor.Context, s *persistence.JobState) {
	if j.plan == nil || !j.plan.serverSide {
		return
	}
	reconcile := false
	defer func() {
		if reconcile {
			j.queue = append(j.queue, jobEvent{ev: evReconcile{}})
			j.flush(ctx)
		}
	}()
	g := &j.gates
	if g.timers == nil {
		g.timers, g.children, g.cancelled, g.suspended = map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}
	}
	for _, st := range s.All() {
		ps := j.plan.step(st.Name)
		if ps == nil || !workspace.IsServerSide(ps.action.Type) {
			continue
		}
		if st.Status == stroem.StepSuspended && st.StartedAt == nil && !s.Job.Status.Terminal() {
			// Stored without its start (an insert by an older version):
			// the next update records when and why it waits.
			reconcile = true
			continue
		}
		switch {
		case st.Status == stroem.StepSuspended && ps.action.Type == workspace.ActionApproval:
			if !g.suspended[st.Name] {
				g.suspended[st.Name] = true
				j.o.fireSuspendedHooks(j.plan, s, st.Name)
			}
			if ps.timeout > 0 && st.StartedAt != nil && !g.timers[st.Name] {
				g.timers[st.Name] = true
				d := st.StartedAt.Add(ps.timeout).Sub(s.Now)
				name := st.Name
				j.after(ctx, max(d, time.Millisecond)+50*time.Millisecond, &gateTimer{step: name})
			}
		case st.Status == stroem.StepSuspended && ps.action.Type == workspace.ActionTask:
			if !g.children[st.Name] {
				g.children[st.Name] = true
				j.o.childEnsure(j.plan, s, st.Name)
			}
		case ps.action.Type == workspace.ActionTask && st.Status == stroem.StepCancelled && !g.cancelled[st.Name]:
			g.cancelled[st.Name] = true
			j.o.childCancel(s.Job.ID, st.Name)
		}
	}
}

// gateTimer fires an approval timeout in the JobActor.
type gateTimer struct{ step string }

// gateTimerFired turns an approval timer into an update; if the update
// finds it early, the next sync arms it again.
func (j *jobActor) gateTimerFired(ctx actor.Context, m *gateTimer) {
	delete(j.gates.timers, m.step)
	j.queue = append(j.queue, jobEvent{ev: evApprovalTimeout{step: m.step}})
	j.flush(ctx)
}

// Approve records a decision on a suspended approval gate: approved, the
// step completes and its dependents run; rejected, it fails. Only a
// suspended gate can be decided (CodeConflict otherwise: the first
// decision stands).
func (o *Orchestrator) Approve(ctx context.Context, jobID, step string, d Decision) error {
	return o.request(ctx, jobID, evApprove{step: step, d: d})
}
