package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/http/client"
)

// stepColors cycle over a job's steps, in the order docker compose uses for
// services: easy to tell apart on dark and light terminals.
var stepColors = []string{"36", "33", "32", "35", "34", "96", "93", "92", "95", "94"}

// prefixFlags are the flags of the commands that print log lines.
type prefixFlags struct {
	noPrefix, noColor bool
}

func addPrefixFlags(cmd *cobra.Command) *prefixFlags {
	f := &prefixFlags{}
	cmd.Flags().BoolVar(&f.noPrefix, "no-prefix", false, "do not prefix lines with their step's name")
	cmd.Flags().BoolVar(&f.noColor, "no-color", false, "do not colour the step prefixes (also NO_COLOR=1, or when not a terminal)")
	return f
}

// logPrinter prints log lines: as JSON lines, or as text prefixed with the
// step's name ("build  | text", padded to the longest step name, coloured
// per step when writing to a terminal), like docker compose logs.
type logPrinter struct {
	out, errOut io.Writer
	json        bool
	prefix      bool
	color       bool
	width       int
	colors      map[string]string
}

// newLogPrinter prepares a printer for a job's lines; steps are the job's
// step names (in order) when known, so prefixes line up from the start.
// errOut nil prints stderr lines to out as well.
func newLogPrinter(cmd *cobra.Command, pf *prefixFlags, asJSON bool, steps []string) *logPrinter {
	p := &logPrinter{out: cmd.OutOrStdout(), errOut: cmd.ErrOrStderr(), json: asJSON, colors: map[string]string{}}
	if pf != nil {
		p.prefix = !pf.noPrefix
		p.color = p.prefix && !pf.noColor && colorTerminal(p.out)
	}
	for _, s := range steps {
		p.colorOf(s)
		p.width = max(p.width, len(s))
	}
	return p
}

// colorTerminal reports whether w is a terminal that should get colours.
func colorTerminal(w io.Writer) bool {
	if os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
		return false
	}
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func (p *logPrinter) colorOf(step string) string {
	c, ok := p.colors[step]
	if !ok {
		c = stepColors[len(p.colors)%len(stepColors)]
		p.colors[step] = c
	}
	return c
}

func (p *logPrinter) print(l stroem.LogLine) error {
	if p.json {
		b, err := json.Marshal(l)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(p.out, "%s\n", b)
		return err
	}
	w := p.out
	if l.Stream == stroem.Stderr && p.errOut != nil {
		w = p.errOut
	}
	if !p.prefix {
		_, err := fmt.Fprintln(w, l.Text)
		return err
	}
	p.width = max(p.width, len(l.Step))
	pre := l.Step + strings.Repeat(" ", p.width-len(l.Step)) + " | "
	if p.color {
		pre = "\x1b[" + p.colorOf(l.Step) + "m" + pre + "\x1b[0m"
	}
	_, err := fmt.Fprint(w, pre+l.Text+"\n")
	return err
}

// jobStepNames returns the names of a job's steps (best effort: none when
// the job cannot be read now; the stream reports that error itself).
func jobStepNames(cmd *cobra.Command, c *client.Client, jobID, only string) []string {
	if only != "" {
		return []string{only}
	}
	job, err := c.Job(cmd.Context(), jobID)
	if err != nil {
		return nil
	}
	names := make([]string, 0, len(job.Steps))
	for _, s := range job.Steps {
		names = append(names, s.StepName)
	}
	return names
}

// followLogs streams a job's logs until it ends and returns its status.
func followLogs(cmd *cobra.Command, c *client.Client, pf *prefixFlags, jobID, step string, asJSON bool) (stroem.JobStatus, error) {
	var steps []string
	if !asJSON && pf != nil && !pf.noPrefix {
		steps = jobStepNames(cmd, c, jobID, step)
	}
	p := newLogPrinter(cmd, pf, asJSON, steps)
	return c.StreamLogs(cmd.Context(), jobID, client.StreamOptions{Step: step}, p.print)
}
