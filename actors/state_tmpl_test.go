package actors

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
	"github.com/stroem/stroem/persistence/sqlite/sqlitetest"
	"github.com/stroem/stroem/workspace"
)

const stateTmplWorkflow = `
actions:
  emit:
    type: shell
    cmd: "echo {{ input.value }}"
    input:
      value: { type: string }
tasks:
  cert:
    flow:
      renew:
        action: emit
        when: "{{ not state or state.days | int < 30 }}"
        input: { value: "{{ state.domain | default(value='example.com') }}" }
      keep:
        action: emit
        when: "{{ state and state.days | int >= 30 }}"
        input: { value: "{{ state.domain }}/{{ global_state.region | default(value='none') }}" }
  plain:
    flow:
      a: { action: emit, input: { value: a } }
`

// newStateJob builds the state JobCreate inserts for task, with the job's
// state read as JobCreate reads it.
func newStateJob(t *testing.T, o *Orchestrator, ws *workspace.Workspace, task string) (*plan, *persistence.JobState, error) {
	t.Helper()
	p, s := jobState(t, ws, task, "job-"+task, map[string]any{})
	if err := o.addJobState(context.Background(), p, s); err != nil {
		return p, s, err
	}
	advance(p, s)
	return p, s, nil
}

// A job's when and input see the state of when it was created: none on a
// first run (`not state` holds), the uploaded values after an upload; a
// task that never mentions state reads none; a store error refuses a job
// that needs it.
func TestJobStartStateInWhenAndInput(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ws := loadWorkspace(t, stateTmplWorkflow)

	st := sqlitetest.Store(t)
	f := NewFiles(st, FileLimits{})
	o := &Orchestrator{}
	o.SetFiles(f)

	// First run: no snapshot.
	_, s, err := newStateJob(t, o, ws, "cert")
	require.NoError(t, err)
	require.Equal(t, map[string]any{}, s.Context[stateVar])
	require.Equal(t, map[string]any{}, s.Context[globalStateVar])
	require.Equal(t, stroem.StepReady, s.Find("renew").Status)
	require.Equal(t, map[string]any{"value": "example.com"}, s.Find("renew").Input)
	require.Equal(t, stroem.StepSkipped, s.Find("keep").Status, s.Find("keep").ErrorMessage)

	// After uploads (task and global state), the other branch, with the
	// values in its input.
	_, err = f.StateUpload(ctx, StateUpload{Workspace: "default", Task: "cert", Values: map[string]string{"days": "90", "domain": "shop.example"}}, strings.NewReader(""))
	require.NoError(t, err)
	_, err = f.StateUpload(ctx, StateUpload{Workspace: "default", Values: map[string]string{"region": "eu"}}, strings.NewReader(""))
	require.NoError(t, err)
	_, s, err = newStateJob(t, o, ws, "cert")
	require.NoError(t, err)
	require.Equal(t, stroem.StepSkipped, s.Find("renew").Status)
	require.Equal(t, stroem.StepReady, s.Find("keep").Status, s.Find("keep").ErrorMessage)
	require.Equal(t, map[string]any{"value": "shop.example/eu"}, s.Find("keep").Input)

	// A task without state in its templates reads nothing, even with the
	// store gone; one with state is refused then.
	st.Close()
	_, s, err = newStateJob(t, o, ws, "plain")
	require.NoError(t, err)
	require.Nil(t, s.Context)
	_, _, err = newStateJob(t, o, ws, "cert")
	require.Equal(t, stroem.CodeUnavailable, stroem.ErrorCode(err), "%v", err)
}
