package workspace

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
)

// Secret reference kinds (SPEC §3): "ref+env://VAR" reads an environment
// variable of the server process, "ref+file://path" reads a file (relative
// to the server's working directory, or absolute).
const (
	SecretEnv  = "env"
	SecretFile = "file"
)

// ParseSecretRef splits a secret reference "ref+KIND://TARGET" into its kind
// and target. ok is false for anything else, which is a literal value.
//
// ok is true for any kind with the reference syntax, including kinds Strøm
// does not support ("ref+vault://…"): such a value is almost certainly a
// mistake, not a password, so CheckSecretRef and ResolveSecrets reject it
// instead of passing it on as a literal.
func ParseSecretRef(s string) (kind, target string, ok bool) {
	rest, found := strings.CutPrefix(s, "ref+")
	if !found {
		return "", "", false
	}
	kind, target, found = strings.Cut(rest, "://")
	if !found || kind == "" {
		return "", "", false
	}
	for _, r := range kind {
		if (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') && (r < '0' || r > '9') && r != '_' && r != '-' {
			return "", "", false
		}
	}
	return kind, target, true
}

// CheckSecretRef reports what is wrong with a secret value without resolving
// it (the validator runs where the server's environment and files are not):
// nil for a literal or a well-formed reference; an error naming the problem
// for an unsupported kind or an empty target.
func CheckSecretRef(s string) error {
	kind, target, ok := ParseSecretRef(s)
	if !ok {
		return nil
	}
	switch kind {
	case SecretEnv, SecretFile:
	default:
		return fmt.Errorf("unsupported secret reference %q: the kind must be env or file (ref+env://VAR, ref+file://path)", s)
	}
	if target == "" {
		return fmt.Errorf("secret reference %q names no %s", s, map[string]string{SecretEnv: "variable", SecretFile: "file"}[kind])
	}
	return nil
}

// ResolveSecrets returns a copy of raw (a workspace's secrets section) with
// every reference, at any depth of maps and lists, replaced by its value:
// the environment variable's value, or the file's content without its
// trailing newlines. Literals and non-string values are kept as they are.
//
// Every unresolvable secret is reported in one error naming the secret's
// path and the variable or file, so an operator fixes them all at once.
// raw is not modified.
func ResolveSecrets(raw map[string]any) (map[string]any, error) {
	var problems []string
	out := resolveSecretValue("", raw, &problems)
	if len(problems) > 0 {
		sort.Strings(problems)
		return nil, errors.New(strings.Join(problems, "; "))
	}
	m, _ := out.(map[string]any)
	if m == nil {
		m = map[string]any{}
	}
	return m, nil
}

func resolveSecretValue(path string, v any, problems *[]string) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = resolveSecretValue(valuePath(path, k), e, problems)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = resolveSecretValue(path+"["+strconv.Itoa(i)+"]", e, problems)
		}
		return out
	case string:
		if hasTemplateSyntax(v) {
			// The upstream form: a template over the server's environment
			// ("{{ env.DB_PASSWORD }}") or a reference resolved with vals
			// ("{{ 'ref+env://X' | vals }}").
			s, err := renderSecretTemplate(v)
			if err != nil {
				*problems = append(*problems, fmt.Sprintf("secret %q: %v", path, err))
				return nil
			}
			return s
		}
		s, err := resolveSecretRef(v)
		if err != nil {
			*problems = append(*problems, fmt.Sprintf("secret %q: %v", path, err))
			return nil
		}
		return s
	default:
		return v
	}
}

func valuePath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func resolveSecretRef(s string) (string, error) {
	kind, target, ok := ParseSecretRef(s)
	if !ok {
		return s, nil
	}
	if err := CheckSecretRef(s); err != nil {
		return "", err
	}
	switch kind {
	case SecretEnv:
		v, set := os.LookupEnv(target)
		if !set {
			return "", fmt.Errorf("environment variable %q is not set", target)
		}
		return v, nil
	default: // SecretFile, checked above
		b, err := os.ReadFile(target)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return "", fmt.Errorf("file %q does not exist", target)
			}
			return "", fmt.Errorf("read file %q: %w", target, err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
}

// renderSecretTemplate renders a secret written as a template. Its context
// is `env`, the server's environment variables (only secrets see it).
func renderSecretTemplate(src string) (string, error) {
	t, err := CompileTemplate(src)
	if err != nil {
		return "", err
	}
	env := map[string]any{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	return t.Render(map[string]any{"env": env})
}
