// Package auth owns who may do what on a Strøm server: the `auth:` and
// `acl:` configuration, password hashing (argon2id), access tokens (JWT,
// HS256), refresh tokens (rotated on use, a reused token revoking its whole
// family), API keys ("strm_…", only their SHA-256 stored), OIDC sign-in
// (authorization code with PKCE, state and nonce), the ACL evaluation of
// the upstream's authorization model, and login rate limits.
//
// It speaks the domain types of package stroem and reaches storage through
// the Store interface declared here; it knows nothing about HTTP routing
// (package http mounts its handlers and middleware) and never logs or
// returns a secret.
package auth
