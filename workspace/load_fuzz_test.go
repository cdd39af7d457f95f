package workspace

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzLoad feeds arbitrary bytes to the loader as a single-file workspace:
// it must never panic or hang, always return a workspace (the file exists),
// and only serve definitions that hold together.
//
//	go test -run xxx -fuzz FuzzLoad -fuzztime 2m ./workspace/
func FuzzLoad(f *testing.F) {
	for _, p := range []string{"testdata/compat/.workflows/hello.yaml", "testdata/compat/.workflows/deploy.yaml"} {
		data, err := os.ReadFile(p)
		require.NoError(f, err)
		f.Add(data)
	}
	for _, s := range []string{
		"",
		"---\n...\n",
		"- a\n- b\n",
		"actions: &a\n  x: *a\n",
		"secrets:\n  a: &a [1, *a]\n",
		"actions:\n  a: &a\n    <<: *a\n",
		"actions:\n  a: { cmd: 'echo {{ input.x }}', input: { x: { type: integer, default: 1, enum: [1, 2.0] } } }\ntasks:\n  t:\n    flow:\n      s: { action: a, depends_on: [s], input: { x: '{{' } }\n",
		"triggers:\n  t:\n    type: scheduler\n    cron: 'TZ=X'\n    task: t\n",
		"triggers:\n  t:\n    type: scheduler\n    cron: '@every 1h'\n    timezone: Local\n    task: t\n",
		"triggers:\n  'a b':\n    type: webhook\n    task: t\n    timeout_secs: 0\n    secret: ref+env://\n",
		"actions:\n  a:\n    script: ../x {{ y }}\n    retry: { jitter: .nan, max_attempts: 99999999999999999999 }\n    timeout: -1s\n",
		"actions:\n  a:\n    type: docker\n    output: { properties: { type: { type: string } }, required: [type, nope] }\n",
		"tasks:\n  t:\n    flow:\n      say-hello: { action: a }\n      say_hello: { action: a }\n      job: { action: a }\n",
		"actions: {a: {cmd: x}, a: {cmd: y}}\n",
		"? [complex, key]\n: value\n",
		"actions:\n  !!binary YQ==: { cmd: x }\n",
		"secrets: { a: !custom x, b: 2001-12-14, c: 0x1F, d: 1e400, e: -.inf }\n",
	} {
		f.Add([]byte(s))
	}
	// One folder per fuzzing process (inputs run one at a time in it), so
	// an execution costs a file write, not a folder's creation and removal.
	path := filepath.Join(f.TempDir(), "w.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		require.NoError(t, os.WriteFile(path, data, 0o644))
		ws, err := Load(path)
		require.NoError(t, err)
		require.NotNil(t, ws)

		require.True(t, sort.SliceIsSorted(ws.Problems, func(i, j int) bool {
			a, b := ws.Problems[i].Pos, ws.Problems[j].Pos
			if a.File != b.File {
				return a.File < b.File
			}
			if a.Line != b.Line {
				return a.Line < b.Line
			}
			return a.Col < b.Col
		}), "problems are sorted")
		for _, p := range ws.Problems {
			require.NotEmpty(t, p.Message)
			require.NotEmpty(t, p.Pos.File)
		}

		// What is served holds together.
		for name, a := range ws.Actions {
			require.Equal(t, name, a.Name)
			require.Contains(t, []string{ActionShell, ActionDocker, ActionPod}, a.Type)
			if a.Type == ActionShell {
				require.True(t, (a.Cmd == "") != (a.Script == ""), "action %s: exactly one of cmd and script", name)
			}
			if a.Retry != nil {
				require.GreaterOrEqual(t, a.Retry.MaxAttempts, 1)
			}
		}
		for name, task := range ws.Tasks {
			require.Equal(t, name, task.Name)
			require.Contains(t, []string{ModeDistributed, ModeLocal}, task.Mode)
			require.Len(t, task.Order, len(task.Flow))
			deps := map[string][]string{}
			for sn, s := range task.Flow {
				require.NotNil(t, ws.Actions[s.Action], "task %s step %s: action %q is served", name, sn, s.Action)
				for _, d := range s.DependsOn {
					require.Contains(t, task.Flow, d)
				}
				deps[sn] = s.DependsOn
			}
			require.Empty(t, FindCycle(deps))
		}
		for name, tr := range ws.Triggers {
			require.Equal(t, name, tr.Name)
			require.NotNil(t, ws.Tasks[tr.Task])
			require.Contains(t, []string{TriggerScheduler, TriggerWebhook}, tr.Type)
		}

		// A server stores and serves it as JSON.
		_, err = json.Marshal(ws)
		require.NoError(t, err)
	})
}
