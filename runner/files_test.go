package runner

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
)

// STATE: and GLOBAL_STATE: lines of stdout are deep-merged, last write
// winning; other lines and stderr pass untouched; every line goes on.
func TestStateLinesMerge(t *testing.T) {
	t.Parallel()
	f := &stepFiles{}
	var passed []string
	sink := f.watch(func(l stroem.PushLine) { passed = append(passed, l.Text) })
	for _, l := range []stroem.PushLine{
		{Stream: stroem.Stdout, Text: `STATE: {"cursor": "page-1", "total_pages": 50, "meta": {"a": 1, "b": 2}}`},
		{Stream: stroem.Stdout, Text: `STATE: {"cursor": "page-2", "meta": {"b": 3}}`},
		{Stream: stroem.Stdout, Text: `GLOBAL_STATE: {"token": "t"}`},
		{Stream: stroem.Stderr, Text: `STATE: {"ignored": true}`},
		{Stream: stroem.Stdout, Text: `not state`},
	} {
		sink(l)
	}
	require.Len(t, passed, 5)
	require.Equal(t, map[string]any{"cursor": "page-2", "total_pages": float64(50), "meta": map[string]any{"a": float64(1), "b": float64(3)}}, f.state)
	require.Equal(t, map[string]any{"token": "t"}, f.globalState)
	require.Empty(t, f.badLine)

	sink(stroem.PushLine{Stream: stroem.Stdout, Text: `STATE: [1, 2]`})
	require.Equal(t, "STATE", f.badLine, "not an object: told in the log, state kept")
	require.Equal(t, "page-2", f.state["cursor"])
}
