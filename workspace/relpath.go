package workspace

import (
	"path/filepath"
	"slices"
	"strings"
)

// PublicText returns s with the server's absolute paths of the workspace
// rewritten relative to the workspace root ("/srv/ws/.workflows/a.yaml" →
// ".workflows/a.yaml", the root itself → "."): what API clients see of a
// load error or a problem. Where a workspace lives on the server is no
// client's business (and can tell an attacker about the host).
func (ws *Workspace) PublicText(s string) string {
	if ws == nil {
		return s
	}
	var roots []string
	add := func(p string) {
		if p == "" || !filepath.IsAbs(p) {
			return
		}
		p = filepath.Clean(p)
		if p != string(filepath.Separator) && !slices.Contains(roots, p) {
			roots = append(roots, p)
		}
	}
	add(ws.Root)
	if real, err := filepath.EvalSymlinks(ws.Root); err == nil {
		add(real)
	}
	if ws.src != nil && !ws.src.single {
		if abs, err := filepath.Abs(ws.src.path); err == nil {
			add(abs)
		}
	}
	// Longest first: a root inside another is rewritten before it.
	slices.SortFunc(roots, func(a, b string) int { return len(b) - len(a) })
	for _, r := range roots {
		s = strings.ReplaceAll(s, r+string(filepath.Separator), "")
		s = strings.ReplaceAll(s, r, ".")
	}
	return s
}

// PublicProblems returns the workspace's problems as API clients see them:
// "file:line:col: message" with file relative to the workspace root, and
// no absolute server path in the message.
func (ws *Workspace) PublicProblems() []string {
	out := make([]string, 0, len(ws.Problems))
	for _, p := range ws.Problems {
		if ws.src != nil && !ws.src.single && !filepath.IsAbs(p.Pos.File) {
			// Shown under the configured (relative) path: strip it.
			if rel, err := filepath.Rel(filepath.Clean(ws.src.path), p.Pos.File); err == nil && filepath.IsLocal(rel) {
				p.Pos.File = filepath.ToSlash(rel)
			}
		}
		out = append(out, ws.PublicText(p.String()))
	}
	return out
}
