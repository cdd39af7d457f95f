package sqlite

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
)

// Inputs, outputs and error messages come from users and from arbitrary
// processes. The store sanitizes them exactly as the PostgreSQL store must
// (PostgreSQL rejects NUL and invalid UTF-8): invalid UTF-8 → U+FFFD, NUL →
// the two characters `\0` (stroem.SanitizeText). SQLite would store them,
// but then the two stores would answer differently, and a NUL would reach
// JSON, log files and SSE frames.

func sanitizeStrings(in []string) []string {
	out := make([]string, len(in))
	for i, v := range in {
		out[i] = stroem.SanitizeText(v)
	}
	return out
}

// encodeJSON encodes an already sanitized map for a JSON column; nil
// becomes SQL NULL. A NUL that survived sanitizing (inside a value of a type
// sanitizeValue does not walk) is removed by a decode/sanitize/encode round.
func encodeJSON(m map[string]any) (any, error) {
	if m == nil {
		return nil, nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, stroem.Errorf(stroem.CodeInvalid, "value cannot be stored as JSON: %v", err)
	}
	if !bytes.Contains(b, []byte(`\u0000`)) {
		return string(b), nil
	}
	var generic map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&generic); err != nil {
		return nil, fmt.Errorf("re-decode JSON: %w", err)
	}
	b, err = json.Marshal(persistence.SanitizeMap(generic))
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

// sanitizeJSONBytes makes a JSON document storable as the PostgreSQL store
// would (jsonb refuses \u0000): it must be valid JSON, and a \u0000 escape
// is replaced by a decode/sanitize/encode round. Clean input is returned
// as is.
func sanitizeJSONBytes(b []byte) ([]byte, error) {
	if !bytes.Contains(b, []byte(`\u0000`)) && json.Valid(b) {
		return b, nil
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, stroem.Errorf(stroem.CodeInvalid, "snapshot is not valid JSON: %v", err)
	}
	return json.Marshal(persistence.SanitizeValue(v))
}

// decodeJSON decodes a JSON column; NULL becomes a nil map.
func decodeJSON(b []byte) (map[string]any, error) {
	if b == nil {
		return nil, nil
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("decode stored JSON: %w", err)
	}
	return m, nil
}

// encodeStrings encodes a list of strings as a JSON array (never null).
func encodeStrings(list []string) string {
	if list == nil {
		list = []string{}
	}
	b, _ := json.Marshal(list) // a []string always encodes
	return string(b)
}

// decodeStrings decodes a JSON array of strings; it is never nil.
func decodeStrings(s string) ([]string, error) {
	out := []string{}
	if s == "" {
		return out, nil
	}
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		return nil, fmt.Errorf("decode stored list: %w", err)
	}
	if out == nil {
		out = []string{}
	}
	return out, nil
}
