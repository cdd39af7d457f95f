package main

import (
	"fmt"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/agnivade/levenshtein"
	"gopkg.in/yaml.v3"
)

// Configuration errors in the user's words: before a YAML tree is decoded,
// checkConfigKeys walks it along the configuration struct and reports an
// unknown key with the closest known one, and a value that is not a
// duration or a number with the key and the accepted form, instead of
// yaml.v3's "field x not found in type main.serverConfig".

var (
	durationType    = reflect.TypeOf(time.Duration(0))
	unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()
)

// configKeyError is one problem at a key path, with the YAML line.
type configKeyError struct {
	line int
	key  string
	msg  string
}

func (e *configKeyError) Error() string {
	if e.line > 0 {
		return fmt.Sprintf("line %d: key %s: %s", e.line, e.key, e.msg)
	}
	return fmt.Sprintf("key %s: %s", e.key, e.msg)
}

// checkConfigKeys checks the YAML tree n against the type of dst (a
// pointer to a configuration struct). It returns the first problem, or nil;
// anything it does not understand is left to the decoder. A duration
// written as a bare 0 is rewritten to 0s in n.
func checkConfigKeys(n *yaml.Node, dst any) error {
	if n == nil || n.Kind == 0 {
		return nil
	}
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return nil
		}
		n = n.Content[0]
	}
	return checkNode(n, reflect.TypeOf(dst), "")
}

func checkNode(n *yaml.Node, t reflect.Type, path string) error {
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			return nil
		}
		n = n.Alias
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) || t.Implements(unmarshalerType) {
		return nil
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	switch {
	case t == durationType:
		if n.Kind != yaml.ScalarNode {
			return &configKeyError{n.Line, path, "want a duration (a number with a unit: 500ms, 30s, 5m, 1h30m)"}
		}
		if n.Value == "0" {
			n.Value, n.Tag = "0s", "!!str" // a bare 0 needs no unit
		}
		if _, err := time.ParseDuration(n.Value); err != nil {
			return &configKeyError{n.Line, path, fmt.Sprintf("%q is not a duration (want a number with a unit: 500ms, 30s, 5m, 1h30m)", n.Value)}
		}
		return nil
	case t.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			if path == "" {
				return fmt.Errorf("line %d: want a mapping of keys (key: value lines) at the top level", n.Line)
			}
			return &configKeyError{n.Line, path, "want a mapping of keys (key: value lines)"}
		}
		fields := map[string]reflect.Type{}
		yamlFields(t, fields)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			sub := joinKey(path, k.Value)
			ft, ok := fields[k.Value]
			if !ok {
				names := make([]string, 0, len(fields))
				for name := range fields {
					names = append(names, name)
				}
				hint := configDidYouMean(k.Value, names)
				msg := "unknown key" + hint
				switch {
				case path != "":
					msg += "; " + path + " has " + strings.Join(sortedNames(names), ", ")
				case hint == "":
					msg += " (docs/operations.md#configuration lists every key)"
				}
				return &configKeyError{k.Line, sub, msg}
			}
			if err := checkNode(v, ft, sub); err != nil {
				return err
			}
		}
	case t.Kind() == reflect.Map && t.Key().Kind() == reflect.String:
		if n.Kind != yaml.MappingNode {
			return &configKeyError{n.Line, path, "want a mapping (name: …)"}
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if err := checkNode(n.Content[i+1], t.Elem(), joinKey(path, n.Content[i].Value)); err != nil {
				return err
			}
		}
	case t.Kind() == reflect.Slice && t.Elem().Kind() != reflect.Uint8:
		if n.Kind != yaml.SequenceNode {
			if n.Kind == yaml.ScalarNode {
				return &configKeyError{n.Line, path, fmt.Sprintf("want a list ([a, b]), got %q", n.Value)}
			}
			return &configKeyError{n.Line, path, "want a list ([a, b])"}
		}
		for i, e := range n.Content {
			if err := checkNode(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case n.Kind != yaml.ScalarNode:
		if isScalarKind(t.Kind()) {
			return &configKeyError{n.Line, path, "want a single value, not a list or mapping"}
		}
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64,
		t.Kind() >= reflect.Uint && t.Kind() <= reflect.Uint64:
		if _, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64); err != nil {
			return &configKeyError{n.Line, path, fmt.Sprintf("%q is not a whole number", n.Value)}
		}
	case t.Kind() == reflect.Bool:
		var b bool
		if err := n.Decode(&b); err != nil {
			return &configKeyError{n.Line, path, fmt.Sprintf("%q is not true or false", n.Value)}
		}
	}
	return nil
}

func isScalarKind(k reflect.Kind) bool {
	return k == reflect.String || k == reflect.Bool || (k >= reflect.Int && k <= reflect.Float64)
}

// yamlFields adds the YAML keys of struct t (with ,inline structs' keys)
// and their types to out.
func yamlFields(t reflect.Type, out map[string]reflect.Type) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(","+opts+",", ",inline,") {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				yamlFields(ft, out)
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
}

func joinKey(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func sortedNames(names []string) []string {
	out := append([]string(nil), names...)
	sort.Strings(out)
	return out
}

// configDidYouMean returns ` (did you mean "x"?)` for the known key closest
// to s, or "" when none is close (the rule workspace validation uses).
func configDidYouMean(s string, candidates []string) string {
	if len(s) > 100 {
		return ""
	}
	best, bestD := "", -1
	ls := strings.ToLower(s)
	for _, c := range sortedNames(candidates) {
		d := levenshtein.ComputeDistance(ls, strings.ToLower(c))
		if bestD < 0 || d < bestD {
			best, bestD = c, d
		}
	}
	if best == "" || best == s {
		return ""
	}
	if limit := max(2, len([]rune(s))/3); bestD > limit || bestD >= len([]rune(s)) {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// configPathKeys are the keys whose relative values are file system paths;
// in a configuration file they are relative to the file's directory.
// "*" matches any map key (a workspace name).
var configPathKeys = [][]string{
	{"workspaces", "*", "path"},
	{"workspaces", "*", "auth", "private_key_path"},
	{"workspaces", "*", "auth", "known_hosts_path"},
	{"git_cache_dir"},
	{"log_storage", "local_dir"},
	{"work_dir"},
}

// resolveConfigPaths makes the relative paths among configPathKeys in the
// mapping n absolute against dir, so a configuration file means the same
// whatever directory the server is started from.
func resolveConfigPaths(n *yaml.Node, dir string) {
	if n == nil || n.Kind != yaml.MappingNode {
		return
	}
	for _, keys := range configPathKeys {
		resolvePathKey(n, keys, dir)
	}
}

func resolvePathKey(n *yaml.Node, keys []string, dir string) {
	if n.Kind == yaml.AliasNode {
		return // shared with another key; left as written
	}
	if len(keys) == 0 {
		if n.Kind == yaml.ScalarNode && n.Value != "" && n.Tag != "!!null" && !filepath.IsAbs(n.Value) &&
			!strings.HasPrefix(n.Value, "ref+") && !strings.HasPrefix(n.Value, "~") {
			n.Value = filepath.Join(dir, n.Value)
			n.Tag, n.Style = "!!str", 0
		}
		return
	}
	if n.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if keys[0] == "*" || n.Content[i].Value == keys[0] {
			resolvePathKey(n.Content[i+1], keys[1:], dir)
		}
	}
}
