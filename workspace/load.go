package workspace

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// WorkflowsDir is the folder of a workspace whose *.yaml and *.yml files
// are loaded and merged.
const WorkflowsDir = ".workflows"

// maxFileSize bounds one workflow file; larger files are reported, not read.
const maxFileSize = 8 << 20

// wsSource remembers where a workspace was loaded from, for its revision,
// its archive and reloads.
type wsSource struct {
	// path is the path as the user gave it (folder or file).
	path string
	// single is set when one file was loaded: the revision and the archive
	// then hold only that file and the scripts its actions use.
	single bool
	// file is the workflow file's name (single only).
	file string
}

// Load reads a workspace: a folder (every .workflows/*.yaml and *.yml in
// name order, merged) or a single workflow file.
//
// The error is only for problems that stop loading altogether: the path is
// missing or unreadable, or a folder has no .workflows folder. Everything
// wrong inside the files is a Problem in the returned Workspace, whose maps
// hold the definitions that are valid (see the package documentation).
func Load(path string) (*Workspace, error) {
	return load(path, false)
}

// load is Load; library is set for a library (LoadLibrary).
func load(path string, library bool) (*Workspace, error) {
	if path == "" {
		return nil, errors.New("load workspace: no path given")
	}
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("load workspace: %w", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("load workspace %s: %w", path, err)
	}
	l := newLoader(path)
	l.library = library
	if info.IsDir() {
		l.root = abs
		if err := l.loadFolder(); err != nil {
			return nil, err
		}
	} else {
		if !info.Mode().IsRegular() {
			return nil, fmt.Errorf("load workspace: %s is not a regular file or a folder", path)
		}
		l.root = filepath.Dir(abs)
		l.src.single = true
		data, err := readWorkflowFile(path)
		if err != nil {
			return nil, fmt.Errorf("load workspace: %w", err)
		}
		l.src.file = filepath.Base(abs)
		l.parseFile(filepath.Clean(path), data)
	}
	return l.finish(), nil
}

// wsLoader accumulates the definitions and problems of every file.
type wsLoader struct {
	root string // absolute
	src  *wsSource

	problems []Problem
	warnings []Problem
	// suggestions left: a "did you mean" compares a name with every
	// candidate, so a huge workspace full of wrong names could take
	// quadratic time; past this many comparisons, problems come without
	// suggestions.
	suggestions int
	actions     []*rawAction
	tasks       []*rawTask
	triggers    []*rawTrigger
	secrets     []*rawSecret
	// connection types, connections and the field types naming them
	// (connection.go)
	connTypes []*ConnectionType
	conns     []*Connection
	connRefs  []connRef
	hooks     []*Hooks
	// library: a step may name an action the library lacks (the
	// workspace's own, checked when merged; library.go).
	library bool
}

func newLoader(path string) *wsLoader {
	return &wsLoader{src: &wsSource{path: path}, suggestions: 1_000_000}
}

// suggest is didYouMean within the loader's budget of comparisons.
func (l *wsLoader) suggest(s string, candidates []string) string {
	if l.suggestions < len(candidates) {
		return ""
	}
	l.suggestions -= len(candidates)
	return didYouMean(s, candidates)
}

func (l *wsLoader) add(p Pos, msg string) {
	l.problems = append(l.problems, Problem{Pos: p, Message: msg})
}

func (l *wsLoader) warn(p Pos, msg string) {
	l.warnings = append(l.warnings, Problem{Pos: p, Message: msg})
}

// count is the number of problems so far; a definition whose parsing
// raised the count has problems.
func (l *wsLoader) count() int { return len(l.problems) }

// display is the name a problem shows for a file of the workspace: the
// path the user gave, joined with the file's relative name.
func (l *wsLoader) display(rel string) string {
	if !l.src.single {
		return filepath.Join(l.src.path, filepath.FromSlash(rel))
	}
	if rel == l.src.file {
		return filepath.Clean(l.src.path)
	}
	// A script next to a single workflow file.
	return filepath.Join(filepath.Dir(filepath.Clean(l.src.path)), filepath.FromSlash(rel))
}

func (l *wsLoader) loadFolder() error {
	dir := filepath.Join(l.root, WorkflowsDir)
	if _, err := os.ReadDir(dir); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("load workspace: %s has no %s folder", l.src.path, WorkflowsDir)
		}
		return fmt.Errorf("load workspace: %w", err)
	}
	// Every *.yaml and *.yml at any depth of .workflows (subfolders group
	// files as the user likes), in path order. Symlinked folders are not
	// followed; .sops.yaml (a SOPS configuration) is not a workflow file.
	var names []string
	_ = filepath.WalkDir(dir, func(path string, de fs.DirEntry, err error) error {
		if err != nil {
			if path != dir {
				rel, _ := filepath.Rel(dir, path)
				l.add(Pos{File: l.display(WorkflowsDir + "/" + filepath.ToSlash(rel))}, fmt.Sprintf("cannot read: %v", err))
			}
			return nil
		}
		if de.IsDir() {
			if path != dir && strings.HasPrefix(de.Name(), ".") {
				return filepath.SkipDir
			}
			return nil
		}
		ext := strings.ToLower(filepath.Ext(de.Name()))
		if (ext == ".yaml" || ext == ".yml") && de.Name() != ".sops.yaml" && de.Name() != ".sops.yml" {
			rel, _ := filepath.Rel(dir, path)
			names = append(names, filepath.ToSlash(rel))
		}
		return nil
	})
	sort.Strings(names)
	for _, name := range names {
		rel := WorkflowsDir + "/" + name
		shown := l.display(rel)
		full := filepath.Join(dir, filepath.FromSlash(name))
		info, err := os.Stat(full)
		if err != nil {
			l.add(Pos{File: shown}, fmt.Sprintf("cannot read workflow file: %v", err))
			continue
		}
		if !info.Mode().IsRegular() {
			if !info.IsDir() {
				l.add(Pos{File: shown}, "not a regular file; skipped")
			}
			continue
		}
		if !l.inside(full) {
			// The revision walk reports the symlink; do not read through it.
			continue
		}
		data, err := readWorkflowFile(full)
		if err != nil {
			l.add(Pos{File: shown}, fmt.Sprintf("cannot read workflow file: %v", err))
			continue
		}
		l.parseFile(shown, data)
	}
	return nil
}

// inside reports whether path, with symlinks resolved, stays in the root.
func (l *wsLoader) inside(path string) bool {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return false
	}
	root, err := filepath.EvalSymlinks(l.root)
	if err != nil {
		return false
	}
	return pathWithin(root, real)
}

// within reports whether path is root or below it (both cleaned).
func pathWithin(root, path string) bool {
	rel, err := filepath.Rel(root, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

func readWorkflowFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("%s is larger than %d MiB", path, maxFileSize>>20)
	}
	return data, nil
}

// yamlErrLine finds "line N" in a yaml.v3 error message.
var yamlErrLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parseFile parses one workflow file and records its definitions.
func (l *wsLoader) parseFile(shown string, data []byte) {
	f := &fileParser{l: l, name: shown, busy: map[*yaml.Node]bool{}}
	docs, err := yamlDecodeDocs(data)
	if err != nil {
		p := Pos{File: shown}
		msg := err.Error()
		if m := yamlErrLine.FindStringSubmatch(msg); m != nil {
			p.Line, _ = strconv.Atoi(m[1])
			p.Col = 1
			msg = m[2]
		} else {
			msg = strings.TrimPrefix(msg, "yaml: ")
		}
		l.add(p, "invalid YAML: "+msg)
		return
	}
	if IsSOPSFile(shown) && len(docs) > 0 {
		if err := DecryptSOPS(yamlResolve(docs[0])); err != nil {
			l.add(Pos{File: shown}, "cannot decrypt this SOPS file: "+err.Error())
			return
		}
	}
	for i, doc := range docs {
		if i > 0 {
			f.errorf(doc, "a workflow file holds one YAML document; this one (document %d) is ignored", i+1)
			continue
		}
		f.parseTop(doc)
	}
}

// decodeDocs parses every document of a YAML stream. yaml.v3 is trusted not
// to panic, but a panic there must not take a server down: it becomes an
// error.
func yamlDecodeDocs(data []byte) (docs []*yaml.Node, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: cannot parse the file (%v)", r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
			docs = append(docs, n.Content[0])
		} else {
			docs = append(docs, &n)
		}
	}
}

// workflowTopKeys are the keys a workflow file may have.
var workflowTopKeys = []string{"secrets", "actions", "tasks", "triggers", HookOnSuccess, HookOnError, HookOnCancel}

func (f *fileParser) parseTop(doc *yaml.Node) {
	doc = yamlResolve(doc)
	if yamlIsNull(doc) || (doc.Kind == yaml.DocumentNode && len(doc.Content) == 0) {
		return // an empty file (or only comments) defines nothing
	}
	if doc.Kind != yaml.MappingNode {
		f.errorf(doc, "a workflow file must be a mapping with the keys %s, not %s", strings.Join(workflowTopKeys, ", "), yamlDescribe(doc))
		return
	}
	top, _ := f.fields(doc, "workflow file", append(append([]string(nil), workflowTopKeys...), append(append([]string(nil), connectionTopKeys...), loadSortedKeys(notYetTop)...)...))
	for _, k := range loadSortedKeys(notYetTop) {
		if e, ok := top[k]; ok {
			f.errorf(e.kn, "%s are not supported yet in this version of Strøm (see docs/coming-from-rust-stroem.md)", notYetTop[k])
		}
	}
	if e, ok := top["secrets"]; ok {
		f.parseSecrets(e)
	}
	if e, ok := top["connection_types"]; ok {
		f.parseConnectionTypes(e)
	}
	if e, ok := top["connections"]; ok {
		f.parseConnections(e)
	}
	if h := f.parseHooks(top, []string{HookOnSuccess, HookOnError, HookOnCancel}); h != nil {
		f.l.hooks = append(f.l.hooks, h) // files' hooks are merged (upstream: extended)
	}
	if e, ok := top["actions"]; ok {
		es, _ := f.mappingDup(e.val, "actions", true)
		for _, a := range es {
			f.parseAction(a)
		}
	}
	if e, ok := top["tasks"]; ok {
		es, _ := f.mappingDup(e.val, "tasks", true)
		for _, t := range es {
			f.parseTask(t)
		}
	}
	if e, ok := top["triggers"]; ok {
		es, _ := f.mappingDup(e.val, "triggers", true)
		for _, t := range es {
			f.parseTrigger(t)
		}
	}
}

// finish links the definitions, computes the revision and builds the
// Workspace.
func (l *wsLoader) finish() *Workspace {
	ws := &Workspace{
		Name:     l.name(),
		Root:     l.root,
		Actions:  map[string]*Action{},
		Tasks:    map[string]*Task{},
		Triggers: map[string]*Trigger{},
		Secrets:  map[string]any{},
		src:      l.src,
	}
	l.link(ws)
	l.linkConnections(ws)
	l.revision(ws)
	ws.Problems = sortProblemList(l.problems)
	if len(l.warnings) > 0 {
		ws.Warnings = sortProblemList(l.warnings)
	}
	return ws
}

// name is the default workspace name: the folder's name, or the file's
// name without its extension. A Registry replaces it with the configured
// name.
func (l *wsLoader) name() string {
	if l.src.single {
		base := filepath.Base(l.src.path)
		return strings.TrimSuffix(base, filepath.Ext(base))
	}
	return filepath.Base(l.root)
}

// sortProblems orders problems by file, line, column and message and drops
// exact duplicates (an alias used twice reports the same node twice).
func sortProblemList(ps []Problem) []Problem {
	sort.SliceStable(ps, func(i, j int) bool {
		a, b := ps[i], ps[j]
		if a.Pos.File != b.Pos.File {
			return a.Pos.File < b.Pos.File
		}
		if a.Pos.Line != b.Pos.Line {
			return a.Pos.Line < b.Pos.Line
		}
		if a.Pos.Col != b.Pos.Col {
			return a.Pos.Col < b.Pos.Col
		}
		return a.Message < b.Message
	})
	out := make([]Problem, 0, len(ps))
	for i, p := range ps {
		if i > 0 && p == ps[i-1] {
			continue
		}
		out = append(out, p)
	}
	return out
}
