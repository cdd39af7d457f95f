package http

import (
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
)

// taskStats is GET /api/workspaces/{ws}/tasks/{task}/stats?limit=N: the
// durations of the task's last N completed jobs (default 50, 1–500) and of
// their completed steps. Failed and cancelled runs are left out, they
// would distort the distribution.
func (s *Server) taskStats(w http.ResponseWriter, r *http.Request) error {
	ws, t, err := s.visibleTask(r)
	if err != nil {
		return err
	}
	limit := 50
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			return stroem.Errorf(stroem.CodeInvalid, "limit: want an integer from 1 to 500, got %q", v)
		}
		limit = n
	}
	jobs, err := s.store.JobList(r.Context(), persistence.JobFilter{
		Workspace: ws.Name, Task: t.Name, Status: stroem.JobCompleted, Limit: limit})
	if err != nil {
		return err
	}
	body := stroem.TaskStats{Window: limit, Steps: []stroem.StepStats{}}
	body.Task.Recent = []stroem.RecentRun{}
	var total []float64
	perStep := map[string][]float64{}
	for _, j := range jobs {
		if j.StartedAt == nil || j.CompletedAt == nil {
			continue
		}
		ms := millis(j.CompletedAt.Sub(*j.StartedAt))
		total = append(total, ms)
		body.Task.Recent = append(body.Task.Recent, stroem.RecentRun{JobID: j.ID, DurationMS: ms, CompletedAt: *j.CompletedAt})
		full, err := s.store.JobGet(r.Context(), j.ID)
		if err != nil {
			return err
		}
		for _, st := range full.Steps {
			if st.Status == stroem.StepCompleted && st.StartedAt != nil && st.CompletedAt != nil {
				perStep[st.StepName] = append(perStep[st.StepName], millis(st.CompletedAt.Sub(*st.StartedAt)))
			}
		}
	}
	body.Task.DurationStats = summarise(total)
	for _, step := range t.Order { // flow order, then any step no longer in the flow
		if d, ok := perStep[step]; ok {
			body.Steps = append(body.Steps, stroem.StepStats{StepName: step, DurationStats: summarise(d)})
			delete(perStep, step)
		}
	}
	for _, step := range slices.Sorted(maps.Keys(perStep)) {
		body.Steps = append(body.Steps, stroem.StepStats{StepName: step, DurationStats: summarise(perStep[step])})
	}
	writeJSON(w, http.StatusOK, body)
	return nil
}

func millis(d time.Duration) float64 { return math.Round(float64(d.Microseconds())/10) / 100 }

// summarise computes the statistics of ds; percentiles interpolate
// linearly between the closest ranks.
func summarise(ds []float64) stroem.DurationStats {
	out := stroem.DurationStats{SampleSize: len(ds)}
	if len(ds) == 0 {
		return out
	}
	sorted := slices.Clone(ds)
	slices.Sort(sorted)
	var sum float64
	for _, d := range sorted {
		sum += d
	}
	f := func(v float64) *float64 { v = math.Round(v*100) / 100; return &v }
	out.AvgMS = f(sum / float64(len(sorted)))
	out.P50MS = f(percentile(sorted, 0.50))
	out.P95MS = f(percentile(sorted, 0.95))
	out.MinMS = f(sorted[0])
	out.MaxMS = f(sorted[len(sorted)-1])
	return out
}

func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 1 {
		return sorted[0]
	}
	rank := p * float64(len(sorted)-1)
	lo := int(math.Floor(rank))
	hi := min(lo+1, len(sorted)-1)
	return sorted[lo] + (sorted[hi]-sorted[lo])*(rank-float64(lo))
}
