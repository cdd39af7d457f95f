package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
)

const loopLogsWorkflow = `
actions:
  say:
    type: shell
    cmd: "echo {{ input.word }}"
    input:
      word: { type: string }
tasks:
  fan:
    flow:
      first: { action: say, input: { word: before } }
      deploy:
        action: say
        depends_on: [first]
        for_each: [eu, us]
        sequential: true
        input: { word: "deploy-{{ each.item }}" }
`

// A for_each step prints nothing itself: its instances (deploy[0], …) do.
// Its logs, by the query's step or the path's, are its instances' lines,
// each with its instance's name, as the upstream's instance lines are
// named; the stream's step filter does the same.
func TestLoopStepLogsAreItsInstances(t *testing.T) {
	t.Parallel()
	s := newScenario(t, loopLogsWorkflow, scenarioOpts{})
	startWorker(t, s, 2)
	id := s.execute("fan", nil)
	require.Eventually(t, func() bool { return s.job(id).Status.Terminal() }, time.Minute, 50*time.Millisecond)
	require.Equal(t, stroem.JobCompleted, s.job(id).Status)

	code, body := s.do("GET", "/api/jobs/"+id+"/logs?step=deploy&format=jsonl", nil, "")
	require.Equal(t, http.StatusOK, code, string(body))
	var got []string
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		var l stroem.LogLine
		require.NoError(t, json.Unmarshal(sc.Bytes(), &l))
		got = append(got, l.Step+" "+l.Text)
	}
	require.Equal(t, []string{"deploy[0] deploy-eu", "deploy[1] deploy-us"}, got, "in seq order, without the other steps' lines")

	code, body = s.do("GET", "/api/jobs/"+id+"/steps/deploy/logs", nil, "")
	require.Equal(t, http.StatusOK, code, string(body))
	require.JSONEq(t, `{"logs":"deploy-eu\ndeploy-us\n"}`, string(body))

	code, body = s.do("GET", "/api/jobs/"+id+"/logs?step=deploy%5B1%5D&format=text", nil, "")
	require.Equal(t, http.StatusOK, code, string(body))
	require.Equal(t, "deploy-us\n", string(body), "an instance's own lines")

	code, body = s.do("GET", "/api/jobs/"+id+"/steps/deplo/logs", nil, "")
	require.Equal(t, http.StatusNotFound, code, string(body))

	code, body = s.do("GET", "/api/jobs/"+id+"/logs/stream?step=deploy", nil, "")
	require.Equal(t, http.StatusOK, code, string(body))
	require.Contains(t, string(body), `"deploy-eu"`)
	require.Contains(t, string(body), `"deploy-us"`)
	require.NotContains(t, string(body), `"before"`)
	require.Contains(t, string(body), "event: done")
}
