package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Without a home folder (a service, a bare container) no session can have
// been kept: the client commands go on without one, as with an empty
// credentials file. They all failed with "neither $XDG_CONFIG_HOME nor
// $HOME are defined".
func TestClientCommandsWithoutAHomeFolder(t *testing.T) {
	t.Setenv("HOME", "")
	t.Setenv("XDG_CONFIG_HOME", "")
	t.Setenv("STROEM_TOKEN", "")
	_, url := newFakeAPI(t)
	r := runCLI(t, t.Context(), "tasks", "--server", url)
	require.Equal(t, 0, r.code, r.err)
	require.Contains(t, r.out, "hello-world")

	// login has nowhere to keep the session: it says so.
	r = runCLIIn(t, t.Context(), "pw\n", "login", "--email", "a@example.com", "--password-stdin", "--server", url)
	require.Equal(t, 1, r.code, r.err)
	require.Contains(t, r.err, "find the user config dir")
}

// A STROEM_TOKEN that cannot be sent (a newline inside, from a file read
// with its line breaks) is a usage error naming the variable, not the
// token: it was "net/http: invalid header field value for Authorization".
func TestSTROEMTOKENWithAControlCharacter(t *testing.T) {
	t.Setenv("STROEM_TOKEN", "strm_abc\ndef")
	_, url := newFakeAPI(t)
	for _, args := range [][]string{{"tasks"}, {"login"}} {
		r := runCLI(t, t.Context(), append(args, "--server", url)...)
		require.Equal(t, 2, r.code, "%v: %s", args, r.err)
		require.Equal(t, "stroem: STROEM_TOKEN has a control character (a line break?) inside; a token is one line of printable characters\n", r.err)
	}
}

// A session kept for a URL whose server has no authentication now (stroem
// dev at the URL a server with auth: had, say) is not renewed there: the
// commands go on without a token, which that server does not need. Each
// failed with "authentication is not configured on this server" until
// `stroem logout`.
func TestKeptSessionOnAServerWithoutAuth(t *testing.T) {
	cfgDir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", cfgDir)
	t.Setenv("HOME", cfgDir)
	t.Setenv("STROEM_TOKEN", "")
	_, url := newFakeAPI(t) // has no /api/auth routes: 404
	path, err := credentialsPath()
	require.NoError(t, err)
	require.NoError(t, saveCredentials(credentialFile{Servers: map[string]credential{
		url: {Email: "a@example.com", AccessToken: "expired", RefreshToken: "refresh"}}}, path))
	r := runCLI(t, t.Context(), "tasks", "--server", url)
	require.Equal(t, 0, r.code, r.err)
	require.Contains(t, r.out, "hello-world")
}

// Ctrl-C while login waits for the email or the password ends it, exit
// 130: main turns SIGINT into a cancelled context, which a read of the
// terminal or stdin did not see, so the prompt ignored Ctrl-C until Enter
// (with echo still off at the password prompt).
func TestLoginPromptInterrupted(t *testing.T) {
	cfgDir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", cfgDir)
	t.Setenv("HOME", cfgDir)
	t.Setenv("STROEM_TOKEN", "")
	_, url := newFakeAPI(t)
	for _, args := range [][]string{
		{"login"},
		{"login", "--email", "a@example.com", "--password-stdin"},
	} {
		stdin, w := io.Pipe() // nothing is typed
		t.Cleanup(func() { _ = w.Close() })
		root := newRootCmd()
		root.SetIn(stdin)
		root.SetOut(io.Discard)
		root.SetErr(io.Discard)
		root.SetArgs(append(args, "--server", url))
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- root.ExecuteContext(ctx) }()
		cancel() // what Ctrl-C does, before or at the prompt
		select {
		case err := <-done:
			var ee *exitError
			require.ErrorAs(t, err, &ee, args)
			require.Equal(t, 130, ee.code, "%v: %v", args, err)
			require.NoError(t, ee.err, args)
		case <-time.After(5 * time.Second):
			t.Fatalf("%v: Ctrl-C did not end the prompt", args)
		}
	}
}

// A credentials file that cannot be used says so in words: of a file of
// valid JSON but another shape the error said "is not valid JSON: json:
// cannot unmarshal string into Go struct field credentialFile.servers of
// type main.credential", and of a folder it named the path twice.
func TestUnusableCredentialsFile(t *testing.T) {
	cfgDir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", cfgDir)
	t.Setenv("HOME", cfgDir)
	t.Setenv("STROEM_TOKEN", "")
	_, url := newFakeAPI(t)
	path, err := credentialsPath()
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o700))
	for _, content := range []string{`{"servers": {"` + url + `": "strm_x"}}`, `{"servers": `, `[]`} {
		require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
		r := runCLI(t, t.Context(), "tasks", "--server", url)
		require.Equal(t, 1, r.code, r.err)
		require.Equal(t, "stroem: credentials file "+path+" is not one `stroem login` wrote: delete it and log in again\n", r.err, content)
	}
	require.NoError(t, os.Remove(path))
	require.NoError(t, os.Mkdir(path, 0o700))
	r := runCLI(t, t.Context(), "tasks", "--server", url)
	require.Equal(t, 1, r.code, r.err)
	require.Equal(t, "stroem: credentials file: read "+path+": is a directory\n", r.err)
}
