package workspace

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/stroem/stroem"
)

// SyncResult is where a Source put a version of a workspace's files.
type SyncResult struct {
	// Dir is a local folder holding the files; it must not change while
	// it is the served version.
	Dir string
	// Version names what Dir holds (a git commit sha).
	Version string
}

// Source brings a workspace's files from elsewhere (a git repository) into
// a local folder; see package workspace/gitsource.
type Source interface {
	// Sync fetches the newest version. keep is the version the registry
	// serves now ("" for none): its folder must stay.
	Sync(ctx context.Context, keep string) (SyncResult, error)
	// Describe names the source for messages (no credentials).
	Describe() string
}

// SourceStatus is the state of a workspace loaded from a Source.
type SourceStatus struct {
	// Source is the source's description (URL and ref).
	Source string `json:"source"`
	// Version is the version served (commit sha); "" before the first
	// good sync.
	Version string `json:"version"`
	// LastSync is when the last sync attempt ended.
	LastSync time.Time `json:"last_sync"`
	// Error is why the last sync was not taken ("" when it was): the
	// source unreachable, over the size limit, or a version whose files
	// have problems (listed in Rejected).
	Error string `json:"error,omitempty"`
	// Rejected are the problems of the refused version, one per broken
	// place.
	Rejected []Problem `json:"rejected,omitempty"`
}

// syncTimeout bounds one sync of a Source.
const syncTimeout = 5 * time.Minute

// sourceEntry is the Source part of a registry entry.
type sourceEntry struct {
	src    Source
	every  time.Duration
	good   *Workspace // the version served, without the status problems
	status SourceStatus
	// published is a copy of status, read without waiting for a sync.
	published atomic.Pointer[SourceStatus]
}

// publish makes the status readable by SourceStatus.
func (se *sourceEntry) publish() {
	st := se.status
	st.Rejected = slices.Clone(st.Rejected)
	se.published.Store(&st)
}

// AddSource adds a workspace whose files come from src and syncs it once.
// Watch syncs it again every `every` (0: only on Reload). A first sync that
// fails serves the workspace empty with the error as its problem. Call
// AddSource before Watch and before the registry is shared.
func (r *Registry) AddSource(ctx context.Context, name string, src Source, every time.Duration) {
	e := &registryEntry{name: name, source: &sourceEntry{src: src, every: every, status: SourceStatus{Source: src.Describe()}}}
	e.cur.Store(unloaded(name, src.Describe(), fmt.Errorf("not synced yet")))
	r.entries[name] = e
	r.names = append(r.names, name)
	slices.Sort(r.names)
	e.mu.Lock()
	_, err := r.syncSource(ctx, e, false)
	e.mu.Unlock()
	if err != nil {
		r.log.Error("workspace source cannot be synced; serving it empty", "workspace", name, "source", src.Describe(), "err", err)
	}
}

// SourceStatus returns the status of a workspace loaded from a Source; ok
// is false for other workspaces and unknown names.
func (r *Registry) SourceStatus(name string) (SourceStatus, bool) {
	e := r.entries[name]
	if e == nil || e.source == nil {
		return SourceStatus{}, false
	}
	st := e.source.published.Load()
	if st == nil {
		return SourceStatus{Source: e.source.src.Describe()}, true
	}
	out := *st
	out.Rejected = slices.Clone(st.Rejected)
	return out, true
}

// syncSource syncs e's source and serves the new version if it loads
// without problems (or, before any good version, with its valid parts).
// Otherwise the served version stays, and the failure is recorded in the
// status and shown as problems of the served workspace. Hooks run when a
// new version is swapped in and hooks is true. The caller holds e.mu.
func (r *Registry) syncSource(ctx context.Context, e *registryEntry, hooks bool) (*Workspace, error) {
	se := e.source
	defer se.publish()
	ctx, cancel := context.WithTimeout(ctx, syncTimeout)
	defer cancel()
	keep := se.status.Version
	res, err := se.src.Sync(ctx, keep)
	se.status.LastSync = time.Now().UTC()
	se.status.Rejected = nil
	if err != nil {
		return r.keepServing(e, err.Error(), nil), stroem.Errorf(stroem.CodeUnavailable, "sync workspace %s: %v", e.name, err)
	}
	if res.Version == se.status.Version && se.good != nil {
		se.status.Error = ""
		e.cur.Store(se.good)
		return se.good, nil
	}
	ws, err := r.load(res.Dir)
	if err != nil {
		return r.keepServing(e, fmt.Sprintf("version %s: %v", shortVersion(res.Version), err), nil),
			stroem.Errorf(stroem.CodeUnavailable, "sync workspace %s: version %s: %v", e.name, shortVersion(res.Version), err)
	}
	ws.Name = e.name
	relativeProblems(ws, res.Dir)
	if len(ws.Problems) > 0 && se.good != nil {
		msg := fmt.Sprintf("version %s has %d problem(s); still serving %s", shortVersion(res.Version), len(ws.Problems), shortVersion(se.status.Version))
		r.log.Warn("workspace version refused", "workspace", e.name, "version", res.Version, "problems", len(ws.Problems))
		details := make([]string, len(ws.Problems))
		for i, p := range ws.Problems {
			details[i] = p.String()
		}
		return r.keepServing(e, msg, ws.Problems), stroem.Invalid("sync workspace "+e.name+": "+msg, details...)
	}
	se.good, se.status.Version, se.status.Error = ws, res.Version, ""
	e.cur.Store(ws)
	r.log.Info("workspace synced", "workspace", e.name, "source", se.src.Describe(), "version", res.Version)
	r.logLoaded(ws)
	if hooks {
		r.runHooks(ws)
	}
	return ws, nil
}

// keepServing records a failed sync and serves the good version (if any)
// with the failure appended to its problems, so the API shows it.
func (r *Registry) keepServing(e *registryEntry, msg string, rejected []Problem) *Workspace {
	se := e.source
	se.status.Error, se.status.Rejected = msg, rejected
	r.log.Error("workspace sync failed; keeping the served version", "workspace", e.name, "source", se.src.Describe(), "err", msg)
	base := se.good
	if base == nil {
		base = unloaded(e.name, se.src.Describe(), fmt.Errorf("%s", msg))
		base.Problems = nil
	}
	shown := *base
	shown.Problems = append(slices.Clone(base.Problems), Problem{Pos: Pos{File: se.src.Describe()}, Message: "sync failed: " + msg})
	for _, p := range rejected {
		shown.Problems = append(shown.Problems, Problem{Pos: p.Pos, Message: "refused version: " + p.Message})
	}
	e.cur.Store(&shown)
	return &shown
}

// relativeProblems shows the files of problems relative to the checkout
// folder (".workflows/a.yaml", not a cache path).
func relativeProblems(ws *Workspace, dir string) {
	prefix := filepath.Clean(dir) + string(filepath.Separator)
	for i := range ws.Problems {
		ws.Problems[i].Pos.File = filepath.ToSlash(strings.TrimPrefix(ws.Problems[i].Pos.File, prefix))
	}
}

func shortVersion(v string) string {
	if v == "" {
		return "(none)"
	}
	return short(v)
}

// watchSource syncs e every se.every until ctx is done.
func (r *Registry) watchSource(ctx context.Context, e *registryEntry) {
	everyTick(ctx, e.source.every, func() {
		e.mu.Lock()
		_, _ = r.syncSource(ctx, e, true) // logged by syncSource
		e.mu.Unlock()
		r.checks.Add(1)
	})
}
