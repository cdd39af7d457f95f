package auth

import (
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

func TestPasswordHash(t *testing.T) {
	t.Parallel()
	h, err := HashPassword("correct horse")
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$"), h)
	ok, err := VerifyPassword(h, "correct horse")
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = VerifyPassword(h, "correct horsf")
	require.NoError(t, err)
	require.False(t, ok)

	h2, err := HashPassword("correct horse")
	require.NoError(t, err)
	require.NotEqual(t, h, h2, "every hash has its own salt")

	// A hash made by another argon2id implementation (the Rust crate the
	// upstream uses, default parameters) verifies: the parameters are read
	// from the PHC string.
	other := "$argon2id$v=19$m=8,t=1,p=1$c29tZXNhbHQ$+JhhdLOUzSkZ2MyCbAj/LoUbtG8rQ/PkNpiNNsVbj0E"
	_, err = VerifyPassword(other, "x")
	require.NoError(t, err)

	for _, bad := range []string{"", "plain", "$argon2i$v=19$m=1,t=1,p=1$AAAA$AAAA", "$argon2id$v=19$m=x$a$b", "$argon2id$v=19$m=19456,t=2,p=1$!!$AAAA"} {
		_, err := VerifyPassword(bad, "x")
		require.ErrorIs(t, err, ErrBadHash, bad)
	}
	_, err = HashPassword("")
	require.Error(t, err)
	_, err = HashPassword(strings.Repeat("x", MaxPasswordLen+1))
	require.Error(t, err)
}

func TestAccessTokens(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := func() time.Time { return now }
	tk := NewTokens("jwt-secret-0123456789", "refresh-secret-0123456789", clock)
	id := Identity{UserID: "u1", Email: "a@b.c", IsAdmin: true, Groups: []string{"ops"}}
	s, exp, err := tk.Access(id)
	require.NoError(t, err)
	require.Equal(t, now.Add(AccessTTL), exp)

	got, err := tk.ParseAccess(s)
	require.NoError(t, err)
	require.Equal(t, Identity{UserID: "u1", Email: "a@b.c", IsAdmin: true, Groups: []string{"ops"}, Method: MethodJWT}, got)

	// Expired: a clear error, different from a forged token.
	later := NewTokens("jwt-secret-0123456789", "x", func() time.Time { return now.Add(AccessTTL + time.Minute) })
	_, err = later.ParseAccess(s)
	require.ErrorIs(t, err, ErrTokenExpired)

	other := NewTokens("another-secret-012345", "x", clock)
	_, err = other.ParseAccess(s)
	require.ErrorIs(t, err, ErrTokenInvalid)

	// alg=none and a token with another algorithm are refused.
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: "u1", Issuer: issuer, ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour))}}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	require.NoError(t, err)
	_, err = tk.ParseAccess(none)
	require.ErrorIs(t, err, ErrTokenInvalid)
	hs512, err := jwt.NewWithClaims(jwt.SigningMethodHS512, Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: "u1", Issuer: issuer, ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour))}}).SignedString([]byte("jwt-secret-0123456789"))
	require.NoError(t, err)
	_, err = tk.ParseAccess(hs512)
	require.ErrorIs(t, err, ErrTokenInvalid)
	// No expiry: refused.
	noExp, err := jwt.NewWithClaims(jwt.SigningMethodHS256, Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: "u1", Issuer: issuer}}).SignedString([]byte("jwt-secret-0123456789"))
	require.NoError(t, err)
	_, err = tk.ParseAccess(noExp)
	require.ErrorIs(t, err, ErrTokenInvalid)
	_, err = tk.ParseAccess("garbage")
	require.ErrorIs(t, err, ErrTokenInvalid)
}

func TestRefreshAndAPIKeys(t *testing.T) {
	t.Parallel()
	tk := NewTokens("jwt-secret-0123456789", "refresh-secret-0123456789", nil)
	r1, h1, err := tk.NewRefresh()
	require.NoError(t, err)
	r2, h2, err := tk.NewRefresh()
	require.NoError(t, err)
	require.NotEqual(t, r1, r2)
	require.NotEqual(t, h1, h2)
	require.Equal(t, h1, tk.RefreshHash(r1))
	require.NotContains(t, h1, r1)
	require.NotEqual(t, h1, NewTokens("j", "another-refresh-secret", nil).RefreshHash(r1), "the hash is keyed")

	key, hash, prefix, err := NewAPIKey()
	require.NoError(t, err)
	require.Len(t, key, 37)
	require.True(t, IsAPIKey(key))
	require.NoError(t, ValidAPIKeyFormat(key))
	require.Equal(t, key[:8], prefix)
	require.Equal(t, APIKeyHash(key), hash)
	require.Len(t, hash, 64)
	for _, bad := range []string{"strm_", "strm_zz" + strings.Repeat("0", 30), "strm_" + strings.Repeat("0", 31), "strm_" + strings.Repeat("0", 33)} {
		require.Error(t, ValidAPIKeyFormat(bad), bad)
	}
}

func TestEqual(t *testing.T) {
	t.Parallel()
	require.True(t, Equal("abc", "abc"))
	require.False(t, Equal("abc", "abd"))
	require.False(t, Equal("abc", "abcd"))
	require.False(t, Equal("", "a"))
	require.True(t, Equal("", ""))
}

func TestACL(t *testing.T) {
	t.Parallel()
	var cfg ACLConfig
	// The "environment-based access" example of the upstream's
	// authorization page, verbatim in structure.
	require.NoError(t, yaml.Unmarshal([]byte(`
default: deny
rules:
  - workspace: "dev"
    tasks: ["*"]
    action: run
    groups: [developers]
  - workspace: "staging"
    tasks: ["*"]
    action: run
    groups: [developers, qa]
  - workspace: "production"
    tasks: ["deploy/*"]
    action: run
    groups: [devops]
  - workspace: "production"
    tasks: ["*"]
    action: view
    groups: [developers, qa]
  - workspace: "production"
    tasks: ["reports/daily-summary"]
    action: run
    users: [Contractor@Ext.com]
  - workspace: "*"
    tasks: ["secret/*"]
    action: deny
    groups: [qa]
`), &cfg))
	acl, err := NewACL(&cfg)
	require.NoError(t, err)
	require.True(t, acl.Enabled())

	dev := Identity{Email: "d@x", Groups: []string{"developers"}}
	qa := Identity{Email: "q@x", Groups: []string{"qa"}}
	ops := Identity{Email: "o@x", Groups: []string{"devops"}}
	devops := Identity{Email: "b@x", Groups: []string{"developers", "devops"}}
	contractor := Identity{Email: "contractor@ext.com"}
	nobody := Identity{Email: "n@x"}
	admin := Identity{Email: "a@x", IsAdmin: true}
	for _, c := range []struct {
		who      Identity
		ws, task string
		want     Permission
	}{
		{dev, "dev", "anything", Run},
		{dev, "dev", "deep/folder/task", Run},
		{dev, "production", "deploy/api", View},
		{ops, "production", "deploy/api", Run},
		{ops, "production", "deploy", Deny}, // "deploy/*" needs the folder
		{ops, "production", "reports/x", Deny},
		{devops, "production", "deploy/api", Run}, // highest wins: run > view
		{devops, "production", "other", View},
		{qa, "staging", "t", Run},
		{qa, "production", "secret/x", View}, // view (production *) beats deny (secret/*)
		{qa, "dev", "secret/x", Deny},        // a matching deny rule
		{contractor, "production", "reports/daily-summary", Run},
		{contractor, "production", "reports/weekly", Deny},
		{nobody, "dev", "t", Deny}, // default
		{admin, "production", "anything", Run},
		{Identity{Method: MethodNone}, "production", "x", Run},
	} {
		require.Equal(t, c.want, acl.Check(c.who, c.ws, c.task), "%s on %s/%s", c.who.Email, c.ws, c.task)
	}

	view, err := NewACL(&ACLConfig{Default: "view"})
	require.NoError(t, err)
	require.Equal(t, View, view.Check(nobody, "any", "t"))

	var none *ACL
	require.False(t, none.Enabled())
	require.Equal(t, Run, none.Check(nobody, "any", "t"), "no acl section: everyone runs")

	_, err = NewACL(&ACLConfig{Default: "maybe", Rules: []ACLRule{{Action: "write"}, {Workspace: "*", Tasks: []string{"*"}, Action: "run"}}})
	require.Error(t, err)
	for _, want := range []string{"acl.default", "acl.rules[0].action", "acl.rules[0].workspace", "acl.rules[0].tasks", "acl.rules[1]: names no groups"} {
		require.Contains(t, err.Error(), want)
	}
}

func TestWildcard(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		p, s string
		want bool
	}{
		{"*", "", true}, {"*", "a/b", true}, {"a", "a", true}, {"a", "ab", false},
		{"deploy/*", "deploy/x", true}, {"deploy/*", "deploy", false}, {"deploy/*", "deploy/x/y", true},
		{"*-prod", "api-prod", true}, {"*-prod", "api-prod2", false}, {"a*b*c", "abc", true},
		{"a*b*c", "aXbYc", true}, {"a*b*c", "acb", false}, {"*b*b", "xb", false}, {"*b*b", "bb", true},
	} {
		require.Equal(t, c.want, wildcardMatch(c.p, c.s), "%q ~ %q", c.p, c.s)
	}
}

func TestLimiter(t *testing.T) {
	t.Parallel()
	now := time.Unix(1000, 0)
	l := NewLimiter(3, 10*time.Second, 2, func() time.Time { return now })
	for range 3 {
		require.True(t, l.Allow("a"))
	}
	require.False(t, l.Allow("a"))
	require.Equal(t, 10*time.Second, l.RetryAfter("a"))
	require.True(t, l.Allow("b"), "keys are independent")
	require.False(t, l.Allow("c"), "table full of live buckets: a new key is refused, not evicting a limited one")
	now = now.Add(10 * time.Second)
	require.True(t, l.Allow("a"), "one attempt refilled")
	require.False(t, l.Allow("a"))
	now = now.Add(time.Minute)
	require.True(t, l.Allow("c"), "idle, refilled buckets are swept to make room")
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	// The upstream's example section, unchanged, validates.
	var c Config
	require.NoError(t, yaml.Unmarshal([]byte(`
jwt_secret: "your-jwt-secret"
refresh_secret: "your-refresh-secret"
base_url: "https://stroem.company.com"
providers:
  internal:
    provider_type: internal
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
`), &c))
	require.NoError(t, c.Validate())
	require.True(t, c.HasInternal())
	require.True(t, c.SecureCookies())
	require.Len(t, c.Warnings(), 1, "the example's 15-character jwt_secret draws a warning, not an error")

	bad := Config{JWTSecret: "short", Providers: map[string]ProviderConfig{
		"g":   {ProviderType: "oidc", IssuerURL: "ftp://x"},
		"x y": {ProviderType: "saml"},
	}, InitialUser: &InitialUser{Email: "nope"}}
	err := bad.Validate()
	require.Error(t, err)
	for _, want := range []string{"auth.refresh_secret: must be set", "auth.providers.g.issuer_url", "auth.providers.g.client_id",
		"auth.providers.g.client_secret", "auth.providers.x y: provider id", `auth.providers.x y.provider_type: "saml"`, "auth.base_url: must be set",
		"auth.initial_user.email", "auth.initial_user.password", "auth.initial_user: needs the internal provider"} {
		require.Contains(t, err.Error(), want)
	}
	require.NotContains(t, err.Error(), "short\"", "a secret's value is never echoed")
}

func TestIdentityActor(t *testing.T) {
	t.Parallel()
	require.Equal(t, "a@b.c", Identity{Email: "a@b.c", Method: MethodJWT}.Actor())
	require.Equal(t, "a@b.c (api key strm_a1b)", Identity{Email: "a@b.c", Method: MethodAPIKey, APIKeyPrefix: "strm_a1b"}.Actor())
	require.Equal(t, "", Identity{Method: MethodNone}.Actor())
}
