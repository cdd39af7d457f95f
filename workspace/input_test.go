package workspace

import (
	"encoding/json"
	"maps"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func inputSchema() Schema {
	return Schema{
		{Name: "name", Type: TypeString, Default: "World", HasDefault: true},
		{Name: "count", Type: TypeInteger},
		{Name: "ratio", Type: TypeNumber},
		{Name: "dry_run", Type: TypeBoolean, Default: false, HasDefault: true},
		{Name: "tags", Type: TypeArray},
		{Name: "labels", Type: TypeObject, Default: map[string]any{"team": "ops"}, HasDefault: true},
		{Name: "env", Type: TypeString, Required: true, Enum: []any{"dev", "prod"}},
		{Name: "level", Type: TypeInteger, Enum: []any{1, 2, 3}},
		{Name: "anything"},
	}
}

func TestCheckInputValid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   map[string]any
		want map[string]any
	}{
		{
			name: "defaults applied",
			in:   map[string]any{"env": "dev"},
			want: map[string]any{"env": "dev", "name": "World", "dry_run": false, "labels": map[string]any{"team": "ops"}},
		},
		{
			name: "explicit null takes the default",
			in:   map[string]any{"env": "dev", "name": nil},
			want: map[string]any{"env": "dev", "name": "World", "dry_run": false, "labels": map[string]any{"team": "ops"}},
		},
		{
			name: "every type",
			in: map[string]any{
				"env": "prod", "name": "Ada", "count": 3, "ratio": 0.5, "dry_run": true,
				"tags": []any{"a", 1}, "labels": map[string]any{}, "level": 2, "anything": []any{true},
			},
			want: map[string]any{
				"env": "prod", "name": "Ada", "count": int64(3), "ratio": 0.5, "dry_run": true,
				"tags": []any{"a", 1}, "labels": map[string]any{}, "level": int64(2), "anything": []any{true},
			},
		},
		{
			name: "integers from JSON decoding",
			in:   map[string]any{"env": "dev", "count": 2.0, "ratio": 4.0, "level": float64(3)},
			want: map[string]any{"env": "dev", "count": int64(2), "ratio": int64(4), "level": int64(3), "name": "World", "dry_run": false, "labels": map[string]any{"team": "ops"}},
		},
		{
			name: "json.Number",
			in:   map[string]any{"env": "dev", "count": json.Number("7"), "ratio": json.Number("1.25")},
			want: map[string]any{"env": "dev", "count": int64(7), "ratio": 1.25, "name": "World", "dry_run": false, "labels": map[string]any{"team": "ops"}},
		},
		{
			name: "typed slices are arrays",
			in:   map[string]any{"env": "dev", "tags": []string{"x", "y"}},
			want: map[string]any{"env": "dev", "tags": []any{"x", "y"}, "name": "World", "dry_run": false, "labels": map[string]any{"team": "ops"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			before := maps.Clone(tt.in)
			got, problems := CheckInput(inputSchema(), tt.in)
			require.Empty(t, problems)
			require.Equal(t, tt.want, got)
			require.Equal(t, before, tt.in, "the caller's map is not modified")
		})
	}
}

func TestCheckInputProblems(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   map[string]any
		want []string
	}{
		{"nil input: required field", nil, []string{`input "env": required field is missing`}},
		{"required given as null", map[string]any{"env": nil}, []string{`input "env": required field is missing`}},
		{"string for integer", map[string]any{"env": "dev", "count": "abc"}, []string{`input "count": expected integer, got string "abc"`}},
		{"fraction for integer", map[string]any{"env": "dev", "count": 2.5}, []string{`input "count": expected integer, got number 2.5`}},
		{"integer for string", map[string]any{"env": 1}, []string{`input "env": expected string, got integer 1`}},
		{"string for boolean", map[string]any{"env": "dev", "dry_run": "true"}, []string{`input "dry_run": expected boolean, got string "true"`}},
		{"string for number", map[string]any{"env": "dev", "ratio": "0.5"}, []string{`input "ratio": expected number, got string "0.5"`}},
		{"object for array", map[string]any{"env": "dev", "tags": map[string]any{"a": 1}}, []string{`input "tags": expected array, got object {"a":1}`}},
		{"array for object", map[string]any{"env": "dev", "labels": []any{1}}, []string{`input "labels": expected object, got array [1]`}},
		{"enum", map[string]any{"env": "qa"}, []string{`input "env": "qa" is not one of "dev", "prod"`}},
		{"numeric enum", map[string]any{"env": "dev", "level": 4}, []string{`input "level": 4 is not one of 1, 2, 3`}},
		{"unknown field with suggestion", map[string]any{"env": "dev", "nmae": "x"}, []string{`input "nmae": unknown field (did you mean "name"?)`}},
		{"unknown field", map[string]any{"env": "dev", "zzzzzz": 1}, []string{`input "zzzzzz": unknown field`}},
		{
			"every problem at once, sorted",
			map[string]any{"count": "x", "dry_run": 1, "bogus": true},
			[]string{
				`input "bogus": unknown field`,
				`input "count": expected integer, got string "x"`,
				`input "dry_run": expected boolean, got integer 1`,
				`input "env": required field is missing`,
			},
		},
		{"long values are shortened", map[string]any{"env": strings.Repeat("x", 100)}, []string{`input "env": (a string of 102 bytes) is not one of "dev", "prod"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, problems := CheckInput(inputSchema(), tt.in)
			require.Equal(t, tt.want, problems)
		})
	}
}

func TestCheckInputEmptySchema(t *testing.T) {
	t.Parallel()
	got, problems := CheckInput(nil, nil)
	require.Empty(t, problems)
	require.Equal(t, map[string]any{}, got)

	_, problems = CheckInput(nil, map[string]any{"x": 1})
	require.Equal(t, []string{`input "x": unknown field`}, problems)
}

func TestCheckInputDefaultsAreCopies(t *testing.T) {
	t.Parallel()
	schema := inputSchema()
	got, problems := CheckInput(schema, map[string]any{"env": "dev"})
	require.Empty(t, problems)
	got["labels"].(map[string]any)["team"] = "changed"
	require.Equal(t, map[string]any{"team": "ops"}, schema.Lookup("labels").Default)
}
