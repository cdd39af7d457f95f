// Package client is the Go client of Strøm's HTTP API, used by the CLI and by
// worker processes. It covers the public REST API (SPEC §5), the live log
// stream over Server-Sent Events (SPEC §6) and the worker protocol (SPEC §7),
// speaking the wire types of the root package.
//
// Every non-2xx answer becomes a *stroem.Error whose code follows the status
// (400 invalid, 401 unauthorized, 404 not found, 409 conflict, 413 too
// large, 503 unavailable, other 5xx internal), so callers test errors with
// errors.Is(err, stroem.ErrConflict). A server that cannot be reached is a
// stroem.ErrUnavailable error whose message says so and names the URL.
//
// The package must stay light: the worker binary path links it, so it never
// imports pgx, protoactor or the server packages (CI checks
// `go list -deps ./http/client/...`).
package client
