package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/auth"
	"github.com/stroem/stroem/http/client"
)

// Credentials: `stroem login` keeps one session per server URL in
// <user config dir>/stroem/credentials.json (mode 0600), and every client
// command sends the server's token. STROEM_TOKEN (an API key or an access
// token) wins over the file.

// credential is what is kept for one server.
type credential struct {
	Email        string `json:"email,omitempty"`
	AccessToken  string `json:"access_token,omitempty"`
	RefreshToken string `json:"refresh_token,omitempty"`
	// APIKey is set when the login was with STROEM_TOKEN.
	APIKey string `json:"api_key,omitempty"`
}

type credentialFile struct {
	Servers map[string]credential `json:"servers"`
}

// credentialsPath is where sessions are kept.
func credentialsPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("find the user config dir for the credentials file: %w", err)
	}
	return filepath.Join(dir, "stroem", "credentials.json"), nil
}

func loadCredentials() (credentialFile, string, error) {
	cf := credentialFile{Servers: map[string]credential{}}
	path, err := credentialsPath()
	if err != nil {
		return cf, "", err
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return cf, path, nil
	}
	if err != nil {
		return cf, path, fmt.Errorf("credentials file: %w", err) // err names the path
	}
	if err := json.Unmarshal(b, &cf); err != nil {
		// Not the decoder's words: they name Go types (main.credential).
		return cf, path, fmt.Errorf("credentials file %s is not one `stroem login` wrote: delete it and log in again", path)
	}
	if cf.Servers == nil {
		cf.Servers = map[string]credential{}
	}
	return cf, path, nil
}

// saveCredentials writes the file atomically with mode 0600 (its folder
// 0700).
func saveCredentials(cf credentialFile, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	b, err := json.MarshalIndent(cf, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".credentials-*")
	if err != nil {
		return fmt.Errorf("write credentials: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("write credentials: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// serverKey names a server in the credentials file.
func serverKey(url string) string { return strings.TrimRight(strings.TrimSpace(url), "/") }

// tokenFor returns the bearer token client commands send to server:
// STROEM_TOKEN, else the stored session (refreshed first when its access
// token is about to expire), else none.
func tokenFor(ctx context.Context, server string) (string, error) {
	if t, err := envToken(); t != "" || err != nil {
		return t, err
	}
	cf, path, err := loadCredentials()
	if err != nil && path == "" {
		return "", nil // no config dir (no $HOME): no session was kept
	}
	if err != nil {
		return "", err
	}
	key := serverKey(server)
	c, ok := cf.Servers[key]
	if !ok {
		return "", nil
	}
	if c.APIKey != "" {
		return c.APIKey, nil
	}
	if c.AccessToken != "" && time.Until(jwtExpiry(c.AccessToken)) > time.Minute {
		return c.AccessToken, nil
	}
	if c.RefreshToken == "" {
		return c.AccessToken, nil
	}
	cl, err := newClient(server, "")
	if err != nil {
		return "", err
	}
	tok, err := cl.Refresh(ctx, c.RefreshToken)
	if err != nil {
		if stroem.ErrorCode(err) == stroem.CodeNotFound {
			// The server has no authentication (now): it needs no token.
			return "", nil
		}
		if stroem.ErrorCode(err) == stroem.CodeUnauthorized {
			delete(cf.Servers, key)
			_ = saveCredentials(cf, path)
			return "", stroem.Errorf(stroem.CodeUnauthorized, "your session on %s has ended", server)
		}
		return "", err
	}
	c.AccessToken, c.RefreshToken = tok.AccessToken, tok.RefreshToken
	cf.Servers[key] = c
	if err := saveCredentials(cf, path); err != nil {
		return "", err
	}
	return c.AccessToken, nil
}

// envToken is STROEM_TOKEN without surrounding space. One with a control
// character inside (a line break, from a file read whole) cannot be sent
// as a header: a usage error that names the variable, not its value.
func envToken() (string, error) {
	t := strings.TrimSpace(os.Getenv("STROEM_TOKEN"))
	if strings.ContainsFunc(t, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return "", usageError("STROEM_TOKEN has a control character (a line break?) inside; a token is one line of printable characters")
	}
	return t, nil
}

// jwtExpiry reads a JWT's exp without checking it (the server does); the
// zero time when it has none.
func jwtExpiry(tok string) time.Time {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return time.Time{}
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}
	}
	var c struct {
		Exp int64 `json:"exp"`
	}
	if json.Unmarshal(b, &c) != nil || c.Exp == 0 {
		return time.Time{}
	}
	return time.Unix(c.Exp, 0)
}

func newLoginCmd() *cobra.Command {
	var email string
	var passwordStdin bool
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Log in to a server and keep the session for the other commands",
		Long: `Log in with your email and password; the password is asked for on the
terminal (or read from stdin with --password-stdin). The session is kept in
<user config dir>/stroem/credentials.json (mode 0600) and sent by every
client command to this server; it renews itself for 30 days of use.

With STROEM_TOKEN set to an API key (strm_…), login checks the key and keeps
it instead.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f := cmd.Flag("server").Value.String()
			cl, err := newClient(f, "")
			if err != nil {
				return err
			}
			cf, path, err := loadCredentials()
			if err != nil {
				return err
			}
			key := serverKey(f)
			apiKey, err := envToken()
			if err != nil {
				return err
			}
			if apiKey != "" {
				authed, err := newClient(f, apiKey)
				if err != nil {
					return err
				}
				u, err := authed.Me(cmd.Context())
				if err != nil {
					return fmt.Errorf("STROEM_TOKEN was not accepted by %s: %w", f, err)
				}
				cf.Servers[key] = credential{Email: u.Email, APIKey: apiKey}
				if err := saveCredentials(cf, path); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Logged in to %s as %s (API key); saved in %s\n", f, u.Email, path)
				return nil
			}
			in := bufio.NewReader(cmd.InOrStdin())
			if email == "" {
				fmt.Fprint(cmd.ErrOrStderr(), "Email: ")
				line, err := readInterruptibly(cmd.Context(), func() (string, error) { return in.ReadString('\n') })
				if cmd.Context().Err() != nil {
					return cmd.Context().Err()
				}
				if err != nil && line == "" {
					return usageError("no email given (use --email)")
				}
				email = strings.TrimSpace(line)
			}
			password, err := readPassword(cmd, in, passwordStdin)
			if err != nil {
				return err
			}
			tok, err := cl.Login(cmd.Context(), email, password)
			if err != nil {
				if stroem.ErrorCode(err) == stroem.CodeNotFound {
					return fmt.Errorf("%s has no password login: %w", f, err)
				}
				return err
			}
			cf.Servers[key] = credential{Email: email, AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken}
			if err := saveCredentials(cf, path); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Logged in to %s as %s; session saved in %s\n", f, email, path)
			return nil
		},
	}
	addClientFlags(cmd, false)
	cmd.Flags().StringVar(&email, "email", "", "account email (asked for when not given)")
	cmd.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the password from stdin (one line) instead of prompting")
	return cmd
}

// readInterruptibly returns what read (a blocking read of the terminal or
// stdin) returns, or the context's error as soon as it is cancelled: main
// turns Ctrl-C into a cancelled context, which a read does not see, so a
// prompt ignored Ctrl-C until Enter. The read is left behind; the process
// is about to exit.
func readInterruptibly(ctx context.Context, read func() (string, error)) (string, error) {
	type result struct {
		s   string
		err error
	}
	ch := make(chan result, 1)
	go func() {
		s, err := read()
		ch <- result{s, err}
	}()
	select {
	case r := <-ch:
		return r.s, r.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// readPassword prompts without echo on a terminal, or reads one line.
func readPassword(cmd *cobra.Command, in *bufio.Reader, fromStdin bool) (string, error) {
	if f, ok := cmd.InOrStdin().(*os.File); ok && !fromStdin && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(cmd.ErrOrStderr(), "Password: ")
		fd := int(f.Fd())
		state, err := term.GetState(fd)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		b, err := readInterruptibly(cmd.Context(), func() (string, error) {
			b, err := term.ReadPassword(fd)
			return string(b), err
		})
		fmt.Fprintln(cmd.ErrOrStderr())
		if cmd.Context().Err() != nil {
			_ = term.Restore(fd, state) // echo back on: ReadPassword is still waiting
			return "", cmd.Context().Err()
		}
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		return b, nil
	}
	line, err := readInterruptibly(cmd.Context(), func() (string, error) { return in.ReadString('\n') })
	if cmd.Context().Err() != nil {
		return "", cmd.Context().Err()
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", usageError("no password given on stdin")
	}
	return line, nil
}

func newLogoutCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "logout",
		Short: "End the session kept for a server",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f := cmd.Flag("server").Value.String()
			cl, err := newClient(f, "")
			if err != nil {
				return err
			}
			cf, path, err := loadCredentials()
			if err != nil {
				return err
			}
			key := serverKey(f)
			c, ok := cf.Servers[key]
			if !ok {
				fmt.Fprintf(cmd.OutOrStdout(), "Not logged in to %s\n", f)
				return nil
			}
			if c.RefreshToken != "" {
				if err := cl.Logout(cmd.Context(), c.RefreshToken); err != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "stroem: the server did not revoke the session (%v); forgetting it here anyway\n", err)
				}
			}
			delete(cf.Servers, key)
			if err := saveCredentials(cf, path); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Logged out of %s\n", f)
			return nil
		},
	}
	addClientFlags(cmd, false)
	return cmd
}

func newWhoamiCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "whoami",
		Short: "Show who the client commands act as on a server",
		Args:  cobra.NoArgs,
	}
	f := addClientFlags(cmd, true)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		c, err := f.client(cmd.Context())
		if err != nil {
			return err
		}
		info, err := c.ServerInfo(cmd.Context())
		if err != nil {
			return err
		}
		if !info.AuthRequired {
			if f.json() {
				return printJSON(cmd.OutOrStdout(), map[string]any{"auth_required": false})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s has no authentication: every client acts with full access\n", f.server)
			return nil
		}
		u, err := c.Me(cmd.Context())
		if err != nil {
			return err
		}
		if f.json() {
			return printJSON(cmd.OutOrStdout(), u)
		}
		role := "user"
		if u.IsAdmin {
			role = "admin"
		}
		groups := "-"
		if len(u.Groups) > 0 {
			groups = strings.Join(u.Groups, ", ")
		}
		fmt.Fprintf(cmd.OutOrStdout(), "%s (%s) on %s\ngroups: %s\n", u.Email, role, f.server, groups)
		return nil
	}
	return cmd
}

func newAPIKeysCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "api-keys",
		Short: "Create, list and revoke your API keys (for CI: STROEM_TOKEN=strm_…)",
	}
	create := &cobra.Command{Use: "create NAME", Short: "Create an API key (shown once)", Args: cobra.ExactArgs(1)}
	cf := addClientFlags(create, true)
	var days int
	create.Flags().IntVar(&days, "expires-in-days", 0, "days until the key expires (0: never)")
	create.RunE = func(cmd *cobra.Command, args []string) error {
		if days < 0 || days > auth.MaxAPIKeyDays {
			return usageError("--expires-in-days %d: want 1 to %d, or 0 for a key that never expires", days, auth.MaxAPIKeyDays)
		}
		if strings.TrimSpace(args[0]) == "" {
			return usageError("NAME must not be empty")
		}
		k, err := request(cmd, cf, func(c *client.Client) (client.NewAPIKey, error) {
			return c.APIKeyCreate(cmd.Context(), args[0], days)
		})
		if err != nil {
			return err
		}
		if cf.json() {
			return printJSON(cmd.OutOrStdout(), k)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "%s\n", k.Key)
		fmt.Fprintf(cmd.ErrOrStderr(), "API key %q (%s) created, expires %s. It is shown only now: store it (e.g. as STROEM_TOKEN).\n", k.Name, k.Prefix, formatTime(k.ExpiresAt))
		return nil
	}
	list := &cobra.Command{Use: "list", Short: "List your API keys", Args: cobra.NoArgs}
	lf := addClientFlags(list, true)
	list.RunE = func(cmd *cobra.Command, _ []string) error {
		ks, err := request(cmd, lf, func(c *client.Client) ([]stroem.APIKey, error) { return c.APIKeys(cmd.Context()) })
		if err != nil {
			return err
		}
		return printList(cmd.OutOrStdout(), lf, ks, "PREFIX\tNAME\tCREATED\tEXPIRES\tLAST USED", func(k stroem.APIKey) string {
			return fmt.Sprintf("%s\t%s\t%s\t%s\t%s", k.Prefix, k.Name, formatTime(&k.CreatedAt), formatTime(k.ExpiresAt), formatTime(k.LastUsedAt))
		})
	}
	revoke := &cobra.Command{Use: "revoke PREFIX", Short: "Revoke an API key by its prefix (strm_a1b), or the whole key", Args: cobra.ExactArgs(1)}
	rf := addClientFlags(revoke, false)
	revoke.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := rf.client(cmd.Context())
		if err != nil {
			return err
		}
		prefix := args[0]
		if auth.ValidAPIKeyFormat(prefix) == nil {
			// The whole key, a secret: revoke it by its prefix, so that it
			// is neither sent in a URL nor printed back.
			if prefix, err = keyPrefix(cmd.Context(), c, prefix); err != nil {
				return err
			}
		}
		if err := c.APIKeyRevoke(cmd.Context(), prefix); err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "API key %s revoked\n", prefix)
		return nil
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}

// keyPrefix is the prefix of the caller's API key that key (a whole key)
// starts with.
func keyPrefix(ctx context.Context, c *client.Client, key string) (string, error) {
	keys, err := c.APIKeys(ctx)
	if err != nil {
		return "", err
	}
	for _, k := range keys {
		if k.Prefix != "" && strings.HasPrefix(key, k.Prefix) {
			return k.Prefix, nil
		}
	}
	return "", stroem.Errorf(stroem.CodeNotFound, "none of your API keys is this key (`stroem api-keys list` shows their prefixes)")
}
