package actors

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// As upstream, an entry of an inline step's input that is a field
// definition defines the inline action's field (type, default, connection)
// instead of being passed as a value: the step runs with the default, a
// connection's name resolved to its values; plain entries, and a mapping
// whose `type` is not a string, are values.
func TestInlineStepInputFieldDefinitions(t *testing.T) {
	t.Parallel()
	b := newBundle(t, `
connection_types:
  postgres:
    host: { type: string, required: true }
    port: { type: integer, default: 5432 }
connections:
  staging_db:
    type: postgres
    host: staging
tasks:
  consumer:
    flow:
      poll:
        type: script
        script: "echo {{ input.db.host }} {{ input.name }} {{ input.count }}"
        input:
          db: { type: postgres, default: staging_db }
          count: { type: integer, default: 3 }
          name: hello
          config: { type: 123 }
`)
	_, s := b.newJob(t, "consumer", nil)
	st := s.Find("poll")
	require.NotNil(t, st)
	require.Equal(t, map[string]any{
		"db":     map[string]any{"host": "staging", "port": 5432.0},
		"count":  3.0,
		"name":   "hello",
		"config": map[string]any{"type": 123.0},
	}, st.Input)
}
