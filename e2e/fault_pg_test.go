package e2e

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
)

// apiProbe polls the API while the database is away and counts the
// answers by status: the server must answer 503, never 500, and never hang.
type apiProbe struct {
	s    *faultStack
	stop chan struct{}
	done sync.WaitGroup

	mu     sync.Mutex
	counts map[string]map[int]int // request → status → count
}

// probeRequest is one request the probe repeats, with the status it gets
// while the database is up.
type probeRequest struct {
	name, method, path, body string
	token                    bool
	up                       int
}

func (s *faultStack) probe(jobID string) *apiProbe {
	p := &apiProbe{s: s, stop: make(chan struct{}), counts: map[string]map[int]int{}}
	unknown := "00000000-0000-4000-8000-000000000000"
	reqs := []probeRequest{
		{name: "GET job", method: "GET", path: "/api/jobs/" + jobID, up: http.StatusOK},
		{name: "GET jobs", method: "GET", path: "/api/jobs", up: http.StatusOK},
		{name: "GET readyz", method: "GET", path: "/readyz", up: http.StatusOK},
		// Writes with no effect: they reach the database, and find nothing.
		{name: "POST cancel", method: "POST", path: "/api/jobs/" + unknown + "/cancel", up: http.StatusNotFound},
		// The shared token is no worker's credential: looking it up
		// reaches the database, and finds nothing.
		{name: "POST heartbeat", method: "POST", path: "/worker/heartbeat", token: true,
			body: `{"worker_id": "` + unknown + `", "running": []}`, up: http.StatusUnauthorized},
	}
	for _, r := range reqs {
		p.done.Go(func() {
			for {
				select {
				case <-p.stop:
					return
				default:
				}
				code := p.send(r)
				if code == r.up {
					code = http.StatusOK // "answered as when up"
				}
				p.mu.Lock()
				if p.counts[r.name] == nil {
					p.counts[r.name] = map[int]int{}
				}
				p.counts[r.name][code]++
				p.mu.Unlock()
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	return p
}

func (p *apiProbe) send(r probeRequest) int {
	req, err := http.NewRequest(r.method, p.s.url+r.path, strings.NewReader(r.body))
	if err != nil {
		return -1
	}
	req.Header.Set("Content-Type", "application/json")
	if r.token {
		req.Header.Set("Authorization", "Bearer "+p.s.token)
	}
	resp, err := p.s.http.Do(req)
	if err != nil {
		return 0 // no answer within the client's timeout: refused below
	}
	resp.Body.Close()
	return resp.StatusCode
}

// finish stops probing and returns the counts.
func (p *apiProbe) finish() map[string]map[int]int {
	close(p.stop)
	p.done.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts
}

// PostgreSQL restarted while jobs run (its own throwaway cluster): the API
// answers 503 while the database is away, never 500; the server reconnects
// by itself; every job completes, each step in one attempt.
func TestFaultPostgresRestart(t *testing.T) {
	t.Parallel()
	pg := startPGCluster(t)
	s := startFaultStack(t, faultOpts{workflow: countWorkflow(t.TempDir()), dbURL: pg.URL()})
	s.startWorker("w1", 2, 3*time.Second)

	check := func(name string, counts map[string]map[int]int, wantDown bool) {
		t.Helper()
		t.Logf("%s: answers while PostgreSQL restarted: %v", name, counts)
		saw503 := 0
		for req, byStatus := range counts {
			for code, n := range byStatus {
				switch {
				case code == http.StatusServiceUnavailable:
					saw503 += n
				case code == http.StatusOK:
				default:
					t.Errorf("%s: %s answered %d (%d times); want its usual answer or 503", name, req, code, n)
				}
			}
		}
		if wantDown {
			require.Positive(t, saw503, "%s: no request saw the database down", name)
		}
	}

	for _, mode := range []string{"fast", "immediate", "outage"} {
		task, steps, lines := "chain3", []string{"a", "b", "c"}, faultCountLines
		if mode == "outage" {
			// The step must outlive the outage by a few leases.
			task, steps, lines = "long", []string{"a"}, 100
		}
		id := s.execute(task, nil)
		s.waitLog(id, "a line 3")
		p := s.probe(id)
		fault := time.Now()
		var what string
		switch mode {
		case "fast":
			what = "PostgreSQL pg_ctl restart -m fast"
			pg.restart("fast")
		case "immediate":
			// Down for a second at least, so the probes surely meet it.
			what = "PostgreSQL pg_ctl stop -m immediate, 1 s, start"
			pg.stop("immediate")
			time.Sleep(time.Second)
			pg.start()
		case "outage":
			// Down for three leases: no heartbeat can be recorded meanwhile,
			// which must not cost the running step its lease.
			what = "PostgreSQL down for 3 leases (stop -m immediate, 6 s, start)"
			pg.stop("immediate")
			time.Sleep(3 * faultLease)
			pg.start()
		}
		up := time.Now()
		figure(t, what+": database unreachable", up.Sub(fault))
		require.Eventually(t, func() bool { return s.status("/readyz") == http.StatusOK }, waitFor, 20*time.Millisecond,
			"the server never reconnected")
		figure(t, what+": back → server ready", time.Since(up))
		check(what, p.finish(), mode != "fast")

		j := s.waitJobWithin(id, waitFor)
		j, _ = s.requireJob(id, stroem.JobCompleted)
		for _, st := range j.Steps {
			require.Equal(t, 1, st.Attempt, "step %s ran once\n%s", st.StepName, describeJob(j))
		}
		s.requireAllLines(id, steps, lines)
		figure(t, what+": fault → job completed", j.CompletedAt.Sub(fault))
	}
}
