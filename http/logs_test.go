package http

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/workspace"
)

// logsStore serves one job and its lines as the stores do (LogScan keeps a
// step's lines, its instances' too, stroem.InStep), and records what each
// LogScan asked for.
type logsStore struct {
	Store // only JobGet is called
	job   stroem.Job
	lines []stroem.LogLine

	mu    sync.Mutex
	scans []string // the step of each LogScan
}

func (s *logsStore) JobGet(_ context.Context, id string) (*stroem.Job, error) {
	if id != s.job.ID {
		return nil, stroem.Errorf(stroem.CodeNotFound, "job %s not found", id)
	}
	j := s.job
	j.Steps = append([]stroem.Step(nil), s.job.Steps...)
	return &j, nil
}

func (s *logsStore) LogScan(_ context.Context, jobID string, afterSeq int64, step string, fn func(stroem.LogLine) error) error {
	s.mu.Lock()
	s.scans = append(s.scans, step)
	s.mu.Unlock()
	for _, l := range s.lines {
		if l.Seq > afterSeq && stroem.InStep(l.Step, step) {
			if err := fn(l); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *logsStore) LogTruncatedSteps(context.Context, string) ([]string, error) { return nil, nil }

// A loop step's logs are its instances' lines, asked of the store by the
// step (which reads them through its indexes), never picked from the whole
// job's log; an unknown step is 404 and a step without lines has none.
func TestJobLogsOfAStepAskTheStoreForThatStep(t *testing.T) {
	t.Parallel()
	const id = "0b7e2c1e-5d7b-4c4e-9f3a-2a1b3c4d5e6f"
	st := &logsStore{job: stroem.Job{ID: id, Workspace: "default", TaskName: "fan", Steps: []stroem.Step{
		{StepName: "build"}, {StepName: "deploy", Instances: []string{"deploy[0]", "deploy[1]"}},
		{StepName: "deploy[0]", Loop: "deploy"}, {StepName: "deploy[1]", Loop: "deploy"},
		{StepName: "deploy2"}, {StepName: "quiet"},
	}}, lines: []stroem.LogLine{
		{Seq: 1, Step: "build", Text: "b"}, {Seq: 2, Step: "deploy[0]", Text: "d0"}, {Seq: 3, Step: "deploy2", Text: "x"},
		{Seq: 4, Step: "deploy[1]", Text: "d1"}, {Seq: 5, Step: "deploy[0]", Text: "d0b"},
	}}
	wss := reloadFailing{ws: &workspace.Workspace{Name: "default"}}
	h := NewServer(Config{}, nil, nil, st, wss, st, nil, nil).Handler()
	get := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/api"+path, nil))
		return rec.Code, rec.Body.String()
	}

	for _, tc := range []struct{ path, step, want string }{
		{"/jobs/" + id + "/logs?step=deploy&format=text", "deploy", "d0\nd1\nd0b\n"},
		{"/jobs/" + id + "/steps/deploy/logs?format=text", "deploy", "d0\nd1\nd0b\n"},
		{"/jobs/" + id + "/logs?step=deploy%5B0%5D&format=text", "deploy[0]", "d0\nd0b\n"},
		{"/jobs/" + id + "/logs?step=deploy2&format=text", "deploy2", "x\n"},
		{"/jobs/" + id + "/logs?step=quiet", "quiet", `{"logs":""}` + "\n"},
		{"/jobs/" + id + "/logs?format=text", "", "b\nd0\nx\nd1\nd0b\n"},
	} {
		st.mu.Lock()
		st.scans = nil
		st.mu.Unlock()
		code, body := get(tc.path)
		require.Equal(t, http.StatusOK, code, tc.path)
		require.Equal(t, tc.want, body, tc.path)
		require.Equal(t, []string{tc.step}, st.scans, "%s: one scan, of the step", tc.path)
	}

	st.scans = nil
	code, _ := get("/jobs/" + id + "/steps/deplo/logs")
	require.Equal(t, http.StatusNotFound, code)
	code, _ = get("/jobs/" + id + "/logs?step=deploy%5B2%5D")
	require.Equal(t, http.StatusNotFound, code)
	require.Empty(t, st.scans, "an unknown step reads no line")
}
