package persistence

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/stroem/stroem"
)

// PostgreSQL rejects NUL in text and the escape \u0000 in jsonb, and invalid
// UTF-8 in both. Inputs, outputs and error messages come from users and from
// arbitrary processes, so the store sanitizes them with stroem.SanitizeText
// (invalid UTF-8 → U+FFFD, NUL → the two characters `\0`) instead of failing
// the write: a step that printed a NUL must still be able to complete.

// SanitizeValue returns v with every string in it, map keys included,
// passed through stroem.SanitizeText. Values of other types are returned
// unchanged; EncodeJSON catches NULs hidden inside them.
func SanitizeValue(v any) any {
	switch x := v.(type) {
	case string:
		return stroem.SanitizeText(x)
	case map[string]any:
		return SanitizeMap(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = SanitizeValue(e)
		}
		return out
	case map[string]string:
		out := make(map[string]string, len(x))
		for k, e := range x {
			out[stroem.SanitizeText(k)] = stroem.SanitizeText(e)
		}
		return out
	case []string:
		out := make([]string, len(x))
		for i, e := range x {
			out[i] = stroem.SanitizeText(e)
		}
		return out
	}
	return v
}

// SanitizeMap returns m with every key and string value sanitized. A nil
// map stays nil.
func SanitizeMap(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[stroem.SanitizeText(k)] = SanitizeValue(v)
	}
	return out
}

// EncodeJSON encodes an already sanitized map for a JSON column; nil
// becomes SQL NULL (a nil slice). See EncodeJSONValue.
func EncodeJSON(m map[string]any) ([]byte, error) {
	if m == nil {
		return nil, nil
	}
	return EncodeJSONValue(m)
}

// EncodeJSONValue encodes an already sanitized value of any JSON type (a
// step's output: an object, a list, a string, a number…) for a JSON
// column; nil, and a nil map, become SQL NULL. A NUL that survived
// sanitizing (inside a value of a type SanitizeValue does not walk) is
// removed by a decode/sanitize/encode round.
func EncodeJSONValue(v any) ([]byte, error) {
	if m, ok := v.(map[string]any); v == nil || ok && m == nil {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, stroem.Errorf(stroem.CodeInvalid, "value cannot be stored as JSON: %v", err)
	}
	if !bytes.Contains(b, []byte(`\u0000`)) {
		return b, nil
	}
	var generic any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&generic); err != nil {
		return nil, fmt.Errorf("re-decode JSON: %w", err)
	}
	return json.Marshal(SanitizeValue(generic))
}

// DecodeJSONValue decodes a JSON column of any JSON type; NULL (and a
// stored JSON null) becomes nil.
func DecodeJSONValue(b []byte) (any, error) {
	if b == nil {
		return nil, nil
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("decode stored JSON: %w", err)
	}
	return v, nil
}

// DecodeJSON decodes a JSON column; NULL becomes a nil map.
func DecodeJSON(b []byte) (map[string]any, error) {
	if b == nil {
		return nil, nil
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("decode stored JSON: %w", err)
	}
	return m, nil
}

// SanitizeJSONBytes makes a JSON document (a task snapshot) storable the
// same way in every store (PostgreSQL's jsonb refuses \u0000): it must be
// valid JSON, and a \u0000 escape is replaced by a decode/sanitize/encode
// round. Clean input is returned as is.
func SanitizeJSONBytes(b []byte) ([]byte, error) {
	if !bytes.Contains(b, []byte(`\u0000`)) && json.Valid(b) {
		return b, nil
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, stroem.Errorf(stroem.CodeInvalid, "snapshot is not valid JSON: %v", err)
	}
	return json.Marshal(SanitizeValue(v))
}

// SanitizeStrings returns a copy of in with every string sanitized.
func SanitizeStrings(in []string) []string {
	out := make([]string, len(in))
	for i, v := range in {
		out[i] = stroem.SanitizeText(v)
	}
	return out
}
