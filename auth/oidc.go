package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"golang.org/x/oauth2"

	"github.com/stroem/stroem"
)

// HTTPDoer is the HTTP client OIDC discovery and token exchange use.
type HTTPDoer = *http.Client

// FlowTTL bounds how long an OIDC sign-in may take between the redirect to
// the provider and the callback.
const FlowTTL = 10 * time.Minute

// oidcProvider is one configured OIDC provider. Discovery runs on first
// use (and again after a failure), so a provider that is down does not
// keep the server from starting.
type oidcProvider struct {
	id       string
	cfg      ProviderConfig
	redirect string
	client   *http.Client

	mu       sync.Mutex
	provider *oidc.Provider
}

func newOIDCProvider(id string, cfg ProviderConfig, baseURL string, client *http.Client) *oidcProvider {
	if cfg.GroupsClaim == "" {
		cfg.GroupsClaim = "groups"
	}
	if len(cfg.Scopes) == 0 {
		cfg.Scopes = []string{"email", "profile"}
		if cfg.GroupsClaim == "groups" {
			cfg.Scopes = append(cfg.Scopes, "groups")
		}
	}
	if cfg.DisplayName == "" {
		cfg.DisplayName = id
	}
	if client == nil {
		// go-oidc fetches signing keys in the background with this client:
		// bound every call, so a provider that hangs cannot hang sign-ins.
		client = &http.Client{Timeout: 15 * time.Second}
	}
	return &oidcProvider{id: id, cfg: cfg, client: client,
		redirect: strings.TrimRight(baseURL, "/") + "/api/auth/oidc/" + id + "/callback"}
}

func (p *oidcProvider) ctx(ctx context.Context) context.Context {
	ctx = oidc.ClientContext(ctx, p.client)
	return context.WithValue(ctx, oauth2.HTTPClient, p.client)
}

func (p *oidcProvider) discover(ctx context.Context) (*oidc.Provider, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.provider != nil {
		return p.provider, nil
	}
	c, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// Only the discovery request uses c; the provider keeps just the HTTP
	// client for fetching keys later.
	prov, err := oidc.NewProvider(p.ctx(c), p.cfg.IssuerURL)
	if err != nil {
		return nil, stroem.Errorf(stroem.CodeUnavailable, "OIDC provider %q: discovery at %s failed: %v", p.id, p.cfg.IssuerURL, err)
	}
	p.provider = prov
	return prov, nil
}

func (p *oidcProvider) oauth(prov *oidc.Provider) *oauth2.Config {
	return &oauth2.Config{
		ClientID: p.cfg.ClientID, ClientSecret: p.cfg.ClientSecret, Endpoint: prov.Endpoint(),
		RedirectURL: p.redirect, Scopes: append([]string{oidc.ScopeOpenID}, p.cfg.Scopes...),
	}
}

// ProviderInfo is an OIDC provider as /api/config lists it.
type ProviderInfo struct {
	ID          string `json:"id"`
	DisplayName string `json:"display_name"`
}

// OIDCProviders lists the configured OIDC providers, sorted by id.
func (s *Service) OIDCProviders() []ProviderInfo {
	out := []ProviderInfo{}
	for id, p := range s.oidc {
		out = append(out, ProviderInfo{ID: id, DisplayName: p.cfg.DisplayName})
	}
	sortByID(out)
	return out
}

func sortByID(ps []ProviderInfo) {
	for i := 1; i < len(ps); i++ {
		for j := i; j > 0 && ps[j].ID < ps[j-1].ID; j-- {
			ps[j], ps[j-1] = ps[j-1], ps[j]
		}
	}
}

// flowClaims is what the flow cookie carries between the redirect and the
// callback: it binds the callback to the browser that started the sign-in.
type flowClaims struct {
	jwt.RegisteredClaims
	Provider string `json:"prv"`
	State    string `json:"st"`
	Nonce    string `json:"nn"`
	Verifier string `json:"pkce"`
}

// flowKey signs flow cookies; derived from jwt_secret so a flow cookie is
// never a valid access token.
func (s *Service) flowKey() []byte {
	h := sha256.Sum256([]byte("stroem oidc flow\x00" + s.cfg.JWTSecret))
	return h[:]
}

func randomString() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// OIDCStart begins a sign-in with provider: it returns the provider's
// authorization URL (with state, nonce and a PKCE S256 challenge) and the
// signed flow value to keep in a short-lived cookie.
func (s *Service) OIDCStart(ctx context.Context, provider string) (authURL, flow string, err error) {
	p := s.oidc[provider]
	if p == nil {
		return "", "", stroem.Errorf(stroem.CodeNotFound, "unknown OIDC provider %q", provider)
	}
	prov, err := p.discover(ctx)
	if err != nil {
		return "", "", err
	}
	now := s.now()
	fc := flowClaims{
		RegisteredClaims: jwt.RegisteredClaims{Issuer: issuer, Audience: jwt.ClaimStrings{"oidc-flow"},
			IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(FlowTTL))},
		Provider: provider, State: randomString(), Nonce: randomString(), Verifier: oauth2.GenerateVerifier(),
	}
	flow, err = jwt.NewWithClaims(jwt.SigningMethodHS256, fc).SignedString(s.flowKey())
	if err != nil {
		return "", "", err
	}
	authURL = p.oauth(prov).AuthCodeURL(fc.State, oidc.Nonce(fc.Nonce), oauth2.S256ChallengeOption(fc.Verifier))
	return authURL, flow, nil
}

// errFlow is every callback problem the user can only fix by starting over.
func errFlow(format string, a ...any) error {
	return stroem.Errorf(stroem.CodeUnauthorized, "OIDC sign-in failed: "+format+"; start the sign-in again", a...)
}

// OIDCCallback finishes a sign-in: it checks state against the flow
// cookie, exchanges the code (sending the PKCE verifier), verifies the ID
// token (signature, issuer, audience, expiry, nonce), provisions the user
// and opens a session.
func (s *Service) OIDCCallback(ctx context.Context, provider, code, state, flow string) (Session, error) {
	p := s.oidc[provider]
	if p == nil {
		return Session{}, stroem.Errorf(stroem.CodeNotFound, "unknown OIDC provider %q", provider)
	}
	if flow == "" {
		return Session{}, errFlow("no sign-in in progress in this browser (the flow cookie is missing or expired)")
	}
	var fc flowClaims
	_, err := jwt.ParseWithClaims(flow, &fc, func(*jwt.Token) (any, error) { return s.flowKey(), nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}), jwt.WithAudience("oidc-flow"),
		jwt.WithExpirationRequired(), jwt.WithTimeFunc(s.now))
	if err != nil {
		return Session{}, errFlow("the sign-in flow cookie is invalid or expired")
	}
	if fc.Provider != provider {
		return Session{}, errFlow("the callback is for provider %q but the sign-in started with %q", provider, fc.Provider)
	}
	if state == "" || !Equal(state, fc.State) {
		return Session{}, errFlow("state mismatch")
	}
	if code == "" {
		return Session{}, errFlow("the provider sent no authorization code")
	}
	prov, err := p.discover(ctx)
	if err != nil {
		return Session{}, err
	}
	c, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	tok, err := p.oauth(prov).Exchange(p.ctx(c), code, oauth2.VerifierOption(fc.Verifier))
	if err != nil {
		s.log.Warn("OIDC code exchange failed", "provider", provider, "err", err)
		return Session{}, errFlow("the provider refused the authorization code")
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return Session{}, errFlow("the provider returned no ID token")
	}
	idt, err := prov.Verifier(&oidc.Config{ClientID: p.cfg.ClientID, Now: s.now}).Verify(p.ctx(c), raw)
	if err != nil {
		s.log.Warn("OIDC ID token rejected", "provider", provider, "err", err)
		return Session{}, errFlow("the ID token did not verify")
	}
	if idt.Nonce == "" || !Equal(idt.Nonce, fc.Nonce) {
		return Session{}, errFlow("nonce mismatch")
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return Session{}, errFlow("unreadable ID token claims")
	}
	u, err := s.provision(ctx, p, idt.Subject, claims)
	if err != nil {
		return Session{}, err
	}
	if err := s.store.UserLoggedIn(ctx, u.ID, s.now().UTC()); err != nil {
		return Session{}, err
	}
	return s.open(ctx, u, "")
}

// provision finds or creates the user of an OIDC subject (JIT): by the
// provider's link, else by email when the provider says it is verified
// (then linked), else a new user without a password (an admin when it is
// the first user of the server). An email the provider marks unverified
// is refused.
func (s *Service) provision(ctx context.Context, p *oidcProvider, subject string, claims map[string]any) (stroem.User, error) {
	email, _ := claims["email"].(string)
	email = NormalizeEmail(email)
	verified, hasVerified := claims["email_verified"].(bool)
	var groups []string
	groupsSent := false
	if p.cfg.GroupsClaim != "-" {
		if raw, ok := claims[p.cfg.GroupsClaim].([]any); ok {
			groupsSent = true
			for _, g := range raw {
				if gs, ok := g.(string); ok && ValidGroupName(gs) == nil {
					groups = append(groups, gs)
				}
			}
		}
	}
	uid, err := s.store.AuthLinkGet(ctx, p.id, subject)
	var u stroem.User
	switch {
	case err == nil:
		if u, err = s.store.UserGet(ctx, uid); err != nil {
			return stroem.User{}, err
		}
	case !errors.Is(err, stroem.ErrNotFound):
		return stroem.User{}, err
	default:
		if !validEmail(email) {
			return stroem.User{}, errFlow("the provider sent no email address (request the email scope)")
		}
		if hasVerified && !verified {
			return stroem.User{}, errFlow("the provider says the email address %s is not verified", email)
		}
		u, err = s.store.UserGetByEmail(ctx, email)
		switch {
		case err == nil:
			// Linking hands over an existing account: only on the
			// provider's word that the address belongs to this person.
			if !hasVerified || !verified {
				return stroem.User{}, errFlow("an account with the email %s exists, but the provider does not say the address is verified, so it is not linked (ask an admin)", email)
			}
		case errors.Is(err, stroem.ErrNotFound):
			n, err := s.store.UserCount(ctx)
			if err != nil {
				return stroem.User{}, err
			}
			u = stroem.User{ID: uuid.NewString(), Email: email, IsAdmin: n == 0, CreatedAt: s.now().UTC(),
				Groups: dedupSorted(append(append([]string{}, p.cfg.DefaultGroups...), groups...))}
			if name, _ := claims["name"].(string); name != "" {
				u.Name = &name
			}
			if err := s.store.UserInsert(ctx, u); err != nil {
				return stroem.User{}, fmt.Errorf("create user %s: %w", email, err)
			}
			s.log.Info("user provisioned by OIDC", "provider", p.id, "email", email, "is_admin", u.IsAdmin)
		default:
			return stroem.User{}, err
		}
		if err := s.store.AuthLinkInsert(ctx, p.id, subject, u.ID); err != nil {
			return stroem.User{}, err
		}
	}
	if groupsSent {
		want := dedupSorted(append(append([]string{}, p.cfg.DefaultGroups...), groups...))
		if !slicesEqual(want, u.Groups) {
			if err := s.store.UserSetGroups(ctx, u.ID, want); err != nil {
				return stroem.User{}, err
			}
			u.Groups = want
		}
	}
	return s.store.UserGet(ctx, u.ID)
}

func slicesEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
