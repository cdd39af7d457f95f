package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

func newLogsCmd() *cobra.Command {
	var step string
	var follow bool
	var flags *clientFlags
	cmd := &cobra.Command{
		Use:   "logs JOB",
		Short: "Print a job's logs, or follow them live",
		Long: `Logs prints the stored log lines of a job (of one step with --step).
--follow streams them over Server-Sent Events until the job ends, resuming
where it left off when the connection drops; stderr lines go to stderr.
--output json prints one JSON line per log line, with sequence number,
step, attempt, time and stream.`,
		Example: `  stroem logs 0b7e2c1e-5d7b-4c53-9a67-1d2f3e4a5b6c
  stroem logs 0b7e2c1e-5d7b-4c53-9a67-1d2f3e4a5b6c --step deploy --follow`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError("logs needs exactly one JOB id, got %d arguments", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := flags.client(cmd.Context())
			if err != nil {
				return err
			}
			ctx, id, out := cmd.Context(), args[0], cmd.OutOrStdout()
			switch {
			case follow:
				_, err = followLogs(cmd, c, id, step, flags.json())
			case flags.json():
				p := logPrinter{out: out, json: true}
				err = c.EachLogLine(ctx, id, step, p.print)
			default:
				var text string
				text, err = c.Logs(ctx, id, step)
				if err == nil {
					_, err = io.WriteString(out, text)
					if err == nil && text != "" && text[len(text)-1] != '\n' {
						_, err = fmt.Fprintln(out)
					}
				}
			}
			return interrupted(ctx, err)
		},
	}
	cmd.Flags().StringVarP(&step, "step", "s", "", "only this step's lines")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "stream new lines until the job ends")
	flags = addClientFlags(cmd, true)
	return cmd
}
