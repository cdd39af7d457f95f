package storetest

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem/persistence"
)

func testSanitizing(t *testing.T, open func(t *testing.T) persistence.Store) {
	s := open(t)
	ctx := context.Background()
	nj := NewJob(Step{Name: "a"})
	nj.Job.Input = map[string]any{
		"nul":         "a\u0000b",
		"bad":         "x\xffy",
		"key\u0000":   1,
		"key\xfe":     true,
		"nested":      map[string]any{"list": []any{"q\u0000", map[string]any{"k\u0000": "\xff"}}},
		"strings":     []string{"s\u0000"},
		"clean":       "ok",
		"escaped nul": `\u0000 stays literal`,
		"unicode":     "Strøm ✓ 日本",
	}
	nj.Steps[0].Input = map[string]any{"in": "\u0000"}
	nj.Steps[0].ErrorMessage = "err\u0000\xff"
	nj.SnapshotID, nj.SnapshotBody = "snap-nul", []byte(`{"cmd": "echo \u0000"}`)
	require.NoError(t, s.JobInsert(ctx, nj))

	j := jobGet(t, s, nj.Job.ID)
	require.Equal(t, map[string]any{
		"nul":         `a\0b`,
		"bad":         "x\uFFFDy",
		`key\0`:       float64(1),
		"key\uFFFD":   true,
		"nested":      map[string]any{"list": []any{`q\0`, map[string]any{`k\0`: "\uFFFD"}}},
		"strings":     []any{`s\0`},
		"clean":       "ok",
		"escaped nul": `\u0000 stays literal`,
		"unicode":     "Strøm ✓ 日本",
	}, j.Input)
	require.Equal(t, map[string]any{"in": `\0`}, j.Steps[0].Input)
	require.Equal(t, "err\\0\uFFFD", j.Steps[0].ErrorMessage)
	body, err := s.SnapshotGet(ctx, "snap-nul")
	require.NoError(t, err)
	require.JSONEq(t, `{"cmd": "echo \\0"}`, string(body))

	// Outputs and errors written by an update are sanitized too, and the
	// returned state is the state as written.
	c := ClaimOne(t, s, "w1")
	st := report(t, s, nj.Job.ID, Report{
		Step: "a", Worker: "w1", Attempt: c.Attempt, ExitCode: 1, Err: "boom\u0000\xff",
	})
	require.Equal(t, "boom\\0\uFFFD", st.Find("a").ErrorMessage)
	update(t, s, nj.Job.ID, func(st *persistence.JobState) {
		st.Mut("a").Output = map[string]any{"out\u0000": []any{"\u0000"}}
		st.Job.Output = map[string]any{"a": map[string]any{"x": "\xff\u0000"}}
	})
	j = jobGet(t, s, nj.Job.ID)
	require.Equal(t, map[string]any{`out\0`: []any{`\0`}}, j.Steps[0].Output)
	require.Equal(t, map[string]any{"a": map[string]any{"x": "\uFFFD\\0"}}, j.Output)
	require.Equal(t, "boom\\0\uFFFD", j.Steps[0].Attempts[0].ErrorMessage)
}
