package runner

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
)

// Reusing the steps' state and artifact directories (issue 23). Each step
// gets a root with five directories (stepFileDirs); on a loaded ext4 host,
// making and removing them was a third of the worker's CPU per step. A
// root that comes back from a step exactly as it was handed out — the five
// directories and nothing else, each empty, the state ones still read-only
// — serves the next step; anything else (a failed step's leftovers, state
// written, a mode changed, an extra file) is removed as before. The
// directories isolate steps from each other no less than fresh ones: a
// step reaches only what its environment names, its processes are gone
// when it ends (the supervisor kills its whole tree), and the directories
// are empty when handed out again. (A process that escaped the
// supervisor's tree runs as the worker's user and could write into any
// step's directories, fresh or not.)

// stepFileDirs are a step's directories: variable, name, and the state
// scope fetched into it ("" for the empty ones the step writes into).
var stepFileDirs = []struct{ env, name, scope string }{
	{EnvStateDir, "state", "task"}, {EnvStateOutDir, "state-out", ""},
	{EnvGlobalStateDir, "global-state", "global"}, {EnvGlobalStateOutDir, "global-state-out", ""},
	{EnvArtifactsDir, "artifacts", ""},
}

// maxPooledFilesRoots bounds the idle roots kept (one per slot in use is
// enough; more are removed).
const maxPooledFilesRoots = 64

// filesPool holds emptied step roots.
type filesPool struct {
	mu    sync.Mutex
	roots []pooledRoot
}

// pooledRoot is an idle root with the inode stamps of it and its five
// directories, taken when it was found as handed out (stepdir.go says why
// unchanged stamps prove it unchanged when they are trusted).
//
// dirs holds the five directories open (dirHandle) from when their stamps
// were recorded, so that a check reads the root's stamp through its path
// and theirs through these handles (an lstat of each path walked the whole
// path again: most of the worker's 11 % of CPU in os.Lstat, issue 23). That
// proves as much as six lstats of the paths: the root's path still leads
// to the recorded root (device and inode) and its stamp, ctime included, is
// unchanged, so none of its entries was added, removed or renamed — each
// directory's name still leads to the inode held; and each held inode's
// stamp is unchanged, so it is unchanged itself. (Replacing a directory
// means renaming or removing it, which changes the root's ctime and the
// replaced inode's ctime or link count; replacing the root or one of its
// ancestors makes the root's path lead to another inode.) The handles are
// closed when the root is removed or its stamps recorded anew.
type pooledRoot struct {
	root    string
	stamps  []stamp
	dirs    []dirHandle // stepFileDirNames' directories, or nil
	trusted bool
}

// get takes an idle root that is still as a step got it; idle roots that
// changed while they waited (a file planted in artifacts would be uploaded
// as the next step's) are removed.
func (p *filesPool) get(log *slog.Logger) (pooledRoot, bool) {
	for {
		p.mu.Lock()
		if len(p.roots) == 0 {
			p.mu.Unlock()
			return pooledRoot{}, false
		}
		r := p.roots[len(p.roots)-1]
		p.roots = p.roots[:len(p.roots)-1]
		p.mu.Unlock()
		if r.check() {
			return r, true
		}
		(&stepFiles{root: r.root, dirs: r.dirs, log: log}).remove()
	}
}

// check says whether r is as a step gets it: by its stamps when they are
// trusted and unchanged, else by a listing (reusableFilesRoot), recording
// its stamps anew.
//
// Whatever it returns, r.dirs are the handles to close when r is removed.
func (r *pooledRoot) check() bool {
	if r.trusted && r.stampsMatch() {
		return true
	}
	since, ok := coarseNow() // before anything is read: a change from now on shows
	if !reusableFilesRoot(r.root) {
		return false
	}
	closeDirHandles(r.dirs)
	r.stamps, r.dirs = filesRootStamps(r.root) // nil: judged by a listing next time
	r.trusted = ok && settledBefore(r.stamps, since)
	return true
}

// stampsMatch compares the recorded stamps with the root's, through its
// path, and its directories', through their handles (see pooledRoot).
func (r *pooledRoot) stampsMatch() bool {
	if len(r.stamps) != 1+len(r.dirs) {
		return stampsMatch(r.root, r.stamps) // no handles: by paths
	}
	if now, ok := stampOf(r.root, ""); !ok || now != r.stamps[0] {
		return false
	}
	for i, h := range r.dirs {
		if now, ok := h.stamp(r.stamps[1+i].rel); !ok || now != r.stamps[1+i] {
			return false
		}
	}
	return true
}

func closeDirHandles(dirs []dirHandle) {
	for _, h := range dirs {
		h.close()
	}
}

// put keeps root for a next step; false when the pool is full.
func (p *filesPool) put(r pooledRoot) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.roots) >= maxPooledFilesRoots {
		return false
	}
	p.roots = append(p.roots, r)
	return true
}

// drain removes the kept roots (read-only directories included).
func (p *filesPool) drain(log *slog.Logger) {
	p.mu.Lock()
	roots := p.roots
	p.roots = nil
	p.mu.Unlock()
	for _, r := range roots {
		(&stepFiles{root: r.root, dirs: r.dirs, log: log}).remove()
	}
}

// filesRootStamps records the stamps of a root found reusable: the root's
// through its path, its five directories' through the handles it opens on
// them (nil, nil when one cannot be read; dirs nil where directories cannot
// be held, and then the stamps are the paths').
func filesRootStamps(root string) ([]stamp, []dirHandle) {
	stamps := make([]stamp, 0, 1+len(stepFileDirs))
	s, ok := stampOf(root, "")
	if !ok {
		return nil, nil
	}
	stamps = append(stamps, s)
	dirs := make([]dirHandle, 0, len(stepFileDirs))
	for _, rel := range stepFileDirNames {
		h := openDirHandle(filepath.Join(root, rel))
		s, ok := h.stamp(rel)
		if !ok {
			h.close()
			closeDirHandles(dirs)
			dirs = nil
			break
		}
		dirs = append(dirs, h)
		stamps = append(stamps, s)
	}
	if dirs != nil {
		return stamps, dirs
	}
	stamps = stamps[:1]
	for _, rel := range stepFileDirNames {
		s, ok := stampOf(filepath.Join(root, rel), rel)
		if !ok {
			return nil, nil
		}
		stamps = append(stamps, s)
	}
	return stamps, nil
}

// stepFileDirNames are stepFileDirs' names.
var stepFileDirNames = func() []string {
	var names []string
	for _, d := range stepFileDirs {
		names = append(names, d.name)
	}
	return names
}()

// reusableFilesRoot says whether root is as a step got it: mode 0700, the
// five directories and nothing else, each a real directory, empty, the
// state ones 0555 and the others writable by the worker and by nobody
// else.
func reusableFilesRoot(root string) bool {
	if fi, err := os.Lstat(root); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		return false
	}
	entries, err := os.ReadDir(root)
	if err != nil || len(entries) != len(stepFileDirs) {
		return false
	}
	want := map[string]bool{} // name → read-only
	for _, d := range stepFileDirs {
		want[d.name] = d.scope != ""
	}
	for _, e := range entries {
		readOnly, ok := want[e.Name()]
		if !ok || !e.IsDir() || e.Type()&os.ModeSymlink != 0 {
			return false
		}
		fi, err := e.Info()
		if err != nil {
			return false
		}
		perm := fi.Mode().Perm()
		if readOnly && perm != 0o555 || !readOnly && (perm&0o700 != 0o700 || perm&^0o755 != 0) {
			return false
		}
		if !dirIsEmpty(filepath.Join(root, e.Name())) {
			return false
		}
	}
	return true
}

func dirIsEmpty(dir string) bool {
	empty, err := dirEmpty(dir)
	return err == nil && empty
}

// dirEmpty says whether dir has no entries.
func dirEmpty(dir string) (bool, error) {
	d, err := os.Open(dir)
	if err != nil {
		return false, err
	}
	defer d.Close()
	_, err = d.Readdirnames(1)
	if errors.Is(err, io.EOF) {
		return true, nil
	}
	return false, err
}
