package workspace

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"gopkg.in/yaml.v3"

	"github.com/stroem/stroem"
)

// The parsed definitions, kept with what the cross-checks need (positions
// of references) until the loader links them.
type (
	rawAction struct {
		a   *Action
		bad bool
	}
	rawStep struct {
		s         *FlowStep
		actionPos Pos
		depPos    []Pos          // one per DependsOn entry
		depsPos   Pos            // the depends_on value
		inputPos  map[string]Pos // one per input key
	}
	rawTask struct {
		t     *Task
		steps []*rawStep
		bad   bool
	}
	rawTrigger struct {
		t        *Trigger
		taskPos  Pos
		inputPos Pos
		bad      bool
	}
	rawSecret struct {
		name  string
		value any
		pos   Pos
		bad   bool
	}
)

// Keys of each kind of definition.
var (
	fieldKeys   = []string{"type", "required", "default", "description", "enum", "options", "name", "allow_custom", "multiple", "secret", "order"}
	retryKeys   = []string{"max_attempts", "delay", "backoff", "max_delay", "jitter", "backoff_strategy", "max_backoff"}
	taskKeys    = []string{"name", "mode", "description", "folder", "input", "flow", "timeout", "retry", HookOnSuccess, HookOnError, HookOnCancel, HookOnSuspended}
	stepKeys    = []string{"action", "name", "description", "depends_on", "input", "continue_on_failure", "timeout", "retry"}
	triggerKeys = []string{"type", "task", "input", "enabled"}
	cronKeys    = []string{"cron", "timezone", "concurrency"}
	webhookKeys = []string{"name", "secret", "mode", "timeout_secs"}
	// eventSourceKeys belong to upstream's event_source triggers (not here yet).
	eventSourceKeys = []string{"target_task", "env", "restart_policy", "backoff_secs", "max_in_flight"}
	fieldTypes      = []string{string(TypeString), string(TypeText), string(TypeInteger), string(TypeNumber), string(TypeBoolean), "bool", string(TypeDate), string(TypeDateTime), string(TypeArray), string(TypeObject)}
)

// Retry defaults, applied when a retry block leaves a key out.
const (
	DefaultMaxAttempts = 3
	DefaultBackoff     = 30 * time.Second
	// DefaultJitter is the jitter that `jitter: true` stands for: each delay
	// is spread by up to ±25 %.
	DefaultJitter = 0.25
)

// MaxSchemaFields bounds an input or output schema: input checks compare
// every given key with the schema, and a form with more fields is no form.
const MaxSchemaFields = 1000

// Webhook timeouts (seconds) for sync mode.
const (
	DefaultWebhookTimeoutSecs = 30
	MaxWebhookTimeoutSecs     = 300
)

var (
	envName     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	webhookName = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
	cronParser  = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)
)

// reservedStepNames are the template context's own roots: a step with such
// a template name would hide them (SPEC §3).
var reservedStepNames = []string{"input", "secret", "job", "webhook", "each"}

func (f *fileParser) defName(e yamlEntry, kind string) bool {
	if strings.TrimSpace(e.key) == "" {
		f.errorf(e.kn, "%s name must not be empty", kind)
		return false
	}
	return true
}

// ---- secrets ----

func (f *fileParser) parseSecrets(e yamlEntry) {
	es, _ := f.mappingDup(e.val, "secrets", true)
	for _, s := range es {
		mark := f.l.count()
		what := "secret " + s.key
		f.defName(s, "secret")
		v, _ := f.value(s.val, what)
		f.checkRefs(s.val, what)
		f.templates(s.val, what)
		f.l.secrets = append(f.l.secrets, &rawSecret{name: s.key, value: v, pos: f.pos(s.kn), bad: f.l.count() > mark})
	}
}

// checkRefs reports malformed secret references ("ref+…") among the
// strings of a secret value.
func (f *fileParser) checkRefs(n *yaml.Node, what string) {
	f.walkStrings(n, what, func(s *yaml.Node, what string) {
		if err := CheckSecretRef(s.Value); err != nil {
			f.errorf(s, "%s: %v", what, err)
		}
	})
}

// walkStrings calls fn for every string scalar in n (at any depth).
func (f *fileParser) walkStrings(n *yaml.Node, what string, fn func(*yaml.Node, string)) {
	n = yamlResolve(n)
	if n == nil || !f.spend(1, n) {
		return
	}
	switch n.Kind {
	case yaml.ScalarNode:
		if n.ShortTag() == "!!str" {
			fn(n, what)
		}
	case yaml.SequenceNode:
		if !f.enter(n, what) {
			return
		}
		defer f.leave(n)
		for i, c := range n.Content {
			f.walkStrings(c, fmt.Sprintf("%s[%d]", what, i), fn)
		}
	case yaml.MappingNode:
		if !f.enter(n, what) {
			return
		}
		defer f.leave(n)
		for i := 1; i < len(n.Content); i += 2 {
			k := yamlResolve(n.Content[i-1])
			key := "?"
			if k != nil && k.Kind == yaml.ScalarNode {
				key = k.Value
			}
			f.walkStrings(n.Content[i], what+"."+key, fn)
		}
	}
}

// templates checks that every string in n parses as a template.
func (f *fileParser) templates(n *yaml.Node, what string) {
	f.walkStrings(n, what, func(s *yaml.Node, what string) {
		f.template(s, what)
	})
}

// template checks that one string scalar parses as a template.
func (f *fileParser) template(s *yaml.Node, what string) {
	if _, err := CompileTemplate(s.Value); err != nil {
		f.errorf(s, "%s: template does not parse: %v", what, err)
	}
}

// ---- actions ----

// checkScript checks the path of an old-form script action ("path args"):
// the path must be plain text and a file of the workspace (checkFile).
func (f *fileParser) checkScript(e yamlEntry, s string) {
	what := strings.TrimSuffix(e.path, ": script")
	path, _ := SplitScript(s)
	if path == "" {
		f.errorf(e.val, "%s: script is empty", what)
		return
	}
	if strings.Contains(path, "{{") || strings.Contains(path, "{%") {
		f.errorf(e.val, "%s: the script path %q must be a plain path (templates are allowed in its arguments only)", what, path)
		return
	}
	f.template(e.val, what+": script")
	f.checkFile(e.val, what, "script", path)
}

// checkFile checks a workspace file an action runs: relative, inside the
// workspace (also after symlinks), an existing regular file.
func (f *fileParser) checkFile(n *yaml.Node, what, key, path string) bool {
	if filepath.IsAbs(path) {
		f.errorf(n, "%s: %s %q must be a path relative to the workspace root, not an absolute path", what, key, path)
		return false
	}
	clean := filepath.Clean(path)
	if clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) {
		f.errorf(n, "%s: %s %q leaves the workspace", what, key, path)
		return false
	}
	full := filepath.Join(f.l.root, clean)
	real, err := filepath.EvalSymlinks(full)
	if err != nil {
		if os.IsNotExist(err) {
			f.errorf(n, "%s: %s %q not found in the workspace", what, key, path)
		} else {
			f.errorf(n, "%s: %s %q cannot be read: %v", what, key, path, err)
		}
		return false
	}
	root, err := filepath.EvalSymlinks(f.l.root)
	if err != nil || !pathWithin(root, real) {
		f.errorf(n, "%s: %s %q is a symlink that leaves the workspace (to %s)", what, key, path, real)
		return false
	}
	info, err := os.Stat(real)
	if err != nil {
		f.errorf(n, "%s: %s %q cannot be read: %v", what, key, path, err)
		return false
	}
	if !info.Mode().IsRegular() {
		f.errorf(n, "%s: %s %q is not a regular file", what, key, path)
		return false
	}
	return true
}

// isExecutable reports whether the workspace file at path has an execute bit.
func (f *fileParser) isExecutable(path string) bool {
	info, err := os.Stat(filepath.Join(f.l.root, filepath.Clean(path)))
	return err == nil && info.Mode().Perm()&0o111 != 0
}

// isWorkspaceFile reports whether path names a regular file inside the
// workspace, without reporting anything.
func (f *fileParser) isWorkspaceFile(path string) bool {
	if path == "" || filepath.IsAbs(path) || strings.ContainsAny(path, "{}$`'\"<>|&;*?") {
		return false
	}
	clean := filepath.Clean(path)
	if clean == "." || clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) {
		return false
	}
	real, err := filepath.EvalSymlinks(filepath.Join(f.l.root, clean))
	if err != nil {
		return false
	}
	root, err := filepath.EvalSymlinks(f.l.root)
	if err != nil || !pathWithin(root, real) {
		return false
	}
	info, err := os.Stat(real)
	return err == nil && info.Mode().IsRegular()
}

// SplitScript splits an action's script value into the file's path
// (relative to the workspace root) and its arguments, a template rendered
// like cmd: "actions/deploy.sh --env {{ input.env }}".
func SplitScript(script string) (path, args string) {
	s := strings.TrimSpace(script)
	i := strings.IndexAny(s, " \t\r\n")
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimSpace(s[i:])
}

func (f *fileParser) parseEnv(e yamlEntry) map[string]string {
	es, _ := f.mapping(e.val, e.path)
	out := make(map[string]string, len(es))
	for _, v := range es {
		if !envName.MatchString(v.key) {
			f.errorf(v.kn, "%s: %q is not a valid environment variable name (letters, digits and _, not starting with a digit)", e.path, v.key)
			continue
		}
		s, ok := f.text(v)
		if !ok {
			continue
		}
		out[v.key] = s
		if v.val.Kind == yaml.ScalarNode {
			f.template(v.val, v.path)
		}
	}
	return out
}

// ---- schemas ----

// parseSchema reads input or output fields: `name: {type, required,
// default, description, enum}`. With properties set (outputs), the
// JSON-Schema-like form `{type: object, properties: {...}, required: [...]}`
// is accepted too. The result is non-nil (possibly empty) when the key is
// present.
func (f *fileParser) parseSchema(e yamlEntry, properties bool) Schema {
	out := Schema{}
	n := e.val
	if properties && isPropertiesForm(n) {
		fs, _ := f.fields(n, e.path, []string{"type", "properties", "required", "description"})
		if t, ok := fs["type"]; ok {
			f.oneOf(t, string(TypeObject))
		}
		out = f.parseFields(fs["properties"])
		if r, ok := fs["required"]; ok {
			names, nodes, _ := f.names(r)
			for i, name := range names {
				fd := out.Lookup(name)
				if fd == nil {
					f.errorf(nodes[i], "%s: required names %q, which is not among the properties%s", e.path, name, f.l.suggest(name, schemaNames(out)))
					continue
				}
				fd.Required = true
			}
		}
		return out
	}
	return f.parseFields(e)
}

// isPropertiesForm tells `{properties: {greeting: {type: string}}}` from a
// flat schema with a field called "properties" (`{properties: {type:
// string}}`): in the first, the properties' own "type" key, if any, holds a
// field definition (a mapping), not a type name.
func isPropertiesForm(n *yaml.Node) bool {
	n = yamlResolve(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return false
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := yamlResolve(n.Content[i]), yamlResolve(n.Content[i+1])
		if k == nil || k.Value != "properties" || v == nil || v.Kind != yaml.MappingNode {
			continue
		}
		for j := 0; j+1 < len(v.Content); j += 2 {
			pk, pv := yamlResolve(v.Content[j]), yamlResolve(v.Content[j+1])
			if pk != nil && pk.Value == "type" && pv != nil && pv.Kind == yaml.ScalarNode {
				return false
			}
		}
		return true
	}
	return false
}

func schemaNames(s Schema) []string {
	out := make([]string, len(s))
	for i, f := range s {
		out[i] = f.Name
	}
	return out
}

func (f *fileParser) parseFields(e yamlEntry) Schema {
	out := Schema{}
	if e.val == nil {
		return out
	}
	es, _ := f.mapping(e.val, e.path)
	if len(es) > MaxSchemaFields {
		f.errorf(e.val, "%s has %d fields; at most %d are allowed", e.path, len(es), MaxSchemaFields)
		es = es[:MaxSchemaFields]
	}
	for _, fe := range es {
		if fd := f.parseField(fe); fd != nil {
			out = append(out, fd)
		}
	}
	return out
}

func (f *fileParser) parseField(e yamlEntry) *Field {
	what := e.path
	fd := &Field{Name: e.key, Type: TypeString, Pos: f.pos(e.kn)}
	if f.inlineAction {
		fd.Type = "" // an inline action's input takes what its step gives
	}
	if strings.TrimSpace(e.key) == "" {
		f.errorf(e.kn, "%s: a field name must not be empty", what)
	}
	fs, _ := f.fields(e.val, what, fieldKeys)
	if v, ok := fs["type"]; ok && v.val.Kind == yaml.ScalarNode && !inList(fieldTypes, v.val.Value) && connTypeName.MatchString(v.val.Value) {
		// Not a built-in type: it must name a connection type (checked
		// once every file is read, connection.go).
		fd.Type = FieldType(v.val.Value)
		f.l.connRefs = append(f.l.connRefs, connRef{typ: v.val.Value, what: what, pos: f.pos(v.val)})
	} else if ok {
		if t, ok := f.oneOf(v, fieldTypes...); ok {
			if t == "bool" {
				t = string(TypeBoolean)
			}
			fd.Type = FieldType(t)
		}
	}
	setField(fs, "required", &fd.Required, f.boolean)
	setField(fs, "description", &fd.Description, f.text)
	setField(fs, "name", &fd.Label, f.text)
	setField(fs, "secret", &fd.Secret, f.boolean)
	setField(fs, "allow_custom", &fd.AllowCustom, f.boolean)
	setField(fs, "multiple", &fd.Multiple, f.boolean)
	if v, ok := fs["order"]; ok {
		if n, ok := f.integer(v); ok {
			fd.Order = &n
		}
	}
	optE, hasOpt := fs["options"]
	if old, ok := fs["enum"]; ok {
		if hasOpt {
			f.errorf(old.kn, "%s has both options and enum; keep options", what)
		} else {
			optE, hasOpt = old, true
		}
	}
	if hasOpt {
		v := optE
		if v.val.Kind != yaml.SequenceNode {
			f.errorf(v.val, "%s must be a list of allowed values, not %s", v.path, yamlDescribe(v.val))
		} else {
			list, ok := f.value(v.val, v.path)
			items, _ := list.([]any)
			if ok && len(items) == 0 {
				f.errorf(v.val, "%s must list at least one value", v.path)
			}
			if !ok {
				items = nil
			}
			for i, item := range items {
				nv, problem := checkFieldType(fd.Type, item)
				if problem != "" {
					f.errorf(v.val.Content[i], "%s: %s", v.path, problem)
					continue
				}
				fd.Enum = append(fd.Enum, nv)
			}
		}
	}
	if fd.Multiple {
		if !hasOpt && !fd.AllowCustom {
			f.errorf(fs["multiple"].kn, "%s: multiple needs options (the values to pick from) or allow_custom", what)
		}
		if fd.Secret {
			f.errorf(fs["multiple"].kn, "%s: multiple cannot be combined with secret", what)
		}
	}
	if v, ok := fs["default"]; ok {
		d, ok := f.value(v.val, v.path)
		if ok {
			if s, isStr := d.(string); isStr && hasTemplateSyntax(s) {
				// A template default (`{{ secret.KEY }}`) is rendered when a
				// job is created.
				f.template(v.val, v.path)
				fd.Default, fd.HasDefault = d, true
			} else if nv, problem := CheckFieldValue(fd, d); problem != "" {
				f.errorf(v.val, "%s: %s", v.path, problem)
			} else {
				fd.Default, fd.HasDefault = nv, true
			}
		}
	}
	return fd
}

// ---- retry ----

// Retry limits (the upstream reference's).
const (
	MaxRetryAttempts = 10
	MaxRetryDelay    = time.Hour
	// MaxBackoffFactor caps exponential backoff at this multiple of delay
	// unless max_delay says otherwise.
	MaxBackoffFactor = 64
)

// Timeout limits.
const (
	MaxStepTimeout = 24 * time.Hour
	MaxJobTimeout  = 7 * 24 * time.Hour
)

// parseRetry reads a retry block: `retry: 3` (max_attempts), or {max_attempts,
// delay, backoff: fixed|exponential, max_delay, jitter}. The older keys
// (backoff as a duration, backoff_strategy, max_backoff) still work, with a
// warning.
func (f *fileParser) parseRetry(e yamlEntry) *RetryPolicy {
	r := &RetryPolicy{MaxAttempts: DefaultMaxAttempts, Backoff: stroem.Duration(DefaultBackoff), BackoffStrategy: BackoffFixed}
	checkAttempts := func(n int, at *yaml.Node, what string) {
		if n < 1 || n > MaxRetryAttempts {
			f.errorf(at, "%s must be between 1 and %d (it counts every run, the first included), got %d", what, MaxRetryAttempts, n)
		}
	}
	if e.val.Kind == yaml.ScalarNode && e.val.ShortTag() == "!!int" {
		// `retry: 3` is short for `retry: {max_attempts: 3}`.
		n, ok := f.integer(e)
		if ok {
			checkAttempts(n, e.val, e.path+": max_attempts")
		}
		r.MaxAttempts = n
		return r
	}
	fs, _ := f.fields(e.val, e.path, retryKeys)
	if v, ok := fs["max_attempts"]; ok {
		if n, ok := f.integer(v); ok {
			checkAttempts(n, v.val, v.path)
			r.MaxAttempts = n
		}
	}
	if v, ok := fs["delay"]; ok {
		r.Backoff, _ = f.limitedDuration(v, MaxRetryDelay)
	}
	if v, ok := fs["backoff"]; ok {
		switch {
		case v.val.Kind == yaml.ScalarNode && (v.val.Value == BackoffFixed || v.val.Value == BackoffExponential):
			r.BackoffStrategy = v.val.Value
		case v.val.Kind == yaml.ScalarNode && v.val.ShortTag() != "!!null":
			if _, hasDelay := fs["delay"]; hasDelay {
				f.errorf(v.val, "%s must be fixed or exponential (the wait is delay), not %s", v.path, yamlDescribe(v.val))
				break
			}
			if d, err := ParseDuration(v.val.Value); err == nil {
				f.warnf(v.val, "%s: backoff as a duration is the older form; write delay: %s (backoff now names the strategy: fixed or exponential)", e.path, v.val.Value)
				r.Backoff = stroem.Duration(d)
				if d > MaxRetryDelay {
					f.errorf(v.val, "%s is %s; at most %s is allowed", v.path, d, MaxRetryDelay)
				}
				break
			}
			f.errorf(v.val, "%s must be fixed or exponential, not %s", v.path, yamlDescribe(v.val))
		default:
			f.errorf(v.val, "%s must be fixed or exponential, not %s", v.path, yamlDescribe(v.val))
		}
	}
	if v, ok := fs["backoff_strategy"]; ok {
		if s, ok := f.oneOf(v, BackoffFixed, BackoffExponential); ok {
			r.BackoffStrategy = s
			f.warnf(v.kn, "%s: backoff_strategy is the older spelling; write backoff: %s", e.path, s)
		}
	}
	maxE, hasMax := fs["max_delay"]
	if old, ok := fs["max_backoff"]; ok {
		f.warnf(old.kn, "%s: max_backoff is the older spelling; write max_delay", e.path)
		if !hasMax {
			maxE, hasMax = old, true
		}
	}
	if hasMax {
		if d, ok := f.duration(maxE); ok {
			r.MaxBackoff = d
			if d > 0 && d < r.Backoff {
				f.errorf(maxE.val, "%s (%s) is shorter than delay (%s)", maxE.path, d, r.Backoff)
			}
		}
	}
	if v, ok := fs["jitter"]; ok {
		switch {
		case v.val.Kind == yaml.ScalarNode && v.val.ShortTag() == "!!bool":
			if b, _ := f.boolean(v); b {
				r.Jitter = DefaultJitter
			}
		case v.val.Kind == yaml.ScalarNode && (v.val.ShortTag() == "!!float" || v.val.ShortTag() == "!!int"):
			x, _ := f.scalar(v.val, v.path)
			j := jitterFloat(x)
			if j < 0 || j > 1 {
				f.errorf(v.val, "%s must be between 0 and 1, got %s", v.path, v.val.Value)
			} else {
				r.Jitter = j
			}
		default:
			f.errorf(v.val, "%s must be true, false or a fraction between 0 and 1, not %s", v.path, yamlDescribe(v.val))
		}
	}
	if r.BackoffStrategy == BackoffExponential && r.MaxBackoff == 0 {
		r.MaxBackoff = stroem.Duration(time.Duration(MaxBackoffFactor) * r.Backoff.D())
	}
	return r
}

func jitterFloat(v any) float64 {
	switch x := v.(type) {
	case int:
		return float64(x)
	case float64:
		return x
	}
	return -1
}

// ---- tasks ----

func (f *fileParser) parseTask(e yamlEntry) {
	mark := f.l.count()
	what := "task " + e.key
	f.defName(e, "task")
	t := &Task{Name: e.key, Mode: ModeDistributed, Flow: map[string]*FlowStep{}, Pos: f.pos(e.kn)}
	rt := &rawTask{t: t}
	fs, _ := f.fields(e.val, what, append(append([]string(nil), taskKeys...), loadSortedKeys(notYetTask)...))
	for _, k := range loadSortedKeys(notYetTask) {
		if v, ok := fs[k]; ok {
			f.errorf(v.kn, "%s: %s are not supported yet in this version of Strøm (see docs/coming-from-rust-stroem.md)", what, notYetTask[k])
		}
	}
	if v, ok := fs["mode"]; ok {
		if m, ok := f.oneOf(v, ModeDistributed, ModeLocal); ok {
			t.Mode = m
		}
	}
	setField(fs, "description", &t.Description, f.text)
	setField(fs, "name", &t.Label, f.text)
	if v, ok := fs["folder"]; ok {
		if s, ok := f.text(v); ok {
			t.Folder = strings.Trim(strings.TrimSpace(s), "/")
			if strings.Contains(t.Folder, "//") {
				f.errorf(v.val, "%s: folder %q has an empty part", what, s)
			}
		}
	}
	if v, ok := fs["timeout"]; ok {
		t.Timeout, _ = f.limitedDuration(v, MaxJobTimeout)
	}
	if v, ok := fs["retry"]; ok {
		t.Retry = f.parseRetry(v)
	}
	if v, ok := fs["input"]; ok {
		t.Input = f.parseSchema(v, false)
	}
	t.Hooks = f.parseHooks(fs, HookEvents)
	flow, ok := fs["flow"]
	if !ok {
		if e.val.Kind == yaml.MappingNode || yamlIsNull(e.val) {
			f.errorf(e.kn, "%s has no flow (the steps to run)", what)
		}
	} else {
		steps, _ := f.mapping(flow.val, flow.path)
		if len(steps) == 0 && !f.overBudget {
			f.errorf(flow.val, "%s: flow has no steps", what)
		}
		byTemplate := map[string]string{}
		for _, se := range steps {
			rs := f.parseStep(se, what)
			if rs == nil {
				continue
			}
			tn := TemplateName(rs.s.Name)
			if other, dup := byTemplate[tn]; dup {
				f.errorf(se.kn, "%s: steps %q and %q are both %q in templates; rename one", what, other, rs.s.Name, tn)
			}
			byTemplate[tn] = rs.s.Name
			t.Flow[rs.s.Name] = rs.s
			t.Order = append(t.Order, rs.s.Name)
			rt.steps = append(rt.steps, rs)
		}
	}
	rt.bad = f.l.count() > mark
	f.l.tasks = append(f.l.tasks, rt)
}

// inputValues reads the input mapping of a step or a hook: YAML values
// whose strings are templates (nil when empty). With pos set, it records
// where each key stands.
func (f *fileParser) inputValues(v yamlEntry, pos map[string]Pos) map[string]any {
	es, _ := f.mapping(v.val, v.path)
	var in map[string]any
	if len(es) > 0 {
		in = make(map[string]any, len(es))
	}
	for _, ie := range es {
		in[ie.key], _ = f.value(ie.val, ie.path)
		if pos != nil {
			pos[ie.key] = f.pos(ie.kn)
		}
		f.templates(ie.val, ie.path)
	}
	return in
}

// withoutEntries is the mapping entry e without the keys of drop (the field
// definitions of an inline step's input, which give the step no value).
func withoutEntries(e yamlEntry, drop map[string]bool) yamlEntry {
	n := yamlResolve(e.val)
	if len(drop) == 0 || n == nil || n.Kind != yaml.MappingNode {
		return e
	}
	kept := *n
	kept.Content = nil
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := yamlResolve(n.Content[i]); k == nil || !drop[k.Value] {
			kept.Content = append(kept.Content, n.Content[i], n.Content[i+1])
		}
	}
	e.val = &kept
	return e
}

func (f *fileParser) parseStep(e yamlEntry, task string) *rawStep {
	what := task + ", step " + e.key
	if strings.TrimSpace(e.key) == "" {
		f.errorf(e.kn, "%s: a step name must not be empty", task)
		return nil
	}
	if inList(reservedStepNames, TemplateName(e.key)) {
		f.errorf(e.kn, "%s: step name %q is reserved (templates use %s.*); rename the step", task, e.key, TemplateName(e.key))
	}
	s := &FlowStep{Name: e.key, Pos: f.pos(e.kn)}
	rs := &rawStep{s: s, actionPos: f.pos(e.kn), depsPos: f.pos(e.kn), inputPos: map[string]Pos{}}
	f.unsupportedStepKeys(e, what)
	known := append(append([]string(nil), stepKeys...), loadSortedKeys(notYetStep)...)
	known = append(known, loopStepKeys...)
	inline, defs := f.parseInlineAction(e, strings.TrimPrefix(task, "task "))
	if inline != "" {
		known = append(known, inlineStepKeys(e)...)
		s.Action = inline
	} else {
		known = append(known, "tags")
	}
	fs, _ := f.fields(e.val, what, known)
	if v, ok := fs["tags"]; ok && inline == "" {
		// The upstream's runners guide puts tags on a step; its flow step
		// has no such field and ignores them, so they are only checked.
		mark := f.l.count()
		f.strings(v)
		if f.l.count() == mark {
			f.warnf(v.kn, "%s: tags on a step are not used (the upstream ignores them too); to route the step, put them on its action", what)
		}
	}
	setField(fs, "name", &s.Label, f.text)
	setField(fs, "description", &s.Description, f.text)
	if v, ok := fs["action"]; ok {
		s.Action, _ = f.nameOf(v)
		rs.actionPos = f.pos(v.val)
	} else if inline == "" && (e.val.Kind == yaml.MappingNode || yamlIsNull(e.val)) {
		f.errorf(e.kn, "%s has no action (name one, or define it inline with type and script)", what)
	}
	if v, ok := fs["depends_on"]; ok {
		rs.depsPos = f.pos(v.val)
		names, nodes, _ := f.names(v)
		seen := map[string]bool{}
		for i, n := range names {
			if seen[n] {
				continue // listed twice: harmless
			}
			seen[n] = true
			s.DependsOn = append(s.DependsOn, n)
			rs.depPos = append(rs.depPos, f.pos(nodes[i]))
		}
	}
	if v, ok := fs["input"]; ok {
		s.Input = f.inputValues(withoutEntries(v, defs), rs.inputPos)
	}
	setField(fs, "continue_on_failure", &s.ContinueOnFailure, f.boolean)
	if v, ok := fs["timeout"]; ok {
		s.Timeout, _ = f.limitedDuration(v, MaxStepTimeout)
	}
	if v, ok := fs["retry"]; ok {
		s.Retry = f.parseRetry(v)
	}
	f.parseStepFlow(fs, s, what, e.kn)
	return rs
}

// ---- triggers ----

func (f *fileParser) parseTrigger(e yamlEntry) {
	mark := f.l.count()
	what := "trigger " + e.key
	f.defName(e, "trigger")
	t := &Trigger{Name: e.key, Enabled: true, Pos: f.pos(e.kn)}
	rt := &rawTrigger{t: t, taskPos: f.pos(e.kn), inputPos: f.pos(e.kn)}
	all := append(append(append([]string(nil), triggerKeys...), cronKeys...), webhookKeys...)
	all = append(all, eventSourceKeys...)
	fs, _ := f.fields(e.val, what, all)
	if v, ok := fs["type"]; ok {
		t.Type, _ = f.oneOf(v, TriggerScheduler, TriggerWebhook, "event_source")
		if t.Type == "event_source" {
			f.errorf(v.val, "%s: event-source triggers are not supported yet in this version of Strøm (see docs/coming-from-rust-stroem.md)", what)
		}
	} else if e.val.Kind == yaml.MappingNode || yamlIsNull(e.val) {
		f.errorf(e.kn, "%s needs a type: scheduler or webhook", what)
	}
	if v, ok := fs["task"]; ok {
		t.Task, _ = f.nameOf(v)
		rt.taskPos = f.pos(v.val)
	} else if e.val.Kind == yaml.MappingNode || yamlIsNull(e.val) {
		f.errorf(e.kn, "%s names no task", what)
	}
	if v, ok := fs["input"]; ok {
		rt.inputPos = f.pos(v.val)
		if v.val.Kind != yaml.MappingNode && !yamlIsNull(v.val) {
			f.errorf(v.val, "%s must be a mapping, not %s", v.path, yamlDescribe(v.val))
		} else if val, ok := f.value(v.val, v.path); ok {
			t.Input, _ = val.(map[string]any)
		}
	}
	if v, ok := fs["enabled"]; ok {
		if b, ok := f.boolean(v); ok {
			t.Enabled = b
		}
	}
	// Keys of the other type are a problem, like unknown keys.
	wrong := map[string][]string{TriggerScheduler: append(webhookKeys, eventSourceKeys...), TriggerWebhook: append(cronKeys, eventSourceKeys...)}[t.Type]
	for _, k := range wrong {
		if v, ok := fs[k]; ok {
			f.errorf(v.kn, "%s: %s does not apply to %s triggers", what, k, t.Type)
		}
	}
	switch t.Type {
	case TriggerScheduler:
		f.parseSchedule(e, fs, t)
	case TriggerWebhook:
		f.parseWebhook(e, fs, t)
	}
	rt.bad = f.l.count() > mark
	f.l.triggers = append(f.l.triggers, rt)
}

func (f *fileParser) parseSchedule(e yamlEntry, fs map[string]yamlEntry, t *Trigger) {
	what := "trigger " + e.key
	t.Timezone, t.Concurrency = "UTC", ConcurrencyAllow
	if v, ok := fs["cron"]; ok {
		if s, ok := f.text(v); ok {
			t.Cron = strings.TrimSpace(s)
			if err := checkCron(t.Cron); err != nil {
				f.errorf(v.val, "%s: invalid cron expression %q: %v", what, t.Cron, err)
			}
		}
	} else {
		f.errorf(e.kn, "%s: a scheduler trigger needs cron (5 fields, or 6 with seconds first)", what)
	}
	if v, ok := fs["timezone"]; ok {
		if s, ok := f.text(v); ok && s != "" {
			t.Timezone = s
			if err := checkTimezone(s); err != nil {
				f.errorf(v.val, "%s: %v", what, err)
			}
		}
	}
	if v, ok := fs["concurrency"]; ok {
		if c, ok := f.oneOf(v, ConcurrencyAllow, ConcurrencySkip, ConcurrencyCancelPrevious); ok {
			t.Concurrency = c
		}
	}
}

// checkCron parses a cron expression: 5 fields, 6 with seconds first, 7
// with the year last, or a descriptor (@daily, @every 1h); see cron.go. The
// timezone belongs in `timezone`.
func checkCron(spec string) (err error) {
	if spec == "" {
		return fmt.Errorf("it is empty")
	}
	if strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ=") {
		return fmt.Errorf("set the time zone with the trigger's timezone key, not in the expression")
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("cannot parse it (%v)", r)
		}
	}()
	_, err = parseCron(spec, time.UTC)
	return err
}

// CronSchedule parses a trigger's cron expression as the loader checked it,
// in the given location, for the scheduler.
func CronSchedule(spec string, loc *time.Location) (cron.Schedule, error) {
	if err := checkCron(spec); err != nil {
		return nil, err
	}
	if loc == nil {
		loc = time.UTC
	}
	return parseCron(spec, loc)
}

func checkTimezone(tz string) error {
	if tz == "Local" {
		return fmt.Errorf("timezone Local depends on the server's settings; use an IANA name such as Europe/Oslo or UTC")
	}
	if _, err := time.LoadLocation(tz); err != nil {
		return fmt.Errorf("unknown timezone %q; use an IANA name such as Europe/Oslo or UTC", tz)
	}
	return nil
}

func (f *fileParser) parseWebhook(e yamlEntry, fs map[string]yamlEntry, t *Trigger) {
	what := "trigger " + e.key
	t.Mode = WebhookAsync
	t.Path = e.key
	at := e.kn
	if v, ok := fs["name"]; ok {
		if s, ok := f.text(v); ok {
			t.Path, at = strings.TrimSpace(s), v.val
		}
	}
	if !webhookName.MatchString(t.Path) {
		f.errorf(at, "%s: a webhook's name is part of its URL (/hooks/NAME) and may hold only letters, digits, '_', '.' and '-'", what)
	}
	if v, ok := fs["secret"]; ok {
		if s, ok := f.text(v); ok {
			t.Secret = s
			if err := CheckSecretRef(s); err != nil {
				f.errorf(v.val, "%s: %v", what, err)
			}
		}
	}
	if v, ok := fs["mode"]; ok {
		if m, ok := f.oneOf(v, WebhookAsync, WebhookSync); ok {
			t.Mode = m
		}
	}
	if v, ok := fs["timeout_secs"]; ok {
		if n, ok := f.integer(v); ok {
			if n < 1 || n > MaxWebhookTimeoutSecs {
				f.errorf(v.val, "%s must be between 1 and %d, got %d", v.path, MaxWebhookTimeoutSecs, n)
			} else {
				t.TimeoutSecs = n
			}
		}
	}
	if t.Mode == WebhookSync && t.TimeoutSecs == 0 {
		t.TimeoutSecs = DefaultWebhookTimeoutSecs
	}
}
