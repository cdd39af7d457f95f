package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/http/client"
)

func newApproveCmd() *cobra.Command {
	var flags *clientFlags
	var reject bool
	var reason, message string
	cmd := &cobra.Command{
		Use:   "approve JOB STEP",
		Short: "Approve (or --reject) a job's approval gate",
		Long: `Approve decides an approval gate: a step of a type: approval action that
waits in status suspended. Approving completes the step and the job goes on;
--reject fails it (with --reason, kept in the step's error and output).
It needs run permission on the job's task; who decided is recorded.`,
		Example: `  stroem approve 0b7e2c1e-5d7b-4c53-9a67-1d2f3e4a5b6c approve -m "checked the diff"
  stroem approve 0b7e2c1e-5d7b-4c53-9a67-1d2f3e4a5b6c approve --reject --reason "wrong version"`,
		Args: jobAndArg("approve", "a STEP name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if reason != "" && !reject {
				return usageError("--reason is for --reject; use --message for a comment")
			}
			job, err := requestJob(cmd, flags, args[0], func(c *client.Client, ctx context.Context, id string) (stroem.Job, error) {
				return c.Approve(ctx, id, args[1], client.Approval{Approved: !reject, RejectionReason: reason, Message: message})
			})
			if err != nil {
				return err
			}
			if flags.json() {
				return printJSON(cmd.OutOrStdout(), job)
			}
			verb := "approved"
			if reject {
				verb = "rejected"
			}
			for _, s := range job.Steps {
				if s.StepName == args[1] {
					_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s step %s %s: step %s, job %s\n", job.ID, s.StepName, verb, s.Status, job.Status)
					return err
				}
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s %s: job %s\n", job.ID, verb, job.Status)
			return err
		},
	}
	cmd.Flags().BoolVar(&reject, "reject", false, "reject instead of approving (the step fails)")
	cmd.Flags().StringVar(&reason, "reason", "", "why it is rejected (with --reject)")
	cmd.Flags().StringVarP(&message, "message", "m", "", "a comment kept with the decision")
	flags = addClientFlags(cmd, true)
	return cmd
}
