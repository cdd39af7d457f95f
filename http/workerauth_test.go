package http

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

// The worker token is a bearer token: the scheme is matched in any case
// (RFC 9110), as on the other worker routes; the token exactly.
func TestWorkerAuthScheme(t *testing.T) {
	t.Parallel()
	s := NewServer(Config{WorkerToken: "tok"}, nil, nil, nil, nil, nil, nil, nil)
	h := s.workerAuth(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	for header, want := range map[string]int{
		"Bearer tok":  http.StatusNoContent,
		"bearer tok":  http.StatusNoContent,
		"BEARER tok":  http.StatusNoContent,
		"Bearer TOK":  http.StatusUnauthorized,
		"Bearer tok ": http.StatusUnauthorized,
		"Basic tok":   http.StatusUnauthorized,
		"Bearer ":     http.StatusUnauthorized,
		"tok":         http.StatusUnauthorized,
		"":            http.StatusUnauthorized,
	} {
		r := httptest.NewRequest(http.MethodPost, "/worker/register", nil)
		if header != "" {
			r.Header.Set("Authorization", header)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		require.Equal(t, want, rec.Code, "%q", header)
	}
}
