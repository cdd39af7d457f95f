package workspace

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"filippo.io/age/armor"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// sopsEncrypt writes plain (a YAML mapping) as sops does with an age key:
// each value AES-256-GCM encrypted under a random data key with its key
// path as additional data, the data key age-encrypted to the recipient,
// and the MAC (SHA-512 over the values, upper-case hex) encrypted with the
// lastmodified time as additional data. unencryptedSuffix keys stay plain.
func sopsEncrypt(t *testing.T, plain string, recipient *age.X25519Recipient, unencryptedSuffix string) []byte {
	t.Helper()
	var doc yaml.Node
	require.NoError(t, yaml.Unmarshal([]byte(plain), &doc))
	root := doc.Content[0]
	key := make([]byte, 32)
	_, err := rand.Read(key)
	require.NoError(t, err)
	seal := func(v, typ, ad string) string {
		if v == "" {
			return ""
		}
		block, err := aes.NewCipher(key)
		require.NoError(t, err)
		gcm, err := cipher.NewGCMWithNonceSize(block, 32)
		require.NoError(t, err)
		iv := make([]byte, 32)
		_, err = rand.Read(iv)
		require.NoError(t, err)
		out := gcm.Seal(nil, iv, []byte(v), []byte(ad))
		b := base64.StdEncoding.EncodeToString
		return fmt.Sprintf("ENC[AES256_GCM,data:%s,iv:%s,tag:%s,type:%s]", b(out[:len(out)-16]), b(iv), b(out[len(out)-16:]), typ)
	}
	mac := sha512.New()
	var walk func(n *yaml.Node, path []string)
	walk = func(n *yaml.Node, path []string) {
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				walk(n.Content[i+1], append(path[:len(path):len(path)], n.Content[i].Value))
			}
		case yaml.SequenceNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.ScalarNode:
			mac.Write(sopsMACBytes(n))
			if unencryptedSuffix != "" && strings.HasSuffix(path[len(path)-1], unencryptedSuffix) {
				return
			}
			typ := map[string]string{"!!str": "str", "!!int": "int", "!!float": "float", "!!bool": "bool"}[n.ShortTag()]
			v := n.Value
			if typ == "bool" {
				b, _ := strconv.ParseBool(v)
				v = strconv.FormatBool(b)
			}
			n.Value, n.Tag, n.Style = seal(v, typ, strings.Join(path, ":")+":"), "!!str", 0
		}
	}
	walk(root, nil)
	var enc bytes.Buffer
	aw := armor.NewWriter(&enc)
	w, err := age.Encrypt(aw, recipient)
	require.NoError(t, err)
	_, err = w.Write(key)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	require.NoError(t, aw.Close())
	lm := time.Now().UTC().Format(time.RFC3339)
	meta := map[string]any{
		"age":          []map[string]string{{"recipient": recipient.String(), "enc": enc.String()}},
		"lastmodified": lm,
		"mac":          seal(fmt.Sprintf("%X", mac.Sum(nil)), "str", lm),
		"version":      "3.9.4",
	}
	if unencryptedSuffix != "" {
		meta["unencrypted_suffix"] = unencryptedSuffix
	}
	var mn yaml.Node
	require.NoError(t, mn.Encode(meta))
	root.Content = append(root.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "sops"}, &mn)
	out, err := yaml.Marshal(&doc)
	require.NoError(t, err)
	return out
}

const sopsPlainWorkflow = `secrets:
  db_password: "p@ss w0rd: with colon"
  port: 5432
  ratio: 0.5
  enabled: true
  multi: |
    line one
    line two
  empty: ""
  list: [a, b]
actions:
  use:
    type: script
    script: "echo {{ secret.port }}"
    timeout_unencrypted: 30s
`

func TestSOPSDecrypt(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	require.NoError(t, err)
	other, err := age.GenerateX25519Identity()
	require.NoError(t, err)

	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, ".workflows"), 0o755))
	enc := sopsEncrypt(t, sopsPlainWorkflow, id.Recipient(), "_unencrypted")
	require.NotContains(t, string(enc), "w0rd")
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".workflows", "secrets.sops.yaml"), enc, 0o600))

	// The key from SOPS_AGE_KEY_FILE.
	keyFile := filepath.Join(t.TempDir(), "keys.txt")
	require.NoError(t, os.WriteFile(keyFile, []byte("# created by a test\n"+id.String()+"\n"), 0o600))
	t.Setenv("SOPS_AGE_KEY", "")
	t.Setenv("SOPS_AGE_KEY_FILE", keyFile)
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	ws := loaded(t, dir)
	// The only problem is the key the plain text had under an unencrypted
	// suffix: it is not an action key — proof it was read as plain text.
	require.Len(t, ws.Problems, 1)
	require.Contains(t, ws.Problems[0].Message, `unknown key "timeout_unencrypted"`)
	require.Equal(t, map[string]any{
		"db_password": "p@ss w0rd: with colon", "port": 5432, "ratio": 0.5, "enabled": true,
		"multi": "line one\nline two\n", "empty": "", "list": []any{"a", "b"},
	}, ws.Secrets)

	// The key from SOPS_AGE_KEY, among others.
	t.Setenv("SOPS_AGE_KEY_FILE", "")
	t.Setenv("SOPS_AGE_KEY", other.String()+"\n"+id.String())
	ws, err = Load(dir)
	require.NoError(t, err)
	require.Equal(t, "p@ss w0rd: with colon", ws.Secrets["db_password"])

	// The wrong key, no key, a changed value: a problem of that file, no value shown.
	t.Setenv("SOPS_AGE_KEY", other.String())
	ws, err = Load(dir)
	require.NoError(t, err)
	require.Len(t, ws.Problems, 1)
	require.Contains(t, ws.Problems[0].Message, "cannot decrypt this SOPS file: none of the age keys available (SOPS_AGE_KEY")
	require.Contains(t, ws.Problems[0].Message, id.Recipient().String())

	t.Setenv("SOPS_AGE_KEY", "")
	ws, err = Load(dir)
	require.NoError(t, err)
	require.Contains(t, ws.Problems[0].Message, "no age key to decrypt it with: set SOPS_AGE_KEY or SOPS_AGE_KEY_FILE")

	t.Setenv("SOPS_AGE_KEY", id.String())
	// Swap two encrypted values: each still decrypts with the right key, but
	// not under the other's path.
	var doc yaml.Node
	require.NoError(t, yaml.Unmarshal(enc, &doc))
	sec := doc.Content[0].Content[1]
	sec.Content[1].Value, sec.Content[3].Value = sec.Content[3].Value, sec.Content[1].Value
	swapped, err := yaml.Marshal(&doc)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".workflows", "secrets.sops.yaml"), swapped, 0o600))
	ws, err = Load(dir)
	require.NoError(t, err)
	require.Contains(t, ws.Problems[0].Message, "secrets.db_password: cannot decrypt a value (wrong key, or the file was changed)")
	require.NotContains(t, ws.Problems[0].Message, "w0rd")

	// An unencrypted value changed: the MAC does not match.
	tampered := strings.Replace(string(enc), "timeout_unencrypted: 30s", "timeout_unencrypted: 31s", 1)
	require.NotEqual(t, string(enc), tampered)
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".workflows", "secrets.sops.yaml"), []byte(tampered), 0o600))
	ws, err = Load(dir)
	require.NoError(t, err)
	require.Contains(t, ws.Problems[0].Message, "MAC mismatch")

	// A .sops.yaml without metadata, and one encrypted only to KMS.
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".workflows", "secrets.sops.yaml"), []byte("secrets: {a: b}\n"), 0o600))
	ws, err = Load(dir)
	require.NoError(t, err)
	require.Contains(t, ws.Problems[0].Message, "it has no sops metadata")
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".workflows", "secrets.sops.yaml"), []byte("secrets: {a: b}\nsops:\n  kms: [{arn: x}]\n  lastmodified: \"2024-01-01T00:00:00Z\"\n"), 0o600))
	ws, err = Load(dir)
	require.NoError(t, err)
	require.Contains(t, ws.Problems[0].Message, "not encrypted to any age key (only age keys are supported here; it uses AWS KMS)")
}
