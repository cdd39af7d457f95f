package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/http/client"
)

func newStatusCmd() *cobra.Command {
	var flags *clientFlags
	cmd := &cobra.Command{
		Use:   "status JOB",
		Short: "Show a job and its steps",
		Long: `Status shows a job and a table of its steps: status, attempt, worker, start
time, duration and, for failed steps, the first line of the error; then
the earlier attempts of retried steps, with their errors. JOB is the job's
id or a unique prefix of it (at least 4 characters, like git).
Times are UTC; --output json prints the job as the API returns it.`,
		Example: `  stroem status 0b7e2c1e-5d7b-4c53-9a67-1d2f3e4a5b6c`,
		Args:    jobArgs("status"),
		RunE: func(cmd *cobra.Command, args []string) error {
			job, err := requestJob(cmd, flags, args[0], (*client.Client).Job)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if flags.json() {
				return printJSON(out, job)
			}
			fmt.Fprintf(out, "job:       %s\n", job.ID)
			fmt.Fprintf(out, "task:      %s/%s\n", job.Workspace, job.TaskName)
			fmt.Fprintf(out, "status:    %s\n", job.Status)
			fmt.Fprintf(out, "created:   %s (%s)\n", formatTime(&job.CreatedAt), orDash(string(job.SourceType)))
			if job.CreatedBy != "" {
				fmt.Fprintf(out, "by:        %s\n", job.CreatedBy)
			}
			if job.CancelledBy != "" {
				fmt.Fprintf(out, "cancelled: by %s\n", job.CancelledBy)
			}
			fmt.Fprintf(out, "duration:  %s\n\n", formatDuration(job.StartedAt, job.CompletedAt))
			tw := newTable(out)
			fmt.Fprintln(tw, "STEP\tSTATUS\tATTEMPT\tWORKER\tSTARTED\tDURATION\tERROR")
			for _, s := range job.Steps {
				worker := "-"
				if s.WorkerID != nil && *s.WorkerID != "" {
					worker = shortID(*s.WorkerID)
				}
				attempt := "-"
				if s.Attempt > 0 {
					attempt = fmt.Sprint(s.Attempt)
					if s.MaxAttempts > 1 {
						attempt += fmt.Sprintf("/%d", s.MaxAttempts)
					}
				}
				if s.ActionType == "task" || s.ActionType == "approval" {
					worker = "server"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", stepLabel(s), stepStatusText(s, job.Steps), attempt, worker,
					formatTime(s.StartedAt), formatDuration(s.StartedAt, s.CompletedAt), orDash(firstLine(s.ErrorMessage, 80)))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if err := printEarlierAttempts(out, job.Steps); err != nil {
				return err
			}
			return printLinks(out, job) // sub-jobs, waits, hooks (status_links.go)
		},
	}
	flags = addClientFlags(cmd, true)
	return cmd
}

// shortID shortens a UUID to its first block, like git's short hashes.
func shortID(id string) string {
	if len(id) == 36 && id[8] == '-' {
		return id[:8]
	}
	return id
}

// printEarlierAttempts lists the attempts before each step's latest one
// (a retried step's table row shows only the latest), with their errors.
func printEarlierAttempts(out io.Writer, steps []stroem.Step) error {
	var rows [][]string
	for _, s := range steps {
		for _, a := range s.Attempts {
			if a.Attempt >= s.Attempt {
				continue
			}
			worker := "-"
			if a.WorkerID != "" {
				worker = shortID(a.WorkerID)
			}
			started := a.StartedAt
			rows = append(rows, []string{s.StepName, fmt.Sprintf("%d/%d", a.Attempt, max(s.MaxAttempts, s.Attempt)),
				string(a.Status), worker, formatTime(&started), formatDuration(&started, a.CompletedAt), orDash(firstLine(a.ErrorMessage, 80))})
		}
	}
	if len(rows) == 0 {
		return nil
	}
	fmt.Fprintln(out, "\nearlier attempts:")
	tw := newTable(out)
	fmt.Fprintln(tw, "STEP\tATTEMPT\tSTATUS\tWORKER\tSTARTED\tDURATION\tERROR")
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}
