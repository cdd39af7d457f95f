package workspace

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMask(t *testing.T) {
	t.Parallel()
	m := NewMasker(map[string]any{
		"db": map[string]any{
			"password": "hunter22",
			"user":     "ab", // too short to mask
		},
		"token":   "  tok-123456\n", // trimmed
		"pin":     31337,
		"ratio":   2.5, // "2.5": three characters
		"flag":    true,
		"nothing": nil,
		"list":    []any{"listed-secret"},
		"pem":     "-----BEGIN KEY-----\nAAAABBBBCCCC\n-----END KEY-----",
		"outer":   "abcdef",
		"inner":   "cde",
		"left":    "xxyyzz",
		"right":   "zzwwvv",
	})
	tests := []struct{ in, want string }{
		{"no secrets here", "no secrets here"},
		{"", ""},
		{"pw=hunter22", "pw=***"},
		{"hunter22hunter22", "***"},
		{"a hunter22 b hunter22 c", "a *** b *** c"},
		{"Authorization: tok-123456", "Authorization: ***"},
		{"pin 31337!", "pin ***!"},
		{"ratio 2.5", "ratio ***"},
		{"true stays true", "true stays true"},
		{"user ab", "user ab"},
		{"listed-secret", "***"},
		// A multi-line secret is masked line by line.
		{"AAAABBBBCCCC", "***"},
		{"-----BEGIN KEY-----", "***"},
		// One secret inside another: the longest wins, nothing leaks.
		{"xabcdefx", "x***x"},
		{"cde alone", "*** alone"},
		// Two secrets overlapping: the union is masked.
		{"xxyyzzwwvv", "***"},
		{"1 xxyyzzwwvv 2", "1 *** 2"},
		// Overlapping occurrences of one secret.
		{"hunter2hunter22", "hunter2***"},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, m.Mask(tt.in), "Mask(%q)", tt.in)
	}
	require.Equal(t, 13, m.Len())
}

func TestMaskSelfOverlap(t *testing.T) {
	t.Parallel()
	m := NewMasker(map[string]any{"s": "aaa"})
	require.Equal(t, "***", m.Mask("aaaa"))
	require.Equal(t, "b***b", m.Mask("baaaaab"))
	require.Equal(t, "aa b", m.Mask("aa b"))
}

func TestMaskNil(t *testing.T) {
	t.Parallel()
	var m *Masker
	require.Equal(t, "hunter22", m.Mask("hunter22"))
	require.Equal(t, 0, m.Len())
	empty := NewMasker(nil)
	require.Equal(t, "hunter22", empty.Mask("hunter22"))
}

func TestMaskNeverLeaks(t *testing.T) {
	t.Parallel()
	secrets := []string{"correct horse", "horse battery", "staple", "tapestry", "batter"}
	raw := map[string]any{}
	for i, s := range secrets {
		raw[fmt.Sprint(i)] = s
	}
	m := NewMasker(raw)
	words := []string{"correct", " horse", " battery", "staple", "tape", "stry", "x", " ", "batter"}
	// Every combination of a few words: no secret may survive masking.
	var gen func(prefix string, depth int)
	gen = func(prefix string, depth int) {
		out := m.Mask(prefix)
		for _, s := range secrets {
			require.NotContains(t, out, s, "Mask(%q) = %q", prefix, out)
		}
		if depth == 0 {
			return
		}
		for _, w := range words {
			gen(prefix+w, depth-1)
		}
	}
	gen("", 4)
}

func TestMaskConcurrent(t *testing.T) {
	t.Parallel()
	m := NewMasker(map[string]any{"a": "secret-one", "b": "secret-two"})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 500 {
				line := fmt.Sprintf("%d %d secret-one secret-two", i, j)
				require.Equal(t, fmt.Sprintf("%d %d *** ***", i, j), m.Mask(line))
			}
		}()
	}
	wg.Wait()
}

func BenchmarkMask(b *testing.B) {
	raw := map[string]any{
		"db":    map[string]any{"password": "hunter22-very-secret", "user": "stroem-admin"},
		"token": "ghp_0123456789abcdefABCDEF0123456789abcd",
		"pin":   31337,
		"aws":   map[string]any{"key": "AKIAIOSFODNN7EXAMPLE", "secret": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"},
	}
	m := NewMasker(raw)
	clean := "2026-01-02T03:04:05Z INFO deploying service api to production, step 3 of 7, elapsed 1.234s"
	dirty := "2026-01-02T03:04:05Z INFO connecting as stroem-admin with password hunter22-very-secret to db"
	long := strings.Repeat(clean+" ", 40)
	b.Run("clean line", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(clean)))
		for b.Loop() {
			_ = m.Mask(clean)
		}
	})
	b.Run("line with secrets", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(dirty)))
		for b.Loop() {
			_ = m.Mask(dirty)
		}
	})
	b.Run("4KiB clean line", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(long)))
		for b.Loop() {
			_ = m.Mask(long)
		}
	})
}
