package runner

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// countingHandler counts the handlers derived from it with WithAttrs.
type countingHandler struct {
	slog.Handler
	derived *int
}

func (c countingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	*c.derived++
	return countingHandler{c.Handler.WithAttrs(attrs), c.derived}
}

// A logger with lazy attributes writes what log.With writes, and derives
// no handler while nothing is logged at an enabled level.
func TestWithLazyAttrsAsWith(t *testing.T) {
	t.Parallel()
	var eager, lazy bytes.Buffer
	opts := &slog.HandlerOptions{Level: slog.LevelInfo, ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{} // the two records are written at different times
		}
		return a
	}}
	derived := 0
	e := slog.New(slog.NewTextHandler(&eager, opts)).With("job_id", "j1", "step", "s", "attempt", 2)
	l := withLazyAttrs(slog.New(countingHandler{slog.NewTextHandler(&lazy, opts), &derived}),
		slog.String("job_id", "j1"), slog.String("step", "s"), slog.Int("attempt", 2))

	for _, log := range []*slog.Logger{e, l} {
		log.Debug("not enabled", "x", 1)
	}
	require.Zero(t, derived, "nothing logged: no handler derived")
	require.Zero(t, lazy.Len())

	for _, log := range []*slog.Logger{e, l} {
		log.Info("step finished", "exit_code", 0)
		log.Warn("twice", "n", 2)
		log.With("scope", "task").Warn("derived", "err", "boom")
		log.WithGroup("g").Info("grouped", "k", "v")
	}
	require.Equal(t, 2, derived, "the step's attributes once, and the With of the test")
	require.Equal(t, eager.String(), lazy.String())
	require.Equal(t, 4, strings.Count(lazy.String(), "job_id=j1 step=s attempt=2"), lazy.String())
	require.True(t, l.Enabled(context.Background(), slog.LevelInfo))
	require.False(t, l.Enabled(context.Background(), slog.LevelDebug))
}
