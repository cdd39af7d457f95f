package workspace

import (
	"context"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/stroem/stroem"
)

// Watch timings.
const (
	// watchDebounce groups the burst of events an editor's save or a git
	// checkout makes into one reload: the reload runs this long after the
	// burst's first event.
	watchDebounce = 200 * time.Millisecond
	// watchRecheck re-checks the revision now and then even with file
	// events, in case some were lost (inotify queue overflow, a folder
	// replaced as a whole).
	watchRecheck = 30 * time.Second
	// pollInterval is how often the revision is checked when file events
	// are not available.
	pollInterval = 2 * time.Second
)

// Registry holds the workspaces a server serves, by configured name. Reads
// (Get, List) are lock-free; a reload swaps a workspace's pointer
// atomically, so a reader sees either the old or the new definitions,
// never a mix, and keeps what it got for as long as it likes (jobs keep
// the definitions they were created with).
type Registry struct {
	log     *slog.Logger
	entries map[string]*registryEntry
	names   []string

	hookMu sync.RWMutex
	hooks  []func(*Workspace)

	// libs are merged into every workspace (library.go); set before
	// any workspace is loaded.
	libs  []*Library
	libMu sync.Mutex // guards libs (library.go)

	// Test seams: force polling, and its period; checks counts the
	// revision checks the watchers made.
	poll      bool
	pollEvery time.Duration
	checks    atomic.Int64
}

type registryEntry struct {
	name string
	path string
	cur  atomic.Pointer[Workspace]
	mu   sync.Mutex // serialises reloads of this workspace
	// source is set for a workspace whose files come from a Source (git);
	// path is then unused (source.go).
	source *sourceEntry
}

// NewRegistry loads every workspace of paths (name → folder or file). A
// workspace that cannot be loaded at all (missing path) is served empty,
// with the error as its only problem, until a reload succeeds; validation
// problems are logged once each.
func NewRegistry(paths map[string]string, log *slog.Logger) *Registry {
	return NewRegistryWithLibraries(paths, nil, log)
}

// NewRegistryWithLibraries is NewRegistry with libraries merged into every
// workspace (see WithLibraries).
func NewRegistryWithLibraries(paths map[string]string, libs []*Library, log *slog.Logger) *Registry {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Registry{log: log, entries: make(map[string]*registryEntry, len(paths)), pollEvery: pollInterval, libs: libs}
	for name, path := range paths {
		e := &registryEntry{name: name, path: path}
		ws, err := r.load(path)
		if err != nil {
			log.Error("workspace cannot be loaded; serving it empty", "workspace", name, "path", path, "err", err)
			ws = unloaded(name, path, err)
		} else {
			ws.Name = name
			r.logLoaded(ws)
		}
		e.cur.Store(ws)
		r.entries[name] = e
		r.names = append(r.names, name)
	}
	sort.Strings(r.names)
	return r
}

// unloaded is the stand-in for a workspace whose path cannot be read.
func unloaded(name, path string, err error) *Workspace {
	root, _ := filepath.Abs(path) // only to hide it from API clients (PublicText)
	return &Workspace{
		Name:     name,
		Root:     root,
		Actions:  map[string]*Action{},
		Tasks:    map[string]*Task{},
		Triggers: map[string]*Trigger{},
		Secrets:  map[string]any{},
		Problems: []Problem{{Pos: Pos{File: path}, Message: err.Error()}},
	}
}

// Get returns the current workspace of the name, or nil if the registry
// has none.
func (r *Registry) Get(name string) *Workspace {
	e := r.entries[name]
	if e == nil {
		return nil
	}
	return e.cur.Load()
}

// List returns the current workspaces, sorted by name.
func (r *Registry) List() []*Workspace {
	out := make([]*Workspace, 0, len(r.names))
	for _, n := range r.names {
		out = append(out, r.entries[n].cur.Load())
	}
	return out
}

// OnReload registers fn to be called with each workspace a reload swaps in
// (not for the initial load: call List after registering). Hooks of one
// workspace run one reload at a time, in the reloading goroutine; a hook
// must not call Reload.
func (r *Registry) OnReload(fn func(*Workspace)) {
	r.hookMu.Lock()
	defer r.hookMu.Unlock()
	r.hooks = append(r.hooks, fn)
}

// Reload reads the workspace again and swaps it in, valid parts and
// problems alike. When nothing changed (same revision, same problems) the
// current workspace is kept and returned, and no hook runs. An error keeps
// the current workspace: stroem.ErrUnavailable when the path cannot be
// read, stroem.ErrNotFound for an unknown name.
func (r *Registry) Reload(name string) (*Workspace, error) {
	e := r.entries[name]
	if e == nil {
		return nil, stroem.Errorf(stroem.CodeNotFound, "unknown workspace %q", name)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.source != nil {
		return r.syncSource(context.Background(), e, true)
	}
	ws, err := r.load(e.path)
	if err != nil {
		return nil, stroem.Errorf(stroem.CodeUnavailable, "reload workspace %s: %w", name, err)
	}
	ws.Name = name
	if old := e.cur.Load(); old != nil && old.src != nil && old.Revision == ws.Revision && slices.Equal(old.Problems, ws.Problems) {
		return old, nil
	}
	e.cur.Store(ws)
	r.logLoaded(ws)
	r.runHooks(ws)
	return ws, nil
}

// runHooks calls the OnReload functions with a newly served version.
func (r *Registry) runHooks(ws *Workspace) {
	r.hookMu.RLock()
	hooks := slices.Clone(r.hooks)
	r.hookMu.RUnlock()
	for _, h := range hooks {
		h(ws)
	}
}

func (r *Registry) logLoaded(ws *Workspace) {
	for _, p := range ws.Problems {
		r.log.Warn("workspace problem", "workspace", ws.Name, "file", p.Pos.File, "line", p.Pos.Line, "col", p.Pos.Col, "problem", p.Message)
	}
	r.log.Info("workspace loaded", "workspace", ws.Name, "revision", short(ws.Revision),
		"actions", len(ws.Actions), "tasks", len(ws.Tasks), "triggers", len(ws.Triggers), "problems", len(ws.Problems))
}

// Watch reloads folder workspaces when their files change, until ctx is
// done; it returns once its goroutines have ended. It watches every folder
// of the workspace (but .git) with fsnotify, waits for a burst of events
// to settle, and reloads when the revision changed; it also re-checks every
// 30 s in case events were lost. Where fsnotify cannot watch (no inotify,
// too many watches) it polls the revision every 2 s. Single-file
// workspaces, and paths that are not folders when Watch starts, are not
// watched: reload them with Reload.
func (r *Registry) Watch(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, name := range r.names {
		e := r.entries[name]
		if e.source != nil {
			if e.source.every > 0 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r.watchSource(ctx, e)
				}()
			}
			continue
		}
		info, err := os.Stat(e.path)
		if err != nil || !info.IsDir() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.watch(ctx, e)
		}()
	}
	wg.Wait()
	return nil
}

func (r *Registry) watch(ctx context.Context, e *registryEntry) {
	if r.poll {
		r.pollLoop(ctx, e)
		return
	}
	w, err := fsnotify.NewWatcher()
	if err == nil {
		err = watchTree(w, e.path)
		if err != nil {
			_ = w.Close()
		}
	}
	if err != nil {
		r.log.Warn("cannot watch workspace files; polling instead", "workspace", e.name, "every", r.pollEvery, "err", err)
		r.pollLoop(ctx, e)
		return
	}
	defer w.Close()
	// The first event of a burst arms the settle timer; later events of the
	// burst do not push it back, so a steady stream of writes cannot
	// starve the reload.
	settle := time.NewTimer(time.Hour)
	settle.Stop()
	defer settle.Stop()
	armed := false
	arm := func() {
		if !armed {
			armed = true
			settle.Reset(watchDebounce)
		}
	}
	recheck := time.NewTicker(watchRecheck)
	defer recheck.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			if inGitDir(e.path, ev.Name) {
				continue
			}
			if ev.Has(fsnotify.Create) {
				if info, err := os.Lstat(ev.Name); err == nil && info.IsDir() {
					_ = watchTree(w, ev.Name)
				}
			}
			arm()
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			r.log.Warn("watching workspace files", "workspace", e.name, "err", err)
			arm()
		case <-settle.C:
			armed = false
			r.reloadIfChanged(e)
		case <-recheck.C:
			r.reloadIfChanged(e)
		}
	}
}

func (r *Registry) pollLoop(ctx context.Context, e *registryEntry) {
	everyTick(ctx, r.pollEvery, func() { r.reloadIfChanged(e) })
}

// everyTick calls fn every d until ctx is done.
func everyTick(ctx context.Context, d time.Duration, fn func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}

// reloadIfChanged reloads when the files' revision differs from the
// current workspace's.
func (r *Registry) reloadIfChanged(e *registryEntry) {
	defer r.checks.Add(1)
	if cur := e.cur.Load(); cur != nil && cur.src != nil && currentRevision(cur) == cur.Revision {
		return
	}
	if _, err := r.Reload(e.name); err != nil {
		r.log.Error("workspace reload failed; keeping the current definitions", "workspace", e.name, "err", err)
	}
}

// watchTree adds dir and every folder below it, but .git, to w.
func watchTree(w *fsnotify.Watcher, dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == dir {
				return err
			}
			return nil // unreadable below: the revision reports it
		}
		if !d.IsDir() {
			return nil
		}
		if d.Name() == ".git" && p != dir {
			return fs.SkipDir
		}
		return w.Add(p)
	})
}

// inGitDir reports whether path lies in a .git folder below root.
func inGitDir(root, path string) bool {
	rel, err := filepath.Rel(root, path)
	if err != nil {
		return false
	}
	for _, part := range strings.Split(filepath.ToSlash(rel), "/") {
		if part == ".git" {
			return true
		}
	}
	return false
}
