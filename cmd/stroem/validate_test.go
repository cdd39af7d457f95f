package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// compatWorkspace is the compatibility workspace kept in the repository.
const compatWorkspace = "../../workspace/testdata/compat"

// runValidate runs `stroem validate args…` in-process and returns stdout
// and the exit code the binary would have.
func runValidate(t *testing.T, args ...string) (string, int) {
	t.Helper()
	r := runCLI(t, t.Context(), append([]string{"validate"}, args...)...)
	return r.out, r.code
}

// brokenCopy copies the compatibility workspace and breaks one step's
// action reference.
func brokenCopy(t *testing.T) string {
	t.Helper()
	dst := t.TempDir()
	for _, rel := range []string{".workflows/hello.yaml", ".workflows/deploy.yaml", "actions/deploy.sh"} {
		data, err := os.ReadFile(filepath.Join(compatWorkspace, rel))
		require.NoError(t, err)
		if rel == ".workflows/hello.yaml" {
			data = []byte(strings.Replace(string(data), "action: greet", "action: gret", 1))
		}
		require.NoError(t, os.MkdirAll(filepath.Join(dst, filepath.Dir(rel)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dst, rel), data, 0o755))
	}
	return dst
}

func TestValidateCommand(t *testing.T) {
	t.Parallel()
	broken := brokenCopy(t)
	brokenFile := filepath.Join(broken, ".workflows", "hello.yaml")
	tests := []struct {
		name string
		args []string
		code int
		want string // exact stdout
	}{
		{
			name: "valid folder",
			args: []string{compatWorkspace},
			want: "ok: 5 actions, 2 tasks, 0 triggers\n",
		},
		{
			name: "valid single file",
			args: []string{filepath.Join(compatWorkspace, ".workflows", "hello.yaml")},
			want: "ok: 2 actions, 1 task, 0 triggers\n",
		},
		{
			name: "invalid folder",
			args: []string{broken},
			code: 1,
			want: brokenFile + `:21:17: task hello-world, step say-hello: unknown action "gret" (did you mean "greet"?)` + "\n1 problem\n",
		},
		{
			name: "missing path",
			args: []string{filepath.Join(broken, "nope")},
			code: 2,
		},
		{
			name: "no path",
			code: 2,
		},
		{
			name: "two paths",
			args: []string{broken, broken},
			code: 2,
		},
		{
			name: "bad output format",
			args: []string{broken, "--output", "yaml"},
			code: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out, code := runValidate(t, tt.args...)
			require.Equal(t, tt.code, code, "stdout:\n%s", out)
			require.Equal(t, tt.want, out)
		})
	}
}

func TestValidateCommandJSON(t *testing.T) {
	t.Parallel()
	type problem struct {
		File    string `json:"file"`
		Line    int    `json:"line"`
		Col     int    `json:"col"`
		Message string `json:"message"`
	}
	type doc struct {
		Valid    bool      `json:"valid"`
		Problems []problem `json:"problems"`
		Actions  int       `json:"actions"`
		Tasks    int       `json:"tasks"`
		Triggers int       `json:"triggers"`
	}

	out, code := runValidate(t, compatWorkspace, "--output", "json")
	require.Equal(t, 0, code)
	var ok doc
	require.NoError(t, json.Unmarshal([]byte(out), &ok))
	require.Equal(t, doc{Valid: true, Problems: []problem{}, Actions: 5, Tasks: 2}, ok)

	broken := brokenCopy(t)
	out, code = runValidate(t, broken, "-o", "json")
	require.Equal(t, 1, code)
	var bad doc
	require.NoError(t, json.Unmarshal([]byte(out), &bad))
	require.Equal(t, doc{
		Problems: []problem{{
			File:    filepath.Join(broken, ".workflows", "hello.yaml"),
			Line:    21,
			Col:     17,
			Message: `task hello-world, step say-hello: unknown action "gret" (did you mean "greet"?)`,
		}},
		Actions: 5,
		Tasks:   1,
	}, bad)
}

// TestValidateCommandFileProblem: a problem about a whole file prints
// without a line and column.
func TestValidateCommandFileProblem(t *testing.T) {
	t.Parallel()
	dir := brokenCopy(t)
	outside := filepath.Join(t.TempDir(), "secret.txt")
	require.NoError(t, os.WriteFile(outside, []byte("not for workers"), 0o600))
	require.NoError(t, os.Symlink(outside, filepath.Join(dir, "actions", "host")))
	out, code := runValidate(t, dir)
	require.Equal(t, 1, code)
	require.Contains(t, out, "\n"+filepath.Join(dir, "actions", "host")+`: symlink to "`+outside+`" leaves the workspace; left out of the revision and the archive`+"\n")
	require.True(t, strings.HasSuffix(out, "\n2 problems\n"), out)
}

// Ctrl-C during validate ends it, exit 130: main turns SIGINT into a
// cancelled context, which loading a workspace does not watch, so a large
// workspace was validated to the end (27 s for 70 MB) whatever was pressed.
func TestValidateInterrupted(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	cancel() // what Ctrl-C does
	r := runCLI(t, ctx, "validate", compatWorkspace)
	require.Equal(t, 130, r.code, r.err)
	require.Empty(t, r.out)
	require.Empty(t, r.err)
}
