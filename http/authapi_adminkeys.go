package http

import "net/http"

// userAPIKeysList is GET /api/users/{id}/api-keys (admins): a user's API
// keys, the same shape as GET /api/auth/api-keys.
func (s *Server) userAPIKeysList(w http.ResponseWriter, r *http.Request) error {
	ks, err := s.cfg.Auth.UserAPIKeyList(r.Context(), pathParam(r, "id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ks)
	return nil
}

// userAPIKeyRevoke is DELETE /api/users/{id}/api-keys/{prefix} (admins).
func (s *Server) userAPIKeyRevoke(w http.ResponseWriter, r *http.Request) error {
	if err := s.cfg.Auth.UserAPIKeyRevoke(r.Context(), identity(r), pathParam(r, "id"), pathParam(r, "prefix")); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}
