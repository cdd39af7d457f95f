package main

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
)

// An admin lists and revokes another user's API keys (the web UI's user
// administration); a revoked key stops working; unknown users, unknown
// prefixes and non-admins are refused.
func TestAdminManagesUsersAPIKeys(t *testing.T) {
	t.Parallel()
	e := newAuthEnv(t, nil)
	userID := e.user("dev@example.com", "pw-dev")
	access, _ := e.login("dev@example.com", "pw-dev")
	adminAccess, _ := e.login(adminEmail, adminPassword)

	st, b, _ := e.do(req{method: "POST", path: "/api/auth/api-keys", body: `{"name": "laptop"}`, token: access})
	require.Equal(t, http.StatusCreated, st, string(b))
	var key struct {
		Key    string `json:"key"`
		Prefix string `json:"prefix"`
	}
	require.NoError(t, json.Unmarshal(b, &key))

	st, b, _ = e.do(req{method: "GET", path: "/api/users/" + userID + "/api-keys", token: adminAccess})
	require.Equal(t, http.StatusOK, st, string(b))
	require.NotContains(t, string(b), key.Key)
	var keys []stroem.APIKey
	require.NoError(t, json.Unmarshal(b, &keys))
	require.Len(t, keys, 1)
	require.Equal(t, key.Prefix, keys[0].Prefix)
	require.Equal(t, "laptop", keys[0].Name)

	// The owner may not use the admin route.
	st, _, _ = e.do(req{method: "GET", path: "/api/users/" + userID + "/api-keys", token: access})
	require.Equal(t, http.StatusForbidden, st)
	st, _, _ = e.do(req{method: "DELETE", path: "/api/users/" + userID + "/api-keys/" + key.Prefix, token: access})
	require.Equal(t, http.StatusForbidden, st)

	// Unknown user, malformed id and unknown prefix are 404s.
	st, b, _ = e.do(req{method: "GET", path: "/api/users/00000000-0000-0000-0000-000000000000/api-keys", token: adminAccess})
	require.Equal(t, http.StatusNotFound, st, string(b))
	st, _, _ = e.do(req{method: "GET", path: "/api/users/not-a-uuid/api-keys", token: adminAccess})
	require.Equal(t, http.StatusNotFound, st)
	st, b, _ = e.do(req{method: "DELETE", path: "/api/users/" + userID + "/api-keys/strm_nope", token: adminAccess})
	require.Equal(t, http.StatusNotFound, st, string(b))
	require.Contains(t, string(b), "strm_nope")

	st, _, _ = e.do(req{method: "GET", path: "/api/auth/me", token: key.Key})
	require.Equal(t, http.StatusOK, st)
	st, b, _ = e.do(req{method: "DELETE", path: "/api/users/" + userID + "/api-keys/" + key.Prefix, token: adminAccess})
	require.Equal(t, http.StatusOK, st, string(b))
	st, _, _ = e.do(req{method: "GET", path: "/api/auth/me", token: key.Key})
	require.Equal(t, http.StatusUnauthorized, st)
	st, b, _ = e.do(req{method: "GET", path: "/api/users/" + userID + "/api-keys", token: adminAccess})
	require.Equal(t, http.StatusOK, st)
	require.JSONEq(t, `[]`, string(b))
}
