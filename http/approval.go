package http

import (
	"errors"
	"fmt"
	"net/http"
	"unicode/utf8"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/actors"
	"github.com/stroem/stroem/persistence"
	"github.com/stroem/stroem/workspace"
)

// Approval gates, sub-jobs and hooks in the public API (issue 19 part B):
// the decision route, and the links the single-job view shows.

// approveBody is the upstream Strøm's body: approved, and a rejection
// reason; message is an optional comment either way.
type approveBody struct {
	Approved        *bool  `json:"approved"`
	RejectionReason string `json:"rejection_reason"`
	Message         string `json:"message"`
}

func (s *Server) stepApprove(w http.ResponseWriter, r *http.Request) error {
	j, err := s.runnableJob(r, "approve steps of")
	if err != nil {
		return err
	}
	step := pathParam(r, "step")
	var b approveBody
	if err := decodeJSON(r, &b, false); err != nil {
		return err
	}
	if b.Approved == nil {
		return stroem.Invalid(`"approved" is required: true to approve, false to reject`)
	}
	for name, v := range map[string]string{"rejection_reason": b.RejectionReason, "message": b.Message} {
		if len(v) > actors.MaxApprovalText || !utf8.ValidString(v) {
			return stroem.Invalid(fmt.Sprintf("%q must be text of at most %d bytes", name, actors.MaxApprovalText))
		}
	}
	if *b.Approved && b.RejectionReason != "" {
		return stroem.Invalid(`"rejection_reason" is for rejecting ("approved": false); use "message" for a comment`)
	}
	who := identity(r).Actor()
	if who == "" {
		who = "anonymous"
	}
	d := actors.Decision{Approved: *b.Approved, By: who, Reason: b.RejectionReason, Message: b.Message}
	if err := s.orch.Approve(r.Context(), j.ID, step, d); err != nil {
		return err
	}
	if j, err = s.jobReload(r.Context(), j.ID); err != nil {
		return err
	}
	return s.writeJobView(w, r, j)
}

// maxHookLinks bounds the hook jobs a job view lists (and the hook list
// positions matched against their derived ids).
const maxHookLinks = 64

// jobLinks fills a job's parent, children and hooks, showing only jobs the
// caller may see.
func (s *Server) jobLinks(r *http.Request, j *stroem.Job) error {
	ctx := r.Context()
	get := func(id string) (*stroem.Job, error) {
		c, err := s.store.JobGet(ctx, id)
		if errors.Is(err, stroem.ErrNotFound) {
			return nil, nil
		}
		if err != nil || !s.canSee(r, c) {
			return nil, err
		}
		return c, nil
	}
	if j.SourceType == stroem.SourceTask && j.SourceID != "" {
		j.ParentJobID, j.ParentStepName = stroem.ParseTaskSourceID(j.SourceID)
	}
	var approvals []string
	for i := range j.Steps {
		st := &j.Steps[i]
		switch st.ActionType {
		case workspace.ActionApproval:
			approvals = append(approvals, st.StepName)
		case workspace.ActionTask:
			c, err := get(actors.ChildJobID(j.ID, st.StepName))
			if err != nil {
				return err
			}
			if c != nil {
				st.ChildJobID = c.ID
				j.Children = append(j.Children, stroem.JobLink{JobID: c.ID, StepName: st.StepName, TaskName: c.TaskName, Status: c.Status})
			}
		}
	}
	if j.SourceType == stroem.SourceHook {
		return nil
	}
	hooks, err := s.store.JobList(ctx, persistence.JobFilter{SourceType: stroem.SourceHook, SourceID: j.ID, Limit: maxHookLinks})
	if err != nil {
		return err
	}
	for i := len(hooks) - 1; i >= 0; i-- { // oldest first
		h := hooks[i]
		if !s.canSee(r, &h) {
			continue
		}
		j.Hooks = append(j.Hooks, stroem.JobLink{JobID: h.ID, Event: hookEventOf(j.ID, h.ID, approvals), TaskName: h.TaskName, Status: h.Status})
	}
	return nil
}

// hookEventOf finds which event made a hook job, from its derived id.
func hookEventOf(jobID, hookID string, approvals []string) string {
	for i := 0; i < maxHookLinks; i++ {
		for _, ev := range []string{workspace.HookOnSuccess, workspace.HookOnError, workspace.HookOnCancel} {
			if actors.HookJobID(jobID, ev, i, "") == hookID {
				return ev
			}
		}
		for _, step := range approvals {
			if actors.HookJobID(jobID, workspace.HookOnSuspended, i, step) == hookID {
				return workspace.HookOnSuspended
			}
		}
	}
	return ""
}
