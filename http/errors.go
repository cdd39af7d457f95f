package http

import (
	"log/slog"
	"net/http"

	"github.com/stroem/stroem/http/apierror"
)

// errorBody is every error response (see apierror.Body).
type errorBody = apierror.Body

// handlerFunc is a handler that returns its error instead of writing it.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// handle turns a handlerFunc into an http.HandlerFunc: a returned error is
// answered through the one error mapping (apierror.Write).
func handle(log *slog.Logger, fn handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := fn(w, r); err != nil {
			apierror.Write(w, r, log, err)
		}
	}
}

// writeError answers with err's status and message (apierror.Write).
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	apierror.Write(w, r, log, err)
}

// writeJSON writes v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) { apierror.WriteJSON(w, status, v) }
