package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/stroemtest"
)

const opsWorkflow = `
actions:
  say:
    type: shell
    cmd: 'echo "line one"; echo "line two"'
  long:
    type: shell
    cmd: 'echo "started"; sleep 300'
tasks:
  hello:
    flow:
      greet: { action: say }
      again: { action: say, depends_on: [greet] }
  sleeper:
    flow:
      sleep: { action: long }
`

// scrape reads /metrics with token ("" sends none) and returns the status
// and the parsed families.
func (s *stack) scrape(token string) (int, map[string]*dto.MetricFamily) {
	s.t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.url+"/metrics", nil)
	require.NoError(s.t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := s.http.Do(req)
	require.NoError(s.t, err)
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, nil
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	require.NoError(s.t, err)
	return resp.StatusCode, fams
}

// value sums the samples of a family whose labels include want.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
	return stroemtest.MetricSum(f, want)
}

// Known activity — three jobs run, one cancelled while its step runs — is
// what /metrics counts; the scrape needs the worker token.
func TestMetricsAfterKnownActivity(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOpts{workspace: workspaceDir(t, opsWorkflow)})

	for range 3 {
		require.Equal(t, stroem.JobCompleted, s.waitJob(s.execute("hello", nil)).Status)
	}
	sleeper := s.execute("sleeper", nil)
	s.waitLog(sleeper, "started")
	code, body := s.do("POST", "/api/jobs/"+sleeper+"/cancel", nil)
	require.Equal(t, http.StatusOK, code, string(body))
	require.Equal(t, stroem.JobCancelled, s.waitJob(sleeper).Status)

	code, _ = s.scrape("")
	require.Equal(t, http.StatusUnauthorized, code, "no token, no metrics")
	code, _ = s.scrape("wrong")
	require.Equal(t, http.StatusUnauthorized, code)

	var fams map[string]*dto.MetricFamily
	metric := func(name string, labels map[string]string) float64 {
		v, ok := value(fams, name, labels)
		require.True(t, ok, "%s%v is exported", name, labels)
		return v
	}
	// The cancelled attempt is counted when the worker's report arrives,
	// which may be just after the job ended.
	require.Eventually(t, func() bool {
		code, fams = s.scrape(s.token)
		v, _ := value(fams, "stroem_steps_finished_total", map[string]string{"result": "cancelled"})
		return code == http.StatusOK && v == 1
	}, waitFor, 50*time.Millisecond, "the cancelled attempt is counted")

	require.Equal(t, 4.0, metric("stroem_jobs_created_total", map[string]string{"source_type": "api"}))
	require.Equal(t, 3.0, metric("stroem_jobs_completed_total", map[string]string{"status": "completed"}), "3 jobs run → 3 counted")
	require.Equal(t, 1.0, metric("stroem_jobs_completed_total", map[string]string{"status": "cancelled"}), "the cancelled job counted as cancelled")
	require.Equal(t, 0.0, metric("stroem_jobs_completed_total", map[string]string{"status": "failed"}))
	require.Equal(t, 7.0, metric("stroem_steps_started_total", nil), "six steps of the hello jobs and the sleeper's")
	require.Equal(t, 6.0, metric("stroem_steps_finished_total", map[string]string{"result": "completed"}))
	require.Equal(t, 7.0, metric("stroem_step_duration_seconds", nil), "one duration per ended attempt")
	require.Equal(t, 3.0, metric("stroem_hop_duration_seconds", nil), "one hop per dependent step")
	require.Positive(t, metric("stroem_claim_duration_seconds", nil))
	require.Equal(t, 0.0, metric("stroem_lease_expiries_total", nil))
	require.GreaterOrEqual(t, metric("stroem_log_lines_total", nil), 13.0, "two lines per hello step, one of the sleeper")
	require.Positive(t, metric("stroem_log_bytes_total", nil))
	require.Equal(t, 1.0, metric("stroem_workers_active", nil))
	require.Equal(t, 0.0, metric("stroem_jobs_in_flight", map[string]string{"status": "running"}))
	require.Equal(t, 0.0, metric("stroem_jobs_in_flight", map[string]string{"status": "pending"}))
	require.Equal(t, 0.0, metric("stroem_steps_ready", nil))
	require.Equal(t, 0.0, metric("stroem_steps_running", nil))
	require.Equal(t, 0.0, metric("stroem_sse_clients", nil))
	require.Equal(t, 4.0, metric("stroem_http_requests_total", map[string]string{
		"method": "POST", "route": "/api/workspaces/{ws}/tasks/{task}/execute", "status": "201",
	}), "requests are counted by route pattern")
	require.NotContains(t, fams["stroem_http_requests_total"].String(), sleeper, "no raw paths in labels")
	require.Positive(t, metric("go_goroutines", nil), "Go runtime metrics")
	require.Positive(t, metric("process_resident_memory_bytes", nil), "process metrics")

	for _, m := range fams["stroem_jobs_created_total"].Metric {
		var replica string
		for _, l := range m.Label {
			if l.GetName() == "replica_id" {
				replica = l.GetValue()
			}
		}
		require.NotEmpty(t, replica, "every series carries replica_id")
	}
}

// `stroem admin prune` deletes terminal jobs older than job_days with their
// log lines, after a dry run that only counts them.
func TestAdminPrune(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOpts{workspace: workspaceDir(t, opsWorkflow)})
	old, recent := s.execute("hello", nil), s.execute("hello", nil)
	s.waitJob(old)
	s.waitJob(recent)
	logLines := func(ctx context.Context, conn *pgx.Conn) int {
		var n int
		require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM job_logs WHERE job_id = $1`, old).Scan(&n))
		return n
	}

	// Age one job by 40 days, straight in the database.
	cfgPath := filepath.Join(s.dir, "server.yaml")
	b, err := os.ReadFile(cfgPath)
	require.NoError(t, err)
	var cfg struct {
		DB struct {
			URL string `json:"url"`
		} `json:"db"`
	}
	require.NoError(t, json.Unmarshal(b, &cfg))
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, cfg.DB.URL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	require.Positive(t, logLines(ctx, conn), "the old job has log lines")
	_, err = conn.Exec(ctx, `UPDATE jobs SET created_at = created_at - interval '40 days',
		completed_at = completed_at - interval '40 days' WHERE id = $1`, old)
	require.NoError(t, err)

	code, out, errOut := runCLI(t, nil, "admin", "prune", "--config", cfgPath, "--job-days", "30", "--dry-run")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	require.Regexp(t, `(?m)^jobs\s+1\s+ended before`, out)
	require.Regexp(t, `(?m)^steps\s+2\s`, out)
	require.Contains(t, out, "would delete")
	require.Equal(t, stroem.JobCompleted, s.job(old).Status, "a dry run deletes nothing")

	code, out, errOut = runCLI(t, nil, "admin", "prune", "--config", cfgPath, "--job-days", "30")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	require.Regexp(t, `(?m)^jobs\s+1\s`, out)
	code, _ = s.do("GET", "/api/jobs/"+old, nil)
	require.Equal(t, http.StatusNotFound, code, "the old job is gone")
	require.Zero(t, logLines(ctx, conn), "with its log lines")
	require.Equal(t, stroem.JobCompleted, s.job(recent).Status, "the recent job stays")

	code, _, errOut = runCLI(t, nil, "admin", "prune", "--config", cfgPath)
	require.Equal(t, 2, code, "retention not configured and no flags: a usage error")
	require.True(t, strings.Contains(errOut, "nothing to prune"), errOut)
}

// `stroem version` prints the values stamped at build time (the suite
// builds with -X main.version=e2e and a commit and date).
func TestVersionIsStamped(t *testing.T) {
	t.Parallel()
	if skipAll {
		t.Skip("end-to-end tests are skipped under -short")
	}
	code, out, errOut := runCLI(t, context.Background(), "version")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "stroem e2e\n")
	require.Contains(t, out, "commit: e2ecommit\n")
	require.Contains(t, out, "built:  2026-01-02T03:04:05Z\n")
	code, out2, _ := runCLI(t, context.Background(), "--version")
	require.Equal(t, 0, code)
	require.Equal(t, out, out2, "--version prints the same")
}
