package actors

import (
	"maps"

	"github.com/stroem/stroem/workspace"
)

// Connections (workspace/connection.go): a task input whose type is a
// connection type takes a connection's name, replaced at job creation by
// the connection's values; its secret properties are masked like secrets.

// resolveConnections returns the request's input with connection names
// resolved, and the problems (a name that names no such connection, a
// reference that does not resolve).
func resolveConnections(ws *workspace.Workspace, task *workspace.Task, in map[string]any) (map[string]any, []string) {
	out, problems, _ := ws.ResolveConnections(task.Input, in)
	return out, problems
}

// withConnectionSecrets adds the resolved secret properties of the
// snapshot's connections to the values a plan's masker hides. One that
// does not resolve is left out here: a job using it fails at creation.
func withConnectionSecrets(secrets map[string]any, snap *Snapshot) map[string]any {
	return connectionSecrets(secrets, snap.ConnectionSecrets)
}

// connectionSecrets is secrets with the resolved values of refs (secret
// properties by connection) added.
func connectionSecrets(secrets map[string]any, refs map[string]any) map[string]any {
	if len(refs) == 0 {
		return secrets
	}
	out := maps.Clone(secrets)
	if out == nil {
		out = map[string]any{}
	}
	for name, v := range refs {
		m, _ := v.(map[string]any)
		for k, raw := range m {
			if r, err := workspace.ResolveSecrets(map[string]any{k: raw}); err == nil {
				out["\x00connection "+name+"."+k] = r[k]
			}
		}
	}
	return out
}
