package apierror

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
)

func TestStatus(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		err  error
		want int
	}{
		{stroem.Invalid("bad"), http.StatusBadRequest},
		{stroem.Errorf(stroem.CodeUnauthorized, "who"), http.StatusUnauthorized},
		{fmt.Errorf("wrapped: %w", stroem.Errorf(stroem.CodeNotFound, "gone")), http.StatusNotFound},
		{stroem.Errorf(stroem.CodeConflict, "stale"), http.StatusConflict},
		{stroem.Errorf(stroem.CodeTooLarge, "big"), http.StatusRequestEntityTooLarge},
		{stroem.Errorf(stroem.CodeUnavailable, "down"), http.StatusServiceUnavailable},
		{context.DeadlineExceeded, http.StatusServiceUnavailable},
		{errors.New("boom"), http.StatusInternalServerError},
	} {
		require.Equal(t, c.want, Status(c.err), "%v", c.err)
	}
}

// A client mistake is answered with its message and details; an internal
// error never shows its text.
func TestWrite(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest(http.MethodGet, "/x", nil)
	log := slog.New(slog.DiscardHandler)

	w := httptest.NewRecorder()
	Write(w, r, log, stroem.Invalid("bad input", "a: required"))
	require.Equal(t, http.StatusBadRequest, w.Code)
	require.Equal(t, "application/json", w.Header().Get("Content-Type"))
	var body Body
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &body))
	require.Equal(t, Body{Error: "bad input", Details: []string{"a: required"}}, body)

	w = httptest.NewRecorder()
	Write(w, r, log, errors.New("password=hunter2 leaked"))
	require.Equal(t, http.StatusInternalServerError, w.Code)
	require.NotContains(t, w.Body.String(), "hunter2")
	require.JSONEq(t, `{"error": "internal error"}`, w.Body.String())

	w = httptest.NewRecorder()
	Write(w, r, log, fmt.Errorf("query: %w", context.DeadlineExceeded))
	require.Equal(t, http.StatusServiceUnavailable, w.Code)
	require.JSONEq(t, `{"error": "service unavailable, try again"}`, w.Body.String())

	// The client went away: nothing is written.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w = httptest.NewRecorder()
	Write(w, r.WithContext(ctx), log, context.Canceled)
	require.Zero(t, w.Body.Len())
}
