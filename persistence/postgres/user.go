package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
)

// Users, groups, OIDC links, refresh tokens and API keys (package auth's
// Store). Emails arrive normalized (lower case); ids are UUIDs.

const userColumns = `u.id::text, u.email, u.name, coalesce(u.password_hash, ''), u.is_admin, u.created_at, u.last_login_at,
	ARRAY(SELECT group_name FROM user_groups WHERE user_id = u.id ORDER BY group_name),
	ARRAY(SELECT DISTINCT provider FROM auth_links WHERE user_id = u.id ORDER BY provider)`

func scanUser(row pgx.Row) (stroem.User, error) {
	var (
		u         stroem.User
		providers []string
	)
	if err := row.Scan(&u.ID, &u.Email, &u.Name, &u.PasswordHash, &u.IsAdmin, &u.CreatedAt, &u.LastLoginAt, &u.Groups, &providers); err != nil {
		return stroem.User{}, err
	}
	u.CreatedAt = u.CreatedAt.UTC()
	if u.LastLoginAt != nil {
		t := u.LastLoginAt.UTC()
		u.LastLoginAt = &t
	}
	if u.Groups == nil {
		u.Groups = []string{}
	}
	u.AuthMethods = persistence.AuthMethods(u.PasswordHash, providers)
	return u, nil
}

// UserInsert stores a new user and its groups; a taken email is a conflict.
func (s *Store) UserInsert(ctx context.Context, u stroem.User) error {
	if !validUUID(u.ID) {
		return stroem.Errorf(stroem.CodeInvalid, "user id %q is not a UUID", u.ID)
	}
	err := s.inTx(ctx, pgx.TxOptions{}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO users (id, email, name, password_hash, is_admin, created_at, last_login_at)
			VALUES ($1, $2, $3, nullif($4, ''), $5, $6, $7)`, u.ID, strings.ToLower(u.Email), u.Name, u.PasswordHash, u.IsAdmin, u.CreatedAt, u.LastLoginAt); err != nil {
			return err
		}
		return setGroups(ctx, tx, u.ID, u.Groups)
	})
	return errs.Wrap(err, "insert user %s", u.Email)
}

func setGroups(ctx context.Context, tx pgx.Tx, id string, groups []string) error {
	if groups == nil {
		groups = []string{}
	}
	if _, err := tx.Exec(ctx, `DELETE FROM user_groups WHERE user_id = $1`, id); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `INSERT INTO user_groups (user_id, group_name) SELECT $1, g FROM unnest($2::text[]) g ON CONFLICT DO NOTHING`, id, groups)
	return err
}

// UserGet returns a user by id.
func (s *Store) UserGet(ctx context.Context, id string) (stroem.User, error) {
	if !validUUID(id) {
		return stroem.User{}, stroem.Errorf(stroem.CodeNotFound, "user %s not found", id)
	}
	return s.userWhere(ctx, "u.id = $1", id, "user "+id)
}

// UserGetByEmail returns a user by (lower-case) email.
func (s *Store) UserGetByEmail(ctx context.Context, email string) (stroem.User, error) {
	return s.userWhere(ctx, "u.email = $1", strings.ToLower(email), "user "+email)
}

func (s *Store) userWhere(ctx context.Context, where string, arg any, what string) (stroem.User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users u WHERE `+where, arg))
	if err != nil {
		return stroem.User{}, errs.Row(err, stroem.Errorf(stroem.CodeNotFound, "%s not found", what), "get %s", what)
	}
	return u, nil
}

// UserList returns a page of users by email, and how many there are.
func (s *Store) UserList(ctx context.Context, limit, offset int) ([]stroem.User, int, error) {
	var (
		out   []stroem.User
		total int
	)
	err := s.inTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly, IsoLevel: pgx.RepeatableRead}, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM users`).Scan(&total); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT `+userColumns+` FROM users u ORDER BY u.email LIMIT $1 OFFSET $2`, limit, offset)
		if err == nil {
			out, err = pgx.CollectRows(rows, rowTo(scanUser))
		}
		return err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("list users: %w", interpretError(err))
	}
	return out, total, nil
}

// UserCount is the number of users.
func (s *Store) UserCount(ctx context.Context) (int, error) {
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM users`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count users: %w", interpretError(err))
	}
	return n, nil
}

// userExec runs one statement on a user's row ($1 is the id); no such user
// is NotFound.
func (s *Store) userExec(ctx context.Context, id, what, query string, args ...any) error {
	if !validUUID(id) {
		return stroem.Errorf(stroem.CodeNotFound, "user %s not found", id)
	}
	tag, err := s.pool.Exec(ctx, query, append([]any{id}, args...)...)
	if err != nil {
		return fmt.Errorf("%s: %w", what, interpretError(err))
	}
	if tag.RowsAffected() == 0 {
		return stroem.Errorf(stroem.CodeNotFound, "user %s not found", id)
	}
	return nil
}

// UserSetAdmin sets the admin flag.
func (s *Store) UserSetAdmin(ctx context.Context, id string, admin bool) error {
	return s.userExec(ctx, id, "set admin", `UPDATE users SET is_admin = $2 WHERE id = $1`, admin)
}

// UserSetPassword replaces the password hash.
func (s *Store) UserSetPassword(ctx context.Context, id, hash string) error {
	return s.userExec(ctx, id, "set password", `UPDATE users SET password_hash = $2 WHERE id = $1`, hash)
}

// UserLoggedIn records a successful login.
func (s *Store) UserLoggedIn(ctx context.Context, id string, at time.Time) error {
	return s.userExec(ctx, id, "record login", `UPDATE users SET last_login_at = $2 WHERE id = $1`, at)
}

// UserSetGroups replaces the user's groups.
func (s *Store) UserSetGroups(ctx context.Context, id string, groups []string) error {
	if !validUUID(id) {
		return stroem.Errorf(stroem.CodeNotFound, "user %s not found", id)
	}
	err := s.inTx(ctx, pgx.TxOptions{}, func(tx pgx.Tx) error {
		var one int
		if err := tx.QueryRow(ctx, `SELECT 1 FROM users WHERE id = $1 FOR UPDATE`, id).Scan(&one); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return stroem.Errorf(stroem.CodeNotFound, "user %s not found", id)
			}
			return err
		}
		return setGroups(ctx, tx, id, groups)
	})
	return errs.Wrap(err, "set groups")
}

// GroupList returns every group name in use, sorted.
func (s *Store) GroupList(ctx context.Context) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT group_name FROM user_groups ORDER BY group_name`)
	if err != nil {
		return nil, fmt.Errorf("list groups: %w", interpretError(err))
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list groups: %w", interpretError(err))
	}
	if out == nil {
		out = []string{}
	}
	return out, nil
}

// AuthLinkGet returns the user an OIDC provider's subject signs in.
func (s *Store) AuthLinkGet(ctx context.Context, provider, subject string) (string, error) {
	var id string
	err := s.pool.QueryRow(ctx, `SELECT user_id::text FROM auth_links WHERE provider = $1 AND subject = $2`, provider, subject).Scan(&id)
	if err != nil {
		return "", errs.Row(err, stroem.Errorf(stroem.CodeNotFound, "no user linked to %s subject %s", provider, subject), "get auth link")
	}
	return id, nil
}

// AuthLinkInsert links an OIDC subject to a user.
func (s *Store) AuthLinkInsert(ctx context.Context, provider, subject, userID string) error {
	if !validUUID(userID) {
		return stroem.Errorf(stroem.CodeNotFound, "user %s not found", userID)
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO auth_links (provider, subject, user_id) VALUES ($1, $2, $3)`, provider, subject, userID); err != nil {
		return fmt.Errorf("link %s subject to user %s: %w", provider, userID, interpretError(err))
	}
	return nil
}

const insertRefreshSQL = `INSERT INTO refresh_tokens (hash, user_id, family, created_at, expires_at, revoked_at, replaced_by)
	VALUES ($1, $2, $3, $4, $5, $6, $7)`

func refreshArgs(t stroem.RefreshToken) []any {
	return []any{t.Hash, t.UserID, t.Family, t.CreatedAt, t.ExpiresAt, t.RevokedAt, t.ReplacedBy}
}

// RefreshTokenInsert stores a new refresh token (its hash).
func (s *Store) RefreshTokenInsert(ctx context.Context, t stroem.RefreshToken) error {
	if !validUUID(t.UserID) || !validUUID(t.Family) {
		return stroem.Errorf(stroem.CodeInvalid, "refresh token: user and family must be UUIDs")
	}
	if _, err := s.pool.Exec(ctx, insertRefreshSQL, refreshArgs(t)...); err != nil {
		return fmt.Errorf("insert refresh token: %w", interpretError(err))
	}
	return nil
}

// RefreshTokenGet returns a refresh token by hash.
func (s *Store) RefreshTokenGet(ctx context.Context, hash string) (stroem.RefreshToken, error) {
	var t stroem.RefreshToken
	err := s.pool.QueryRow(ctx, `SELECT hash, user_id::text, family::text, created_at, expires_at, revoked_at, replaced_by
		FROM refresh_tokens WHERE hash = $1`, hash).Scan(&t.Hash, &t.UserID, &t.Family, &t.CreatedAt, &t.ExpiresAt, &t.RevokedAt, &t.ReplacedBy)
	if err != nil {
		return t, errs.Row(err, stroem.Errorf(stroem.CodeNotFound, "refresh token not found"), "get refresh token")
	}
	t.CreatedAt, t.ExpiresAt = t.CreatedAt.UTC(), t.ExpiresAt.UTC()
	if t.RevokedAt != nil {
		r := t.RevokedAt.UTC()
		t.RevokedAt = &r
	}
	return t, nil
}

// RefreshTokenRotate spends the token and stores its successor at once; a
// token already spent is a conflict (and nothing is stored).
func (s *Store) RefreshTokenRotate(ctx context.Context, hash string, next stroem.RefreshToken, now time.Time) error {
	err := s.inTx(ctx, pgx.TxOptions{}, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE refresh_tokens SET revoked_at = $2, replaced_by = $3 WHERE hash = $1 AND revoked_at IS NULL`,
			hash, now, next.Hash)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return stroem.Errorf(stroem.CodeConflict, "refresh token already used or revoked")
		}
		_, err = tx.Exec(ctx, insertRefreshSQL, refreshArgs(next)...)
		return err
	})
	return errs.Wrap(err, "rotate refresh token")
}

// RefreshTokenRevokeFamily revokes every live token of a session.
func (s *Store) RefreshTokenRevokeFamily(ctx context.Context, family string, now time.Time) error {
	if !validUUID(family) {
		return nil
	}
	if _, err := s.pool.Exec(ctx, `UPDATE refresh_tokens SET revoked_at = $2 WHERE family = $1 AND revoked_at IS NULL`, family, now); err != nil {
		return fmt.Errorf("revoke session: %w", interpretError(err))
	}
	return nil
}

// APIKeyInsert stores a key (its hash); a prefix the user already has is a
// conflict.
func (s *Store) APIKeyInsert(ctx context.Context, k stroem.APIKey) error {
	if !validUUID(k.UserID) {
		return stroem.Errorf(stroem.CodeNotFound, "user %s not found", k.UserID)
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO api_keys (hash, prefix, user_id, name, created_at, expires_at, last_used_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, k.Hash, k.Prefix, k.UserID, k.Name, k.CreatedAt, k.ExpiresAt, k.LastUsedAt)
	return errs.Wrap(err, "insert API key %s", k.Prefix)
}

const apiKeyColumns = `hash, prefix, user_id::text, name, created_at, expires_at, last_used_at`

func scanAPIKey(row pgx.Row) (stroem.APIKey, error) {
	var k stroem.APIKey
	if err := row.Scan(&k.Hash, &k.Prefix, &k.UserID, &k.Name, &k.CreatedAt, &k.ExpiresAt, &k.LastUsedAt); err != nil {
		return k, err
	}
	k.CreatedAt = k.CreatedAt.UTC()
	for _, p := range []**time.Time{&k.ExpiresAt, &k.LastUsedAt} {
		if *p != nil {
			t := (*p).UTC()
			*p = &t
		}
	}
	return k, nil
}

// APIKeyGet returns a key by its hash.
func (s *Store) APIKeyGet(ctx context.Context, hash string) (stroem.APIKey, error) {
	k, err := scanAPIKey(s.pool.QueryRow(ctx, `SELECT `+apiKeyColumns+` FROM api_keys WHERE hash = $1`, hash))
	if err != nil {
		return k, errs.Row(err, stroem.Errorf(stroem.CodeNotFound, "API key not found"), "get API key")
	}
	return k, nil
}

// APIKeyList returns a user's keys, newest first.
func (s *Store) APIKeyList(ctx context.Context, userID string) ([]stroem.APIKey, error) {
	out := []stroem.APIKey{}
	if !validUUID(userID) {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT `+apiKeyColumns+` FROM api_keys WHERE user_id = $1 ORDER BY created_at DESC, prefix`, userID)
	if err == nil {
		out, err = pgx.CollectRows(rows, rowTo(scanAPIKey))
	}
	if err != nil {
		return nil, fmt.Errorf("list API keys: %w", interpretError(err))
	}
	return out, nil
}

// APIKeyDelete revokes one of a user's keys by prefix.
func (s *Store) APIKeyDelete(ctx context.Context, userID, prefix string) error {
	if !validUUID(userID) {
		return stroem.Errorf(stroem.CodeNotFound, "API key %s not found", prefix)
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM api_keys WHERE user_id = $1 AND prefix = $2`, userID, prefix)
	if err != nil {
		return fmt.Errorf("delete API key: %w", interpretError(err))
	}
	if tag.RowsAffected() == 0 {
		return stroem.Errorf(stroem.CodeNotFound, "API key %s not found", prefix)
	}
	return nil
}

// APIKeyUsed records when a key was last used.
func (s *Store) APIKeyUsed(ctx context.Context, hash string, at time.Time) error {
	if _, err := s.pool.Exec(ctx, `UPDATE api_keys SET last_used_at = $2 WHERE hash = $1`, hash, at); err != nil {
		return fmt.Errorf("record API key use: %w", interpretError(err))
	}
	return nil
}

// JobCancelledBy records who cancelled a job; the first one is kept.
func (s *Store) JobCancelledBy(ctx context.Context, jobID, who string) error {
	if !validUUID(jobID) {
		return stroem.Errorf(stroem.CodeNotFound, "job %s not found", jobID)
	}
	if _, err := s.pool.Exec(ctx, `UPDATE jobs SET cancelled_by = $2 WHERE id = $1 AND cancelled_by = ''`, jobID, stroem.SanitizeText(who)); err != nil {
		return fmt.Errorf("record who cancelled job %s: %w", jobID, interpretError(err))
	}
	return nil
}
