package sqlite

import (
	"encoding/json"
	"fmt"

	"github.com/stroem/stroem/persistence"
)

// Inputs, outputs and error messages come from users and from arbitrary
// processes. The store sanitizes them exactly as the PostgreSQL store must
// (PostgreSQL rejects NUL and invalid UTF-8): invalid UTF-8 → U+FFFD, NUL →
// the two characters `\0` (stroem.SanitizeText). SQLite would store them,
// but then the two stores would answer differently, and a NUL would reach
// JSON, log files and SSE frames.

// encodeJSON encodes an already sanitized map for a JSON column
// (persistence.EncodeJSON) as text; nil becomes SQL NULL.
func encodeJSON(m map[string]any) (any, error) {
	b, err := persistence.EncodeJSON(m)
	if err != nil {
		return nil, err
	}
	return jsonText(b), nil
}

// jsonText is encoded JSON as the text a column stores (STRICT tables take
// no BLOB in a TEXT column); nil becomes SQL NULL.
func jsonText(b []byte) any {
	if b == nil {
		return nil
	}
	return string(b)
}

// nullIfEmpty stores "" as SQL NULL.
func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
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
