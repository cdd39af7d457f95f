package workspace

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/stroemtest"
)

type registryBundle struct {
	reg  *Registry
	dir  string // the folder workspace "main"
	file string // the single-file workspace "single"
	logs *stroemtest.Buffer
}

func setupRegistry(t *testing.T) *registryBundle {
	t.Helper()
	dir := copyCompat(t)
	single := filepath.Join(t.TempDir(), "one.yaml")
	require.NoError(t, os.WriteFile(single, []byte("actions:\n  a: { cmd: echo }\n"), 0o644))
	logs := &stroemtest.Buffer{}
	reg := NewRegistry(map[string]string{
		"main":    dir,
		"single":  single,
		"missing": filepath.Join(dir, "nope"),
	}, slog.New(slog.NewTextHandler(logs, nil)))
	return &registryBundle{reg: reg, dir: dir, file: single, logs: logs}
}

func TestRegistryGetList(t *testing.T) {
	t.Parallel()
	b := setupRegistry(t)

	main := b.reg.Get("main")
	require.NotNil(t, main)
	require.Equal(t, "main", main.Name, "the configured name replaces the folder's")
	require.Empty(t, main.Problems)
	require.Len(t, main.Tasks, 2)
	require.Equal(t, "single", b.reg.Get("single").Name)
	require.Nil(t, b.reg.Get("other"))

	// A workspace that cannot be read is served empty, its error as a problem.
	missing := b.reg.Get("missing")
	require.NotNil(t, missing)
	require.Empty(t, missing.Tasks)
	require.Len(t, missing.Problems, 1)
	require.Contains(t, missing.Problems[0].Message, "no such file or directory")
	require.Contains(t, b.logs.String(), "workspace cannot be loaded")

	var names []string
	for _, ws := range b.reg.List() {
		names = append(names, ws.Name)
	}
	require.Equal(t, []string{"main", "missing", "single"}, names)
}

func TestRegistryReload(t *testing.T) {
	t.Parallel()
	b := setupRegistry(t)
	var hooked []*Workspace
	var mu sync.Mutex
	b.reg.OnReload(func(ws *Workspace) {
		mu.Lock()
		defer mu.Unlock()
		hooked = append(hooked, ws)
	})
	hooks := func() []*Workspace {
		mu.Lock()
		defer mu.Unlock()
		return append([]*Workspace(nil), hooked...)
	}

	// Nothing changed: the same workspace, no hook.
	before := b.reg.Get("main")
	same, err := b.reg.Reload("main")
	require.NoError(t, err)
	require.Same(t, before, same)
	require.Empty(t, hooks())

	// A change with a problem: the valid parts are swapped in, the problem
	// is logged once, the hook sees the new workspace.
	editFile(t, b.dir, hello, "action: greet", "action: gret")
	next, err := b.reg.Reload("main")
	require.NoError(t, err)
	require.NotSame(t, before, next)
	require.Same(t, next, b.reg.Get("main"))
	require.Equal(t, "main", next.Name)
	require.NotEqual(t, before.Revision, next.Revision)
	require.Len(t, next.Problems, 1)
	require.Nil(t, next.Tasks["hello-world"])
	require.NotNil(t, next.Tasks["deploy-pipeline"])
	require.Equal(t, []*Workspace{next}, hooks())
	require.Equal(t, 1, strings.Count(b.logs.String(), `unknown action \"gret\"`))
	// The old workspace is untouched: jobs keep their definitions.
	require.NotNil(t, before.Tasks["hello-world"])

	// The folder vanishes: an error, and the current workspace stays.
	require.NoError(t, os.Rename(b.dir, b.dir+".moved"))
	t.Cleanup(func() { _ = os.RemoveAll(b.dir + ".moved") })
	_, err = b.reg.Reload("main")
	require.ErrorIs(t, err, stroem.ErrUnavailable)
	require.Same(t, next, b.reg.Get("main"))

	_, err = b.reg.Reload("nobody")
	require.ErrorIs(t, err, stroem.ErrNotFound)

	// A single-file workspace reloads too.
	require.NoError(t, os.WriteFile(b.file, []byte("actions:\n  a: { cmd: echo }\n  b: { cmd: echo }\n"), 0o644))
	single, err := b.reg.Reload("single")
	require.NoError(t, err)
	require.Len(t, single.Actions, 2)
}

// TestRegistryConcurrentReads: readers never block on or race with reloads.
func TestRegistryConcurrentReads(t *testing.T) {
	t.Parallel()
	b := setupRegistry(t)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var reads atomic.Int64
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				ws := b.reg.Get("main")
				require.NotNil(t, ws)
				require.NotEmpty(t, ws.Revision)
				_ = len(b.reg.List())
				reads.Add(1)
			}
		}()
	}
	for i := range 20 {
		writeFile(t, b.dir, "notes.txt", strings.Repeat("x", i))
		_, err := b.reg.Reload("main")
		require.NoError(t, err)
	}
	cancel()
	wg.Wait()
	require.Positive(t, reads.Load())
}

func TestRegistryWatch(t *testing.T) {
	t.Parallel()
	for _, poll := range []bool{false, true} {
		name := "fsnotify"
		if poll {
			name = "poll"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setupRegistry(t)
			b.reg.poll = poll
			b.reg.pollEvery = 50 * time.Millisecond
			reloaded := make(chan *Workspace, 10)
			b.reg.OnReload(func(ws *Workspace) { reloaded <- ws })

			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error)
			go func() { done <- b.reg.Watch(ctx) }()

			before := b.reg.Get("main")
			// fsnotify needs its watches in place before the change; a
			// change made earlier is caught by the 30 s re-check only.
			// Keep changing until the reload shows.
			// Each write replaces the file whole (rename), so a check
			// never sees it half written.
			tmp := filepath.Join(t.TempDir(), "extra.yaml")
			require.Eventually(t, func() bool {
				require.NoError(t, os.WriteFile(tmp, []byte("actions:\n  extra: { cmd: echo }\n"), 0o644))
				require.NoError(t, os.Rename(tmp, filepath.Join(b.dir, ".workflows", "extra.yaml")))
				return b.reg.Get("main").Actions["extra"] != nil
			}, 10*time.Second, 100*time.Millisecond)
			ws := b.reg.Get("main")
			require.NotEqual(t, before.Revision, ws.Revision)
			select {
			case hooked := <-reloaded:
				require.Equal(t, "main", hooked.Name)
			default:
				t.Fatal("the reload hook was not called")
			}

			// A file written later in a new folder is seen too: the
			// folder's creation alone changes no revision (one check, no
			// reload), then the file's own event must arrive, well
			// before the 30 s re-check.
			checks := b.reg.checks.Load()
			require.NoError(t, os.MkdirAll(filepath.Join(b.dir, "scripts", "new"), 0o755))
			require.Eventually(t, func() bool { return b.reg.checks.Load() > checks }, 10*time.Second, 10*time.Millisecond)
			require.Equal(t, ws.Revision, b.reg.Get("main").Revision)
			writeFile(t, b.dir, "scripts/new/run.sh", "echo new\n")
			require.Eventually(t, func() bool {
				return b.reg.Get("main").Revision != ws.Revision
			}, 10*time.Second, 20*time.Millisecond)

			cancel()
			select {
			case err := <-done:
				require.NoError(t, err)
			case <-time.After(5 * time.Second):
				t.Fatal("Watch did not return after cancel")
			}
		})
	}
}
