// Package gitsource fetches a workspace from a git repository with go-git
// (no git binary) and checks a commit out into a local folder the
// workspace loader reads. It implements workspace.Source.
//
// Each synced commit gets its own folder (checkouts/<sha>), written to a
// temporary name and renamed, so a folder that exists is complete and never
// changes; a new commit never touches the files of the one before. The
// registry loads the folder and stores its archive under the content
// revision, so a job created on an older commit keeps running on it.
//
// Fetches use forced refspecs, so a force-pushed branch is followed. The
// files of a commit are counted before anything is written, and a commit
// over MaxBytes is refused. Errors never contain the token, the key
// passphrase or credentials written into the URL.
package gitsource

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"github.com/go-git/go-git/v5"
	gitconfig "github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/client"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/plumbing/transport/server"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"golang.org/x/crypto/ssh"

	"github.com/stroem/stroem/workspace"
)

// DefaultMaxBytes bounds the files of one commit when Config.MaxBytes is 0.
const DefaultMaxBytes int64 = 100 << 20

// Auth types.
const (
	AuthNone  = ""
	AuthToken = "token"
	AuthSSH   = "ssh_key"
)

// Auth is how the server authenticates to the repository.
type Auth struct {
	// Type is "" (none), "token" (https, the token as the password) or
	// "ssh_key".
	Type string
	// Username for token auth (default "x-access-token", which GitHub
	// accepts; GitLab wants "oauth2") and for SSH (default: the URL's user,
	// else "git").
	Username string
	Token    string
	// PrivateKey is a PEM key; Passphrase decrypts it when encrypted.
	PrivateKey []byte
	Passphrase string
	// KnownHosts is a known_hosts file for SSH; empty uses the user's
	// default files. InsecureIgnoreHostKey skips host key checks (tests,
	// trusted networks only).
	KnownHosts            string
	InsecureIgnoreHostKey bool
}

// Config is one git workspace.
type Config struct {
	URL string
	// Ref is a branch, a tag or a full commit sha (40 hex digits); empty is
	// the remote's default branch (HEAD).
	Ref  string
	Auth Auth
	// Dir is this workspace's cache folder (the bare repository and the
	// checkouts live below it).
	Dir string
	// MaxBytes bounds the total size of a commit's files; 0 is
	// DefaultMaxBytes.
	MaxBytes int64
}

// Source is a git workspace source. Sync is safe to call from several
// goroutines; calls run one at a time.
type Source struct {
	cfg     Config
	auth    transport.AuthMethod
	secrets []string

	mu   sync.Mutex
	repo *git.Repository
}

// go-git's file:// transport runs the git-upload-pack binary; serve local
// repositories in process instead, so no git binary is ever started (a
// file:// URL must then name a bare repository).
func init() {
	client.InstallProtocol("file", server.NewClient(server.DefaultLoader))
}

var hexSHA = regexp.MustCompile(`^[0-9a-f]{40}$`)

// New checks the configuration and prepares the auth method; it does not
// touch the network.
func New(cfg Config) (*Source, error) {
	s := &Source{cfg: cfg}
	if cfg.URL == "" {
		return nil, errors.New("git workspace: url is empty")
	}
	if cfg.Dir == "" {
		return nil, errors.New("git workspace: no cache folder")
	}
	if s.cfg.MaxBytes <= 0 {
		s.cfg.MaxBytes = DefaultMaxBytes
	}
	if u, err := url.Parse(cfg.URL); err == nil && u.User != nil {
		if p, ok := u.User.Password(); ok && p != "" {
			s.secrets = append(s.secrets, p)
		}
	}
	switch cfg.Auth.Type {
	case AuthNone:
	case AuthToken:
		if cfg.Auth.Token == "" {
			return nil, errors.New("git workspace: auth type token needs a token")
		}
		user := cfg.Auth.Username
		if user == "" {
			user = "x-access-token"
		}
		s.auth = &githttp.BasicAuth{Username: user, Password: cfg.Auth.Token}
		s.secrets = append(s.secrets, cfg.Auth.Token)
	case AuthSSH:
		if len(cfg.Auth.PrivateKey) == 0 {
			return nil, errors.New("git workspace: auth type ssh_key needs a private key")
		}
		user := cfg.Auth.Username
		if user == "" {
			user = sshUser(cfg.URL)
		}
		if cfg.Auth.Passphrase != "" {
			s.secrets = append(s.secrets, cfg.Auth.Passphrase)
		}
		keys, err := gitssh.NewPublicKeys(user, cfg.Auth.PrivateKey, cfg.Auth.Passphrase)
		if err != nil {
			// The parse error of x/crypto never holds the key, but say
			// only what is wrong.
			return nil, fmt.Errorf("git workspace: the ssh private key cannot be used: %s", s.redact(err.Error()))
		}
		switch {
		case cfg.Auth.InsecureIgnoreHostKey:
			keys.HostKeyCallback = ssh.InsecureIgnoreHostKey() //nolint:gosec // opted in by configuration
		case cfg.Auth.KnownHosts != "":
			cb, err := gitssh.NewKnownHostsCallback(cfg.Auth.KnownHosts)
			if err != nil {
				return nil, fmt.Errorf("git workspace: known_hosts: %w", err)
			}
			keys.HostKeyCallback = cb
		}
		s.auth = keys
	default:
		return nil, fmt.Errorf("git workspace: auth type %q is not supported (token or ssh_key)", cfg.Auth.Type)
	}
	return s, nil
}

// sshUser is the user of an SSH URL (ssh://user@host/… or user@host:path),
// or "git".
func sshUser(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.User != nil && u.User.Username() != "" {
		return u.User.Username()
	}
	if at := strings.Index(raw, "@"); at > 0 && !strings.Contains(raw[:at], "/") {
		return raw[:at]
	}
	return "git"
}

// Describe is the URL without credentials, and the ref.
func (s *Source) Describe() string {
	ref := s.cfg.Ref
	if ref == "" {
		ref = "HEAD"
	}
	return RedactURL(s.cfg.URL) + "@" + ref
}

// RedactURL removes a password from a URL ("https://u:tok@h/r" →
// "https://u:xxxxx@h/r"); other strings are returned as they are.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// redact removes every credential from msg, and the cache folder's place
// on the server (a sync error reaches API clients, in the workspace's
// source status: no server path may): it reads "<git cache>".
func (s *Source) redact(msg string) string {
	if abs, err := filepath.Abs(s.cfg.Dir); err == nil && abs != string(filepath.Separator) {
		msg = strings.ReplaceAll(msg, abs, "<git cache>")
	}
	if s.cfg.Dir != "." && s.cfg.Dir != string(filepath.Separator) {
		msg = strings.ReplaceAll(msg, s.cfg.Dir, "<git cache>")
	}
	msg = strings.ReplaceAll(msg, s.cfg.URL, RedactURL(s.cfg.URL))
	for _, sec := range s.secrets {
		// Also the escaped forms a URL in a library's message may carry.
		for _, form := range []string{sec, url.QueryEscape(sec), url.PathEscape(sec), url.UserPassword("", sec).String()[1:]} {
			if form != "" {
				msg = strings.ReplaceAll(msg, form, "xxxxx")
			}
		}
	}
	return msg
}

// fail wraps err as an error whose text holds no credential.
func (s *Source) fail(format string, err error) error {
	return errors.New(s.redact(fmt.Sprintf(format, err)))
}

// Sync fetches the ref and checks its commit out, unless that folder
// exists already. It then removes the folders of other commits but keep's
// (the version the registry serves). On error the folders of earlier syncs
// are untouched. An error's text holds no credential and no server path
// (redact).
func (s *Source) Sync(ctx context.Context, keep string) (workspace.SyncResult, error) {
	res, err := s.sync(ctx, keep)
	if err != nil {
		return workspace.SyncResult{}, errors.New(s.redact(err.Error()))
	}
	return res, nil
}

func (s *Source) sync(ctx context.Context, keep string) (workspace.SyncResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	repo, err := s.open()
	if err != nil {
		return workspace.SyncResult{}, err
	}
	err = repo.FetchContext(ctx, &git.FetchOptions{
		RemoteName: "origin",
		RefSpecs: []gitconfig.RefSpec{
			"+refs/heads/*:refs/remotes/origin/*",
			"+refs/tags/*:refs/tags/*",
			"+HEAD:refs/remotes/origin/HEAD",
		},
		Auth:  s.auth,
		Force: true,
		Tags:  git.NoTags,
	})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return workspace.SyncResult{}, s.fail("fetch "+RedactURL(s.cfg.URL)+": %v", err)
	}
	hash, err := s.resolve(repo)
	if err != nil {
		return workspace.SyncResult{}, err
	}
	dir, err := s.checkout(repo, hash)
	if err != nil {
		return workspace.SyncResult{}, err
	}
	s.prune(hash.String(), keep)
	return workspace.SyncResult{Dir: dir, Version: hash.String()}, nil
}

func (s *Source) open() (*git.Repository, error) {
	if s.repo != nil {
		return s.repo, nil
	}
	gitDir := filepath.Join(s.cfg.Dir, "repo.git")
	repo, err := git.PlainOpen(gitDir)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		if err = os.MkdirAll(s.cfg.Dir, 0o750); err != nil {
			return nil, fmt.Errorf("git workspace cache: %w", err)
		}
		repo, err = git.PlainInit(gitDir, true)
	}
	if err != nil {
		return nil, fmt.Errorf("git workspace cache %s: %w", gitDir, err)
	}
	// The remote's URL follows the configuration (it may have changed since
	// the cache was made).
	_ = repo.DeleteRemote("origin")
	if _, err = repo.CreateRemote(&gitconfig.RemoteConfig{Name: "origin", URLs: []string{s.cfg.URL}}); err != nil {
		return nil, s.fail("git workspace remote: %v", err)
	}
	s.repo = repo
	return repo, nil
}

// resolve finds the commit of the ref: a full sha, a branch, then a tag.
func (s *Source) resolve(repo *git.Repository) (plumbing.Hash, error) {
	ref := s.cfg.Ref
	if hexSHA.MatchString(ref) {
		h := plumbing.NewHash(ref)
		if _, err := repo.CommitObject(h); err != nil {
			return plumbing.ZeroHash, fmt.Errorf("commit %s is not in %s (fetched every branch and tag)", ref, RedactURL(s.cfg.URL))
		}
		return h, nil
	}
	var names []plumbing.ReferenceName
	if ref == "" {
		names = []plumbing.ReferenceName{"refs/remotes/origin/HEAD"}
	} else {
		names = []plumbing.ReferenceName{plumbing.NewRemoteReferenceName("origin", ref), plumbing.NewTagReferenceName(ref)}
	}
	for _, n := range names {
		r, err := repo.Reference(n, true)
		if err != nil {
			continue
		}
		h := r.Hash()
		// An annotated tag points at a tag object: peel it.
		if tag, err := repo.TagObject(h); err == nil {
			c, err := tag.Commit()
			if err != nil {
				return plumbing.ZeroHash, fmt.Errorf("tag %s does not point at a commit", ref)
			}
			h = c.Hash
		}
		return h, nil
	}
	if ref == "" {
		return plumbing.ZeroHash, fmt.Errorf("%s has no default branch (HEAD); set ref", RedactURL(s.cfg.URL))
	}
	return plumbing.ZeroHash, fmt.Errorf("ref %q is neither a branch nor a tag of %s", ref, RedactURL(s.cfg.URL))
}

// checkout writes the files of the commit to checkouts/<sha>, refusing a
// commit whose files exceed MaxBytes or hold a path that leaves the folder.
func (s *Source) checkout(repo *git.Repository, h plumbing.Hash) (string, error) {
	dir := filepath.Join(s.cfg.Dir, "checkouts", h.String())
	if _, err := os.Stat(dir); err == nil {
		return dir, nil
	}
	commit, err := repo.CommitObject(h)
	if err != nil {
		return "", fmt.Errorf("commit %s: %w", h, err)
	}
	tree, err := commit.Tree()
	if err != nil {
		return "", fmt.Errorf("commit %s: %w", h, err)
	}
	var files []*object.File
	var total int64
	err = tree.Files().ForEach(func(f *object.File) error {
		if !filepath.IsLocal(filepath.FromSlash(f.Name)) || path.Clean(f.Name) != f.Name {
			return fmt.Errorf("commit %s has the unsafe path %q", short(h), f.Name)
		}
		total += f.Size
		if total > s.cfg.MaxBytes {
			return fmt.Errorf("commit %s of %s is over the size limit: its files exceed %d bytes (max_size_bytes)", short(h), RedactURL(s.cfg.URL), s.cfg.MaxBytes)
		}
		files = append(files, f)
		return nil
	})
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o750); err != nil {
		return "", fmt.Errorf("git workspace cache: %w", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".tmp-"+short(h)+"-")
	if err != nil {
		return "", fmt.Errorf("git workspace cache: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			_ = os.RemoveAll(tmp)
		}
	}()
	for _, f := range files {
		if err := writeFile(tmp, f); err != nil {
			return "", fmt.Errorf("check out %s of commit %s: %w", f.Name, short(h), err)
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", fmt.Errorf("git workspace cache: %w", err)
	}
	ok = true
	return dir, nil
}

func writeFile(root string, f *object.File) error {
	dst := filepath.Join(root, filepath.FromSlash(f.Name))
	if err := os.MkdirAll(filepath.Dir(dst), 0o750); err != nil {
		return err
	}
	r, err := f.Reader()
	if err != nil {
		return err
	}
	defer r.Close()
	if f.Mode == filemode.Symlink {
		target, err := io.ReadAll(io.LimitReader(r, 4096))
		if err != nil {
			return err
		}
		// The loader decides whether a link stays inside the workspace.
		return os.Symlink(string(target), dst)
	}
	perm := os.FileMode(0o644)
	if f.Mode == filemode.Executable {
		perm = 0o755
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, r); err != nil {
		_ = out.Close()
		return err
	}
	return out.Close()
}

// prune removes every commit folder but cur's and keep's.
func (s *Source) prune(cur, keep string) {
	base := filepath.Join(s.cfg.Dir, "checkouts")
	entries, _ := os.ReadDir(base)
	for _, e := range entries {
		if n := e.Name(); n != cur && n != keep {
			_ = os.RemoveAll(filepath.Join(base, n))
		}
	}
}

func short(h plumbing.Hash) string { return h.String()[:12] }
