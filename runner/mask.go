package runner

import (
	"slices"

	"github.com/stroem/stroem"
)

// maskPieces masks the pieces splitLines cuts a stream into before they go
// on (to the log, the OUTPUT and stderr trackers). A long line's pieces are
// held until enough of what follows is known to see every secret that
// starts in them (MaxLen()-1 bytes), then re-cut at max bytes, or before a
// secret occurrence the cut would split: no secret straddles two pieces, and
// a line without secrets is cut exactly where splitLines cut it. With
// nothing to mask it returns next itself.
func maskPieces(m *stroem.Masker, max int, next func(p []byte, end bool)) func([]byte, bool) {
	if m.Len() == 0 {
		return next
	}
	hold := min(m.MaxLen()-1, max/2)
	var buf []byte // the unsent part of the current line
	return func(p []byte, end bool) {
		buf = append(buf, p...)
		for len(buf) > max && (end || len(buf) >= max+hold) {
			cut := m.SafeCut(buf, max)
			if cut = runeBoundary(buf[:cut]); cut == 0 {
				cut = runeBoundary(buf[:max]) // overlapping occurrences from the start: cut anyway
			}
			next([]byte(m.Mask(string(buf[:cut]))), false)
			buf = append(buf[:0], buf[cut:]...)
		}
		if end {
			next([]byte(m.Mask(string(buf))), true)
			buf = buf[:0]
		}
	}
}

// maskResult masks what a step's result carries to the server and into the
// worker's own log.
func maskResult(m *stroem.Masker, res Result) Result {
	if m.Len() == 0 {
		return res
	}
	res.Error = m.Mask(res.Error)
	res.Output = m.MaskValue(res.Output)
	return res
}

// maskSink masks every line a runner sends: ShellRunner masks before it
// splits lines, any other Runner at least line by line.
func maskSink(m *stroem.Masker, sink func(stroem.PushLine)) func(stroem.PushLine) {
	if m.Len() == 0 {
		return sink
	}
	return func(l stroem.PushLine) {
		l.Text = m.Mask(l.Text)
		sink(l)
	}
}

// maskValues is what a step's output is masked with: its own secrets, the
// configured extras and the worker's own credential.
func (w *Worker) maskValues(a stroem.Assignment) []string {
	out := append(slices.Clip(a.Mask), w.cfg.MaskExtra...)
	if cred := w.c.Credential(); cred != "" {
		out = append(out, cred)
	}
	return out
}

// masker is the masker of maskValues(a). Building one encodes every value
// in a dozen ways; most steps are masked with the same values (the
// worker's credential and extras, their task's secrets), so the last one
// built is kept and shared (a Masker is immutable and safe for concurrent
// use).
func (w *Worker) masker(a stroem.Assignment) *stroem.Masker {
	values := w.maskValues(a)
	w.maskMu.Lock()
	defer w.maskMu.Unlock()
	// Compared value by value: joined, a secret holding the separator
	// would match the values it splits into, and get their masker.
	if w.maskLast == nil || !slices.Equal(w.maskFor, values) {
		w.maskFor, w.maskLast = slices.Clone(values), stroem.NewMasker(values)
	}
	return w.maskLast
}
