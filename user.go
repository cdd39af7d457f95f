package stroem

import "time"

// User is a person who signs in to the server (with a password, an OIDC
// provider, or an API key of theirs). Emails are stored lower-case and are
// unique.
type User struct {
	ID    string  `json:"user_id"`
	Name  *string `json:"name"`
	Email string  `json:"email"`
	// PasswordHash is the argon2id hash (PHC string), empty for users who
	// only sign in through OIDC. Never shown by the API.
	PasswordHash string    `json:"-"`
	IsAdmin      bool      `json:"is_admin"`
	Groups       []string  `json:"groups"`
	CreatedAt    time.Time `json:"created_at"`
	// LastLoginAt is the last successful login, nil before the first.
	LastLoginAt *time.Time `json:"last_login_at"`
	// AuthMethods lists how the user can sign in: "password" and the OIDC
	// providers linked to the account.
	AuthMethods []string `json:"auth_methods"`
}

// APIKey is a long-lived credential of a user ("strm_" + 32 hex digits).
// Only the SHA-256 of the key is stored; Prefix (its first 8 characters)
// names it in lists and when revoking.
type APIKey struct {
	Hash       string     `json:"-"`
	Prefix     string     `json:"prefix"`
	UserID     string     `json:"-"`
	Name       string     `json:"name"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
}

// RefreshToken is one refresh token of a session. Every token a session
// has had shares its Family; using a token rotates it (RevokedAt set,
// ReplacedBy naming the successor), and presenting a rotated token again
// revokes the whole family. Only the token's hash is stored.
type RefreshToken struct {
	Hash       string
	UserID     string
	Family     string
	CreatedAt  time.Time
	ExpiresAt  time.Time
	RevokedAt  *time.Time
	ReplacedBy string
}
