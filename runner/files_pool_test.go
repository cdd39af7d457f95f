package runner

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// newPooledRoot makes a root as prepareFiles hands it out for a step that
// found no state.
func newPooledRoot(t *testing.T) string {
	t.Helper()
	root, err := os.MkdirTemp(t.TempDir(), "step-")
	require.NoError(t, err)
	for _, d := range stepFileDirs {
		p := filepath.Join(root, d.name)
		require.NoError(t, os.Mkdir(p, 0o755))
		require.NoError(t, os.Chmod(p, 0o755)) // whatever the umask
		if d.scope != "" {
			require.NoError(t, os.Chmod(p, 0o555))
		}
	}
	t.Cleanup(func() { (&stepFiles{root: root, log: testLogger(t)}).remove() })
	return root
}

// filesRootSpoilers are the ways a step can leave its state and artifact
// root other than it got it.
func filesRootSpoilers(t *testing.T) map[string]func(root string) error {
	return map[string]func(root string) error{
		"a file in artifacts": func(root string) error {
			return os.WriteFile(filepath.Join(root, "artifacts", "x"), nil, 0o644)
		},
		"a directory in state-out": func(root string) error { return os.Mkdir(filepath.Join(root, "state-out", "d"), 0o755) },
		"a tarball left in the root": func(root string) error {
			return os.WriteFile(filepath.Join(root, "state-1.tar.gz"), nil, 0o600)
		},
		"state made writable":   func(root string) error { return os.Chmod(filepath.Join(root, "state"), 0o755) },
		"artifacts open to all": func(root string) error { return os.Chmod(filepath.Join(root, "artifacts"), 0o777) },
		"the root opened":       func(root string) error { return os.Chmod(root, 0o755) },
		"a directory gone":      func(root string) error { return os.Remove(filepath.Join(root, "global-state-out")) },
		// A lookalike holding what the next step would upload as its
		// artifact: the root, or one directory, replaced.
		"the root replaced by a lookalike": func(root string) error {
			if err := os.Rename(root, root+".old"); err != nil {
				return err
			}
			t.Cleanup(func() { (&stepFiles{root: root + ".old", log: testLogger(t)}).remove() })
			if err := os.Mkdir(root, 0o700); err != nil {
				return err
			}
			for _, d := range stepFileDirs {
				if err := os.Mkdir(filepath.Join(root, d.name), 0o755); err != nil {
					return err
				}
			}
			if err := os.WriteFile(filepath.Join(root, "artifacts", "planted"), nil, 0o644); err != nil {
				return err
			}
			for _, d := range stepFileDirs {
				if d.scope != "" {
					if err := os.Chmod(filepath.Join(root, d.name), 0o555); err != nil {
						return err
					}
				}
			}
			return nil
		},
		"artifacts replaced by a lookalike": func(root string) error {
			p := filepath.Join(root, "artifacts")
			if err := os.Rename(p, filepath.Join(t.TempDir(), "moved")); err != nil {
				return err
			}
			if err := os.Mkdir(p, 0o755); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(p, "planted"), nil, 0o644)
		},
		"a directory made a link": func(root string) error {
			p := filepath.Join(root, "artifacts")
			if err := os.Remove(p); err != nil {
				return err
			}
			return os.Symlink(t.TempDir(), p)
		},
	}
}

func TestFilesRootReusedOnlyAsHandedOut(t *testing.T) {
	t.Parallel()
	require.True(t, reusableFilesRoot(newPooledRoot(t)), "untouched")
	for name, spoil := range filesRootSpoilers(t) {
		root := newPooledRoot(t)
		require.NoError(t, spoil(root), name)
		require.False(t, reusableFilesRoot(root), name)
	}
}

func TestFilesPoolBounded(t *testing.T) {
	t.Parallel()
	var p filesPool
	for i := range maxPooledFilesRoots {
		require.True(t, p.put(pooledRoot{root: newPooledRoot(t)}), i)
	}
	require.False(t, p.put(pooledRoot{root: "one too many"}))
	_, ok := p.get(testLogger(t))
	require.True(t, ok)
}

// A step's directories serve the next step only when it left them empty:
// the second step finds the first one's directories, empty; the third,
// after a step that left an artifact behind a failure, gets new ones.
func TestWorkerReusesEmptiedStepDirectories(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t)
	startWorker(t, f, func(c *WorkerConfig) { c.MaxConcurrent = 1 })
	show := `echo "$STATE_DIR|$STATE_OUT_DIR|$ARTIFACTS_DIR"; ls -A "$STATE_DIR" "$STATE_OUT_DIR" "$GLOBAL_STATE_DIR" "$GLOBAL_STATE_OUT_DIR" "$ARTIFACTS_DIR" | grep -v -e : -e '^$' | wc -l | tr -d ' '`
	run := func(step, cmd string, ok bool) []string {
		f.enqueue(shellAssignment("job-1", step, cmd))
		c := f.waitCompletion(step)
		require.Equal(t, ok, c.Succeeded(), c.Error)
		return f.texts("job-1", step)
	}
	first := run("first", show, true)
	second := run("second", show+`; touch "$ARTIFACTS_DIR/left"; exit 3`, false)
	third := run("third", show, true)
	require.Len(t, first, 2)
	require.Equal(t, []string{first[0], "0"}, second[:2], "the same directories, empty")
	require.Len(t, third, 2)
	require.NotEqual(t, first[0], third[0], "a failed step's leftovers are removed, not reused")
	require.Equal(t, "0", third[1])
	root := filepath.Dir(strings.Split(first[0], "|")[0])
	_, err := os.Stat(root)
	require.ErrorIs(t, err, os.ErrNotExist, "the failed step's directories are gone")
}

// A root waiting in the pool is checked again when it is handed out: a
// file planted in it meanwhile (an artifact the next step would upload as
// its own, state it would read) keeps it from serving a step.
func TestFilesRootCheckedWhenHandedOut(t *testing.T) {
	t.Parallel()
	for _, settled := range []bool{false, true} {
		for name, spoil := range filesRootSpoilers(t) {
			root := newPooledRoot(t)
			f := &stepFiles{root: root, log: testLogger(t), pool: &filesPool{}}
			f.cleanup()
			require.Len(t, f.pool.roots, 1, name)
			if settled {
				require.Eventually(t, func() bool { return stampsOlderThanNow(f.pool.roots[0].stamps) }, time.Minute, time.Millisecond)
			}
			require.NoError(t, spoil(root), name)
			_, ok := f.pool.get(testLogger(t))
			require.False(t, ok, "%s (settled: %v): not handed out", name, settled)
			require.NoDirExists(t, root, name)
		}
	}
}

// A step whose supervisor died (here: killed by the step) may have left a
// process behind that still holds its directories: they are removed, not
// handed to the next step.
func TestWorkerDoesNotReuseDirectoriesOfAnUnsweptStep(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t)
	startWorker(t, f, func(c *WorkerConfig) { c.MaxConcurrent = 1 })
	show := `echo "$ARTIFACTS_DIR"`
	run := func(step, cmd string) string {
		f.enqueue(shellAssignment("job-1", step, cmd))
		f.waitCompletion(step)
		texts := f.texts("job-1", step)
		require.NotEmpty(t, texts, step)
		return texts[0]
	}
	first := run("first", show+"; kill -KILL $PPID; sleep 5")
	second := run("second", show)
	require.NotEqual(t, first, second)
	require.NoDirExists(t, first)
}

// stampsOlderThanNow says whether every ctime in snap is older than the
// clock file systems stamp changes with (settledBefore): from then on the
// stamps vouch for the directory.
func stampsOlderThanNow(snap []stamp) bool {
	now, ok := coarseNow()
	return ok && settledBefore(snap, now)
}
