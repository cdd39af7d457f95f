package workspace

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/format/gitignore"
)

// IgnoreFile, at a workspace's root, names files the workspace archive
// leaves out, in gitignore syntax (patterns, `dir/`, `**`, `!negation`,
// `#` comments).
const IgnoreFile = ".stroemignore"

// shipFilter decides which files of a revision go into the archive served
// to workers. Step code is untrusted and the archive is unpacked in its
// working directory, so the archive holds only what steps run: never
// .git, .env files, IgnoreFile itself, what IgnoreFile names, or the
// workflow files (which may hold literal secrets) unless an action runs one
// of them as its script.
type shipFilter struct {
	m       gitignore.Matcher
	scripts map[string]bool
	single  string // the workflow file of a single-file workspace
}

// newShipFilter reads root/IgnoreFile; a missing file ignores nothing
// beyond the fixed rules.
func newShipFilter(root string, actions map[string]*Action, single string) (*shipFilter, error) {
	f := &shipFilter{scripts: map[string]bool{}, single: single}
	for _, a := range actions {
		if a.Script == "" {
			continue
		}
		p, _ := SplitScript(a.Script)
		f.scripts[path.Clean(filepath.ToSlash(p))] = true
	}
	b, err := os.ReadFile(filepath.Join(root, IgnoreFile))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read %s: %w", IgnoreFile, err)
	}
	f.m = gitignore.NewMatcher(parseIgnore(b))
	return f, nil
}

// parseIgnore parses gitignore lines (blank lines and comments skipped).
func parseIgnore(b []byte) []gitignore.Pattern {
	var ps []gitignore.Pattern
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSuffix(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		ps = append(ps, gitignore.ParsePattern(line, nil))
	}
	return ps
}

// ships reports whether the file at slash-separated rel goes to workers.
func (f *shipFilter) ships(rel string) bool {
	if f.scripts[rel] {
		return true // an action runs it: the step needs it, whatever else says
	}
	parts := strings.Split(rel, "/")
	for _, p := range parts {
		if p == ".git" {
			return false
		}
	}
	base := parts[len(parts)-1]
	switch {
	case strings.HasPrefix(base, ".env"), base == IgnoreFile:
		return false
	case parts[0] == WorkflowsDir, rel == f.single:
		return false
	}
	return !f.m.Match(parts, false)
}
