package http

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stroem/stroem"
)

// benchWorkers answers a worker step's start and completion at once, so
// the benchmark measures what the HTTP layer costs around them.
type benchWorkers struct {
	Workers
	next *stroem.Assignment
}

func (benchWorkers) Authenticate(context.Context, string) (string, error) { return "w1", nil }
func (benchWorkers) Start(context.Context, string, string, stroem.StepStart) error {
	return nil
}
func (b benchWorkers) Complete(context.Context, string, string, stroem.Completion) (*stroem.Assignment, error) {
	return b.next, nil
}

// discardWriter is a response nobody reads (a recorder would measure its
// own buffering).
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) WriteHeader(int)             {}
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }

// BenchmarkWorkerStep is a step's two worker requests (start, then the
// completion that carries the next claim) through the whole router.
func BenchmarkWorkerStep(b *testing.B) {
	const job = "7f1c9a52-3b1e-4c8a-9d2f-0123456789ab"
	next := &stroem.Assignment{JobID: job, StepName: "b", Attempt: 1, ActionType: "shell", Workspace: "default",
		Revision: "0123456789abcdef", Input: map[string]any{}, LeaseMS: 30000}
	h := NewServer(Config{}, nil, benchWorkers{next: next}, nil, nil, nil, nil, nil).Handler()
	const startBody = `{"worker_id":"w1","attempt":1}`
	const completeBody = `{"worker_id":"w1","attempt":1,"exit_code":0,"output":null,"error":"","next":{"worker_id":"w1","capabilities":["shell"]}}`
	req := func(path, body string) *http.Request {
		r, _ := http.NewRequest(http.MethodPost, path, nil)
		r.Header.Set("Authorization", "Bearer stroem_wc_credential")
		r.Header.Set("Content-Type", "application/json")
		r.Body = io.NopCloser(strings.NewReader(body))
		r.ContentLength = int64(len(body))
		return r
	}
	start, complete := req("/worker/jobs/"+job+"/steps/a/start", startBody), req("/worker/jobs/"+job+"/steps/a/complete", completeBody)
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		start.Body = io.NopCloser(strings.NewReader(startBody))
		h.ServeHTTP(w, start)
		complete.Body = io.NopCloser(strings.NewReader(completeBody))
		h.ServeHTTP(w, complete)
		clear(w.h)
	}
}
