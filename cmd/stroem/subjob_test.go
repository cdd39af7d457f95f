package main

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
)

const subJobWorkflow = `
actions:
  gate: { type: approval, message: "go?" }
  sub: { type: task, task: child }
  note:
    type: shell
    cmd: "echo {{ input.src }}"
    input:
      src: { type: string }
tasks:
  child:
    flow:
      wait: { action: gate }
    on_success:
      - action: note
        input: { src: "{{ hook.source_id }}" }
  parent:
    flow:
      fan: { action: sub, for_each: [a, b] }
`

// The sub-jobs of a for_each task step have the upstream's source_id,
// "parent/fan[1]", and what read the parent's id alone from it still
// works: the job view's parent link, an approval in a sub-job, its hooks'
// hook.source_id, and the cancel of the parent reaching its running
// children.
func TestScenarioSubJobsOfALoop(t *testing.T) {
	t.Parallel()
	s := newScenario(t, subJobWorkflow, scenarioOpts{})
	id := s.execute("parent", nil)

	var parent stroem.Job
	require.Eventually(t, func() bool {
		parent = s.job(id)
		return len(parent.Children) == 2
	}, 20*time.Second, 20*time.Millisecond, "both instances have their child job")
	kids := map[string]string{}
	for _, c := range parent.Children {
		kids[c.StepName] = c.JobID
	}
	require.Len(t, kids, 2)
	for _, step := range []string{"fan[0]", "fan[1]"} {
		require.Contains(t, kids, step)
		c := s.job(kids[step])
		require.Equal(t, stroem.SourceTask, c.SourceType)
		require.Equal(t, id+"/"+step, c.SourceID, "as upstream's")
		require.Equal(t, id, c.ParentJobID)
		require.Equal(t, step, c.ParentStepName)
		require.Empty(t, c.Children)
	}

	first, second := kids["fan[0]"], kids["fan[1]"]
	require.Eventually(t, func() bool { return s.stepStatuses(first)["wait"] == stroem.StepSuspended }, 20*time.Second, 20*time.Millisecond)
	code, body := s.do("POST", "/api/jobs/"+first+"/steps/wait/approve", map[string]any{"approved": true}, "")
	require.Equal(t, http.StatusOK, code, string(body))
	s.waitJob(first, stroem.JobCompleted)
	require.Eventually(t, func() bool {
		for _, st := range s.job(id).Steps {
			if st.StepName == "fan[0]" {
				return st.Status == stroem.StepCompleted
			}
		}
		return false
	}, 20*time.Second, 20*time.Millisecond, "the instance ends with its child")
	var hook stroem.Job
	require.Eventually(t, func() bool {
		hooks := s.job(first).Hooks
		if len(hooks) == 0 {
			return false
		}
		hook = s.job(hooks[0].JobID)
		return true
	}, 20*time.Second, 20*time.Millisecond, "the child's on_success hook becomes a job")
	require.Equal(t, map[string]any{"src": id + "/fan[0]"}, hook.Input, "hook.source_id is the child's source_id")

	code, body = s.do("POST", "/api/jobs/"+id+"/cancel", map[string]any{}, "")
	require.Equal(t, http.StatusOK, code, string(body))
	s.waitJob(id, stroem.JobCancelled)
	s.waitJob(second, stroem.JobCancelled)
	require.Equal(t, stroem.JobCompleted, s.job(first).Status)
}
