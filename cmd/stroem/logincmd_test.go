package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem/auth"
)

// TestCLILoginAndAPIKeys: `stroem login` keeps the session in a 0600 file
// that every client command uses (refreshing it when the access token
// expires), whoami, api-keys create|list|revoke with STROEM_TOKEN, and the
// 401/403 advice.
func TestCLILoginAndAPIKeys(t *testing.T) {
	cfgDir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", cfgDir)
	t.Setenv("HOME", cfgDir)
	t.Setenv("STROEM_TOKEN", "")
	e := newAuthEnv(t, nil)
	e.user("viewer@example.com", "pw-viewer", "viewers")
	ctx := context.Background()
	server := "--server=" + e.url

	r := runCLI(t, ctx, "tasks", server)
	require.Equal(t, 1, r.code, r.err)
	require.Contains(t, r.err, "authentication required")
	require.Contains(t, r.err, "log in with `stroem login`")

	r = runCLIIn(t, ctx, "wrong\n", "login", server, "--email", adminEmail, "--password-stdin")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.err, "invalid email or password")

	r = runCLIIn(t, ctx, adminPassword+"\n", "login", server, "--email", adminEmail, "--password-stdin")
	require.Equal(t, 0, r.code, r.err)
	path := filepath.Join(cfgDir, "stroem", "credentials.json")
	require.Contains(t, r.out, path)
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "the token file is private")
	require.NotContains(t, r.out+r.err, adminPassword)

	r = runCLI(t, ctx, "whoami", server)
	require.Equal(t, 0, r.code, r.err)
	require.Contains(t, r.out, adminEmail+" (admin)")
	r = runCLI(t, ctx, "tasks", server)
	require.Equal(t, 0, r.code, r.err)
	require.Contains(t, r.out, "hello")

	// An access token that expired is renewed with the refresh token.
	var cf credentialFile
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &cf))
	cred := cf.Servers[e.url]
	past := auth.NewTokens(testJWTSecret, testRefreshSecret, func() time.Time { return time.Now().Add(-time.Hour) })
	me, err := e.store.UserGetByEmail(ctx, adminEmail)
	require.NoError(t, err)
	cred.AccessToken, _, err = past.Access(auth.Identity{UserID: me.ID, Email: adminEmail, IsAdmin: true})
	require.NoError(t, err)
	oldRefresh := cred.RefreshToken
	cf.Servers[e.url] = cred
	require.NoError(t, saveCredentials(cf, path))
	r = runCLI(t, ctx, "whoami", server)
	require.Equal(t, 0, r.code, r.err)
	b, err = os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &cf))
	require.NotEqual(t, oldRefresh, cf.Servers[e.url].RefreshToken, "rotated")

	// stroem status shows who created and who cancelled a job.
	r = runCLI(t, ctx, "trigger", "hello", server)
	require.Equal(t, 0, r.code, r.err)
	jobID := strings.TrimSpace(r.out)
	r = runCLI(t, ctx, "cancel", jobID, server)
	require.Equal(t, 0, r.code, r.err)
	r = runCLI(t, ctx, "status", jobID, server)
	require.Equal(t, 0, r.code, r.err)
	require.Contains(t, r.out, "by:        "+adminEmail)
	require.Contains(t, r.out, "cancelled: by "+adminEmail)

	// API keys.
	r = runCLI(t, ctx, "api-keys", "create", "ci", "--expires-in-days", "7", server)
	require.Equal(t, 0, r.code, r.err)
	key := strings.TrimSpace(r.out)
	require.NoError(t, auth.ValidAPIKeyFormat(key))
	require.Contains(t, r.err, "shown only now")
	r = runCLI(t, ctx, "api-keys", "list", server)
	require.Equal(t, 0, r.code, r.err)
	require.Contains(t, r.out, key[:8])
	require.Contains(t, r.out, "ci")
	require.NotContains(t, r.out, key)
	t.Setenv("STROEM_TOKEN", key)
	r = runCLI(t, ctx, "whoami", server)
	require.Equal(t, 0, r.code, r.err)
	require.Contains(t, r.out, adminEmail)
	// login with STROEM_TOKEN keeps the key for later commands.
	r = runCLI(t, ctx, "login", server)
	require.Equal(t, 0, r.code, r.err)
	require.Contains(t, r.out, "(API key)")
	r = runCLI(t, ctx, "api-keys", "create", "again", server)
	require.Equal(t, 1, r.code)
	require.Contains(t, r.err, "API keys cannot create API keys")
	t.Setenv("STROEM_TOKEN", "")
	r = runCLI(t, ctx, "whoami", server)
	require.Equal(t, 0, r.code, r.err)
	require.Contains(t, r.out, adminEmail, "the kept key is used")
	r = runCLI(t, ctx, "api-keys", "revoke", key[:8], server)
	require.Equal(t, 0, r.code, r.err)
	t.Setenv("STROEM_TOKEN", key)
	r = runCLI(t, ctx, "whoami", server)
	require.Equal(t, 1, r.code)
	require.Contains(t, r.err, "unknown or revoked API key")
	require.Contains(t, r.err, "stroem login")
	t.Setenv("STROEM_TOKEN", "")

	// A user who may only view: running is a 403 with advice.
	r = runCLIIn(t, ctx, "pw-viewer\n", "login", server, "--email", "viewer@example.com", "--password-stdin")
	require.Equal(t, 0, r.code, r.err)
	r = runCLI(t, ctx, "trigger", "hello", server)
	require.Equal(t, 1, r.code)
	require.Contains(t, r.err, "may view task")
	require.Contains(t, r.err, "lacks this permission")

	// Logout forgets the session and revokes it on the server.
	b, err = os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &cf))
	refresh := cf.Servers[e.url].RefreshToken
	r = runCLI(t, ctx, "logout", server)
	require.Equal(t, 0, r.code, r.err)
	st, _, _ := e.do(req{method: "POST", path: "/api/auth/refresh", body: `{"refresh_token": "` + refresh + `"}`})
	require.Equal(t, 401, st)
	r = runCLI(t, ctx, "tasks", server)
	require.Equal(t, 1, r.code)
	require.Contains(t, r.err, "authentication required")
}
