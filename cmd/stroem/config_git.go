package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/stroem/stroem/workspace"
	"github.com/stroem/stroem/workspace/gitsource"
)

// gitWorkspaceConfig holds the keys of a `type: git` workspace (inlined in
// workspaceConfig).
type gitWorkspaceConfig struct {
	URL string `yaml:"url"`
	// Ref is a branch, tag or full commit sha (upstream's key); Branch,
	// Tag and Commit say the same explicitly. At most one is set.
	Ref    string `yaml:"ref"`
	Branch string `yaml:"branch"`
	Tag    string `yaml:"tag"`
	Commit string `yaml:"commit"`
	// PollIntervalSecs is how often the repository is fetched; 0 is 60,
	// a negative value turns polling off (refresh route only).
	PollIntervalSecs int           `yaml:"poll_interval_secs"`
	MaxSizeBytes     int64         `yaml:"max_size_bytes"`
	Auth             gitAuthConfig `yaml:"auth"`
}

// gitAuthConfig is a git workspace's credentials. token, private_key and
// passphrase may be secret references (ref+env://VAR, ref+file://path),
// resolved when the server starts.
type gitAuthConfig struct {
	Type                  string `yaml:"type"`
	Username              string `yaml:"username"`
	Token                 string `yaml:"token"`
	PrivateKey            string `yaml:"private_key"`
	PrivateKeyPath        string `yaml:"private_key_path"`
	Passphrase            string `yaml:"passphrase"`
	KnownHosts            string `yaml:"known_hosts"`
	InsecureIgnoreHostKey bool   `yaml:"insecure_ignore_host_key"`
}

// defaultPollInterval is upstream's default poll_interval_secs.
const defaultPollInterval = 60

var fullSHA = regexp.MustCompile(`^[0-9a-f]{40}$`)

// validateGit checks a git workspace's keys (no network, no secrets
// resolved).
func (w *workspaceConfig) validateGit(name string) error {
	key := func(k string) string { return "key workspaces." + name + "." + k }
	if w.URL == "" {
		return fmt.Errorf("%s: must be set for a git workspace", key("url"))
	}
	if w.Path != "" {
		return fmt.Errorf("%s: a git workspace has no path (the server checks it out itself)", key("path"))
	}
	n := 0
	for _, v := range []string{w.Ref, w.Branch, w.Tag, w.Commit} {
		if v != "" {
			n++
		}
	}
	if n > 1 {
		return fmt.Errorf("key workspaces.%s: set only one of ref, branch, tag and commit", name)
	}
	if w.Commit != "" && !fullSHA.MatchString(w.Commit) {
		return fmt.Errorf("%s: %q is not a full commit sha (40 lower-case hex digits)", key("commit"), w.Commit)
	}
	if w.MaxSizeBytes < 0 {
		return fmt.Errorf("%s: must not be negative", key("max_size_bytes"))
	}
	switch w.Auth.Type {
	case gitsource.AuthNone:
	case gitsource.AuthToken:
		if w.Auth.Token == "" {
			return fmt.Errorf("%s: must be set for auth type token", key("auth.token"))
		}
	case gitsource.AuthSSH:
		if (w.Auth.PrivateKey == "") == (w.Auth.PrivateKeyPath == "") {
			return fmt.Errorf("key workspaces.%s.auth: set one of private_key and private_key_path for auth type ssh_key", name)
		}
	default:
		return fmt.Errorf("%s: %q is not supported (token or ssh_key)", key("auth.type"), w.Auth.Type)
	}
	return nil
}

// gitSource builds the source of a git workspace: it resolves the secret
// references of its credentials and reads its key file. Errors name the
// key, never a secret value.
func (w *workspaceConfig) gitSource(name, cacheDir string) (*gitsource.Source, error) {
	ref := w.Ref
	for _, v := range []string{w.Branch, w.Tag, w.Commit} {
		if v != "" {
			ref = v
		}
	}
	raw := map[string]any{"token": w.Auth.Token, "private_key": w.Auth.PrivateKey, "passphrase": w.Auth.Passphrase}
	res, err := workspace.ResolveSecrets(raw)
	if err != nil {
		return nil, fmt.Errorf("workspace %s: auth: %w", name, err)
	}
	str := func(k string) string { s, _ := res[k].(string); return s }
	key := []byte(str("private_key"))
	if w.Auth.PrivateKeyPath != "" {
		if key, err = os.ReadFile(w.Auth.PrivateKeyPath); err != nil {
			var pe *os.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			return nil, fmt.Errorf("workspace %s: auth.private_key_path %s: %w", name, w.Auth.PrivateKeyPath, err)
		}
	}
	src, err := gitsource.New(gitsource.Config{
		URL: w.URL, Ref: ref, Dir: filepath.Join(cacheDir, name), MaxBytes: w.MaxSizeBytes,
		Auth: gitsource.Auth{
			Type: w.Auth.Type, Username: w.Auth.Username, Token: str("token"),
			PrivateKey: key, Passphrase: str("passphrase"),
			KnownHosts: w.Auth.KnownHosts, InsecureIgnoreHostKey: w.Auth.InsecureIgnoreHostKey,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("workspace %s: %w", name, err)
	}
	return src, nil
}

// addGitWorkspaces adds the git workspaces of cfg to reg and syncs each
// once. A workspace whose credentials cannot be resolved is served empty
// with that error, like an unreachable one: it never stops the others.
func addGitWorkspaces(ctx context.Context, reg *workspace.Registry, cfg serverConfig, log *slog.Logger) {
	for name, w := range cfg.Workspaces {
		if w.Type != "git" {
			continue
		}
		every := time.Duration(w.PollIntervalSecs) * time.Second
		switch {
		case w.PollIntervalSecs == 0:
			every = defaultPollInterval * time.Second
		case w.PollIntervalSecs < 0:
			every = 0
		}
		var src workspace.Source
		src, err := w.gitSource(name, cfg.GitCacheDir)
		if err != nil {
			log.Error("git workspace cannot be set up", "workspace", name, "err", err)
			src = brokenSource{desc: gitsource.RedactURL(w.URL), err: err}
		}
		reg.AddSource(ctx, name, src, every)
	}
}

// brokenSource is a git workspace whose configuration cannot be used: every
// sync reports why.
type brokenSource struct {
	desc string
	err  error
}

func (b brokenSource) Sync(context.Context, string) (workspace.SyncResult, error) {
	return workspace.SyncResult{}, b.err
}

func (b brokenSource) Describe() string { return b.desc }
