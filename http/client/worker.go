package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/stroem/stroem"
)

// MaxClaimWait is the longest long poll the server accepts (SPEC §7).
const MaxClaimWait = 30 * time.Second

// claimSlack is added to a long poll's wait for the HTTP timeout, so a
// server answering 204 right at wait_ms is never cut short.
const claimSlack = 15 * time.Second

// Register registers a worker process with the shared worker token; the
// answer carries its id, the server's lease and heartbeat periods, and the
// worker's own credential, which this client sends from then on on every
// other worker route (rotating the shared token does not stop it).
func (c *Client) Register(ctx context.Context, reg stroem.WorkerRegistration) (stroem.WorkerRegistered, error) {
	var out stroem.WorkerRegistered
	_, err := c.do(ctx, request{method: http.MethodPost, path: "/worker/register", body: reg}, &out)
	switch {
	case err != nil:
	case out.WorkerID == "":
		err = fmt.Errorf("register: the server answered without a worker_id")
	case out.Credential == "":
		err = fmt.Errorf("register: the server answered without a worker credential (a server older than this worker?)")
	default:
		cred := out.Credential
		c.cred.Store(&cred)
	}
	return out, err
}

// Heartbeat renews the leases of the running steps it lists and returns the
// steps to stop. A stroem.ErrNotFound error means the server does not know
// the worker (it restarted or expired it): register again.
func (c *Client) Heartbeat(ctx context.Context, hb stroem.Heartbeat) (stroem.HeartbeatResponse, error) {
	if hb.Running == nil {
		hb.Running = []stroem.StepRef{}
	}
	var out stroem.HeartbeatResponse
	_, err := c.do(ctx, request{method: http.MethodPost, path: "/worker/heartbeat", body: hb}, &out)
	return out, err
}

// Claim long-polls for a step. It returns nil and no error when nothing came
// within req.WaitMS (204). Cancelling ctx aborts the poll; the server then
// gives back a step it claimed for this request but could not deliver.
func (c *Client) Claim(ctx context.Context, req stroem.ClaimRequest) (*stroem.Assignment, error) {
	if req.WaitMS < 0 {
		req.WaitMS = 0
	}
	if req.WaitMS > int(MaxClaimWait/time.Millisecond) {
		req.WaitMS = int(MaxClaimWait / time.Millisecond)
	}
	var out stroem.Assignment
	status, err := c.do(ctx, request{
		method:  http.MethodPost,
		path:    "/worker/jobs/claim",
		body:    req,
		timeout: time.Duration(req.WaitMS)*time.Millisecond + claimSlack,
	}, &out)
	if err != nil {
		return nil, err
	}
	if status == http.StatusNoContent {
		return nil, nil
	}
	if out.JobID == "" || out.StepName == "" {
		return nil, fmt.Errorf("claim: the server answered %d without a step", status)
	}
	return &out, nil
}

// StepStart acknowledges a step handed to the worker; call it before running
// anything of the step. A stroem.ErrConflict error means the step was given
// back (not acknowledged in time) or is no longer this worker's: do not run
// it.
func (c *Client) StepStart(ctx context.Context, jobID, step string, s stroem.StepStart) error {
	_, err := c.do(ctx, request{method: http.MethodPost, path: stepPath(jobID, step, "start"), body: s}, nil)
	return err
}

// PushLogs stores a batch of log lines of one attempt. A stroem.ErrConflict
// error means the attempt is no longer this worker's: stop the step and drop
// its logs. The answer's Cancel asks the worker to stop the step.
func (c *Client) PushLogs(ctx context.Context, jobID, step string, p stroem.LogPush) (stroem.LogPushResponse, error) {
	if p.Lines == nil {
		p.Lines = []stroem.PushLine{}
	}
	var out stroem.LogPushResponse
	_, err := c.do(ctx, request{method: http.MethodPost, path: stepPath(jobID, step, "logs"), body: p}, &out)
	return out, err
}

// Complete reports the result of an attempt. Reporting the same completion
// again is harmless; a stroem.ErrConflict error means the report is stale
// and retrying it is pointless.
func (c *Client) Complete(ctx context.Context, jobID, step string, comp stroem.Completion) error {
	_, err := c.CompleteNext(ctx, jobID, step, comp)
	return err
}

// CompleteNext reports the result of an attempt, like Complete; with
// comp.Next set it also claims the slot's next step without waiting, and
// returns it: a claim like any other, to acknowledge with StepStart before
// running it. It returns nil when nothing was ready at once, when comp.Next
// is not set, and always from a server older than the field; an answer
// whose step is malformed counts as none (the server gives such a step back
// when no start comes).
func (c *Client) CompleteNext(ctx context.Context, jobID, step string, comp stroem.Completion) (*stroem.Assignment, error) {
	var out stroem.CompletionResponse
	_, err := c.do(ctx, request{method: http.MethodPost, path: stepPath(jobID, step, "complete"), body: comp}, &out)
	if err != nil || out.Next == nil || out.Next.JobID == "" || out.Next.StepName == "" {
		return nil, err
	}
	return out.Next, nil
}

// WorkspaceArchive downloads the files of workspace ws at revision as a
// tar.gz stream; the caller closes it. An unknown revision is a
// stroem.ErrNotFound error. Only ctx bounds the download.
func (c *Client) WorkspaceArchive(ctx context.Context, ws, revision string) (io.ReadCloser, error) {
	resp, cancel, err := c.send(ctx, request{
		method:  http.MethodGet,
		path:    "/worker/workspaces/" + seg(ws) + "/" + seg(revision+".tar.gz"),
		header:  http.Header{"Accept": {"application/gzip, application/octet-stream"}},
		timeout: -1,
	})
	if err != nil {
		return nil, err
	}
	return &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}, nil
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

func stepPath(jobID, step, verb string) string {
	return "/worker/jobs/" + seg(jobID) + "/steps/" + seg(step) + "/" + verb
}
