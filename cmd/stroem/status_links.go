package main

import (
	"fmt"
	"io"

	"github.com/stroem/stroem"
)

// printLinks prints what `stroem status` shows of a job's server-side
// waits and related jobs: its parent, the steps waiting (an approval gate's
// message and how to decide it, a sub-task step's child job), its children
// and its hook jobs.
func printLinks(out io.Writer, job stroem.Job) error {
	if job.ParentJobID != "" {
		fmt.Fprintf(out, "\nparent:    %s (step %s)\n", job.ParentJobID, orDash(job.ParentStepName))
	}
	var waits []string
	for _, s := range job.Steps {
		if s.Status != stroem.StepSuspended {
			continue
		}
		switch s.ActionType {
		case "approval":
			gate, _ := s.Output.(map[string]any)
			msg, _ := gate["message"].(string)
			w := fmt.Sprintf("  %s: waiting for approval: %s\n    decide: stroem approve %s %s  (or --reject --reason …)", s.StepName, firstLine(msg, 100), job.ID, s.StepName)
			if at, ok := gate["timeout_at"].(string); ok {
				w += "\n    times out at " + at
			}
			waits = append(waits, w)
		case "task":
			child := "being created"
			if s.ChildJobID != "" {
				child = s.ChildJobID
			}
			waits = append(waits, fmt.Sprintf("  %s: waiting for child job %s", s.StepName, child))
		}
	}
	if len(waits) > 0 {
		fmt.Fprintln(out, "\nwaiting:")
		for _, w := range waits {
			fmt.Fprintln(out, w)
		}
	}
	if len(job.Children) > 0 {
		fmt.Fprintln(out, "\nchildren:")
		tw := newTable(out)
		for _, c := range job.Children {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", c.StepName, c.JobID, c.TaskName, c.Status)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(job.Hooks) > 0 {
		fmt.Fprintln(out, "\nhooks:")
		tw := newTable(out)
		for _, h := range job.Hooks {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", orDash(h.Event), h.JobID, h.TaskName, h.Status)
		}
		return tw.Flush()
	}
	return nil
}
