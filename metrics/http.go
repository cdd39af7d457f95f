package metrics

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/stroem/stroem"
)

// Instrument wraps the server's chi router: requests on /api/* count in
// stroem_http_requests_total and stroem_http_request_duration_seconds under
// their route pattern (never the raw path, which would explode the label
// set), and /hooks/* calls count in stroem_webhook_calls_total. Worker
// polling (/worker/*) is left out, as upstream does, to keep the request
// metrics about users.
//
// The wrapper sits outside the router (so no handler file needs an edit):
// it hands chi a routing context of its own, which chi fills in place of
// a pooled one, and reads the matched pattern from it afterwards.
func (m *Server) Instrument(next http.Handler) http.Handler {
	if m == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		api := strings.HasPrefix(r.URL.Path, "/api/")
		hook := strings.HasPrefix(r.URL.Path, "/hooks/")
		if !api && !hook {
			next.ServeHTTP(w, r)
			return
		}
		rctx := chi.NewRouteContext()
		r = r.WithContext(context.WithValue(r.Context(), chi.RouteCtxKey, rctx))
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		start := time.Now()
		next.ServeHTTP(sw, r)
		status := strconv.Itoa(sw.status)
		if hook {
			m.webhookCalls.WithLabelValues(status).Inc()
			return
		}
		route := rctx.RoutePattern()
		if route == "" {
			route = "unmatched"
		}
		m.httpRequests.WithLabelValues(r.Method, route, status).Inc()
		m.httpSeconds.WithLabelValues(route).Observe(time.Since(start).Seconds())
	})
}

// statusWriter remembers the status a handler wrote. Unwrap keeps
// http.ResponseController (flushes for SSE, deadlines) working through it.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(p)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Hub is the log hub as the HTTP server uses it (http.Hub).
type Hub interface {
	Publish(jobID string, lines []stroem.LogLine)
	ServeHTTP(w http.ResponseWriter, r *http.Request, jobID string)
}

// ObservedHub counts the lines and bytes published (every stored batch is
// published once) and the SSE clients connected.
type ObservedHub struct {
	Hub
	m *Server
}

// WrapHub returns h observed by m; with a nil m it returns h itself.
func WrapHub(h Hub, m *Server) Hub {
	if m == nil {
		return h
	}
	return &ObservedHub{Hub: h, m: m}
}

func (h *ObservedHub) Publish(jobID string, lines []stroem.LogLine) {
	var n int
	for _, l := range lines {
		n += len(l.Text)
	}
	h.m.logLines.Add(float64(len(lines)))
	h.m.logBytes.Add(float64(n))
	h.Hub.Publish(jobID, lines)
}

func (h *ObservedHub) ServeHTTP(w http.ResponseWriter, r *http.Request, jobID string) {
	h.m.sseClients.Inc()
	defer h.m.sseClients.Dec()
	h.Hub.ServeHTTP(w, r, jobID)
}
