package runner

import (
	"context"
	"log/slog"
	"sync"
)

// withLazyAttrs returns log with attrs added to its records, like
// log.With, but derives the handler that carries them only when a record
// at an enabled level is handled. Each step gets such a logger (job_id,
// step, attempt) and most steps log nothing at the enabled levels, while
// deriving the handler (the masking handler masks the values, the text
// handler formats them) was 2.5% of the worker's CPU per step in the
// bench (issue 23).
func withLazyAttrs(log *slog.Logger, attrs ...slog.Attr) *slog.Logger {
	return slog.New(&lazyAttrs{base: log.Handler(), attrs: attrs})
}

// lazyAttrs is the handler of withLazyAttrs.
type lazyAttrs struct {
	base  slog.Handler
	attrs []slog.Attr
	once  sync.Once
	h     slog.Handler // base.WithAttrs(attrs), once needed
}

func (l *lazyAttrs) handler() slog.Handler {
	l.once.Do(func() { l.h = l.base.WithAttrs(l.attrs) })
	return l.h
}

// Enabled implements slog.Handler: the attributes change nothing of it.
func (l *lazyAttrs) Enabled(ctx context.Context, level slog.Level) bool {
	return l.base.Enabled(ctx, level)
}

// Handle implements slog.Handler.
func (l *lazyAttrs) Handle(ctx context.Context, r slog.Record) error {
	return l.handler().Handle(ctx, r)
}

// WithAttrs implements slog.Handler.
func (l *lazyAttrs) WithAttrs(attrs []slog.Attr) slog.Handler {
	return l.handler().WithAttrs(attrs)
}

// WithGroup implements slog.Handler.
func (l *lazyAttrs) WithGroup(name string) slog.Handler {
	return l.handler().WithGroup(name)
}
