package client

import (
	"context"
	"net/http"

	"github.com/stroem/stroem"
)

// Approval is a decision on an approval gate (POST
// /api/jobs/{id}/steps/{step}/approve).
type Approval struct {
	Approved        bool   `json:"approved"`
	RejectionReason string `json:"rejection_reason,omitempty"`
	Message         string `json:"message,omitempty"`
}

// Approve decides a suspended approval gate and returns the job as it is
// then.
func (c *Client) Approve(ctx context.Context, jobID, step string, a Approval) (stroem.Job, error) {
	var out stroem.Job
	_, err := c.do(ctx, request{method: http.MethodPost, path: "/api/jobs/" + seg(jobID) + "/steps/" + seg(step) + "/approve", body: a}, &out)
	return out, err
}
