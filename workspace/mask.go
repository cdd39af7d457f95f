package workspace

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
)

// maskMinLen is the shortest secret value that is masked: masking "1" or
// "ab" would blank out half of every log line and reveal, by the holes
// left, what the secret is.
const maskMinLen = 3

// maskText replaces a secret in log lines.
const maskText = "***"

// Masker hides resolved secret values in log lines before they are stored
// or streamed (SPEC §3). It is immutable once built and safe for concurrent
// use; a nil *Masker masks nothing.
type Masker struct {
	// secrets, longest first (then by text, for determinism).
	secrets []string
}

// NewMasker collects the values to hide from resolved secrets (as returned
// by ResolveSecrets): every string at any depth, trimmed, and every line of
// a multi-line one on its own (logs arrive line by line, so a PEM key never
// appears whole in one line); numbers as they print. Booleans and nulls are
// not secrets (masking every "true" would ruin the logs and hide nothing).
// Values shorter than three characters are left out.
func NewMasker(resolved map[string]any) *Masker {
	set := map[string]bool{}
	add := func(s string) {
		s = strings.TrimSpace(s)
		if len(s) < maskMinLen {
			return
		}
		set[s] = true
		if strings.ContainsAny(s, "\r\n") {
			for _, line := range strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' }) {
				if line = strings.TrimSpace(line); len(line) >= maskMinLen {
					set[line] = true
				}
			}
		}
	}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for _, e := range v {
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		case string:
			add(v)
		case json.Number:
			add(v.String())
		case int:
			add(strconv.Itoa(v))
		case int64:
			add(strconv.FormatInt(v, 10))
		case uint64:
			add(strconv.FormatUint(v, 10))
		case float64:
			add(formatFloat(v))
		}
	}
	walk(resolved)
	m := &Masker{secrets: make([]string, 0, len(set))}
	for s := range set {
		m.secrets = append(m.secrets, s)
	}
	slices.SortFunc(m.secrets, func(a, b string) int {
		if len(a) != len(b) {
			return len(b) - len(a)
		}
		return strings.Compare(a, b)
	})
	return m
}

// Len is the number of distinct values masked.
func (m *Masker) Len() int {
	if m == nil {
		return 0
	}
	return len(m.secrets)
}

// Mask returns s with every occurrence of a secret replaced by "***".
// Overlapping occurrences (of one secret, or of two that share characters)
// are merged into a single "***", so no fragment of either survives. A line
// without secrets is returned as is, without allocating.
func (m *Masker) Mask(s string) string {
	if m == nil || len(m.secrets) == 0 || len(s) < maskMinLen {
		return s
	}
	// Byte ranges to hide; most lines have none, so nothing is allocated
	// until the first hit.
	var spans []maskSpan
	for _, sec := range m.secrets {
		if len(sec) > len(s) {
			continue
		}
		for from := 0; from <= len(s)-len(sec); {
			i := strings.Index(s[from:], sec)
			if i < 0 {
				break
			}
			start := from + i
			spans = append(spans, maskSpan{start, start + len(sec)})
			from = start + 1
		}
	}
	if len(spans) == 0 {
		return s
	}
	slices.SortFunc(spans, func(a, b maskSpan) int { return a.start - b.start })
	var b strings.Builder
	b.Grow(len(s))
	last := 0 // end of the text already written
	cur := spans[0]
	flush := func(sp maskSpan) {
		b.WriteString(s[last:sp.start])
		b.WriteString(maskText)
		last = sp.end
	}
	for _, sp := range spans[1:] {
		if sp.start <= cur.end {
			cur.end = max(cur.end, sp.end)
			continue
		}
		flush(cur)
		cur = sp
	}
	flush(cur)
	b.WriteString(s[last:])
	return b.String()
}

type maskSpan struct{ start, end int }
