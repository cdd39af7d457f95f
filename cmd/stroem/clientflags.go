package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	neturl "net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/http/client"
)

// The client commands (SPEC §10) talk to a server through http/client. They
// share --server (env STROEM_URL) and, where they print data, --output.
// Errors come back from the client as *stroem.Error with the server's
// message, and main's report prints them as one line.

const defaultServerURL = "http://localhost:8080"

// clientFlags are the flags every client command has.
type clientFlags struct {
	server string
	output string
}

// addClientFlags registers --server on cmd, and --output when the command
// prints data.
func addClientFlags(cmd *cobra.Command, withOutput bool) *clientFlags {
	f := &clientFlags{}
	def := os.Getenv("STROEM_URL")
	if def == "" {
		def = defaultServerURL
	}
	cmd.Flags().StringVar(&f.server, "server", def, "server URL (env STROEM_URL)")
	if withOutput {
		cmd.Flags().StringVarP(&f.output, "output", "o", "text", "output format: text or json")
	}
	return f
}

// client checks the flags and returns a client for the server, sending
// the token of `stroem login` (or STROEM_TOKEN).
func (f *clientFlags) client(ctx context.Context) (*client.Client, error) {
	if f.output != "" && f.output != "text" && f.output != "json" {
		return nil, usageError("--output must be text or json, not %q", f.output)
	}
	if _, err := newClient(f.server, ""); err != nil {
		return nil, err
	}
	tok, err := tokenFor(ctx, f.server)
	if err != nil {
		return nil, err
	}
	return newClient(f.server, tok)
}

// newClient is the CLI's client for server, sending token when it is not
// empty. A malformed server URL is a usage error, and so is one with a
// user or password: every error about the server names its URL, and the
// CLI authenticates with its own token.
func newClient(server, token string) (*client.Client, error) {
	if err := checkServerURL(server); err != nil {
		return nil, err
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	c, err := client.New(server, client.WithUserAgent("stroem-cli/"+version), client.WithToken(token),
		client.WithHTTPClient(&http.Client{Transport: htmlGuard{t}}))
	if err != nil {
		return nil, usageError("--server: %v", err)
	}
	return c, nil
}

// checkServerURL refuses the server URLs client.New would take or refuse
// unhelpfully: one without a scheme (Go's parser says "first path segment
// in URL cannot contain colon" of 127.0.0.1:8080), one with a user or
// password, never printed, and one whose port cannot be one (the request
// failed as if the server were down).
func checkServerURL(server string) error {
	s := strings.TrimSpace(server)
	scheme := strings.Contains(s, "://")
	if !scheme {
		s = "http://" + s
	}
	u, err := neturl.Parse(s)
	if err == nil && u.User != nil {
		return usageError("--server %s: a user or password in the URL is not supported; log in with `stroem login` or set STROEM_TOKEN", u.Redacted())
	}
	if !scheme && s != "http://" {
		return usageError("--server %q: want a URL that starts with http:// or https:// (%s)", server, s)
	}
	if err == nil && u.Port() != "" {
		if p, err := strconv.Atoi(u.Port()); err != nil || p < 1 || p > 65535 {
			return usageError("--server %q: port %s is not 1 to 65535", server, u.Port())
		}
	}
	return nil
}

// htmlGuard refuses an HTML page (status 2xx) where the API answers JSON,
// an event stream or a tarball: the server URL names a web page, such as
// the server's UI at a path (--server http://host:8080/ui), not the API.
// Decoding the page failed with "invalid character '<'", a log stream
// took it for a dropped connection and retried for minutes, and state
// download saved it as the tarball. An artifact download may be an HTML
// report, so it is let through.
type htmlGuard struct{ next http.RoundTripper }

func (g htmlGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := g.next.RoundTrip(req)
	if err != nil || resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp, err
	}
	if strings.Contains(req.URL.Path, "/artifacts/") {
		return resp, nil
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/html" {
		return resp, nil
	}
	_ = resp.Body.Close()
	return nil, errors.New("it answered with an HTML page, not the API's answer: is the server URL (--server or STROEM_URL) the server's own address, with no path such as /ui?")
}

// newTable is the writer of the CLI's tables.
func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0) }

func (f *clientFlags) json() bool { return f.output == "json" }

// request is a client command's call to the server: a client from the
// flags, then do with it; Ctrl-C or SIGTERM during the call is exit 130
// (interrupted).
func request[T any](cmd *cobra.Command, f *clientFlags, do func(c *client.Client) (T, error)) (T, error) {
	c, err := f.client(cmd.Context())
	if err != nil {
		var zero T
		return zero, err
	}
	v, err := do(c)
	return v, interrupted(cmd.Context(), err)
}

// requestJob is request for a command about one job: do gets the full id
// of the job arg names (its id or a unique prefix). A method expression
// such as (*client.Client).Job fits do.
func requestJob[T any](cmd *cobra.Command, f *clientFlags, arg string, do func(c *client.Client, ctx context.Context, id string) (T, error)) (T, error) {
	c, id, err := f.clientForJob(cmd.Context(), arg)
	if err != nil {
		var zero T
		return zero, err
	}
	v, err := do(c, cmd.Context(), id)
	return v, interrupted(cmd.Context(), err)
}

// printList prints a list command's items: as JSON under --output json,
// else as a table of header and one row (tab-separated cells) per item.
func printList[T any](w io.Writer, f *clientFlags, items []T, header string, row func(T) string) error {
	if f.json() {
		return printJSON(w, items)
	}
	tw := newTable(w)
	fmt.Fprintln(tw, header)
	for _, it := range items {
		fmt.Fprintln(tw, row(it))
	}
	return tw.Flush()
}

// printJSON writes v as indented JSON.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// jobResult turns a job's final status into the command's exit: 0
// completed, 1 failed or skipped, 130 cancelled.
func jobResult(id string, st stroem.JobStatus) error {
	switch st {
	case stroem.JobCompleted:
		return nil
	case stroem.JobFailed:
		return exitCode(1, fmt.Errorf("job %s failed", id))
	case stroem.JobSkipped:
		return exitCode(1, fmt.Errorf("job %s was skipped: its trigger's previous job was unfinished (concurrency: skip)", id))
	case stroem.JobCancelled:
		return exitCode(130, fmt.Errorf("job %s was cancelled", id))
	}
	return exitCode(1, fmt.Errorf("job %s ended with status %q", id, st))
}

// exitDetached is the exit code of a --follow stopped by Ctrl-C: the
// command stopped watching, the job goes on (130 means it was cancelled).
const exitDetached = 3

// detached is interrupted for a command following job id: Ctrl-C or
// SIGTERM says the job continues and how to cancel it, exit 3.
func detached(ctx context.Context, id string, err error) error {
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, ctx.Err())) {
		return exitCode(exitDetached, fmt.Errorf("detached; the job continues (stroem cancel %s)", id))
	}
	return err
}

// interrupted maps a command cancelled by Ctrl-C or SIGTERM to exit 130
// without an error line.
func interrupted(ctx context.Context, err error) error {
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, ctx.Err())) {
		return exitCode(130, nil)
	}
	return err
}

// logPrinter prints streamed log lines: the text of stdout lines on stdout
// and of stderr lines on stderr, or every line as JSON on stdout.
// printFailedSteps tells why a failed job failed: one line per failed step.
func printFailedSteps(cmd *cobra.Command, c *client.Client, jobID string) {
	job, err := c.Job(cmd.Context(), jobID)
	if err != nil {
		return
	}
	for _, s := range job.Steps {
		if s.Status == stroem.StepFailed {
			fmt.Fprintf(cmd.ErrOrStderr(), "stroem: step %s failed: %s\n", s.StepName, firstLine(s.ErrorMessage, 200))
		}
	}
}

// Formatting helpers for tables.

func formatTime(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

func formatDuration(start, end *time.Time) string {
	if start == nil || start.IsZero() {
		return "-"
	}
	stop := time.Now()
	if end != nil && !end.IsZero() {
		stop = *end
	}
	d := stop.Sub(*start)
	switch {
	case d < 0:
		return "-"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// firstLine shortens a multi-line message for a table cell.
func firstLine(s string, max int) string {
	line, rest, multi := strings.Cut(strings.TrimSpace(s), "\n")
	if len([]rune(line)) > max {
		line = string([]rune(line)[:max]) + "…"
	} else if multi && rest != "" {
		line += " …"
	}
	return line
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
