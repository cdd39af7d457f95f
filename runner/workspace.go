package runner

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Limits of workspace archives (a workspace is scripts and YAML: these are
// generous, and stop a broken or hostile server from filling the disk).
const (
	DefaultMaxWorkspaceBytes   = 512 << 20
	DefaultMaxWorkspaceEntries = 100_000
	// DefaultKeepRevisions is how many unused revisions stay cached.
	DefaultKeepRevisions = 8
	// downloadTimeout bounds one archive download.
	downloadTimeout = 10 * time.Minute
)

// FetchFunc downloads the tar.gz archive of workspace ws at revision.
type FetchFunc func(ctx context.Context, ws, revision string) (io.ReadCloser, error)

// WorkspaceCache keeps the workspace files of each revision a worker needs,
// extracted under Dir/<revision>/. A revision is downloaded once, however
// many steps ask for it at the same time, and a download that fails is not
// remembered (the next step tries again). Extraction is safe: absolute
// paths, ".." components, links leading outside the workspace, device files
// and fifos are refused, and the total size and number of entries are capped.
// An archive is extracted into a temporary directory, verified, and renamed
// into place, so a revision directory is always complete.
type WorkspaceCache struct {
	dir   string
	fetch FetchFunc
	log   *slog.Logger

	// MaxBytes and MaxEntries cap one archive (defaults above).
	MaxBytes   int64
	MaxEntries int
	// Keep is how many revisions not in use stay on disk (default
	// DefaultKeepRevisions); older ones are removed after a download.
	Keep int

	mu       sync.Mutex
	inflight map[string]*download
	inUse    map[string]int
}

// download is one archive being fetched; callers wait on done.
type download struct {
	done    chan struct{}
	err     error
	waiters int
	cancel  context.CancelFunc
}

// NewWorkspaceCache returns a cache under dir that downloads with fetch.
func NewWorkspaceCache(dir string, fetch FetchFunc, log *slog.Logger) *WorkspaceCache {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &WorkspaceCache{dir: dir, fetch: fetch, log: log,
		inflight: map[string]*download{}, inUse: map[string]int{}}
}

// validRevision says whether revision is a name the cache may use as a
// directory: 1 to 128 of A–Z, a–z, 0–9, ".", "_", "-", not starting with
// one of the last three. (A regular expression took 2% of the worker's CPU
// per step in the bench.)
func validRevision(revision string) bool {
	if len(revision) == 0 || len(revision) > 128 {
		return false
	}
	for i := 0; i < len(revision); i++ {
		c := revision[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '.' && c != '_' && c != '-') {
			return false
		}
	}
	return true
}

// Acquire returns the directory holding the files of workspace ws at
// revision, downloading them first if needed. The directory must not be
// modified; call release once done with it (it is then eligible for
// removal).
func (c *WorkspaceCache) Acquire(ctx context.Context, ws, revision string) (dir string, release func(), err error) {
	if !validRevision(revision) {
		return "", nil, fmt.Errorf("workspace %s: invalid revision %q", ws, revision)
	}
	final := filepath.Join(c.dir, revision)
	c.mu.Lock()
	for {
		if fi, err := os.Lstat(final); err == nil && fi.IsDir() {
			c.inUse[revision]++
			c.mu.Unlock()
			var once sync.Once
			return final, func() { once.Do(func() { c.release(revision) }) }, nil
		}
		d := c.inflight[revision]
		if d == nil {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), downloadTimeout)
			d = &download{done: make(chan struct{}), cancel: cancel}
			c.inflight[revision] = d
			go c.download(dctx, d, ws, revision, final)
		}
		d.waiters++
		c.mu.Unlock()
		select {
		case <-d.done:
		case <-ctx.Done():
		}
		c.mu.Lock()
		d.waiters--
		if ctx.Err() != nil {
			if d.waiters == 0 {
				d.cancel() // nobody wants it any more
			}
			c.mu.Unlock()
			return "", nil, fmt.Errorf("workspace %s@%s: %w", ws, revision, context.Cause(ctx))
		}
		if d.err != nil {
			c.mu.Unlock()
			return "", nil, d.err
		}
		// Downloaded: loop to take the directory under the lock.
	}
}

func (c *WorkspaceCache) release(revision string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inUse[revision]--; c.inUse[revision] <= 0 {
		delete(c.inUse, revision)
	}
}

// download fetches, extracts, verifies and installs one revision.
func (c *WorkspaceCache) download(ctx context.Context, d *download, ws, revision, final string) {
	defer d.cancel()
	start := time.Now()
	err := c.install(ctx, ws, revision, final)
	if err != nil {
		err = fmt.Errorf("workspace %s@%s: %w", ws, revision, err)
	} else {
		c.log.Info("workspace downloaded", "workspace", ws, "revision", revision, "duration", time.Since(start))
	}
	c.mu.Lock()
	d.err = err
	delete(c.inflight, revision)
	c.mu.Unlock()
	close(d.done)
	if err == nil {
		c.prune()
	}
}

func (c *WorkspaceCache) install(ctx context.Context, ws, revision, final string) error {
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return err
	}
	rc, err := c.fetch(ctx, ws, revision)
	if err != nil {
		return err
	}
	defer rc.Close()
	tmp, err := os.MkdirTemp(c.dir, ".tmp-"+revision+"-")
	if err != nil {
		return err
	}
	defer func() { _ = removeDir(tmp) }() // a no-op once renamed
	if err := Extract(rc, tmp, c.limits()); err != nil {
		return err
	}
	if err := Verify(tmp, c.limits()); err != nil {
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		if fi, serr := os.Lstat(final); serr == nil && fi.IsDir() {
			return nil // another process of this worker's work_dir won the race
		}
		return err
	}
	return nil
}

func (c *WorkspaceCache) limits() Limits {
	l := Limits{MaxBytes: c.MaxBytes, MaxEntries: c.MaxEntries}
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxWorkspaceBytes
	}
	if l.MaxEntries <= 0 {
		l.MaxEntries = DefaultMaxWorkspaceEntries
	}
	return l
}

// prune removes the least recently installed revisions beyond Keep that no
// step is using.
func (c *WorkspaceCache) prune() {
	keep := c.Keep
	if keep <= 0 {
		keep = DefaultKeepRevisions
	}
	entries, err := os.ReadDir(c.dir)
	if err != nil {
		return
	}
	type rev struct {
		name string
		mod  time.Time
	}
	var revs []rev
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if fi, err := e.Info(); err == nil {
			revs = append(revs, rev{e.Name(), fi.ModTime()})
		}
	}
	if len(revs) <= keep {
		return
	}
	sort.Slice(revs, func(i, j int) bool { return revs[i].mod.After(revs[j].mod) })
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range revs[keep:] {
		if c.inUse[r.name] > 0 || c.inflight[r.name] != nil {
			continue
		}
		if err := removeDir(filepath.Join(c.dir, r.name)); err != nil {
			c.log.Warn("remove old workspace revision", "revision", r.name, "err", err)
		}
	}
}

// Limits caps an archive.
type Limits struct {
	MaxBytes   int64 // total bytes of regular files
	MaxEntries int
}

// ErrUnsafeArchive marks an archive refused for its content.
var ErrUnsafeArchive = errors.New("unsafe workspace archive")

func unsafeErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnsafeArchive, fmt.Sprintf(format, args...))
}

// Extract unpacks a tar.gz stream into dst (an existing, empty directory).
// Every write goes through an os.Root confined to dst, so even a symlink
// planted by an earlier entry cannot redirect a later one outside. Refused
// with ErrUnsafeArchive: absolute names, ".." components, symlinks whose
// target is absolute or leads outside, hard links to anything but a regular
// file extracted before, device files and fifos, duplicate names, and
// archives over the limits.
func Extract(r io.Reader, dst string, lim Limits) error {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("read archive: %w", err)
	}
	defer gz.Close()
	root, err := os.OpenRoot(dst)
	if err != nil {
		return err
	}
	defer root.Close()
	tr := tar.NewReader(gz)
	var total int64
	entries := 0
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read archive: %w", err)
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		if entries++; entries > lim.MaxEntries {
			return unsafeErr("more than %d entries", lim.MaxEntries)
		}
		name, err := entryName(hdr.Name)
		if err != nil {
			return err
		}
		if name == "." {
			continue
		}
		if err := root.MkdirAll(path.Dir(name), 0o755); err != nil && path.Dir(name) != "." {
			return fmt.Errorf("entry %s: %w", hdr.Name, err)
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(name, 0o755); err != nil {
				return fmt.Errorf("entry %s: %w", hdr.Name, err)
			}
		case tar.TypeReg, tar.TypeRegA:
			if hdr.Size < 0 || total+hdr.Size > lim.MaxBytes {
				return unsafeErr("larger than %d bytes", lim.MaxBytes)
			}
			// O_EXCL: never write through an existing file or symlink.
			f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fs.FileMode(hdr.Mode)&0o755|0o600)
			if err != nil {
				return fmt.Errorf("entry %s: %w", hdr.Name, err)
			}
			n, err := io.Copy(f, io.LimitReader(tr, lim.MaxBytes-total+1))
			cerr := f.Close()
			total += n
			if total > lim.MaxBytes {
				return unsafeErr("larger than %d bytes", lim.MaxBytes)
			}
			if err != nil {
				return fmt.Errorf("entry %s: %w", hdr.Name, err)
			}
			if cerr != nil {
				return fmt.Errorf("entry %s: %w", hdr.Name, cerr)
			}
		case tar.TypeSymlink:
			target := hdr.Linkname
			if target == "" || path.IsAbs(target) || strings.ContainsRune(target, 0) {
				return unsafeErr("symlink %s points to %q, outside the workspace", hdr.Name, target)
			}
			if !filepath.IsLocal(path.Join(path.Dir(name), target)) {
				return unsafeErr("symlink %s points to %q, outside the workspace", hdr.Name, target)
			}
			if err := root.Symlink(target, name); err != nil {
				return fmt.Errorf("entry %s: %w", hdr.Name, err)
			}
		case tar.TypeLink:
			target, err := entryName(hdr.Linkname)
			if err != nil || target == "." {
				return unsafeErr("hard link %s points to %q, outside the workspace", hdr.Name, hdr.Linkname)
			}
			fi, err := root.Lstat(target)
			if err != nil || !fi.Mode().IsRegular() {
				return unsafeErr("hard link %s points to %q, which is not a file of the archive", hdr.Name, hdr.Linkname)
			}
			if err := root.Link(target, name); err != nil {
				return fmt.Errorf("entry %s: %w", hdr.Name, err)
			}
		default:
			return unsafeErr("entry %s is a %s (only files, directories and links are allowed)", hdr.Name, typeName(hdr.Typeflag))
		}
	}
}

func typeName(t byte) string {
	switch t {
	case tar.TypeChar:
		return "character device"
	case tar.TypeBlock:
		return "block device"
	case tar.TypeFifo:
		return "fifo"
	}
	return fmt.Sprintf("special entry (type %q)", string(t))
}

// entryName checks an archive name and returns it cleaned, slash-separated.
func entryName(name string) (string, error) {
	if name == "" || strings.ContainsRune(name, 0) {
		return "", unsafeErr("entry with an empty or invalid name")
	}
	if strings.HasPrefix(name, "/") || filepath.IsAbs(name) {
		return "", unsafeErr("entry %s has an absolute path", name)
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return "", unsafeErr("entry %s leaves the workspace (..)", name)
		}
	}
	clean := path.Clean(name)
	if clean != "." && !filepath.IsLocal(clean) {
		return "", unsafeErr("entry %s leaves the workspace", name)
	}
	return clean, nil
}

// Verify checks an extracted tree: only directories, regular files and
// symlinks that really resolve inside dir (following chains of links, which
// a lexical check cannot see), and at most lim bytes and entries.
func Verify(dir string, lim Limits) error {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return err
	}
	var total int64
	entries := 0
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if entries++; entries > lim.MaxEntries+1 {
			return unsafeErr("more than %d entries", lim.MaxEntries)
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch m := fi.Mode(); {
		case m.IsDir():
		case m.IsRegular():
			if total += fi.Size(); total > lim.MaxBytes {
				return unsafeErr("larger than %d bytes", lim.MaxBytes)
			}
		case m&fs.ModeSymlink != 0:
			if !resolvesInside(real, p) {
				rel, _ := filepath.Rel(dir, p)
				return unsafeErr("symlink %s resolves outside the workspace", rel)
			}
		default:
			rel, _ := filepath.Rel(dir, p)
			return unsafeErr("%s is a special file (%s)", rel, m.Type())
		}
		return nil
	})
}

// resolvesInside reports whether symlink p, fully resolved, stays within
// root. A dangling link is judged by the nearest existing directory on its
// way.
func resolvesInside(root, p string) bool {
	if real, err := filepath.EvalSymlinks(p); err == nil {
		return within(root, real)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false
	}
	target, err := os.Readlink(p)
	if err != nil || filepath.IsAbs(target) {
		return false
	}
	for q := filepath.Dir(filepath.Join(filepath.Dir(p), target)); ; q = filepath.Dir(q) {
		real, err := filepath.EvalSymlinks(q)
		if err == nil {
			return within(root, real)
		}
		if !errors.Is(err, fs.ErrNotExist) || q == filepath.Dir(q) {
			return false
		}
	}
}

func within(root, p string) bool {
	rel, err := filepath.Rel(root, p)
	return err == nil && (rel == "." || filepath.IsLocal(rel))
}

// copyTree copies the files of src into the existing directory dst:
// directories, regular files with their permission bits, and symlinks as
// symlinks.
// workflowsDir holds a workspace's definitions (workspace.WorkflowsDir; the
// worker does not import the server-side workspace package).
const workflowsDir = ".workflows"

func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil || rel == "." {
			return err
		}
		target := filepath.Join(dst, rel)
		switch t := d.Type(); {
		case t.IsDir() && rel == workflowsDir:
			return filepath.SkipDir // definitions, not files steps use
		case t.IsDir():
			return os.Mkdir(target, 0o755)
		case t&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case t.IsRegular():
			fi, err := d.Info()
			if err != nil {
				return err
			}
			return copyFile(p, target, fi.Mode().Perm())
		}
		return nil // nothing else passes Verify
	})
}

// copyFile copies one file. It holds syscall.ForkLock for reading while the
// copy is open for writing: a process forked meanwhile by another step would
// otherwise inherit the write descriptor until its exec, and executing the
// copied script would fail with "text file busy" (ETXTBSY, golang/go#22315).
func copyFile(src, dst string, perm fs.FileMode) error {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil { // copy_file_range on Linux
		_ = out.Close()
		return err
	}
	return out.Close()
}

// removeDir removes a tree, also one whose directories a step made
// read-only.
func removeDir(dir string) error {
	err := os.RemoveAll(dir)
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o700)
		}
		return nil
	})
	return os.RemoveAll(dir)
}
