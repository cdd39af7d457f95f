package workspace

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseSecretRef(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in           string
		kind, target string
		ok           bool
	}{
		{"ref+env://DB_PASSWORD", "env", "DB_PASSWORD", true},
		{"ref+file://secrets/db.txt", "file", "secrets/db.txt", true},
		{"ref+file:///etc/stroem/token", "file", "/etc/stroem/token", true},
		{"ref+vault://kv/db#pw", "vault", "kv/db#pw", true}, // syntax ok; CheckSecretRef rejects the kind
		{"ref+env://", "env", "", true},
		{"plain literal", "", "", false},
		{"", "", "", false},
		{"ref+://x", "", "", false},
		{"ref+env:/X", "", "", false},
		{"ref+e nv://X", "", "", false},
		{"env://X", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			kind, target, ok := ParseSecretRef(tt.in)
			require.Equal(t, tt.ok, ok)
			require.Equal(t, tt.kind, kind)
			require.Equal(t, tt.target, target)
		})
	}
}

func TestCheckSecretRef(t *testing.T) {
	t.Parallel()
	require.NoError(t, CheckSecretRef("literal"))
	require.NoError(t, CheckSecretRef("ref+env://X"))
	require.NoError(t, CheckSecretRef("ref+file://x.txt"))
	require.ErrorContains(t, CheckSecretRef("ref+vault://x"), `unsupported secret reference "ref+vault://x"`)
	require.ErrorContains(t, CheckSecretRef("ref+env://"), "names no variable")
	require.ErrorContains(t, CheckSecretRef("ref+file://"), "names no file")
}

func TestResolveSecrets(t *testing.T) {
	// t.Setenv: not parallel.
	t.Setenv("STROEM_TEST_SECRET", "s3cret-env")
	t.Setenv("STROEM_TEST_EMPTY", "")
	dir := t.TempDir()
	abs := filepath.Join(dir, "token.txt")
	require.NoError(t, os.WriteFile(abs, []byte("file-token\n"), 0o600))
	crlf := filepath.Join(dir, "crlf.txt")
	require.NoError(t, os.WriteFile(crlf, []byte("line1\nline2\r\n\n"), 0o600))

	raw := map[string]any{
		"literal": "just text",
		"number":  42,
		"env":     "ref+env://STROEM_TEST_SECRET",
		"empty":   "ref+env://STROEM_TEST_EMPTY",
		"db": map[string]any{
			"password": "ref+file://" + abs,
			"hosts":    []any{"ref+env://STROEM_TEST_SECRET", "h2"},
		},
		"multi": "ref+file://" + crlf,
	}
	got, err := ResolveSecrets(raw)
	require.NoError(t, err)
	require.Equal(t, map[string]any{
		"literal": "just text",
		"number":  42,
		"env":     "s3cret-env",
		"empty":   "",
		"db": map[string]any{
			"password": "file-token",
			"hosts":    []any{"s3cret-env", "h2"},
		},
		"multi": "line1\nline2",
	}, got)
	// raw is untouched.
	require.Equal(t, "ref+env://STROEM_TEST_SECRET", raw["env"])
	require.Equal(t, "ref+file://"+abs, raw["db"].(map[string]any)["password"])

	empty, err := ResolveSecrets(nil)
	require.NoError(t, err)
	require.Equal(t, map[string]any{}, empty)
}

func TestResolveSecretsRelativeFile(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "pw"), []byte("relative-pw\n"), 0o600))
	t.Chdir(dir)
	got, err := ResolveSecrets(map[string]any{"pw": "ref+file://pw"})
	require.NoError(t, err)
	require.Equal(t, "relative-pw", got["pw"])
}

func TestResolveSecretsErrors(t *testing.T) {
	t.Setenv("STROEM_TEST_SET", "x")
	got, err := ResolveSecrets(map[string]any{
		"ok":    "ref+env://STROEM_TEST_SET",
		"unset": "ref+env://STROEM_TEST_DEFINITELY_UNSET",
		"nested": map[string]any{
			"missing": "ref+file:///nonexistent/stroem/secret",
		},
		"vault": "ref+vault://kv/x",
	})
	require.Nil(t, got)
	require.EqualError(t, err, `secret "nested.missing": file "/nonexistent/stroem/secret" does not exist; `+
		`secret "unset": environment variable "STROEM_TEST_DEFINITELY_UNSET" is not set; `+
		`secret "vault": unsupported secret reference "ref+vault://kv/x": the kind must be env or file (ref+env://VAR, ref+file://path)`)
}
