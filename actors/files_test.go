package actors

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/blob"
	"github.com/stroem/stroem/persistence"
	"github.com/stroem/stroem/persistence/sqlite/sqlitetest"
	"github.com/stroem/stroem/persistence/storetest"
)

// A worker writes state and artifacts only for the attempt it holds, as
// itself; what it writes is bounded; uploads are checked.
func TestFilesFencingAndLimits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := sqlitetest.Store(t)
	nj := storetest.InsertJob(t, st, storetest.Step{Name: "a"}, storetest.Step{Name: "b"})
	w1 := "6f2b3c1e-0000-4000-8000-000000000001"
	w2 := "6f2b3c1e-0000-4000-8000-000000000002"
	ca := storetest.ClaimStarted(t, st, w1)
	cb := storetest.ClaimStarted(t, st, w2)
	f := NewFiles(st, FileLimits{MaxFileBytes: 10, MaxJobBytes: 14, MaxStateBytes: 1 << 20})
	as := func(w string) context.Context { return WithCaller(ctx, w) }
	mine := StepWrite{JobID: nj.Job.ID, Step: ca.StepName, Attempt: ca.Attempt, WorkerID: w1}

	_, err := f.ArtifactPut(as(w1), mine, "ok.txt", "text/plain; charset=utf-8", strings.NewReader("hello"))
	require.NoError(t, err)

	// Another worker cannot write as w1, nor for w1's step as itself; w1
	// cannot write for w2's step or a stale attempt.
	_, err = f.ArtifactPut(as(w2), mine, "x", "", strings.NewReader("x"))
	require.Equal(t, stroem.CodeForbidden, stroem.ErrorCode(err), "%v", err)
	other := mine
	other.WorkerID = w2
	_, err = f.ArtifactPut(as(w2), other, "x", "", strings.NewReader("x"))
	require.ErrorIs(t, err, stroem.ErrConflict)
	theirs := StepWrite{JobID: nj.Job.ID, Step: cb.StepName, Attempt: cb.Attempt, WorkerID: w1}
	_, err = f.ArtifactPut(as(w1), theirs, "x", "", strings.NewReader("x"))
	require.ErrorIs(t, err, stroem.ErrConflict)
	stale := mine
	stale.Attempt++
	_, err = f.StatePut(as(w1), stale, ScopeTask, strings.NewReader(""))
	require.ErrorIs(t, err, stroem.ErrConflict)

	// Limits and names.
	_, err = f.ArtifactPut(as(w1), mine, "big", "", strings.NewReader("01234567890"))
	require.Equal(t, stroem.CodeTooLarge, stroem.ErrorCode(err))
	_, err = f.ArtifactPut(as(w1), mine, "second", "", strings.NewReader("0123456789"))
	require.Equal(t, stroem.CodeTooLarge, stroem.ErrorCode(err), "the job's artifacts together: 5 + 10 > 14: %v", err)
	for _, bad := range []string{"../x", "/abs", "a/./b", "a\x00b"} {
		_, err = f.ArtifactPut(as(w1), mine, bad, "", strings.NewReader("x"))
		require.Equal(t, stroem.CodeInvalid, stroem.ErrorCode(err), "%q", bad)
	}

	// A step's state: the structured part is read from state.json.
	var tgz bytes.Buffer
	tw := blob.NewWriter(&tgz)
	require.NoError(t, tw.Add("cert.pem", 4, strings.NewReader("CERT")))
	require.NoError(t, tw.Add(blob.StateFile, 11, strings.NewReader(`{"days":30}`)))
	require.NoError(t, tw.Close())
	sn, err := f.StatePut(as(w1), mine, ScopeTask, bytes.NewReader(tgz.Bytes()))
	require.NoError(t, err)
	require.EqualValues(t, 30, sn.State["days"])
	got, r, err := f.StateGet(as(w2), StepWrite{JobID: nj.Job.ID, Step: cb.StepName, Attempt: cb.Attempt, WorkerID: w2}, ScopeTask)
	require.NoError(t, err)
	require.Equal(t, sn.ID, got.ID)
	b, err := io.ReadAll(r)
	require.NoError(t, err)
	require.Equal(t, tgz.Bytes(), b)
	_, r, err = f.StateGet(as(w2), StepWrite{JobID: nj.Job.ID, Step: cb.StepName, Attempt: cb.Attempt, WorkerID: w2}, ScopeGlobal)
	require.NoError(t, err)
	require.Nil(t, r, "no global state yet")

	// An upload cut off halfway (the worker died) leaves nothing visible,
	// even once the step completed.
	_, err = f.ArtifactPut(as(w1), mine, "cut.bin", "", io.MultiReader(strings.NewReader("abc"), errReader{}))
	require.Error(t, err)
	_, err = st.JobUpdate(ctx, nj.Job.ID, storetest.Complete(storetest.Report{Step: ca.StepName, Worker: w1, Attempt: ca.Attempt}))
	require.NoError(t, err)
	list, err := f.ArtifactList(ctx, nj.Job.ID)
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.Equal(t, "ok.txt", list[0].Name)
	require.Equal(t, "text/plain; charset=utf-8", list[0].ContentType)
	a, r, err := f.ArtifactOpen(ctx, nj.Job.ID, "ok.txt")
	require.NoError(t, err)
	b, err = io.ReadAll(r)
	require.NoError(t, err)
	require.Equal(t, "hello", string(b))
	require.Equal(t, int64(5), a.SizeBytes)
	_, _, err = f.ArtifactOpen(ctx, nj.Job.ID, "cut.bin")
	require.ErrorIs(t, err, stroem.ErrNotFound)

	// Templates see it.
	m, err := f.TemplateState(ctx, nj.Job.Workspace, nj.Job.TaskName)
	require.NoError(t, err)
	require.Equal(t, map[string]any{"state": map[string]any{"days": float64(30)}}, m)

	// An assignment tells the worker which scopes have a snapshot, so it
	// downloads only those; another task of the workspace has none.
	o := &Orchestrator{log: slog.New(slog.DiscardHandler)}
	require.Nil(t, o.stateHint(ctx, nj.Job.Workspace, nj.Job.TaskName), "no state storage: the worker asks")
	o.SetFiles(f)
	require.Equal(t, &stroem.AssignmentState{Task: true}, o.stateHint(ctx, nj.Job.Workspace, nj.Job.TaskName))
	require.Equal(t, &stroem.AssignmentState{}, o.stateHint(ctx, nj.Job.Workspace, "another-task"))

	// What the claim or the transition read with the job is used as is
	// (a different answer from the store's shows no query was made); the
	// store is asked only when nothing was read.
	known := &stroem.AssignmentState{Global: true}
	require.Equal(t, known, stateHints{}.get(ctx, o, nj.Job.Workspace, nj.Job.TaskName, known))
	require.Equal(t, &stroem.AssignmentState{Task: true}, stateHints{}.get(ctx, o, nj.Job.Workspace, nj.Job.TaskName, nil))
	require.Nil(t, stateHints{}.get(ctx, &Orchestrator{}, nj.Job.Workspace, nj.Job.TaskName, known), "no state storage: the worker asks")
}

// An operator's upload: replace and merge, and bad tarballs refused.
func TestStateUploadModes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := sqlitetest.Store(t)
	f := NewFiles(st, FileLimits{})
	tarball := func(files ...string) io.Reader {
		var buf bytes.Buffer
		tw := blob.NewWriter(&buf)
		for i := 0; i+1 < len(files); i += 2 {
			require.NoError(t, tw.Add(files[i], int64(len(files[i+1])), strings.NewReader(files[i+1])))
		}
		require.NoError(t, tw.Close())
		return &buf
	}
	files := func(sn persistence.StateSnapshot) map[string]string {
		_, r, err := f.StateOpen(ctx, "ws", "t", sn.ID)
		require.NoError(t, err)
		out := map[string]string{}
		require.NoError(t, blob.Walk(r, func(name string, _ int64, body io.Reader) error {
			b, err := io.ReadAll(body)
			out[name] = string(b)
			return err
		}))
		return out
	}
	up := func(mode string, vals map[string]string, body io.Reader) (persistence.StateSnapshot, error) {
		return f.StateUpload(ctx, StateUpload{Workspace: "ws", Task: "t", By: "ada", Mode: mode, Values: vals}, body)
	}
	first, err := up("", map[string]string{"a": "1", "b": "2"}, tarball("x.txt", "X", "dir/y.txt", "Y"))
	require.NoError(t, err)
	require.Equal(t, map[string]string{"x.txt": "X", "dir/y.txt": "Y", "state.json": `{"a":"1","b":"2"}`}, files(first))

	merged, err := up("merge", map[string]string{"b": "3"}, tarball("x.txt", "X2"))
	require.NoError(t, err)
	require.Equal(t, map[string]any{"a": "1", "b": "3"}, merged.State)
	require.Equal(t, map[string]string{"x.txt": "X2", "dir/y.txt": "Y", "state.json": `{"a":"1","b":"3"}`}, files(merged))

	replaced, err := up("replace", nil, strings.NewReader(""))
	require.NoError(t, err, "an empty body is an empty tarball")
	require.Equal(t, map[string]string{"state.json": `{}`}, files(replaced))

	for name, body := range map[string]io.Reader{
		"not gzip":        strings.NewReader("plain text"),
		"root state.json": tarball("state.json", "{}"),
		"escaping name":   tarball("../etc/passwd", "x"),
	} {
		_, err := up("", nil, body)
		require.Equal(t, stroem.CodeInvalid, stroem.ErrorCode(err), "%s: %v", name, err)
	}
	_, err = up("sideways", nil, strings.NewReader(""))
	require.Equal(t, stroem.CodeInvalid, stroem.ErrorCode(err))
	latest, _, err := f.StateOpen(ctx, "ws", "t", "latest")
	require.NoError(t, err)
	require.Equal(t, replaced.ID, latest.ID, "refused uploads store nothing visible")
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }
