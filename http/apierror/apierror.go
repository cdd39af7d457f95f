// Package apierror is the one mapping of Strøm's errors to HTTP answers,
// shared by the API handlers (package http) and the log stream
// (http/logstream): a stroem error code becomes a status, the body is
// {"error": "…", "details": ["…"]}, and an internal error is logged and
// shown only as "internal error".
package apierror

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/stroem/stroem"
)

// Body is every error response: {"error": "…", "details": ["…"]}.
type Body struct {
	Error   string   `json:"error"`
	Details []string `json:"details,omitempty"`
}

// Status is the one place an error becomes an HTTP status.
func Status(err error) int {
	if errors.Is(err, context.DeadlineExceeded) {
		return http.StatusServiceUnavailable
	}
	switch stroem.ErrorCode(err) {
	case stroem.CodeInvalid:
		return http.StatusBadRequest
	case stroem.CodeUnauthorized:
		return http.StatusUnauthorized
	case stroem.CodeForbidden:
		return http.StatusForbidden
	case stroem.CodeUnsupported:
		return http.StatusUnsupportedMediaType
	case stroem.CodeRateLimited:
		return http.StatusTooManyRequests
	case stroem.CodeNotFound:
		return http.StatusNotFound
	case stroem.CodeConflict:
		return http.StatusConflict
	case stroem.CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case stroem.CodeUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// Write answers with err's status and message. Internal errors are logged
// and shown as "internal error"; the client never sees internals. Nothing
// is written when the client already went away.
func Write(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	status := Status(err)
	body := Body{Error: stroem.ErrorMessage(err), Details: stroem.ErrorDetails(err)}
	switch {
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		return // the client went away; nobody reads the answer
	case status == http.StatusServiceUnavailable && body.Error == "internal error":
		body.Error = "service unavailable, try again"
		log.Warn("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	case status >= 500:
		log.Error("request failed", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	}
	WriteJSON(w, status, body)
}

// WriteJSON writes v as JSON with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"internal error: encode response"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
