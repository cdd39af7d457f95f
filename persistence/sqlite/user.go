package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
)

// Users, groups, OIDC links, refresh tokens and API keys (package auth's
// Store). Emails arrive normalized (lower case); ids are UUIDs.

const userColumns = `u.id, u.email, u.name, u.password_hash, u.is_admin, u.created_at, u.last_login_at,
	(SELECT COALESCE(json_group_array(g.group_name), '[]') FROM (SELECT group_name FROM user_groups WHERE user_id = u.id ORDER BY group_name) g),
	(SELECT COALESCE(json_group_array(a.provider), '[]') FROM (SELECT DISTINCT provider FROM auth_links WHERE user_id = u.id ORDER BY provider) a)`

func scanUser(row rowScanner) (stroem.User, error) {
	var (
		u              stroem.User
		name, hash     sql.NullString
		admin          int64
		groups, linked string
	)
	if err := row.Scan(&u.ID, &u.Email, &name, &hash, &admin, timeVal{&u.CreatedAt}, timeCol{&u.LastLoginAt}, &groups, &linked); err != nil {
		return stroem.User{}, err
	}
	if name.Valid {
		u.Name = &name.String
	}
	u.PasswordHash, u.IsAdmin = hash.String, admin == 1
	var err error
	if u.Groups, err = decodeStrings(groups); err != nil {
		return stroem.User{}, err
	}
	var providers []string
	if err := json.Unmarshal([]byte(linked), &providers); err != nil {
		return stroem.User{}, err
	}
	u.AuthMethods = persistence.AuthMethods(u.PasswordHash, providers)
	return u, nil
}

// UserInsert stores a new user and its groups; a taken email is a conflict.
func (s *Store) UserInsert(ctx context.Context, u stroem.User) error {
	id, ok := canonicalUUID(u.ID)
	if !ok {
		return stroem.Errorf(stroem.CodeInvalid, "user id %q is not a UUID", u.ID)
	}
	err := s.writeTx(ctx, func(tx *txn, _ time.Time) error {
		var hash any
		if u.PasswordHash != "" {
			hash = u.PasswordHash
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO users (id, email, name, password_hash, is_admin, created_at, last_login_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, id, strings.ToLower(u.Email), u.Name, hash, boolInt(u.IsAdmin), nanos(u.CreatedAt), nanosPtr(u.LastLoginAt)); err != nil {
			return err
		}
		return setGroups(ctx, tx, id, u.Groups)
	})
	return errs.Wrap(err, "insert user %s", u.Email)
}

func setGroups(ctx context.Context, tx *txn, id string, groups []string) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM user_groups WHERE user_id = ?`, id); err != nil {
		return err
	}
	for _, g := range groups {
		if _, err := tx.ExecContext(ctx, `INSERT INTO user_groups (user_id, group_name) VALUES (?, ?) ON CONFLICT DO NOTHING`, id, g); err != nil {
			return err
		}
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// UserGet returns a user by id.
func (s *Store) UserGet(ctx context.Context, id string) (stroem.User, error) {
	cid, ok := canonicalUUID(id)
	if !ok {
		return stroem.User{}, notFound("user %s not found", id)
	}
	return s.userWhere(ctx, "u.id = ?", cid, "user "+id)
}

// UserGetByEmail returns a user by (lower-case) email.
func (s *Store) UserGetByEmail(ctx context.Context, email string) (stroem.User, error) {
	return s.userWhere(ctx, "u.email = ?", strings.ToLower(email), "user "+email)
}

func (s *Store) userWhere(ctx context.Context, where string, arg any, what string) (stroem.User, error) {
	u, err := scanUser(s.queryRow(ctx, `SELECT `+userColumns+` FROM users u WHERE `+where, arg))
	if err != nil {
		return stroem.User{}, errs.Row(err, notFound("%s not found", what), "get %s", what)
	}
	return u, nil
}

// UserList returns a page of users by email, and how many there are.
func (s *Store) UserList(ctx context.Context, limit, offset int) ([]stroem.User, int, error) {
	var (
		out   []stroem.User
		total int
	)
	err := s.readTx(ctx, func(tx *txn) error {
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM users`).Scan(&total); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT `+userColumns+` FROM users u ORDER BY u.email LIMIT ? OFFSET ?`, limit, offset)
		out, err = collect(rows, err, scanUser)
		return err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("list users: %w", interpretError(err))
	}
	return out, total, nil
}

// UserCount is the number of users.
func (s *Store) UserCount(ctx context.Context) (int, error) {
	n, err := s.count(ctx, `SELECT count(*) FROM users`)
	if err != nil {
		return 0, fmt.Errorf("count users: %w", interpretError(err))
	}
	return int(n), nil
}

// userExec runs one statement on a user's row; no such user is NotFound.
func (s *Store) userExec(ctx context.Context, id, what, query string, args ...any) error {
	cid, ok := canonicalUUID(id)
	if !ok {
		return notFound("user %s not found", id)
	}
	err := s.writeTx(ctx, func(tx *txn, _ time.Time) error {
		res, err := tx.ExecContext(ctx, query, append(args, cid)...)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return notFound("user %s not found", id)
		}
		return nil
	})
	return errs.Wrap(err, "%s", what)
}

// UserSetAdmin sets the admin flag.
func (s *Store) UserSetAdmin(ctx context.Context, id string, admin bool) error {
	return s.userExec(ctx, id, "set admin", `UPDATE users SET is_admin = ? WHERE id = ?`, boolInt(admin))
}

// UserSetPassword replaces the password hash.
func (s *Store) UserSetPassword(ctx context.Context, id, hash string) error {
	return s.userExec(ctx, id, "set password", `UPDATE users SET password_hash = ? WHERE id = ?`, hash)
}

// UserLoggedIn records a successful login.
func (s *Store) UserLoggedIn(ctx context.Context, id string, at time.Time) error {
	return s.userExec(ctx, id, "record login", `UPDATE users SET last_login_at = ? WHERE id = ?`, nanos(at))
}

// UserSetGroups replaces the user's groups.
func (s *Store) UserSetGroups(ctx context.Context, id string, groups []string) error {
	cid, ok := canonicalUUID(id)
	if !ok {
		return notFound("user %s not found", id)
	}
	err := s.writeTx(ctx, func(tx *txn, _ time.Time) error {
		var one int
		if err := tx.QueryRowContext(ctx, `SELECT 1 FROM users WHERE id = ?`, cid).Scan(&one); err != nil {
			if err == sql.ErrNoRows {
				return notFound("user %s not found", id)
			}
			return err
		}
		return setGroups(ctx, tx, cid, groups)
	})
	return errs.Wrap(err, "set groups")
}

// GroupList returns every group name in use, sorted.
func (s *Store) GroupList(ctx context.Context) ([]string, error) {
	out, err := column(s.query(ctx, `SELECT DISTINCT group_name FROM user_groups ORDER BY group_name`))
	if err != nil {
		return nil, fmt.Errorf("list groups: %w", interpretError(err))
	}
	sort.Strings(out)
	return out, nil
}

// AuthLinkGet returns the user an OIDC provider's subject signs in.
func (s *Store) AuthLinkGet(ctx context.Context, provider, subject string) (string, error) {
	var id string
	err := s.queryRow(ctx, `SELECT user_id FROM auth_links WHERE provider = ? AND subject = ?`, provider, subject).Scan(&id)
	if err != nil {
		return "", errs.Row(err, notFound("no user linked to %s subject %s", provider, subject), "get auth link")
	}
	return id, nil
}

// AuthLinkInsert links an OIDC subject to a user.
func (s *Store) AuthLinkInsert(ctx context.Context, provider, subject, userID string) error {
	cid, ok := canonicalUUID(userID)
	if !ok {
		return notFound("user %s not found", userID)
	}
	err := s.writeTx(ctx, func(tx *txn, now time.Time) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO auth_links (provider, subject, user_id, created_at) VALUES (?, ?, ?, ?)`,
			provider, subject, cid, nanos(now))
		return err
	})
	return errs.Wrap(err, "link %s subject to user %s", provider, userID)
}

// RefreshTokenInsert stores a new refresh token (its hash).
func (s *Store) RefreshTokenInsert(ctx context.Context, t stroem.RefreshToken) error {
	err := s.writeTx(ctx, func(tx *txn, _ time.Time) error { return insertRefresh(ctx, tx, t) })
	return errs.Wrap(err, "insert refresh token")
}

func insertRefresh(ctx context.Context, tx *txn, t stroem.RefreshToken) error {
	uid, _ := canonicalUUID(t.UserID)
	fam, _ := canonicalUUID(t.Family)
	_, err := tx.ExecContext(ctx, `INSERT INTO refresh_tokens (hash, user_id, family, created_at, expires_at, revoked_at, replaced_by)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, t.Hash, uid, fam, nanos(t.CreatedAt), nanos(t.ExpiresAt), nanosPtr(t.RevokedAt), t.ReplacedBy)
	return err
}

// RefreshTokenGet returns a refresh token by hash.
func (s *Store) RefreshTokenGet(ctx context.Context, hash string) (stroem.RefreshToken, error) {
	var t stroem.RefreshToken
	err := s.queryRow(ctx, `SELECT hash, user_id, family, created_at, expires_at, revoked_at, replaced_by
		FROM refresh_tokens WHERE hash = ?`, hash).Scan(&t.Hash, &t.UserID, &t.Family, timeVal{&t.CreatedAt}, timeVal{&t.ExpiresAt}, timeCol{&t.RevokedAt}, &t.ReplacedBy)
	if err != nil {
		return t, errs.Row(err, notFound("refresh token not found"), "get refresh token")
	}
	return t, nil
}

// RefreshTokenRotate spends the token and stores its successor at once; a
// token already spent is a conflict (and nothing is stored).
func (s *Store) RefreshTokenRotate(ctx context.Context, hash string, next stroem.RefreshToken, now time.Time) error {
	err := s.writeTx(ctx, func(tx *txn, _ time.Time) error {
		res, err := tx.ExecContext(ctx, `UPDATE refresh_tokens SET revoked_at = ?, replaced_by = ? WHERE hash = ? AND revoked_at IS NULL`,
			nanos(now), next.Hash, hash)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return stroem.Errorf(stroem.CodeConflict, "refresh token already used or revoked")
		}
		return insertRefresh(ctx, tx, next)
	})
	return errs.Wrap(err, "rotate refresh token")
}

// RefreshTokenRevokeFamily revokes every live token of a session.
func (s *Store) RefreshTokenRevokeFamily(ctx context.Context, family string, now time.Time) error {
	fam, _ := canonicalUUID(family)
	err := s.writeTx(ctx, func(tx *txn, _ time.Time) error {
		_, err := tx.ExecContext(ctx, `UPDATE refresh_tokens SET revoked_at = ? WHERE family = ? AND revoked_at IS NULL`, nanos(now), fam)
		return err
	})
	return errs.Wrap(err, "revoke session")
}

// APIKeyInsert stores a key (its hash); a prefix the user already has is a
// conflict.
func (s *Store) APIKeyInsert(ctx context.Context, k stroem.APIKey) error {
	uid, ok := canonicalUUID(k.UserID)
	if !ok {
		return notFound("user %s not found", k.UserID)
	}
	err := s.writeTx(ctx, func(tx *txn, _ time.Time) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO api_keys (hash, prefix, user_id, name, created_at, expires_at, last_used_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, k.Hash, k.Prefix, uid, k.Name, nanos(k.CreatedAt), nanosPtr(k.ExpiresAt), nanosPtr(k.LastUsedAt))
		return err
	})
	return errs.Wrap(err, "insert API key %s", k.Prefix)
}

const apiKeyColumns = `hash, prefix, user_id, name, created_at, expires_at, last_used_at`

func scanAPIKey(row rowScanner) (stroem.APIKey, error) {
	var k stroem.APIKey
	err := row.Scan(&k.Hash, &k.Prefix, &k.UserID, &k.Name, timeVal{&k.CreatedAt}, timeCol{&k.ExpiresAt}, timeCol{&k.LastUsedAt})
	return k, err
}

// APIKeyGet returns a key by its hash.
func (s *Store) APIKeyGet(ctx context.Context, hash string) (stroem.APIKey, error) {
	k, err := scanAPIKey(s.queryRow(ctx, `SELECT `+apiKeyColumns+` FROM api_keys WHERE hash = ?`, hash))
	if err != nil {
		return k, errs.Row(err, notFound("API key not found"), "get API key")
	}
	return k, nil
}

// APIKeyList returns a user's keys, newest first.
func (s *Store) APIKeyList(ctx context.Context, userID string) ([]stroem.APIKey, error) {
	uid, ok := canonicalUUID(userID)
	if !ok {
		return []stroem.APIKey{}, nil
	}
	rows, err := s.query(ctx, `SELECT `+apiKeyColumns+` FROM api_keys WHERE user_id = ? ORDER BY created_at DESC, prefix`, uid)
	out, err := collect(rows, err, scanAPIKey)
	if err != nil {
		return nil, fmt.Errorf("list API keys: %w", interpretError(err))
	}
	return out, nil
}

// APIKeyDelete revokes one of a user's keys by prefix.
func (s *Store) APIKeyDelete(ctx context.Context, userID, prefix string) error {
	uid, ok := canonicalUUID(userID)
	if !ok {
		return notFound("API key %s not found", prefix)
	}
	err := s.writeTx(ctx, func(tx *txn, _ time.Time) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM api_keys WHERE user_id = ? AND prefix = ?`, uid, prefix)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return notFound("API key %s not found", prefix)
		}
		return nil
	})
	return errs.Wrap(err, "delete API key")
}

// APIKeyUsed records when a key was last used.
func (s *Store) APIKeyUsed(ctx context.Context, hash string, at time.Time) error {
	err := s.writeTx(ctx, func(tx *txn, _ time.Time) error {
		_, err := tx.ExecContext(ctx, `UPDATE api_keys SET last_used_at = ? WHERE hash = ?`, nanos(at), hash)
		return err
	})
	return errs.Wrap(err, "record API key use")
}

// JobCancelledBy records who cancelled a job; the first one is kept.
func (s *Store) JobCancelledBy(ctx context.Context, jobID, who string) error {
	id, ok := canonicalUUID(jobID)
	if !ok {
		return notFound("job %s not found", jobID)
	}
	err := s.writeTx(ctx, func(tx *txn, _ time.Time) error {
		_, err := tx.ExecContext(ctx, `UPDATE jobs SET cancelled_by = ? WHERE id = ? AND cancelled_by = ''`, stroem.SanitizeText(who), id)
		return err
	})
	return errs.Wrap(err, "record who cancelled job %s", jobID)
}
