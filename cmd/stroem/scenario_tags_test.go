package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/http/client"
	"github.com/stroem/stroem/runner"
)

const tagsWorkflow = `
actions:
  plain:
    type: shell
    cmd: "true"
  gpu:
    type: shell
    cmd: "true"
    tags: [gpu]
tasks:
  mixed:
    flow:
      a: { action: plain }
      b: { action: gpu, depends_on: [a] }
      c: { action: plain, depends_on: [b] }
      d: { action: gpu, depends_on: [c] }
      e: { action: gpu }
      f: { action: plain }
`

// startTaggedWorker runs a real worker (ShellRunner) named name with tags
// and exclusive against the scenario's server until the test ends.
func startTaggedWorker(t *testing.T, s *scenario, name string, slots int, tags []string, exclusive bool) {
	t.Helper()
	c, err := client.New(s.url, client.WithToken(testToken))
	require.NoError(t, err)
	w, err := runner.NewWorker(c, runner.WorkerConfig{
		Name: name, Capabilities: []string{"shell"}, Tags: tags, Exclusive: exclusive, MaxConcurrent: slots,
		WorkDir: t.TempDir(), ShutdownGrace: time.Second, ClaimWait: time.Second,
	}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
}

// Two real workers, one without tags and one reserved for gpu (exclusive):
// across claims, long polls, hand-offs and the steps completions bring
// their slots, every gpu step runs on the gpu worker and every other step
// on the other one.
func TestScenarioTagsRouteStepsBetweenRealWorkers(t *testing.T) {
	t.Parallel()
	s := newScenario(t, tagsWorkflow, scenarioOpts{})
	startTaggedWorker(t, s, "plain-worker", 2, nil, false)
	startTaggedWorker(t, s, "gpu-worker", 2, []string{"gpu"}, true)

	var ids []string
	for range 6 {
		ids = append(ids, s.execute("mixed", nil))
	}
	jobs := make([]stroem.Job, len(ids))
	for i, id := range ids {
		jobs[i] = s.waitJob(id, stroem.JobCompleted)
	}
	code, body := s.do("GET", "/api/workers", nil, "")
	require.Equal(t, http.StatusOK, code, string(body))
	var list struct {
		Items []stroem.Worker `json:"items"`
	}
	require.NoError(t, json.Unmarshal(body, &list))
	names := map[string]string{}
	for _, w := range list.Items {
		names[w.ID] = w.Name
		if w.Name == "gpu-worker" {
			require.Equal(t, []string{"gpu"}, w.Tags)
			require.True(t, w.Exclusive, "the registration carries exclusive")
		}
	}
	for _, j := range jobs {
		id := j.ID
		for _, st := range j.Steps {
			require.NotNil(t, st.WorkerID, st.StepName)
			want := "plain-worker"
			if len(st.Tags) > 0 {
				want = "gpu-worker"
			}
			require.Equal(t, want, names[*st.WorkerID], "job %s step %s (tags %v)", id, st.StepName, st.Tags)
		}
	}
}
