package http

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/auth"
)

// Version is the server version /api/config reports; cmd sets it.
var Version = "dev"

// mountAuth adds the auth API (reference/auth-api.md) and the admin user
// API. Without auth configured they answer 404, as upstream.
func (s *Server) mountAuth(r chi.Router) {
	r.Get("/config", s.handle(s.serverConfig))
	r.Route("/auth", func(r chi.Router) {
		r.Use(s.authConfigured)
		r.Post("/login", s.handle(s.login))
		r.Post("/refresh", s.handle(s.refresh))
		r.Post("/logout", s.handle(s.logout))
		r.Get("/me", s.handle(s.me))
		r.Get("/providers", s.handle(s.providers))
		r.Get("/api-keys", s.handle(s.apiKeysList))
		r.Post("/api-keys", s.handle(s.apiKeyCreate))
		r.Delete("/api-keys/{prefix}", s.handle(s.apiKeyRevoke))
		r.Get("/oidc/{provider}", s.handle(s.oidcStart))
		r.Get("/oidc/{provider}/callback", s.handle(s.oidcCallback))
	})
	r.Group(func(r chi.Router) {
		r.Use(s.authConfigured, s.adminOnly)
		r.Get("/users", s.handle(s.usersList))
		r.Get("/users/{id}", s.handle(s.userGet))
		r.Put("/users/{id}/admin", s.handle(s.userSetAdmin))
		r.Get("/users/{id}/groups", s.handle(s.userGroups))
		r.Put("/users/{id}/groups", s.handle(s.userSetGroups))
		r.Get("/groups", s.handle(s.groupsList))
		r.Get("/users/{id}/api-keys", s.handle(s.userAPIKeysList))
		r.Delete("/users/{id}/api-keys/{prefix}", s.handle(s.userAPIKeyRevoke))
	})
}

func (s *Server) authConfigured(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.Auth == nil {
			writeError(w, r, s.log, stroem.Errorf(stroem.CodeNotFound, "authentication is not configured on this server (no auth: section)"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) adminOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := requireAdmin(r); err != nil {
			s.denied(w, r, err, "forbidden")
			return
		}
		next.ServeHTTP(w, r)
	})
}

type serverConfigView struct {
	AuthRequired    bool                `json:"auth_required"`
	HasInternalAuth bool                `json:"has_internal_auth"`
	OIDCProviders   []auth.ProviderInfo `json:"oidc_providers"`
	ACLEnabled      bool                `json:"acl_enabled"`
	Version         string              `json:"version"`
}

func (s *Server) serverConfig(w http.ResponseWriter, _ *http.Request) error {
	v := serverConfigView{OIDCProviders: []auth.ProviderInfo{}, Version: Version}
	if a := s.cfg.Auth; a != nil {
		cfg := a.Config()
		v.AuthRequired, v.HasInternalAuth, v.OIDCProviders, v.ACLEnabled = true, cfg.HasInternal(), a.OIDCProviders(), a.ACL().Enabled()
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (s *Server) providers(w http.ResponseWriter, _ *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]any{"has_internal_auth": s.cfg.Auth.Config().HasInternal(), "oidc_providers": s.cfg.Auth.OIDCProviders()})
	return nil
}

type loginBody struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

type tokenPair struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) error {
	var b loginBody
	if err := decodeJSON(r, &b, false); err != nil {
		return err
	}
	sess, err := s.cfg.Auth.Login(r.Context(), b.Email, b.Password, clientIP(r))
	if err != nil {
		retryAfter(w, err)
		return err
	}
	s.setSessionCookies(w, r, sess)
	writeJSON(w, http.StatusOK, tokenPair{AccessToken: sess.AccessToken, RefreshToken: sess.RefreshToken})
	return nil
}

type refreshBody struct {
	RefreshToken string `json:"refresh_token"`
}

// refreshToken reads the refresh token from the body, else the cookie.
func refreshToken(r *http.Request) (string, error) {
	var b refreshBody
	if err := decodeJSON(r, &b, true); err != nil {
		return "", err
	}
	if b.RefreshToken == "" {
		if c, err := r.Cookie(RefreshCookie); err == nil {
			b.RefreshToken = c.Value
		}
	}
	return b.RefreshToken, nil
}

func (s *Server) refresh(w http.ResponseWriter, r *http.Request) error {
	tok, err := refreshToken(r)
	if err == nil {
		var sess auth.Session
		if sess, err = s.cfg.Auth.Refresh(r.Context(), tok, clientIP(r)); err == nil {
			s.setSessionCookies(w, r, sess)
			writeJSON(w, http.StatusOK, tokenPair{AccessToken: sess.AccessToken, RefreshToken: sess.RefreshToken})
			return nil
		}
	}
	retryAfter(w, err)
	if stroem.ErrorCode(err) == stroem.CodeUnauthorized {
		s.clearCookie(w, r, SessionCookie, "/")
		s.clearCookie(w, r, RefreshCookie, "/api/auth")
		return s.refused(r, err, "refresh refused")
	}
	return err
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) error {
	tok, err := refreshToken(r)
	if err == nil {
		err = s.cfg.Auth.Logout(r.Context(), tok)
	}
	if err != nil {
		return err
	}
	s.clearCookie(w, r, SessionCookie, "/")
	s.clearCookie(w, r, RefreshCookie, "/api/auth")
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

func (s *Server) me(w http.ResponseWriter, r *http.Request) error {
	u, err := s.cfg.Auth.Me(r.Context(), identity(r))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewUser(u))
	return nil
}

type userView struct {
	stroem.User
	Groups      []string `json:"groups"`
	AuthMethods []string `json:"auth_methods"`
}

func viewUser(u stroem.User) userView {
	v := userView{User: u, Groups: u.Groups, AuthMethods: u.AuthMethods}
	if v.Groups == nil {
		v.Groups = []string{}
	}
	if v.AuthMethods == nil {
		v.AuthMethods = []string{}
	}
	return v
}

type apiKeyBody struct {
	Name          string `json:"name"`
	ExpiresInDays *int   `json:"expires_in_days"`
}

type apiKeyCreated struct {
	Key string `json:"key"`
	stroem.APIKey
}

func (s *Server) apiKeyCreate(w http.ResponseWriter, r *http.Request) error {
	var b apiKeyBody
	if err := decodeJSON(r, &b, false); err != nil {
		return err
	}
	key, k, err := s.cfg.Auth.APIKeyCreate(r.Context(), identity(r), strings.TrimSpace(b.Name), b.ExpiresInDays)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, apiKeyCreated{Key: key, APIKey: k})
	return nil
}

func (s *Server) apiKeysList(w http.ResponseWriter, r *http.Request) error {
	ks, err := s.cfg.Auth.APIKeyList(r.Context(), identity(r))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ks)
	return nil
}

func (s *Server) apiKeyRevoke(w http.ResponseWriter, r *http.Request) error {
	if err := s.cfg.Auth.APIKeyRevoke(r.Context(), identity(r), pathParam(r, "prefix")); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

func (s *Server) oidcStart(w http.ResponseWriter, r *http.Request) error {
	provider := pathParam(r, "provider")
	authURL, flow, err := s.cfg.Auth.OIDCStart(r.Context(), provider)
	if err != nil {
		return err
	}
	secure := s.cfg.Auth.Config().SecureCookies() || r.TLS != nil
	http.SetCookie(w, &http.Cookie{Name: FlowCookie, Value: flow, Path: "/api/auth/oidc/", HttpOnly: true, Secure: secure,
		SameSite: http.SameSiteLaxMode, MaxAge: int(auth.FlowTTL.Seconds())})
	http.Redirect(w, r, authURL, http.StatusFound)
	return nil
}

// oidcCallback finishes the sign-in and sends the browser to the UI's
// /login/callback with the tokens (or the error) in the URL fragment, as
// upstream; it also sets the session cookies.
func (s *Server) oidcCallback(w http.ResponseWriter, r *http.Request) error {
	provider := pathParam(r, "provider")
	q := r.URL.Query()
	s.clearCookie(w, r, FlowCookie, "/api/auth/oidc/")
	fail := func(msg string) {
		s.log.Warn("OIDC sign-in failed", "provider", provider, "remote", clientIP(r), "err", msg)
		http.Redirect(w, r, "/login/callback#error="+url.QueryEscape(msg), http.StatusFound)
	}
	if e := q.Get("error"); e != "" {
		fail("the provider refused the sign-in: " + truncate(e+" "+q.Get("error_description"), 200))
		return nil
	}
	flow := ""
	if c, err := r.Cookie(FlowCookie); err == nil {
		flow = c.Value
	}
	sess, err := s.cfg.Auth.OIDCCallback(r.Context(), provider, q.Get("code"), q.Get("state"), flow)
	if err != nil {
		if stroem.ErrorCode(err) == stroem.CodeNotFound {
			return err
		}
		fail(stroem.ErrorMessage(err))
		return nil
	}
	s.setSessionCookies(w, r, sess)
	frag := url.Values{"access_token": {sess.AccessToken}, "refresh_token": {sess.RefreshToken}}
	http.Redirect(w, r, "/login/callback#"+frag.Encode(), http.StatusFound)
	return nil
}

type userPage struct {
	Items  []userView `json:"items"`
	Total  int        `json:"total"`
	Limit  int        `json:"limit"`
	Offset int        `json:"offset"`
}

func (s *Server) usersList(w http.ResponseWriter, r *http.Request) error {
	limit, offset, err := pageParams(r, 20, 1000)
	if err != nil {
		return err
	}
	us, total, err := s.cfg.Auth.UserList(r.Context(), limit, offset)
	if err != nil {
		return err
	}
	p := userPage{Items: []userView{}, Total: total, Limit: limit, Offset: offset}
	for _, u := range us {
		p.Items = append(p.Items, viewUser(u))
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

func (s *Server) userGet(w http.ResponseWriter, r *http.Request) error {
	u, err := s.cfg.Auth.UserGet(r.Context(), pathParam(r, "id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewUser(u))
	return nil
}

func (s *Server) userSetAdmin(w http.ResponseWriter, r *http.Request) error {
	var b struct {
		IsAdmin *bool `json:"is_admin"`
	}
	if err := decodeJSON(r, &b, false); err != nil {
		return err
	}
	if b.IsAdmin == nil {
		return stroem.Invalid("is_admin: required (true or false)")
	}
	u, err := s.cfg.Auth.UserSetAdmin(r.Context(), identity(r), pathParam(r, "id"), *b.IsAdmin)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewUser(u))
	return nil
}

func (s *Server) userGroups(w http.ResponseWriter, r *http.Request) error {
	u, err := s.cfg.Auth.UserGet(r.Context(), pathParam(r, "id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string][]string{"groups": viewUser(u).Groups})
	return nil
}

func (s *Server) userSetGroups(w http.ResponseWriter, r *http.Request) error {
	var b struct {
		Groups *[]string `json:"groups"`
	}
	if err := decodeJSON(r, &b, false); err != nil {
		return err
	}
	if b.Groups == nil {
		return stroem.Invalid("groups: required (a list of group names, [] for none)")
	}
	u, err := s.cfg.Auth.UserSetGroups(r.Context(), identity(r), pathParam(r, "id"), *b.Groups)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string][]string{"groups": viewUser(u).Groups})
	return nil
}

func (s *Server) groupsList(w http.ResponseWriter, r *http.Request) error {
	gs, err := s.cfg.Auth.GroupList(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string][]string{"groups": gs})
	return nil
}
