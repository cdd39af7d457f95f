package http

import (
	"github.com/stroem/stroem"
	"github.com/stroem/stroem/workspace"
)

// maskConnectionSecrets masks, in a list of jobs, the secret properties of
// the connections their inputs were resolved to (workspace/connection.go),
// and the workspaces' secrets (rendered into hook and child job inputs).
// A served single job is masked by its own plan (Orchestrator.Masker),
// which holds them too; a list masks with every loaded workspace's
// current connection secrets, without a store read per job.
func (s *Server) maskConnectionSecrets(jobs []stroem.Job) {
	var values []string
	for _, ws := range s.ws.List() {
		// A hook's or a `type: task` step's input may render secrets
		// (`{{ secret.X }}`) into the job it creates: mask those too.
		for name, v := range ws.Secrets {
			if resolved, err := workspace.ResolveSecrets(map[string]any{name: v}); err == nil {
				values = append(values, workspace.SecretValues(resolved)...)
			}
		}
		refs := ws.ConnectionSecretRefs()
		if len(refs) == 0 {
			continue
		}
		for name, v := range refs {
			resolved, err := workspace.ResolveSecrets(map[string]any{name: v})
			if err != nil {
				continue // one that does not resolve made no job
			}
			values = append(values, workspace.SecretValues(resolved)...)
		}
	}
	if len(values) == 0 {
		return
	}
	m := stroem.NewMasker(values)
	for i := range jobs {
		m.MaskJob(&jobs[i])
	}
}
