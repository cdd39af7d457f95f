package http

import "net/http"

// serverConfig is GET /api/config, the public description of the server a
// browser needs before signing in. This server has no authentication yet.
//
// Authentication (issue 15) brings its own GET /api/config: when it is
// merged, delete this file and its route in Handler.
func (s *Server) serverConfig(w http.ResponseWriter, _ *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]any{
		"auth_required": false, "has_internal_auth": false,
		"oidc_providers": []any{}, "acl_enabled": false,
	})
	return nil
}
