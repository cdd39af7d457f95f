package persistence

import (
	"encoding/json"
	"math"
	"reflect"
	"testing"
)

// mapsEqual decides as reflect.DeepEqual, which Diff used before it.
func TestMapsEqualAsDeepEqual(t *testing.T) {
	t.Parallel()
	maps := []map[string]any{
		nil, {}, {"a": 1.0}, {"a": 2.0}, {"a": "1"}, {"b": 1.0},
		{"a": []any{1.0, "x"}}, {"a": []any{1.0, "y"}}, {"a": map[string]any{"n": nil}}, {"a": map[string]any{}},
		{"a": int64(1)}, {"a": 1}, {"a": true}, {"a": false}, {"a": nil}, {"a": []any{}}, {"a": []any(nil)},
		{"a": map[string]any(nil)}, {"a": []any{1.0, "x"}, "b": map[string]any{"c": []any{true, nil}}},
		{"a": []any{1.0, "x"}, "b": map[string]any{"c": []any{true, false}}}, {"a": []string{"x"}}, {"a": []string{"y"}},
		{"a": math.NaN()}, {"a": json.Number("1")}, {"a": json.Number("1.0")},
	}
	for i, a := range maps {
		for j, b := range maps {
			if got, want := mapsEqual(a, b), reflect.DeepEqual(a, b); got != want {
				t.Errorf("maps %d (%v) and %d (%v): mapsEqual %v, DeepEqual %v", i, a, j, b, got, want)
			}
		}
		c := deepCopyMap(a)
		if got, want := mapsEqual(a, c), reflect.DeepEqual(a, c); got != want {
			t.Errorf("map %d (%v) and its copy: mapsEqual %v, DeepEqual %v", i, a, got, want)
		}
		if want := !math.IsNaN(nanOf(a)); reflect.DeepEqual(a, c) != want {
			t.Errorf("map %d (%v): its copy is not equal to it", i, a)
		}
	}
}

// nanOf returns the value of key "a" when it is a float (NaN is equal to
// nothing, its copy included), else 0.
func nanOf(m map[string]any) float64 {
	f, _ := m["a"].(float64)
	return f
}
