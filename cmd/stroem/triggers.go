package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/stroem/stroem/http/client"
)

func newTriggersCmd() *cobra.Command {
	return workspaceListCmd(&cobra.Command{
		Use:   "triggers",
		Short: "List the triggers of a workspace (cron schedules and webhooks)",
		Long: `List the triggers of a workspace: scheduler (cron) triggers with their
schedule and next fire time, webhooks with their URL path and mode, and the
last job each one started. See docs/triggers.md.`,
		Example: `  stroem triggers
  stroem triggers --workspace ops --output json`,
	}, (*client.Client).Triggers, "NAME\tTYPE\tTASK\tENABLED\tSCHEDULE / URL\tNEXT FIRE\tLAST JOB", func(t client.Trigger) string {
		return fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%s", t.Name, t.Type, t.Task, yesNo(t.Enabled),
			triggerWhen(t), formatTime(t.NextFireAt), lastJob(t.LastJob))
	})
}

// triggerWhen is the SCHEDULE / URL cell: the cron with its time zone and
// concurrency, or the webhook's path and mode.
func triggerWhen(t client.Trigger) string {
	switch t.Type {
	case "scheduler":
		s := t.Cron
		if t.Timezone != "" && t.Timezone != "UTC" {
			s += " (" + t.Timezone + ")"
		}
		if t.Concurrency != "" && t.Concurrency != "allow" {
			s += " [" + t.Concurrency + "]"
		}
		return s
	case "webhook":
		s := "POST " + t.Path + " " + t.Mode
		if t.SecretRequired != nil && !*t.SecretRequired {
			s += " (open)"
		}
		return s
	}
	return "-"
}

func lastJob(j *client.TriggerJob) string {
	if j == nil {
		return "-"
	}
	return j.JobID + " " + string(j.Status)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
