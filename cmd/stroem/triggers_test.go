package main

// In-process scenarios for triggers (issue 11): the cron scheduler with one
// and two servers on one database, its concurrency policies, restarts and
// reloads; webhooks; the trigger list and `stroem triggers`.

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/http/client"
	"github.com/stroem/stroem/persistence/postgres"
)

// triggerEnv is a scenario with one or more workspaces, and a direct
// connection to its database for assertions on ticks and jobs.
type triggerEnv struct {
	*scenario
	dirs map[string]string // workspace name → folder
	db   *postgres.Store
}

// newTriggerEnv prepares (but does not start) a server whose workspaces
// are the given workflow files; before runs on the database first.
func newTriggerEnv(t *testing.T, workspaces map[string]string) *triggerEnv {
	t.Helper()
	cfg := testServerConfig(t)
	cfg.Workspaces = map[string]workspaceConfig{}
	e := &triggerEnv{dirs: map[string]string{}}
	for name, wf := range workspaces {
		dir := t.TempDir()
		require.NoError(t, os.MkdirAll(filepath.Join(dir, ".workflows"), 0o755))
		e.dirs[name] = dir
		e.write(t, name, wf)
		cfg.Workspaces[name] = workspaceConfig{Type: "folder", Path: dir}
	}
	db, err := postgres.Open(context.Background(), cfg.DB.URL, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(db.Close)
	e.db = db
	e.scenario = &scenario{t: t, cfg: cfg, client: &http.Client{Timeout: 60 * time.Second}}
	t.Cleanup(func() { e.stop() })
	return e
}

// write replaces a workspace's workflow file atomically.
func (e *triggerEnv) write(t *testing.T, ws, workflow string) {
	t.Helper()
	dir := e.dirs[ws]
	tmp := filepath.Join(dir, "test.yaml.tmp")
	require.NoError(t, os.WriteFile(tmp, []byte(workflow), 0o644))
	require.NoError(t, os.Rename(tmp, filepath.Join(dir, ".workflows", "test.yaml")))
}

// another starts a second server on the same database and workspaces.
func (e *triggerEnv) another(t *testing.T) *scenario {
	t.Helper()
	cfg := e.cfg
	cfg.LogStorage.LocalDir = t.TempDir()
	s := &scenario{t: t, cfg: cfg, client: e.client}
	s.start()
	t.Cleanup(s.stop)
	return s
}

type tickRow struct {
	tick  time.Time
	jobID string
}

// ticks returns the fired ticks of a trigger of the default workspace.
func (e *triggerEnv) ticks(t *testing.T, trigger string) []tickRow {
	t.Helper()
	return mustRows(t, e.queryTicks, trigger)
}

// tickN counts a trigger's fired ticks, -1 when the query fails (countRows).
func (e *triggerEnv) tickN(trigger string) int { return countRows(e.queryTicks(trigger)) }

func (e *triggerEnv) queryTicks(trigger string) ([]tickRow, error) {
	rows, err := e.db.Pool().Query(context.Background(), `SELECT tick, job_id::text FROM trigger_ticks
		WHERE workspace = 'default' AND trigger_name = $1 ORDER BY tick`, trigger)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (r tickRow, err error) {
		return r, row.Scan(&r.tick, &r.jobID)
	})
}

type jobRow struct {
	id                 string
	status             stroem.JobStatus
	sourceType         string
	started, completed *time.Time
}

// triggerJobs returns the jobs a trigger started, oldest first.
func (e *triggerEnv) triggerJobs(t *testing.T, trigger string) []jobRow {
	t.Helper()
	return mustRows(t, e.queryTriggerJobs, trigger)
}

// jobN counts a trigger's jobs, -1 when the query fails (countRows).
func (e *triggerEnv) jobN(trigger string) int { return countRows(e.queryTriggerJobs(trigger)) }

func (e *triggerEnv) queryTriggerJobs(trigger string) ([]jobRow, error) {
	rows, err := e.db.Pool().Query(context.Background(), `SELECT id::text, status, source_type, started_at, completed_at
		FROM jobs WHERE source_id = 'default/' || $1 ORDER BY created_at, id`, trigger)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (r jobRow, err error) {
		var status string
		err = row.Scan(&r.id, &status, &r.sourceType, &r.started, &r.completed)
		r.status = stroem.JobStatus(status)
		return r, err
	})
}

// mustRows returns the rows query reads for trigger, failing t when it
// fails.
func mustRows[T any](t *testing.T, query func(trigger string) ([]T, error), trigger string) []T {
	t.Helper()
	out, err := query(trigger)
	require.NoError(t, err)
	return out
}

// countRows counts the rows a query read, -1 when it failed. Conditions of
// require.Eventually/Never use it: they may still run in their goroutine
// after the test ended, so they must not call t.
func countRows[T any](rows []T, err error) int {
	if err != nil {
		return -1
	}
	return len(rows)
}

// requireTicks checks that ticks are whole seconds, strictly increasing
// (none fired twice), and that each has its own job, of source trigger; and
// that the trigger has no job without a tick. Ticks need not be consecutive:
// when the server stalls past a tick (a loaded machine), the scheduler fires
// only the latest due tick and skips the others, by design (actors/scheduler.go).
func (e *triggerEnv) requireTicks(t *testing.T, trigger string, ticks []tickRow) {
	t.Helper()
	jobs := map[string]jobRow{}
	for _, j := range e.triggerJobs(t, trigger) {
		jobs[j.id] = j
	}
	require.Len(t, jobs, len(e.ticks(t, trigger)), "one job per tick, no job without a tick")
	seen := map[string]bool{}
	for i, r := range ticks {
		require.Equal(t, r.tick, r.tick.Truncate(time.Second), "a tick is the scheduled second, not the firing time")
		j, ok := jobs[r.jobID]
		require.True(t, ok, "tick %s names job %s", r.tick, r.jobID)
		require.False(t, seen[r.jobID], "tick %s shares job %s with another tick", r.tick, r.jobID)
		seen[r.jobID] = true
		require.Equal(t, "trigger", j.sourceType)
		if i > 0 {
			require.True(t, r.tick.After(ticks[i-1].tick), "ticks %s and %s are out of order or repeated", ticks[i-1].tick, r.tick)
		}
	}
}

const cronWorkflow = `
actions:
  work:
    type: shell
    cmd: "sleep {{ input.secs }}"
    input:
      secs: { type: integer, default: 0 }
tasks:
  tick-task:
    input:
      secs: { type: integer, default: 0 }
    flow:
      work: { action: work, input: { secs: "{{ input.secs }}" } }
triggers:
  every-second:
    type: scheduler
    cron: "* * * * * *"
    task: tick-task
    input: { secs: SECS }
    concurrency: CONCURRENCY
    enabled: ENABLED
`

func cronYAML(secs, concurrency string, enabled bool) string {
	en := "false"
	if enabled {
		en = "true"
	}
	return strings.NewReplacer("SECS", secs, "CONCURRENCY", concurrency, "ENABLED", en).Replace(cronWorkflow)
}

func TestTriggersCronTwoServersFireEachTickOnce(t *testing.T) {
	t.Parallel()
	e := newTriggerEnv(t, map[string]string{"default": cronYAML("0", "allow", true)})
	start := time.Now()
	e.start()
	e.another(t)
	require.Eventually(t, func() bool { return e.tickN("every-second") >= 5 },
		60*time.Second, 50*time.Millisecond, "the per-second trigger should fire")
	e.stop() // the second server keeps firing alone for a moment: fine
	stop := time.Now()
	elapsed := stop.Sub(start).Seconds()

	ticks := e.ticks(t, "every-second")
	e.requireTicks(t, "every-second", ticks)
	require.False(t, ticks[0].tick.Before(start.Truncate(time.Second)), "no tick before the first server started")
	// Ticks fired while the first server ran (the second may add some after
	// it stopped): at most one per whole second elapsed, plus the one due at
	// start. Fewer is fine: a stalled server fires only the latest due tick.
	// Two servers firing each tick would show as a repeated tick above, or as
	// more ticks than seconds here.
	var during int
	for _, r := range ticks {
		if !r.tick.After(stop) {
			during++
		}
	}
	require.GreaterOrEqual(t, during, 1, "the trigger fired while the first server ran")
	require.LessOrEqual(t, float64(during), elapsed+1, "%d ticks in %.1fs", during, elapsed)
}

func TestTriggersCronSkipNeverOverlaps(t *testing.T) {
	t.Parallel()
	// on_error would fire for a skipped job if hooks fired for it.
	onError := "\non_error:\n  - action: work\n    input: { secs: 0 }\n"
	e := newTriggerEnv(t, map[string]string{"default": cronYAML("3", "skip", true) + onError})
	e.start()
	startWorker(t, e.scenario, 2)

	require.Eventually(t, func() bool {
		n := 0
		jobs, _ := e.queryTriggerJobs("every-second")
		for _, j := range jobs {
			if j.status == stroem.JobCompleted {
				n++
			}
		}
		return n >= 2
	}, 90*time.Second, 100*time.Millisecond, "two 3-second jobs should complete")

	all := e.triggerJobs(t, "every-second")
	ticks := e.ticks(t, "every-second")
	require.Len(t, ticks, len(all), "each tick is recorded with its job, a skipped one too")
	// A skipped tick is a job of status skipped, as upstream: never started,
	// ended when recorded, no steps, no hooks.
	var jobs []jobRow
	var skipped []string
	for _, j := range all {
		if j.status != stroem.JobSkipped {
			jobs = append(jobs, j)
			continue
		}
		skipped = append(skipped, j.id)
		require.Nil(t, j.started, "a skipped job never started")
		require.NotNil(t, j.completed)
	}
	require.NotEmpty(t, skipped, "ticks were skipped while a job ran, each recorded as a skipped job")
	sj := e.job(skipped[0])
	require.Equal(t, stroem.JobSkipped, sj.Status)
	require.Empty(t, sj.Steps, "no step of a skipped job runs")
	require.Equal(t, "default/every-second", sj.SourceID)
	require.EqualValues(t, 3, sj.Input["secs"], "the input the job would have run with")
	code, body := e.do("GET", "/api/jobs?status=skipped&workspace=default", nil, "")
	require.Equal(t, http.StatusOK, code, string(body))
	var list struct {
		Items []stroem.Job `json:"items"`
	}
	require.NoError(t, json.Unmarshal(body, &list))
	require.NotEmpty(t, list.Items)
	for _, j := range list.Items {
		require.Equal(t, stroem.JobSkipped, j.Status, "the status filter takes skipped")
	}
	var hooks int
	require.NoError(t, e.db.Pool().QueryRow(context.Background(), `SELECT count(*) FROM jobs WHERE source_type = 'hook'`).Scan(&hooks))
	require.Zero(t, hooks, "a skipped job fires no hook (nor does a completed one here)")

	unfinished := 0
	for i, j := range jobs {
		if !j.status.Terminal() {
			unfinished++
			require.Equal(t, len(jobs)-1, i, "only the latest job may be unfinished")
			continue
		}
		require.Equal(t, stroem.JobCompleted, j.status)
		require.NotNil(t, j.started)
		require.NotNil(t, j.completed)
		if i+1 < len(jobs) && jobs[i+1].started != nil {
			require.True(t, jobs[i+1].started.After(*j.completed),
				"job %s started at %s before job %s completed at %s", jobs[i+1].id, jobs[i+1].started, j.id, j.completed)
		}
	}
	require.LessOrEqual(t, unfinished, 1)
}

// startWorker runs a real worker (ShellRunner) against the scenario's
// server until the test ends.
func startWorker(t *testing.T, s *scenario, slots int) {
	t.Helper()
	startTaggedWorker(t, s, "test-worker", slots, nil, false)
}

func TestTriggersCronCancelPrevious(t *testing.T) {
	t.Parallel()
	e := newTriggerEnv(t, map[string]string{"default": cronYAML("0", "cancel_previous", true)})
	e.start()
	w := e.worker()
	a := w.claim(30 * time.Second)
	require.NotNil(t, a, "the first tick's step is handed out")
	first := a.JobID

	// The next tick cancels the running job: its worker is told to stop.
	require.Eventually(t, func() bool { return len(w.heartbeat(a).Cancel) == 1 },
		30*time.Second, 50*time.Millisecond, "the next tick should cancel the previous job")
	require.Equal(t, http.StatusOK, w.complete(a, 143, nil, "cancelled"))
	e.waitJob(first, stroem.JobCancelled)

	require.Eventually(t, func() bool { return e.jobN("every-second") >= 4 }, 30*time.Second, 50*time.Millisecond)
	e.stop()
	jobs := e.triggerJobs(t, "every-second")
	for _, j := range jobs[:len(jobs)-2] {
		require.Equal(t, stroem.JobCancelled, j.status, "every job but the newest ones was cancelled by its successor")
	}
	e.requireTicks(t, "every-second", e.ticks(t, "every-second"))
}

func TestTriggersCronRestartFiresAtMostOneMissedTick(t *testing.T) {
	t.Parallel()
	e := newTriggerEnv(t, map[string]string{"default": cronYAML("0", "allow", true)})
	e.start()
	require.Eventually(t, func() bool { return e.tickN("every-second") >= 2 }, 60*time.Second, 50*time.Millisecond)
	e.stop()
	stoppedAt := time.Now()
	before := e.ticks(t, "every-second")
	last := before[len(before)-1].tick

	time.Sleep(2500 * time.Millisecond) // the outage
	restartAt := time.Now()
	e.start()
	require.Eventually(t, func() bool {
		ticks, err := e.queryTicks("every-second")
		return err == nil && len(ticks) > 0 && ticks[len(ticks)-1].tick.After(restartAt.Add(2*time.Second))
	}, 60*time.Second, 50*time.Millisecond, "the trigger should fire again after the restart")
	e.stop()

	ticks := e.ticks(t, "every-second")
	require.Equal(t, before, ticks[:len(before)], "nothing fired twice or out of order")
	after := ticks[len(before):]
	var missed int
	for _, r := range after {
		if r.tick.Before(restartAt) {
			missed++
		}
	}
	require.LessOrEqual(t, missed, 1, "at most one job for the ticks missed while no server ran")
	require.GreaterOrEqual(t, restartAt.Sub(stoppedAt), 2*time.Second)
	require.GreaterOrEqual(t, after[0].tick.Sub(last), 2*time.Second, "the missed ticks were not replayed")
	e.requireTicks(t, "every-second", after)
}

const hourlyWorkflow = `
actions:
  noop: { type: shell, cmd: "true" }
tasks:
  hourly-task:
    flow:
      only: { action: noop }
triggers:
  hourly:
    type: scheduler
    cron: "0 0 * * * *"
    task: hourly-task
  new-hourly:
    type: scheduler
    cron: "0 0 * * * *"
    task: hourly-task
`

func TestTriggersCronCatchUpFiresOnlyTheLatestMissedTick(t *testing.T) {
	t.Parallel()
	e := newTriggerEnv(t, map[string]string{"default": hourlyWorkflow})
	// The trigger last fired three hours ago (a long outage); new-hourly
	// never fired.
	lastHour := time.Now().UTC().Truncate(time.Hour)
	_, err := e.db.Pool().Exec(context.Background(), `INSERT INTO trigger_ticks (workspace, trigger_name, tick, job_id)
		VALUES ('default', 'hourly', $1, $2)`, lastHour.Add(-3*time.Hour), uuid.NewString())
	require.NoError(t, err)
	e.start()

	require.Eventually(t, func() bool { return e.tickN("hourly") == 2 }, 30*time.Second, 50*time.Millisecond,
		"the latest missed tick fires at once")
	ticks := e.ticks(t, "hourly")
	if now := time.Now().UTC().Truncate(time.Hour); !now.Equal(lastHour) {
		t.Skip("the hour changed during the test")
	}
	require.True(t, lastHour.Equal(ticks[1].tick), "fired tick %s, want the latest missed one, %s", ticks[1].tick, lastHour)
	require.Never(t, func() bool { return e.tickN("hourly") > 2 || e.tickN("new-hourly") > 0 },
		1500*time.Millisecond, 100*time.Millisecond, "the earlier missed ticks are not replayed; a trigger that never fired waits for its next tick")

	code, body := e.do("GET", "/api/workspaces/default/triggers/hourly", nil, "")
	require.Equal(t, http.StatusOK, code, string(body))
	var tr client.Trigger
	require.NoError(t, json.Unmarshal(body, &tr))
	require.NotNil(t, tr.LastJob)
	require.Equal(t, ticks[1].jobID, tr.LastJob.JobID)
	require.NotNil(t, tr.NextFireAt)
	require.True(t, lastHour.Add(time.Hour).Equal(*tr.NextFireAt), "next fire %s", tr.NextFireAt)
}

func TestTriggersReloadReschedules(t *testing.T) {
	t.Parallel()
	e := newTriggerEnv(t, map[string]string{"default": cronYAML("0", "allow", true)})
	e.start()
	require.Eventually(t, func() bool { return e.tickN("every-second") >= 2 }, 60*time.Second, 50*time.Millisecond)

	trigger := func() client.Trigger {
		code, body := e.do("GET", "/api/workspaces/default/triggers/every-second", nil, "")
		require.Equal(t, http.StatusOK, code, string(body))
		var tr client.Trigger
		require.NoError(t, json.Unmarshal(body, &tr))
		return tr
	}
	require.NotNil(t, trigger().NextFireAt)

	// A changed cron takes effect: yearly, at the next new year.
	e.write(t, "default", strings.Replace(cronYAML("0", "allow", true), `"* * * * * *"`, `"0 0 0 1 1 *"`, 1))
	code, body := e.do("POST", "/api/workspaces/default/reload", nil, "")
	require.Equal(t, http.StatusOK, code, string(body))
	tr := trigger()
	require.NotNil(t, tr.NextFireAt)
	newYear := time.Date(time.Now().UTC().Year()+1, 1, 1, 0, 0, 0, 0, time.UTC)
	require.True(t, newYear.Equal(*tr.NextFireAt), "next fire %s", tr.NextFireAt)

	// Back to every second, then disabled: no more jobs.
	e.write(t, "default", cronYAML("0", "allow", true))
	code, body = e.do("POST", "/api/workspaces/default/reload", nil, "")
	require.Equal(t, http.StatusOK, code, string(body))
	n := len(e.ticks(t, "every-second"))
	require.Eventually(t, func() bool { return e.tickN("every-second") > n }, 30*time.Second, 50*time.Millisecond,
		"the trigger fires again after it came back")

	e.write(t, "default", cronYAML("0", "allow", false))
	code, body = e.do("POST", "/api/workspaces/default/reload", nil, "")
	require.Equal(t, http.StatusOK, code, string(body))
	reloaded := time.Now()
	require.Nil(t, trigger().NextFireAt, "a disabled trigger has no next fire time")
	// A tick being fired when the reload came may still land, however late
	// on a busy machine; it is a tick of before the reload. No tick after it
	// may fire (the trigger fires every second: 2.5 s would show two).
	require.Never(t, func() bool {
		ticks, err := e.queryTicks("every-second")
		return err == nil && len(ticks) > 0 && ticks[len(ticks)-1].tick.After(reloaded)
	}, 2500*time.Millisecond, 100*time.Millisecond, "a disabled trigger fires no more")
	require.Len(t, e.triggerJobs(t, "every-second"), len(e.ticks(t, "every-second")))
}

const hooksWorkflow = `
actions:
  echo:
    type: shell
    cmd: "echo {{ input.msg }}"
    input:
      msg: { type: string }
      event: { type: string, default: "" }
      ref: { type: string, default: "" }
tasks:
  hooked:
    input:
      msg: { type: string, default: "task-default" }
      who: { type: string }
      count: { type: integer }
    flow:
      run: { action: echo, input: { msg: "{{ input.msg }}" } }
  templated:
    flow:
      run:
        action: echo
        input:
          msg: "{{ webhook.headers.x_github_event }} on {{ webhook.query.ref }}"
          event: "{{ webhook.headers.x_github_event }}"
          ref: "{{ webhook.query.ref }}"
triggers:
  secured:
    type: webhook
    task: hooked
    secret: "s3cret"
    input: { who: "trigger-default", msg: "trigger-msg" }
  open-hook:
    type: webhook
    task: templated
  named:
    type: webhook
    name: github-ci
    task: hooked
    secret: "s3cret"
  off:
    type: webhook
    task: hooked
    enabled: false
  sync-hook:
    type: webhook
    task: hooked
    mode: sync
    timeout_secs: 30
  slow-sync:
    type: webhook
    task: hooked
    mode: sync
    timeout_secs: 1
  shared:
    type: webhook
    task: hooked
  cron:
    type: scheduler
    cron: "0 0 0 1 1 *"
    task: hooked
`

// noopTaskWorkflow is a workflow file's start: task t, one step that does
// nothing; the tests append their triggers.
const noopTaskWorkflow = `
actions:
  noop: { type: shell, cmd: "true" }
tasks:
  t:
    flow:
      only: { action: noop }
`

const otherWorkflow = noopTaskWorkflow + `triggers:
  shared:
    type: webhook
    task: t
`

func newHooksEnv(t *testing.T) *triggerEnv {
	t.Helper()
	e := newTriggerEnv(t, map[string]string{"default": hooksWorkflow, "other": otherWorkflow})
	e.start()
	return e
}

// hookJob decodes a webhook's answer.
type hookAnswer struct {
	JobID  string           `json:"job_id"`
	Status stroem.JobStatus `json:"status"`
	Output map[string]any   `json:"output"`
	Error  string           `json:"error"`
}

func decodeAnswer(t *testing.T, body []byte) hookAnswer {
	t.Helper()
	var a hookAnswer
	require.NoError(t, json.Unmarshal(body, &a), "body %s", body)
	return a
}

func TestWebhookSecret(t *testing.T) {
	t.Parallel()
	e := newHooksEnv(t)
	cases := []struct {
		name, path, token string
		want              int
		source            string
	}{
		{"missing", "/hooks/secured", "", http.StatusUnauthorized, ""},
		{"wrong query", "/hooks/secured?secret=nope", "", http.StatusUnauthorized, ""},
		{"wrong bearer", "/hooks/secured", "nope", http.StatusUnauthorized, ""},
		{"wrong bearer beats right query", "/hooks/secured?secret=s3cret", "nope", http.StatusUnauthorized, ""},
		{"query", "/hooks/secured?secret=s3cret", "", http.StatusAccepted, "default/secured"},
		{"bearer", "/hooks/secured", "s3cret", http.StatusAccepted, "default/secured"},
		{"with workspace", "/hooks/default/secured", "s3cret", http.StatusAccepted, "default/secured"},
		{"open hook needs none", "/hooks/open-hook?ref=x", "", http.StatusAccepted, "default/open-hook"},
	}
	for _, c := range cases {
		code, body := e.do("POST", c.path, "", c.token)
		require.Equal(t, c.want, code, "%s: %s", c.name, body)
		a := decodeAnswer(t, body)
		if c.want == http.StatusAccepted {
			require.NotEmpty(t, a.JobID, c.name)
			j := e.job(a.JobID)
			require.Equal(t, stroem.SourceWebhook, j.SourceType)
			require.Equal(t, c.source, j.SourceID)
		} else {
			require.NotEmpty(t, a.Error, c.name)
			require.Empty(t, a.JobID)
		}
	}
	var n int
	require.NoError(t, e.db.Pool().QueryRow(context.Background(), `SELECT count(*) FROM jobs`).Scan(&n))
	require.Equal(t, 4, n, "refused requests created no job")
}

func TestWebhookBody(t *testing.T) {
	t.Parallel()
	e := newHooksEnv(t)
	code, body := e.do("POST", "/hooks/secured", `{"msg": "from-body", "count": 3}`, "s3cret")
	require.Equal(t, http.StatusAccepted, code, string(body))
	j := e.job(decodeAnswer(t, body).JobID)
	// The upstream's keys (body, headers, method, query) beside the
	// task's declared inputs taken from the body.
	upstream := map[string]any{"body": j.Input["body"], "headers": j.Input["headers"], "method": j.Input["method"], "query": j.Input["query"]}
	require.Equal(t, map[string]any{"body": map[string]any{"msg": "from-body", "count": float64(3)}, "method": "POST",
		"headers": j.Input["headers"], "query": map[string]any{}}, upstream)
	require.NotContains(t, j.Input["headers"], "authorization", "no credential header")
	for _, k := range []string{"body", "headers", "method", "query"} {
		delete(j.Input, k)
	}
	require.Equal(t, map[string]any{"msg": "from-body", "who": "trigger-default", "count": float64(3)}, j.Input,
		"the body wins over the trigger's input; the trigger's other defaults stay")

	code, body = e.do("POST", "/hooks/secured?env=prod&secret=s3cret", `{"nope": 1, "body": "not the body", "msg": "m"}`, "")
	require.Equal(t, http.StatusAccepted, code, string(body))
	j = e.job(decodeAnswer(t, body).JobID)
	require.Equal(t, map[string]any{"nope": float64(1), "body": "not the body", "msg": "m"}, j.Input["body"])
	require.Equal(t, map[string]any{"env": "prod"}, j.Input["query"], "the secret is left out")
	require.Equal(t, "m", j.Input["msg"])
	require.NotContains(t, j.Input, "nope", "a body key the task does not declare stays in input.body")

	code, body = e.do("POST", "/hooks/secured", "", "s3cret")
	require.Equal(t, http.StatusAccepted, code, string(body))
	j = e.job(decodeAnswer(t, body).JobID)
	require.Equal(t, "trigger-msg", j.Input["msg"], "an empty body is {}")
	require.Equal(t, "trigger-default", j.Input["who"])
	require.Equal(t, map[string]any{}, j.Input["body"])

	code, body = e.do("GET", "/hooks/open-hook?ref=x", "", "")
	require.Equal(t, http.StatusAccepted, code, string(body))
	j = e.job(decodeAnswer(t, body).JobID)
	require.Equal(t, "GET", j.Input["method"])
	require.Contains(t, j.Input, "body")
	require.Nil(t, j.Input["body"], "a GET has no body: null")
	require.Equal(t, map[string]any{"ref": "x"}, j.Input["query"])

	bad := []struct {
		name, body string
		want       int
		details    int
	}{
		{"invalid JSON", `{"msg": `, http.StatusBadRequest, 0},
		{"trailing data", `{} {}`, http.StatusBadRequest, 0},
		{"not an object", `["a"]`, http.StatusBadRequest, 0},
		{"every input problem", `{"count": "three", "nope": 1, "who": 5}`, http.StatusBadRequest, 2},
		{"too large", `{"msg": "` + strings.Repeat("a", 1<<20) + `"}`, http.StatusRequestEntityTooLarge, 0},
	}
	for _, c := range bad {
		code, body := e.do("POST", "/hooks/secured", c.body, "s3cret")
		require.Equal(t, c.want, code, "%s: %s", c.name, body)
		var eb struct {
			Error   string   `json:"error"`
			Details []string `json:"details"`
		}
		require.NoError(t, json.Unmarshal(body, &eb), c.name)
		require.NotEmpty(t, eb.Error, c.name)
		require.Len(t, eb.Details, c.details, "%s: %s", c.name, body)
	}
}

func TestWebhookRouting(t *testing.T) {
	t.Parallel()
	e := newHooksEnv(t)
	cases := []struct {
		method, path string
		want         int
		says         string
	}{
		{"POST", "/hooks/nope", http.StatusNotFound, `no webhook "nope"`},
		{"POST", "/hooks/off", http.StatusNotFound, "disabled"},
		{"POST", "/hooks/cron", http.StatusNotFound, `no webhook "cron"`},
		{"POST", "/hooks/default/cron", http.StatusNotFound, "not a webhook"},
		{"POST", "/hooks/nope/secured", http.StatusNotFound, `workspace "nope" not found`},
		{"POST", "/hooks/shared", http.StatusConflict, "/hooks/default/shared"},
		{"PUT", "/hooks/open-hook", http.StatusMethodNotAllowed, "not allowed"},
		{"GET", "/hooks/nope", http.StatusNotFound, `no webhook "nope"`},
		{"POST", "/hooks/named", http.StatusNotFound, `no webhook "named"`},
	}
	for _, c := range cases {
		code, body := e.do(c.method, c.path, nil, "")
		require.Equal(t, c.want, code, "%s %s: %s", c.method, c.path, body)
		require.Contains(t, decodeAnswer(t, body).Error, c.says, "%s %s", c.method, c.path)
	}
	code, body := e.do("POST", "/hooks/other/shared", nil, "")
	require.Equal(t, http.StatusAccepted, code, string(body))
	require.Equal(t, "other", e.job(decodeAnswer(t, body).JobID).Workspace)
}

// The upstream forms: a webhook's `name` is its URL, GET fires it too,
// and GET /hooks/{name}/jobs/{id} reports the jobs it started, behind the
// same secret.
func TestWebhookUpstreamForms(t *testing.T) {
	t.Parallel()
	e := newHooksEnv(t)
	code, body := e.do("POST", "/hooks/github-ci", `{"msg": "m"}`, "s3cret")
	require.Equal(t, http.StatusAccepted, code, string(body))
	var ans struct {
		JobID   string `json:"job_id"`
		Trigger string `json:"trigger"`
		Task    string `json:"task"`
	}
	require.NoError(t, json.Unmarshal(body, &ans))
	require.Equal(t, "github-ci", ans.Trigger)
	require.Equal(t, "hooked", ans.Task)
	j := e.job(ans.JobID)
	require.Equal(t, "default/named", j.SourceID, "the trigger's key, not its webhook name, as upstream")
	require.Equal(t, "m", j.Input["msg"])

	code, body = e.do("GET", "/hooks/github-ci?secret=s3cret", nil, "")
	require.Equal(t, http.StatusAccepted, code, string(body))
	require.NotEmpty(t, decodeAnswer(t, body).JobID)
	code, _ = e.do("GET", "/hooks/github-ci", nil, "")
	require.Equal(t, http.StatusUnauthorized, code)

	status := "/hooks/github-ci/jobs/" + ans.JobID
	code, body = e.do("GET", status, nil, "")
	require.Equal(t, http.StatusUnauthorized, code, string(body))
	code, body = e.do("GET", status+"?secret=s3cret", nil, "")
	require.Equal(t, http.StatusOK, code, string(body))
	var st map[string]any
	require.NoError(t, json.Unmarshal(body, &st))
	require.Equal(t, ans.JobID, st["job_id"])
	require.Equal(t, "github-ci", st["trigger"])
	require.Equal(t, "hooked", st["task"])
	require.Equal(t, "pending", st["status"])
	require.Nil(t, st["output"])
	require.Nil(t, st["completed_at"])

	// No worker: waiting ends with 202 and the job still pending.
	code, body = e.do("GET", status+"?wait=true&timeout=1", nil, "s3cret")
	require.Equal(t, http.StatusAccepted, code, string(body))

	other := e.execute("hooked", nil) // not started by this webhook
	bad := []struct {
		path string
		want int
		says string
	}{
		{"/hooks/github-ci/jobs/" + other, http.StatusNotFound, "started no job"},
		{"/hooks/github-ci/jobs/" + uuid.NewString(), http.StatusNotFound, "started no job"},
		{"/hooks/github-ci/jobs/not-a-uuid", http.StatusBadRequest, "job id"},
		{status + "?wait=maybe", http.StatusBadRequest, "wait must be true or false"},
		{status + "?wait=true&timeout=301", http.StatusBadRequest, "timeout must be a whole number of seconds between 1 and 300"},
		{"/hooks/nope/jobs/" + ans.JobID, http.StatusNotFound, `no webhook "nope"`},
	}
	for _, b := range bad {
		code, body := e.do("GET", b.path, nil, "s3cret")
		require.Equal(t, b.want, code, "%s: %s", b.path, body)
		require.Contains(t, decodeAnswer(t, body).Error, b.says, b.path)
	}
}

func TestWebhookHeadersAndQueryReachTemplates(t *testing.T) {
	t.Parallel()
	e := newHooksEnv(t)
	req, err := http.NewRequest("POST", e.url+"/hooks/open-hook?ref=main&secret=not-a-secret-here", strings.NewReader(`{}`))
	require.NoError(t, err)
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("Authorization", "Bearer hunter2")
	req.Header.Set("Cookie", "session=abc")
	resp, err := e.client.Do(req)
	require.NoError(t, err)
	var a hookAnswer
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&a))
	resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode, a.Error)

	j := e.job(a.JobID)
	require.Equal(t, stroem.StepReady, j.Steps[0].Status, j.Steps[0].ErrorMessage)
	require.Equal(t, map[string]any{"msg": "push on main", "event": "push", "ref": "main"}, j.Steps[0].Input)

	var stored string
	require.NoError(t, e.db.Pool().QueryRow(context.Background(), `SELECT context::text FROM jobs WHERE id = $1`, a.JobID).Scan(&stored))
	require.Contains(t, stored, "x_github_event")
	for _, secret := range []string{"hunter2", "not-a-secret-here", "authorization", "session=abc"} {
		require.NotContains(t, strings.ToLower(stored), secret, "credentials are never stored")
	}

	// A job that no webhook started has no `webhook`: the template fails
	// with a message naming it.
	id := e.execute("templated", nil)
	j = e.job(id)
	require.Equal(t, stroem.JobFailed, j.Status)
	require.Contains(t, j.Steps[0].ErrorMessage, "webhook")
}

func TestWebhookSync(t *testing.T) {
	t.Parallel()
	e := newHooksEnv(t)
	w := e.worker()
	type result struct {
		code int
		body []byte
	}
	done := make(chan result, 1)
	go func() {
		code, body := e.do("POST", "/hooks/sync-hook", `{"msg": "hi"}`, "")
		done <- result{code, body}
	}()
	a := w.mustClaim("run")
	require.Equal(t, "echo hi", a.Spec.Cmd)
	require.Equal(t, http.StatusOK, w.complete(a, 0, map[string]any{"greeting": "hi"}, ""))
	r := <-done
	require.Equal(t, http.StatusOK, r.code, string(r.body))
	ans := decodeAnswer(t, r.body)
	require.Equal(t, a.JobID, ans.JobID)
	require.Equal(t, stroem.JobCompleted, ans.Status)
	require.Equal(t, map[string]any{"run": map[string]any{"greeting": "hi"}}, ans.Output)

	// A failed job answers 200 too, with its status.
	go func() {
		code, body := e.do("POST", "/hooks/sync-hook", "", "")
		done <- result{code, body}
	}()
	a = w.mustClaim("run")
	require.Equal(t, http.StatusOK, w.complete(a, 2, nil, "exit code 2"))
	r = <-done
	require.Equal(t, http.StatusOK, r.code, string(r.body))
	require.Equal(t, stroem.JobFailed, decodeAnswer(t, r.body).Status)

	// No worker takes the job within timeout_secs: 202 with the job id.
	code, body := e.do("POST", "/hooks/slow-sync", "", "")
	require.Equal(t, http.StatusAccepted, code, string(body))
	ans = decodeAnswer(t, body)
	require.NotEmpty(t, ans.JobID)
	require.Equal(t, stroem.JobPending, ans.Status, "the job is still waiting for a worker")
	require.Equal(t, "default/slow-sync", e.job(ans.JobID).SourceID)
}

func TestTriggersListAndCommand(t *testing.T) {
	t.Parallel()
	e := newHooksEnv(t)
	code, body := e.do("POST", "/hooks/secured", "", "s3cret")
	require.Equal(t, http.StatusAccepted, code, string(body))
	fired := decodeAnswer(t, body).JobID

	// The scheduler arms its timers in the background after start (it reads
	// the last fired ticks first): wait until the cron trigger has one.
	var list []map[string]any
	require.Eventually(t, func() bool {
		code, body = e.do("GET", "/api/workspaces/default/triggers", nil, "")
		list = nil
		if code != http.StatusOK || json.Unmarshal(body, &list) != nil {
			return false
		}
		for _, tr := range list {
			if tr["name"] == "cron" {
				return tr["next_fire_at"] != nil
			}
		}
		return false
	}, 10*time.Second, 20*time.Millisecond, "the cron trigger is armed")
	byName := map[string]map[string]any{}
	var names []string
	for _, tr := range list {
		byName[tr["name"].(string)] = tr
		names = append(names, tr["name"].(string))
	}
	require.True(t, sort.StringsAreSorted(names), "sorted by name: %v", names)
	require.Len(t, list, 8)
	require.Equal(t, "/hooks/github-ci", byName["named"]["path"], "a webhook's name key is its URL")

	secured := byName["secured"]
	require.Equal(t, "webhook", secured["type"])
	require.Equal(t, "hooked", secured["task"])
	require.Equal(t, true, secured["enabled"])
	require.Equal(t, "async", secured["mode"])
	require.Equal(t, "/hooks/secured", secured["path"])
	require.Equal(t, true, secured["secret_required"])
	require.NotContains(t, string(body), "s3cret", "secrets are never shown")
	require.Nil(t, secured["next_fire_at"])
	last := secured["last_job"].(map[string]any)
	require.Equal(t, fired, last["job_id"])
	require.Equal(t, "pending", last["status"])
	require.NotEmpty(t, last["created_at"])

	require.Equal(t, "/hooks/default/shared", byName["shared"]["path"], "a name shared with another workspace needs the workspace")
	require.Nil(t, byName["sync-hook"]["last_job"])
	require.EqualValues(t, 30, byName["sync-hook"]["timeout_secs"])
	cron := byName["cron"]
	require.Equal(t, "scheduler", cron["type"])
	require.Equal(t, "0 0 0 1 1 *", cron["cron"])
	require.Equal(t, "UTC", cron["timezone"])
	require.Equal(t, "allow", cron["concurrency"])
	require.NotNil(t, cron["next_fire_at"])
	require.Nil(t, byName["off"]["next_fire_at"])

	code, body = e.do("GET", "/api/workspaces/nope/triggers", nil, "")
	require.Equal(t, http.StatusNotFound, code, string(body))
	code, body = e.do("GET", "/api/workspaces/default/triggers/nope", nil, "")
	require.Equal(t, http.StatusNotFound, code, string(body))

	r := runCLI(t, t.Context(), "triggers", "--server", e.url)
	require.Equal(t, 0, r.code, r.err)
	require.Contains(t, r.out, "NAME")
	require.Contains(t, r.out, "POST /hooks/secured async")
	require.Contains(t, r.out, "0 0 0 1 1 *")
	require.Contains(t, r.out, fired+" pending")
	require.Contains(t, r.out, "(open)")

	r = runCLI(t, t.Context(), "triggers", "--server", e.url, "--workspace", "other", "-o", "json")
	require.Equal(t, 0, r.code, r.err)
	var other []client.Trigger
	require.NoError(t, json.Unmarshal([]byte(r.out), &other))
	require.Len(t, other, 1)
	require.Equal(t, "/hooks/other/shared", other[0].Path)

	r = runCLI(t, t.Context(), "triggers", "--server", e.url, "--workspace", "nope")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.err, `workspace "nope" not found`)
}

// TestWebhookConcurrentSyncWaiters checks that many sync webhooks waiting
// at once each get their own job's result.
func TestWebhookConcurrentSyncWaiters(t *testing.T) {
	t.Parallel()
	e := newHooksEnv(t)
	const n = 5
	var wg sync.WaitGroup
	bodies := make([][]byte, n)
	codes := make([]int, n)
	for i := range n {
		wg.Go(func() {
			codes[i], bodies[i] = e.do("POST", "/hooks/sync-hook", map[string]any{"msg": "m" + string(rune('a'+i))}, "")
		})
	}
	w := e.worker()
	for range n {
		a := w.mustClaim("run")
		require.Equal(t, http.StatusOK, w.complete(a, 0, map[string]any{"echo": a.Input["msg"]}, ""))
	}
	wg.Wait()
	for i := range n {
		require.Equal(t, http.StatusOK, codes[i], string(bodies[i]))
		a := decodeAnswer(t, bodies[i])
		require.Equal(t, stroem.JobCompleted, a.Status)
		require.Equal(t, map[string]any{"run": map[string]any{"echo": "m" + string(rune('a'+i))}}, a.Output)
	}
}
