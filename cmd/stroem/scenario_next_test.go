package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
)

// completeNext reports a's attempt as succeeded with output, with a claim
// for the worker's slot; it returns the status, and the step the answer
// brought.
func (w *fakeWorker) completeNext(a *stroem.Assignment, output map[string]any) (int, *stroem.Assignment) {
	w.s.t.Helper()
	code, body := w.s.do("POST", fmt.Sprintf("/worker/jobs/%s/steps/%s/complete", a.JobID, a.StepName), stroem.Completion{
		WorkerID: w.id, Attempt: a.Attempt, Output: output,
		Next: &stroem.NextClaim{WorkerID: w.id, Capabilities: []string{"shell"}},
	}, w.cred)
	if code != http.StatusOK {
		return code, nil
	}
	var resp stroem.CompletionResponse
	require.NoError(w.s.t, json.Unmarshal(body, &resp), string(body))
	return code, resp.Next
}

// Over HTTP, a completion with a claim brings the step it made ready (the
// slot's next, before a long poll that waits meanwhile), which is
// acknowledged and reported like a claimed one; with nothing ready it
// brings nothing, and a completion without a claim is answered as before.
func TestScenarioCompletionBringsTheNextStep(t *testing.T) {
	t.Parallel()
	s := newScenario(t, chainWorkflow, scenarioOpts{})
	w, other := s.worker(), s.worker()
	id := s.execute("chain", map[string]any{"start": "go"})
	first := w.mustClaim("first")
	polled := other.longPoll()
	// The long poll counts as waiting once its claim found nothing: until
	// then a completion's claim is served in line (handoff.go), and the
	// long poll, older, might get the chain's step. Under load its claim
	// was still in flight at times when the completion arrived.
	idle := func() {
		require.Eventually(t, func() bool { return s.app.orch.LongPollIdle("shell") }, 5*time.Second, time.Millisecond,
			"the other worker's long poll waits with nothing found")
	}

	idle()
	code, second := w.completeNext(first, map[string]any{"v": "go"})
	require.Equal(t, http.StatusOK, code)
	require.NotNil(t, second)
	require.Equal(t, "second", second.StepName)
	require.Equal(t, "go-2", second.Input["value"])
	require.Equal(t, http.StatusOK, w.start(second))
	idle()
	code, third := w.completeNext(second, map[string]any{"v": "go-2"})
	require.Equal(t, http.StatusOK, code)
	require.NotNil(t, third)
	require.Equal(t, "third", third.StepName)
	require.Equal(t, http.StatusOK, w.start(third))
	idle()
	code, none := w.completeNext(third, map[string]any{"v": "done"})
	require.Equal(t, http.StatusOK, code)
	require.Nil(t, none, "nothing is ready")
	j := s.waitJob(id, stroem.JobCompleted)
	for _, st := range j.Steps {
		require.NotNil(t, st.WorkerID, st.StepName)
		require.Equal(t, w.id, *st.WorkerID, st.StepName)
	}
	require.Equal(t, 1, s.app.orch.WaitingClaims(), "the other worker's long poll got nothing of the chain")

	// It is still waiting: the next job's step goes to it.
	s.execute("chain", nil)
	got := <-polled
	require.NotNil(t, got)
	require.Equal(t, "first", got.StepName)

	// A completion without a claim is answered as before.
	code, body := s.do("POST", fmt.Sprintf("/worker/jobs/%s/steps/%s/complete", got.JobID, got.StepName),
		stroem.Completion{WorkerID: other.id, Attempt: got.Attempt, Output: map[string]any{"v": "x"}}, other.cred)
	require.Equal(t, http.StatusOK, code)
	require.JSONEq(t, `{}`, string(body))
}

// A refused completion (stale) brings no step, and the ready step stays for
// the next claim; a claim for another worker is refused.
func TestScenarioStaleCompletionBringsNothing(t *testing.T) {
	t.Parallel()
	s := newScenario(t, chainWorkflow, scenarioOpts{})
	w, other := s.worker(), s.worker()
	s.execute("branches", nil) // a and solo ready
	mine := w.claim(10 * time.Second)
	require.NotNil(t, mine)

	stale := *mine
	stale.Attempt = 7
	code, next := w.completeNext(&stale, nil)
	require.Equal(t, http.StatusConflict, code)
	require.Nil(t, next)
	left := map[string]string{"a": "solo", "solo": "a"}[mine.StepName]
	require.Equal(t, left, other.mustClaim(left).StepName, "the ready step was not handed to the stale completion")

	code, body := s.do("POST", fmt.Sprintf("/worker/jobs/%s/steps/%s/complete", mine.JobID, mine.StepName), stroem.Completion{
		WorkerID: w.id, Attempt: mine.Attempt, Next: &stroem.NextClaim{WorkerID: other.id, Capabilities: []string{"shell"}},
	}, w.cred)
	require.Equal(t, http.StatusBadRequest, code, string(body))
	require.Equal(t, stroem.StepRunning, s.stepStatuses(mine.JobID)[mine.StepName], "a refused request records nothing")
}

// A completion whose answer was lost is sent again: the retry is accepted as
// a no-op and brings the step the lost answer carried — the same attempt,
// started — which is not given back for want of a `start` (the start
// timeout is half the 2 s lease here) and goes to no other worker.
func TestScenarioLostCompletionAnswerBringsTheStepAgain(t *testing.T) {
	t.Parallel()
	s := newScenario(t, chainWorkflow, scenarioOpts{lease: 2 * time.Second})
	w, other := s.worker(), s.worker()
	id := s.execute("chain", nil)
	first := w.mustClaim("first")

	code, lost := w.completeNext(first, map[string]any{"v": "x"})
	require.Equal(t, http.StatusOK, code)
	require.NotNil(t, lost, "the answer carried second; the worker never sees it")
	require.Equal(t, "second", lost.StepName)
	require.True(t, lost.Started)
	code, again := w.completeNext(first, map[string]any{"v": "x"})
	require.Equal(t, http.StatusOK, code, "the retried completion is a no-op")
	require.NotNil(t, again, "the retry brings second again")
	require.Equal(t, [2]any{lost.StepName, lost.Attempt}, [2]any{again.StepName, again.Attempt})
	require.True(t, again.Started)

	w.heartbeat(again)
	require.Nil(t, other.claim(1300*time.Millisecond), "past the start timeout: second is not given back")
	w.heartbeat(again)
	require.Equal(t, http.StatusOK, w.complete(again, 0, map[string]any{"v": "y"}, ""))
	j := s.job(id)
	require.Len(t, j.Steps[1].Attempts, 1)
	require.Equal(t, w.id, j.Steps[1].Attempts[0].WorkerID)
	require.Equal(t, "completed", string(j.Steps[1].Attempts[0].Status))
}
