package actors

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
	"github.com/stroem/stroem/workspace"
)

// Sub-jobs: a suspended `type: task` step has exactly one child job. Its id
// is derived from the parent job and the step (ChildJobID), so creating it
// is idempotent: a second JobInsert of the same id is a conflict, and the
// JobActor then reads the child instead. A server that dies anywhere in the
// wait loses nothing and repeats nothing:
//
//   - after the step became suspended, before the child was inserted: the
//     recovered JobActor sees the suspended step and creates the child;
//   - after the insert: creating it again conflicts, the child is read, and
//     its own (recovered) JobActor reports its end;
//   - after the child ended, before the parent heard: reading the child back
//     finds it terminal and the parent step ends from it.

// childNamespace scopes the derived ids of child and hook jobs.
var childNamespace = uuid.MustParse("6f1d3f0e-6b7a-4c1e-9a57-2f0c5b1e9d42")

// ChildJobID is the id of the child job of a `type: task` step.
func ChildJobID(parentJobID, step string) string {
	return uuid.NewSHA1(childNamespace, []byte("task\x00"+parentJobID+"\x00"+step)).String()
}

// parentLink is what a child job keeps of its parent (in its context).
type parentLink struct {
	JobID string
	Step  string
	Depth int
}

func parentOf(s *persistence.JobState) (parentLink, bool) {
	m, ok := s.Context["parent"].(map[string]any)
	if !ok {
		return parentLink{}, false
	}
	l := parentLink{}
	l.JobID, _ = m["job_id"].(string)
	l.Step, _ = m["step_name"].(string)
	switch d := m["depth"].(type) {
	case float64:
		l.Depth = int(d)
	case int:
		l.Depth = d
	case int64:
		l.Depth = int(d)
	}
	return l, l.JobID != ""
}

// ParentOf returns the parent job and step of a child job's state.
func ParentOf(s *persistence.JobState) (jobID, step string, depth int, ok bool) {
	l, ok := parentOf(s)
	return l.JobID, l.Step, l.Depth, ok
}

// evChildDone ends a suspended task step from its child job's outcome.
type evChildDone struct {
	step    string
	childID string
	status  stroem.JobStatus
	output  map[string]any
	msg     string
}

func (e evChildDone) apply(p *plan, s *persistence.JobState) error {
	st := s.Find(e.step)
	if st == nil || st.Status != stroem.StepSuspended {
		return nil // ended already (cancelled, or a duplicate report)
	}
	if ps := p.step(e.step); ps == nil || ps.action.Type != workspace.ActionTask {
		return nil
	}
	st = s.Mut(e.step)
	switch e.status {
	case stroem.JobCompleted:
		st.Status, st.Output, st.ErrorMessage = stroem.StepCompleted, p.masker.MaskValue(outputOf(e.output)), ""
	default:
		st.Status = stroem.StepFailed
		st.Output = p.masker.MaskValue(outputOf(e.output))
		msg := e.msg
		if msg == "" {
			msg = fmt.Sprintf("child job %s %s", e.childID, e.status)
		}
		st.ErrorMessage = p.masker.Mask(msg)
	}
	return nil
}

// childEnsure creates the child job of a suspended task step, or reads it
// back when it exists, off the actor's goroutine.
func (o *Orchestrator) childEnsure(p *plan, s *persistence.JobState, step string) {
	parent := parentLinkOf(s)
	job := s.Job
	var input map[string]any
	if st := s.Find(step); st != nil {
		input = st.Input
	}
	ps := p.step(step)
	go func() {
		for attempt := 0; ; attempt++ {
			done, err := o.childEnsureOnce(job, parent, ps, step, input)
			if err == nil {
				if done != nil {
					o.root.Send(o.orch, &routed{jobID: job.ID, msg: &jobEvent{ev: *done}})
				}
				return
			}
			if !isUnavailable(err) || attempt > 600 {
				// The step fails with the reason rather than wait forever.
				o.log.Warn("child job not created", "job_id", job.ID, "step", step, "err", err)
				fail := evChildDone{step: step, childID: ChildJobID(job.ID, step), status: stroem.JobFailed,
					msg: fmt.Sprintf("child job not created: %v", err)}
				o.root.Send(o.orch, &routed{jobID: job.ID, msg: &jobEvent{ev: fail}})
				return
			}
			select {
			case <-o.stopped:
				return
			case <-time.After(time.Second):
			}
		}
	}()
}

// parentLinkOf is the link a child of s carries: s's depth plus one.
func parentLinkOf(s *persistence.JobState) parentLink {
	l, _ := parentOf(s)
	return parentLink{JobID: s.Job.ID, Depth: l.Depth + 1}
}

// childEnsureOnce returns the event that ends the step now (the child could
// not be created, or had ended already), or nil while the child runs.
func (o *Orchestrator) childEnsureOnce(job stroem.Job, parent parentLink, ps *planStep, step string, input map[string]any) (*evChildDone, error) {
	ctx, cancel := context.WithTimeout(context.Background(), o.cfg.RequestTimeout)
	defer cancel()
	id := ChildJobID(job.ID, step)
	fail := func(format string, args ...any) (*evChildDone, error) {
		return &evChildDone{step: step, childID: id, status: stroem.JobFailed, msg: fmt.Sprintf(format, args...)}, nil
	}
	// Read first: after a restart the child usually exists.
	if cs, err := o.store.JobState(ctx, id); err == nil {
		return childOutcome(step, cs), nil
	} else if !errors.Is(err, stroem.ErrNotFound) {
		return nil, err
	}
	if parent.Depth > workspace.MaxTaskDepth {
		return fail("sub-task depth limit reached: a job nested %d levels deep may not start another (at most %d; do tasks call each other in a loop?)", parent.Depth-1, workspace.MaxTaskDepth)
	}
	ws := o.ws.Get(job.Workspace)
	if ws == nil {
		return fail("workspace %q not found", job.Workspace)
	}
	task := ws.Tasks[ps.action.Task]
	if task == nil {
		return fail("task %q of action %s not found in workspace %q", ps.action.Task, ps.action.Name, job.Workspace)
	}
	in, problems := workspace.CheckInput(task.Input, input)
	if len(problems) > 0 {
		return fail("invalid input for task %q: %s", task.Name, strings.Join(problems, "; "))
	}
	err := o.createJob(ctx, ws, task, input, in, jobSpec{
		id: id, source: stroem.SourceTask, sourceID: stroem.TaskSourceID(job.ID, step), createdBy: job.CreatedBy,
		context: map[string]any{"parent": map[string]any{"job_id": job.ID, "step_name": step, "depth": parent.Depth}},
	})
	switch {
	case err == nil:
		return nil, nil
	case errors.Is(err, stroem.ErrConflict):
		// Created meanwhile (another server, or a retry): read it.
		cs, err := o.store.JobState(ctx, id)
		if err != nil {
			return nil, err
		}
		return childOutcome(step, cs), nil
	case isUnavailable(err):
		return nil, err
	default:
		return fail("child job of task %q not created: %v", task.Name, err)
	}
}

// childOutcome is the event a child's state means for its parent step:
// nil while it runs.
func childOutcome(step string, cs *persistence.JobState) *evChildDone {
	if !cs.Job.Status.Terminal() {
		return nil
	}
	e := &evChildDone{step: step, childID: cs.Job.ID, status: cs.Job.Status, output: cs.Job.Output}
	if cs.Job.Status != stroem.JobCompleted {
		var errs []string
		for _, st := range cs.All() {
			if st.Status == stroem.StepFailed && st.ErrorMessage != "" {
				errs = append(errs, st.Name+": "+st.ErrorMessage)
			}
		}
		e.msg = fmt.Sprintf("child job %s %s", cs.Job.ID, cs.Job.Status)
		if len(errs) > 0 {
			e.msg += " (" + strings.Join(errs, "; ") + ")"
		}
	}
	return e
}

// childEnded tells the parent of a child job that just ended.
func (o *Orchestrator) childEnded(s *persistence.JobState) {
	l, ok := parentOf(s)
	if !ok || s.Job.SourceType != stroem.SourceTask {
		return
	}
	if e := childOutcome(l.Step, s); e != nil {
		o.root.Send(o.orch, &routed{jobID: l.JobID, msg: &jobEvent{ev: *e}})
	}
}

// childCancel cancels the child job of a cancelled task step, if it runs.
func (o *Orchestrator) childCancel(parentJobID, step string) {
	id := ChildJobID(parentJobID, step)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), o.cfg.RequestTimeout)
		defer cancel()
		cs, err := o.store.JobState(ctx, id)
		if err != nil || cs.Job.Status.Terminal() {
			return
		}
		if err := o.JobCancel(ctx, id); err != nil && !errors.Is(err, stroem.ErrConflict) {
			o.log.Warn("cancel child job failed", "job_id", parentJobID, "step", step, "child_job_id", id, "err", err)
		}
	}()
}

// orphanCheck cancels a child job whose parent has ended (the parent was
// cancelled while this server was down, before it could cancel the child).
func (o *Orchestrator) orphanCheck(s *persistence.JobState) {
	l, ok := parentOf(s)
	if !ok || s.Job.Status.Terminal() {
		return
	}
	id := s.Job.ID
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), o.cfg.RequestTimeout)
		defer cancel()
		ps, err := o.store.JobState(ctx, l.JobID)
		if err != nil {
			return
		}
		if st := ps.Find(l.Step); ps.Job.Status.Terminal() || (st != nil && st.Status == stroem.StepCancelled) {
			if err := o.JobCancel(ctx, id); err != nil && !errors.Is(err, stroem.ErrConflict) {
				o.log.Warn("cancel orphaned child job failed", "job_id", id, "err", err)
			}
		}
	}()
}

// jobSpec says how createJob makes a job that no request asked for (a
// child or a hook job): its derived id, source and context.
type jobSpec struct {
	id        string
	source    stroem.SourceType
	sourceID  string
	createdBy string
	context   map[string]any
	// body/plan, when set, are a snapshot built by the caller (hook jobs
	// run a task made for them).
	plan *plan
	body []byte
	// fail, when set, creates the job failed: its steps fail with this
	// message without running (a hook whose input does not render, so its
	// failure shows like any hook job's).
	fail string
}

// createJob inserts a job of task with a checked input, as JobCreate does,
// under the spec's id. A job of that id existing already is ErrConflict.
func (o *Orchestrator) createJob(ctx context.Context, ws *workspace.Workspace, task *workspace.Task, given, input map[string]any, spec jobSpec) error {
	p, body := spec.plan, spec.body
	if p == nil {
		tp, err := o.planForTask(ws, task)
		if err != nil {
			return stroem.Errorf(stroem.CodeInvalid, "task %q cannot run: %v", task.Name, err)
		}
		p, body = tp.plan, tp.body
	}
	if err := renderDefaults(p, task.Input, given, input); err != nil {
		return err
	}
	s := &persistence.JobState{
		Job: stroem.Job{
			ID: spec.id, Workspace: ws.Name, TaskName: task.Name, Mode: task.Mode,
			Input: input, Status: stroem.JobPending, SourceType: spec.source, SourceID: spec.sourceID, CreatedBy: spec.createdBy,
			Revision: ws.Revision,
		},
		SnapshotID: p.id,
		Now:        time.Now().UTC(),
		Context:    spec.context,
	}
	if err := o.addJobState(ctx, p, s); err != nil { // state_tmpl.go
		return err
	}
	for i, name := range p.dag.Order() {
		ps := p.step(name)
		s.Append(&persistence.StepState{
			Name: name, Position: i, ActionName: ps.action.Name, ActionType: ps.action.Type, Image: ps.action.Image,
			Tags: ps.tags(), DependsOn: ps.flow.DependsOn, ContinueOnFailure: ps.flow.ContinueOnFailure, MaxAttempts: ps.maxAttempts(),
			Status: stroem.StepPending,
		})
	}
	advance(p, s)
	if spec.fail != "" {
		for i, r := range s.All() {
			if !r.Status.Terminal() {
				st := s.MutAt(i)
				st.Status, st.ErrorMessage, st.StartedAt, st.ReadyAt = stroem.StepFailed, p.masker.Mask(spec.fail), nil, nil
			}
		}
		advance(p, s)
	}
	nj := persistence.NewJob{Job: s.Job, SnapshotID: p.id, SnapshotBody: body, Context: s.Context}
	for _, st := range s.All() {
		nj.Steps = append(nj.Steps, persistence.NewStep{
			Name: st.Name, ActionName: st.ActionName, ActionType: st.ActionType, Image: st.Image,
			Tags: st.Tags, DependsOn: st.DependsOn, ContinueOnFailure: st.ContinueOnFailure, MaxAttempts: st.MaxAttempts,
			Status: st.Status, Input: st.Input, ErrorMessage: st.ErrorMessage, Output: st.Output,
		})
	}
	if err := o.store.JobInsert(ctx, nj); err != nil {
		return fmt.Errorf("insert job: %w", err)
	}
	if !s.Job.Status.Terminal() {
		o.jobPlans.Store(s.Job.ID, p)
		o.root.Send(o.orch, &jobCreated{plan: p, state: s})
		o.Wake()
	} else {
		o.jobEnded(p, s, false)
	}
	return nil
}

// outputOf is an output as a step keeps it: nil (no output) for none,
// never a nil map in an interface (which is not nil).
func outputOf(v any) any {
	if m, ok := v.(map[string]any); ok && m == nil {
		return nil
	}
	return v
}
