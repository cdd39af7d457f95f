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
	b, err := io.ReadAll(r.Body)
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
	normalizeNumbers(dst)
	return nil
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
// when integral, float64 otherwise, so inputs keep "2" as an integer.
func normalizeNumbers(v any) {
	switch t := v.(type) {
	case *map[string]any:
		if t != nil {
			normalizeNumbers(*t)
		}
	case map[string]any:
		for k, e := range t {
			t[k] = normalizeValue(e)
		}
	case *executeBody:
		normalizeNumbers(t.Input)
	case *stroem.Completion:
		normalizeNumbers(t.Output)
	}
}

func normalizeValue(v any) any {
	switch t := v.(type) {
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return i
		}
		if f, err := t.Float64(); err == nil {
			return f
		}
		return t.String()
	case map[string]any:
		normalizeNumbers(t)
		return t
	case []any:
		for i, e := range t {
			t[i] = normalizeValue(e)
		}
		return t
	}
	return v
}

// parseJobID checks that id is a UUID, so a typo is a 400, not a lookup.
func parseJobID(id string) (string, error) {
	u, err := uuid.Parse(id)
	if err != nil {
		return "", stroem.Errorf(stroem.CodeInvalid, "invalid job id %q: not a UUID", id)
	}
	return u.String(), nil
}
