package runner

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/http/client"
)

const maskTestSecret = "pa55-w0rd/with+chars"

// Everything a step prints passes the masker on the worker: its log lines
// (also a secret straddling the line-split boundary), the quoted stderr tail
// of a failure and a malformed OUTPUT line.
func TestShellMasksOutput(t *testing.T) {
	t.Parallel()
	r := newShell(t)
	step := Step{
		Spec: stroem.StepSpec{
			Cmd: `printf '%s\n' "$S"; printf '%s' "$S" | base64; printf '%s' "$S" | od -An -tx1 | tr -d ' \n'; echo;` +
				// A secret straddling the MaxLineBytes boundary.
				` head -c $((65536 - 7)) /dev/zero | tr '\0' x; printf '%s\n' "$S";` +
				` echo "OUTPUT: {\"leak\": \"$S\"}"; echo "fail $S" >&2; exit 3`,
			Env: map[string]string{"S": maskTestSecret},
		},
		Mask: stroem.NewMasker([]string{maskTestSecret}),
	}
	res, c := run(t, r, step)
	require.Equal(t, 3, res.ExitCode)
	require.Contains(t, res.Error, "fail ***")
	all := strings.Join(append(c.texts(stroem.Stdout), c.texts(stroem.Stderr)...), "\n")
	require.NotContains(t, all, maskTestSecret)
	require.NotContains(t, all, base64.StdEncoding.EncodeToString([]byte(maskTestSecret)))
	for _, half := range []string{maskTestSecret[:7], maskTestSecret[7:]} {
		require.NotContains(t, all, half+"\n", "a secret cut at the line limit leaks no half")
	}
	out := c.texts(stroem.Stdout)
	require.Equal(t, "***", out[0])
	require.Equal(t, "***", out[1])
	require.Equal(t, "***", out[2])
	long := out[3] + out[4]
	require.Equal(t, strings.Repeat("x", 65536-7)+"***", long)
	require.LessOrEqual(t, len(out[3]), MaxLineBytes)
	require.Equal(t, `OUTPUT: {"leak": "***"}`, out[5])
}

func TestShellMasksSkippedOutputQuote(t *testing.T) {
	t.Parallel()
	r := newShell(t)
	res, c := run(t, r, Step{
		Spec: stroem.StepSpec{Cmd: `echo "OUTPUT: {$S"`, Env: map[string]string{"S": maskTestSecret}},
		Mask: stroem.NewMasker([]string{maskTestSecret}),
	})
	require.True(t, res.Succeeded(), res.Error)
	require.Equal(t, []string{"stroem: skipped an OUTPUT line that is not JSON (the last: {***)"}, c.texts(stroem.Stderr),
		"the step's log quotes the skipped line masked")
}

// maskPieces keeps every secret occurrence inside one piece, wherever the
// splitter cut, and never emits more than it was given.
func TestMaskPiecesStraddle(t *testing.T) {
	t.Parallel()
	m := stroem.NewMasker([]string{"abcdefgh"})
	for cut := 1; cut < 30; cut++ {
		line := strings.Repeat("-", 20) + "abcdefgh" + strings.Repeat("+", 20) + "abcdefgh"
		var got strings.Builder
		ends := 0
		emit := maskPieces(m, 16, func(p []byte, end bool) {
			got.Write(p)
			if end {
				ends++
			}
		})
		// Feed the line cut at every offset, as splitLines would.
		for i := 0; i < len(line); i += cut {
			j := min(i+cut, len(line))
			emit([]byte(line[i:j]), j == len(line))
		}
		require.Equal(t, strings.Repeat("-", 20)+"***"+strings.Repeat("+", 20)+"***", got.String(), "cut %d", cut)
		require.Equal(t, 1, ends)
	}
}

func TestMaskResult(t *testing.T) {
	t.Parallel()
	m := stroem.NewMasker([]string{maskTestSecret})
	res := maskResult(m, Result{Error: "x " + maskTestSecret, Output: map[string]any{"k": maskTestSecret}})
	require.Equal(t, "x ***", res.Error)
	require.Equal(t, map[string]any{"k": "***"}, res.Output)
	var lines []stroem.PushLine
	maskSink(m, func(l stroem.PushLine) { lines = append(lines, l) })(stroem.PushLine{Text: maskTestSecret})
	require.Equal(t, "***", lines[0].Text)
	// Nothing to mask: the sink is passed through as is.
	require.Equal(t, Result{Error: "e"}, maskResult(nil, Result{Error: "e"}))
}

// A long line without secrets is cut exactly where splitLines cut it, also
// when masking is on: a line of k·max bytes stays k pieces.
func TestMaskPiecesKeepsCuts(t *testing.T) {
	t.Parallel()
	m := stroem.NewMasker([]string{"abcdefgh"})
	var sizes []int
	var ends []bool
	emit := maskPieces(m, 16, func(p []byte, end bool) { sizes, ends = append(sizes, len(p)), append(ends, end) })
	for range 3 {
		emit([]byte(strings.Repeat("x", 16)), false)
	}
	emit(nil, true)
	require.Equal(t, []int{16, 16, 16}, sizes)
	require.Equal(t, []bool{false, false, true}, ends)
}

// A step's masker hides that step's secrets: the one built for the previous
// step serves only a step with the same values.
func TestWorkerMaskerPerValues(t *testing.T) {
	t.Parallel()
	c, err := client.New("http://127.0.0.1:1")
	require.NoError(t, err)
	w := &Worker{c: c, cfg: WorkerConfig{MaskExtra: []string{"extra-secret"}}}
	a := stroem.Assignment{Mask: []string{"first-secret"}}
	m1 := w.masker(a)
	require.Same(t, m1, w.masker(a), "the same values: the same masker")
	require.Equal(t, "*** ***", m1.Mask("first-secret extra-secret"))
	m2 := w.masker(stroem.Assignment{Mask: []string{"second-secret"}})
	require.NotSame(t, m1, m2)
	require.Equal(t, "*** *** first-secret", m2.Mask("second-secret extra-secret first-secret"))
	require.Equal(t, "***", w.masker(a).Mask("first-secret"))
}

// Values that join to the same text are still other values: a secret
// holding a NUL byte gets a masker of its own, which hides its encodings.
func TestWorkerMaskerValuesNotJoined(t *testing.T) {
	t.Parallel()
	c, err := client.New("http://127.0.0.1:1")
	require.NoError(t, err)
	w := &Worker{c: c}
	m1 := w.masker(stroem.Assignment{Mask: []string{"first-secret", "second-secret"}})
	secret := "first-secret\x00second-secret"
	m2 := w.masker(stroem.Assignment{Mask: []string{secret}})
	require.NotSame(t, m1, m2)
	require.Equal(t, "***", m2.Mask(base64.StdEncoding.EncodeToString([]byte(secret))))
}
