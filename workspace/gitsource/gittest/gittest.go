// Package gittest makes git repositories for tests: a bare "remote" served
// over file:// (in process, by go-git) and an author repository that
// commits and pushes to it. Nothing touches the network.
package gittest

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	gitconfig "github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/stretchr/testify/require"

	// Serves file:// in process (no git binary).
	_ "github.com/stroem/stroem/workspace/gitsource"
)

// Remote is a bare repository and a working clone that pushes to it.
type Remote struct {
	t      testing.TB
	URL    string // file:// URL of the bare repository
	Bare   string
	work   string
	author *git.Repository
}

// New makes an empty bare repository and an author repository whose
// branch main pushes to it.
func New(t testing.TB) *Remote {
	t.Helper()
	bare := filepath.Join(t.TempDir(), "remote.git")
	_, err := git.PlainInit(bare, true)
	require.NoError(t, err)
	work := t.TempDir()
	author, err := git.PlainInitWithOptions(work, &git.PlainInitOptions{
		InitOptions: git.InitOptions{DefaultBranch: plumbing.NewBranchReferenceName("main")},
	})
	require.NoError(t, err)
	url := "file://" + bare
	_, err = author.CreateRemote(&gitconfig.RemoteConfig{Name: "origin", URLs: []string{url}})
	require.NoError(t, err)
	// The bare repository's HEAD names main, as a server's would.
	r, err := git.PlainOpen(bare)
	require.NoError(t, err)
	require.NoError(t, r.Storer.SetReference(plumbing.NewSymbolicReference(plumbing.HEAD, plumbing.NewBranchReferenceName("main"))))
	return &Remote{t: t, URL: url, Bare: bare, work: work, author: author}
}

// Commit writes files (path → content; "" deletes the file) into the
// author repository, commits them on the current branch and returns the
// commit's sha. It does not push.
func (r *Remote) Commit(msg string, files map[string]string) string {
	r.t.Helper()
	wt, err := r.author.Worktree()
	require.NoError(r.t, err)
	for p, content := range files {
		full := filepath.Join(r.work, filepath.FromSlash(p))
		if content == "" {
			_, err = wt.Remove(p)
			require.NoError(r.t, err)
			continue
		}
		require.NoError(r.t, os.MkdirAll(filepath.Dir(full), 0o755))
		mode := os.FileMode(0o644)
		if filepath.Ext(p) == ".sh" {
			mode = 0o755
		}
		require.NoError(r.t, os.WriteFile(full, []byte(content), mode))
		_, err = wt.Add(p)
		require.NoError(r.t, err)
	}
	h, err := wt.Commit(msg, &git.CommitOptions{
		AllowEmptyCommits: true,
		Author:            &object.Signature{Name: "test", Email: "test@stroem.local", When: time.Now()},
	})
	require.NoError(r.t, err)
	return h.String()
}

// Push pushes main to the bare repository, forced (a rewritten history
// replaces the remote's).
func (r *Remote) Push() {
	r.t.Helper()
	err := r.author.Push(&git.PushOptions{RemoteName: "origin", RefSpecs: []gitconfig.RefSpec{"+refs/heads/main:refs/heads/main"}, Force: true})
	if err == git.NoErrAlreadyUpToDate {
		return
	}
	require.NoError(r.t, err)
}

// Tag makes a lightweight tag at the author's HEAD and pushes it.
func (r *Remote) Tag(name string) {
	r.t.Helper()
	head, err := r.author.Head()
	require.NoError(r.t, err)
	_, err = r.author.CreateTag(name, head.Hash(), nil)
	require.NoError(r.t, err)
	require.NoError(r.t, r.author.Push(&git.PushOptions{RemoteName: "origin", RefSpecs: []gitconfig.RefSpec{gitconfig.RefSpec("refs/tags/" + name + ":refs/tags/" + name)}}))
}

// Reset moves the author's main back to sha (for a force-push).
func (r *Remote) Reset(sha string) {
	r.t.Helper()
	wt, err := r.author.Worktree()
	require.NoError(r.t, err)
	require.NoError(r.t, wt.Reset(&git.ResetOptions{Commit: plumbing.NewHash(sha), Mode: git.HardReset}))
}
