package workspace

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"filippo.io/age"
	"filippo.io/age/armor"
	"gopkg.in/yaml.v3"
)

// SOPS-encrypted workflow files (*.sops.yaml, *.sops.yml) are decrypted when
// they are loaded, with age keys: the SOPS file format (each value
// AES-256-GCM encrypted with a data key; the data key age-encrypted to each
// recipient; a MAC over every value) is small and stable, so it is read here
// with filippo.io/age rather than through the getsops/sops module, which
// pulls in the clients of every cloud key service. Only age keys are
// supported; a file encrypted only to KMS, PGP or Vault keys is a problem
// that says so.
//
// The age identities come from SOPS_AGE_KEY (keys, one per line), the file
// SOPS_AGE_KEY_FILE names, or $XDG_CONFIG_HOME/sops/age/keys.txt
// (~/.config/sops/age/keys.txt), as the sops tool looks for them.

// IsSOPSFile reports whether a workflow file name is SOPS-encrypted.
func IsSOPSFile(name string) bool {
	n := strings.ToLower(name)
	return strings.HasSuffix(n, ".sops.yaml") || strings.HasSuffix(n, ".sops.yml")
}

var sopsValueRE = regexp.MustCompile(`^ENC\[AES256_GCM,data:([^,]*),iv:([^,]*),tag:([^,]*),type:([a-z]+)\]$`)

// sopsMeta is the part of the `sops` key this reader uses.
type sopsMeta struct {
	Age []struct {
		Recipient string `yaml:"recipient"`
		Enc       string `yaml:"enc"`
	} `yaml:"age"`
	KMS               []any  `yaml:"kms"`
	GCPKMS            []any  `yaml:"gcp_kms"`
	AzureKV           []any  `yaml:"azure_kv"`
	HCVault           []any  `yaml:"hc_vault"`
	PGP               []any  `yaml:"pgp"`
	LastModified      string `yaml:"lastmodified"`
	MAC               string `yaml:"mac"`
	UnencryptedSuffix string `yaml:"unencrypted_suffix"`
	EncryptedSuffix   string `yaml:"encrypted_suffix"`
	UnencryptedRegex  string `yaml:"unencrypted_regex"`
	EncryptedRegex    string `yaml:"encrypted_regex"`
	MACOnlyEncrypted  bool   `yaml:"mac_only_encrypted"`
	Version           string `yaml:"version"`
}

// sopsMACOnlyEncryptedInit starts the MAC of files with mac_only_encrypted,
// as sops does, so the two MAC kinds never match each other.
var sopsMACOnlyEncryptedInit = []byte{0x8a, 0x3f, 0xd2, 0xad, 0x54, 0xce, 0x66, 0x52, 0x7b, 0x10, 0x34, 0xf3, 0xd1, 0x47, 0xbe, 0xb, 0xb, 0x97, 0x5b, 0x3b, 0xf4, 0x4f, 0x72, 0xc6, 0xfd, 0xad, 0xec, 0x81, 0x76, 0xf2, 0x7d, 0x69}

// DecryptSOPS decrypts a SOPS document (its top-level mapping) in place:
// every encrypted value becomes its plaintext scalar, the `sops` key is
// removed, and the MAC is checked. Positions of the nodes are kept, so
// problems point into the encrypted file. Errors never include a value.
func DecryptSOPS(doc *yaml.Node) error {
	if doc == nil || doc.Kind != yaml.MappingNode {
		return errors.New("not a SOPS file: the document is not a mapping")
	}
	var metaNode *yaml.Node
	var content []*yaml.Node
	for i := 0; i+1 < len(doc.Content); i += 2 {
		if doc.Content[i].Value == "sops" {
			metaNode = doc.Content[i+1]
			continue
		}
		content = append(content, doc.Content[i], doc.Content[i+1])
	}
	if metaNode == nil {
		return errors.New("not a SOPS file: it has no sops metadata (encrypt it with sops, or drop .sops from its name)")
	}
	var meta sopsMeta
	if err := metaNode.Decode(&meta); err != nil {
		return fmt.Errorf("invalid sops metadata: %v", err)
	}
	if len(meta.Age) == 0 {
		return fmt.Errorf("the file is not encrypted to any age key (only age keys are supported here; it uses %s)", otherKeyKinds(&meta))
	}
	key, err := sopsDataKey(&meta)
	if err != nil {
		return err
	}
	var unenc, enc *regexp.Regexp
	if meta.UnencryptedRegex != "" {
		if unenc, err = regexp.Compile(meta.UnencryptedRegex); err != nil {
			return fmt.Errorf("invalid sops metadata: unencrypted_regex: %v", err)
		}
	}
	if meta.EncryptedRegex != "" {
		if enc, err = regexp.Compile(meta.EncryptedRegex); err != nil {
			return fmt.Errorf("invalid sops metadata: encrypted_regex: %v", err)
		}
	}
	shouldEncrypt := func(path []string) bool {
		e := true
		if meta.UnencryptedSuffix != "" {
			for _, p := range path {
				if strings.HasSuffix(p, meta.UnencryptedSuffix) {
					e = false
					break
				}
			}
		}
		if meta.EncryptedSuffix != "" {
			e = false
			for _, p := range path {
				if strings.HasSuffix(p, meta.EncryptedSuffix) {
					e = true
					break
				}
			}
		}
		if unenc != nil {
			for _, p := range path {
				if unenc.MatchString(p) {
					e = false
					break
				}
			}
		}
		if enc != nil {
			e = false
			for _, p := range path {
				if enc.MatchString(p) {
					e = true
					break
				}
			}
		}
		return e
	}
	mac := sha512.New()
	if meta.MACOnlyEncrypted {
		mac.Write(sopsMACOnlyEncryptedInit)
	}
	var walk func(n *yaml.Node, path []string) error
	walk = func(n *yaml.Node, path []string) error {
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				if err := walk(n.Content[i+1], append(path[:len(path):len(path)], n.Content[i].Value)); err != nil {
					return err
				}
			}
		case yaml.SequenceNode:
			for _, c := range n.Content {
				if err := walk(c, path); err != nil {
					return err
				}
			}
		case yaml.ScalarNode:
			if n.ShortTag() == "!!null" {
				return nil
			}
			encrypted := shouldEncrypt(path)
			if encrypted {
				if err := sopsDecryptScalar(n, key, strings.Join(path, ":")+":"); err != nil {
					return fmt.Errorf("%s: %w", strings.Join(path, "."), err)
				}
			}
			if !meta.MACOnlyEncrypted || encrypted {
				mac.Write(sopsMACBytes(n))
			}
		case yaml.AliasNode:
			return fmt.Errorf("%s: aliases are not supported in SOPS files", strings.Join(path, "."))
		}
		return nil
	}
	for i := 0; i+1 < len(content); i += 2 {
		if err := walk(content[i+1], []string{content[i].Value}); err != nil {
			return err
		}
	}
	lm, err := time.Parse(time.RFC3339, meta.LastModified)
	if err != nil {
		return fmt.Errorf("invalid sops metadata: lastmodified %q is not an RFC 3339 time", meta.LastModified)
	}
	want, err := sopsOpen(meta.MAC, key, lm.Format(time.RFC3339))
	if err != nil {
		return fmt.Errorf("cannot check the file's MAC: %v", err)
	}
	if got := fmt.Sprintf("%X", mac.Sum(nil)); string(want.plain) != got {
		return errors.New("MAC mismatch: the file was changed after it was encrypted")
	}
	doc.Content = content
	return nil
}

func otherKeyKinds(m *sopsMeta) string {
	var kinds []string
	for _, k := range []struct {
		n    string
		list []any
	}{{"AWS KMS", m.KMS}, {"GCP KMS", m.GCPKMS}, {"Azure Key Vault", m.AzureKV}, {"Vault transit", m.HCVault}, {"PGP", m.PGP}} {
		if len(k.list) > 0 {
			kinds = append(kinds, k.n)
		}
	}
	if len(kinds) == 0 {
		return "no keys at all"
	}
	return strings.Join(kinds, ", ")
}

// sopsIdentities reads the age identities the sops tool would use.
func sopsIdentities() ([]age.Identity, []string, error) {
	var ids []age.Identity
	var tried []string
	if k := os.Getenv("SOPS_AGE_KEY"); k != "" {
		tried = append(tried, "SOPS_AGE_KEY")
		got, err := age.ParseIdentities(strings.NewReader(k))
		if err != nil {
			return nil, tried, fmt.Errorf("SOPS_AGE_KEY holds no valid age identity: %v", err)
		}
		ids = append(ids, got...)
	}
	files := []string{}
	if f := os.Getenv("SOPS_AGE_KEY_FILE"); f != "" {
		files = append(files, f)
	}
	if dir, err := os.UserConfigDir(); err == nil {
		files = append(files, filepath.Join(dir, "sops", "age", "keys.txt"))
	}
	for _, f := range files {
		tried = append(tried, f)
		b, err := os.ReadFile(f)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) && f != os.Getenv("SOPS_AGE_KEY_FILE") {
				continue
			}
			return nil, tried, fmt.Errorf("read age keys from %s: %v", f, err)
		}
		got, err := age.ParseIdentities(bytes.NewReader(b))
		if err != nil {
			return nil, tried, fmt.Errorf("%s holds no valid age identity: %v", f, err)
		}
		ids = append(ids, got...)
	}
	return ids, tried, nil
}

// sopsDataKey decrypts the file's data key with the first age identity
// that matches one of its recipients.
func sopsDataKey(meta *sopsMeta) ([]byte, error) {
	ids, tried, err := sopsIdentities()
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("no age key to decrypt it with: set SOPS_AGE_KEY or SOPS_AGE_KEY_FILE (looked in %s)", strings.Join(tried, ", "))
	}
	recipients := make([]string, 0, len(meta.Age))
	for _, r := range meta.Age {
		recipients = append(recipients, r.Recipient)
		rd, err := age.Decrypt(armor.NewReader(strings.NewReader(r.Enc)), ids...)
		if err != nil {
			continue
		}
		key, err := io.ReadAll(io.LimitReader(rd, 1024))
		if err != nil {
			continue
		}
		if len(key) != 32 {
			return nil, fmt.Errorf("the data key for %s is %d bytes, want 32", r.Recipient, len(key))
		}
		return key, nil
	}
	return nil, fmt.Errorf("none of the age keys available (%s) is a recipient of the file (%s)", strings.Join(tried, ", "), strings.Join(recipients, ", "))
}

type sopsPlain struct {
	plain []byte
	typ   string
}

// sopsOpen decrypts one ENC[AES256_GCM,...] value; "" stays "".
func sopsOpen(value string, key []byte, additional string) (sopsPlain, error) {
	if value == "" {
		return sopsPlain{typ: "str"}, nil
	}
	m := sopsValueRE.FindStringSubmatch(value)
	if m == nil {
		return sopsPlain{}, errors.New("not an encrypted value (ENC[AES256_GCM,…])")
	}
	data, err1 := base64.StdEncoding.DecodeString(m[1])
	iv, err2 := base64.StdEncoding.DecodeString(m[2])
	tag, err3 := base64.StdEncoding.DecodeString(m[3])
	if err := errors.Join(err1, err2, err3); err != nil || len(iv) == 0 {
		return sopsPlain{}, errors.New("malformed encrypted value")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return sopsPlain{}, err
	}
	gcm, err := cipher.NewGCMWithNonceSize(block, len(iv))
	if err != nil {
		return sopsPlain{}, err
	}
	plain, err := gcm.Open(nil, iv, append(data, tag...), []byte(additional))
	if err != nil {
		return sopsPlain{}, errors.New("cannot decrypt a value (wrong key, or the file was changed)")
	}
	return sopsPlain{plain: plain, typ: m[4]}, nil
}

// sopsDecryptScalar replaces an encrypted scalar with its plaintext, typed
// as sops recorded it.
func sopsDecryptScalar(n *yaml.Node, key []byte, additional string) error {
	if n.ShortTag() != "!!str" {
		return errors.New("a value that should be encrypted is not (was the file edited by hand?)")
	}
	p, err := sopsOpen(n.Value, key, additional)
	if err != nil {
		return err
	}
	v := string(p.plain)
	n.Style = 0
	switch p.typ {
	case "str", "bytes":
		n.Tag, n.Value = "!!str", v
		if strings.Contains(v, "\n") {
			n.Style = yaml.LiteralStyle
		}
	case "int":
		if _, err := strconv.Atoi(v); err != nil {
			return errors.New("a value of type int does not hold an integer")
		}
		n.Tag, n.Value = "!!int", v
	case "float":
		if _, err := strconv.ParseFloat(v, 64); err != nil {
			return errors.New("a value of type float does not hold a number")
		}
		n.Tag, n.Value = "!!float", v
	case "bool":
		b, err := strconv.ParseBool(v)
		if err != nil {
			return errors.New("a value of type bool does not hold true or false")
		}
		n.Tag, n.Value = "!!bool", strconv.FormatBool(b)
	default:
		return fmt.Errorf("unknown value type %q", p.typ)
	}
	return nil
}

// sopsMACBytes is a value as sops feeds it to the MAC.
func sopsMACBytes(n *yaml.Node) []byte {
	switch n.ShortTag() {
	case "!!int":
		if i, err := strconv.Atoi(n.Value); err == nil {
			return []byte(strconv.Itoa(i))
		}
	case "!!float":
		if f, err := strconv.ParseFloat(n.Value, 64); err == nil {
			return []byte(strconv.FormatFloat(f, 'f', -1, 64))
		}
	case "!!bool":
		var b bool
		if n.Decode(&b) == nil {
			if b {
				return []byte("True")
			}
			return []byte("False")
		}
	}
	return []byte(n.Value)
}
