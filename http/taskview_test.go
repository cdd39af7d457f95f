package http

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem/workspace"
)

// The task view carries the full input schema, without secret defaults.
func TestViewTaskSchema(t *testing.T) {
	t.Parallel()
	order := 1
	task := &workspace.Task{Name: "deploy", Label: "Deploy", Folder: "ops/prod", Mode: workspace.ModeDistributed, Input: workspace.Schema{
		{Name: "envs", Type: workspace.TypeString, Enum: []any{"dev", "prod"}, Multiple: true, AllowCustom: true, Label: "Environments", Order: &order, Description: "where"},
		{Name: "token", Type: workspace.TypeString, Secret: true, Default: "hunter2-secret", HasDefault: true},
	}}
	b, err := json.Marshal(viewTask(&workspace.Workspace{Name: "default"}, task))
	require.NoError(t, err)
	require.JSONEq(t, `{
		"id": "deploy", "name": "deploy", "label": "Deploy", "workspace": "default", "has_triggers": false, "description": "", "mode": "distributed", "folder": "ops/prod",
		"input": [
			{"name": "envs", "type": "string", "enum": ["dev", "prod"], "multiple": true, "allow_custom": true, "label": "Environments", "order": 1, "description": "where"},
			{"name": "token", "type": "string", "secret": true, "has_default": true}
		]}`, string(b))
	require.Equal(t, "hunter2-secret", task.Input[1].Default, "the workspace's own schema is not changed")
}
