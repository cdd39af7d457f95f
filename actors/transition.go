package actors

import (
	"container/heap"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"time"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
	"github.com/stroem/stroem/workspace"
)

// This file is the job state machine: pure functions that change a
// persistence.JobState in place, run inside Store.JobUpdate's transaction.
// They never do I/O and never read the clock except through JobState.Now.

// event is one change requested of a job. apply fences and records it; the
// DAG is advanced once after all events of a batch are applied.
type event interface {
	apply(p *plan, s *persistence.JobState) error
}

// errDuplicate marks a report that was already applied: the caller gets
// success and nothing changes.
var errDuplicate = errors.New("duplicate report")

// evComplete is a worker's report that an attempt ended.
type evComplete struct {
	step string
	c    stroem.Completion
}

func (e evComplete) apply(p *plan, s *persistence.JobState) error {
	st, err := stepOf(s, e.step)
	if err != nil {
		return err
	}
	if err := fence(s, st, e.c.WorkerID, e.c.Attempt); err != nil {
		if errors.Is(err, errDuplicate) && st.ExitCode != nil && *st.ExitCode != e.c.ExitCode {
			// Not the same report again: another outcome for an ended attempt.
			return stroem.Errorf(stroem.CodeConflict, "step %q of job %s: attempt %d already ended with exit code %d; a report of exit code %d is refused",
				st.Name, s.Job.ID, e.c.Attempt, *st.ExitCode, e.c.ExitCode)
		}
		return err
	}
	code := e.c.ExitCode
	st.ExitCode = &code
	st.LeaseExpiresAt = nil
	// Only the last attempt's output counts; no OUTPUT line is null.
	st.Output = nil
	if out := outputOf(e.c.Output); out != nil {
		st.Output = p.masker.MaskValue(out)
	}
	switch {
	case e.c.Succeeded():
		st.Status = stroem.StepCompleted
		st.AttemptStatus = stroem.AttemptCompleted
		st.ErrorMessage = ""
	case st.CancelRequested || s.CancelRequested:
		st.Status = stroem.StepCancelled
		st.AttemptStatus = stroem.AttemptCancelled
		st.ErrorMessage = "cancelled"
	default:
		msg := e.c.Error
		if msg == "" {
			msg = fmt.Sprintf("exit code %d", e.c.ExitCode)
		}
		failAttempt(p, s, st, stroem.AttemptFailed, msg, true)
	}
	return nil
}

// evLeaseExpired says a StepActor saw the attempt's lease run out.
type evLeaseExpired struct {
	step    string
	attempt int
}

func (e evLeaseExpired) apply(p *plan, s *persistence.JobState) error {
	st := s.Mut(e.step)
	if st == nil || st.Status != stroem.StepRunning || st.Attempt != e.attempt {
		return nil // already ended or re-claimed: nothing to do
	}
	if st.LeaseExpiresAt != nil && st.LeaseExpiresAt.After(s.Now) {
		return nil // renewed meanwhile
	}
	st.LeaseExpiresAt = nil
	if st.CancelRequested || s.CancelRequested {
		st.Status = stroem.StepCancelled
		st.AttemptStatus = stroem.AttemptLost
		st.ErrorMessage = "cancelled (worker lost)"
		return nil
	}
	failAttempt(p, s, st, stroem.AttemptLost, "worker lost (lease expired)", true)
	return nil
}

// evStepFailed ends a running attempt on the server's initiative: its command
// did not render at claim time (no retry: it would fail the same way), or the
// worker never reported within the timeout backstop (retried per policy).
type evStepFailed struct {
	step    string
	attempt int
	msg     string
	retry   bool
	// grace, when set, makes this the timeout backstop: it applies only once
	// the running attempt's start plus the step's timeout plus grace has
	// passed on the database clock. A claim given back and made again runs
	// under the same attempt number; a timer armed for the first claim must
	// not fail the second.
	grace time.Duration
}

func (e evStepFailed) apply(p *plan, s *persistence.JobState) error {
	st := s.Mut(e.step)
	if st == nil || st.Status != stroem.StepRunning || st.Attempt != e.attempt {
		return nil
	}
	if ps := p.step(st.Name); e.grace > 0 && ps != nil && st.StartedAt != nil &&
		st.StartedAt.Add(ps.timeout+e.grace).After(s.Now) {
		return nil // not yet: the JobActor arms the backstop again
	}
	st.LeaseExpiresAt = nil
	failAttempt(p, s, st, stroem.AttemptFailed, e.msg, e.retry)
	return nil
}

// evCancel is a user's cancel: unstarted steps are cancelled at once, running
// ones are flagged so their worker stops them (heartbeat or log-push answer).
type evCancel struct{}

func (evCancel) apply(_ *plan, s *persistence.JobState) error {
	if s.Job.Status.Terminal() {
		return stroem.Errorf(stroem.CodeConflict, "job %s already %s", s.Job.ID, s.Job.Status)
	}
	s.CancelRequested = true
	for i, st := range s.All() {
		switch st.Status {
		case stroem.StepPending, stroem.StepReady, stroem.StepSuspended:
			m := s.MutAt(i)
			m.Status = stroem.StepCancelled
			m.ErrorMessage = "cancelled"
			m.ReadyAt = nil
		case stroem.StepRunning:
			s.MutAt(i).CancelRequested = true
		}
	}
	return nil
}

// evReconcile changes nothing by itself; advancing the DAG afterwards repairs
// a job whose state is behind (for example after recovery).
type evReconcile struct{}

func (evReconcile) apply(*plan, *persistence.JobState) error { return nil }

// stepOf returns the named step to be changed (JobState.Mut).
func stepOf(s *persistence.JobState, name string) (*persistence.StepState, error) {
	st := s.Mut(name)
	if st == nil {
		return nil, stroem.Errorf(stroem.CodeNotFound, "job %s has no step %q", s.Job.ID, name)
	}
	return st, nil
}

// fence admits a report only from the worker holding the step's current,
// running attempt. The same report again is a duplicate; anything else is a
// conflict and changes nothing.
func fence(s *persistence.JobState, st *persistence.StepState, workerID string, attempt int) error {
	if st.Attempt != attempt || st.WorkerID != workerID || st.Attempt == 0 {
		return stroem.Errorf(stroem.CodeConflict,
			"step %q of job %s: attempt %d by worker %s is not current (current attempt %d)",
			st.Name, s.Job.ID, attempt, workerID, st.Attempt)
	}
	switch st.AttemptStatus {
	case stroem.AttemptRunning:
		return nil
	case stroem.AttemptLost:
		return stroem.Errorf(stroem.CodeConflict,
			"step %q of job %s: attempt %d was declared lost (lease expired); its report is refused",
			st.Name, s.Job.ID, attempt)
	default:
		return errDuplicate
	}
}

// failAttempt ends the current attempt with status as and either schedules
// another attempt (retry policy allows, job not cancelled) or fails the step.
func failAttempt(p *plan, s *persistence.JobState, st *persistence.StepState, as stroem.AttemptStatus, msg string, retry bool) {
	st.AttemptStatus = as
	st.ErrorMessage = p.masker.Mask(msg) // one rule at every exit: reports are masked before, this is the backstop
	if retry && st.Attempt < st.MaxAttempts && !s.CancelRequested && !st.CancelRequested {
		var policy *workspace.RetryPolicy
		if ps := p.step(st.Name); ps != nil {
			policy = ps.retry
		}
		at := s.Now.Add(retryDelay(policy, st.Attempt, rand.Float64))
		st.Status = stroem.StepReady
		st.ReadyAt = &at
		return
	}
	st.Status = stroem.StepFailed
}

// retryDelay is the wait before attempt+1, after attempt failed: backoff for
// fixed, backoff·2^(attempt-1) for exponential, capped by max_backoff, then
// spread by ±jitter. A stateless formula (the attempt number is stored), so
// no backoff library's stateful timer fits better.
func retryDelay(r *workspace.RetryPolicy, attempt int, rnd func() float64) time.Duration {
	if r == nil || r.Backoff <= 0 {
		return 0
	}
	d := float64(r.Backoff)
	if r.BackoffStrategy == workspace.BackoffExponential && attempt > 1 {
		d *= math.Pow(2, float64(attempt-1))
	}
	if r.MaxBackoff > 0 && d > float64(r.MaxBackoff) {
		d = float64(r.MaxBackoff)
	}
	if r.Jitter > 0 {
		d *= 1 + r.Jitter*(2*rnd()-1)
	}
	if d > float64(24*time.Hour) {
		d = float64(24 * time.Hour)
	}
	return time.Duration(d)
}

// advance applies the DAG rules to every step of the job until nothing
// changes: at creation, and wherever the state may be behind the rules (a
// reconcile). See advanceFrom.
func advance(p *plan, s *persistence.JobState) { advanceFrom(p, s, nil, true) }

// advanceFrom applies the DAG rules until nothing changes: pending steps
// whose dependencies are done become ready (their input rendered now),
// dependents of failures are skipped, loops move on, and the job ends when
// every step is terminal.
//
// With all set, every pass looks at every step. With all unset it looks
// only at what the transition changed (s.Changed):
// the dependents of the steps whose status may have moved and the loops
// whose instances did. That is enough when the state as read was already
// advanced — every transition advances before it commits, and a step ends
// or becomes runnable only in a transition; a claim, a start or a give-back
// (outside the JobActor's transitions) only moves a step between ready and
// running, which never decides another step. A JobActor advances all at
// its first transition after loading the job (the reconcile), so a state
// left behind is repaired from the store alone. g remembers finished steps
// across transitions (progress); nil walks the state instead.
func advanceFrom(p *plan, s *persistence.JobState, g *progress, all bool) {
	// looked maps the changed steps already looked at to their status
	// then: a step changed again later (a loop that ended after its
	// expansion, a ready step its condition skipped) is looked at again.
	looked := map[int]stroem.StepStatus{}
	for {
		// Approval and task steps wait on the server (approval.go): each
		// pass suspends the ones made ready, so that a gate failed there
		// (its message) is seen by the pass, which skips its dependents.
		suspendServerSteps(p, s)
		var fresh []int
		for _, i := range s.Changed() {
			if st, ok := looked[i]; !ok || st != s.StatusAt(i) {
				looked[i] = s.StatusAt(i)
				fresh = append(fresh, i)
			}
		}
		var loopsMoved bool
		var ready, skipped []string
		if all {
			loopsMoved = advanceLoops(p, s, g, p.loops)
			ready, skipped = p.dag.Advance(dagStatuses(p, s), p.cof)
		} else {
			loops, cands := affected(p, s, fresh)
			loopsMoved = advanceLoops(p, s, g, loops)
			ready, skipped = decide(p, s, g, cands)
		}
		if len(ready) == 0 && len(skipped) == 0 && !loopsMoved {
			break
		}
		for _, name := range skipped {
			st := s.Mut(name)
			st.Status = stroem.StepSkipped
			st.ErrorMessage = "skipped: " + skipReason(p, s, name)
		}
		for _, name := range ready {
			st := s.Mut(name)
			if s.CancelRequested {
				st.Status = stroem.StepCancelled
				st.ErrorMessage = "cancelled"
				continue
			}
			if startFlow(p, s, st) {
				continue // skipped by its condition, failed, or a loop expanded
			}
			in, err := renderStepInput(p, s, name)
			if err != nil {
				st.Status = stroem.StepFailed
				st.ErrorMessage = p.masker.MaskError(err)
				continue
			}
			now := s.Now
			st.Input = in
			st.Status = stroem.StepReady
			st.ReadyAt = &now
		}
	}
	if s.Job.Status.Terminal() {
		return
	}
	if s.Job.Status == stroem.JobPending && anyStarted(s) {
		// A claim that raced a transition of this job could not mark it
		// running (it skips a locked job row); do it now.
		s.Job.Status = stroem.JobRunning
	}
	if g.openFrom(s, 0) < s.Len() {
		return // a step is unfinished: the job goes on
	}
	done, status := p.dag.Outcome(dagStatuses(p, s), p.cof)
	if !done {
		return
	}
	if s.CancelRequested {
		status = stroem.JobCancelled
	}
	s.Job.Status = status
	s.Job.Output = jobOutput(p, s)
}

// affected returns, for the steps at the positions changed, the loops to
// move on (a changed instance's loop) and the task steps whose
// dependencies may have moved (the dependents of a changed step, or of a
// changed instance's loop).
func affected(p *plan, s *persistence.JobState, changed []int) (loops, cands []string) {
	seenLoop, seen := map[string]bool{}, map[string]bool{}
	for _, i := range changed {
		name := s.At(i).Name
		if p.steps[name] == nil {
			loop, _, ok := stroem.ParseLoopInstance(name)
			if !ok || p.steps[loop] == nil {
				continue
			}
			if !seenLoop[loop] {
				seenLoop[loop] = true
				loops = append(loops, loop)
			}
			name = loop
		}
		for _, d := range p.dependents[name] {
			if !seen[d] {
				seen[d] = true
				cands = append(cands, d)
			}
		}
	}
	return loops, cands
}

// decide applies the DAG rule (workspace.DAG.Decide) to the pending steps
// among cands, in the DAG's order, as DAG.Advance does to all of them: a
// step whose dependencies are done is ready; one that can never run is
// skipped, and so are its dependents, transitively, in the same call.
func decide(p *plan, s *persistence.JobState, g *progress, cands []string) (ready, skipped []string) {
	if len(cands) == 0 {
		return nil, nil
	}
	q := &topoQueue{topo: p.topo, in: make(map[string]bool, len(cands))}
	for _, n := range cands {
		q.push(n)
	}
	skippedNow := map[string]bool{}
	status := func(n string) stroem.StepStatus {
		if skippedNow[n] {
			return stroem.StepSkipped
		}
		return dagStatus(p, s, g, n)
	}
	for q.Len() > 0 {
		n := heap.Pop(q).(string)
		if status(n) != stroem.StepPending {
			continue
		}
		switch run, skip := p.dag.Decide(n, status, p.cof); {
		case skip:
			skippedNow[n] = true
			skipped = append(skipped, n)
			for _, d := range p.dependents[n] {
				q.push(d)
			}
		case run:
			ready = append(ready, n)
		}
	}
	return ready, skipped
}

// topoQueue yields step names in the DAG's order, each once.
type topoQueue struct {
	topo  map[string]int
	in    map[string]bool
	names []string
}

func (q *topoQueue) push(n string) {
	if _, ok := q.topo[n]; ok && !q.in[n] {
		q.in[n] = true
		heap.Push(q, n)
	}
}

func (q *topoQueue) Len() int           { return len(q.names) }
func (q *topoQueue) Less(i, j int) bool { return q.topo[q.names[i]] < q.topo[q.names[j]] }
func (q *topoQueue) Swap(i, j int)      { q.names[i], q.names[j] = q.names[j], q.names[i] }
func (q *topoQueue) Push(x any)         { q.names = append(q.names, x.(string)) }
func (q *topoQueue) Pop() any {
	n := q.names[len(q.names)-1]
	q.names = q.names[:len(q.names)-1]
	return n
}

// anyStarted reports whether a step of s was ever claimed.
func anyStarted(s *persistence.JobState) bool {
	for i := range s.Len() {
		if s.At(i).Attempt > 0 {
			return true
		}
	}
	return false
}

// skipReason names the dependency that did not complete.
func skipReason(p *plan, s *persistence.JobState, name string) string {
	ps := p.step(name)
	if ps == nil {
		return "a dependency did not complete"
	}
	for _, d := range ps.flow.DependsOn {
		if st := s.Find(d); st != nil && st.Status != stroem.StepCompleted && !(st.Status == stroem.StepFailed && p.cof[d]) && !satisfiedSkip(st) {
			return fmt.Sprintf("dependency %q %s", d, st.Status)
		}
	}
	return "a dependency did not complete"
}

// jobOutput is the output of the job's leaf steps, by step name.
func jobOutput(p *plan, s *persistence.JobState) map[string]any {
	out := map[string]any{}
	for _, name := range p.dag.Leaves() {
		if st := s.Find(name); st != nil && st.Output != nil {
			out[name] = st.Output
		} else if st != nil && isExpanded(p, st) {
			out[name] = loopOutput(s, st)
		}
	}
	return out
}

// templateContext is what a step's templates see: the job's input, the
// outputs of the steps it (transitively) depends on that they name
// (planStep.reads), secrets, job identity.
func templateContext(p *plan, s *persistence.JobState, name string) map[string]any {
	outputs := map[string]any{}
	if ps := p.step(name); ps != nil {
		for _, a := range ps.reads {
			st := s.Find(a)
			if st == nil || !(st.Status == stroem.StepCompleted || st.Status == stroem.StepFailed) {
				continue
			}
			o := st.Output
			if o == nil {
				o = map[string]any{}
			}
			outputs[a] = o
		}
	}
	return loopContext(p, s, name, withJobState(p, s, name, workspace.TemplateContext{
		Input:   s.Job.Input,
		Steps:   outputs,
		Secrets: p.secrets,
		Job:     workspace.JobInfo{ID: s.Job.ID, Task: s.Job.TaskName, Workspace: s.Job.Workspace},
		Webhook: webhookContext(s),
	}.Map())) // withJobState: state_tmpl.go
}

// webhookContext is the `webhook` variable of a job a webhook started.
func webhookContext(s *persistence.JobState) map[string]any {
	m, _ := s.Context["webhook"].(map[string]any)
	return m
}

// renderStepInput renders the step's input and checks it against the
// action's input schema (defaults applied).
func renderStepInput(p *plan, s *persistence.JobState, name string) (map[string]any, error) {
	ps := p.step(name)
	if ps == nil {
		return nil, fmt.Errorf("step %q is not in the task definition", name)
	}
	in := map[string]any{}
	if ps.input != nil {
		v, err := ps.input.Render(templateContext(p, s, name))
		if err != nil {
			return nil, p.renderError("input", err)
		}
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("input: rendered to %T, want a map", v)
		}
		in = m
	}
	if len(ps.action.Input) == 0 {
		// An action without an input schema takes the step's input as
		// given, as upstream; a gate's or a sub-task's input is checked
		// against its task's.
		return in, nil
	}
	// A connection's name given to a connection-typed input (or as its
	// default) becomes the connection's values, as upstream resolves an
	// action's connection inputs (among the owner's connections for an
	// action of another workspace).
	in, problems, _ := p.connectionsFor(ps).Resolve(ps.action.Input, in)
	if len(problems) > 0 {
		return nil, fmt.Errorf("input for action %q: %s", ps.action.Name, strings.Join(problems, "; "))
	}
	coerceStrings(ps.action.Input, in)
	checked, problems := workspace.CheckInput(jsonLists(ps.action.Input, in), in)
	if len(problems) > 0 {
		return nil, fmt.Errorf("input for action %q: %s", ps.action.Name, strings.Join(problems, "; "))
	}
	return checked, nil
}

// coerceStrings turns scalar values into strings where the action declares a
// string: a template like "{{ input.count }}" keeps its number type, and an
// action that asks for a string should still get "2", as the original did.
func coerceStrings(schema workspace.Schema, in map[string]any) {
	for _, f := range schema {
		if f.Type != workspace.TypeString {
			continue
		}
		switch v := in[f.Name].(type) {
		case bool:
			in[f.Name] = fmt.Sprint(v)
		case int, int64, float64:
			in[f.Name] = formatNumber(v)
		case []any, map[string]any:
			// A list or an object (a loop's outputs) given to a string
			// input is its JSON text, as the upstream's string templates
			// render it.
			if b, err := json.Marshal(v); err == nil {
				in[f.Name] = string(b)
			}
		}
	}
}

// undefinedSecret reports whether err is a template that used an undefined
// `secret` or `secret.<name>`.
func undefinedSecret(err error) bool {
	var te *workspace.TemplateError
	if !errors.As(err, &te) {
		return false
	}
	return te.Undefined == "secret" || strings.HasPrefix(te.Undefined, "secret.")
}

func formatNumber(v any) string {
	if f, ok := v.(float64); ok {
		if f == math.Trunc(f) && math.Abs(f) < 1e15 {
			return fmt.Sprintf("%d", int64(f))
		}
		return fmt.Sprint(f)
	}
	return fmt.Sprint(v)
}

// renderError adds the failure of any secret that did not resolve, since an
// undefined secret.x is usually that.
func (p *plan) renderError(what string, err error) error {
	if len(p.secretErrs) == 0 || !undefinedSecret(err) {
		return fmt.Errorf("%s: %w", what, err)
	}
	names := make([]string, 0, len(p.secretErrs))
	for n := range p.secretErrs {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		// ResolveSecrets' errors already start with `secret "n": `.
		msg := strings.TrimPrefix(p.secretErrs[n].Error(), fmt.Sprintf("secret %q: ", n))
		fmt.Fprintf(&b, "; secret %q did not resolve: %s", n, msg)
	}
	return fmt.Errorf("%s: %w%s", what, err, b.String())
}

// renderSpec renders the action's command for a claimed step, with input =
// the step's rendered input.
func renderSpec(p *plan, c persistence.ClaimedStep) (stroem.StepSpec, error) {
	ps := p.step(c.StepName)
	if ps == nil {
		return stroem.StepSpec{}, fmt.Errorf("step %q is not in the task definition", c.StepName)
	}
	ctx := workspace.TemplateContext{
		Input:   c.Input,
		Secrets: p.secretsFor(ps),
		Job:     workspace.JobInfo{ID: c.JobID, Task: c.TaskName, Workspace: c.Workspace},
	}.Map()
	for k, v := range c.Templates { // state, global_state (files.go)
		ctx[k] = v
	}
	if c.Each != nil {
		ctx["each"] = c.Each
	}
	var spec stroem.StepSpec
	var err error
	if ps.cmd != nil {
		if spec.Cmd, err = ps.cmd.Render(ctx); err != nil {
			return spec, p.renderError("cmd", err)
		}
	}
	spec.Script = ps.script
	if ps.args != nil {
		if spec.Args, err = ps.args.Render(ctx); err != nil {
			return spec, p.renderError("script arguments", err)
		}
	}
	if len(ps.env) > 0 {
		spec.Env = make(map[string]string, len(ps.env))
		for k, t := range ps.env {
			if spec.Env[k], err = t.Render(ctx); err != nil {
				return spec, p.renderError("env "+k, err)
			}
		}
	}
	if err := renderScript(p, ps, ctx, &spec); err != nil {
		return spec, err
	}
	spec.Timeout = stroem.Duration(ps.timeout)
	return spec, nil
}
