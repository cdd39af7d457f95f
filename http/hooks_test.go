package http

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/http/apierror"
	"github.com/stroem/stroem/persistence"
)

// fakeJobs is a job store whose job status the test sets; it counts reads,
// to prove that waiting does not poll.
type fakeJobs struct {
	mu     sync.Mutex
	status stroem.JobStatus
	reads  atomic.Int64
}

func (f *fakeJobs) set(s stroem.JobStatus) {
	f.mu.Lock()
	f.status = s
	f.mu.Unlock()
}

func (f *fakeJobs) JobGet(_ context.Context, id string) (*stroem.Job, error) {
	f.reads.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	return &stroem.Job{ID: id, Status: f.status, Output: map[string]any{"s": map[string]any{"ok": true}}}, nil
}

func (f *fakeJobs) JobList(context.Context, persistence.JobFilter) ([]stroem.Job, error) {
	return nil, nil
}

func newWaitTriggers(jobs *fakeJobs) *Triggers {
	return NewTriggers(TriggersConfig{}, nil, jobs, nil, nil, nil)
}

func TestHookWaitJobFinishedBeforeSubscribing(t *testing.T) {
	t.Parallel()
	jobs := &fakeJobs{status: stroem.JobCompleted} // finished before anyone waited
	tr := newWaitTriggers(jobs)
	j, err := tr.wait(context.Background(), "j1", time.Hour)
	require.NoError(t, err)
	require.Equal(t, stroem.JobCompleted, j.Status)
	require.EqualValues(t, 1, jobs.reads.Load())
}

func TestHookWaitWokenByJobFinished(t *testing.T) {
	t.Parallel()
	jobs := &fakeJobs{status: stroem.JobRunning}
	tr := newWaitTriggers(jobs)
	done := make(chan *stroem.Job, 1)
	go func() {
		j, err := tr.wait(context.Background(), "j1", time.Hour)
		require.NoError(t, err)
		done <- j
	}()
	require.Eventually(t, func() bool { return jobs.reads.Load() == 1 }, 5*time.Second, time.Millisecond)
	require.Eventually(t, func() bool {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		return len(tr.waiters["j1"]) == 1
	}, 5*time.Second, time.Millisecond)
	tr.JobFinished("other", stroem.JobCompleted) // another job: no wake-up
	jobs.set(stroem.JobFailed)
	tr.JobFinished("j1", stroem.JobFailed)
	j := <-done
	require.Equal(t, stroem.JobFailed, j.Status)
	require.EqualValues(t, 2, jobs.reads.Load(), "one read after subscribing, one after the event: no polling")
	tr.mu.Lock()
	require.Empty(t, tr.waiters, "the waiter unsubscribed")
	tr.mu.Unlock()
}

func TestHookWaitTimeoutAndClose(t *testing.T) {
	t.Parallel()
	jobs := &fakeJobs{status: stroem.JobPending}
	tr := newWaitTriggers(jobs)
	j, err := tr.wait(context.Background(), "j1", 20*time.Millisecond)
	require.NoError(t, err)
	require.Equal(t, stroem.JobPending, j.Status)

	tr.Close()
	tr.Close()
	j, err = tr.wait(context.Background(), "j1", time.Hour)
	require.NoError(t, err, "a closing server answers waiting webhooks at once")
	require.Equal(t, stroem.JobPending, j.Status)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = newWaitTriggers(jobs).wait(ctx, "j1", time.Hour)
	require.ErrorIs(t, err, context.Canceled)
}

func TestHookContext(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest("POST", "/hooks/x?ref=main&secret=s&tag=a&tag=b", nil)
	r.Header.Set("X-GitHub-Event", "push")
	r.Header.Add("X-Multi", "1")
	r.Header.Add("X-Multi", "2")
	r.Header.Set("Authorization", "Bearer s")
	r.Header.Set("Proxy-Authorization", "Basic x")
	r.Header.Set("Cookie", "a=b")
	r.Header.Set("X-Gitlab-Token", "provider-secret")
	r.Header.Set("X-Api-Key", "key")

	// The default allowlist: event headers, no tokens.
	got := hookContext(r, hookHeaderSet(nil))
	require.Equal(t, map[string]any{
		"headers": map[string]any{"x_github_event": "push"},
		"query":   map[string]any{"ref": "main", "tag": "a,b"},
	}, got)

	// A configured allowlist; credentials stay out even when listed.
	got = hookContext(r, hookHeaderSet([]string{"x-multi", " X-GitHub-Event ", "Authorization"}))
	require.Equal(t, map[string]any{"x_github_event": "push", "x_multi": "1, 2"}, got["headers"])
	// An empty allowlist stores no header.
	require.Equal(t, map[string]any{}, hookContext(r, hookHeaderSet([]string{}))["headers"])
	require.Equal(t, "content_type", HookHeaderName("Content-Type"))
}

func TestCheckHookHeaders(t *testing.T) {
	t.Parallel()
	require.NoError(t, CheckHookHeaders(DefaultHookHeaders))
	require.ErrorContains(t, CheckHookHeaders([]string{"X-A", "cookie"}), "never stored")
	require.ErrorContains(t, CheckHookHeaders([]string{"Proxy-Authorization"}), "credentials")
	require.ErrorContains(t, CheckHookHeaders([]string{" "}), "empty")
}

func TestHookReadBody(t *testing.T) {
	t.Parallel()
	tr := NewTriggers(TriggersConfig{MaxBodyBytes: 64}, nil, nil, nil, nil, nil)
	read := func(body string) (map[string]any, error) {
		r := httptest.NewRequest("POST", "/hooks/x", strings.NewReader(body))
		r.ContentLength = -1 // as for a chunked request: the reader enforces the limit
		return tr.readBody(httptest.NewRecorder(), r)
	}
	m, err := read("")
	require.NoError(t, err)
	require.Equal(t, map[string]any{}, m)
	m, err = read("null")
	require.NoError(t, err)
	require.Equal(t, map[string]any{}, m)
	m, err = read(`{"n": 2, "f": 2.5, "o": {"n": 1}}`)
	require.NoError(t, err)
	require.Equal(t, map[string]any{"n": int64(2), "f": 2.5, "o": map[string]any{"n": int64(1)}}, m)
	for _, bad := range []string{`{`, `[]`, `"s"`, `3`, `true`, `{} x`, `{"n": 1e400}`} {
		_, err := read(bad)
		require.ErrorIs(t, err, stroem.ErrInvalid, bad)
	}
	_, err = read(`{"s": "` + strings.Repeat("a", 100) + `"}`)
	require.ErrorIs(t, err, stroem.ErrTooLarge)
	require.Equal(t, http.StatusRequestEntityTooLarge, apierror.Status(err))
}
