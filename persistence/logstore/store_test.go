package logstore

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/stroem/stroem"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

type testBundle struct {
	dir   string
	store *Store
}

func setup(t testing.TB, opts Options) *testBundle {
	t.Helper()
	dir := t.TempDir()
	s, err := OpenWithOptions(dir, nil, opts)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return &testBundle{dir: dir, store: s}
}

var testJobSeq struct {
	sync.Mutex
	n int
}

// newJobID returns a fresh UUID-shaped job id.
func newJobID() string {
	testJobSeq.Lock()
	defer testJobSeq.Unlock()
	testJobSeq.n++
	return fmt.Sprintf("00000000-0000-4000-8000-%012x", testJobSeq.n)
}

func pushLines(texts ...string) []stroem.PushLine {
	out := make([]stroem.PushLine, len(texts))
	ts := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i, t := range texts {
		out[i] = stroem.PushLine{TS: ts.Add(time.Duration(i) * time.Millisecond), Stream: stroem.Stdout, Text: t}
	}
	return out
}

func texts(lines []stroem.LogLine) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = l.Text
	}
	return out
}

func seqs(lines []stroem.LogLine) []int64 {
	out := make([]int64, len(lines))
	for i, l := range lines {
		out[i] = l.Seq
	}
	return out
}

// requireValidFile checks that the job file is JSON lines and nothing else.
func requireValidFile(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NotContains(t, string(data), "\x00")
	if len(data) == 0 {
		return
	}
	require.Equal(t, byte('\n'), data[len(data)-1], "file ends with a complete line")
	for i, line := range bytes.Split(data[:len(data)-1], []byte("\n")) {
		require.True(t, json.Valid(line), "line %d is valid JSON: %q", i+1, line)
	}
}

func TestAppendAndRead(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	ctx := context.Background()
	job := newJobID()

	got, err := b.store.Append(ctx, job, Append{Step: "build", Attempt: 1, Lines: pushLines("one", "two")})
	require.NoError(t, err)
	require.Equal(t, []int64{1, 2}, seqs(got))
	require.Equal(t, "build", got[0].Step)
	require.Equal(t, 1, got[0].Attempt)
	require.Equal(t, stroem.Stdout, got[0].Stream)

	got, err = b.store.Append(ctx, job, Append{Step: "test", Attempt: 1, Lines: []stroem.PushLine{{Stream: stroem.Stderr, Text: "three"}}})
	require.NoError(t, err)
	require.Equal(t, []int64{3}, seqs(got))
	require.False(t, got[0].TS.IsZero(), "a missing timestamp is filled in")

	all, err := b.store.Read(job, 0, "")
	require.NoError(t, err)
	require.Equal(t, []string{"one", "two", "three"}, texts(all))
	require.Equal(t, []int64{1, 2, 3}, seqs(all))
	require.Equal(t, stroem.Stderr, all[2].Stream)
	require.Equal(t, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), all[0].TS)

	after, err := b.store.Read(job, 1, "")
	require.NoError(t, err)
	require.Equal(t, []string{"two", "three"}, texts(after))

	onlyTest, err := b.store.Read(job, 0, "test")
	require.NoError(t, err)
	require.Equal(t, []string{"three"}, texts(onlyTest))

	last, err := b.store.LastSeq(job)
	require.NoError(t, err)
	require.EqualValues(t, 3, last)

	// Step names with characters JSON escapes filter exactly.
	for _, step := range []string{`say "hi"`, "<b>&", "ü\\"} {
		_, err = b.store.Append(ctx, job, Append{Step: step, Attempt: 1, Lines: pushLines("from " + step)})
		require.NoError(t, err)
	}
	for _, step := range []string{`say "hi"`, "<b>&", "ü\\"} {
		got, err := b.store.Read(job, 0, step)
		require.NoError(t, err)
		require.Equal(t, []string{"from " + step}, texts(got))
	}
	none, err := b.store.Read(job, 0, "say")
	require.NoError(t, err)
	require.Empty(t, none)

	// Upper-case ids name the same job.
	upper, err := b.store.Read(strings.ToUpper(job), 0, "")
	require.NoError(t, err)
	require.Len(t, upper, 6)
	requireValidFile(t, filepath.Join(b.dir, job+".jsonl"))
}

func TestReadUnknownJobIsEmpty(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	job := newJobID()
	lines, err := b.store.Read(job, 0, "")
	require.NoError(t, err)
	require.Empty(t, lines)
	require.NotNil(t, lines)
	last, err := b.store.LastSeq(job)
	require.NoError(t, err)
	require.Zero(t, last)
	_, err = os.Stat(filepath.Join(b.dir, job+".jsonl"))
	require.ErrorIs(t, err, os.ErrNotExist, "reading does not create a file")
}

func TestAppendConcurrentOneJob(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	job := newJobID()
	const goroutines, pushes, perPush = 16, 40, 3

	returned := make([][]stroem.LogLine, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			step := fmt.Sprintf("step-%02d", g)
			for p := range pushes {
				lines := make([]string, perPush)
				for i := range lines {
					lines[i] = fmt.Sprintf("%s line %d", step, p*perPush+i)
				}
				got, err := b.store.Append(context.Background(), job, Append{Step: step, Attempt: 1, Offset: int64(p * perPush), Lines: pushLines(lines...)})
				if !assertNoError(t, err) {
					return
				}
				returned[g] = append(returned[g], got...)
			}
		})
	}
	wg.Wait()

	all, err := b.store.Read(job, 0, "")
	require.NoError(t, err)
	require.Len(t, all, goroutines*pushes*perPush)
	seen := map[string]bool{}
	next := map[string]int{}
	for i, l := range all {
		require.EqualValues(t, i+1, l.Seq, "seqs are 1..n without gaps")
		require.False(t, seen[l.Text], "line %q stored once", l.Text)
		seen[l.Text] = true
		require.Equal(t, fmt.Sprintf("%s line %d", l.Step, next[l.Step]), l.Text, "a step's lines keep their order")
		next[l.Step]++
	}
	for g := range goroutines {
		for _, l := range returned[g] {
			require.Equal(t, all[l.Seq-1], l, "Append returned what was stored")
		}
	}
	st := b.store.Stats()
	require.EqualValues(t, goroutines*pushes, st.Appends)
	require.EqualValues(t, goroutines*pushes*perPush, st.Lines)
	t.Logf("%d pushes in %d group commits, %d fsyncs", st.Appends, st.Batches, st.Fsyncs)
}

// assertNoError reports err from a goroutine without FailNow.
func assertNoError(t *testing.T, err error) bool {
	t.Helper()
	if err != nil {
		t.Errorf("unexpected error: %v", err)
		return false
	}
	return true
}

func TestAppendDedupByOffset(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	ctx := context.Background()
	job := newJobID()
	push := func(step string, attempt int, offset int64, lines ...string) []string {
		t.Helper()
		got, err := b.store.Append(ctx, job, Append{Step: step, Attempt: attempt, Offset: offset, Lines: pushLines(lines...)})
		require.NoError(t, err)
		return texts(got)
	}

	require.Equal(t, []string{"a", "b", "c"}, push("s", 1, 0, "a", "b", "c"))
	require.Empty(t, push("s", 1, 0, "a", "b", "c"), "a retried push stores nothing")
	require.Equal(t, []string{"d", "e"}, push("s", 1, 2, "c", "d", "e"), "an overlapping push stores only the new lines")
	require.Equal(t, []string{"k"}, push("s", 1, 10, "k"), "a push ahead of what was stored is accepted")
	require.Empty(t, push("s", 1, 7, "h", "i", "j"), "lines before the stored index count as stored")
	require.Equal(t, []string{"l"}, push("s", 1, 10, "k", "l"))
	require.Equal(t, []string{"a2"}, push("s", 2, 0, "a2"), "another attempt has its own offsets")
	require.Equal(t, []string{"x"}, push("other", 1, 0, "x"), "another step has its own offsets")

	all, err := b.store.Read(job, 0, "")
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b", "c", "d", "e", "k", "l", "a2", "x"}, texts(all))
	require.Equal(t, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9}, seqs(all))
}

func TestRestartKeepsSeqAndDedup(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := context.Background()
	job := newJobID()

	s, err := Open(dir, nil)
	require.NoError(t, err)
	_, err = s.Append(ctx, job, Append{Step: "s", Attempt: 1, Lines: pushLines("a", "b")})
	require.NoError(t, err)
	_, err = s.Append(ctx, job, Append{Step: "s", Attempt: 1, Offset: 5, Lines: pushLines("f")})
	require.NoError(t, err)
	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "Close is idempotent")
	_, err = s.Append(ctx, job, Append{Step: "s", Attempt: 1, Offset: 6, Lines: pushLines("g")})
	require.ErrorIs(t, err, stroem.ErrUnavailable)
	_, err = s.Read(job, 0, "")
	require.ErrorIs(t, err, stroem.ErrUnavailable)

	s, err = Open(dir, nil)
	require.NoError(t, err)
	defer func() { require.NoError(t, s.Close()) }()
	last, err := s.LastSeq(job)
	require.NoError(t, err)
	require.EqualValues(t, 3, last)

	got, err := s.Append(ctx, job, Append{Step: "s", Attempt: 1, Offset: 0, Lines: pushLines("a", "b")})
	require.NoError(t, err)
	require.Empty(t, got, "dedup state survives a restart")
	got, err = s.Append(ctx, job, Append{Step: "s", Attempt: 1, Offset: 3, Lines: pushLines("d", "e", "f", "g")})
	require.NoError(t, err)
	require.Equal(t, []string{"g"}, texts(got), "the gap's end survives a restart")
	require.Equal(t, []int64{4}, seqs(got), "seq continues after a restart")
}

func TestTornLastLineIsCut(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := context.Background()
	job := newJobID()
	path := filepath.Join(dir, job+".jsonl")

	s, err := Open(dir, nil)
	require.NoError(t, err)
	_, err = s.Append(ctx, job, Append{Step: "s", Attempt: 1, Lines: pushLines("a", "b")})
	require.NoError(t, err)
	require.NoError(t, s.Close())

	for _, torn := range []string{`{"seq":3,"step":"s","att`, "{\"seq\":3,\"step\":\"s\"}garbage\n\x00\x00"} {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		require.NoError(t, err)
		_, err = f.WriteString(torn)
		require.NoError(t, err)
		require.NoError(t, f.Close())

		s, err = Open(dir, nil)
		require.NoError(t, err)
		all, err := s.Read(job, 0, "")
		require.NoError(t, err)
		require.Equal(t, []string{"a", "b"}, texts(all[:2]))
		got, err := s.Append(ctx, job, Append{Step: "s", Attempt: 1, Offset: int64(len(all)), Lines: pushLines("next")})
		require.NoError(t, err)
		require.Equal(t, []int64{int64(len(all)) + 1}, seqs(got))
		require.NoError(t, s.Close())
		requireValidFile(t, path)
	}

	s, err = Open(dir, nil)
	require.NoError(t, err)
	defer func() { require.NoError(t, s.Close()) }()
	all, err := s.Read(job, 0, "")
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b", "next", "next"}, texts(all))
	require.Equal(t, []int64{1, 2, 3, 4}, seqs(all))
}

func TestMaskAppliedBeforeStorage(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	job := newJobID()
	mask := func(s string) string { return strings.ReplaceAll(s, "hunter2", "***") }
	got, err := b.store.Append(context.Background(), job, Append{Step: "s", Attempt: 1, Mask: mask, Lines: pushLines("password=hunter2", "fine")})
	require.NoError(t, err)
	require.Equal(t, []string{"password=***", "fine"}, texts(got))
	data, err := os.ReadFile(filepath.Join(b.dir, job+".jsonl"))
	require.NoError(t, err)
	require.NotContains(t, string(data), "hunter2")
	all, err := b.store.Read(job, 0, "")
	require.NoError(t, err)
	require.Equal(t, []string{"password=***", "fine"}, texts(all))
}

func TestNULAndInvalidUTF8StoredSafely(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	job := newJobID()
	raw := []string{"nul\x00byte", "bad\xff\xfeutf8", "mixed\x00\xc3", `quote " and \ and </script>`, "ok ünïcødé"}
	got, err := b.store.Append(context.Background(), job, Append{Step: "s", Attempt: 1, Lines: pushLines(raw...)})
	require.NoError(t, err)
	want := []string{`nul\0byte`, "bad\uFFFDutf8", "mixed\\0\uFFFD", `quote " and \ and </script>`, "ok ünïcødé"}
	require.Equal(t, want, texts(got))
	all, err := b.store.Read(job, 0, "")
	require.NoError(t, err)
	require.Equal(t, want, texts(all))
	requireValidFile(t, filepath.Join(b.dir, job+".jsonl"))
}

func TestBadInputRejected(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	ctx := context.Background()
	for _, id := range []string{"", "../../etc/passwd", "not-a-uuid", "00000000-0000-4000-8000-00000000000/", "00000000-0000-4000-8000-0000000000000", "00000000_0000-4000-8000-000000000000", "../00000000-0000-4000-8000-0000000000"} {
		_, err := b.store.Append(ctx, id, Append{Step: "s", Attempt: 1, Lines: pushLines("x")})
		require.ErrorIs(t, err, stroem.ErrInvalid, "append %q", id)
		_, err = b.store.Read(id, 0, "")
		require.ErrorIs(t, err, stroem.ErrInvalid, "read %q", id)
		_, err = b.store.LastSeq(id)
		require.ErrorIs(t, err, stroem.ErrInvalid, "last seq %q", id)
	}
	job := newJobID()
	_, err := b.store.Append(ctx, job, Append{Attempt: 1, Lines: pushLines("x")})
	require.ErrorIs(t, err, stroem.ErrInvalid, "no step")
	_, err = b.store.Append(ctx, job, Append{Step: "s", Attempt: 1, Offset: -1, Lines: pushLines("x")})
	require.ErrorIs(t, err, stroem.ErrInvalid, "negative offset")
	_, err = b.store.Append(ctx, job, Append{Step: "s", Attempt: 1, Lines: []stroem.PushLine{{Stream: "stdin", Text: "x"}}})
	require.ErrorIs(t, err, stroem.ErrInvalid, "unknown stream")
	entries, err := os.ReadDir(b.dir)
	require.NoError(t, err)
	require.Empty(t, entries, "nothing was written")
}

func TestManyJobsBeyondOpenFileLimit(t *testing.T) {
	t.Parallel()
	const limit, jobs, rounds = 8, 40, 3
	b := setup(t, Options{MaxOpenFiles: limit})
	ctx := context.Background()
	ids := make([]string, jobs)
	for i := range ids {
		ids[i] = newJobID()
	}
	for r := range rounds {
		var wg sync.WaitGroup
		for i, id := range ids {
			wg.Go(func() {
				_, err := b.store.Append(ctx, id, Append{Step: "s", Attempt: 1, Offset: int64(r), Lines: pushLines(fmt.Sprintf("job %d round %d", i, r))})
				assertNoError(t, err)
			})
		}
		wg.Wait()
		b.store.mu.Lock()
		open := 0
		for _, st := range b.store.jobs {
			if st.f != nil {
				open++
			}
		}
		b.store.mu.Unlock()
		require.LessOrEqual(t, open, limit, "open files stay within the limit once appends are done")
	}
	for i, id := range ids {
		all, err := b.store.Read(id, 0, "")
		require.NoError(t, err)
		require.Equal(t, []int64{1, 2, 3}, seqs(all))
		require.Equal(t, fmt.Sprintf("job %d round 2", i), all[2].Text)
	}
}

func TestReadSeeksWithIndex(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	ctx := context.Background()
	job := newJobID()
	const n = 3*indexEvery + 17
	var batch []string
	for i := range n {
		batch = append(batch, fmt.Sprintf("line %d", i+1))
		if len(batch) == 100 || i == n-1 {
			step := "even"
			if (i/100)%2 == 1 {
				step = "odd"
			}
			_, err := b.store.Append(ctx, job, Append{Step: step, Attempt: 1, Offset: int64(i + 1 - len(batch)), Lines: pushLines(batch...)})
			require.NoError(t, err)
			batch = nil
		}
	}
	for _, after := range []int64{0, 1, indexEvery - 1, indexEvery, indexEvery + 1, 2 * indexEvery, n - 1, n, n + 5} {
		got, err := b.store.Read(job, after, "")
		require.NoError(t, err)
		require.Len(t, got, max(0, int(n-after)), "after %d", after)
		if len(got) > 0 {
			require.Equal(t, after+1, got[0].Seq)
			require.Equal(t, fmt.Sprintf("line %d", after+1), got[0].Text)
		}
	}
	odd, err := b.store.Read(job, 0, "odd")
	require.NoError(t, err)
	for _, l := range odd {
		require.Equal(t, "odd", l.Step)
	}
	require.Len(t, odd, 1500)

	// Scan stops at fn's error and returns it.
	stop := errors.New("stop")
	var seen int
	err = b.store.Scan(job, 0, "", func(stroem.LogLine) error {
		seen++
		if seen == 10 {
			return stop
		}
		return nil
	})
	require.ErrorIs(t, err, stop)
	require.Equal(t, 10, seen)

	// The index is rebuilt after a restart.
	require.NoError(t, b.store.Close())
	s, err := Open(b.dir, nil)
	require.NoError(t, err)
	defer func() { require.NoError(t, s.Close()) }()
	got, err := s.Read(job, 2*indexEvery+3, "")
	require.NoError(t, err)
	require.Len(t, got, n-2*indexEvery-3)
	require.Equal(t, int64(2*indexEvery+4), got[0].Seq)
}

func TestGroupCommitBatchesConcurrentPushes(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	// A slow disk: every fsync takes 2 ms, so pushes pile up behind it.
	b.store.syncFile = func(f *os.File) error {
		time.Sleep(2 * time.Millisecond)
		return f.Sync()
	}
	const goroutines, pushes = 16, 20
	jobs := []string{newJobID(), newJobID()}
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for p := range pushes {
				_, err := b.store.Append(context.Background(), jobs[g%2], Append{Step: fmt.Sprint(g), Attempt: 1, Offset: int64(p), Lines: pushLines("x")})
				assertNoError(t, err)
			}
		})
	}
	wg.Wait()
	st := b.store.Stats()
	t.Logf("%d pushes, %d batches, %d fsyncs", st.Appends, st.Batches, st.Fsyncs)
	require.EqualValues(t, goroutines*pushes, st.Appends)
	require.Less(t, st.Batches, st.Appends/2, "concurrent pushes share group commits")
	for _, job := range jobs {
		all, err := b.store.Read(job, 0, "")
		require.NoError(t, err)
		require.Len(t, all, goroutines/2*pushes)
	}
}

func TestFailedSyncRollsBack(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	ctx := context.Background()
	job := newJobID()
	_, err := b.store.Append(ctx, job, Append{Step: "s", Attempt: 1, Lines: pushLines("a")})
	require.NoError(t, err)

	var fail sync.Mutex
	failing := true
	b.store.syncFile = func(f *os.File) error {
		fail.Lock()
		defer fail.Unlock()
		if failing {
			failing = false
			return errors.New("disk on fire")
		}
		return f.Sync()
	}
	_, err = b.store.Append(ctx, job, Append{Step: "s", Attempt: 1, Offset: 1, Lines: pushLines("b", "c")})
	require.ErrorIs(t, err, stroem.ErrUnavailable)
	require.NotContains(t, stroem.ErrorMessage(err), "fire", "the cause is not shown to API users")
	all, err := b.store.Read(job, 0, "")
	require.NoError(t, err)
	require.Equal(t, []string{"a"}, texts(all), "a failed push is not visible")

	got, err := b.store.Append(ctx, job, Append{Step: "s", Attempt: 1, Offset: 1, Lines: pushLines("b", "c")})
	require.NoError(t, err, "the retry succeeds")
	require.Equal(t, []int64{2, 3}, seqs(got), "the failed push's seqs are reused: no gap")
	requireValidFile(t, filepath.Join(b.dir, job+".jsonl"))
}

func TestAppendHonoursContext(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := b.store.Append(ctx, newJobID(), Append{Step: "s", Attempt: 1, Lines: pushLines("x")})
	require.ErrorIs(t, err, context.Canceled)
}

func TestLongLines(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	job := newJobID()
	long := strings.Repeat("x", 300<<10) // longer than every read buffer
	_, err := b.store.Append(context.Background(), job, Append{Step: "s", Attempt: 1, Lines: pushLines(long, "short")})
	require.NoError(t, err)
	require.NoError(t, b.store.Close())
	s, err := Open(b.dir, nil)
	require.NoError(t, err)
	defer func() { require.NoError(t, s.Close()) }()
	all, err := s.Read(job, 0, "")
	require.NoError(t, err)
	require.Equal(t, []string{long, "short"}, texts(all))
	f, err := os.Open(filepath.Join(b.dir, job+".jsonl"))
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	n := 0
	for sc.Scan() {
		n++
	}
	require.Equal(t, 2, n)
}
