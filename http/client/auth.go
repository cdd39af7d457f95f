package client

import (
	"context"
	"net/http"
	"time"

	"github.com/stroem/stroem"
)

// Tokens is a session: what login and refresh return.
type Tokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
}

// Login signs in with an email and password (POST /api/auth/login).
func (c *Client) Login(ctx context.Context, email, password string) (Tokens, error) {
	var out Tokens
	_, err := c.do(ctx, request{method: http.MethodPost, path: "/api/auth/login",
		body: map[string]string{"email": email, "password": password}}, &out)
	return out, err
}

// Refresh trades a refresh token for a new pair; the old one is spent.
func (c *Client) Refresh(ctx context.Context, refreshToken string) (Tokens, error) {
	var out Tokens
	_, err := c.do(ctx, request{method: http.MethodPost, path: "/api/auth/refresh",
		body: map[string]string{"refresh_token": refreshToken}}, &out)
	return out, err
}

// Logout revokes the session of a refresh token.
func (c *Client) Logout(ctx context.Context, refreshToken string) error {
	_, err := c.do(ctx, request{method: http.MethodPost, path: "/api/auth/logout",
		body: map[string]string{"refresh_token": refreshToken}}, nil)
	return err
}

// Me is the signed-in user (GET /api/auth/me).
func (c *Client) Me(ctx context.Context) (stroem.User, error) {
	return get[stroem.User](ctx, c, "/api/auth/me")
}

// ServerInfo is GET /api/config: whether the server wants a login.
type ServerInfo struct {
	AuthRequired    bool   `json:"auth_required"`
	HasInternalAuth bool   `json:"has_internal_auth"`
	ACLEnabled      bool   `json:"acl_enabled"`
	Version         string `json:"version"`
	OIDCProviders   []struct {
		ID          string `json:"id"`
		DisplayName string `json:"display_name"`
	} `json:"oidc_providers"`
}

// ServerInfo reads the server's public configuration.
func (c *Client) ServerInfo(ctx context.Context) (ServerInfo, error) {
	return get[ServerInfo](ctx, c, "/api/config")
}

// NewAPIKey is a created key; Key is shown this once.
type NewAPIKey struct {
	Key       string     `json:"key"`
	Name      string     `json:"name"`
	Prefix    string     `json:"prefix"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at"`
}

// APIKeyCreate makes an API key for the signed-in user; expiresInDays 0
// means no expiry.
func (c *Client) APIKeyCreate(ctx context.Context, name string, expiresInDays int) (NewAPIKey, error) {
	body := map[string]any{"name": name}
	if expiresInDays > 0 {
		body["expires_in_days"] = expiresInDays
	}
	var out NewAPIKey
	_, err := c.do(ctx, request{method: http.MethodPost, path: "/api/auth/api-keys", body: body}, &out)
	return out, err
}

// APIKeys lists the signed-in user's keys (never the keys themselves).
func (c *Client) APIKeys(ctx context.Context) ([]stroem.APIKey, error) {
	return get[[]stroem.APIKey](ctx, c, "/api/auth/api-keys")
}

// APIKeyRevoke revokes one of the signed-in user's keys by its prefix.
func (c *Client) APIKeyRevoke(ctx context.Context, prefix string) error {
	_, err := c.do(ctx, request{method: http.MethodDelete, path: "/api/auth/api-keys/" + seg(prefix)}, nil)
	return err
}
