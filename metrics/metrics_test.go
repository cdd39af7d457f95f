package metrics_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/metrics"
	"github.com/stroem/stroem/persistence"
	"github.com/stroem/stroem/persistence/sqlite/sqlitetest"
	"github.com/stroem/stroem/runner"
	"github.com/stroem/stroem/stroemtest"
)

// gather returns the value of one series in the text format, or "".
func series(t *testing.T, m *metrics.Server, name string) string {
	t.Helper()
	fams, err := m.Registry().Gather()
	require.NoError(t, err)
	var b strings.Builder
	for _, f := range fams {
		if f.GetName() == name {
			b.WriteString(f.String())
		}
	}
	return b.String()
}

func count(t *testing.T, m *metrics.Server, name string, labels ...string) float64 {
	t.Helper()
	return countIn(t, m.Registry(), name, labels...)
}

// countIn sums the series of name whose labels include the given pairs.
func countIn(t *testing.T, g prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	fams, err := g.Gather()
	require.NoError(t, err)
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	var sum float64
	for _, f := range fams {
		if f.GetName() == name {
			n, _ := stroemtest.MetricSum(f, want)
			sum += n
		}
	}
	return sum
}

func newStore(t *testing.T) (*metrics.Server, persistence.Store) {
	t.Helper()
	s := sqlitetest.Store(t)
	m := metrics.NewServer("replica-1", s)
	return m, metrics.WrapStore(s, m)
}

func insert(t *testing.T, s persistence.Store, src stroem.SourceType) string {
	t.Helper()
	nj := persistence.NewJob{
		Job:        stroem.Job{ID: uuid.NewString(), Workspace: "default", TaskName: "t", Status: stroem.JobPending, SourceType: src},
		SnapshotID: "snap", SnapshotBody: []byte(`{}`),
		Steps: []persistence.NewStep{
			{Name: "a", ActionName: "a", ActionType: "shell", Status: stroem.StepReady, Input: map[string]any{}},
			{Name: "b", ActionName: "b", ActionType: "shell", Status: stroem.StepPending, DependsOn: []string{"a"}},
		},
	}
	require.NoError(t, s.JobInsert(context.Background(), nj))
	return nj.Job.ID
}

// The store decorator sees every job's life through JobInsert, StepsClaim
// and JobUpdate: created, started (claim and hand-off), finished by
// result, lease expiries, hop and step durations, and the job's end.
func TestStoreObservesAJobsLife(t *testing.T) {
	t.Parallel()
	m, s := newStore(t)
	ctx := context.Background()
	id := insert(t, s, stroem.SourceTrigger)
	require.Equal(t, 1.0, count(t, m, "stroem_jobs_created_total", "source_type", "trigger"))

	got, err := s.StepsClaim(ctx, persistence.ClaimParams{WorkerID: "w", Capabilities: []string{"shell"}, Limit: 5, Lease: time.Minute})
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, 1.0, count(t, m, "stroem_steps_started_total", "via", "claim"))
	require.Equal(t, 1.0, count(t, m, "stroem_claim_duration_seconds"))

	// a completes and b is handed to a waiting worker in the same update.
	_, err = s.JobUpdate(ctx, id, func(st *persistence.JobState) error {
		a, b := st.Mut("a"), st.Mut("b")
		a.Status, a.AttemptStatus, a.Output = stroem.StepCompleted, stroem.AttemptCompleted, map[string]any{}
		b.Status, b.Attempt, b.AttemptStatus, b.WorkerID = stroem.StepRunning, 1, stroem.AttemptRunning, "w"
		b.Input, b.StartedAt = map[string]any{}, &st.Now // as actors' hand-off does
		lease := st.Now.Add(time.Minute)
		b.LeaseExpiresAt = &lease
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, 1.0, count(t, m, "stroem_steps_started_total", "via", "handoff"))
	require.Equal(t, 1.0, count(t, m, "stroem_steps_finished_total", "result", "completed"))
	require.Equal(t, 1.0, count(t, m, "stroem_step_duration_seconds", "result", "completed"))
	require.Zero(t, count(t, m, "stroem_hop_duration_seconds"), "a root step has no hop")

	// b's worker is lost: the lease expires, the job fails.
	_, err = s.JobUpdate(ctx, id, func(st *persistence.JobState) error {
		b := st.Mut("b")
		b.Status, b.AttemptStatus, b.ErrorMessage = stroem.StepFailed, stroem.AttemptLost, "worker lost"
		st.Job.Status = stroem.JobFailed
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, 1.0, count(t, m, "stroem_steps_finished_total", "result", "lost"))
	require.Equal(t, 1.0, count(t, m, "stroem_lease_expiries_total"))
	require.Equal(t, 1.0, count(t, m, "stroem_hop_duration_seconds"), "b's hop from a's completion")
	require.Equal(t, 1.0, count(t, m, "stroem_jobs_completed_total", "status", "failed"))

	// A no-op update of the ended job counts nothing again.
	_, err = s.JobUpdate(ctx, id, func(*persistence.JobState) error { return nil })
	require.NoError(t, err)
	require.Equal(t, 1.0, count(t, m, "stroem_jobs_completed_total", "status", "failed"))
	require.Equal(t, 2.0, count(t, m, "stroem_steps_finished_total"))

	// An update whose function fails records nothing.
	_, err = s.JobUpdate(ctx, insert(t, s, stroem.SourceAPI), func(st *persistence.JobState) error {
		st.Job.Status = stroem.JobCancelled
		return stroem.Errorf(stroem.CodeConflict, "stale")
	})
	require.ErrorIs(t, err, stroem.ErrConflict)
	require.Zero(t, count(t, m, "stroem_jobs_completed_total", "status", "cancelled"))
	require.Zero(t, count(t, m, "stroem_store_errors_total"), "a conflict is an answer, not a store error")

	require.Equal(t, 2.0, count(t, m, "stroem_jobs_created_total", "replica_id", "replica-1"), "every series carries replica_id")
}

// A job stored ended (the skipped tick of a `concurrency: skip` trigger)
// never goes through a transition: its insert counts it as ended.
func TestStoreCountsAJobStoredEnded(t *testing.T) {
	t.Parallel()
	m, s := newStore(t)
	require.Contains(t, series(t, m, "stroem_jobs_completed_total"), `value:"skipped"`, "the series exists before the first skip")
	nj := persistence.NewJob{
		Job:        stroem.Job{ID: uuid.NewString(), Workspace: "default", TaskName: "t", Status: stroem.JobSkipped, SourceType: stroem.SourceTrigger},
		SnapshotID: "snap", SnapshotBody: []byte(`{}`),
	}
	require.NoError(t, s.JobInsert(context.Background(), nj))
	require.Equal(t, 1.0, count(t, m, "stroem_jobs_created_total", "source_type", "trigger"))
	require.Equal(t, 1.0, count(t, m, "stroem_jobs_completed_total", "status", "skipped"))
}

func TestStoreCountsStoreErrorsAndScrapeGauges(t *testing.T) {
	t.Parallel()
	m, s := newStore(t)
	ctx := context.Background()
	insert(t, s, stroem.SourceAPI)
	_, err := s.WorkerRegister(ctx, stroem.WorkerRegistration{Name: "w", Capabilities: []string{"shell"}})
	require.NoError(t, err)
	require.Equal(t, 1.0, count(t, m, "stroem_jobs_in_flight", "status", "pending"))
	require.Equal(t, 0.0, count(t, m, "stroem_jobs_in_flight", "status", "running"))
	require.Equal(t, 1.0, count(t, m, "stroem_steps_ready_by_capability", "capability", "shell"))
	require.Equal(t, 1.0, count(t, m, "stroem_steps_ready"))
	require.Equal(t, 1.0, count(t, m, "stroem_workers_active"))

	_, err = s.JobGet(ctx, uuid.NewString())
	require.ErrorIs(t, err, stroem.ErrNotFound)
	require.Zero(t, count(t, m, "stroem_store_errors_total"), "not found is an answer")

	s.Close()
	_, err = s.JobList(ctx, persistence.JobFilter{})
	require.ErrorIs(t, err, stroem.ErrUnavailable)
	require.Equal(t, 1.0, count(t, m, "stroem_store_errors_total", "op", "JobList"))
	// A failed sample emits no gauges (stale, not zero) and counts an error.
	require.Empty(t, series(t, m, "stroem_workers_active"))
	require.GreaterOrEqual(t, count(t, m, "stroem_store_errors_total", "op", "MetricsSample"), 1.0, "one per scrape")
}

func TestHandlerNeedsTheTokenUnlessPublic(t *testing.T) {
	t.Parallel()
	m := metrics.NewServer("r", nil)
	for _, tc := range []struct {
		name   string
		public bool
		token  string
		header string
		want   int
	}{
		{"no header", false, "tok", "", http.StatusUnauthorized},
		{"wrong token", false, "tok", "Bearer nope", http.StatusUnauthorized},
		{"not bearer", false, "tok", "tok", http.StatusUnauthorized},
		{"no token configured", false, "", "Bearer ", http.StatusUnauthorized},
		{"right token", false, "tok", "Bearer tok", http.StatusOK},
		{"public", true, "tok", "", http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			rec := httptest.NewRecorder()
			m.Handler(tc.token, tc.public).ServeHTTP(rec, req)
			require.Equal(t, tc.want, rec.Code)
			if tc.want == http.StatusUnauthorized {
				require.JSONEq(t, `{"error":"missing or wrong token (Authorization: Bearer <worker_token>, or set metrics.public)"}`, rec.Body.String())
				require.NotContains(t, rec.Body.String(), "tok\"")
			} else {
				require.Contains(t, rec.Body.String(), "go_goroutines")
			}
		})
	}
}

func TestInstrumentCountsAPIRoutesAndWebhooks(t *testing.T) {
	t.Parallel()
	m := metrics.NewServer("r", nil)
	r := chi.NewRouter()
	r.Get("/api/jobs/{id}", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNotFound) })
	r.Post("/hooks/{trigger}", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	r.Post("/worker/jobs/claim", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	r.Get("/api/seen", func(w http.ResponseWriter, req *http.Request) {
		require.Equal(t, "/api/seen", chi.RouteContext(req.Context()).RoutePattern(), "handlers still see chi's routing")
	})
	h := m.Instrument(r)
	for _, p := range []struct{ method, path string }{
		{"GET", "/api/jobs/" + uuid.NewString()}, {"GET", "/api/jobs/" + uuid.NewString()},
		{"POST", "/hooks/deploy"}, {"POST", "/worker/jobs/claim"}, {"GET", "/api/nope"}, {"GET", "/api/seen"},
	} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(p.method, p.path, nil))
	}
	require.Equal(t, 2.0, count(t, m, "stroem_http_requests_total", "route", "/api/jobs/{id}", "status", "404", "method", "GET"))
	require.Equal(t, 1.0, count(t, m, "stroem_http_requests_total", "route", "unmatched"))
	require.Equal(t, 4.0, count(t, m, "stroem_http_requests_total"), "worker polling is not counted")
	require.Equal(t, 4.0, count(t, m, "stroem_http_request_duration_seconds"))
	require.Equal(t, 1.0, count(t, m, "stroem_webhook_calls_total", "status", "200"))
}

type fakeHub struct{ published int }

func (h *fakeHub) Publish(string, []stroem.LogLine) { h.published++ }
func (h *fakeHub) ServeHTTP(w http.ResponseWriter, _ *http.Request, _ string) {
	w.WriteHeader(http.StatusOK)
}

func TestHubCountsLinesBytesAndClients(t *testing.T) {
	t.Parallel()
	m := metrics.NewServer("r", nil)
	inner := &fakeHub{}
	h := metrics.WrapHub(inner, m)
	h.Publish("j", []stroem.LogLine{{Text: "hello"}, {Text: "wörld"}})
	require.Equal(t, 1, inner.published)
	require.Equal(t, 2.0, count(t, m, "stroem_log_lines_total"))
	require.Equal(t, 11.0, count(t, m, "stroem_log_bytes_total"))

	entered := make(chan struct{})
	release := make(chan struct{})
	slow := &blockingHub{entered: entered, release: release}
	h2 := metrics.WrapHub(slow, m)
	done := make(chan struct{})
	go func() {
		defer close(done)
		h2.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil), "j")
	}()
	<-entered
	require.Equal(t, 1.0, count(t, m, "stroem_sse_clients"))
	close(release)
	<-done
	require.Equal(t, 0.0, count(t, m, "stroem_sse_clients"))
	require.Same(t, metrics.Hub(inner), metrics.WrapHub(inner, nil), "no metrics, no wrapper")
}

type blockingHub struct{ entered, release chan struct{} }

func (h *blockingHub) Publish(string, []stroem.LogLine) {}
func (h *blockingHub) ServeHTTP(http.ResponseWriter, *http.Request, string) {
	close(h.entered)
	<-h.release
}

type fakeRunner struct{ res runner.Result }

func (f fakeRunner) Run(_ context.Context, _ runner.Step, sink func(stroem.PushLine)) runner.Result {
	sink(stroem.PushLine{Text: "abc"})
	return f.res
}

func TestWorkerRunnerMetrics(t *testing.T) {
	t.Parallel()
	m := metrics.NewWorker("w1", 4)
	for _, res := range []runner.Result{{}, {ExitCode: 1, Error: "boom"}, {Cancelled: true, ExitCode: 143, Error: "x"}, {TimedOut: true, ExitCode: 143, Error: "x"}} {
		var lines int
		m.WrapRunner(fakeRunner{res: res}).Run(context.Background(), runner.Step{}, func(stroem.PushLine) { lines++ })
		require.Equal(t, 1, lines, "lines pass through")
	}
	for _, result := range []string{"completed", "failed", "cancelled", "timed_out"} {
		require.Equal(t, 1.0, countIn(t, m.Registry(), "stroem_worker_steps_finished_total", "result", result), result)
		require.Equal(t, 1.0, countIn(t, m.Registry(), "stroem_worker_step_duration_seconds", "result", result), result)
	}
	require.Equal(t, 4.0, countIn(t, m.Registry(), "stroem_worker_free_slots"), "slots are free again after the runs")
	require.Equal(t, 0.0, countIn(t, m.Registry(), "stroem_worker_steps_running"))
	require.Equal(t, 4.0, countIn(t, m.Registry(), "stroem_worker_log_lines_total"))
	require.Equal(t, 12.0, countIn(t, m.Registry(), "stroem_worker_log_bytes_total"))
	require.Equal(t, 4.0, countIn(t, m.Registry(), "stroem_worker_log_lines_total", "worker", "w1"), "the worker's name labels its series")

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	require.Contains(t, rec.Body.String(), "stroem_worker_free_slots")
}

// The counters compare each step fn took with the step as read: a step
// taken and left as it was counts nothing, and a step taken again after a
// Share in the middle of fn (a wrapper's before-image) counts once.
func TestStoreCountsATakenStepOnce(t *testing.T) {
	t.Parallel()
	m, s := newStore(t)
	ctx := context.Background()
	id := insert(t, s, stroem.SourceAPI)

	_, err := s.JobUpdate(ctx, id, func(st *persistence.JobState) error {
		_, _ = st.Mut("a"), st.Mut("b") // taken, not changed
		return nil
	})
	require.NoError(t, err)
	require.Zero(t, count(t, m, "stroem_steps_started_total"))

	_, err = s.JobUpdate(ctx, id, func(st *persistence.JobState) error {
		a := st.Mut("a") // handed to a waiting worker
		a.Status, a.Attempt, a.AttemptStatus, a.WorkerID, a.StartedAt = stroem.StepRunning, 1, stroem.AttemptRunning, "w", &st.Now
		lease := st.Now.Add(time.Minute)
		a.LeaseExpiresAt = &lease
		_ = st.Share()
		st.Mut("a").ErrorMessage = ""
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, 1.0, count(t, m, "stroem_steps_started_total", "via", "handoff"))
}
