package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem/persistence/dbtest"
)

// TestBench runs the real `stroem bench` binary (it starts the server and
// workers as subprocesses of itself, so it cannot run inside the test
// binary) with small sizes. It checks the figures are there and sane, never
// how fast they are, and that the bench leaves nothing behind — also when
// interrupted.
func TestBench(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the stroem binary and needs PostgreSQL")
	}
	t.Parallel()
	exe := buildBenchBinary(t)
	dbURL := os.Getenv(dbtest.EnvURL)
	if dbURL == "" {
		dbURL = dbtest.DefaultURL
	}

	t.Run("chain, trigger and many as JSON", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, exe, "bench", "--only", "chain,trigger,many", "--output", "json", "--db-url", dbURL,
			"--chain-steps", "5", "--chain-runs", "1", "--jobs", "5", "--many-jobs", "7", "--floor-runs", "10")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		require.NoError(t, cmd.Run(), "stderr:\n%s", stderr.String())

		var got map[string]any
		require.NoError(t, json.Unmarshal(stdout.Bytes(), &got), stdout.String())
		for _, k := range []string{
			"spawn_floor_p50_ms", "pg_commit_p50_ms", "server_rss_start_mb",
			"chain_total_ms", "chain_wall_ms", "chain_per_hop_ms", "chain_step_span_p50_ms",
			"trigger_to_running_p50_ms", "trigger_to_running_p99_ms", "create_p50_ms", "create_p99_ms",
			"many_total_ms", "many_create_ms", "many_jobs_per_s",
		} {
			require.Contains(t, got, k)
			v, ok := got[k].(float64)
			require.True(t, ok, "%s is %T", k, got[k])
			require.Greater(t, v, 0.0, k)
		}
		// 0 when the next step was handed off in the completing transaction.
		require.GreaterOrEqual(t, got["chain_handoff_p50_ms"], 0.0)
		for _, k := range []string{"chain_server_cpu_ms_per_step", "chain_workers_cpu_ms_per_step", "chain_machine_cpu_busy_pct",
			"chain_supervisors_cpu_ms_per_step", "chain_orchestration_cpu_ms_per_step"} {
			require.Contains(t, got, k) // CPU ticks are 10 ms: five steps may show none
		}
		require.EqualValues(t, 5, got["chain_steps"])
		require.EqualValues(t, 1, got["warmup_runs"], "one unmeasured chain before the measured one, by default")
		require.Contains(t, stderr.String(), "chain warm-up run 1/1: 5 steps in ")
		require.EqualValues(t, 5, got["trigger_jobs"])
		require.EqualValues(t, 7, got["many_jobs"])
		require.Contains(t, got, "many_orchestration_cpu_ms_per_job")
		require.Equal(t, "postgres", got["store"])
		require.NotEmpty(t, got["pg_fsync"])
		require.GreaterOrEqual(t, got["chain_wall_ms"].(float64), got["chain_total_ms"].(float64),
			"the wall clock includes the job's own run time")
		for _, k := range []string{"fanout_steps_per_s", "sse_latency_p50_ms", "job_list_p99_ms"} {
			require.NotContains(t, got, k, "part not asked for")
		}
		requireDropped(t, dbURL, stderr.String())
	})

	// The scale part queues jobs over the API, fills the table with SQL and
	// lists it: the filled jobs must be servable like any other.
	for _, store := range []string{"postgres", "sqlite"} {
		t.Run("scale on "+store, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, exe, "bench", "--only", "scale", "--output", "json", "--db-url", dbURL, "--store", store,
				"--queued", "20", "--create-conns", "2", "--table-jobs", "300", "--list-requests", "3", "--floor-runs", "5")
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			require.NoError(t, cmd.Run(), "stderr:\n%s", stderr.String())
			var got map[string]any
			require.NoError(t, json.Unmarshal(stdout.Bytes(), &got), stdout.String())
			for _, k := range []string{"server_rss_queued_mb", "job_list_p50_ms", "job_list_p99_ms",
				"job_list_status_completed_p99_ms", "job_list_task_p99_ms"} {
				v, ok := got[k].(float64)
				require.True(t, ok, "%s is %T", k, got[k])
				require.Greater(t, v, 0.0, k)
			}
			require.EqualValues(t, 300, got["scale_jobs_in_table"])
			if store == "postgres" {
				requireDropped(t, dbURL, stderr.String())
			}
		})
	}

	t.Run("unreachable PostgreSQL is one line", func(t *testing.T) {
		t.Parallel()
		cmd := exec.Command(exe, "bench", "--db-url", "postgres://postgres@127.0.0.1:1/postgres?connect_timeout=5")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		require.True(t, errors.As(err, &ee), "want a failing exit, got %v", err)
		require.Equal(t, 1, ee.ExitCode())
		require.Empty(t, stdout.String())
		require.Regexp(t, `^stroem: PostgreSQL at postgres://postgres@127\.0\.0\.1:1/postgres\S* is unreachable: .+\n$`, stderr.String())
	})

	t.Run("Ctrl-C cleans up", func(t *testing.T) {
		t.Parallel()
		cmd := exec.Command(exe, "bench", "--only", "chain", "--db-url", dbURL,
			"--chain-steps", "50", "--chain-runs", "100", "--floor-runs", "5")
		stderr, err := cmd.StderrPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		lines := make(chan string, 100)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(stderr)
			for sc.Scan() {
				lines <- sc.Text()
			}
		}()
		var log strings.Builder
		var pids []int
		deadline := time.After(60 * time.Second)
	wait:
		for {
			select {
			case l, ok := <-lines:
				require.True(t, ok, "bench ended early:\n%s", log.String())
				log.WriteString(l + "\n")
				pids = append(pids, benchPIDs(l)...)
				if strings.Contains(l, "chain run 1/") {
					break wait
				}
			case <-deadline:
				_ = cmd.Process.Kill()
				t.Fatalf("no chain run within 60 s:\n%s", log.String())
			}
		}
		require.Len(t, pids, 3, "server and two workers:\n%s", log.String())
		require.NoError(t, cmd.Process.Signal(os.Interrupt))
		for l := range lines {
			log.WriteString(l + "\n")
		}
		err = cmd.Wait()
		var ee *exec.ExitError
		require.True(t, errors.As(err, &ee), "want exit code 130, got %v\n%s", err, log.String())
		require.Equal(t, 130, ee.ExitCode(), log.String())
		for _, pid := range pids {
			require.ErrorIs(t, syscall.Kill(pid, 0), syscall.ESRCH, "process %d outlived the bench", pid)
		}
		requireDropped(t, dbURL, log.String())
	})
}

var (
	benchPIDRe = regexp.MustCompile(`(?:server pid|worker pids) ([\d ]+)`)
	benchDBRe  = regexp.MustCompile(`database (stroem_bench_[0-9a-f]+) `)
)

// benchPIDs returns the process ids a progress line announces.
func benchPIDs(line string) []int {
	m := benchPIDRe.FindStringSubmatch(line)
	if m == nil {
		return nil
	}
	var out []int
	for _, f := range strings.Fields(m[1]) {
		if n, err := strconv.Atoi(f); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// requireDropped checks that the database the bench announced is gone.
func requireDropped(t *testing.T, dbURL, progress string) {
	t.Helper()
	m := benchDBRe.FindStringSubmatch(progress)
	require.NotNil(t, m, "the bench did not name its database:\n%s", progress)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var n int
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM pg_database WHERE datname = $1`, m[1]).Scan(&n))
	require.Zero(t, n, "database %s was not dropped", m[1])
}

// buildBenchBinary builds this command into a temp dir.
func buildBenchBinary(t *testing.T) string {
	t.Helper()
	exe := filepath.Join(t.TempDir(), "stroem")
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if p, err := exec.LookPath("go"); err == nil {
		goTool = p
	}
	out, err := exec.Command(goTool, "build", "-o", exe, ".").CombinedOutput()
	require.NoError(t, err, "go build:\n%s", out)
	return exe
}
