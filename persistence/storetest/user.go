package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
	"github.com/stroem/stroem/stroemtest"
)

func newUser(email string, groups ...string) stroem.User {
	return stroem.User{ID: uuid.NewString(), Email: email, PasswordHash: "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		CreatedAt: time.Now().UTC().Truncate(time.Millisecond), Groups: groups}
}

// insertUser inserts a newUser.
func insertUser(t *testing.T, s persistence.Store, email string) stroem.User {
	t.Helper()
	u := newUser(email)
	require.NoError(t, s.UserInsert(context.Background(), u))
	return u
}

func testUsers(t *testing.T, open func(t *testing.T) persistence.Store) {
	t.Run("InsertGetListGroups", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := context.Background()
		n, err := s.UserCount(ctx)
		require.NoError(t, err)
		require.Zero(t, n)

		name := "Alice"
		alice := newUser("alice@example.com", "ops", "dev")
		alice.Name, alice.IsAdmin = &name, true
		require.NoError(t, s.UserInsert(ctx, alice))
		bob := newUser("bob@example.com")
		bob.PasswordHash = ""
		require.NoError(t, s.UserInsert(ctx, bob))

		got, err := s.UserGet(ctx, alice.ID)
		require.NoError(t, err)
		require.Equal(t, alice.ID, got.ID)
		require.Equal(t, "alice@example.com", got.Email)
		require.Equal(t, &name, got.Name)
		require.True(t, got.IsAdmin)
		require.Equal(t, alice.PasswordHash, got.PasswordHash)
		require.Equal(t, []string{"dev", "ops"}, got.Groups, "groups sorted")
		require.Equal(t, []string{"password"}, got.AuthMethods)
		require.WithinDuration(t, alice.CreatedAt, got.CreatedAt, time.Millisecond)
		require.Nil(t, got.LastLoginAt)

		byEmail, err := s.UserGetByEmail(ctx, "bob@example.com")
		require.NoError(t, err)
		require.Equal(t, bob.ID, byEmail.ID)
		require.Empty(t, byEmail.PasswordHash)
		require.Equal(t, []string{}, byEmail.Groups)
		require.Equal(t, []string{}, byEmail.AuthMethods)
		require.Nil(t, byEmail.Name)

		for _, id := range []string{uuid.NewString(), "not-a-uuid"} {
			_, err = s.UserGet(ctx, id)
			require.ErrorIs(t, err, stroem.ErrNotFound, id)
		}
		_, err = s.UserGetByEmail(ctx, "nobody@example.com")
		require.ErrorIs(t, err, stroem.ErrNotFound)

		dup := newUser("alice@example.com")
		require.ErrorIs(t, s.UserInsert(ctx, dup), stroem.ErrConflict, "emails are unique")

		list, total, err := s.UserList(ctx, 1, 0)
		require.NoError(t, err)
		require.Equal(t, 2, total)
		require.Len(t, list, 1)
		require.Equal(t, "alice@example.com", list[0].Email, "ordered by email")
		list, _, err = s.UserList(ctx, 10, 1)
		require.NoError(t, err)
		require.Len(t, list, 1)
		require.Equal(t, "bob@example.com", list[0].Email)

		require.NoError(t, s.UserSetGroups(ctx, bob.ID, []string{"qa", "ops"}))
		require.NoError(t, s.UserSetAdmin(ctx, bob.ID, true))
		require.NoError(t, s.UserSetPassword(ctx, bob.ID, "$argon2id$new"))
		at := time.Now().UTC().Truncate(time.Millisecond)
		require.NoError(t, s.UserLoggedIn(ctx, bob.ID, at))
		got, err = s.UserGet(ctx, bob.ID)
		require.NoError(t, err)
		require.Equal(t, []string{"ops", "qa"}, got.Groups)
		require.True(t, got.IsAdmin)
		require.Equal(t, "$argon2id$new", got.PasswordHash)
		require.NotNil(t, got.LastLoginAt)
		require.WithinDuration(t, at, *got.LastLoginAt, time.Millisecond)

		groups, err := s.GroupList(ctx)
		require.NoError(t, err)
		require.Equal(t, []string{"dev", "ops", "qa"}, groups, "distinct and sorted")

		require.NoError(t, s.UserSetGroups(ctx, bob.ID, nil))
		got, err = s.UserGet(ctx, bob.ID)
		require.NoError(t, err)
		require.Equal(t, []string{}, got.Groups)

		missing := uuid.NewString()
		require.ErrorIs(t, s.UserSetAdmin(ctx, missing, true), stroem.ErrNotFound)
		require.ErrorIs(t, s.UserSetGroups(ctx, missing, []string{"x"}), stroem.ErrNotFound)
		require.ErrorIs(t, s.UserLoggedIn(ctx, "nope", at), stroem.ErrNotFound)
		n, err = s.UserCount(ctx)
		require.NoError(t, err)
		require.Equal(t, 2, n)
	})

	t.Run("AuthLinks", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := context.Background()
		u := insertUser(t, s, "carol@example.com")
		_, err := s.AuthLinkGet(ctx, "google", "sub-1")
		require.ErrorIs(t, err, stroem.ErrNotFound)
		require.NoError(t, s.AuthLinkInsert(ctx, "google", "sub-1", u.ID))
		id, err := s.AuthLinkGet(ctx, "google", "sub-1")
		require.NoError(t, err)
		require.Equal(t, u.ID, id)
		_, err = s.AuthLinkGet(ctx, "okta", "sub-1")
		require.ErrorIs(t, err, stroem.ErrNotFound, "a subject is per provider")
		require.ErrorIs(t, s.AuthLinkInsert(ctx, "google", "sub-1", u.ID), stroem.ErrConflict)
		got, err := s.UserGet(ctx, u.ID)
		require.NoError(t, err)
		require.Equal(t, []string{"password", "google"}, got.AuthMethods)
	})

	t.Run("RefreshTokens", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := context.Background()
		u := insertUser(t, s, "dave@example.com")
		now := time.Now().UTC().Truncate(time.Millisecond)
		family := uuid.NewString()
		first := stroem.RefreshToken{Hash: "h1", UserID: u.ID, Family: family, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		require.NoError(t, s.RefreshTokenInsert(ctx, first))
		got, err := s.RefreshTokenGet(ctx, "h1")
		require.NoError(t, err)
		require.Equal(t, u.ID, got.UserID)
		require.Equal(t, family, got.Family)
		require.WithinDuration(t, first.ExpiresAt, got.ExpiresAt, time.Millisecond)
		require.Nil(t, got.RevokedAt)
		_, err = s.RefreshTokenGet(ctx, "nope")
		require.ErrorIs(t, err, stroem.ErrNotFound)

		second := stroem.RefreshToken{Hash: "h2", UserID: u.ID, Family: family, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		require.NoError(t, s.RefreshTokenRotate(ctx, "h1", second, now))
		got, err = s.RefreshTokenGet(ctx, "h1")
		require.NoError(t, err)
		require.NotNil(t, got.RevokedAt)
		require.Equal(t, "h2", got.ReplacedBy)

		third := stroem.RefreshToken{Hash: "h3", UserID: u.ID, Family: family, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		require.ErrorIs(t, s.RefreshTokenRotate(ctx, "h1", third, now), stroem.ErrConflict, "a spent token cannot be rotated again")
		_, err = s.RefreshTokenGet(ctx, "h3")
		require.ErrorIs(t, err, stroem.ErrNotFound, "nothing stored for a refused rotation")

		other := stroem.RefreshToken{Hash: "o1", UserID: u.ID, Family: uuid.NewString(), CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		require.NoError(t, s.RefreshTokenInsert(ctx, other))
		require.NoError(t, s.RefreshTokenRevokeFamily(ctx, family, now))
		got, err = s.RefreshTokenGet(ctx, "h2")
		require.NoError(t, err)
		require.NotNil(t, got.RevokedAt, "the whole family is revoked")
		got, err = s.RefreshTokenGet(ctx, "o1")
		require.NoError(t, err)
		require.Nil(t, got.RevokedAt, "other sessions are untouched")
	})

	t.Run("RotationIsExclusive", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := context.Background()
		u := insertUser(t, s, "erin@example.com")
		now := time.Now().UTC()
		family := uuid.NewString()
		require.NoError(t, s.RefreshTokenInsert(ctx, stroem.RefreshToken{Hash: "root", UserID: u.ID, Family: family, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}))
		results := stroemtest.Concurrently(8, func(i int) error {
			return s.RefreshTokenRotate(ctx, "root", stroem.RefreshToken{Hash: fmt.Sprintf("next-%d", i), UserID: u.ID, Family: family,
				CreatedAt: now, ExpiresAt: now.Add(time.Hour)}, now)
		})
		ok := 0
		for _, err := range results {
			if err == nil {
				ok++
			} else {
				require.ErrorIs(t, err, stroem.ErrConflict)
			}
		}
		require.Equal(t, 1, ok, "exactly one concurrent rotation wins")
	})

	t.Run("APIKeys", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := context.Background()
		u := insertUser(t, s, "frank@example.com")
		v := insertUser(t, s, "grace@example.com")
		now := time.Now().UTC().Truncate(time.Millisecond)
		exp := now.Add(24 * time.Hour)
		k1 := stroem.APIKey{Hash: "hash-1", Prefix: "strm_aaa", UserID: u.ID, Name: "CI", CreatedAt: now, ExpiresAt: &exp}
		k2 := stroem.APIKey{Hash: "hash-2", Prefix: "strm_bbb", UserID: u.ID, Name: "laptop", CreatedAt: now.Add(time.Second)}
		require.NoError(t, s.APIKeyInsert(ctx, k1))
		require.NoError(t, s.APIKeyInsert(ctx, k2))
		require.ErrorIs(t, s.APIKeyInsert(ctx, stroem.APIKey{Hash: "hash-3", Prefix: "strm_aaa", UserID: u.ID, Name: "x", CreatedAt: now}), stroem.ErrConflict,
			"a user's prefixes are unique")
		require.NoError(t, s.APIKeyInsert(ctx, stroem.APIKey{Hash: "hash-4", Prefix: "strm_aaa", UserID: v.ID, Name: "x", CreatedAt: now}),
			"another user may have the same prefix")

		got, err := s.APIKeyGet(ctx, "hash-1")
		require.NoError(t, err)
		require.Equal(t, "strm_aaa", got.Prefix)
		require.Equal(t, u.ID, got.UserID)
		require.Equal(t, "CI", got.Name)
		require.NotNil(t, got.ExpiresAt)
		require.WithinDuration(t, exp, *got.ExpiresAt, time.Millisecond)
		require.Nil(t, got.LastUsedAt)
		_, err = s.APIKeyGet(ctx, "nope")
		require.ErrorIs(t, err, stroem.ErrNotFound)

		used := now.Add(time.Minute)
		require.NoError(t, s.APIKeyUsed(ctx, "hash-1", used))
		list, err := s.APIKeyList(ctx, u.ID)
		require.NoError(t, err)
		require.Len(t, list, 2)
		require.Equal(t, "strm_bbb", list[0].Prefix, "newest first")
		require.NotNil(t, list[1].LastUsedAt)
		require.WithinDuration(t, used, *list[1].LastUsedAt, time.Millisecond)

		require.ErrorIs(t, s.APIKeyDelete(ctx, v.ID, "strm_bbb"), stroem.ErrNotFound, "only the owner's keys")
		require.NoError(t, s.APIKeyDelete(ctx, u.ID, "strm_aaa"))
		require.ErrorIs(t, s.APIKeyDelete(ctx, u.ID, "strm_aaa"), stroem.ErrNotFound)
		_, err = s.APIKeyGet(ctx, "hash-1")
		require.ErrorIs(t, err, stroem.ErrNotFound)
		_, err = s.APIKeyGet(ctx, "hash-4")
		require.NoError(t, err, "grace's key with the same prefix stays")
		list, err = s.APIKeyList(ctx, "not-a-uuid")
		require.NoError(t, err)
		require.Empty(t, list)
	})

	t.Run("JobCreatedAndCancelledBy", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := context.Background()
		nj := NewJob(Step{Name: "a"})
		nj.Job.CreatedBy = "alice@example.com (api key strm_abc)"
		require.NoError(t, s.JobInsert(ctx, nj))
		j := jobGet(t, s, nj.Job.ID)
		require.Equal(t, "alice@example.com (api key strm_abc)", j.CreatedBy)
		require.Empty(t, j.CancelledBy)
		require.NoError(t, s.JobCancelledBy(ctx, nj.Job.ID, "bob@example.com"))
		require.NoError(t, s.JobCancelledBy(ctx, nj.Job.ID, "carol@example.com"))
		j = jobGet(t, s, nj.Job.ID)
		require.Equal(t, "bob@example.com", j.CancelledBy, "the first canceller is kept")
		jobs, err := s.JobList(ctx, persistence.JobFilter{Limit: 10})
		require.NoError(t, err)
		require.Len(t, jobs, 1)
		require.Equal(t, "alice@example.com (api key strm_abc)", jobs[0].CreatedBy)
		require.Equal(t, "bob@example.com", jobs[0].CancelledBy)
		require.ErrorIs(t, s.JobCancelledBy(ctx, "nope", "x"), stroem.ErrNotFound)
	})
}
