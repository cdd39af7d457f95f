package http

import (
	"maps"
	"net/http"
	"net/url"
	"slices"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/auth"
	"github.com/stroem/stroem/persistence"
	"github.com/stroem/stroem/workspace"
)

func (t *Triggers) list(w http.ResponseWriter, r *http.Request) error {
	ws, err := t.workspace(r)
	if err != nil {
		return err
	}
	out := []stroem.Trigger{}
	for _, name := range slices.Sorted(maps.Keys(ws.Triggers)) {
		if !t.canSee(r, ws, ws.Triggers[name]) {
			continue
		}
		v, err := t.view(r, ws, ws.Triggers[name])
		if err != nil {
			return err
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (t *Triggers) get(w http.ResponseWriter, r *http.Request) error {
	ws, err := t.workspace(r)
	if err != nil {
		return err
	}
	name := pathParam(r, "trigger")
	trig := ws.Triggers[name]
	if trig == nil || !t.canSee(r, ws, trig) {
		return stroem.Errorf(stroem.CodeNotFound, "trigger %q not found in workspace %q", name, ws.Name)
	}
	v, err := t.view(r, ws, trig)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (t *Triggers) workspace(r *http.Request) (*workspace.Workspace, error) {
	return routeWorkspace(t.ws, t.cfg.ACL, r)
}

// canSee: a trigger is listed to users who may see its task.
func (t *Triggers) canSee(r *http.Request, ws *workspace.Workspace, trig *workspace.Trigger) bool {
	path := trig.Task
	if task := ws.Tasks[trig.Task]; task != nil {
		path = taskPath(task)
	}
	return permission(t.cfg.ACL, r, ws.Name, path) >= auth.View
}

// view builds a trigger's entry; its last job costs one indexed query.
func (t *Triggers) view(r *http.Request, ws *workspace.Workspace, trig *workspace.Trigger) (stroem.Trigger, error) {
	v := stroem.Trigger{Name: trig.Name, Type: trig.Type, Task: trig.Task, Enabled: trig.Enabled, Input: trig.Input}
	if v.Input == nil {
		v.Input = map[string]any{}
	}
	source := stroem.SourceTrigger
	switch trig.Type {
	case workspace.TriggerScheduler:
		v.Cron, v.Timezone, v.Concurrency = trig.Cron, trig.Timezone, trig.Concurrency
		if t.sched != nil && trig.Enabled {
			if next, ok := t.sched.NextFire(ws.Name, trig.Name); ok {
				v.NextFireAt = &next
			}
		}
	case workspace.TriggerWebhook:
		source = stroem.SourceWebhook
		v.Mode, v.TimeoutSecs = trig.Mode, trig.TimeoutSecs
		v.Path = t.hookPath(ws.Name, hookName(trig))
		secret := trig.Secret != ""
		v.SecretRequired = &secret
	}
	jobs, err := t.store.JobList(r.Context(), persistence.JobFilter{
		Workspace: ws.Name, SourceType: source, SourceID: stroem.TriggerSourceID(ws.Name, trig.Name), Limit: 1,
	})
	if err != nil {
		return v, err
	}
	if len(jobs) > 0 {
		v.LastJob = &stroem.TriggerJob{JobID: jobs[0].ID, Status: jobs[0].Status, CreatedAt: jobs[0].CreatedAt}
	}
	return v, nil
}

// hookPath is the webhook's URL path: /hooks/NAME when no other workspace
// has a webhook of that name, /hooks/WORKSPACE/NAME otherwise.
func (t *Triggers) hookPath(wsName, name string) string {
	n := 0
	for _, w := range t.ws.List() {
		if w.Webhook(name) != nil {
			n++
		}
	}
	if n > 1 {
		return "/hooks/" + url.PathEscape(wsName) + "/" + url.PathEscape(name)
	}
	return "/hooks/" + url.PathEscape(name)
}

// hookName is a webhook's URL name: its `name` key, else the trigger's name.
func hookName(trig *workspace.Trigger) string {
	if trig.Path != "" {
		return trig.Path
	}
	return trig.Name
}
