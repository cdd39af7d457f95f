package workspace

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strings"
	"time"
)

// CheckInput checks a job's input against a task's input schema (SPEC §2)
// and completes it: absent fields get their default, numbers are
// normalised (an integer field holds an int64 even when JSON decoding
// produced 2.0 or a json.Number).
//
// It returns the completed input and every problem found, each a sentence
// naming the field, sorted — so an API user fixes everything in one go:
// a missing required field (or one given as null), a value of the wrong
// type, a value outside the field's enum, a field the schema does not
// declare. A nil in is an empty input. in is never modified; defaults are
// copied, never shared with the schema.
func CheckInput(schema Schema, in map[string]any) (map[string]any, []string) {
	out := make(map[string]any, len(schema)+len(in))
	var problems []string
	for k, v := range in {
		if schema.Lookup(k) == nil {
			msg := fmt.Sprintf("input %q: unknown field", k)
			if s := closestField(schema, k); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			problems = append(problems, msg)
			continue
		}
		out[k] = v
	}
	for _, f := range schema {
		v, present := in[f.Name]
		if !present || v == nil {
			switch {
			case f.HasDefault:
				out[f.Name] = cloneData(f.Default)
			case f.Required:
				problems = append(problems, fmt.Sprintf("input %q: required field is missing", f.Name))
			}
			continue
		}
		nv, problem := CheckFieldValue(f, v)
		if problem != "" {
			problems = append(problems, fmt.Sprintf("input %q: %s", f.Name, problem))
			continue
		}
		out[f.Name] = nv
	}
	sort.Strings(problems)
	return out, problems
}

// CheckFieldValue checks one value against a field: its type (a list of
// that type when Multiple), its options unless AllowCustom. It returns the
// value normalised, or a problem sentence that never quotes the value of a
// secret field.
func CheckFieldValue(f *Field, v any) (any, string) {
	show := describeJSON
	if f.Secret {
		show = func(any) string { return "the value" }
	}
	one := func(v any) (any, string) {
		nv, problem := checkFieldType(f.Type, v)
		if problem != "" {
			if f.Secret {
				problem = fmt.Sprintf("expected %s, got %s", f.Type, jsonTypeName(v))
			}
			return nil, problem
		}
		if len(f.Enum) > 0 && !f.AllowCustom && !enumContains(f.Enum, nv) {
			return nil, fmt.Sprintf("%s is not one of %s", show(nv), enumList(f.Enum))
		}
		return nv, ""
	}
	if !f.Multiple {
		return one(v)
	}
	list, problem := checkFieldType(TypeArray, v)
	if problem != "" {
		return nil, fmt.Sprintf("expected a list (multiple values), got %s", jsonTypeName(v))
	}
	items := list.([]any)
	out := make([]any, 0, len(items))
	for i, item := range items {
		nv, problem := one(item)
		if problem != "" {
			return nil, fmt.Sprintf("item %d: %s", i, problem)
		}
		out = append(out, nv)
	}
	return out, ""
}

// checkFieldType returns v normalised for type t, or a problem sentence.
// An empty or unknown type accepts anything: the validator reports it.
func checkFieldType(t FieldType, v any) (any, string) {
	switch t {
	case TypeString, TypeText:
		if s, ok := v.(string); ok {
			return s, ""
		}
	case TypeDate:
		if s, ok := v.(string); ok {
			if _, err := time.Parse(time.DateOnly, s); err == nil {
				return s, ""
			}
			return nil, fmt.Sprintf("expected a date (YYYY-MM-DD), got %s", describeJSON(v))
		}
	case TypeDateTime:
		if s, ok := v.(string); ok {
			for _, layout := range dateTimeLayouts {
				if _, err := time.Parse(layout, s); err == nil {
					return s, ""
				}
			}
			return nil, fmt.Sprintf("expected a date and time (RFC 3339, like 2026-03-21T10:30:00Z), got %s", describeJSON(v))
		}
	case TypeInteger:
		if i, ok := asInteger(v); ok {
			return i, ""
		}
	case TypeNumber:
		if n, ok := asNumber(v); ok {
			return n, ""
		}
	case TypeBoolean:
		if b, ok := v.(bool); ok {
			return b, ""
		}
	case TypeArray:
		if _, ok := v.([]any); ok {
			return v, ""
		}
		if rv := reflect.ValueOf(v); rv.Kind() == reflect.Slice || rv.Kind() == reflect.Array {
			out := make([]any, rv.Len())
			for i := range out {
				out[i] = rv.Index(i).Interface()
			}
			return out, ""
		}
	case TypeObject:
		if _, ok := v.(map[string]any); ok {
			return v, ""
		}
	default:
		return v, ""
	}
	return nil, fmt.Sprintf("expected %s, got %s %s", t, jsonTypeName(v), describeJSON(v))
}

// dateTimeLayouts are the forms a datetime field takes: RFC 3339, and the
// zone-less forms a browser's datetime-local input sends.
var dateTimeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04"}

// asInteger accepts Go integers, floats with an integral value (what JSON
// and YAML decoding produce for 2 or 2.0) and integral json.Numbers.
func asInteger(v any) (int64, bool) {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i, true
		}
		f, err := x.Float64()
		if err != nil {
			return 0, false
		}
		return asInteger(f)
	case float64:
		if x == math.Trunc(x) && !math.IsInf(x, 0) && math.Abs(x) <= 1<<53 {
			return int64(x), true
		}
		return 0, false
	case float32:
		return asInteger(float64(x))
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int(), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if rv.Uint() <= math.MaxInt64 {
			return int64(rv.Uint()), true
		}
	}
	return 0, false
}

// asNumber accepts any Go number or json.Number; integral values become
// int64 so that they print and compare as integers.
func asNumber(v any) (any, bool) {
	if i, ok := asInteger(v); ok {
		return i, true
	}
	switch x := v.(type) {
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, false
		}
		return x, true
	case float32:
		return asNumber(float64(x))
	case json.Number:
		if f, err := x.Float64(); err == nil {
			return f, true
		}
	}
	return nil, false
}

func jsonTypeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case bool:
		return "boolean"
	case map[string]any:
		return "object"
	}
	if _, ok := asInteger(v); ok {
		return "integer"
	}
	if _, ok := asNumber(v); ok {
		return "number"
	}
	switch reflect.ValueOf(v).Kind() {
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Map, reflect.Struct:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

// describeJSON shows a value as JSON, shortened: problem messages go back
// to API users and must stay one readable line.
func describeJSON(v any) string {
	b, err := json.Marshal(v)
	s := string(b)
	if err != nil {
		s = fmt.Sprint(v)
	}
	// A long value is described, not quoted: a prefix of it could be the
	// first part of a secret, which the server's masking (whole values and
	// their encodings) would not recognise.
	const limit = 60
	if len(s) > limit {
		return fmt.Sprintf("(a %s of %d bytes)", jsonTypeName(v), len(s))
	}
	return s
}

func enumContains(enum []any, v any) bool {
	for _, e := range enum {
		if equalJSON(e, v) {
			return true
		}
	}
	return false
}

// equalJSON compares two values as JSON would: 2, int64(2) and 2.0 are equal.
func equalJSON(a, b any) bool {
	if x, ok := asNumber(a); ok {
		if y, ok := asNumber(b); ok {
			return toFloat(x) == toFloat(y)
		}
		return false
	}
	return reflect.DeepEqual(a, b)
}

func toFloat(n any) float64 {
	switch n := n.(type) {
	case int64:
		return float64(n)
	case float64:
		return n
	}
	return math.NaN()
}

func enumList(enum []any) string {
	parts := make([]string, len(enum))
	for i, e := range enum {
		parts[i] = describeJSON(e)
	}
	return strings.Join(parts, ", ")
}

// closestField suggests the declared field a misspelt name probably meant.
func closestField(schema Schema, name string) string {
	best, bestDist := "", 3 // suggest only within two edits
	for _, f := range schema {
		if d := inputEditDistance(strings.ToLower(name), strings.ToLower(f.Name)); d < bestDist {
			best, bestDist = f.Name, d
		}
	}
	return best
}

// inputEditDistance is the Levenshtein distance between a and b (bytes).
func inputEditDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
