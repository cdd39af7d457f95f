package http

import (
	"net/http"
	"strings"

	"github.com/stroem/stroem"
)

// jobACLPath is the ACL path a job is checked against: its task's. A hook
// job (`_hook:<action>`, a task made for it) has no task a rule could
// name, and its input carries the job it reports on (its status, its
// errors), so it is checked as that job: whoever may see or run the job
// may see or cancel its hooks, and nobody else. When the reported job is
// gone (retention), the hook job's own name is checked.
func (s *Server) jobACLPath(r *http.Request, j *stroem.Job) string {
	if s.acl().Enabled() && j.SourceType == stroem.SourceHook && j.SourceID != "" && strings.HasPrefix(j.TaskName, "_hook:") {
		if p, err := s.store.JobGet(r.Context(), j.SourceID); err == nil {
			return jobTaskPath(s.ws, p)
		}
	}
	return jobTaskPath(s.ws, j)
}
