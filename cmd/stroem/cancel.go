package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/http/client"
)

func newCancelCmd() *cobra.Command {
	var flags *clientFlags
	cmd := &cobra.Command{
		Use:   "cancel JOB",
		Short: "Cancel a job: pending steps are skipped, running ones are stopped",
		Long: `Cancel asks the server to cancel a job: pending steps are skipped and
running ones stopped (their process groups are killed). It prints whether
the job is already cancelled or still stopping its running steps; stroem
status JOB shows when it has. JOB is the job's id or a unique prefix of it.`,
		Example: `  stroem cancel 0b7e2c1e`,
		Args:    jobArgs("cancel"),
		RunE: func(cmd *cobra.Command, args []string) error {
			job, err := requestJob(cmd, flags, args[0], (*client.Client).CancelJob)
			if err != nil {
				return err
			}
			if flags.json() {
				return printJSON(cmd.OutOrStdout(), job)
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), cancelMessage(job))
			return err
		},
	}
	flags = addClientFlags(cmd, true)
	return cmd
}

// cancelMessage says what a cancel request did, from the job as the
// server returned it.
func cancelMessage(job stroem.Job) string {
	switch job.Status {
	case stroem.JobCancelled:
		return fmt.Sprintf("job %s cancelled", job.ID)
	case stroem.JobPending, stroem.JobRunning:
		return fmt.Sprintf("cancel requested; job %s is cancelling (its running steps are being stopped; `stroem status %s` shows when it has)", job.ID, shortID(job.ID))
	}
	return fmt.Sprintf("job %s had already ended (%s); nothing to cancel", job.ID, job.Status)
}
