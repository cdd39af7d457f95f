package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Token lifetimes (the upstream's).
const (
	AccessTTL  = 15 * time.Minute
	RefreshTTL = 30 * 24 * time.Hour
)

// APIKeyPrefix starts every API key; it tells a key from a JWT.
const APIKeyPrefix = "strm_"

// apiKeyHexLen is the number of random hex digits after the prefix.
const apiKeyHexLen = 32

// apiKeyShownPrefix is how many leading characters name a key ("strm_a1b").
const apiKeyShownPrefix = 8

const issuer = "stroem"

// Claims are an access token's claims.
type Claims struct {
	jwt.RegisteredClaims
	Email   string   `json:"email"`
	IsAdmin bool     `json:"is_admin"`
	Groups  []string `json:"groups,omitempty"`
}

// Tokens signs and checks access tokens and hashes refresh tokens.
type Tokens struct {
	jwtKey     []byte
	refreshKey []byte
	now        func() time.Time
}

// NewTokens returns the token codec for the two secrets.
func NewTokens(jwtSecret, refreshSecret string, now func() time.Time) *Tokens {
	if now == nil {
		now = time.Now
	}
	return &Tokens{jwtKey: []byte(jwtSecret), refreshKey: []byte(refreshSecret), now: now}
}

// Access returns a signed access token for u, valid for AccessTTL.
func (t *Tokens) Access(u Identity) (string, time.Time, error) {
	now := t.now()
	exp := now.Add(AccessTTL)
	c := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: issuer, Subject: u.UserID,
			IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now.Add(-time.Minute)),
			ExpiresAt: jwt.NewNumericDate(exp),
		},
		Email: u.Email, IsAdmin: u.IsAdmin, Groups: u.Groups,
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(t.jwtKey)
	return s, exp, err
}

// Errors of token checks. They say what is wrong without echoing the token.
var (
	ErrTokenExpired = errors.New("access token expired; refresh it (POST /api/auth/refresh) or log in again")
	ErrTokenInvalid = errors.New("invalid access token")
)

// ParseAccess checks an access token's signature, algorithm, issuer and
// times and returns the identity it carries.
func (t *Tokens) ParseAccess(s string) (Identity, error) {
	var c Claims
	_, err := jwt.ParseWithClaims(s, &c, func(*jwt.Token) (any, error) { return t.jwtKey, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(issuer), jwt.WithExpirationRequired(), jwt.WithTimeFunc(t.now),
		jwt.WithLeeway(5*time.Second))
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return Identity{}, ErrTokenExpired
	case err != nil:
		return Identity{}, ErrTokenInvalid
	case c.Subject == "":
		return Identity{}, ErrTokenInvalid
	}
	return Identity{UserID: c.Subject, Email: c.Email, IsAdmin: c.IsAdmin, Groups: c.Groups, Method: MethodJWT}, nil
}

// NewRefresh returns a new random refresh token and the hash to store.
func (t *Tokens) NewRefresh() (token, hash string, err error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", "", err
	}
	token = hex.EncodeToString(b)
	return token, t.RefreshHash(token), nil
}

// RefreshHash is the stored form of a refresh token: HMAC-SHA256 keyed
// with refresh_secret, so a leaked table is useless without the secret.
func (t *Tokens) RefreshHash(token string) string {
	m := hmac.New(sha256.New, t.refreshKey)
	m.Write([]byte(token))
	return hex.EncodeToString(m.Sum(nil))
}

// NewAPIKey returns a new key ("strm_" + 32 hex digits), its SHA-256 (the
// only thing stored) and its shown prefix.
func NewAPIKey() (key, hash, prefix string, err error) {
	b := make([]byte, apiKeyHexLen/2)
	if _, err := rand.Read(b); err != nil {
		return "", "", "", err
	}
	key = APIKeyPrefix + hex.EncodeToString(b)
	return key, APIKeyHash(key), key[:apiKeyShownPrefix], nil
}

// APIKeyHash is the stored form of an API key: hex SHA-256, as upstream.
func APIKeyHash(key string) string {
	s := sha256.Sum256([]byte(key))
	return hex.EncodeToString(s[:])
}

// IsAPIKey reports whether a bearer token is an API key (not a JWT).
func IsAPIKey(token string) bool { return strings.HasPrefix(token, APIKeyPrefix) }

// ValidAPIKeyFormat checks an API key's shape before any lookup.
func ValidAPIKeyFormat(key string) error {
	rest, ok := strings.CutPrefix(key, APIKeyPrefix)
	if !ok || len(rest) != apiKeyHexLen {
		return fmt.Errorf("malformed API key: want %s followed by %d hex digits", APIKeyPrefix, apiKeyHexLen)
	}
	if _, err := hex.DecodeString(rest); err != nil {
		return fmt.Errorf("malformed API key: want %s followed by %d hex digits", APIKeyPrefix, apiKeyHexLen)
	}
	return nil
}

// Equal compares two secrets in constant time, length included: both are
// hashed first, so neither a length mismatch nor a common prefix returns
// earlier than a full comparison would.
func Equal(a, b string) bool {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}
