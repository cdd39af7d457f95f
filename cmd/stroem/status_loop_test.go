package main

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
)

func TestStatusShowsLoopsAndSkips(t *testing.T) {
	t.Parallel()
	zero, one := 0, 1
	steps := []stroem.Step{
		{StepName: "check", Status: stroem.StepSkipped, SkipReason: stroem.SkipCondition},
		{StepName: "after", Status: stroem.StepSkipped, SkipReason: stroem.SkipDependency},
		{StepName: "deploy", Status: stroem.StepPending, Instances: []string{"deploy[0]", "deploy[1]"}},
		{StepName: "deploy[0]", Status: stroem.StepCompleted, Loop: "deploy", LoopIndex: &zero},
		{StepName: "deploy[1]", Status: stroem.StepRunning, Loop: "deploy", LoopIndex: &one},
	}
	var got [][2]string
	for _, s := range steps {
		got = append(got, [2]string{stepLabel(s), stepStatusText(s, steps)})
	}
	require.Equal(t, [][2]string{
		{"check", "skipped (condition)"},
		{"after", "skipped (dependency)"},
		{"deploy", "pending (1/2 done)"},
		{"  deploy[0]", "completed"},
		{"  deploy[1]", "running"},
	}, got)
	steps[2].Status = stroem.StepCompleted
	require.Equal(t, "completed (2 instances)", stepStatusText(steps[2], steps))
}
