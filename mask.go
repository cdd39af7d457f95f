package stroem

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
)

// MaskMinLen is the shortest secret value that is masked: masking "1" or
// "ab" would blank out half of every log line and reveal, by the holes
// left, what the secret is.
const MaskMinLen = 3

// MaskText replaces a secret.
const MaskText = "***"

// minEncodedCore is the shortest base64 fragment masked for a secret
// printed at an offset inside a longer encoded text (shorter fragments
// would mask random base64 and say little about the secret).
const minEncodedCore = 6

// Masker is the one masking rule of Strøm: every text that leaves a step
// (log lines, error messages, outputs) or the server (API answers, its own
// logs) goes through it before it is stored, served or passed on. It hides
// each secret value and its common encodings: upper- and lower-cased, hex
// (both cases), base64 (standard and URL alphabets, padded or not, also
// the fragment that any base64 text containing the secret at any offset
// holds), URL-encoded (query and path forms) and JSON-escaped.
//
// It is immutable once built and safe for concurrent use; a nil *Masker
// masks nothing.
type Masker struct {
	values   []string // the raw values, sorted
	patterns []string // every form to hide, longest first
	variant  map[string]string
}

// NewMasker builds a masker for values. Each value is trimmed; a
// multi-line value is also masked line by line (logs arrive line by line,
// so a PEM key never appears whole in one line). Values shorter than
// MaskMinLen are left out.
func NewMasker(values []string) *Masker {
	raw := map[string]bool{}
	for _, v := range values {
		v = strings.TrimSpace(v)
		if len(v) < MaskMinLen {
			continue
		}
		raw[v] = true
		if strings.ContainsAny(v, "\r\n") {
			for _, line := range strings.FieldsFunc(v, func(r rune) bool { return r == '\n' || r == '\r' }) {
				if line = strings.TrimSpace(line); len(line) >= MaskMinLen {
					raw[line] = true
				}
			}
		}
	}
	m := &Masker{variant: map[string]string{}}
	for v := range raw {
		m.values = append(m.values, v)
		for _, p := range encodings(v) {
			if len(p) >= MaskMinLen {
				if _, ok := m.variant[p]; !ok {
					m.variant[p] = v
				}
			}
		}
	}
	slices.Sort(m.values)
	for p := range m.variant {
		m.patterns = append(m.patterns, p)
	}
	slices.SortFunc(m.patterns, func(a, b string) int {
		if len(a) != len(b) {
			return len(b) - len(a)
		}
		return strings.Compare(a, b)
	})
	return m
}

// encodings returns v and the forms it takes when a step encodes it.
func encodings(v string) []string {
	out := []string{v, strings.ToUpper(v), strings.ToLower(v),
		hex.EncodeToString([]byte(v)), strings.ToUpper(hex.EncodeToString([]byte(v))),
		url.QueryEscape(v), url.PathEscape(v)}
	if b, err := json.Marshal(v); err == nil {
		out = append(out, string(b[1:len(b)-1]))
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if enc.Encode(v) == nil {
		s := strings.TrimSuffix(b.String(), "\n")
		out = append(out, s[1:len(s)-1])
	}
	out = append(out, base64.StdEncoding.EncodeToString([]byte(v)), base64.URLEncoding.EncodeToString([]byte(v)))
	for _, e := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
		out = append(out, e.EncodeToString([]byte(v)))
		// v at byte offset k of a longer text: the characters that
		// depend only on v's bits.
		for k := 0; k < 3; k++ {
			enc := e.EncodeToString(append(make([]byte, k), v...))
			from := (8*k + 5) / 6
			to := (8 * (k + len(v))) / 6 // exclusive
			if to-from >= minEncodedCore && to <= len(enc) {
				out = append(out, enc[from:to])
			}
		}
	}
	return out
}

// Len is the number of distinct values masked (not counting encodings).
func (m *Masker) Len() int {
	if m == nil {
		return 0
	}
	return len(m.values)
}

// Values returns the raw values masked, sorted.
func (m *Masker) Values() []string {
	if m == nil {
		return nil
	}
	return slices.Clone(m.values)
}

// MaxLen is the length of the longest form masked: a text cut in pieces
// must keep this many bytes minus one together to catch every occurrence.
func (m *Masker) MaxLen() int {
	if m == nil || len(m.patterns) == 0 {
		return 0
	}
	return len(m.patterns[0])
}

// Contained returns the raw values of which some form occurs in one of
// texts, sorted: what a step that is given these texts already holds.
func (m *Masker) Contained(texts ...string) []string {
	if m == nil {
		return nil
	}
	found := map[string]bool{}
	for _, p := range m.patterns {
		if found[m.variant[p]] {
			continue
		}
		for _, t := range texts {
			if strings.Contains(t, p) {
				found[m.variant[p]] = true
				break
			}
		}
	}
	out := make([]string, 0, len(found))
	for v := range found {
		out = append(out, v)
	}
	slices.Sort(out)
	return out
}

// Mask returns s with every occurrence of a secret (in any of its forms)
// replaced by "***". Overlapping occurrences are merged into a single
// "***", so no fragment of either survives. A text without secrets is
// returned as is, without allocating.
func (m *Masker) Mask(s string) string {
	if m == nil || len(m.patterns) == 0 || len(s) < MaskMinLen {
		return s
	}
	spans := m.spans(s)
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
		b.WriteString(MaskText)
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

// MaskError returns err's text masked.
func (m *Masker) MaskError(err error) string {
	if err == nil {
		return ""
	}
	return m.Mask(err.Error())
}

type maskSpan struct{ start, end int }

func (m *Masker) spans(s string) []maskSpan {
	var spans []maskSpan
	for _, p := range m.patterns {
		if len(p) > len(s) {
			continue
		}
		for from := 0; from <= len(s)-len(p); {
			i := strings.Index(s[from:], p)
			if i < 0 {
				break
			}
			start := from + i
			spans = append(spans, maskSpan{start, start + len(p)})
			from = start + 1
		}
	}
	return spans
}

// SafeCut returns the largest cut ≤ at such that no occurrence of a
// secret in b starts before the cut and ends after it, so b[:cut] and
// b[cut:] can be masked apart; 0 when only an empty first part is safe.
// Only occurrences wholly inside b are seen: a caller cutting a stream
// keeps at ≤ len(b)-(MaxLen()-1).
func (m *Masker) SafeCut(b []byte, at int) int {
	if m == nil || len(m.patterns) == 0 {
		return at
	}
	spans := m.spans(string(b))
	cut := at
	for moved := true; moved && cut > 0; {
		moved = false
		for _, sp := range spans {
			if sp.start < cut && sp.end > cut {
				cut, moved = sp.start, true
			}
		}
	}
	return cut
}

// MaskValue returns a copy of a JSON-like value (maps, slices, strings,
// numbers) with every string masked, map keys included; a number that is
// a secret becomes the string "***". A value of any other type (a
// map[string]string, a []string, a struct) is masked as its JSON form, so
// nothing passes unmasked because of its Go type; one that does not
// encode becomes "***".
func (m *Masker) MaskValue(v any) any {
	if m == nil || len(m.patterns) == 0 {
		return v
	}
	switch x := v.(type) {
	case string:
		return m.Mask(x)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[m.Mask(k)] = m.MaskValue(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = m.MaskValue(e)
		}
		return out
	case json.Number:
		if m.Mask(x.String()) != x.String() {
			return MaskText
		}
		return x
	case float64, int, int64:
		b, _ := json.Marshal(x)
		if m.Mask(string(b)) != string(b) {
			return MaskText
		}
		return x
	case nil, bool:
		return v
	}
	b, err := json.Marshal(v)
	if err != nil {
		return MaskText
	}
	var generic any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&generic); err != nil {
		return MaskText
	}
	return m.MaskValue(generic)
}

// MaskMap is MaskValue for an object.
func (m *Masker) MaskMap(v map[string]any) map[string]any {
	if m == nil || v == nil || len(m.patterns) == 0 {
		return v
	}
	return m.MaskValue(v).(map[string]any)
}

// MaskJob masks, in place, what a job's JSON shows that can hold a secret:
// its input and output, and each step's input, output and error messages
// (attempts included). Values are masked before they are stored; this is
// the same rule applied once more where a job is served, for what was
// stored before (or rendered into a step's input from `secret.*`).
func (m *Masker) MaskJob(j *Job) {
	if m.Len() == 0 || j == nil {
		return
	}
	j.Input, j.Output = m.MaskMap(j.Input), m.MaskMap(j.Output)
	for i := range j.Steps {
		st := &j.Steps[i]
		st.Input, st.Output = m.MaskMap(st.Input), m.MaskValue(st.Output)
		st.ErrorMessage = m.Mask(st.ErrorMessage)
		for k := range st.Attempts {
			st.Attempts[k].ErrorMessage = m.Mask(st.Attempts[k].ErrorMessage)
		}
	}
}
