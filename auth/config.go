package auth

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"
)

// Provider types of the `providers` map.
const (
	ProviderInternal = "internal"
	ProviderOIDC     = "oidc"
)

// MinSecretLen is the shortest jwt_secret / refresh_secret that does not
// draw a startup warning: an HMAC key shorter than this may be guessed
// offline from one token. Shorter ones are accepted, so the upstream's
// example config starts unchanged.
const MinSecretLen = 16

// Config is the server's `auth:` section, in the upstream's format.
type Config struct {
	// JWTSecret signs access tokens (HS256). Every server of a cluster
	// needs the same value.
	JWTSecret string `yaml:"jwt_secret"`
	// RefreshSecret keys the hash under which refresh tokens are stored.
	RefreshSecret string `yaml:"refresh_secret"`
	// BaseURL is the server's public URL (OIDC redirect URIs; whether
	// cookies are Secure).
	BaseURL     string                    `yaml:"base_url"`
	Providers   map[string]ProviderConfig `yaml:"providers"`
	InitialUser *InitialUser              `yaml:"initial_user"`
}

// ProviderConfig is one entry of `providers`.
type ProviderConfig struct {
	ProviderType string `yaml:"provider_type"`
	DisplayName  string `yaml:"display_name"`
	IssuerURL    string `yaml:"issuer_url"`
	ClientID     string `yaml:"client_id"`
	ClientSecret string `yaml:"client_secret"`
	// DefaultGroups are given to a user created by their first sign-in
	// through this provider (never re-applied later).
	DefaultGroups []string `yaml:"default_groups"`
	// GroupsClaim names the ID-token claim holding the user's groups
	// (default "groups"); its values replace the user's groups at every
	// sign-in when the claim is present. Set it to "-" to ignore claims.
	GroupsClaim string `yaml:"groups_claim"`
	// Scopes requested besides openid (default: email profile, plus
	// groups when GroupsClaim is "groups").
	Scopes []string `yaml:"scopes"`
}

// InitialUser is seeded at startup when no user with that email exists,
// and is made an admin.
type InitialUser struct {
	Email    string `yaml:"email"`
	Password string `yaml:"password"`
	Name     string `yaml:"name"`
}

var providerIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Validate reports every problem of the section at once, naming keys as
// they appear in the config file ("auth.providers.google.client_id"). It
// never includes a secret's value.
func (c *Config) Validate() error {
	var problems []string
	add := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	if c.JWTSecret == "" {
		add("auth.jwt_secret: must be set (a random string of at least %d characters, e.g. from `openssl rand -hex 32`)", MinSecretLen)
	}
	if c.RefreshSecret == "" {
		add("auth.refresh_secret: must be set (a random string of at least %d characters, e.g. from `openssl rand -hex 32`)", MinSecretLen)
	}
	if len(c.Providers) == 0 {
		add("auth.providers: at least one provider is needed (internal: {provider_type: internal})")
	}
	needBase := false
	ids := make([]string, 0, len(c.Providers))
	for id := range c.Providers {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		p := c.Providers[id]
		key := "auth.providers." + id
		if !providerIDPattern.MatchString(id) {
			add("%s: provider id must be 1-64 letters, digits, '_' or '-'", key)
		}
		switch p.ProviderType {
		case ProviderInternal:
		case ProviderOIDC:
			needBase = true
			if p.IssuerURL == "" {
				add("%s.issuer_url: must be set for an oidc provider", key)
			} else if u, err := url.Parse(p.IssuerURL); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
				add("%s.issuer_url: %q is not an http(s) URL", key, p.IssuerURL)
			}
			if p.ClientID == "" {
				add("%s.client_id: must be set for an oidc provider", key)
			}
			if p.ClientSecret == "" {
				add("%s.client_secret: must be set for an oidc provider", key)
			}
			for _, g := range p.DefaultGroups {
				if err := ValidGroupName(g); err != nil {
					add("%s.default_groups: %v", key, err)
				}
			}
		case "":
			add("%s.provider_type: must be set (internal or oidc)", key)
		default:
			add("%s.provider_type: %q is not supported (internal or oidc)", key, p.ProviderType)
		}
	}
	if c.BaseURL != "" {
		if u, err := url.Parse(c.BaseURL); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
			add("auth.base_url: %q is not an http(s) URL", c.BaseURL)
		}
	} else if needBase {
		add("auth.base_url: must be set when an oidc provider is configured (the redirect URI is built from it)")
	}
	if iu := c.InitialUser; iu != nil {
		if !validEmail(iu.Email) {
			add("auth.initial_user.email: %q is not an email address", iu.Email)
		}
		if iu.Password == "" {
			add("auth.initial_user.password: must be set")
		}
		if !c.HasInternal() {
			add("auth.initial_user: needs the internal provider (the user signs in with a password)")
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// Warnings lists weak settings that do not stop the server (logged at
// startup), without any secret's value.
func (c *Config) Warnings() []string {
	var out []string
	if c.JWTSecret != "" && len(c.JWTSecret) < MinSecretLen {
		out = append(out, fmt.Sprintf("auth.jwt_secret is only %d characters; use at least %d random ones (openssl rand -hex 32)", len(c.JWTSecret), MinSecretLen))
	}
	if c.RefreshSecret != "" && len(c.RefreshSecret) < MinSecretLen {
		out = append(out, fmt.Sprintf("auth.refresh_secret is only %d characters; use at least %d random ones (openssl rand -hex 32)", len(c.RefreshSecret), MinSecretLen))
	}
	if c.JWTSecret != "" && c.JWTSecret == c.RefreshSecret {
		out = append(out, "auth.jwt_secret and auth.refresh_secret are the same; use two different secrets")
	}
	return out
}

// HasInternal reports whether email/password login is enabled.
func (c Config) HasInternal() bool {
	for _, p := range c.Providers {
		if p.ProviderType == ProviderInternal {
			return true
		}
	}
	return false
}

// SecureCookies reports whether cookies get the Secure attribute: when the
// public URL is https.
func (c Config) SecureCookies() bool {
	return strings.HasPrefix(strings.ToLower(c.BaseURL), "https://")
}

func validEmail(s string) bool {
	at := strings.IndexByte(s, '@')
	return at > 0 && at < len(s)-1 && !strings.ContainsAny(s, " \t\r\n") && len(s) <= 254
}

// NormalizeEmail is the form emails are stored and compared in.
func NormalizeEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

var groupPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ValidGroupName checks a group name: 1-64 letters, digits, '_' or '-'.
func ValidGroupName(g string) error {
	if !groupPattern.MatchString(g) {
		return fmt.Errorf("invalid group name %q: want 1-64 letters, digits, '_' or '-'", g)
	}
	return nil
}
