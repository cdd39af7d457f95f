package main

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/http/client"
)

func newLogsCmd() *cobra.Command {
	var step string
	var follow bool
	var flags *clientFlags
	var pf *prefixFlags
	cmd := &cobra.Command{
		Use:   "logs JOB",
		Short: "Print a job's logs, or follow them live",
		Long: `Logs prints the stored log lines of a job (of one step with --step).
--follow streams them over Server-Sent Events until the job ends, resuming
where it left off when the connection drops; stderr lines go to stderr.
It then exits with the job's result like trigger --follow: 0 completed,
1 failed, 130 cancelled (saying so); Ctrl-C detaches (exit 3), the job
goes on. JOB is the job's id or a unique prefix of it.
Each line is prefixed with its step's name, coloured per step on a terminal
(like docker compose logs); --no-prefix prints the bare lines, --no-color
keeps the prefix without colour (so does NO_COLOR=1).
--output json prints one JSON line per log line, with sequence number,
step, attempt, time and stream.`,
		Example: `  stroem logs 0b7e2c1e-5d7b-4c53-9a67-1d2f3e4a5b6c
  stroem logs 0b7e2c1e-5d7b-4c53-9a67-1d2f3e4a5b6c --step deploy --follow`,
		Args: jobArgs("logs"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, id, err := flags.clientForJob(ctx, args[0])
			if err != nil {
				return err
			}
			if step != "" {
				if err := checkStep(ctx, c, id, step); err != nil {
					return err
				}
			}
			if follow {
				st, err := followLogs(cmd, c, pf, id, step, flags.json())
				if err != nil {
					return detached(ctx, id, err)
				}
				return jobResult(id, st)
			}
			var steps []string
			if !flags.json() && !pf.noPrefix {
				steps = jobStepNames(cmd, c, id, step)
			}
			p := newLogPrinter(cmd, pf, flags.json(), steps)
			p.errOut = nil // stored lines all go to stdout, in order
			return interrupted(ctx, c.EachLogLine(ctx, id, step, p.print))
		},
	}
	cmd.Flags().StringVarP(&step, "step", "s", "", "only this step's lines")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "stream new lines until the job ends")
	flags = addClientFlags(cmd, true)
	pf = addPrefixFlags(cmd)
	return cmd
}

// checkStep makes --step name one of the job's steps: the log filter
// alone answers a typo with no lines. A loop instance ("deploy[2]")
// counts once its loop is a step, since instances appear only when the
// loop expands.
func checkStep(ctx context.Context, c *client.Client, jobID, step string) error {
	job, err := c.Job(ctx, jobID)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(job.Steps))
	for _, s := range job.Steps {
		names = append(names, s.StepName)
	}
	loop, _, instance := stroem.ParseLoopInstance(step)
	if slices.Contains(names, step) || (instance && slices.Contains(names, loop)) {
		return nil
	}
	list := strings.Join(names[:min(len(names), 10)], ", ")
	if len(names) > 10 {
		list += fmt.Sprintf(" and %d more", len(names)-10)
	}
	return stroem.Errorf(stroem.CodeNotFound, "job %s has no step %q (its steps: %s)", jobID, step, list)
}
