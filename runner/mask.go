package runner

import (
	"slices"

	"github.com/stroem/stroem"
)

// maskPieces masks the pieces splitLines cuts a stream into before they go
// on (to the log, the OUTPUT and stderr trackers). Pieces of one long line
// are re-cut so that no secret straddles two of them: the last MaxLen()-1
// bytes of a piece that does not end its line are carried into the next
// one, and the cut is moved before any secret occurrence it would split.
// With nothing to mask it returns next itself.
func maskPieces(m *stroem.Masker, max int, next func(p []byte, end bool)) func([]byte, bool) {
	if m.Len() == 0 {
		return next
	}
	hold := min(m.MaxLen()-1, max/2)
	var carry []byte
	return func(p []byte, end bool) {
		buf := p
		if len(carry) > 0 {
			buf = append(carry, p...)
		}
		if end {
			next([]byte(m.Mask(string(buf))), true)
			carry = carry[:0]
			return
		}
		at := len(buf) - hold
		if at <= 0 {
			carry = append(carry[:0:0], buf...)
			return
		}
		if safe := m.SafeCut(buf, at); safe > 0 || len(buf) < 2*max {
			at = safe // 0: an occurrence starts the buffer; wait for its end
		} // else a pathological run of overlapping occurrences: cut anyway
		at = runeBoundary(buf[:at])
		if at == 0 {
			carry = append(carry[:0:0], buf...)
			return
		}
		next([]byte(m.Mask(string(buf[:at]))), false)
		carry = append(carry[:0:0], buf[at:]...)
	}
}

// maskResult masks what a step's result carries to the server and into the
// worker's own log.
func maskResult(m *stroem.Masker, res Result) Result {
	if m.Len() == 0 {
		return res
	}
	res.Error = m.Mask(res.Error)
	res.Output = m.MaskMap(res.Output)
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
