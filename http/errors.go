package http

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"sync"

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

// writeJSON writes v as JSON with status: the bytes apierror.WriteJSON
// writes (json.Marshal's and a newline), encoded into a pooled buffer and
// written at once, so a response costs no buffer of its own.
func writeJSON(w http.ResponseWriter, status int, v any) {
	buf, err := encodeJSON(v)
	if err != nil {
		apierror.WriteJSON(w, status, v) // answers the encoding error as before
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
	putBuffer(buf)
}

// emptyObject is the answer of a worker route that has nothing to say.
var emptyObject = []byte("{}\n")

// writeEmpty writes 200 and an empty JSON object (writeJSON of struct{}{}).
func writeEmpty(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(emptyObject)
}

var bufferPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// encodeJSON encodes v as json.Marshal does (HTML escaped), followed by a
// newline, into a buffer from the pool; the caller puts it back
// (putBuffer) once written.
func encodeJSON(v any) (*bytes.Buffer, error) {
	buf := bufferPool.Get().(*bytes.Buffer)
	buf.Reset()
	if err := json.NewEncoder(buf).Encode(v); err != nil {
		putBuffer(buf)
		return nil, err
	}
	return buf, nil
}

// putBuffer returns buf to the pool unless it grew large (a big listing
// must not stay pinned by the pool).
func putBuffer(buf *bytes.Buffer) {
	if buf.Cap() > 64<<10 {
		return
	}
	bufferPool.Put(buf)
}
