package stroem

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
)

// MaskHandler is a slog.Handler that masks every record (message and
// attributes, errors included) before the handler it wraps sees it: the
// server's and the worker's own logs follow the same masking rule as step
// logs. The values it masks grow with Add (the server adds each task's
// secrets when it compiles the task, a worker those of every step it runs).
type MaskHandler struct {
	next  slog.Handler
	state *maskState
}

type maskState struct {
	mu     sync.Mutex
	values map[string]bool
	m      atomic.Pointer[Masker]
}

// NewMaskHandler wraps next; it masks nothing until values are added.
func NewMaskHandler(next slog.Handler) *MaskHandler {
	return &MaskHandler{next: next, state: &maskState{values: map[string]bool{}}}
}

// Add adds secret values to mask from now on.
func (h *MaskHandler) Add(values []string) {
	s := h.state
	s.mu.Lock()
	defer s.mu.Unlock()
	grew := false
	for _, v := range values {
		if !s.values[v] {
			s.values[v], grew = true, true
		}
	}
	if !grew {
		return
	}
	all := make([]string, 0, len(s.values))
	for v := range s.values {
		all = append(all, v)
	}
	s.m.Store(NewMasker(all))
}

// Enabled implements slog.Handler.
func (h *MaskHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

// Handle implements slog.Handler.
func (h *MaskHandler) Handle(ctx context.Context, r slog.Record) error {
	m := h.state.m.Load()
	if m.Len() == 0 {
		return h.next.Handle(ctx, r)
	}
	out := slog.NewRecord(r.Time, r.Level, m.Mask(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(maskAttr(m, a))
		return true
	})
	return h.next.Handle(ctx, out)
}

// WithAttrs implements slog.Handler; the attributes are masked with the
// values known now.
func (h *MaskHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	m := h.state.m.Load()
	masked := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		masked[i] = maskAttr(m, a)
	}
	return &MaskHandler{next: h.next.WithAttrs(masked), state: h.state}
}

// WithGroup implements slog.Handler.
func (h *MaskHandler) WithGroup(name string) slog.Handler {
	return &MaskHandler{next: h.next.WithGroup(name), state: h.state}
}

func maskAttr(m *Masker, a slog.Attr) slog.Attr {
	if m.Len() == 0 {
		return a
	}
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, m.Mask(v.String()))
	case slog.KindGroup:
		g := v.Group()
		out := make([]any, len(g))
		for i, e := range g {
			out[i] = maskAttr(m, e)
		}
		return slog.Group(a.Key, out...)
	case slog.KindAny:
		var s string
		switch x := v.Any().(type) {
		case error:
			s = x.Error()
		case fmt.Stringer:
			s = x.String()
		default:
			s = fmt.Sprint(x)
		}
		if ms := m.Mask(s); ms != s {
			return slog.String(a.Key, ms)
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}
