package stroem

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const testSecret = "s3cr3t/Value+with&odd=chars\"<x>"

// Every common encoding of a secret is masked, also inside longer encoded
// text at any offset (what `echo "x$S" | base64` prints).
func TestMaskEncodings(t *testing.T) {
	t.Parallel()
	m := NewMasker([]string{testSecret})
	jsonEsc, _ := json.Marshal(testSecret)
	forms := map[string]string{
		"raw":        testSecret,
		"upper":      strings.ToUpper(testSecret),
		"lower":      strings.ToLower(testSecret),
		"hex":        hex.EncodeToString([]byte(testSecret)),
		"HEX":        strings.ToUpper(hex.EncodeToString([]byte(testSecret))),
		"b64":        base64.StdEncoding.EncodeToString([]byte(testSecret)),
		"b64url":     base64.URLEncoding.EncodeToString([]byte(testSecret)),
		"b64 nl":     base64.StdEncoding.EncodeToString([]byte(testSecret + "\n")),
		"b64 off1":   base64.StdEncoding.EncodeToString([]byte("x" + testSecret + "\n")),
		"b64 off2":   base64.StdEncoding.EncodeToString([]byte("xy" + testSecret)),
		"b64url off": base64.RawURLEncoding.EncodeToString([]byte("key=" + testSecret)),
		"query":      url.QueryEscape(testSecret),
		"path":       url.PathEscape(testSecret),
		"json":       string(jsonEsc),
	}
	for name, f := range forms {
		got := m.Mask("before " + f + " after")
		require.True(t, strings.HasPrefix(got, "before "), name)
		require.Contains(t, got, MaskText, name)
		require.NotContains(t, got, f, name)
		// What remains of an encoded form is the encoded text around the
		// secret ("key=" is 6 characters) and the one or two characters
		// that depend on it and on the secret.
		rest := strings.TrimSuffix(strings.TrimPrefix(got, "before "), " after")
		require.LessOrEqual(t, len(strings.ReplaceAll(rest, MaskText, "")), 8, "%s: %q", name, got)
	}
	require.Equal(t, "nothing here", m.Mask("nothing here"))
	require.Equal(t, 1, m.Len())
	require.Equal(t, []string{testSecret}, m.Values())
}

func TestMaskShortAndNil(t *testing.T) {
	t.Parallel()
	m := NewMasker([]string{"ab", "", "  "})
	require.Equal(t, 0, m.Len())
	require.Equal(t, "ab", m.Mask("ab"))
	var nilM *Masker
	require.Equal(t, "x", nilM.Mask("x"))
	require.Equal(t, 5, nilM.SafeCut([]byte("abcdefg"), 5))
	require.Nil(t, nilM.Contained("x"))
	require.Equal(t, map[string]any{"a": "b"}, nilM.MaskMap(map[string]any{"a": "b"}))
}

func TestMaskSafeCut(t *testing.T) {
	t.Parallel()
	m := NewMasker([]string{"topsecret"})
	b := []byte("0123456789topsecret0123")
	// A cut inside the occurrence moves before it.
	require.Equal(t, 10, m.SafeCut(b, 14))
	// A cut outside any occurrence stays.
	require.Equal(t, 10, m.SafeCut(b, 10))
	require.Equal(t, 19, m.SafeCut(b, 19))
	// No cut > 0 avoids it.
	require.Equal(t, 0, m.SafeCut([]byte("topsecret"), 4))
	require.Equal(t, len("topsecret")*2, m.MaxLen()) // hex is the longest form
}

func TestMaskValue(t *testing.T) {
	t.Parallel()
	m := NewMasker([]string{"hunter22", "31337"})
	in := map[string]any{
		"leaked":   "pw=hunter22",
		"hunter22": "as a key",
		"n":        json.Number("31337"),
		"f":        float64(31337),
		"ok":       json.Number("7"),
		"list":     []any{"HUNTER22", true, nil},
		"nested":   map[string]any{"b64": base64.StdEncoding.EncodeToString([]byte("hunter22"))},
	}
	got := m.MaskMap(in)
	require.Equal(t, map[string]any{
		"leaked": "pw=***",
		"***":    "as a key",
		"n":      MaskText,
		"f":      MaskText,
		"ok":     json.Number("7"),
		"list":   []any{"***", true, nil},
		"nested": map[string]any{"b64": "***"},
	}, got)
	require.Equal(t, "pw=hunter22", in["leaked"], "the input is not changed")

	// Values of other Go types are masked as their JSON form.
	require.Equal(t, map[string]any{"k": "pw=***"}, m.MaskValue(map[string]string{"k": "pw=hunter22"}))
	require.Equal(t, []any{"***", "ok"}, m.MaskValue([]string{"hunter22", "ok"}))
	require.Equal(t, MaskText, m.MaskValue(uint32(31337)))
	require.Equal(t, map[string]any{"Name": "***"}, m.MaskValue(struct{ Name string }{"hunter22"}))
	require.Equal(t, MaskText, m.MaskValue(func() {}), "what does not encode is not let through")
	require.Equal(t, true, m.MaskValue(true))
}

func TestMaskContained(t *testing.T) {
	t.Parallel()
	m := NewMasker([]string{"alpha-secret", "beta-secret", "gamma-secret"})
	b64 := base64.StdEncoding.EncodeToString([]byte("beta-secret"))
	require.Equal(t, []string{"alpha-secret", "beta-secret"},
		m.Contained("echo alpha-secret", "X="+b64))
	require.Empty(t, m.Contained("nothing"))
}

func TestMaskJob(t *testing.T) {
	t.Parallel()
	m := NewMasker([]string{"hunter22"})
	j := &Job{
		Input:  map[string]any{"pw": "hunter22"},
		Output: map[string]any{"s": map[string]any{"x": "HUNTER22"}},
		Steps: []Step{{
			Input: map[string]any{"t": "x hunter22"}, Output: map[string]any{"o": "hunter22"},
			ErrorMessage: "exit code 1: hunter22",
			Attempts:     []Attempt{{ErrorMessage: "exit code 1: hunter22"}},
		}},
	}
	m.MaskJob(j)
	b, err := json.Marshal(j)
	require.NoError(t, err)
	require.NotContains(t, strings.ToLower(string(b)), "hunter22")
	require.Equal(t, "exit code 1: ***", j.Steps[0].Attempts[0].ErrorMessage)
	var nilM *Masker
	nilM.MaskJob(j) // no-op
	m.MaskJob(nil)
}
