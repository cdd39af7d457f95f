package http

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
)

// completeWorkers answers every completion with next and records the
// assignments given back.
type completeWorkers struct {
	Workers
	next *stroem.Assignment

	mu         sync.Mutex
	unassigned []string // job/step/worker_id
}

func (f *completeWorkers) Authenticate(context.Context, string) (string, error) { return "w1", nil }

func (f *completeWorkers) Complete(_ context.Context, _, _ string, c stroem.Completion) (*stroem.Assignment, error) {
	if c.Next == nil {
		return nil, nil
	}
	return f.next, nil
}

func (f *completeWorkers) Unassign(_ context.Context, a *stroem.Assignment, workerID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.unassigned = append(f.unassigned, a.JobID+"/"+a.StepName+"/"+workerID)
}

func (f *completeWorkers) givenBack() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.unassigned...)
}

// brokenWriter is a response whose client went away: nothing can be written.
type brokenWriter struct{ h http.Header }

func (b *brokenWriter) Header() http.Header       { return b.h }
func (b *brokenWriter) WriteHeader(int)           {}
func (b *brokenWriter) Write([]byte) (int, error) { return 0, errors.New("connection reset by peer") }

// The step a completion's answer carries is written like a claim's answer,
// and given back when the answer cannot be written (the worker is gone), as
// a claim is.
func TestWorkerCompleteWritesOrGivesBackTheNextStep(t *testing.T) {
	t.Parallel()
	const job = "7f1c9a52-3b1e-4c8a-9d2f-0123456789ab"
	next := &stroem.Assignment{JobID: job, StepName: "b", Attempt: 1, ActionType: "shell"}
	f := &completeWorkers{next: next}
	h := NewServer(Config{}, nil, f, nil, nil, nil, nil, nil).Handler()
	request := func(body string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/worker/jobs/"+job+"/steps/a/complete", strings.NewReader(body))
		r.Header.Set("Authorization", "Bearer cred")
		r.Header.Set("Content-Type", "application/json")
		return r
	}
	const withNext = `{"worker_id": "w1", "attempt": 1, "exit_code": 0, "next": {"capabilities": ["shell"]}}`

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, request(withNext))
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var resp stroem.CompletionResponse
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &resp))
	require.Equal(t, next, resp.Next)
	require.Empty(t, f.givenBack())

	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, request(`{"worker_id": "w1", "attempt": 1, "exit_code": 0}`))
	require.Equal(t, http.StatusOK, rec.Code)
	require.JSONEq(t, `{}`, rec.Body.String(), "without a claim, the answer is as before")

	h.ServeHTTP(&brokenWriter{h: http.Header{}}, request(withNext))
	require.Equal(t, []string{job + "/b/w1"}, f.givenBack(), "the undelivered step is given back")
}
