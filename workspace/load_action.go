package workspace

import (
	"fmt"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/stroem/stroem"
)

// actionKeys are every key an action may have; which apply depends on its
// type (checked in parseAction).
var actionKeys = []string{
	"type", "name", "description",
	"script", "source", "cmd", "args", "language", "interpreter", "dependencies", "runner",
	"image", "entrypoint", "command", "manifest", "resources",
	"env", "input", "output", "timeout", "retry", "tags", "workdir",
	// Types this version does not run: accepted as keys so the problem is
	// about the type, not about each of its keys.
	"task", "provider", "prompt", "system_prompt", "model", "max_tokens", "temperature", "message",
}

// Keys that belong to one family of action types only.
var (
	scriptOnlyKeys    = []string{"script", "source", "args", "language", "interpreter", "dependencies", "runner"}
	containerOnlyKeys = []string{"image", "entrypoint", "command"}
	unsupportedKeys   = []string{"task", "provider", "prompt", "system_prompt", "model", "max_tokens", "temperature", "message"}
)

// languageAliases maps every accepted `language` value to its name.
var languageAliases = map[string]string{
	LangShell: LangShell, "bash": LangShell, "sh": LangShell,
	LangPython:     LangPython,
	LangJavaScript: LangJavaScript, "js": LangJavaScript,
	LangTypeScript: LangTypeScript, "ts": LangTypeScript,
	LangGo: LangGo,
}

// unsupportedTypes are action types of the upstream Strøm this version does
// not run yet, with what to use meanwhile.
var unsupportedTypes = map[string]string{
	"agent": "LLM agent steps are not supported yet",
}

func (f *fileParser) parseAction(e yamlEntry) {
	mark := f.l.count()
	what := "action " + e.key
	f.defName(e, "action")
	a := &Action{Name: e.key, Type: ActionShell, Pos: f.pos(e.kn)}
	isMap := e.val.Kind == yaml.MappingNode || yamlIsNull(e.val)
	fs, _ := f.fields(e.val, what, actionKeys)
	// No type is the older default (shell); its script/cmd rules are the
	// upstream type: script's, which read the older forms too.
	declared := "script"
	if v, ok := fs["type"]; ok {
		if t, ok := f.oneOf(v, "script", ActionShell, ActionDocker, ActionPod, "task", "agent", "approval"); ok {
			declared = t
			if why, bad := unsupportedTypes[t]; bad {
				f.errorf(v.val, "%s: type %s: %s in this version of Strøm (see docs/coming-from-rust-stroem.md)", what, t, why)
			}
			if t == ActionDocker || t == ActionPod || IsServerSide(t) {
				a.Type = t
			}
		}
	}
	setField(fs, "name", &a.Label, f.text)
	setField(fs, "description", &a.Description, f.text)
	if _, bad := unsupportedTypes[declared]; !bad {
		for _, k := range unsupportedKeys {
			if v, ok := fs[k]; ok && !serverKey(declared, k) {
				f.errorf(v.kn, "%s: %s does not apply to type %s actions", what, k, declared)
			}
		}
	}
	switch declared {
	case "script", ActionShell:
		for _, k := range containerOnlyKeys {
			if v, ok := fs[k]; ok {
				hint := ""
				if k == "image" {
					hint = " (use type: docker, or runner: docker)"
					if r, ok := fs["runner"]; ok && r.val.Kind == yaml.ScalarNode && (r.val.Value == "docker" || r.val.Value == "pod") {
						// The event-sources guide's consumers: upstream refuses them too.
						hint = fmt.Sprintf(" (runner: %s runs the script in the worker's runner image; to run an image as is, use type: %s without runner)", r.val.Value, r.val.Value)
					}
				}
				f.errorf(v.kn, "%s: %s does not apply to type %s actions%s", what, k, declared, hint)
			}
		}
		f.parseScriptAction(e, fs, a, declared, isMap)
	case ActionTask, ActionApproval:
		f.parseServerAction(e, fs, a, declared)
	case ActionDocker, ActionPod:
		for _, k := range scriptOnlyKeys {
			if v, ok := fs[k]; ok {
				f.errorf(v.kn, "%s: %s does not apply to type %s actions (it runs its image as is; use type: script with runner: %s to run a script)", what, k, declared, declared)
			}
		}
		f.parseContainer(fs, a, what)
		if isMap && a.Image == "" {
			f.errorf(e.kn, "%s: type %s needs an image", what, a.Type)
		}
		if v, ok := fs["cmd"]; ok {
			if s, ok := f.text(v); ok {
				a.Cmd = s
				f.template(v.val, what+": cmd")
			}
		}
	}
	if v, ok := fs["manifest"]; ok {
		if a.Type != ActionPod {
			f.errorf(v.kn, "%s: manifest applies only to pods (type: pod, or type: script with runner: pod)", what)
		} else if m, ok := f.mapValue(v); ok {
			a.Manifest = m
		}
	}
	if v, ok := fs["resources"]; ok {
		if m, ok := f.mapValue(v); ok {
			a.Resources = m
		}
	}
	if v, ok := fs["tags"]; ok {
		a.Tags = f.strings(v)
		f.checkTags(v, what, a.Tags)
	}
	if v, ok := fs["workdir"]; ok {
		if s, ok := f.text(v); ok && s != "" {
			if f.relPath(v.val, what, "workdir", s) {
				a.Workdir = s
			}
		}
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
		a.Timeout, _ = f.limitedDuration(v, MaxStepTimeout)
	}
	if v, ok := fs["retry"]; ok {
		a.Retry = f.parseRetry(v)
	}
	f.l.actions = append(f.l.actions, &rawAction{a: a, bad: f.l.count() > mark})
}

// parseScriptAction reads the keys of a script action: exactly one of
// script (inline code), source (a file), or the older cmd / script-as-path.
func (f *fileParser) parseScriptAction(e yamlEntry, fs map[string]yamlEntry, a *Action, declared string, isMap bool) {
	what := "action " + e.key
	cmdE, hasCmd := fs["cmd"]
	scriptE, hasScript := fs["script"]
	sourceE, hasSource := fs["source"]
	// type: shell is this project's own older type: script there is a file
	// of the workspace with arguments ("actions/deploy.sh --env prod").
	legacy := declared == ActionShell
	switch n := btoi(hasCmd) + btoi(hasScript) + btoi(hasSource); {
	case legacy && hasCmd && hasScript:
		f.errorf(scriptE.kn, "%s has both cmd and script; keep one", what)
	case n > 1:
		f.errorf(e.kn, "%s has more than one of script, source and cmd; keep one", what)
	case n == 0 && isMap && legacy:
		f.errorf(e.kn, "%s needs cmd (an inline command) or script (a file in the workspace)", what)
	case n == 0 && isMap:
		f.errorf(e.kn, "%s needs script (inline code) or source (a file of the workspace)", what)
	}
	if hasCmd {
		if s, ok := f.text(cmdE); ok {
			a.Cmd = s
			if strings.TrimSpace(s) == "" {
				f.errorf(cmdE.val, "%s: cmd is empty", what)
			} else {
				f.template(cmdE.val, what+": cmd")
			}
			if declared == "script" {
				f.warnf(cmdE.kn, "%s: cmd is the older spelling; type: script takes inline code in script:", what)
			}
		}
	}
	if hasScript {
		if s, ok := f.text(scriptE); ok {
			path, _ := SplitScript(s)
			switch {
			case legacy:
				a.Script = s
				f.checkScript(scriptE, s)
			case strings.TrimSpace(s) == "":
				f.errorf(scriptE.val, "%s: script is empty", what)
			case !strings.Contains(strings.TrimSpace(s), "\n") && strings.Contains(path, "/") && f.isWorkspaceFile(path) && !f.isExecutable(path):
				// The older form: a file of the workspace and its arguments.
				// (An executable file runs the same way as inline code: the
				// shell runs it with its arguments.)
				a.Script = s
				f.checkScript(scriptE, s)
				f.warnf(scriptE.val, "%s: script %q names a file of the workspace: that is the older form; write source: %s (and args: [...]), since script: now holds inline code", what, s, path)
			default:
				a.Inline = s
			}
		}
	}
	if hasSource {
		if s, ok := f.text(sourceE); ok {
			s = strings.TrimSpace(s)
			switch {
			case s == "":
				f.errorf(sourceE.val, "%s: source is empty", what)
			case strings.Contains(s, "{{") || strings.Contains(s, "{%"):
				f.errorf(sourceE.val, "%s: source %q must be a plain path (no template)", what, s)
			default:
				if f.checkFile(sourceE.val, what, "source", s) {
					a.Source = s
				}
			}
		}
	}
	a.Language = LangShell
	if v, ok := fs["language"]; ok {
		if s, ok := f.text(v); ok {
			if l, known := languageAliases[strings.ToLower(strings.TrimSpace(s))]; known {
				a.Language = l
			} else {
				f.errorf(v.val, "%s: unknown language %q; use shell, python, javascript (js), typescript (ts) or go", what, s)
			}
		}
		if a.Cmd != "" || a.Script != "" {
			f.errorf(v.kn, "%s: language applies to script (inline code) and source, not to cmd or a script path with arguments", what)
		}
	}
	if a.Inline != "" {
		f.inlineTemplate(scriptE.val, what+": script", a.Language)
	}
	if v, ok := fs["args"]; ok {
		a.Args = f.strings(v)
		for i, c := range v.val.Content {
			if c = yamlResolve(c); c != nil && c.Kind == yaml.ScalarNode {
				f.template(c, fmt.Sprintf("%s: args[%d]", what, i))
			}
		}
		if a.Cmd != "" || a.Script != "" {
			f.errorf(v.kn, "%s: args applies to script (inline code) and source; cmd and a script path take their arguments in the same string", what)
		}
	}
	if v, ok := fs["dependencies"]; ok {
		a.Dependencies = f.strings(v)
		for i, d := range a.Dependencies {
			if strings.TrimSpace(d) == "" || strings.HasPrefix(strings.TrimSpace(d), "-") {
				f.errorf(v.val, "%s: dependencies[%d] %q is not a package name", what, i, d)
			}
		}
		if len(a.Dependencies) > 0 {
			switch a.Language {
			case LangShell:
				f.errorf(v.kn, "%s: dependencies need a language other than shell (python, javascript, typescript)", what)
			case LangGo:
				f.errorf(v.kn, "%s: dependencies do not apply to go (go run resolves imports itself)", what)
			}
		}
	}
	if v, ok := fs["interpreter"]; ok {
		if s, ok := f.text(v); ok {
			s = strings.TrimSpace(s)
			if s == "" || strings.ContainsAny(s, " \t\n") {
				f.errorf(v.val, "%s: interpreter must be one program name or path (like python3.11), not %q", what, s)
			} else {
				a.Interpreter = s
			}
		}
	}
	a.Runner = RunnerLocal
	if v, ok := fs["runner"]; ok {
		if r, ok := f.oneOf(v, RunnerLocal, RunnerDocker, RunnerPod); ok {
			a.Runner = r
			switch r {
			case RunnerDocker:
				a.Type = ActionDocker
			case RunnerPod:
				a.Type = ActionPod
			}
		}
	}
}

// inlineTemplate checks inline code as a template. Code in a language
// other than shell often holds {{ and }} of its own (Python f-strings, Go
// and JavaScript literals): when it does not parse as a template it runs as
// written, with a warning; shell code must parse.
func (f *fileParser) inlineTemplate(n *yaml.Node, what, language string) {
	if n == nil {
		return
	}
	if _, err := CompileTemplate(n.Value); err != nil {
		if language == LangShell {
			f.errorf(n, "%s: template does not parse: %v", what, err)
			return
		}
		f.warnf(n, "%s: not a valid template (%v), so it runs as written, without templating; wrap literal braces in {%% raw %%}…{%% endraw %%} to make this explicit", what, err)
	}
}

// parseContainer reads the container keys of docker/pod actions.
func (f *fileParser) parseContainer(fs map[string]yamlEntry, a *Action, what string) {
	if v, ok := fs["image"]; ok {
		if s, ok := f.text(v); ok {
			a.Image = strings.TrimSpace(s)
		}
	}
	if v, ok := fs["entrypoint"]; ok {
		a.Entrypoint = f.strings(v)
	}
	if v, ok := fs["command"]; ok {
		a.Command = f.strings(v)
	}
}

// strings reads a list of strings (numbers and booleans as written).
func (f *fileParser) strings(e yamlEntry) []string {
	if yamlIsNull(e.val) {
		return nil
	}
	if e.val.Kind != yaml.SequenceNode {
		f.errorf(e.val, "%s must be a list, not %s", e.path, yamlDescribe(e.val))
		return nil
	}
	out := make([]string, 0, len(e.val.Content))
	for i, c := range e.val.Content {
		if !f.spend(1, e.val) {
			return out
		}
		c = yamlResolve(c)
		if c == nil || c.Kind != yaml.ScalarNode || yamlIsNull(c) {
			f.errorf(e.val, "%s[%d] must be a string, not %s", e.path, i, yamlDescribe(c))
			continue
		}
		out = append(out, c.Value)
	}
	return out
}

// checkTags reports the worker tags of an action that no worker could
// have: a worker registers at most stroem.MaxWorkerList tags, each
// non-empty and at most stroem.MaxWorkerField bytes, and a step runs only
// on a worker with all of its tags.
func (f *fileParser) checkTags(e yamlEntry, what string, tags []string) {
	if len(tags) > stroem.MaxWorkerList {
		f.errorf(e.val, "%s: tags lists %d tags; a worker has at most %d, so no worker could run it", what, len(tags), stroem.MaxWorkerList)
	}
	for i, t := range tags {
		switch {
		case strings.TrimSpace(t) == "":
			f.errorf(e.val, "%s: tags[%d] is empty; a tag is a name such as gpu", what, i)
		case len(t) > stroem.MaxWorkerField:
			f.errorf(e.val, "%s: tags[%d] is %d bytes long; a worker's tags are at most %d bytes, so no worker could run it", what, i, len(t), stroem.MaxWorkerField)
		}
	}
}

// mapValue reads a mapping as plain data.
func (f *fileParser) mapValue(e yamlEntry) (map[string]any, bool) {
	if e.val.Kind != yaml.MappingNode {
		f.errorf(e.val, "%s must be a mapping, not %s", e.path, yamlDescribe(e.val))
		return nil, false
	}
	v, ok := f.value(e.val, e.path)
	m, _ := v.(map[string]any)
	return m, ok && m != nil
}

// relPath checks a plain relative path that stays inside the workspace.
func (f *fileParser) relPath(n *yaml.Node, what, key, p string) bool {
	clean := strings.TrimPrefix(p, "./")
	if strings.HasPrefix(p, "/") || clean == ".." || strings.HasPrefix(clean, "../") || strings.Contains(clean, "/../") || strings.HasSuffix(clean, "/..") {
		f.errorf(n, "%s: %s %q must be a path relative to the workspace root that stays inside it", what, key, p)
		return false
	}
	return true
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// notYet are keys of the upstream workflow language this version does not
// support yet, with what they do; they are reported as such instead of as
// unknown keys.
var notYetStep = map[string]string{}

var notYetTask = map[string]string{}

var notYetTop = map[string]string{
	"libraries": "libraries",
}

// unsupportedStepKeys reports step keys of features that are not here yet
// (the generic unknown-key problem follows for them too; this one says why).
func (f *fileParser) unsupportedStepKeys(e yamlEntry, what string) {
	es, _ := f.mapping(e.val, what)
	for _, ke := range es {
		if feat, ok := notYetStep[ke.key]; ok {
			f.errorf(ke.kn, "%s: %s are not supported yet in this version of Strøm (see docs/coming-from-rust-stroem.md)", what, feat)
		}
	}
}

// inlineActionKeys are the keys that make a step define its action inline
// (upstream: a step with type/script/... and no action).
var inlineActionKeys = []string{"type", "script", "source", "cmd", "image"}

// InlineActionName is the name of the action a step defines inline.
func InlineActionName(task, step string) string { return task + "/" + step }

// parseInlineAction reads the action a step defines inline: the step's
// action keys, as a named action "<task>/<step>" whose input fields are the
// keys of the step's input. As upstream, an input entry whose value is a
// field definition (isFieldDefinition: `db: {type: postgres, default:
// main}`) defines that field of the action, with its type, default and
// checks, and gives the step no value (defs names them); any other entry is
// a value, and its field takes any type. It returns the action's name, or
// "" when the step has no inline action.
func (f *fileParser) parseInlineAction(e yamlEntry, task string) (name string, defs map[string]bool) {
	n := yamlResolve(e.val)
	if n == nil || n.Kind != yaml.MappingNode {
		return "", nil
	}
	has := func(k string) bool {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if kn := yamlResolve(n.Content[i]); kn != nil && kn.Value == k {
				return true
			}
		}
		return false
	}
	inline := false
	for _, k := range inlineActionKeys {
		inline = inline || has(k)
	}
	if !inline || has("action") {
		return "", nil
	}
	name = InlineActionName(task, e.key)
	body := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: n.Line, Column: n.Column}
	var inputKeys, inputDefs []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn := yamlResolve(n.Content[i])
		if kn == nil {
			continue
		}
		if isInlineActionKey(kn.Value) {
			body.Content = append(body.Content, n.Content[i], n.Content[i+1])
		}
		if kn.Value == "input" {
			if in := yamlResolve(n.Content[i+1]); in != nil && in.Kind == yaml.MappingNode {
				for j := 0; j+1 < len(in.Content); j += 2 {
					inputKeys = append(inputKeys, in.Content[j])
					def := f.fieldDefinition(in.Content[j+1], "task "+task+", step "+e.key+", input "+in.Content[j].Value)
					inputDefs = append(inputDefs, def)
					if def != nil {
						if defs == nil {
							defs = map[string]bool{}
						}
						defs[in.Content[j].Value] = true
					}
				}
			}
		}
	}
	if len(inputKeys) > 0 {
		schema := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		for i, k := range inputKeys {
			def := inputDefs[i]
			if def == nil {
				def = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
			}
			schema.Content = append(schema.Content, k, def)
		}
		body.Content = append(body.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "input"}, schema)
	}
	f.inlineAction = true
	f.parseAction(yamlEntry{key: name, kn: e.kn, val: body, path: task + ", step " + e.key})
	f.inlineAction = false
	return name, defs
}

// fieldDefinition returns the field definition an inline step's input value
// n is, or nil when it is a value. As upstream, a definition is a mapping
// whose `type` is a string and whose keys of a definition have their kinds
// (name and description scalars; required, secret, allow_custom and
// multiple booleans; options a list of scalars; order an integer; default
// anything): `{type: 123}` or `{type: x, required: maybe}` stay values.
// Other keys are left out of the definition, with a warning, where upstream
// ignores them silently.
func (f *fileParser) fieldDefinition(n *yaml.Node, what string) *yaml.Node {
	n = yamlResolve(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	scalar := func(v *yaml.Node, tags ...string) bool {
		return v != nil && v.Kind == yaml.ScalarNode && (len(tags) == 0 || slices.Contains(tags, v.ShortTag()))
	}
	typed := false
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := yamlResolve(n.Content[i]), yamlResolve(n.Content[i+1])
		if k == nil {
			return nil
		}
		var ok bool
		switch k.Value {
		case "type":
			ok, typed = scalar(v, "!!str"), true
		case "name", "description":
			ok = scalar(v, "!!str", "!!int", "!!float", "!!bool")
		case "required", "secret", "allow_custom", "multiple":
			ok = scalar(v, "!!bool")
		case "order":
			ok = scalar(v, "!!int")
		case "options":
			ok = v != nil && v.Kind == yaml.SequenceNode
			for i := 0; ok && i < len(v.Content); i++ {
				ok = scalar(yamlResolve(v.Content[i]))
			}
		default:
			ok = true
		}
		if !ok {
			return nil
		}
	}
	if !typed {
		return nil
	}
	def := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: n.Line, Column: n.Column}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := yamlResolve(n.Content[i])
		if !inList(fieldKeys, k.Value) {
			f.warnf(k, "%s: %q is not a key of a field definition, so it is ignored (as upstream)", what, k.Value)
			continue
		}
		def.Content = append(def.Content, n.Content[i], n.Content[i+1])
	}
	return def
}
