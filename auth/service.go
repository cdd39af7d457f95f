package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"time"

	"github.com/google/uuid"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
)

// Store is the storage the auth service needs: the store contract's
// UserStore, which the PostgreSQL and SQLite stores implement (and
// persistence/storetest specifies). Missing rows are stroem.ErrNotFound, a
// duplicate email or key prefix stroem.ErrConflict.
type Store = persistence.UserStore

// Session is what a login or a refresh hands out.
type Session struct {
	AccessToken     string      `json:"access_token"`
	RefreshToken    string      `json:"refresh_token"`
	AccessExpiresAt time.Time   `json:"-"`
	User            stroem.User `json:"-"`
}

// Options tune a Service; zero fields take defaults.
type Options struct {
	// Now is the clock (tests).
	Now func() time.Time
	// LoginsPerIP and LoginsPerAccount are the burst sizes of the login
	// rate limits (default 20 and 10); a new attempt is allowed every
	// LoginRefill (default 30s) after a burst.
	LoginsPerIP      int
	LoginsPerAccount int
	LoginRefill      time.Duration
	// HTTPClient, when set, is what OIDC discovery and code exchange use.
	HTTPClient HTTPDoer
}

// Service implements authentication and user management.
type Service struct {
	cfg    Config
	acl    *ACL
	store  Store
	tokens *Tokens
	log    *slog.Logger
	now    func() time.Time

	ipLimit      *Limiter
	accountLimit *Limiter
	refreshLimit *Limiter
	oidc         map[string]*oidcProvider
}

// New returns the service for a validated cfg.
func New(cfg Config, acl *ACL, store Store, log *slog.Logger, opts Options) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.LoginsPerIP <= 0 {
		opts.LoginsPerIP = 20
	}
	if opts.LoginsPerAccount <= 0 {
		opts.LoginsPerAccount = 10
	}
	if opts.LoginRefill <= 0 {
		opts.LoginRefill = 30 * time.Second
	}
	s := &Service{
		cfg: cfg, acl: acl, store: store, log: log, now: opts.Now,
		tokens:       NewTokens(cfg.JWTSecret, cfg.RefreshSecret, opts.Now),
		ipLimit:      NewLimiter(opts.LoginsPerIP, opts.LoginRefill, 100_000, opts.Now),
		accountLimit: NewLimiter(opts.LoginsPerAccount, opts.LoginRefill, 100_000, opts.Now),
		// Refresh tokens are 256 random bits, so guessing is hopeless; this
		// only bounds the database work one address can cause.
		refreshLimit: NewLimiter(60, time.Second, 100_000, opts.Now),
		oidc:         map[string]*oidcProvider{},
	}
	for id, p := range cfg.Providers {
		if p.ProviderType == ProviderOIDC {
			s.oidc[id] = newOIDCProvider(id, p, cfg.BaseURL, opts.HTTPClient)
		}
	}
	_ = dummyHash() // before the first login, which must not pay for it
	return s, nil
}

// Config returns the configuration the service runs with.
func (s *Service) Config() Config { return s.cfg }

// ACL returns the compiled ACL (nil when none is configured).
func (s *Service) ACL() *ACL { return s.acl }

// Tokens returns the token codec.
func (s *Service) Tokens() *Tokens { return s.tokens }

// Seed creates auth.initial_user when no user has its email, and makes
// that user an admin either way (the upstream's startup promotion). The
// password of an existing user is left alone.
func (s *Service) Seed(ctx context.Context) error {
	iu := s.cfg.InitialUser
	if iu == nil {
		return nil
	}
	email := NormalizeEmail(iu.Email)
	u, err := s.store.UserGetByEmail(ctx, email)
	switch {
	case errors.Is(err, stroem.ErrNotFound):
		hash, err := HashPassword(iu.Password)
		if err != nil {
			return fmt.Errorf("auth.initial_user.password: %w", err)
		}
		u = stroem.User{ID: uuid.NewString(), Email: email, PasswordHash: hash, IsAdmin: true, CreatedAt: s.now().UTC()}
		if iu.Name != "" {
			u.Name = &iu.Name
		}
		if err := s.store.UserInsert(ctx, u); err != nil && !errors.Is(err, stroem.ErrConflict) {
			return fmt.Errorf("create initial user: %w", err)
		}
		s.log.Info("created initial user", "email", email)
		return nil
	case err != nil:
		return fmt.Errorf("look up initial user: %w", err)
	}
	if !u.IsAdmin {
		if err := s.store.UserSetAdmin(ctx, u.ID, true); err != nil {
			return fmt.Errorf("promote initial user: %w", err)
		}
	}
	return nil
}

// Errors with a fixed message: one answer for a wrong email and a wrong
// password, so a login does not tell which accounts exist.
var (
	errBadLogin   = stroem.Errorf(stroem.CodeUnauthorized, "invalid email or password")
	errBadRefresh = stroem.Errorf(stroem.CodeUnauthorized, "invalid or expired refresh token; log in again")
)

// RateLimitError is a refused attempt; RetryAfter says when to try again.
type RateLimitError struct{ RetryAfter time.Duration }

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("too many login attempts; try again in %s", e.RetryAfter.Round(time.Second))
}

// Is makes errors.Is(err, stroem.ErrRateLimited) true.
func (e *RateLimitError) Is(target error) bool { return target == stroem.ErrRateLimited }

// limit applies the per-IP and per-account login limits.
func (s *Service) limit(ip, account string) error {
	okIP := s.ipLimit.Allow(ip)
	okAcct := s.accountLimit.Allow(account)
	if okIP && okAcct {
		return nil
	}
	wait := max(s.ipLimit.RetryAfter(ip), s.accountLimit.RetryAfter(account))
	wait = max(wait, time.Second)
	return &stroem.Error{Code: stroem.CodeRateLimited, Message: (&RateLimitError{RetryAfter: wait}).Error(), Err: &RateLimitError{RetryAfter: wait}}
}

// Login checks an email and password (internal provider) and opens a
// session. ip is the client's address, for the rate limit.
func (s *Service) Login(ctx context.Context, email, password, ip string) (Session, error) {
	if !s.cfg.HasInternal() {
		return Session{}, stroem.Errorf(stroem.CodeNotFound, "password login is not enabled on this server")
	}
	email = NormalizeEmail(email)
	if email == "" || password == "" {
		return Session{}, stroem.Invalid("email and password are required")
	}
	if err := s.limit(ip, email); err != nil {
		s.log.Warn("login rate limited", "email", email, "remote", ip)
		return Session{}, err
	}
	u, err := s.store.UserGetByEmail(ctx, email)
	if err != nil && !errors.Is(err, stroem.ErrNotFound) {
		return Session{}, err
	}
	hash := u.PasswordHash
	if hash == "" {
		hash = dummyHash() // same work for unknown users and OIDC-only users
	}
	ok, verr := VerifyPassword(hash, password)
	if verr != nil {
		s.log.Error("stored password hash unreadable", "user_id", u.ID)
	}
	if err != nil || u.PasswordHash == "" || !ok {
		s.log.Warn("login failed", "email", email, "remote", ip)
		return Session{}, errBadLogin
	}
	if err := s.store.UserLoggedIn(ctx, u.ID, s.now().UTC()); err != nil {
		return Session{}, err
	}
	return s.open(ctx, u, "")
}

// open issues an access token and a refresh token for u; family names the
// session (a new one when empty).
func (s *Service) open(ctx context.Context, u stroem.User, family string) (Session, error) {
	access, exp, err := s.tokens.Access(identityOf(u, MethodJWT))
	if err != nil {
		return Session{}, fmt.Errorf("sign access token: %w", err)
	}
	refresh, hash, err := s.tokens.NewRefresh()
	if err != nil {
		return Session{}, err
	}
	if family == "" {
		family = uuid.NewString()
		now := s.now().UTC()
		if err := s.store.RefreshTokenInsert(ctx, stroem.RefreshToken{Hash: hash, UserID: u.ID, Family: family, CreatedAt: now, ExpiresAt: now.Add(RefreshTTL)}); err != nil {
			return Session{}, fmt.Errorf("store refresh token: %w", err)
		}
	}
	return Session{AccessToken: access, RefreshToken: refresh, AccessExpiresAt: exp, User: u}, nil
}

// Refresh rotates a refresh token: the old one is revoked and a new pair
// is returned. Presenting a token that was already rotated revokes the
// whole session (someone else holds a copy).
func (s *Service) Refresh(ctx context.Context, token, ip string) (Session, error) {
	if token == "" {
		return Session{}, stroem.Invalid("refresh_token is required")
	}
	if !s.refreshLimit.Allow(ip) {
		wait := max(s.refreshLimit.RetryAfter(ip), time.Second)
		return Session{}, &stroem.Error{Code: stroem.CodeRateLimited, Message: fmt.Sprintf("too many refresh attempts; try again in %s", wait.Round(time.Second)),
			Err: &RateLimitError{RetryAfter: wait}}
	}
	now := s.now().UTC()
	old, err := s.store.RefreshTokenGet(ctx, s.tokens.RefreshHash(token))
	switch {
	case errors.Is(err, stroem.ErrNotFound):
		s.log.Warn("refresh with unknown token", "remote", ip)
		return Session{}, errBadRefresh
	case err != nil:
		return Session{}, err
	}
	if old.RevokedAt != nil {
		return Session{}, s.reused(ctx, old, ip)
	}
	if !now.Before(old.ExpiresAt) {
		return Session{}, errBadRefresh
	}
	u, err := s.store.UserGet(ctx, old.UserID)
	if err != nil {
		if errors.Is(err, stroem.ErrNotFound) {
			return Session{}, errBadRefresh
		}
		return Session{}, err
	}
	sess, err := s.open(ctx, u, old.Family)
	if err != nil {
		return Session{}, err
	}
	next := stroem.RefreshToken{Hash: s.tokens.RefreshHash(sess.RefreshToken), UserID: u.ID, Family: old.Family, CreatedAt: now, ExpiresAt: now.Add(RefreshTTL)}
	if err := s.store.RefreshTokenRotate(ctx, old.Hash, next, now); err != nil {
		if errors.Is(err, stroem.ErrConflict) {
			return Session{}, s.reused(ctx, old, ip)
		}
		return Session{}, err
	}
	return sess, nil
}

func (s *Service) reused(ctx context.Context, old stroem.RefreshToken, ip string) error {
	s.log.Warn("rotated refresh token presented again; revoking its session", "user_id", old.UserID, "remote", ip)
	if err := s.store.RefreshTokenRevokeFamily(ctx, old.Family, s.now().UTC()); err != nil {
		return err
	}
	return errBadRefresh
}

// Logout revokes the session the refresh token belongs to. An unknown
// token is not an error (the session is gone either way).
func (s *Service) Logout(ctx context.Context, token string) error {
	if token == "" {
		return stroem.Invalid("refresh_token is required")
	}
	old, err := s.store.RefreshTokenGet(ctx, s.tokens.RefreshHash(token))
	if errors.Is(err, stroem.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return s.store.RefreshTokenRevokeFamily(ctx, old.Family, s.now().UTC())
}

// Authenticate turns a bearer token (an access JWT or an API key) into an
// identity. Errors are CodeUnauthorized and never contain the token.
func (s *Service) Authenticate(ctx context.Context, token, method string) (Identity, error) {
	if IsAPIKey(token) {
		if err := ValidAPIKeyFormat(token); err != nil {
			return Identity{}, stroem.Errorf(stroem.CodeUnauthorized, "%v", err)
		}
		k, err := s.store.APIKeyGet(ctx, APIKeyHash(token))
		switch {
		case errors.Is(err, stroem.ErrNotFound):
			return Identity{}, stroem.Errorf(stroem.CodeUnauthorized, "unknown or revoked API key")
		case err != nil:
			return Identity{}, err
		}
		now := s.now()
		if !Equal(k.Hash, APIKeyHash(token)) {
			return Identity{}, stroem.Errorf(stroem.CodeUnauthorized, "unknown or revoked API key")
		}
		if k.ExpiresAt != nil && !now.Before(*k.ExpiresAt) {
			return Identity{}, stroem.Errorf(stroem.CodeUnauthorized, "API key %s expired at %s; create a new one", k.Prefix, k.ExpiresAt.UTC().Format(time.RFC3339))
		}
		u, err := s.store.UserGet(ctx, k.UserID)
		switch {
		case errors.Is(err, stroem.ErrNotFound):
			return Identity{}, stroem.Errorf(stroem.CodeUnauthorized, "unknown or revoked API key")
		case err != nil:
			return Identity{}, err
		}
		if k.LastUsedAt == nil || now.Sub(*k.LastUsedAt) > time.Minute {
			if err := s.store.APIKeyUsed(ctx, k.Hash, now.UTC()); err != nil {
				s.log.Warn("record API key use", "prefix", k.Prefix, "err", err)
			}
		}
		id := identityOf(u, MethodAPIKey)
		id.APIKeyPrefix = k.Prefix
		return id, nil
	}
	id, err := s.tokens.ParseAccess(token)
	if err != nil {
		return Identity{}, stroem.Errorf(stroem.CodeUnauthorized, "%v", err)
	}
	id.Method = method
	return id, nil
}

func identityOf(u stroem.User, method string) Identity {
	return Identity{UserID: u.ID, Email: u.Email, IsAdmin: u.IsAdmin, Groups: u.Groups, Method: method}
}

// Me returns the signed-in user as stored now.
func (s *Service) Me(ctx context.Context, id Identity) (stroem.User, error) {
	u, err := s.store.UserGet(ctx, id.UserID)
	if errors.Is(err, stroem.ErrNotFound) {
		return stroem.User{}, stroem.Errorf(stroem.CodeUnauthorized, "the signed-in user no longer exists")
	}
	return u, err
}

// MaxAPIKeyDays bounds expires_in_days (100 years).
const MaxAPIKeyDays = 36500

// APIKeyCreate makes a key for the signed-in user. Keys can only be made
// with a session (not with another key), as upstream.
func (s *Service) APIKeyCreate(ctx context.Context, id Identity, name string, expiresInDays *int) (string, stroem.APIKey, error) {
	if id.Method == MethodAPIKey {
		return "", stroem.APIKey{}, stroem.Errorf(stroem.CodeForbidden, "API keys cannot create API keys; log in with `stroem login` (a password session) to create one")
	}
	var problems []string
	if name == "" {
		problems = append(problems, "name: must not be empty")
	} else if len(name) > 200 {
		problems = append(problems, "name: longer than 200 characters")
	}
	if expiresInDays != nil && (*expiresInDays < 1 || *expiresInDays > MaxAPIKeyDays) {
		problems = append(problems, fmt.Sprintf("expires_in_days: want 1 to %d (or null for no expiry), got %d", MaxAPIKeyDays, *expiresInDays))
	}
	if len(problems) > 0 {
		return "", stroem.APIKey{}, stroem.Invalid("invalid API key request: "+problems[0], problems...)
	}
	now := s.now().UTC().Truncate(time.Second)
	for range 5 { // a prefix clash with one of the user's keys: draw again
		key, hash, prefix, err := NewAPIKey()
		if err != nil {
			return "", stroem.APIKey{}, err
		}
		k := stroem.APIKey{Hash: hash, Prefix: prefix, UserID: id.UserID, Name: name, CreatedAt: now}
		if expiresInDays != nil {
			e := now.Add(time.Duration(*expiresInDays) * 24 * time.Hour)
			k.ExpiresAt = &e
		}
		err = s.store.APIKeyInsert(ctx, k)
		if errors.Is(err, stroem.ErrConflict) {
			continue
		}
		if err != nil {
			return "", stroem.APIKey{}, err
		}
		s.log.Info("API key created", "user_id", id.UserID, "prefix", prefix)
		return key, k, nil
	}
	return "", stroem.APIKey{}, stroem.Errorf(stroem.CodeConflict, "could not pick an unused key prefix; revoke some keys")
}

// APIKeyList lists the signed-in user's keys.
func (s *Service) APIKeyList(ctx context.Context, id Identity) ([]stroem.APIKey, error) {
	ks, err := s.store.APIKeyList(ctx, id.UserID)
	if ks == nil {
		ks = []stroem.APIKey{}
	}
	return ks, err
}

// APIKeyRevoke deletes one of the signed-in user's keys by prefix.
func (s *Service) APIKeyRevoke(ctx context.Context, id Identity, prefix string) error {
	err := s.store.APIKeyDelete(ctx, id.UserID, prefix)
	if errors.Is(err, stroem.ErrNotFound) {
		return stroem.Errorf(stroem.CodeNotFound, "API key %q not found", prefix)
	}
	if err == nil {
		s.log.Info("API key revoked", "user_id", id.UserID, "prefix", prefix)
	}
	return err
}

// UserList is a page of users, for admins.
func (s *Service) UserList(ctx context.Context, limit, offset int) ([]stroem.User, int, error) {
	us, total, err := s.store.UserList(ctx, limit, offset)
	if us == nil {
		us = []stroem.User{}
	}
	return us, total, err
}

// UserGet returns one user, for admins.
func (s *Service) UserGet(ctx context.Context, id string) (stroem.User, error) {
	if _, err := uuid.Parse(id); err != nil {
		return stroem.User{}, stroem.Errorf(stroem.CodeNotFound, "user %q not found", id)
	}
	u, err := s.store.UserGet(ctx, id)
	if errors.Is(err, stroem.ErrNotFound) {
		return u, stroem.Errorf(stroem.CodeNotFound, "user %q not found", id)
	}
	return u, err
}

// UserSetAdmin sets a user's admin flag; admins cannot revoke their own.
func (s *Service) UserSetAdmin(ctx context.Context, by Identity, id string, admin bool) (stroem.User, error) {
	if id == by.UserID && !admin {
		return stroem.User{}, stroem.Invalid("you cannot revoke your own admin status")
	}
	if _, err := s.UserGet(ctx, id); err != nil {
		return stroem.User{}, err
	}
	if err := s.store.UserSetAdmin(ctx, id, admin); err != nil {
		return stroem.User{}, err
	}
	s.log.Info("admin flag changed", "user_id", id, "is_admin", admin, "by", by.Email)
	return s.UserGet(ctx, id)
}

// MaxUserGroups bounds a user's groups: every request of theirs matches
// them against the ACL rules, and every user list shows them.
const MaxUserGroups = 256

// UserSetGroups replaces a user's groups.
func (s *Service) UserSetGroups(ctx context.Context, by Identity, id string, groups []string) (stroem.User, error) {
	if len(groups) > MaxUserGroups {
		return stroem.User{}, stroem.Errorf(stroem.CodeInvalid, "a user has at most %d groups, got %d", MaxUserGroups, len(groups))
	}
	var problems []string
	for _, g := range groups {
		if err := ValidGroupName(g); err != nil {
			problems = append(problems, err.Error())
		}
	}
	if len(problems) > 0 {
		return stroem.User{}, stroem.Invalid(problems[0], problems...)
	}
	if _, err := s.UserGet(ctx, id); err != nil {
		return stroem.User{}, err
	}
	groups = dedupSorted(groups)
	if err := s.store.UserSetGroups(ctx, id, groups); err != nil {
		return stroem.User{}, err
	}
	s.log.Info("groups changed", "user_id", id, "groups", groups, "by", by.Email)
	return s.UserGet(ctx, id)
}

// GroupList returns every group name in use.
func (s *Service) GroupList(ctx context.Context) ([]string, error) {
	gs, err := s.store.GroupList(ctx)
	if gs == nil {
		gs = []string{}
	}
	return gs, err
}

func dedupSorted(in []string) []string {
	out := slices.Clone(in)
	sort.Strings(out)
	return slices.Compact(out)
}
