package auth

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence/sqlite"
	"github.com/stroem/stroem/persistence/sqlite/sqlitetest"
)

// testService is a Service on a fresh embedded store with a settable clock.
type testService struct {
	*Service
	store *sqlite.Store
	now   time.Time
}

func newTestService(t *testing.T, mutate func(*Config)) *testService {
	t.Helper()
	store := sqlitetest.Store(t)
	cfg := Config{JWTSecret: "jwt-secret-0123456789abcdef", RefreshSecret: "refresh-secret-0123456789ab",
		Providers:   map[string]ProviderConfig{"internal": {ProviderType: ProviderInternal}},
		InitialUser: &InitialUser{Email: "Admin@Example.com", Password: "first-password"}}
	if mutate != nil {
		mutate(&cfg)
	}
	ts := &testService{store: store, now: time.Now()}
	var err error
	ts.Service, err = New(cfg, nil, store, nil, Options{Now: func() time.Time { return ts.now }})
	require.NoError(t, err)
	return ts
}

// seededService is a service with its initial admin stored.
func seededService(t *testing.T) (*testService, context.Context) {
	t.Helper()
	ts := newTestService(t, nil)
	ctx := context.Background()
	require.NoError(t, ts.Seed(ctx))
	return ts, ctx
}

func TestSeedInitialUser(t *testing.T) {
	t.Parallel()
	ts, ctx := seededService(t)
	u, err := ts.store.UserGetByEmail(ctx, "admin@example.com")
	require.NoError(t, err, "stored lower-case")
	require.True(t, u.IsAdmin)
	ok, err := VerifyPassword(u.PasswordHash, "first-password")
	require.NoError(t, err)
	require.True(t, ok)

	// A second start does not reset the password, and promotes the user
	// again if someone revoked its admin flag.
	require.NoError(t, ts.store.UserSetAdmin(ctx, u.ID, false))
	require.NoError(t, ts.store.UserSetPassword(ctx, u.ID, "$argon2id$changed"))
	require.NoError(t, ts.Seed(ctx))
	u, err = ts.store.UserGet(ctx, u.ID)
	require.NoError(t, err)
	require.True(t, u.IsAdmin)
	require.Equal(t, "$argon2id$changed", u.PasswordHash)
}

func TestLoginRefreshExpiry(t *testing.T) {
	t.Parallel()
	ts, ctx := seededService(t)

	_, err := ts.Login(ctx, "admin@example.com", "nope", "10.0.0.1")
	require.ErrorIs(t, err, stroem.ErrUnauthorized)
	_, err = ts.Login(ctx, "nobody@example.com", "nope", "10.0.0.1")
	require.ErrorIs(t, err, stroem.ErrUnauthorized)
	require.Equal(t, "invalid email or password", stroem.ErrorMessage(err), "same answer for an unknown account")
	_, err = ts.Login(ctx, "", "", "10.0.0.1")
	require.ErrorIs(t, err, stroem.ErrInvalid)

	sess, err := ts.Login(ctx, "ADMIN@example.com", "first-password", "10.0.0.1")
	require.NoError(t, err)
	id, err := ts.Authenticate(ctx, sess.AccessToken, MethodJWT)
	require.NoError(t, err)
	require.True(t, id.IsAdmin)
	require.Equal(t, "admin@example.com", id.Email)
	u, err := ts.Me(ctx, id)
	require.NoError(t, err)
	require.NotNil(t, u.LastLoginAt)

	// Access tokens expire after 15 minutes; refresh tokens after 30 days.
	ts.now = ts.now.Add(AccessTTL + time.Minute)
	_, err = ts.Authenticate(ctx, sess.AccessToken, MethodJWT)
	require.ErrorIs(t, err, stroem.ErrUnauthorized)
	require.Contains(t, stroem.ErrorMessage(err), "expired")
	next, err := ts.Refresh(ctx, sess.RefreshToken, "10.0.0.1")
	require.NoError(t, err)
	ts.now = ts.now.Add(RefreshTTL + time.Minute)
	_, err = ts.Refresh(ctx, next.RefreshToken, "10.0.0.1")
	require.ErrorIs(t, err, stroem.ErrUnauthorized)
	_, err = ts.Refresh(ctx, "", "10.0.0.1")
	require.ErrorIs(t, err, stroem.ErrInvalid)
}

func TestAPIKeyLifecycle(t *testing.T) {
	t.Parallel()
	ts, ctx := seededService(t)
	sess, err := ts.Login(ctx, "admin@example.com", "first-password", "10.0.0.1")
	require.NoError(t, err)
	owner, err := ts.Authenticate(ctx, sess.AccessToken, MethodJWT)
	require.NoError(t, err)

	for _, bad := range []struct {
		name string
		days int
	}{{"", 0}, {"k", -1}, {"k", MaxAPIKeyDays + 1}} {
		days := &bad.days
		if bad.days == 0 {
			days = nil
		}
		_, _, err := ts.APIKeyCreate(ctx, owner, bad.name, days)
		require.ErrorIs(t, err, stroem.ErrInvalid, bad)
	}
	one := 1
	key, k, err := ts.APIKeyCreate(ctx, owner, "ci", &one)
	require.NoError(t, err)
	require.Equal(t, ts.now.UTC().Truncate(time.Second).Add(24*time.Hour), *k.ExpiresAt)
	id, err := ts.Authenticate(ctx, key, MethodJWT)
	require.NoError(t, err)
	require.Equal(t, MethodAPIKey, id.Method)
	require.Equal(t, k.Prefix, id.APIKeyPrefix)
	_, _, err = ts.APIKeyCreate(ctx, id, "from a key", nil)
	require.ErrorIs(t, err, stroem.ErrForbidden)

	// Admin flag and groups are read at each use of a key.
	require.NoError(t, ts.store.UserSetGroups(ctx, owner.UserID, []string{"ops"}))
	id, err = ts.Authenticate(ctx, key, MethodJWT)
	require.NoError(t, err)
	require.Equal(t, []string{"ops"}, id.Groups)

	ts.now = ts.now.Add(25 * time.Hour)
	_, err = ts.Authenticate(ctx, key, MethodJWT)
	require.ErrorIs(t, err, stroem.ErrUnauthorized)
	require.Contains(t, stroem.ErrorMessage(err), "expired")
	require.NotContains(t, stroem.ErrorMessage(err), key)

	_, err = ts.Authenticate(ctx, "strm_"+uuid.NewString(), MethodJWT)
	require.ErrorIs(t, err, stroem.ErrUnauthorized, "malformed key")
	require.ErrorIs(t, ts.APIKeyRevoke(ctx, owner, "strm_zzz"), stroem.ErrNotFound)
	require.NoError(t, ts.APIKeyRevoke(ctx, owner, k.Prefix))
}

func TestUserAdministration(t *testing.T) {
	t.Parallel()
	ts, ctx := seededService(t)
	admin, err := ts.store.UserGetByEmail(ctx, "admin@example.com")
	require.NoError(t, err)
	by := Identity{UserID: admin.ID, Email: admin.Email, IsAdmin: true}

	_, err = ts.UserSetAdmin(ctx, by, admin.ID, false)
	require.ErrorIs(t, err, stroem.ErrInvalid, "admins cannot revoke their own admin status")
	_, err = ts.UserSetAdmin(ctx, by, uuid.NewString(), true)
	require.ErrorIs(t, err, stroem.ErrNotFound)
	_, err = ts.UserGet(ctx, "not-a-uuid")
	require.ErrorIs(t, err, stroem.ErrNotFound)

	_, err = ts.UserSetGroups(ctx, by, admin.ID, []string{"ok", "not ok", ""})
	require.ErrorIs(t, err, stroem.ErrInvalid)
	require.Len(t, stroem.ErrorDetails(err), 2)
	many := make([]string, MaxUserGroups+1)
	for i := range many {
		many[i] = "g" + strconv.Itoa(i)
	}
	_, err = ts.UserSetGroups(ctx, by, admin.ID, many)
	require.ErrorIs(t, err, stroem.ErrInvalid)
	require.ErrorContains(t, err, "at most 256 groups")
	u, err := ts.UserSetGroups(ctx, by, admin.ID, []string{"b", "a", "b"})
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b"}, u.Groups)
	gs, err := ts.GroupList(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b"}, gs)
	us, total, err := ts.UserList(ctx, 10, 0)
	require.NoError(t, err)
	require.Equal(t, 1, total)
	require.Len(t, us, 1)
}
