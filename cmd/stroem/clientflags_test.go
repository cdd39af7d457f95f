package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A --server URL with a path the server answers with its web UI (an HTML
// page with 200, for any path under it) is named as the problem, at once:
// decoding the page failed with "invalid character '<'", and logs --follow
// took the page for a dropped stream and retried it for two minutes.
func TestClientCommandsRefuseAnHTMLAnswer(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte("<!doctype html><html><body>Strøm</body></html>"))
	}))
	t.Cleanup(srv.Close)
	url := srv.URL + "/ui"
	for _, args := range [][]string{
		{"jobs"},
		{"status", testJobID},
		{"logs", testJobID},
		{"logs", testJobID, "--follow"},
		{"whoami"},
		{"state", "download"},
	} {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		start := time.Now()
		r := runCLI(t, ctx, append(args, "--server", url)...)
		cancel()
		require.Less(t, time.Since(start), 10*time.Second, "%v: at once, not after retrying", args)
		require.Equal(t, 1, r.code, "%v: %s", args, r.err)
		require.Contains(t, r.err, "an HTML page, not the API's answer", args)
		require.NotContains(t, r.err, "invalid character", args)
	}

	// An artifact may be an HTML report.
	r := runCLI(t, t.Context(), "artifacts", "download", testJobID, "report.html", "--server", url)
	require.Equal(t, 0, r.code, r.err)
	require.Contains(t, r.out, "<html>")
}

// A server URL with a password in it is refused without printing it: every
// error about the server (unreachable, timed out) named the URL, password
// and all, and the CLI sends its own token anyway.
func TestServerURLWithAPasswordIsRefused(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"tasks"},
		{"status", testJobID},
		{"login", "--email", "a@example.com", "--password-stdin"},
		{"logout"},
	} {
		r := runCLIIn(t, t.Context(), "pw\n", append(args, "--server", "http://admin:s3cret@127.0.0.1:1")...)
		require.Equal(t, 2, r.code, "%v: %s", args, r.err)
		require.Equal(t, "stroem: --server http://admin:xxxxx@127.0.0.1:1: a user or password in the URL is not supported; log in with `stroem login` or set STROEM_TOKEN\n", r.err, args)
	}
}

// A server URL without its scheme, the commonest slip, says what to write:
// with an IP address it was Go's "first path segment in URL cannot contain
// colon".
func TestServerURLWithoutScheme(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"127.0.0.1:8080", "localhost:8080", "stroem.example.com"} {
		r := runCLI(t, t.Context(), "tasks", "--server", u)
		require.Equal(t, 2, r.code, r.err)
		require.Equal(t, `stroem: --server "`+u+`": want a URL that starts with http:// or https:// (http://`+u+`)`+"\n", r.err)
	}
}

// A server URL whose port cannot be one is a usage error (exit 2), like
// the rest of a malformed URL: it was "server at … is unreachable:
// address 99999: invalid port", exit 1, as if the server were down.
func TestServerURLWithABadPort(t *testing.T) {
	t.Parallel()
	r := runCLI(t, t.Context(), "tasks", "--server", "http://127.0.0.1:99999")
	require.Equal(t, 2, r.code, r.err)
	require.Equal(t, `stroem: --server "http://127.0.0.1:99999": port 99999 is not 1 to 65535`+"\n", r.err)
}
