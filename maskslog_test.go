package stroem

import (
	"bytes"
	"errors"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMaskHandler(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	h := NewMaskHandler(slog.NewTextHandler(&buf, nil))
	log := slog.New(h)
	log.Info("before hunter22", "k", "hunter22")
	require.Contains(t, buf.String(), "hunter22", "nothing is masked before values are added")
	buf.Reset()

	h.Add([]string{"hunter22"})
	h.Add([]string{"hunter22"}) // again: no change
	log.With("job", "x-hunter22").WithGroup("g").Info("msg hunter22",
		"err", errors.New("exit 1: hunter22"), "s", "HUNTER22", "n", 7,
		slog.Group("sub", "v", "aHVudGVyMjI="))
	out := buf.String()
	require.NotContains(t, out, "hunter22")
	require.NotContains(t, out, "HUNTER22")
	require.NotContains(t, out, "aHVudGVyMjI")
	require.Contains(t, out, "msg ***")
	require.Contains(t, out, "job=x-***")
	require.Contains(t, out, `g.err="exit 1: ***"`)
	require.Contains(t, out, "g.n=7")
	require.True(t, h.Enabled(t.Context(), slog.LevelInfo))
}
