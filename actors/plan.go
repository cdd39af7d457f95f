package actors

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/stroem/stroem/persistence"
	"github.com/stroem/stroem/workspace"
)

// Snapshot is the frozen definition a job runs: the task, the actions its
// steps use and the secret references, as they were when the job was created.
// It is stored once per content hash, so a workspace reload never changes a
// job that already exists.
type Snapshot struct {
	Workspace string                       `json:"workspace"`
	Revision  string                       `json:"revision"`
	Task      *workspace.Task              `json:"task"`
	Actions   map[string]*workspace.Action `json:"actions"`
	Secrets   map[string]any               `json:"secrets,omitempty"`
	// ConnectionSecrets are the secret properties of the workspace's
	// connections (references unresolved), masked like secrets
	// (connection.go).
	ConnectionSecrets map[string]any `json:"connection_secrets,omitempty"`
	// Connections are what the task's actions' connection-typed inputs
	// may name (a step's input or a field's default), resolved when a
	// step's input is rendered (connection.go).
	Connections *workspace.ConnectionSet `json:"connections,omitempty"`
	// Owners are the workspaces of actions of other workspaces, by the
	// step's action name ("other.item"; xref.go).
	Owners map[string]*ActionOwner `json:"owners,omitempty"`
}

// newSnapshot freezes task from ws and returns it with its id and JSON body.
func newSnapshot(ws *workspace.Workspace, task *workspace.Task) (id string, body []byte, err error) {
	// One constructor (xref.go), so what a snapshot keeps cannot drift
	// between jobs and hooks: here no other workspace is looked up.
	return newSnapshotRefs(ws, task, func(string) *workspace.Workspace { return nil })
}

// plan is a compiled snapshot: the DAG and every template parsed once.
// Plans are immutable and shared by all jobs created from the same snapshot.
type plan struct {
	id    string
	snap  *Snapshot
	dag   *workspace.DAG
	steps map[string]*planStep
	// cof is continue_on_failure per step, in the shape the DAG logic takes.
	cof map[string]bool
	// topo is each step's place in the DAG's order; dependents the steps
	// that depend on a step directly. A transition looks at the dependents
	// of the steps it changed, in this order (advance).
	topo       map[string]int
	dependents map[string][]string
	// loops are the for_each steps, in the DAG's order; serverSide is set
	// when some step's action waits on the server (approval.go).
	loops      []string
	serverSide bool
	// secrets holds the secrets that resolved; secretErrs the ones that did
	// not (a template using one fails with that error).
	secrets    map[string]any
	secretErrs map[string]error
	masker     *workspace.Masker
}

type planStep struct {
	name   string
	flow   *workspace.FlowStep
	action *workspace.Action
	input  *workspace.ValueTemplate // nil when the step has no input
	cmd    *workspace.Template
	script string              // the script's path, relative to the workspace root
	args   *workspace.Template // the script's arguments; nil when none
	// code is the inline code of a type: script action; literal holds it
	// instead when it is not a template (code in another language with
	// braces of its own).
	code    *workspace.Template
	literal string
	argList []*workspace.Template
	env     map[string]*workspace.Template
	retry   *workspace.RetryPolicy // step's, else action's; nil = no retry
	timeout time.Duration
	// reads are the steps whose outputs the step's templates may read
	// (readsOf), in name order.
	reads []string
	// flowCtl is the step's when and for_each, nil when it has neither.
	flowCtl *flowControl
	// owner is the workspace of an action of another workspace (xref.go).
	owner *stepOwner
}

// maxAttempts is the number of executions the step's retry policy allows.
func (ps *planStep) maxAttempts() int {
	if ps.retry == nil || ps.retry.MaxAttempts < 1 {
		return 1
	}
	return ps.retry.MaxAttempts
}

// tags are the worker tags the step requires: its action's, as the
// upstream takes them (a reference step's own tags are not used: the
// workspace loader warns of them; an inline step's are its action's). A
// step that runs on the server (a sub-task, an approval) requires none.
func (ps *planStep) tags() []string {
	if t := ps.action.Type; t == workspace.ActionTask || t == workspace.ActionApproval {
		return nil
	}
	return persistence.NormalTags(ps.action.Tags)
}

// compilePlan parses a snapshot body into a plan.
func compilePlan(id string, body []byte) (*plan, error) {
	var snap Snapshot
	if err := json.Unmarshal(body, &snap); err != nil {
		return nil, fmt.Errorf("decode task snapshot %s: %w", id, err)
	}
	if snap.Task == nil {
		return nil, fmt.Errorf("task snapshot %s has no task", id)
	}
	p := &plan{id: id, snap: &snap, steps: map[string]*planStep{}, cof: map[string]bool{}}
	deps := map[string][]string{}
	for name, fs := range snap.Task.Flow {
		fs.Name = name
		deps[name] = fs.DependsOn
		p.cof[name] = fs.ContinueOnFailure
	}
	dag, err := workspace.NewDAG(deps)
	if err != nil {
		return nil, fmt.Errorf("task %s: %w", snap.Task.Name, err)
	}
	p.dag = dag
	for name, fs := range snap.Task.Flow {
		a := snap.Actions[fs.Action]
		if a == nil {
			return nil, fmt.Errorf("step %q: unknown action %q", name, fs.Action)
		}
		ps := &planStep{name: name, flow: fs, action: a, env: map[string]*workspace.Template{}}
		if len(fs.Input) > 0 {
			in := make(map[string]any, len(fs.Input))
			for k, v := range fs.Input {
				in[k] = v
			}
			if ps.input, err = workspace.CompileValue(in); err != nil {
				return nil, fmt.Errorf("step %q input: %w", name, err)
			}
		}
		if a.Cmd != "" {
			if ps.cmd, err = workspace.CompileTemplate(a.Cmd); err != nil {
				return nil, fmt.Errorf("action %q cmd: %w", a.Name, err)
			}
		}
		if a.Script != "" {
			var args string
			ps.script, args = workspace.SplitScript(a.Script)
			if args != "" {
				if ps.args, err = workspace.CompileTemplate(args); err != nil {
					return nil, fmt.Errorf("action %q script arguments: %w", a.Name, err)
				}
			}
		}
		if a.Source != "" {
			ps.script = a.Source
		}
		if a.Inline != "" {
			if ps.code, err = workspace.CompileTemplate(a.Inline); err != nil {
				if a.Language == workspace.LangShell || a.Language == "" {
					return nil, fmt.Errorf("action %q script: %w", a.Name, err)
				}
				ps.code, ps.literal = nil, a.Inline
			}
		}
		for i, arg := range a.Args {
			t, err := workspace.CompileTemplate(arg)
			if err != nil {
				return nil, fmt.Errorf("action %q args[%d]: %w", a.Name, i, err)
			}
			ps.argList = append(ps.argList, t)
		}
		for k, v := range a.Env {
			if ps.env[k], err = workspace.CompileTemplate(v); err != nil {
				return nil, fmt.Errorf("action %q env %s: %w", a.Name, k, err)
			}
		}
		ps.retry = a.Retry
		if fs.Retry != nil {
			ps.retry = fs.Retry
		}
		ps.timeout = a.Timeout.D()
		if fs.Timeout > 0 {
			ps.timeout = fs.Timeout.D()
		}
		if err := compileFlow(ps); err != nil {
			return nil, err
		}
		p.steps[name] = ps
	}
	up, byTemplate := workspace.NewUpstreams(deps), workspace.TemplateNames(dag.Order())
	for name, ps := range p.steps {
		ps.reads = readsOf(ps, byTemplate, up.From(name))
	}
	p.topo = make(map[string]int, len(p.steps))
	p.dependents = make(map[string][]string, len(p.steps))
	for i, name := range dag.Order() {
		p.topo[name] = i
		if ds := dag.Dependents(name); len(ds) > 0 {
			p.dependents[name] = ds
		}
		ps := p.steps[name]
		if ps.flowCtl != nil && ps.flowCtl.loop {
			p.loops = append(p.loops, name)
		}
		if workspace.IsServerSide(ps.action.Type) {
			p.serverSide = true
		}
	}
	p.secrets, p.secretErrs = resolveSecrets(snap.Secrets)
	p.masker = workspace.NewMasker(withConnectionSecrets(withValsRefs(p.secrets, &snap), &snap))
	compileOwners(p)
	return p, nil
}

// readsOf returns the steps whose outputs a step's templates may read: its
// upstream steps (up) whose template names (byTemplate: template name →
// step) are words of the templates that see step outputs — the flow's
// input, when and for_each, and an approval's message. A template reaches
// a step's output only by that name, so the step's other upstream steps
// are left out of its renders: with all of them, each step of a 10,000-step
// chain put the outputs of every step before it into its render, and
// working that out for every step when the job started took 12 s and 1.4 GB
// (issue 23). A word that is not a reference (in a string, say) only adds
// an output the render does not use.
func readsOf(ps *planStep, byTemplate map[string]string, up *workspace.UpstreamWalk) []string {
	var out []string
	seen := map[string]bool{}
	words := func(src string) {
		for _, w := range strings.FieldsFunc(src, notWordRune) {
			if n, ok := byTemplate[w]; ok && !seen[n] {
				seen[n] = true
				if up.Has(n) {
					out = append(out, n)
				}
			}
		}
	}
	walkStrings(ps.flow.Input, words)
	words(ps.flow.When)
	walkStrings(ps.flow.ForEach, words)
	words(ps.action.Message)
	sort.Strings(out)
	return out
}

// notWordRune reports whether r cannot be part of a template's name for a
// variable.
func notWordRune(r rune) bool {
	return r != '_' && !unicode.IsLetter(r) && !unicode.IsDigit(r)
}

// resolveSecrets resolves each top-level secret on its own, so one missing
// environment variable only breaks the templates that use that secret.
func resolveSecrets(raw map[string]any) (map[string]any, map[string]error) {
	ok := map[string]any{}
	var bad map[string]error
	for k, v := range raw {
		r, err := workspace.ResolveSecrets(map[string]any{k: v})
		if err != nil {
			if bad == nil {
				bad = map[string]error{}
			}
			bad[k] = err
			continue
		}
		ok[k] = r[k]
	}
	return ok, bad
}

// planCache keeps compiled plans by snapshot id. Plans are small and shared;
// the cache is bounded so a long-running server with many revisions does not
// grow without end.
type planCache struct {
	mu    sync.Mutex
	max   int
	plans map[string]*planEntry
	tick  uint64
	log   *slog.Logger
}

type planEntry struct {
	p    *plan
	used uint64
}

func newPlanCache(max int, log *slog.Logger) *planCache {
	return &planCache{max: max, plans: map[string]*planEntry{}, log: log}
}

// get returns the cached plan for id, or nil.
func (c *planCache) get(id string) *plan {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.plans[id]
	if e == nil {
		return nil
	}
	c.tick++
	e.used = c.tick
	return e.p
}

// put stores p, evicting the least recently used plan when full.
func (c *planCache) put(p *plan) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tick++
	c.plans[p.id] = &planEntry{p: p, used: c.tick}
	if len(c.plans) <= c.max {
		return
	}
	var oldest string
	var min uint64 = ^uint64(0)
	for id, e := range c.plans {
		if e.used < min {
			oldest, min = id, e.used
		}
	}
	delete(c.plans, oldest)
}
