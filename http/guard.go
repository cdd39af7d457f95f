package http

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/stroem/stroem"
)

// Default HTTP timeouts (SPEC §9, docs/operations.md "HTTP timeouts"). The
// server applies them to every connection; routes that stay open by design
// (SSE, the claim long poll, streamed log reads) move their write deadline
// as they make progress.
const (
	// DefaultReadHeaderTimeout bounds reading a request's headers.
	DefaultReadHeaderTimeout = 10 * time.Second
	// DefaultReadTimeout bounds reading a whole request, body included: a
	// client that sends its body slower is cut off.
	DefaultReadTimeout = 30 * time.Second
	// DefaultWriteTimeout bounds writing a response (for streams: each
	// chunk of it).
	DefaultWriteTimeout = 60 * time.Second
	// DefaultIdleTimeout bounds a kept-alive connection's wait for its next
	// request.
	DefaultIdleTimeout = 2 * time.Minute
)

// checkText refuses, with 400, a request whose path, query or header values
// hold a NUL byte or invalid UTF-8: such text can never name anything, and
// PostgreSQL refuses it (NUL in text, invalid UTF-8) with an error that
// would otherwise surface as a 500. JSON bodies are checked by decodeJSON.
func (s *Server) checkText(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := requestTextError(r); err != nil {
			writeError(w, r, s.log, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func requestTextError(r *http.Request) error {
	if !cleanText(r.URL.Path) {
		return stroem.Invalid("the request path holds a NUL byte or invalid UTF-8")
	}
	if r.URL.RawQuery != "" {
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			return stroem.Errorf(stroem.CodeInvalid, "malformed query string: %v", err)
		}
		for k, vs := range q {
			if !cleanText(k) {
				return stroem.Invalid("a query parameter name holds a NUL byte or invalid UTF-8")
			}
			for _, v := range vs {
				if !cleanText(v) {
					return stroem.Errorf(stroem.CodeInvalid, "query parameter %q holds a NUL byte or invalid UTF-8", k)
				}
			}
		}
	}
	for k, vs := range r.Header {
		for _, v := range vs {
			if !cleanText(v) {
				return stroem.Errorf(stroem.CodeInvalid, "header %q holds a NUL byte or invalid UTF-8", k)
			}
		}
	}
	return nil
}

// cleanText reports whether s is valid UTF-8 without NUL.
func cleanText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// checkJSONText refuses a JSON body holding invalid UTF-8 or a NUL
// character (raw, or escaped as \u0000): decoding would silently replace
// the first and keep the second, which PostgreSQL refuses.
func checkJSONText(b []byte) error {
	if !utf8.Valid(b) {
		return stroem.Invalid("request body is not valid UTF-8")
	}
	if bytes.IndexByte(b, 0) >= 0 {
		return stroem.Invalid("request body holds a NUL byte")
	}
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		// b[i] starts an escape; b[i+1] is escaped whatever it is.
		if i+5 < len(b) && (b[i+1] == 'u') && string(b[i+2:i+6]) == "0000" {
			return stroem.Invalid(`request body holds a NUL character (\u0000)`)
		}
		i++
	}
	return nil
}

// deadlines gives each request's body its read deadline and then lifts it.
// The server's ReadTimeout covers headers and body; once the body has been
// read (at once for a request without one) the read deadline is cleared,
// because net/http cancels a request's context when the connection's read
// deadline passes while the handler runs — which would end SSE streams and
// long polls — and the write deadline bounds the rest.
func (s *Server) deadlines(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
		} else {
			r.Body = &deadlineBody{ReadCloser: r.Body, w: w}
		}
		next.ServeHTTP(w, r)
	})
}

// deadlineBody clears the read deadline once the body is read to its end.
type deadlineBody struct {
	io.ReadCloser
	w    http.ResponseWriter // its controller is made only at the end (one allocation less per request)
	done bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && !b.done {
		if errors.Is(err, io.EOF) {
			b.done = true
			_ = http.NewResponseController(b.w).SetReadDeadline(time.Time{})
		} else if isTimeout(err) {
			err = stroem.Errorf(stroem.CodeInvalid, "request body not received in time: %v", err)
		}
	}
	return n, err
}

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}

// extendWrite moves the response's write deadline d from now (for routes
// that stay open longer than the server's WriteTimeout).
func extendWrite(w http.ResponseWriter, d time.Duration) {
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(d))
}
