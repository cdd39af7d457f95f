package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem/auth"
)

// api-keys create checks its NAME and --expires-in-days as the server
// does, before the request: a usage error (exit 2) in one clear line, not
// the server's 400 (exit 1) with its problem printed twice.
func TestAPIKeysCreateChecksItsArguments(t *testing.T) {
	t.Parallel()
	_, url := newFakeAPI(t)
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"api-keys", "create", "ci", "--expires-in-days", "36501"}, "stroem: --expires-in-days 36501: want 1 to 36500, or 0 for a key that never expires\n"},
		{[]string{"api-keys", "create", "ci", "--expires-in-days", "-1"}, "stroem: --expires-in-days -1: want 1 to 36500, or 0 for a key that never expires\n"},
		{[]string{"api-keys", "create", " "}, "stroem: NAME must not be empty\n"},
	} {
		r := runCLI(t, t.Context(), append(tc.args, "--server", url)...)
		require.Equal(t, 2, r.code, "%v: %s", tc.args, r.err)
		require.Equal(t, tc.err, r.err, tc.args)
	}
	require.Equal(t, 36500, auth.MaxAPIKeyDays, "the CLI's bound is the server's")
}

// api-keys revoke given the whole key (pasted from where it leaked)
// revokes it by its prefix: the key was sent in the request's path (kept
// in access logs) and printed back in "API key \"strm_…\" not found".
func TestAPIKeysRevokeGivenTheWholeKey(t *testing.T) {
	t.Setenv("STROEM_TOKEN", "")
	const key = "strm_a1b2c3d4e5f60718293a4b5c6d7e8f90"
	require.NoError(t, auth.ValidAPIKeyFormat(key))
	var mu sync.Mutex
	var paths []string
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/auth/api-keys", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`[{"prefix":"strm_a1b","name":"ci","created_at":"2026-11-28T06:00:00Z"}]`))
	})
	mux.HandleFunc("DELETE /api/auth/api-keys/{prefix}", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.Path)
		mu.Unlock()
		if r.PathValue("prefix") != "strm_a1b" {
			w.WriteHeader(404)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": fmt.Sprintf("API key %q not found", r.PathValue("prefix"))})
			return
		}
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	r := runCLI(t, t.Context(), "api-keys", "revoke", key, "--server", srv.URL)
	require.Equal(t, 0, r.code, r.err)
	require.Equal(t, "API key strm_a1b revoked\n", r.out)
	require.Equal(t, []string{"/api/auth/api-keys/strm_a1b"}, paths, "the key is not sent")

	other := "strm_ffffffffffffffffffffffffffffffff"
	r = runCLI(t, t.Context(), "api-keys", "revoke", other, "--server", srv.URL)
	require.Equal(t, 1, r.code, r.err)
	require.Equal(t, "stroem: none of your API keys is this key (`stroem api-keys list` shows their prefixes)\n", r.err)
	require.NotContains(t, r.out+r.err, other)
	require.Len(t, paths, 1, "the key is not sent")
}
