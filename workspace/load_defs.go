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
	actionKeys  = []string{"type", "cmd", "script", "image", "env", "input", "output", "timeout", "retry"}
	fieldKeys   = []string{"type", "required", "default", "description", "enum"}
	retryKeys   = []string{"max_attempts", "backoff", "backoff_strategy", "max_backoff", "jitter"}
	taskKeys    = []string{"mode", "description", "input", "flow"}
	stepKeys    = []string{"action", "depends_on", "input", "continue_on_failure", "timeout", "retry"}
	triggerKeys = []string{"type", "task", "input", "enabled"}
	cronKeys    = []string{"cron", "timezone", "concurrency"}
	webhookKeys = []string{"secret", "mode", "timeout_secs"}
	fieldTypes  = []string{string(TypeString), string(TypeInteger), string(TypeNumber), string(TypeBoolean), string(TypeArray), string(TypeObject)}
)

// Retry defaults, applied when a retry block leaves a key out.
const (
	DefaultMaxAttempts = 3
	DefaultBackoff     = time.Second
	// DefaultJitter is the jitter that `jitter: true` stands for.
	DefaultJitter = 0.2
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
var reservedStepNames = []string{"input", "secret", "job", "webhook"}

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

func (f *fileParser) parseAction(e yamlEntry) {
	mark := f.l.count()
	what := "action " + e.key
	f.defName(e, "action")
	a := &Action{Name: e.key, Type: ActionShell, Pos: f.pos(e.kn)}
	isMap := e.val.Kind == yaml.MappingNode || yamlIsNull(e.val)
	fs, _ := f.fields(e.val, what, actionKeys)
	if v, ok := fs["type"]; ok {
		if t, ok := f.oneOf(v, ActionShell, "script", ActionDocker, ActionPod); ok {
			a.Type = t
			if t == "script" {
				a.Type = ActionShell
			}
		}
	}
	cmdE, hasCmd := fs["cmd"]
	scriptE, hasScript := fs["script"]
	if hasCmd {
		if s, ok := f.text(cmdE); ok {
			a.Cmd = s
			if strings.TrimSpace(s) == "" {
				f.errorf(cmdE.val, "%s: cmd is empty", what)
			} else {
				f.template(cmdE.val, what+": cmd")
			}
		}
	}
	if hasScript {
		if s, ok := f.text(scriptE); ok {
			a.Script = s
			f.checkScript(scriptE, s)
		}
	}
	if v, ok := fs["image"]; ok {
		if s, ok := f.text(v); ok {
			a.Image = strings.TrimSpace(s)
		}
	}
	switch {
	case hasCmd && hasScript:
		f.errorf(scriptE.kn, "%s has both cmd and script; keep one", what)
	case !isMap:
		// Reported as "must be a mapping"; nothing more to say.
	case a.Type == ActionShell && !hasCmd && !hasScript:
		f.errorf(e.kn, "%s needs cmd (an inline command) or script (a file in the workspace)", what)
	}
	if isMap && (a.Type == ActionDocker || a.Type == ActionPod) && a.Image == "" {
		f.errorf(e.kn, "%s: type %s needs an image", what, a.Type)
	}
	if v, ok := fs["env"]; ok {
		a.Env = f.parseEnv(v)
	}
	if v, ok := fs["input"]; ok {
		a.Input = f.parseSchema(v, false)
	}
	if v, ok := fs["output"]; ok {
		a.Output = f.parseSchema(v, true)
	}
	if v, ok := fs["timeout"]; ok {
		a.Timeout, _ = f.duration(v)
	}
	if v, ok := fs["retry"]; ok {
		a.Retry = f.parseRetry(v)
	}
	f.l.actions = append(f.l.actions, &rawAction{a: a, bad: f.l.count() > mark})
}

// checkScript checks the path of a script action: relative, inside the
// workspace (also after symlinks), an existing regular file. The path is
// the value's first word; the rest are arguments, rendered as a template.
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
	if filepath.IsAbs(path) {
		f.errorf(e.val, "%s: script %q must be a path relative to the workspace root, not an absolute path", what, path)
		return
	}
	clean := filepath.Clean(path)
	if clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) {
		f.errorf(e.val, "%s: script %q leaves the workspace", what, path)
		return
	}
	full := filepath.Join(f.l.root, clean)
	real, err := filepath.EvalSymlinks(full)
	if err != nil {
		if os.IsNotExist(err) {
			f.errorf(e.val, "%s: script %q not found in the workspace", what, path)
		} else {
			f.errorf(e.val, "%s: script %q cannot be read: %v", what, path, err)
		}
		return
	}
	root, err := filepath.EvalSymlinks(f.l.root)
	if err != nil || !pathWithin(root, real) {
		f.errorf(e.val, "%s: script %q is a symlink that leaves the workspace (to %s)", what, path, real)
		return
	}
	info, err := os.Stat(real)
	if err != nil {
		f.errorf(e.val, "%s: script %q cannot be read: %v", what, path, err)
		return
	}
	if !info.Mode().IsRegular() {
		f.errorf(e.val, "%s: script %q is not a regular file", what, path)
	}
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
	if strings.TrimSpace(e.key) == "" {
		f.errorf(e.kn, "%s: a field name must not be empty", what)
	}
	fs, _ := f.fields(e.val, what, fieldKeys)
	if v, ok := fs["type"]; ok {
		if t, ok := f.oneOf(v, fieldTypes...); ok {
			fd.Type = FieldType(t)
		}
	}
	if v, ok := fs["required"]; ok {
		fd.Required, _ = f.boolean(v)
	}
	if v, ok := fs["description"]; ok {
		fd.Description, _ = f.text(v)
	}
	if v, ok := fs["enum"]; ok {
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
	if v, ok := fs["default"]; ok {
		d, ok := f.value(v.val, v.path)
		if ok {
			nv, problem := checkFieldType(fd.Type, d)
			switch {
			case problem != "":
				f.errorf(v.val, "%s: %s", v.path, problem)
			case fd.Enum != nil && !enumContains(fd.Enum, nv):
				f.errorf(v.val, "%s: %s is not one of %s", v.path, describeJSON(nv), enumList(fd.Enum))
			default:
				fd.Default, fd.HasDefault = nv, true
			}
		}
	}
	return fd
}

// ---- retry ----

func (f *fileParser) parseRetry(e yamlEntry) *RetryPolicy {
	r := &RetryPolicy{MaxAttempts: DefaultMaxAttempts, Backoff: stroem.Duration(DefaultBackoff), BackoffStrategy: BackoffFixed}
	if e.val.Kind == yaml.ScalarNode && e.val.ShortTag() == "!!int" {
		// `retry: 3` is short for `retry: {max_attempts: 3}`.
		n, ok := f.integer(e)
		if ok && n < 1 {
			f.errorf(e.val, "%s: max_attempts must be at least 1 (it counts every run, the first included), got %d", e.path, n)
		}
		r.MaxAttempts = n
		return r
	}
	fs, _ := f.fields(e.val, e.path, retryKeys)
	if v, ok := fs["max_attempts"]; ok {
		if n, ok := f.integer(v); ok {
			if n < 1 {
				f.errorf(v.val, "%s must be at least 1 (it counts every run, the first included), got %d", v.path, n)
			}
			r.MaxAttempts = n
		}
	}
	if v, ok := fs["backoff"]; ok {
		r.Backoff, _ = f.duration(v)
	}
	if v, ok := fs["backoff_strategy"]; ok {
		if s, ok := f.oneOf(v, BackoffFixed, BackoffExponential); ok {
			r.BackoffStrategy = s
		}
	}
	if v, ok := fs["max_backoff"]; ok {
		if d, ok := f.duration(v); ok {
			r.MaxBackoff = d
			if d > 0 && d < r.Backoff {
				f.errorf(v.val, "%s (%s) is shorter than backoff (%s)", v.path, d, r.Backoff)
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
	fs, _ := f.fields(e.val, what, taskKeys)
	if v, ok := fs["mode"]; ok {
		if m, ok := f.oneOf(v, ModeDistributed, ModeLocal); ok {
			t.Mode = m
		}
	}
	if v, ok := fs["description"]; ok {
		t.Description, _ = f.text(v)
	}
	if v, ok := fs["input"]; ok {
		t.Input = f.parseSchema(v, false)
	}
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
	fs, _ := f.fields(e.val, what, stepKeys)
	if v, ok := fs["action"]; ok {
		s.Action, _ = f.nameOf(v)
		rs.actionPos = f.pos(v.val)
	} else if e.val.Kind == yaml.MappingNode || yamlIsNull(e.val) {
		f.errorf(e.kn, "%s has no action", what)
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
		es, _ := f.mapping(v.val, v.path)
		if len(es) > 0 {
			s.Input = make(map[string]any, len(es))
		}
		for _, ie := range es {
			val, _ := f.value(ie.val, ie.path)
			s.Input[ie.key] = val
			rs.inputPos[ie.key] = f.pos(ie.kn)
			f.templates(ie.val, ie.path)
		}
	}
	if v, ok := fs["continue_on_failure"]; ok {
		s.ContinueOnFailure, _ = f.boolean(v)
	}
	if v, ok := fs["timeout"]; ok {
		s.Timeout, _ = f.duration(v)
	}
	if v, ok := fs["retry"]; ok {
		s.Retry = f.parseRetry(v)
	}
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
	fs, _ := f.fields(e.val, what, all)
	if v, ok := fs["type"]; ok {
		t.Type, _ = f.oneOf(v, TriggerScheduler, TriggerWebhook)
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
	wrong := map[string][]string{TriggerScheduler: webhookKeys, TriggerWebhook: cronKeys}[t.Type]
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

// checkCron parses a cron expression: 5 fields, 6 with seconds first, or a
// descriptor (@daily, @every 1h). The timezone belongs in `timezone`.
func checkCron(spec string) (err error) {
	if spec == "" {
		return fmt.Errorf("it is empty")
	}
	if strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ=") {
		return fmt.Errorf("set the time zone with the trigger's timezone key, not in the expression")
	}
	if n := len(strings.Fields(spec)); !strings.HasPrefix(spec, "@") && n != 5 && n != 6 {
		return fmt.Errorf("it has %d fields; want 5 (minute hour day month weekday) or 6 (second first)", n)
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("cannot parse it (%v)", r)
		}
	}()
	_, err = cronParser.Parse(spec)
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
	return cronParser.Parse("CRON_TZ=" + loc.String() + " " + spec)
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
	if !webhookName.MatchString(e.key) {
		f.errorf(e.kn, "%s: a webhook trigger's name is part of its URL (/hooks/NAME) and may hold only letters, digits, '_', '.' and '-'", what)
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
