package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/http/client"
)

// The bench's logs part (issue 17): one step prints short lines as fast as
// it can; the part measures how fast they are stored and how long a line
// takes from the step to an SSE client.

// Targets of the logs part on the 2-core reference machine.
const (
	benchLogsLinesPerSTarget = 50_000
	benchLogsP50MSTarget     = 20
)

type logsResult struct {
	LogsLines      int     `json:"logs_lines"`
	LogsStoredPerS float64 `json:"logs_stored_lines_per_s"`
	LogsSSEP50MS   float64 `json:"logs_sse_latency_p50_ms"`
	LogsSSEP99MS   float64 `json:"logs_sse_latency_p99_ms"`
	// From the worker reading the line (its ts) to the SSE client: the
	// part of the latency spent in Strøm, without the step's pipe.
	LogsReadSSEP50MS float64 `json:"logs_read_sse_latency_p50_ms"`
	LogsReadSSEP99MS float64 `json:"logs_read_sse_latency_p99_ms"`
	LogsWallMS       float64 `json:"logs_wall_ms"`
	LogsStepPrintsMS float64 `json:"logs_step_print_ms"`
}

// writeBenchLogsWorkflow writes the logs part's task: LogsLines lines, each
// the time it was printed (seconds.microseconds), printed as fast as the
// machine can — by perl where there is one (buffered, about a million lines
// a second), else by a bash loop echoing $EPOCHREALTIME (a builtin, but a
// write per line) — after half a second so the SSE client is connected.
func writeBenchLogsWorkflow(dir string, s Sizes) error {
	wf := fmt.Sprintf(`# Written by stroem bench (logs part).
actions:
  flood:
    type: shell
    cmd: |
      sleep 0.5
      if command -v perl >/dev/null; then
        exec perl -MTime::HiRes=time -e 'printf("%%.6f\n", time) for 1..%[1]d'
      fi
      exec bash -c 'for ((i = 0; i < %[1]d; i++)); do echo $EPOCHREALTIME; done'
tasks:
  logs:
    flow:
      flood:
        action: flood
`, s.LogsLines)
	if err := os.WriteFile(filepath.Join(dir, ".workflows", "bench-logs.yaml"), []byte(wf), 0o644); err != nil {
		return fmt.Errorf("write bench workspace: %w", err)
	}
	return nil
}

// runLogs measures the flood once, then (with --pprof-dir) profiles the
// server over more floods.
func (b *bench) runLogs(ctx context.Context) error {
	r, err := b.flood(ctx)
	if err != nil {
		return err
	}
	b.rep.logsResult = r
	b.logf("logs: %d lines, %.0f stored/s, SSE p50 %s, p99 %s (from the worker reading the line: p50 %s, p99 %s)", r.LogsLines, r.LogsStoredPerS,
		benchFmtMS(r.LogsSSEP50MS), benchFmtMS(r.LogsSSEP99MS), benchFmtMS(r.LogsReadSSEP50MS), benchFmtMS(r.LogsReadSSEP99MS))
	return b.profileCPU(ctx, "logs", func(ctx context.Context) error {
		_, err := b.flood(ctx)
		return err
	})
}

// flood follows the flood over SSE: the latency of a line is its arrival
// minus the time the step printed it; the stored rate is the lines over the
// time from the first line printed to the last one received (a line reaches
// SSE clients only once it is committed).
func (b *bench) flood(ctx context.Context) (*logsResult, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	t0 := time.Now()
	id, err := b.client.Execute(ctx, benchWorkspace, "logs", nil)
	if err != nil {
		return nil, fmt.Errorf("execute logs: %w", err)
	}
	lat := make(benchLatencies, 0, b.sizes.LogsLines)
	read := make(benchLatencies, 0, b.sizes.LogsLines)
	var first, lastPrinted time.Time
	var lastRecv time.Time
	status, err := b.client.StreamLogs(ctx, id, client.StreamOptions{}, func(l stroem.LogLine) error {
		now := time.Now()
		printed, err := parseEpochRealtime(l.Text)
		if err != nil {
			return fmt.Errorf("job %s printed %q (%s), not a time as seconds.microseconds", id, l.Text, l.Stream)
		}
		if first.IsZero() {
			first = printed
		}
		lastPrinted, lastRecv = printed, now
		lat = append(lat, now.Sub(printed))
		read = append(read, now.Sub(l.TS))
		return nil
	})
	wall := time.Since(t0)
	if err != nil {
		return nil, err
	}
	if status != stroem.JobCompleted {
		job, _ := b.client.Job(ctx, id)
		return nil, fmt.Errorf("job %s ended %s%s", id, status, benchFailedStep(job))
	}
	if len(lat) != b.sizes.LogsLines {
		return nil, fmt.Errorf("received %d of the %d lines job %s printed", len(lat), b.sizes.LogsLines, id)
	}
	r := &logsResult{
		LogsLines: len(lat), LogsSSEP50MS: lat.p50(), LogsSSEP99MS: lat.p99(), LogsWallMS: benchMS(wall),
		LogsReadSSEP50MS: read.p50(), LogsReadSSEP99MS: read.p99(),
		LogsStepPrintsMS: benchMS(lastPrinted.Sub(first)),
	}
	if span := lastRecv.Sub(first); span > 0 {
		r.LogsStoredPerS = float64(len(lat)) / span.Seconds()
	}
	return r, nil
}

// parseEpochRealtime reads a time as printed by the step
// ("1733470000.123456", bash's $EPOCHREALTIME format).
func parseEpochRealtime(s string) (time.Time, error) {
	sec, frac, ok := strings.Cut(strings.TrimSpace(s), ".")
	if !ok || len(frac) != 6 {
		return time.Time{}, fmt.Errorf("not seconds.microseconds: %q", s)
	}
	secs, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		return time.Time{}, err
	}
	us, err := strconv.ParseInt(frac, 10, 64)
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(secs, us*1000), nil
}

// rows prints the part's figures in the report table.
func (l *logsResult) rows(row func(part, what, value, target string)) {
	row("logs", fmt.Sprintf("stored lines/s (one step, %d short lines)", l.LogsLines), fmt.Sprintf("%.0f lines/s", l.LogsStoredPerS),
		benchVerdict(l.LogsStoredPerS, benchLogsLinesPerSTarget, "≥", "lines/s"))
	row("logs", "line → SSE client, p50", benchFmtMS(l.LogsSSEP50MS), benchVerdict(l.LogsSSEP50MS, benchLogsP50MSTarget, "≤", "ms"))
	row("logs", "line → SSE client, p99", benchFmtMS(l.LogsSSEP99MS), "")
	row("logs", "line read by the worker → SSE client, p50 / p99", benchFmtMS(l.LogsReadSSEP50MS)+" / "+benchFmtMS(l.LogsReadSSEP99MS),
		"(without the step's pipe)")
	row("logs", "step printing time / job wall", benchFmtMS(l.LogsStepPrintsMS)+" / "+benchFmtMS(l.LogsWallMS), "(printing is slowed by backpressure)")
}
