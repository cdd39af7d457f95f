//go:build linux

package runner

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
)

// newRevision makes a workspace revision as the cache holds it.
func newRevision(t *testing.T) string {
	t.Helper()
	ws := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(ws, "lib", "deep"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(ws, "run.sh"), []byte("#!/bin/sh\necho run\n"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(ws, "lib", "data.txt"), []byte("abc\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(ws, "lib", "deep", "x"), []byte("x"), 0o644))
	require.NoError(t, os.Symlink("lib/data.txt", filepath.Join(ws, "link")))
	return ws
}

// listing is a tree's names, modes and contents, to compare a step's
// directory with its revision.
func listing(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		require.NoError(t, err)
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		fi, err := d.Info()
		require.NoError(t, err)
		v := fi.Mode().String()
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			l, err := os.Readlink(p)
			require.NoError(t, err)
			v += " -> " + l
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			require.NoError(t, err)
			v += " " + string(b)
		}
		out[rel] = v
		return nil
	}))
	return out
}

// The ways a step can leave its directory other than it found it; each
// must keep the directory from serving another step, whether the end of
// the step is judged by content or by inode stamps.
var spoilers = map[string]string{
	"a file appended to":           "echo more >> lib/data.txt",
	"a file rewritten, same size":  "printf 'xyz\\n' > lib/data.txt",
	"a file made executable":       "chmod +x lib/data.txt",
	"a file added":                 "touch new",
	"a file added deep down":       "touch lib/deep/new",
	"a file removed":               "rm lib/deep/x",
	"a file renamed":               "mv lib/deep/x lib/deep/y",
	"a file replaced, same size":   "printf 'xyz\\n' > t && mv t lib/data.txt",
	"a directory removed":          "rm -r lib/deep",
	"a link retargeted":            "ln -sfn run.sh link",
	"a directory made read-only":   "chmod 555 lib",
	"the root opened to everybody": "chmod 777 .",
	"a directory added":            "mkdir d",
	// Lookalikes: the same names, modes and bytes, other inodes.
	"the root replaced by a copy":              `d="$PWD" && mv "$d" "$d.old" && cp -a "$d.old" "$d"`,
	"a directory replaced by a link to a copy": `cp -a lib ../lib.copy && rm -r lib && ln -s "$PWD/../lib.copy" lib`,
}

func TestStepDirReusedOnlyAsHandedOut(t *testing.T) {
	t.Parallel()
	ws := newRevision(t)
	want := listing(t, ws)
	for _, trusted := range []bool{false, true} {
		for name, spoil := range spoilers {
			r := newShell(t)
			// A first step that changes nothing: its directory is kept.
			res, c := run(t, r, Step{Workspace: ws, Spec: stroem.StepSpec{Cmd: "pwd"}})
			require.True(t, res.Succeeded(), res.Error)
			first := c.texts(stroem.Stdout)[0]
			require.DirExists(t, first, name)
			if trusted {
				// Once the clock has moved past its stamps, the next step's
				// end is judged by them alone.
				require.Eventually(t, func() bool { return stampsOlderThanNow(r.dirs.idle[0].snap) }, time.Minute, time.Millisecond)
			}
			d := r.dirs.get(ws)
			require.NotNil(t, d)
			require.Equal(t, first, d.path)
			if trusted {
				require.True(t, d.trusted, name)
			} else {
				d.trusted = false // as when its stamps are too recent: judged by content
			}
			require.Equal(t, want, listing(t, d.path), "%s: handed out as the revision", name)

			cmd := exec.Command("/bin/sh", "-c", spoil)
			cmd.Dir = d.path
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, "%s: %s", name, out)
			r.dirs.release(d)
			require.NoDirExists(t, d.path, "%s (trusted stamps: %v): removed", name, trusted)
			require.Empty(t, r.dirs.idle, name)

			// The next step gets a fresh copy of the revision.
			res, c = run(t, r, Step{Workspace: ws, Spec: stroem.StepSpec{Cmd: "pwd; ls -lR >/dev/null"}})
			require.True(t, res.Succeeded(), res.Error)
			require.NotEqual(t, first, c.texts(stroem.Stdout)[0])
			r.Drain()
		}
	}
}

// A directory is named after the revision it holds, never after the step
// that first ran in it: it serves steps of other jobs too.
func TestStepDirNamedAfterItsRevision(t *testing.T) {
	t.Parallel()
	ws := newRevision(t)
	r := newShell(t)
	t.Cleanup(r.Drain)
	var dirs []string
	for i, job := range []string{"job-aaaa", "job-bbbb", "job-cccc"} {
		res, c := run(t, r, Step{JobID: job, Name: "step-" + job, Attempt: i + 1, Workspace: ws,
			Spec: stroem.StepSpec{Cmd: `pwd; echo "$STROEM_JOB_ID $STROEM_STEP $STROEM_ATTEMPT"`}})
		require.True(t, res.Succeeded(), res.Error)
		out := c.texts(stroem.Stdout)
		require.Equal(t, fmt.Sprintf("%s step-%s %d", job, job, i+1), out[1], "the step learns who it is from its environment")
		dirs = append(dirs, out[0])
	}
	require.Equal(t, []string{dirs[0], dirs[0], dirs[0]}, dirs, "one directory served the three jobs")
	base := filepath.Base(dirs[0])
	require.True(t, strings.HasPrefix(base, "rev-"+filepath.Base(ws)+"-"), base)
	require.NotContains(t, base, "job")

	res, c := run(t, r, Step{JobID: "job-dddd", Name: "s", Attempt: 1, Spec: stroem.StepSpec{Cmd: "pwd"}})
	require.True(t, res.Succeeded(), res.Error)
	require.True(t, strings.HasPrefix(filepath.Base(c.texts(stroem.Stdout)[0]), "empty-"), "without workspace files")
}

func TestStepDirServesStepsOfItsRevision(t *testing.T) {
	t.Parallel()
	ws := newRevision(t)
	other := t.TempDir()
	r := newShell(t)
	t.Cleanup(r.Drain)
	dirs := map[string]bool{}
	for i := range 5 {
		res, c := run(t, r, Step{Workspace: ws, Spec: stroem.StepSpec{Script: "run.sh"}})
		require.True(t, res.Succeeded(), res.Error)
		require.Equal(t, []string{"run"}, c.texts(stroem.Stdout), "step %d", i)
		res, c = run(t, r, Step{Workspace: ws, Spec: stroem.StepSpec{Cmd: "pwd; cat lib/data.txt"}})
		require.True(t, res.Succeeded(), res.Error)
		out := c.texts(stroem.Stdout)
		require.Equal(t, "abc", out[1], "the files as in the revision")
		dirs[out[0]] = true
		res, c = run(t, r, Step{Workspace: other, Spec: stroem.StepSpec{Cmd: "ls -A"}})
		require.True(t, res.Succeeded(), res.Error)
		require.Empty(t, c.texts(stroem.Stdout), "another revision's step never gets this revision's directory")
	}
	require.Len(t, dirs, 1, "one directory served every step of the revision")
	entries, err := os.ReadDir(r.WorkDir)
	require.NoError(t, err)
	require.Len(t, entries, 2, "one idle directory per revision")
}

func TestStepDirPoolBounded(t *testing.T) {
	t.Parallel()
	r := newShell(t)
	var paths []string
	var ds []*stepDir
	for range maxPooledStepDirs + 3 {
		d, err := r.prepareStepDir(Step{JobID: "j", Name: "s", Attempt: 1})
		require.NoError(t, err)
		ds = append(ds, d)
		paths = append(paths, d.path)
	}
	for _, d := range ds {
		r.dirs.release(d)
	}
	require.Len(t, r.dirs.idle, maxPooledStepDirs)
	for _, p := range paths[:3] {
		require.NoDirExists(t, p, "the oldest are removed")
	}
	r.Drain()
	entries, err := os.ReadDir(r.WorkDir)
	require.NoError(t, err)
	require.Empty(t, entries)
}

func TestStepDirTooBigNotKept(t *testing.T) {
	t.Parallel()
	ws := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(ws, "big"), []byte(strings.Repeat("x", maxPooledDirBytes+1)), 0o644))
	r := newShell(t)
	res, c := run(t, r, Step{Workspace: ws, Spec: stroem.StepSpec{Cmd: "pwd"}})
	require.True(t, res.Succeeded(), res.Error)
	require.NoDirExists(t, c.texts(stroem.Stdout)[0])
	require.Empty(t, r.dirs.idle)
}

// A state and artifact root kept with trusted stamps is judged by them:
// every way of spoiling it (filesRootSpoilers) makes it
// be removed, and an untouched one goes back to the pool with its
// directories seen empty without listing them.
func TestFilesRootJudgedByStamps(t *testing.T) {
	t.Parallel()
	trustedFiles := func(root string) *stepFiles {
		stamps, dirs := filesRootStamps(root)
		require.Len(t, stamps, 1+len(stepFileDirs))
		require.Len(t, dirs, len(stepFileDirs), "the directories held open")
		require.Eventually(t, func() bool { return stampsOlderThanNow(stamps) }, time.Minute, time.Millisecond)
		f := &stepFiles{root: root, log: testLogger(t), pool: &filesPool{}, reused: true, stamps: stamps, dirs: dirs, trusted: true}
		t.Cleanup(func() { f.pool.drain(testLogger(t)) })
		return f
	}
	f := trustedFiles(newPooledRoot(t))
	for _, d := range stepFileDirs {
		empty, err := f.empty(f.dir(d.name))
		require.NoError(t, err)
		require.True(t, empty, d.name)
	}
	f.cleanup()
	require.Len(t, f.pool.roots, 1, "untouched: kept")
	require.Equal(t, f.stamps, f.pool.roots[0].stamps)

	// Stamps that moved are no verdict: the listing decides (a file made
	// and removed again leaves the directory as handed out).
	f = trustedFiles(newPooledRoot(t))
	p := filepath.Join(f.root, "state-out", "x")
	require.NoError(t, os.WriteFile(p, nil, 0o644))
	require.NoError(t, os.Remove(p))
	f.cleanup()
	require.Len(t, f.pool.roots, 1, "empty again: kept")
	require.NotEqual(t, f.stamps, f.pool.roots[0].stamps, "with its new stamps")

	for name, spoil := range filesRootSpoilers(t) {
		f := trustedFiles(newPooledRoot(t))
		require.NoError(t, spoil(f.root), name)
		if name == "a file in artifacts" {
			empty, err := f.empty(f.dir("artifacts"))
			require.NoError(t, err)
			require.False(t, empty, name)
		}
		// Whatever the spoiler did, the stamps never call a directory
		// empty that a listing of its path does not find empty.
		for _, d := range stepFileDirs {
			empty, err := f.empty(f.dir(d.name))
			listed, lerr := dirEmpty(f.dir(d.name))
			if err == nil && empty {
				require.NoError(t, lerr, "%s: %s", name, d.name)
				require.True(t, listed, "%s: %s", name, d.name)
			}
		}
		f.cleanup()
		require.Empty(t, f.pool.roots, name)
		require.NoDirExists(t, f.root, name)
	}
}

func TestStepDirPoolBoundedInBytes(t *testing.T) {
	t.Parallel()
	var p dirPool
	var paths []string
	for i := range 10 {
		path := filepath.Join(t.TempDir(), "d")
		require.NoError(t, os.Mkdir(path, 0o700))
		paths = append(paths, path)
		p.put(&stepDir{path: path, src: "ws", snap: []stamp{{size: 10 << 20}}}) // as recorded: 10 MiB of files
		require.LessOrEqual(t, p.bytes, int64(maxPooledBytes), i)
	}
	require.Len(t, p.idle, maxPooledBytes/(10<<20))
	for i, path := range paths {
		if i < len(paths)-len(p.idle) {
			require.NoDirExists(t, path, "the oldest are removed")
		} else {
			require.DirExists(t, path)
		}
	}
	// Their made-up stamps do not match the directories: get removes
	// each one it takes, and counts its bytes out.
	require.Nil(t, p.get("ws"))
	require.Empty(t, p.idle)
	require.Zero(t, p.bytes)
	for _, path := range paths {
		require.NoDirExists(t, path)
	}
	p.drain()
	require.Zero(t, p.bytes)
}

// A directory waiting in the pool is checked again when it is handed out:
// whatever changed it meanwhile (a later step of another revision, running
// as the same user, writing into work_dir/steps) keeps it from serving a
// step, which gets a fresh copy of the revision instead.
func TestStepDirCheckedWhenHandedOut(t *testing.T) {
	t.Parallel()
	ws := newRevision(t)
	want := listing(t, ws)
	for name, spoil := range spoilers {
		r := newShell(t)
		res, c := run(t, r, Step{Workspace: ws, Spec: stroem.StepSpec{Cmd: "pwd"}})
		require.True(t, res.Succeeded(), res.Error)
		idle := c.texts(stroem.Stdout)[0]
		require.Len(t, r.dirs.idle, 1, name)
		require.Eventually(t, func() bool { return stampsOlderThanNow(r.dirs.idle[0].snap) }, time.Minute, time.Millisecond)

		cmd := exec.Command("/bin/sh", "-c", spoil)
		cmd.Dir = idle
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s: %s", name, out)

		d, err := r.prepareStepDir(Step{Workspace: ws})
		require.NoError(t, err)
		require.NotEqual(t, idle, d.path, "%s: the changed directory is not handed out", name)
		require.Equal(t, want, listing(t, d.path), "%s: a copy of the revision", name)
		require.NoDirExists(t, idle, "%s: removed", name)
		r.dirs.release(d)
		r.Drain()
	}
}

// A step that hard-links one of its files elsewhere keeps a way into the
// directory after it ended (and sees what the next step writes into that
// file): the directory is not reused.
func TestStepDirHardLinkedOutNotReused(t *testing.T) {
	t.Parallel()
	ws := newRevision(t)
	out := filepath.Join(t.TempDir(), "x")
	r := newShell(t)
	t.Cleanup(r.Drain)
	res, c := run(t, r, Step{Workspace: ws, Spec: stroem.StepSpec{Cmd: "pwd; ln lib/data.txt " + out}})
	require.True(t, res.Succeeded(), res.Error)
	require.NoDirExists(t, c.texts(stroem.Stdout)[0])
	require.Empty(t, r.dirs.idle)
}

// A directory is reused only after a supervisor swept the step's whole
// process tree: a step started without one, or one that killed its
// supervisor, may have left a process (setsid, outside the group) that
// still holds the directory and could change it after it is handed out
// again.
func TestStepDirNotReusedWithoutSweep(t *testing.T) {
	t.Parallel()
	ws := newRevision(t)
	for name, tc := range map[string]struct {
		noSupervisor bool
		cmd          string
	}{
		"no supervisor":          {noSupervisor: true, cmd: "pwd"},
		"the supervisor, killed": {cmd: "pwd; kill -KILL $PPID; sleep 5"},
	} {
		r := newShell(t)
		r.NoSupervisor = tc.noSupervisor
		res, c := run(t, r, Step{Workspace: ws, Spec: stroem.StepSpec{Cmd: tc.cmd}})
		if tc.noSupervisor {
			require.True(t, res.Succeeded(), res.Error)
		}
		require.NoDirExists(t, c.texts(stroem.Stdout)[0], name)
		require.Empty(t, r.dirs.idle, name)
	}
}

// wideRevision makes a revision of n entries: dirs directories, each with
// the same file names, so a name alone says nothing of where it belongs.
func wideRevision(t testing.TB, dirs, files int) string {
	t.Helper()
	ws := t.TempDir()
	for d := range dirs {
		dir := filepath.Join(ws, "d"+strconv.Itoa(d))
		require.NoError(t, os.Mkdir(dir, 0o755))
		for f := range files {
			require.NoError(t, os.WriteFile(filepath.Join(dir, "f"+strconv.Itoa(f)), []byte("x"), 0o644))
		}
	}
	return ws
}

// handedOut is a copy of ws as a step gets it, judged by content.
func handedOut(t testing.TB, ws string) *stepDir {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "step")
	require.NoError(t, os.Mkdir(dir, 0o755))
	require.NoError(t, copyTree(ws, dir))
	snap, ok := snapshot(dir)
	require.True(t, ok, "within the bounds")
	return &stepDir{path: dir, src: ws, snap: snap}
}

// A directory's listing must be exactly what the snapshot recorded for
// that directory: the right number of names is not enough, nor names that
// the snapshot holds elsewhere in the tree. Checked on the largest tree
// that is kept (whose listing is compared in linear time).
func TestStepDirListingComparedPerDirectory(t *testing.T) {
	t.Parallel()
	// 39 directories of 50 files and the root: 1,990 entries, close to
	// maxPooledDirEntries.
	ws := wideRevision(t, 39, 50)
	for name, change := range map[string]func(dir string) error{
		"unchanged": func(string) error { return nil },
		"a file renamed to a name its neighbour directory has": func(dir string) error {
			require.NoError(t, os.Remove(filepath.Join(dir, "d1", "f49")))
			return os.WriteFile(filepath.Join(dir, "d2", "f50"), []byte("x"), 0o644) // d1 has one less, d2 one more
		},
		"a file moved to another directory": func(dir string) error {
			return os.Rename(filepath.Join(dir, "d3", "f7"), filepath.Join(dir, "d30", "f7x"))
		},
		"a file swapped for a directory's name": func(dir string) error {
			require.NoError(t, os.Remove(filepath.Join(dir, "d38", "f0")))
			return os.WriteFile(filepath.Join(dir, "d38", "d1"), []byte("x"), 0o644) // d1 exists, at the root
		},
		"a file added at the root": func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "f0"), []byte("x"), 0o644) // f0 exists, one level down
		},
	} {
		d := handedOut(t, ws)
		require.Equal(t, 1990, len(d.snap), name)
		require.NoError(t, change(d.path), name)
		// The stamps of the changed directories differ too; compare the
		// names alone, as the content comparison does for each directory.
		l := snapNames(d.snap)
		same := true
		for _, s := range d.snap {
			if s.mode.IsDir() && !l.same(filepath.Join(d.path, s.rel), s.rel) {
				same = false
			}
		}
		require.Equal(t, name == "unchanged", same, name)
		require.Equal(t, name == "unchanged", d.sameAsSource(), name)
	}
}

// BenchmarkStepDirListing: the listings' part of the content comparison,
// for the largest trees that are kept: one flat directory, and directories
// of 50.
func BenchmarkStepDirListing(b *testing.B) {
	for _, shape := range []struct{ dirs, files int }{{1, maxPooledDirEntries - 2}, {39, 50}} {
		d := handedOut(b, wideRevision(b, shape.dirs, shape.files))
		b.Run(fmt.Sprintf("%dx%d", shape.dirs, shape.files), func(b *testing.B) {
			for b.Loop() {
				l := snapNames(d.snap)
				for _, s := range d.snap {
					if s.mode.IsDir() && !l.same(filepath.Join(d.path, s.rel), s.rel) {
						b.Fatal("changed")
					}
				}
			}
		})
	}
}
