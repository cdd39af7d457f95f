package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/blob"
	"github.com/stroem/stroem/http/client"
	"github.com/stroem/stroem/persistence"
)

// Task state, global state and artifacts on the worker
// (docs/state-artifacts.md). Before a step runs, the worker makes its
// directories — the task's and the workspace's newest state (read-only),
// empty ones for new state and for artifacts — and names them in the
// step's environment. While it runs, `STATE: {json}` and
// `GLOBAL_STATE: {json}` stdout lines are merged. After it succeeded, the
// new state and every artifact are uploaded for the step's attempt (the
// server fences them like log pushes) before the completion is reported;
// an artifact that cannot be stored fails the step.

// The variables a step finds its directories in.
const (
	EnvStateDir          = "STATE_DIR"
	EnvStateOutDir       = "STATE_OUT_DIR"
	EnvGlobalStateDir    = "GLOBAL_STATE_DIR"
	EnvGlobalStateOutDir = "GLOBAL_STATE_OUT_DIR"
	EnvArtifactsDir      = "ARTIFACTS_DIR"
)

// stepFiles is one attempt's state and artifact directories.
type stepFiles struct {
	c     *client.Client
	ref   client.StepFile
	root  string
	log   *slog.Logger
	retry []backoff.RetryOption // the worker's, for calls that wait out an outage
	// pool takes root back after the step; reused: root served a step
	// before (its directories exist, empty, state ones read-only).
	pool   *filesPool
	reused bool
	// stamps are the root's and its directories' inode stamps as handed
	// out; trusted when they are older than the step, so unchanged stamps
	// prove a directory unchanged (stepdir.go).
	stamps  []stamp
	dirs    []dirHandle // the directories held open (pooledRoot), closed by remove
	trusted bool
	// rootSeen: the root's stamp was found as handed out after the step
	// (unchanged).
	rootSeen bool

	mu          sync.Mutex
	state       map[string]any
	globalState map[string]any
	badLine     string
}

func (f *stepFiles) dir(name string) string { return filepath.Join(f.root, name) }

// prepareFiles makes the attempt's directories, fetches the newest state
// into them and names them in the step's environment.
func (w *Worker) prepareFiles(ctx context.Context, log *slog.Logger, workerID string, a *stroem.Assignment) (*stepFiles, error) {
	// A previous step's directories, left empty, serve again: making and
	// removing six directories was a third of the worker's CPU per step
	// (issue 23; files_pool.go).
	pooled, reused := w.files.get(log)
	root := pooled.root
	if !reused {
		base := filepath.Join(w.cfg.WorkDir, "files")
		var err error
		root, err = os.MkdirTemp(base, "step-")
		if errors.Is(err, fs.ErrNotExist) { // the first step (or it was removed): make it
			if err = os.MkdirAll(base, 0o700); err == nil {
				root, err = os.MkdirTemp(base, "step-")
			}
		}
		if err != nil {
			return nil, fmt.Errorf("make the state and artifact directories: %w", err)
		}
	}
	f := &stepFiles{c: w.c, root: root, log: log, retry: w.retryOptions(), pool: &w.files, reused: reused,
		stamps: pooled.stamps, dirs: pooled.dirs, trusted: pooled.trusted,
		ref: client.StepFile{JobID: a.JobID, Step: a.StepName, WorkerID: workerID, Attempt: a.Attempt}}
	if a.Spec.Env == nil {
		a.Spec.Env = map[string]string{}
	}
	for _, d := range stepFileDirs {
		p := f.dir(d.name)
		if !reused {
			if err := os.Mkdir(p, 0o755); err != nil {
				f.remove()
				return nil, fmt.Errorf("make the state and artifact directories: %w", err)
			}
		}
		a.Spec.Env[d.env] = p
		if d.scope != "" && !a.State.Has(d.scope) {
			// The server had no snapshot of this scope when it handed the
			// step out: nothing to download.
			if err := f.none(p); err != nil {
				f.remove()
				return nil, fmt.Errorf("make the state and artifact directories: %w", err)
			}
		} else if d.scope != "" {
			if err := f.fetch(ctx, d.scope, p); err != nil {
				f.remove()
				return nil, err
			}
		}
	}
	return f, nil
}

// fetch extracts the newest snapshot of scope into dir, then makes it
// read-only (the step reads the previous state; it writes the next one in
// the -out directory).
func (f *stepFiles) fetch(ctx context.Context, scope, dir string) error {
	// Like the start acknowledgement, the download waits out a server
	// that is down or restarting instead of failing a step that never ran.
	rc, err := retryReachable(ctx, f.retry, f.log.With("scope", scope), "state download failed, retrying", func() (io.ReadCloser, error) {
		return f.c.StepState(ctx, f.ref, scope)
	})
	if errors.Is(err, stroem.ErrNotFound) {
		// A server without state (older, or a test double): none yet.
		rc, err = nil, nil
	}
	if err != nil {
		return fmt.Errorf("download the %s state: %w", scope, err)
	}
	if rc == nil {
		return f.none(dir)
	}
	defer rc.Close()
	if f.reused {
		f.trusted = false                            // its stamps change now
		if err := os.Chmod(dir, 0o755); err != nil { // to unpack into
			return err
		}
	}
	if _, err := blob.Extract(rc, dir, 0); err != nil {
		return fmt.Errorf("unpack the %s state: %w", scope, err)
	}
	var dirs []string
	err = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, p)
			return nil
		}
		return os.Chmod(p, 0o444)
	})
	for i := len(dirs) - 1; i >= 0; i-- { // children before their parents
		if cerr := os.Chmod(dirs[i], 0o555); err == nil {
			err = cerr
		}
	}
	return err
}

// none leaves a state directory empty and read-only: no snapshot yet.
func (f *stepFiles) none(dir string) error {
	if f.reused {
		return nil // read-only already (checked when it was given back)
	}
	return os.Chmod(dir, 0o555)
}

// watch merges the STATE: and GLOBAL_STATE: lines of stdout on their way
// to sink.
func (f *stepFiles) watch(sink func(stroem.PushLine)) func(stroem.PushLine) {
	return func(l stroem.PushLine) {
		if l.Stream == stroem.Stdout {
			if rest, ok := strings.CutPrefix(l.Text, "GLOBAL_STATE:"); ok {
				f.merge(&f.globalState, rest, "GLOBAL_STATE")
			} else if rest, ok := strings.CutPrefix(l.Text, "STATE:"); ok {
				f.merge(&f.state, rest, "STATE")
			}
		}
		sink(l)
	}
}

func (f *stepFiles) merge(dst *map[string]any, text, what string) {
	var m map[string]any
	if err := json.Unmarshal([]byte(strings.TrimSpace(text)), &m); err != nil || m == nil {
		f.mu.Lock()
		f.badLine = what
		f.mu.Unlock()
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if *dst == nil {
		*dst = map[string]any{}
	}
	deepMerge(*dst, m)
}

// deepMerge merges src into dst: objects merge key by key, anything else
// replaces (last write wins).
func deepMerge(dst, src map[string]any) {
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				deepMerge(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
}

// finish uploads what a successful step left: new state (a problem with it
// is told in the step's log, as the upstream does, and does not fail the
// step) and its artifacts (a problem fails the step with the reason).
// note writes a line into the step's log.
func (f *stepFiles) finish(ctx context.Context, res Result, note func(string)) Result {
	if !res.Succeeded() {
		return res // a failed or cancelled step's files are discarded
	}
	if f.badLine != "" {
		note(fmt.Sprintf("stroem: a %s: line is not a JSON object; it was ignored", f.badLine))
	}
	for _, s := range []struct {
		scope, dir string
		state      map[string]any
	}{{"task", f.dir("state-out"), f.state}, {"global", f.dir("global-state-out"), f.globalState}} {
		if err := f.uploadState(ctx, s.scope, s.dir, s.state); err != nil {
			note(fmt.Sprintf("stroem: the new %s state was not stored: %s", s.scope, errText(err)))
		}
	}
	if err := f.uploadArtifacts(ctx, note); err != nil {
		res.Error = "artifacts: " + errText(err)
		if res.ExitCode == 0 {
			res.ExitCode = -1
		}
	}
	return res
}

func errText(err error) string {
	if m := stroem.ErrorMessage(err); m != "internal error" {
		return m
	}
	return err.Error()
}

// uploadState packs dir and the structured state into a snapshot and
// uploads it; a step that wrote neither writes no snapshot.
func (f *stepFiles) uploadState(ctx context.Context, scope, dir string, state map[string]any) error {
	if state == nil {
		// Most steps write no state: say so from the directory listing,
		// without creating (and removing) a tarball for nothing — on a
		// loaded machine a file's creation and removal were a tenth of the
		// worker's CPU per step (issue 23).
		empty, err := f.empty(dir)
		if err != nil {
			return err
		}
		if empty {
			return nil
		}
	}
	tmp, err := os.CreateTemp(f.root, "state-*.tar.gz")
	if err != nil {
		return err
	}
	defer tmp.Close()
	tw := blob.NewWriter(tmp)
	n, err := blob.Pack(tw, dir, func(name, why string) {
		f.log.Warn("state file skipped", "name", name, "why", why)
	})
	if err != nil {
		return err
	}
	if n == 0 && state == nil {
		return nil
	}
	if _, err := os.Stat(filepath.Join(dir, blob.StateFile)); err == nil && state != nil {
		return fmt.Errorf("the step wrote both %s lines and a file state.json: keep one", strings.ToUpper(scope))
	}
	if state != nil {
		b, err := json.Marshal(state)
		if err != nil {
			return err
		}
		if err := tw.Add(blob.StateFile, int64(len(b)), bytes.NewReader(b)); err != nil {
			return err
		}
	}
	size, err := tw.Finish(tmp)
	if err != nil {
		return err
	}
	return f.c.StepStateUpload(ctx, f.ref, scope, tmp, size)
}

// uploadArtifacts uploads every regular file below the artifacts
// directory; links are skipped (and said so), a name the server refuses
// or a file it cannot store fails the step.
func (f *stepFiles) uploadArtifacts(ctx context.Context, note func(string)) error {
	dir := f.dir("artifacts")
	if empty, err := f.empty(dir); err != nil || empty {
		return err
	}
	return filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir || d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		name := path.Clean(filepath.ToSlash(rel))
		if !d.Type().IsRegular() {
			note(fmt.Sprintf("stroem: artifact %q skipped: not a regular file (links are not uploaded)", name))
			return nil
		}
		if err := persistence.CheckArtifactName(name); err != nil {
			note(fmt.Sprintf("stroem: artifact skipped: %s", errText(err)))
			return nil
		}
		return f.uploadArtifact(ctx, p, name)
	})
}

func (f *stepFiles) uploadArtifact(ctx context.Context, p, name string) error {
	file, err := os.Open(p)
	if err != nil {
		return err
	}
	defer file.Close()
	st, err := file.Stat()
	if err != nil {
		return err
	}
	head := make([]byte, 512)
	k, _ := io.ReadFull(file, head)
	ct := mime.TypeByExtension(path.Ext(name))
	if ct == "" {
		ct = http.DetectContentType(head[:k])
	}
	if _, err := file.Seek(0, io.SeekStart); err != nil {
		return err
	}
	for try := 0; ; try++ {
		err = f.c.ArtifactUpload(ctx, f.ref, name, ct, file, st.Size())
		if err == nil || !client.Retryable(err) || try >= 3 || ctx.Err() != nil {
			break
		}
		f.log.Warn("artifact upload failed, retrying", "name", name, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(try+1) * time.Second):
		}
		if _, serr := file.Seek(0, io.SeekStart); serr != nil {
			return serr
		}
	}
	if err != nil {
		return fmt.Errorf("upload %q: %w", name, err)
	}
	return nil
}

// empty says whether dir, one of the attempt's directories, has no
// entries: from its stamp when that is trusted and unchanged (it was
// handed out empty), else from a listing.
func (f *stepFiles) empty(dir string) (bool, error) {
	if f.trusted && f.unchanged(dir) {
		return true, nil
	}
	return dirEmpty(dir)
}

// unchanged says whether dir's stamp is as handed out. With the
// directories held open (pooledRoot) it reads the root's stamp through its
// path once — the step has ended: only the worker works in the root now,
// and it renames nothing — and dir's through its handle; pooledRoot says
// why that is dir's path's stamp.
func (f *stepFiles) unchanged(dir string) bool {
	rel, err := filepath.Rel(f.root, dir)
	if err != nil {
		return false
	}
	i := slices.IndexFunc(f.stamps, func(s stamp) bool { return s.rel == rel })
	if i <= 0 {
		return false
	}
	if len(f.dirs) != len(f.stamps)-1 {
		now, ok := stampOf(dir, rel)
		return ok && now == f.stamps[i]
	}
	if !f.rootSeen {
		if now, ok := stampOf(f.root, ""); !ok || now != f.stamps[0] {
			return false
		}
		f.rootSeen = true
	}
	now, ok := f.dirs[i-1].stamp(rel)
	return ok && now == f.stamps[i]
}

// cleanup gives the attempt's directories back for the next step when
// they are as new (empty, modes unchanged), and removes them otherwise.
func (f *stepFiles) cleanup() {
	if f.pool != nil {
		r := pooledRoot{root: f.root, stamps: f.stamps, dirs: f.dirs, trusted: f.trusted}
		ok := r.check()
		f.dirs = r.dirs // check may have opened others (and closed these)
		if ok && f.pool.put(r) {
			f.dirs = nil // the pool's now
			return
		}
	}
	f.remove()
}

// remove removes the attempt's directories (read-only ones included).
func (f *stepFiles) remove() {
	closeDirHandles(f.dirs)
	f.dirs = nil
	_ = filepath.WalkDir(f.root, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o755)
		}
		return nil
	})
	if err := os.RemoveAll(f.root); err != nil && !errors.Is(err, os.ErrNotExist) {
		f.log.Warn("remove the state and artifact directories", "err", err)
	}
}
