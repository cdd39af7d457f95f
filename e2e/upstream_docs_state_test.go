package e2e

import "github.com/stroem/stroem"

// stateDocRuns are the runnable examples of the upstream's task-state page
// (guides/task-state.md), converted to a map of steps and a when in {{ }}
// (see workspace/testdata/upstream-docs-fragments/README.md), with the actions
// they name defined by extra.
func stateDocRuns() []docRun {
	return []docRun{
		// A first run: no state, so `not state` holds and upload-cert's
		// domain falls back to its default — although check-expiry wrote
		// state before either was decided (input and when see the state of
		// when the job was created).
		{file: "guides_task-state_04", fragment: true, task: "renew-cert", input: map[string]any{"domain": "shop.example"}, status: stroem.JobCompleted,
			logs: []string{"checking shop.example", "renewing shop.example", "uploading example.com"}, extra: `
actions:
  check-ssl-expiry:
    type: shell
    cmd: 'echo "checking {{ input.domain }}"; echo "STATE: {\"days_remaining\": 90, \"domain\": \"{{ input.domain }}\"}"'
    input:
      domain: { type: string }
  renew-ssl:
    type: shell
    cmd: echo "renewing {{ input.domain }}"
    input:
      domain: { type: string }
  upload-to-cdn:
    type: shell
    cmd: echo "uploading {{ input.domain }}"
    input:
      domain: { type: string }
`},
	}
}
