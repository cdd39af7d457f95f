package persistence

import (
	"reflect"
	"testing"
)

// mapsEqual decides as reflect.DeepEqual, which Diff used before it.
func TestMapsEqualAsDeepEqual(t *testing.T) {
	t.Parallel()
	maps := []map[string]any{
		nil, {}, {"a": 1.0}, {"a": 2.0}, {"a": "1"}, {"b": 1.0},
		{"a": []any{1.0, "x"}}, {"a": []any{1.0, "y"}}, {"a": map[string]any{"n": nil}}, {"a": map[string]any{}},
	}
	for i, a := range maps {
		for j, b := range maps {
			if got, want := mapsEqual(a, b), reflect.DeepEqual(a, b); got != want {
				t.Errorf("maps %d (%v) and %d (%v): mapsEqual %v, DeepEqual %v", i, a, j, b, got, want)
			}
		}
		if c := deepCopyMap(a); !mapsEqual(a, c) {
			t.Errorf("map %d (%v) differs from its copy", i, a)
		}
	}
}
