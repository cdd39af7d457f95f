package workspace

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// Files written by the real sops tool (testdata/sops/README.md) decrypt to
// the plaintext they were made from: every value type, nested maps, lists,
// multi-line strings, empty strings, the _unencrypted suffix, an encrypted
// comment, encrypted_regex and mac_only_encrypted. A changed value fails
// the MAC check.
func TestSOPSRealFiles(t *testing.T) {
	key, err := filepath.Abs(filepath.Join("testdata", "sops", "key.txt"))
	require.NoError(t, err)
	t.Setenv("SOPS_AGE_KEY", "")
	t.Setenv("SOPS_AGE_KEY_FILE", key)

	plainBody, err := os.ReadFile(filepath.Join("testdata", "sops", "plain", "secrets.yaml"))
	require.NoError(t, err)
	var plain struct {
		Secrets map[string]any `yaml:"secrets"`
	}
	require.NoError(t, yaml.Unmarshal(plainBody, &plain))
	require.Equal(t, "tok-9f2c-very-secret", plain.Secrets["api_token"])

	load := func(t *testing.T, body []byte) *Workspace {
		t.Helper()
		dir := t.TempDir()
		require.NoError(t, os.MkdirAll(filepath.Join(dir, ".workflows"), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, ".workflows", "secrets.sops.yaml"), body, 0o600))
		ws, err := Load(dir)
		require.NoError(t, err)
		return ws
	}
	for _, name := range []string{"all", "regex", "maconly"} {
		t.Run(name, func(t *testing.T) {
			body, err := os.ReadFile(filepath.Join("testdata", "sops", "enc", name+".sops.yaml"))
			require.NoError(t, err)
			require.NotContains(t, string(body), "tok-9f2c-very-secret")
			ws := load(t, body)
			require.Empty(t, ws.Problems)
			require.Equal(t, plain.Secrets, ws.Secrets)
			require.Contains(t, ws.Actions["show"].Inline, "{{ secret.db.user }}")
			require.NotNil(t, ws.Tasks["use-sops"])

			// One encrypted value replaced by another one's: the MAC no
			// longer matches.
			lines := strings.Split(string(body), "\n")
			var token, password int
			for i, l := range lines {
				switch strings.TrimSpace(strings.SplitN(l, ":", 2)[0]) {
				case "api_token":
					token = i
				case "password":
					password = i
				}
			}
			require.NotZero(t, token)
			require.NotZero(t, password)
			lines[token] = strings.Replace(lines[password], "password", "api_token", 1)[2:]
			ws = load(t, []byte(strings.Join(lines, "\n")))
			require.NotEmpty(t, ws.Problems, "a changed value must not load")
			require.NotContains(t, ws.Problems[0].Message, "p@ss")

			// A value sops left in clear (encrypted_regex): the MAC covers
			// it, unless mac_only_encrypted.
			if name == "all" {
				return
			}
			changed := strings.Replace(string(body), "user: admin", "user: root", 1)
			require.NotEqual(t, string(body), changed)
			ws = load(t, []byte(changed))
			if name == "maconly" {
				require.Empty(t, ws.Problems)
				require.Equal(t, "root", ws.Secrets["db"].(map[string]any)["user"])
			} else {
				require.NotEmpty(t, ws.Problems, "a changed clear value must not load")
				require.Contains(t, ws.Problems[0].Message, "MAC")
			}
		})
	}
}
