package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"github.com/stroem/stroem/workspace"
)

// libraryConfig is one entry of `libraries:` (the upstream's keys): a
// folder (path) or a git repository (url, ref, and auth naming an entry
// of `git_auth:`). See docs/workspaces.md.
type libraryConfig struct {
	Type string `yaml:"type"`
	Path string `yaml:"path"`
	URL  string `yaml:"url"`
	Ref  string `yaml:"ref"`
	Auth string `yaml:"auth"`
	// MaxSizeBytes bounds the files of the commit, as for a git workspace.
	MaxSizeBytes int64 `yaml:"max_size_bytes"`
}

// validateLibraries checks `libraries:` and `git_auth:` (no network, no
// secrets resolved).
func (c *serverConfig) validateLibraries() error {
	for _, name := range slices.Sorted(maps.Keys(c.Libraries)) {
		l := c.Libraries[name]
		key := func(k string) string { return "key libraries." + name + "." + k }
		if name == "" || strings.ContainsAny(name, "./ ") {
			return fmt.Errorf("key libraries.%s: a library name is the prefix of its items (name.item): no dots, slashes or spaces", name)
		}
		switch l.Type {
		case "folder":
			if l.Path == "" {
				return fmt.Errorf("%s: must be set for a folder library", key("path"))
			}
			if l.URL != "" || l.Ref != "" || l.Auth != "" {
				return fmt.Errorf("key libraries.%s: url, ref and auth are for git libraries (type: git)", name)
			}
		case "git":
			if l.URL == "" {
				return fmt.Errorf("%s: must be set for a git library", key("url"))
			}
			if l.Path != "" {
				return fmt.Errorf("%s: a git library has no path (the server checks it out itself)", key("path"))
			}
			if l.MaxSizeBytes < 0 {
				return fmt.Errorf("%s: must not be negative", key("max_size_bytes"))
			}
			if l.Auth != "" {
				if _, ok := c.GitAuth[l.Auth]; !ok {
					return fmt.Errorf("%s: no git_auth entry %q (entries: %s)", key("auth"), l.Auth, strings.Join(slices.Sorted(maps.Keys(c.GitAuth)), ", "))
				}
			}
		default:
			return fmt.Errorf("%s: %q is not supported (folder or git)", key("type"), l.Type)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(c.GitAuth)) {
		// The same checks as a git workspace's auth block.
		w := workspaceConfig{Type: "git", gitWorkspaceConfig: gitWorkspaceConfig{URL: "x", Auth: c.GitAuth[name]}}
		if err := w.validateGit(name); err != nil {
			return errors.New(strings.Replace(err.Error(), "key workspaces."+name+".auth", "key git_auth."+name, 1))
		}
	}
	return nil
}

// loadLibraries loads every configured library once: a folder as it is,
// a git repository at its ref (a clone in git_cache_dir/_libraries/NAME).
// A library that cannot be loaded is returned with its error: every
// workspace reports it, and steps naming its actions are refused.
func loadLibraries(ctx context.Context, cfg serverConfig, log *slog.Logger) []*workspace.Library {
	var out []*workspace.Library
	for _, name := range slices.Sorted(maps.Keys(cfg.Libraries)) {
		l := cfg.Libraries[name]
		lib := &workspace.Library{Name: name}
		dir := l.Path
		if l.Type == "git" {
			w := workspaceConfig{Type: "git", gitWorkspaceConfig: gitWorkspaceConfig{URL: l.URL, Ref: l.Ref, MaxSizeBytes: l.MaxSizeBytes}}
			if l.Auth != "" {
				w.Auth = cfg.GitAuth[l.Auth]
			}
			src, err := w.gitSource(name, filepath.Join(cfg.GitCacheDir, workspace.LibrariesDir))
			version := ""
			if err == nil {
				var res workspace.SyncResult
				if res, err = src.Sync(ctx, ""); err == nil {
					dir, version = res.Dir, res.Version
					log.Info("library synced", "library", name, "source", src.Describe(), "version", res.Version)
				}
			}
			if err != nil {
				lib.Err = errors.New(strings.Replace(err.Error(), "workspace "+name+": ", "", 1))
			}
			pinned := gitsourcePinned(l.Ref)
			if !pinned {
				log.Warn("library follows a floating ref: it is fetched again at every workspace reload; pin a tag or commit for reproducible jobs", "library", name, "ref", l.Ref)
			}
			if src != nil && (!pinned || lib.Err != nil) {
				// A branch moves: fetched again before every workspace
				// load. A pinned ref is fetched until it worked once.
				var last *workspace.Workspace
				lib.Refresh = func(ctx context.Context) (*workspace.Workspace, error) {
					if pinned && last != nil {
						return last, nil
					}
					res, err := src.Sync(ctx, version)
					if err != nil {
						return nil, err
					}
					version = res.Version
					lw, err := workspace.LoadLibrary(res.Dir)
					if err == nil {
						last = lw
					}
					return lw, err
				}
			}
		} else {
			lib.Refresh = func(context.Context) (*workspace.Workspace, error) { return workspace.LoadLibrary(l.Path) }
		}
		if lib.Err == nil {
			ws, err := workspace.LoadLibrary(dir)
			if err != nil {
				lib.Err = err
			} else {
				lib.WS = ws
			}
		}
		if lib.Err != nil {
			log.Error("library cannot be loaded; its actions are not available", "library", name, "err", lib.Err)
		}
		out = append(out, lib)
	}
	return out
}

// gitsourcePinned reports whether a ref names one commit for good: a full
// sha, or a tag-looking version (v1.2.0). Branches move.
func gitsourcePinned(ref string) bool {
	if fullSHA.MatchString(ref) {
		return true
	}
	return strings.HasPrefix(ref, "v") && strings.ContainsAny(ref, "0123456789") && strings.Contains(ref, ".")
}
