package actors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
	"github.com/stroem/stroem/workspace"
)

// Hooks: when a job ends (on_success, on_error, on_cancel) or a gate
// suspends it (on_suspended), each hook of the event becomes a job of its
// own — `_hook:<action>` with source type `hook` — or, for a `type: task`
// hook action, a job of that task. A hook never changes the job it reports
// on: it is created after that job's outcome is stored, and its own failure
// shows as its own job (listed in the reported job's `hooks`).
//
// Each hook job's id is derived from the job, the event, the hook's place
// in its list (and, on_suspended, the step), so firing the same hook twice
// — a server restarted in between — creates it once. A server that dies
// between storing a job's end and creating its hook jobs does not fire them
// later (hooks are best-effort, as upstream's).

// HookJobID is the id of the job of one hook.
func HookJobID(jobID, event string, index int, step string) string {
	return uuid.NewSHA1(childNamespace, fmt.Appendf(nil, "hook\x00%s\x00%s\x00%d\x00%s", jobID, event, index, step)).String()
}

// hookEvent is the event a job's final status fires.
func hookEvent(st stroem.JobStatus) string {
	switch st {
	case stroem.JobCompleted:
		return workspace.HookOnSuccess
	case stroem.JobCancelled:
		return workspace.HookOnCancel
	default:
		return workspace.HookOnError
	}
}

// jobEnded runs what follows a job's terminal status once it is stored:
// its parent hears (child jobs), its hooks fire, a failed hook job is
// logged against the job it reported on. A failed job that a task-level
// retry job follows (retried) fires no hooks: as upstream, on_error fires
// once, when the last job of the chain fails.
func (o *Orchestrator) jobEnded(p *plan, s *persistence.JobState, retried bool) {
	o.childEnded(s)
	if s.Job.SourceType == stroem.SourceHook {
		if s.Job.Status != stroem.JobCompleted {
			o.log.Warn("hook job did not complete", "job_id", s.Job.SourceID, "hook_job_id", s.Job.ID, "status", s.Job.Status)
		}
		return // hook jobs fire no hooks
	}
	if retried {
		return
	}
	ev := hookEvent(s.Job.Status)
	o.fireHooks(p, s, ev, "", hookContext(s, ev))
}

// fireSuspendedHooks fires on_suspended for a gate that began to wait.
func (o *Orchestrator) fireSuspendedHooks(p *plan, s *persistence.JobState, step string) {
	if s.Job.SourceType == stroem.SourceHook {
		return
	}
	hc := hookContext(s, workspace.HookOnSuspended)
	hc["status"], hc["step_name"] = "suspended", step
	o.fireHooks(p, s, workspace.HookOnSuspended, step, hc)
}

// hookContext is the `hook` variable of a hook's input templates.
func hookContext(s *persistence.JobState, event string) map[string]any {
	j := s.Job
	hc := map[string]any{
		"workspace": j.Workspace, "task_name": j.TaskName, "job_id": j.ID,
		"status": string(j.Status), "is_success": j.Status == stroem.JobCompleted,
		"source_type": string(j.SourceType), "source_id": nil,
		"started_at": nil, "completed_at": nil, "duration_secs": nil, "error_message": nil,
		"event": event,
	}
	if j.SourceID != "" {
		hc["source_id"] = j.SourceID
	}
	if j.StartedAt != nil {
		hc["started_at"] = j.StartedAt.UTC().Format(time.RFC3339)
	}
	if j.CompletedAt != nil {
		hc["completed_at"] = j.CompletedAt.UTC().Format(time.RFC3339)
		if j.StartedAt != nil {
			hc["duration_secs"] = j.CompletedAt.Sub(*j.StartedAt).Seconds()
		}
	}
	failed := []any{}
	var errs []string
	for _, st := range s.All() {
		if st.Status != stroem.StepFailed {
			continue
		}
		var msg any
		if st.ErrorMessage != "" {
			msg = st.ErrorMessage
			errs = append(errs, st.Name+": "+st.ErrorMessage)
		}
		failed = append(failed, map[string]any{
			"step_name": st.Name, "action_name": st.ActionName, "error_message": msg, "continue_on_failure": st.ContinueOnFailure,
		})
	}
	hc["failed_steps"] = failed
	if len(errs) > 0 {
		hc["error_message"] = strings.Join(errs, "; ")
	}
	return hc
}

// hooksFor returns the hooks of an event for a job: the task's own (as
// frozen in its snapshot), else the workspace's — for top-level jobs only.
func hooksFor(p *plan, ws *workspace.Workspace, s *persistence.JobState, event string) []*workspace.HookSpec {
	if p != nil && p.snap.Task != nil {
		if hs := p.snap.Task.Hooks.For(event); len(hs) > 0 {
			return hs
		}
	}
	if ws == nil || s.Job.SourceType == stroem.SourceTask || s.Job.SourceType == stroem.SourceHook {
		return nil
	}
	return ws.Hooks.For(event)
}

// fireHooks creates the hook jobs of an event, off the caller's goroutine.
func (o *Orchestrator) fireHooks(p *plan, s *persistence.JobState, event, step string, hc map[string]any) {
	ws := o.ws.Get(s.Job.Workspace)
	hooks := hooksFor(p, ws, s, event)
	if len(hooks) == 0 || ws == nil {
		return
	}
	job := s.Job
	var secrets map[string]any
	if p != nil {
		secrets = p.secrets
	}
	go func() {
		for i, h := range hooks {
			id := HookJobID(job.ID, event, i, step)
			for attempt := 0; ; attempt++ {
				err := o.fireHook(ws, job, h, id, event, hc, secrets)
				if err == nil || errors.Is(err, stroem.ErrConflict) {
					break
				}
				if !isUnavailable(err) || attempt > 60 {
					o.log.Warn("hook not fired", "job_id", job.ID, "event", event, "action", h.Action, "err", err)
					break
				}
				select {
				case <-o.stopped:
					return
				case <-time.After(time.Second):
				}
			}
		}
	}()
}

// fireHook renders one hook's input and creates its job.
func (o *Orchestrator) fireHook(ws *workspace.Workspace, job stroem.Job, h *workspace.HookSpec, id, event string, hc, secrets map[string]any) error {
	ctx, cancel := context.WithTimeout(context.Background(), o.cfg.RequestTimeout)
	defer cancel()
	a := ws.Actions[h.Action]
	if a == nil {
		return fmt.Errorf("hook action %q not found in workspace %q", h.Action, ws.Name)
	}
	spec := jobSpec{
		id: id, source: stroem.SourceHook, sourceID: job.ID, createdBy: job.CreatedBy,
		context: map[string]any{"hook": map[string]any{"event": event, "job_id": job.ID, "action": h.Action}},
	}
	hc, err := o.withArtifacts(ctx, job.ID, hc)
	if err != nil {
		return err
	}
	input, err := renderHookInput(h, hc, secrets)
	if err != nil {
		// Still a hook job, failed: its failure shows where hooks show.
		spec.fail, input = err.Error(), map[string]any{}
	}
	if a.Type == workspace.ActionTask && spec.fail == "" {
		task := ws.Tasks[a.Task]
		if task == nil {
			return fmt.Errorf("hook action %s: task %q not found", a.Name, a.Task)
		}
		in, problems := workspace.CheckInput(task.Input, input)
		if len(problems) == 0 {
			return o.createJob(ctx, ws, task, input, in, spec)
		}
		spec.fail = fmt.Sprintf("invalid input for task %q: %s", task.Name, strings.Join(problems, "; "))
		input = map[string]any{}
	}
	task, err := hookTask(a, input)
	if err != nil {
		return err
	}
	sid, body, err := newSnapshot(ws, task)
	if err != nil {
		return err
	}
	p := o.plans.get(sid)
	if p == nil {
		if p, err = compilePlan(sid, body); err != nil {
			return err
		}
		o.secretsSeen(p)
		o.plans.put(p)
	}
	spec.plan, spec.body = p, body
	return o.createJob(ctx, ws, task, input, input, spec)
}

// artifactLister is the store's artifact list, which the hooks' context
// reads (a store without it gives hooks an empty list).
type artifactLister interface {
	ArtifactList(ctx context.Context, jobID string) ([]persistence.Artifact, error)
}

// withArtifacts is hc (not changed) with hook.artifacts: the job's
// artifacts as upstream lists them, url the path of their download route.
// An error is the store's (the hook is fired later, or not at all, as for
// any store error when it is created), never an empty list in its place.
func (o *Orchestrator) withArtifacts(ctx context.Context, jobID string, hc map[string]any) (map[string]any, error) {
	list := []any{}
	if al, ok := o.store.(artifactLister); ok {
		arts, err := al.ArtifactList(ctx, jobID)
		if err != nil {
			return nil, fmt.Errorf("list the job's artifacts for hook.artifacts: %w", err)
		}
		for _, a := range arts {
			list = append(list, map[string]any{
				"name": a.Name, "content_type": a.ContentType, "size_bytes": a.SizeBytes, "step_name": a.StepName,
				"created_at": a.CreatedAt.UTC().Format(time.RFC3339), "url": persistence.ArtifactPath(jobID, a.Name),
			})
		}
	}
	out := maps.Clone(hc)
	out["artifacts"] = list
	return out, nil
}

// renderHookInput renders a hook's input templates over hook.* and
// secret.*.
func renderHookInput(h *workspace.HookSpec, hc, secrets map[string]any) (map[string]any, error) {
	input := map[string]any{}
	if len(h.Input) == 0 {
		return input, nil
	}
	t, err := workspace.CompileValue(h.Input)
	if err != nil {
		return nil, fmt.Errorf("hook input: %w", err)
	}
	v, err := t.Render(map[string]any{"hook": hc, "secret": secrets})
	if err != nil {
		return nil, fmt.Errorf("hook input does not render: %w", err)
	}
	m, _ := v.(map[string]any)
	for k, x := range m {
		if x != nil { // a null (hook.error_message of a success) is left out
			input[k] = x
		}
	}
	return input, nil
}

var identRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// hookTask is the one-step task a hook job runs: its step passes the
// rendered hook input (the job's input) to the action, value by value, so
// nothing rendered is rendered twice.
func hookTask(a *workspace.Action, input map[string]any) (*workspace.Task, error) {
	in := map[string]any{}
	schema := workspace.Schema{}
	for k := range input {
		if !identRe.MatchString(k) {
			b, _ := json.Marshal(k)
			in[k] = "{{ input[" + string(b) + "] }}"
		} else {
			in[k] = "{{ input." + k + " }}"
		}
		schema = append(schema, &workspace.Field{Name: k})
	}
	step := &workspace.FlowStep{Name: a.Name, Action: a.Name, Input: in}
	return &workspace.Task{
		Name: "_hook:" + a.Name, Mode: workspace.ModeDistributed, Input: schema,
		Flow: map[string]*workspace.FlowStep{a.Name: step}, Order: []string{a.Name},
	}, nil
}
