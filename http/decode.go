package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/google/uuid"

	"github.com/stroem/stroem"
)

// decodeJSON reads the request body into dst. Malformed JSON, a wrong type
// or trailing data is a 400 naming the problem; a body over the limit is a
// 413. When allowEmpty is set, an empty body leaves dst as it is.
func decodeJSON(r *http.Request, dst any, allowEmpty bool) error {
	buf := bufferPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer putBuffer(buf) // nothing decoded refers to it: json copies what it keeps
	if n := r.ContentLength; n > 0 && n < 64<<10 {
		buf.Grow(int(n) + bytes.MinRead) // ReadFrom reads into MinRead of free room
	}
	_, err := buf.ReadFrom(r.Body)
	b := buf.Bytes()
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return stroem.Errorf(stroem.CodeTooLarge, "request body is larger than %d bytes", mbe.Limit)
		}
		return stroem.Errorf(stroem.CodeInvalid, "read request body: %v", err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		if allowEmpty {
			return nil
		}
		return stroem.Invalid("request body is empty; a JSON object is expected")
	}
	if err := checkJSONText(b); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(dst); err != nil {
		return stroem.Invalid(describeJSONError(err))
	}
	if dec.More() {
		return stroem.Invalid("malformed JSON: unexpected data after the JSON value")
	}
	return normalizeNumbers(dst)
}

func describeJSONError(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("malformed JSON at byte %d: %v", se.Offset, err)
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			return fmt.Sprintf("malformed JSON: expected %s, got %s", te.Type, te.Value)
		}
		return fmt.Sprintf("field %q: expected %s, got %s", field, te.Type, te.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "malformed JSON: unexpected end of input"
	}
	return "malformed JSON: " + strings.TrimPrefix(err.Error(), "json: ")
}

// normalizeNumbers turns json.Number values in free-form maps into int64
// when integral, float64 otherwise, so inputs keep "2" as an integer. A
// number that fits neither (1e400) is an error.
func normalizeNumbers(v any) error {
	switch t := v.(type) {
	case *map[string]any:
		if t != nil {
			return normalizeNumbers(*t)
		}
	case map[string]any:
		for k, e := range t {
			n, err := normalizeValue(e)
			if err != nil {
				return err
			}
			t[k] = n
		}
	case *executeBody:
		return normalizeNumbers(t.Input)
	case *stroem.Completion:
		out, err := normalizeValue(t.Output) // any JSON value
		t.Output = out
		return err
	}
	return nil
}

func normalizeValue(v any) (any, error) {
	switch t := v.(type) {
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return i, nil
		}
		if f, err := t.Float64(); err == nil {
			return f, nil
		}
		text := t.String()
		if len(text) > 40 {
			text = text[:40] + "…"
		}
		return nil, stroem.Invalid("number " + text + " is out of range (a 64-bit float)")
	case map[string]any:
		return t, normalizeNumbers(t)
	case []any:
		for i, e := range t {
			n, err := normalizeValue(e)
			if err != nil {
				return nil, err
			}
			t[i] = n
		}
		return t, nil
	}
	return v, nil
}

// parseJobID checks that id is a UUID, so a typo is a 400, not a lookup.
func parseJobID(id string) (string, error) {
	u, err := uuid.Parse(id)
	if err != nil {
		return "", stroem.Errorf(stroem.CodeInvalid, "invalid job id %q: not a UUID", id)
	}
	if canonicalUUID(id) {
		return id, nil // u.String() is id: no copy (every worker request names one)
	}
	return u.String(), nil
}

// canonicalUUID reports whether id, which uuid.Parse accepted, is already
// in the form UUID.String gives: 36 characters, lower case.
func canonicalUUID(id string) bool {
	if len(id) != 36 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c >= 'A' && c <= 'Z' {
			return false
		}
	}
	return true
}
