package actors

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
	"github.com/stroem/stroem/workspace"
)

// Cross-workspace references (docs/workspaces.md): a flow step whose
// action is "other.item" runs action item of workspace other, as other
// was when the job was created: with its files (the worker downloads
// other's archive at that revision), its revision (stamped on the step,
// which entitles the worker to that archive) and its secrets. The step's
// input still renders in the calling job.

// ActionOwner is the workspace a snapshot's action belongs to when it is
// not the job's own.
type ActionOwner struct {
	Workspace string `json:"workspace"`
	Revision  string `json:"revision"`
	// Secrets are the owner's secret references, resolved when the plan
	// is compiled, as the job's own are.
	Secrets map[string]any `json:"secrets,omitempty"`
	// Connections are the owner's, for the action's connection-typed
	// inputs; ConnectionSecrets the secret properties of the owner's
	// connections, masked like its secrets.
	Connections       *workspace.ConnectionSet `json:"connections,omitempty"`
	ConnectionSecrets map[string]any           `json:"connection_secrets,omitempty"`
}

// stepOwner is a compiled ActionOwner.
type stepOwner struct {
	workspace, revision string
	secrets             map[string]any
	secretErrs          map[string]error
	conns               *workspace.ConnectionSet
}

// newSnapshotRefs is newSnapshot resolving qualified actions against the
// workspaces lookup returns.
func newSnapshotRefs(ws *workspace.Workspace, task *workspace.Task, lookup func(string) *workspace.Workspace) (id string, body []byte, err error) {
	snap := Snapshot{Workspace: ws.Name, Revision: ws.Revision, Task: task, Actions: map[string]*workspace.Action{}, Secrets: ws.Secrets, ConnectionSecrets: ws.ConnectionSecretRefs()}
	for _, name := range task.Order {
		fs := task.Flow[name]
		if fs == nil {
			continue
		}
		a, owner, err := workspace.ResolveAction(ws, fs.Action, lookup)
		if err != nil {
			return "", nil, fmt.Errorf("step %s: %w", name, err)
		}
		if owner != nil || workspace.IsQualified(fs.Action) {
			// Load checked the workspace's own actions' inputs; a library's
			// or another workspace's are checked here.
			if problems := workspace.StepInputProblems(fs, a); len(problems) > 0 {
				return "", nil, fmt.Errorf("step %s: %s", name, strings.Join(problems, "; "))
			}
		}
		if owner != nil {
			// Shown (and stored on the step) by the name the flow uses.
			c := *a
			c.Name = fs.Action
			a = &c
			if snap.Owners == nil {
				snap.Owners = map[string]*ActionOwner{}
			}
			snap.Owners[fs.Action] = &ActionOwner{Workspace: owner.Name, Revision: owner.Revision, Secrets: owner.Secrets,
				Connections: owner.ConnectionsFor(a.Input, nil), ConnectionSecrets: owner.ConnectionSecretRefs()}
		} else {
			snap.Connections = ws.ConnectionsFor(a.Input, snap.Connections)
		}
		snap.Actions[fs.Action] = a
	}
	// Steps not in Order (none from the loader; hand-made tasks in tests).
	for name, fs := range task.Flow {
		if _, ok := snap.Actions[fs.Action]; !ok {
			a, ok := ws.Actions[fs.Action]
			if !ok {
				return "", nil, fmt.Errorf("step %q uses unknown action %q", name, fs.Action)
			}
			snap.Actions[fs.Action] = a
		}
	}
	body, err = json.Marshal(snap)
	if err != nil {
		return "", nil, fmt.Errorf("encode task snapshot: %w", err)
	}
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:]), body, nil
}

// ownersKey names the revisions of the workspaces task's qualified steps
// use now, so a cached plan is not reused after one of them changed.
func ownersKey(ws *workspace.Workspace, task *workspace.Task, lookup func(string) *workspace.Workspace) string {
	var b strings.Builder
	for _, name := range task.Order {
		fs := task.Flow[name]
		if fs == nil || ws.Actions[fs.Action] != nil || !workspace.IsQualified(fs.Action) {
			continue
		}
		q, _, _ := strings.Cut(fs.Action, ".")
		b.WriteString("\x00" + q)
		if other := lookup(q); other != nil {
			b.WriteString("@" + other.Revision)
		}
	}
	return b.String()
}

// compileOwners gives the plan's steps of other workspaces their owner,
// and adds the owners' secrets to the job's masker.
func compileOwners(p *plan) {
	if len(p.snap.Owners) == 0 {
		return
	}
	compiled := map[string]*stepOwner{}
	var extra []string
	for action, ao := range p.snap.Owners {
		so := &stepOwner{workspace: ao.Workspace, revision: ao.Revision, conns: ao.Connections}
		so.secrets, so.secretErrs = resolveSecrets(ao.Secrets)
		extra = append(extra, workspace.SecretValues(so.secrets)...)
		extra = append(extra, workspace.SecretValues(connectionSecrets(nil, ao.ConnectionSecrets))...)
		compiled[action] = so
	}
	for _, ps := range p.steps {
		ps.owner = compiled[ps.flow.Action]
	}
	if len(extra) > 0 {
		p.masker = stroem.NewMasker(append(p.masker.Values(), extra...))
	}
}

// connectionsFor is the connections a step's connection-typed inputs name:
// its owner's for a step of another workspace, the job's otherwise.
func (p *plan) connectionsFor(ps *planStep) *workspace.ConnectionSet {
	if ps.owner != nil {
		return ps.owner.conns
	}
	return p.snap.Connections
}

// secretsFor is the secrets a step's action body renders with: its owner's
// for a step of another workspace, the job's otherwise.
func (p *plan) secretsFor(ps *planStep) map[string]any {
	if ps.owner != nil {
		return ps.owner.secrets
	}
	return p.secrets
}

// stampOwner points an assignment of a step of another workspace at that
// workspace's files, at the revision pinned when the job was created.
func stampOwner(p *plan, a *stroem.Assignment) {
	if ps := p.steps[a.StepName]; ps != nil && ps.owner != nil {
		a.Workspace, a.Revision = ps.owner.workspace, ps.owner.revision
	}
}

// stampStepRevisions records, on each new step of another workspace, the
// revision it runs on.
func stampStepRevisions(p *plan, nj *persistence.NewJob) {
	for i := range nj.Steps {
		if ps := p.steps[nj.Steps[i].Name]; ps != nil && ps.owner != nil {
			nj.Steps[i].Revision = ps.owner.revision
		}
	}
}
