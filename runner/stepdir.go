package runner

import (
	"bytes"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// Reusing steps' working directories (issue 23). A step runs in a fresh
// copy of its revision's workspace files (docs/workflows.md); on a loaded
// ext4 host making, filling and removing that directory was about a fifth
// of the worker's CPU per step. A directory that comes back from a step
// exactly as it was handed out serves the next step of the same revision;
// anything else is removed as before.
//
// "Exactly as handed out" is decided without trusting the step, when the
// step ends and again when the directory is handed out to the next step
// (whatever ran meanwhile as the worker's user — a later step of another
// revision — could have changed it while it waited):
//
//   - By content while the stamps cannot vouch for it: every file, link
//     and directory of the revision is there with the same bytes and the
//     same stamp as recorded (below), and nothing else
//     (stepDir.sameAsSource). Then the tree's inode stamps are recorded
//     (snapshot).
//   - Otherwise by those stamps: every recorded entry still has the same
//     device, inode, link count, owner, type, mode, size and change time
//     (ctime). A step cannot set a ctime: writing, truncating, chmod,
//     chown, linking, setting an extended attribute or inode flag, adding,
//     removing or renaming an entry (which changes its directory's ctime)
//     all stamp the current time. The stamps vouch only when the newest
//     recorded ctime was older than the clock read before they were taken
//     (with a margin for file systems that store coarse times), so a change
//     in the same clock tick as the recording cannot go unseen (trusted).
//   - A file's link count must stay as copied: a step that hard-linked a
//     file elsewhere could otherwise read what the next step writes into it.
//   - The state and artifact roots (files_pool.go) compare their five
//     directories' stamps through handles held open since the stamps were
//     recorded (an fstat instead of a path lookup), and the root's through
//     its path: pooledRoot says why that proves what the paths' stamps do.
//
// Left: a change in the same clock tick as the fresh copy that alters
// neither bytes nor any stamp but ctime (an extended attribute, an ACL
// that keeps the mode bits, an inode flag) goes unseen on kernels that
// stamp with a coarse clock; with multigrain timestamps (Linux 6.13 and
// later, on the file systems that use them) such a change gets a ctime of
// its own, as the copy's stamps were read.
//
// Reused directories isolate steps no less than fresh ones: a step's
// processes are gone when it ends (only the directory of a step whose
// whole tree a supervisor killed is kept: not one started without a
// supervisor, nor one whose supervisor died, where a process that left
// the step's group may live on holding the directory), and what it left
// was either nothing or makes the directory be removed.
// (A process that escaped the supervisor's tree runs as the worker's user
// and could write into any step's directory, fresh or not, while it runs.)

// Bounds of what is kept for reuse.
const (
	maxPooledStepDirs   = 64       // idle directories kept (all revisions)
	maxPooledDirEntries = 2000     // a bigger workspace copy is not kept
	maxPooledDirBytes   = 8 << 20  // nor one holding more file bytes
	maxPooledBytes      = 64 << 20 // file bytes in all idle directories
)

// stamp is what the kernel says of one entry of a step's directory.
type stamp struct {
	rel      string // "" for the root
	dev, ino uint64
	nlink    uint64
	uid, gid uint32
	mode     fs.FileMode
	size     int64
	ctime    int64 // Unix nanoseconds
}

// stepDir is one step's working directory and what is known of it.
type stepDir struct {
	path string
	src  string // the revision's files ("" for an empty directory)
	// snap lists the entries as the step got them, the root first,
	// parents before children.
	snap []stamp
	// trusted: snap's ctimes were older than the clock when they were
	// taken, so comparing stamps decides; otherwise the content comparison
	// does.
	trusted bool
}

// dirPool holds idle step directories by source, oldest first.
type dirPool struct {
	mu    sync.Mutex
	idle  []*stepDir
	bytes int64 // file bytes in idle
}

// size is the file bytes d holds.
func (d *stepDir) size() int64 {
	var n int64
	for _, s := range d.snap {
		n += s.size
	}
	return n
}

// get takes an idle directory of src that is still as recorded, or nil;
// idle directories of src that changed while they waited are removed.
func (p *dirPool) get(src string) *stepDir {
	for {
		p.mu.Lock()
		var d *stepDir
		for i := len(p.idle) - 1; i >= 0; i-- {
			if p.idle[i].src == src {
				d = p.idle[i]
				p.idle = slices.Delete(p.idle, i, i+1)
				p.bytes -= d.size()
				break
			}
		}
		p.mu.Unlock()
		if d == nil || d.check() {
			return d
		}
		_ = removeDir(d.path)
	}
}

// put keeps d, removing the oldest idle directories while the pool is
// over its bounds.
func (p *dirPool) put(d *stepDir) {
	p.mu.Lock()
	p.idle = append(p.idle, d)
	p.bytes += d.size()
	var evicted []*stepDir
	for len(p.idle) > maxPooledStepDirs || p.bytes > maxPooledBytes {
		e := p.idle[0]
		p.idle = slices.Delete(p.idle, 0, 1)
		p.bytes -= e.size()
		evicted = append(evicted, e)
	}
	p.mu.Unlock()
	for _, e := range evicted {
		_ = removeDir(e.path)
	}
}

// drain removes every idle directory.
func (p *dirPool) drain() {
	p.mu.Lock()
	idle := p.idle
	p.idle, p.bytes = nil, 0
	p.mu.Unlock()
	for _, d := range idle {
		_ = removeDir(d.path)
	}
}

// release keeps d for a next step when it is as handed out, and removes it
// otherwise.
func (p *dirPool) release(d *stepDir) {
	if d.snap != nil && d.check() {
		p.put(d)
		return
	}
	_ = removeDir(d.path)
}

// check says whether d is as recorded: by its stamps when they are
// trusted, else by content, recording its stamps anew.
func (d *stepDir) check() bool {
	if d.trusted {
		return stampsMatch(d.path, d.snap)
	}
	since, ok := coarseNow() // before anything is read: a change from now on shows
	if !ok || !d.sameAsSource() {
		return false
	}
	snap, ok := snapshot(d.path)
	if !ok {
		return false
	}
	d.snap, d.trusted = snap, settledBefore(snap, since)
	return true
}

// sameAsSource compares the directory with the files it was copied from:
// the same entries with the same stamps as recorded, nothing more, and the
// same bytes in every file and link.
func (d *stepDir) sameAsSource() bool {
	names := snapNames(d.snap)
	for _, s := range d.snap {
		p := filepath.Join(d.path, s.rel)
		now, ok := stampOf(p, s.rel)
		if !ok || now != s {
			return false
		}
		switch {
		case s.mode.IsDir():
			if !names.same(p, s.rel) {
				return false
			}
		case s.mode&fs.ModeSymlink != 0:
			a, err1 := os.Readlink(p)
			b, err2 := os.Readlink(filepath.Join(d.src, s.rel))
			if err1 != nil || err2 != nil || a != b {
				return false
			}
		case s.mode.IsRegular():
			if !sameFile(p, filepath.Join(d.src, s.rel)) {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// snapListing is what a snapshot says each directory holds: every entry
// but the root, and how many children each directory has. Built once per
// comparison, it lets each directory's listing be checked in time linear
// in its size (a scan of the snapshot per directory, and of the snapshot
// per name, made a tree of maxPooledDirEntries cost millions of
// comparisons).
type snapListing struct {
	entries  map[string]bool // rel of every entry but the root
	children map[string]int  // a directory's rel ("." for the root) → its entries
}

func snapNames(snap []stamp) snapListing {
	l := snapListing{entries: make(map[string]bool, len(snap)), children: map[string]int{}}
	for _, s := range snap {
		if s.rel != "" {
			l.entries[s.rel] = true
			l.children[filepath.Dir(s.rel)]++
		}
	}
	return l
}

// same says whether dir holds exactly the children the snapshot records
// for rel.
func (l snapListing) same(dir, rel string) bool {
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != l.children[orDot(rel)] {
		return false
	}
	for _, e := range entries {
		if !l.entries[filepath.Join(rel, e.Name())] {
			return false
		}
	}
	return true
}

func orDot(rel string) string {
	if rel == "" {
		return "."
	}
	return rel
}

// sameFile compares two files' bytes.
func sameFile(a, b string) bool {
	fa, err := os.Open(a)
	if err != nil {
		return false
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		return false
	}
	defer fb.Close()
	var ba, bb [32 << 10]byte
	for {
		na, erra := io.ReadFull(fa, ba[:])
		nb, errb := io.ReadFull(fb, bb[:])
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			return false
		}
		endA := erra == io.EOF || erra == io.ErrUnexpectedEOF
		endB := errb == io.EOF || errb == io.ErrUnexpectedEOF
		switch {
		case endA && endB:
			return true
		case erra != nil || errb != nil:
			return false
		}
	}
}

// snapshot records the stamps of the tree at dir; false when it is too big
// to keep or cannot be read.
func snapshot(dir string) ([]stamp, bool) {
	var snap []stamp
	var bytes int64
	err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if rel == "." {
			rel = ""
		}
		s, ok := stampOf(p, rel)
		if !ok {
			return fs.ErrInvalid
		}
		snap = append(snap, s)
		bytes += s.size
		if len(snap) > maxPooledDirEntries || bytes > maxPooledDirBytes {
			return fs.ErrInvalid
		}
		return nil
	})
	return snap, err == nil
}

// settledBefore says whether every ctime in snap is older than now (a
// coarseNow reading) by more than a file system could round a stamp down:
// a change made after now gets a later ctime.
func settledBefore(snap []stamp, now int64) bool {
	if len(snap) == 0 {
		return false
	}
	margin := int64(2 * time.Second) // a file system that keeps whole seconds (or two)
	var newest int64
	for _, s := range snap {
		if s.ctime%1000 != 0 {
			margin = int64(time.Millisecond) // finer than a microsecond
		}
		newest = max(newest, s.ctime)
	}
	return newest+margin < now
}

// prepareStepDir hands out a directory for step: an idle copy of its
// revision when there is one, else a fresh copy.
func (r *ShellRunner) prepareStepDir(step Step) (*stepDir, error) {
	if d := r.dirs.get(step.Workspace); d != nil {
		return d, nil
	}
	path, err := r.prepareDir(step)
	if err != nil {
		return nil, err
	}
	d := &stepDir{path: path, src: step.Workspace}
	if snap, ok := snapshot(path); ok {
		d.snap = snap // as handed out; compared by content at the end
	}
	return d, nil
}

// Drain removes the working directories kept for reuse. Call it once no
// step runs (the worker does when it stops).
func (r *ShellRunner) Drain() { r.dirs.drain() }
