package http

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

// The web UI answers only what no route claims, and never under the
// server's own prefixes.
func TestUINeverShadowsTheServer(t *testing.T) {
	t.Parallel()
	ui := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "the app") })
	h := NewServer(Config{UI: ui}, nil, nil, nil, nil, nil, nil, nil).Handler()
	for _, c := range []struct {
		method, path string
		app          bool
		code         int
	}{
		{"GET", "/", true, 200},
		{"GET", "/jobs/123", true, 200},
		{"HEAD", "/tasks", true, 200},
		{"GET", "/api/config", false, 200},
		{"POST", "/jobs", false, 404},
		{"GET", "/api/nope", false, 404},
		{"GET", "/api", false, 404},
		{"GET", "/hooks/x", false, 404},
		{"GET", "/worker/nope", false, 404},
		{"GET", "/metrics", false, 404},
		{"GET", "/readyzz", true, 200},
		{"GET", "/apix", true, 200},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(c.method, c.path, nil))
		require.Equal(t, c.code, rec.Code, "%s %s", c.method, c.path)
		if c.app {
			require.Equal(t, "the app", rec.Body.String(), "%s %s", c.method, c.path)
		} else {
			require.NotEqual(t, "the app", rec.Body.String(), "%s %s", c.method, c.path)
		}
	}
}

func TestServerConfigSaysAuthIsOff(t *testing.T) {
	t.Parallel()
	h := NewServer(Config{}, nil, nil, nil, nil, nil, nil, nil).Handler()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/config", nil))
	require.Equal(t, 200, rec.Code)
	require.JSONEq(t, `{"auth_required": false, "has_internal_auth": false, "oidc_providers": [], "acl_enabled": false, "version": "dev"}`, rec.Body.String())
}
