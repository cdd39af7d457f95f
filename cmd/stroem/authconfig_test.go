package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// upstreamAuthConfig is the server configuration of the upstream's
// authentication and authorization pages, as an upstream user has it.
const upstreamAuthConfig = `
worker_token: wt
workspaces:
  default:
    type: folder
    path: ./workspace
auth:
  jwt_secret: "your-jwt-secret"
  refresh_secret: "your-refresh-secret"
  base_url: "https://stroem.company.com"  # Required for OIDC
  providers:
    internal:
      provider_type: internal
    # OIDC SSO provider:
    google:
      provider_type: oidc
      display_name: "Google"
      issuer_url: "https://accounts.google.com"
      client_id: "your-client-id.apps.googleusercontent.com"
      client_secret: "your-client-secret"
      default_groups: [employees, viewers]
  initial_user:
    email: admin@stroem.local
    password: admin
acl:
  default: deny    # What happens when no rule matches: deny | view | run
  rules:
    - workspace: "production"
      tasks: ["deploy/*"]
      action: run
      groups: [devops]
      users: [contractor@ext.com]
    - workspace: "*"
      tasks: ["*"]
      action: view
      groups: [engineering]
`

func TestUpstreamAuthConfigLoads(t *testing.T) {
	t.Parallel()
	path := configFile(t, "server-config.yaml", upstreamAuthConfig)
	cfg := loadServerConfig(t, path)
	require.NoError(t, cfg.validate(), "the default listen 0.0.0.0:8080 is fine with auth on")
	require.NotNil(t, cfg.Auth)
	require.Equal(t, "your-jwt-secret", cfg.Auth.JWTSecret)
	require.Equal(t, "oidc", cfg.Auth.Providers["google"].ProviderType)
	require.Equal(t, []string{"employees", "viewers"}, cfg.Auth.Providers["google"].DefaultGroups)
	require.Equal(t, "admin@stroem.local", cfg.Auth.InitialUser.Email)
	require.Len(t, cfg.ACL.Rules, 2)
}

func TestAuthSecretsFromEnvAndRefs(t *testing.T) {
	// The Helm way (STROEM__AUTH__… overrides) and ref+env:// references.
	t.Setenv("MY_JWT", "from-a-reference-0123456789")
	path := configFile(t, "server.yaml", `
worker_token: wt
auth:
  jwt_secret: "ref+env://MY_JWT"
  refresh_secret: "placeholder"
  providers:
    internal: {provider_type: internal}
  initial_user: {email: admin@example.com, password: placeholder}
`)
	cfg := loadServerConfig(t, path,
		"STROEM__AUTH__REFRESH_SECRET=real-refresh-secret-0123",
		"STROEM__AUTH__INITIAL_USER__PASSWORD=real-admin-password",
	)
	require.NoError(t, cfg.validate())
	require.Equal(t, "from-a-reference-0123456789", cfg.Auth.JWTSecret)
	require.Equal(t, "real-refresh-secret-0123", cfg.Auth.RefreshSecret)
	require.Equal(t, "real-admin-password", cfg.Auth.InitialUser.Password)

	cfg = loadServerConfig(t, path, "STROEM__AUTH__JWT_SECRET=ref+env://NOT_SET_ANYWHERE_42")
	err := cfg.validate()
	require.ErrorContains(t, err, `environment variable "NOT_SET_ANYWHERE_42" is not set`)
	require.ErrorContains(t, err, "auth.jwt_secret")
}

func TestNoAuthNeedsLoopbackOrOptOut(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		env     []string
		wantErr bool
	}{
		{[]string{"STROEM__WORKER_TOKEN=t"}, true}, // default 0.0.0.0:8080
		{[]string{"STROEM__WORKER_TOKEN=t", "STROEM__LISTEN=:8080"}, true},
		{[]string{"STROEM__WORKER_TOKEN=t", "STROEM__LISTEN=192.168.1.5:8080"}, true},
		{[]string{"STROEM__WORKER_TOKEN=t", "STROEM__LISTEN=127.0.0.1:8080"}, false},
		{[]string{"STROEM__WORKER_TOKEN=t", "STROEM__LISTEN=localhost:8080"}, false},
		{[]string{"STROEM__WORKER_TOKEN=t", "STROEM__LISTEN=[::1]:8080"}, false},
		{[]string{"STROEM__WORKER_TOKEN=t", "STROEM__INSECURE_NO_AUTH=true"}, false},
	} {
		cfg := loadServerConfig(t, "", c.env...)
		err := cfg.validate()
		if !c.wantErr {
			require.NoError(t, err, c.env)
			continue
		}
		require.Error(t, err, c.env)
		// The error says how to do either.
		for _, want := range []string{"without authentication", "auth:", "docs/auth.md", "127.0.0.1", "insecure_no_auth: true"} {
			require.ErrorContains(t, err, want)
		}
	}

	cfg := loadServerConfig(t, "", "STROEM__WORKER_TOKEN=t", "STROEM__LISTEN=127.0.0.1:1", "STROEM__ACL__DEFAULT=view")
	require.ErrorContains(t, cfg.validate(), "acl: needs an auth: section")
}

// TestComposeAuthFromEnvironment: the variables docker-compose.yml sets
// make a complete auth section on their own.
func TestComposeAuthFromEnvironment(t *testing.T) {
	t.Parallel()
	cfg := loadServerConfig(t, "",
		"STROEM__WORKER_TOKEN=wt",
		"STROEM__AUTH__JWT_SECRET=0123456789abcdef0123456789abcdef",
		"STROEM__AUTH__REFRESH_SECRET=fedcba9876543210fedcba9876543210",
		"STROEM__AUTH__PROVIDERS__INTERNAL__PROVIDER_TYPE=internal",
		"STROEM__AUTH__INITIAL_USER__EMAIL=admin@stroem.local",
		"STROEM__AUTH__INITIAL_USER__PASSWORD=s3cret-pass",
	)
	require.NoError(t, cfg.validate(), "listens on 0.0.0.0:8080 with auth on")
	require.True(t, cfg.Auth.HasInternal())
	require.Equal(t, "s3cret-pass", cfg.Auth.InitialUser.Password)
	require.Empty(t, cfg.Auth.Warnings())
}

// TestDevStaysOnLoopback: `stroem dev` has no authentication and refuses
// an address other machines can reach.
func TestDevStaysOnLoopback(t *testing.T) {
	t.Parallel()
	ws := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(ws, ".workflows"), 0o755))
	r := runCLI(t, t.Context(), "dev", ws, "--listen", "0.0.0.0:0", "--data-dir", t.TempDir())
	require.Equal(t, 2, r.code)
	require.Contains(t, r.err, "stroem dev has no authentication")
	require.Contains(t, r.err, "docs/auth.md")
	require.Equal(t, devDefaultListen, "127.0.0.1:8080")
}
