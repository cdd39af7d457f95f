package main

import (
	"context"
	"strconv"
	"strings"

	"github.com/stroem/stroem"
	stroemhttp "github.com/stroem/stroem/http"
	"github.com/stroem/stroem/http/logstream"
	"github.com/stroem/stroem/persistence"
)

// hubSource gives the SSE hub stored lines and job statuses, from the store
// every server shares.
type hubSource struct {
	store persistence.Store
}

func (h hubSource) Read(jobID string, afterSeq int64, step string) ([]stroem.LogLine, error) {
	out := []stroem.LogLine{}
	err := h.Scan(jobID, afterSeq, step, func(l stroem.LogLine) error {
		out = append(out, l)
		return nil
	})
	return out, err
}

func (h hubSource) Scan(jobID string, afterSeq int64, step string, fn func(stroem.LogLine) error) error {
	return h.store.LogScan(context.Background(), jobID, afterSeq, step, fn)
}

func (h hubSource) JobStatus(ctx context.Context, jobID string) (stroem.JobStatus, error) {
	return h.store.JobStatus(ctx, jobID)
}

// serverEvents tells SSE subscribers and waiting sync webhooks when a job
// ends — on this server directly; the others hear it from the NOTIFY on
// persistence.ChannelLogs that the transition ending the job sends at
// commit (the PostgreSQL store's JobUpdate).
type serverEvents struct {
	hub   *logstream.Hub
	hooks *stroemhttp.Triggers
	ops   *opsParts
}

// JobFinished is called from a JobActor's Receive, after the job's end
// was committed: it must not block.
func (e *serverEvents) JobFinished(jobID string, status stroem.JobStatus) {
	e.hub.Finish(jobID, status)
	e.hooks.JobFinished(jobID, status)
	e.ops.jobFinished(jobID)
}

// listenLogs hears other servers' log and job-end notifications: new lines
// wake this server's SSE streams of the job (which read them from the
// store), a finished job ends them and answers waiting sync webhooks. After
// every (re)connect every followed job is re-read, since notifications
// sent meanwhile are lost.
func (a *serverApp) listenLogs(ctx context.Context) {
	own := a.store.Origin() + ":"
	err := a.store.Listen(ctx, persistence.ChannelLogs, func(payload string) {
		if payload == "" {
			a.hub.WakeAll()
			return
		}
		if strings.HasPrefix(payload, own) {
			return // this server published and finished them itself
		}
		_, rest, ok := strings.Cut(payload, ":")
		if !ok {
			return
		}
		jobID, what, ok := strings.Cut(rest, ":")
		if !ok {
			return
		}
		if status, done := strings.CutPrefix(what, "done:"); done {
			a.hub.Finish(jobID, stroem.JobStatus(status))
			a.hooks.JobFinished(jobID, stroem.JobStatus(status))
			return
		}
		if seq, err := strconv.ParseInt(what, 10, 64); err == nil {
			a.hub.Wake(jobID, seq)
		}
	})
	if err != nil && ctx.Err() == nil {
		a.log.Error("listen for other servers' logs stopped", "err", err)
	}
}
