package http

import (
	"bufio"
	"encoding/json"
	"net/http"
	"slices"
	"time"

	"github.com/stroem/stroem"
)

// logChunk is about how much a streamed log read writes at a time; each
// chunk gets its own write deadline (Config.WriteTimeout).
const logChunk = 32 << 10

// jobLogs streams a job's stored lines in one of three formats, reading the
// store page by page, so memory does not grow with the log:
//
//   - format=json (the default): {"logs": "<every line's text and \n>"}
//   - format=jsonl: one stroem.LogLine JSON object per line
//   - format=text: the texts, one per line (text/plain)
//
// A store error after the first bytes were sent cannot become an error
// status any more: the connection is aborted, so the client sees a broken
// response, never a complete-looking one.
func (s *Server) jobLogs(w http.ResponseWriter, r *http.Request) error {
	j, err := s.job(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	// One step's lines (?step=, or the path's step), or every step's.
	step := q.Get("step")
	if p := pathParam(r, "step"); p != "" { // GET /api/jobs/{id}/steps/{step}/logs
		step = p
	}
	// A step the job does not have is a 404 in both forms (a typo would
	// otherwise read as a step that printed nothing). Its stored lines are
	// all there are: unlike the live stream, this read cannot wait for a
	// loop instance to appear.
	if step != "" && !slices.ContainsFunc(j.Steps, func(st stroem.Step) bool { return st.StepName == step }) {
		return stroem.Errorf(stroem.CodeNotFound, "job %s has no step %q", j.ID, step)
	}
	format := q.Get("format")
	switch format {
	case "", "json":
		w.Header().Set("Content-Type", "application/json")
	case "jsonl":
		w.Header().Set("Content-Type", "application/x-ndjson")
	case "text":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	default:
		return stroem.Errorf(stroem.CodeInvalid, "format: want json, jsonl or text, got %q", format)
	}
	rc := http.NewResponseController(w)
	cw := &chunkWriter{w: w, rc: rc, timeout: s.cfg.WriteTimeout}
	bw := bufio.NewWriterSize(cw, logChunk)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	started := false
	start := func() {
		if !started {
			started = true
			w.WriteHeader(http.StatusOK)
			if format == "" || format == "json" {
				_, _ = bw.WriteString(`{"logs":"`)
			}
		}
	}
	// A for_each step prints nothing itself: the store gives its instances'
	// lines ("deploy[0]", …, each keeping its instance's name), read
	// through its indexes.
	err = s.logs.LogScan(r.Context(), j.ID, 0, step, func(l stroem.LogLine) error {
		start()
		switch format {
		case "jsonl":
			return enc.Encode(l)
		case "text":
			_, _ = bw.WriteString(l.Text)
			return bw.WriteByte('\n')
		default:
			b, _ := json.Marshal(l.Text + "\n") // a string: cannot fail
			_, err := bw.Write(b[1 : len(b)-1])
			return err
		}
	})
	if err != nil {
		if !started {
			return err
		}
		if r.Context().Err() == nil && cw.err == nil {
			s.log.Error("log read failed mid-stream", "job_id", j.ID, "err", err)
		}
		panic(http.ErrAbortHandler)
	}
	start()
	if format == "" || format == "json" {
		_, _ = bw.WriteString("\"}\n")
	}
	if err := bw.Flush(); err != nil {
		panic(http.ErrAbortHandler)
	}
	return nil
}

// chunkWriter writes through to the client, moving the write deadline
// before each write, so a long log is cut off only when the client stops
// reading, not because it is long.
type chunkWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	err     error
}

func (c *chunkWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	_ = c.rc.SetWriteDeadline(time.Now().Add(c.timeout))
	n, err := c.w.Write(p)
	c.err = err
	return n, err
}
