package metrics

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/stroem/stroem/persistence"
)

// Sampler reads the gauges shared by every server from the store.
type Sampler interface {
	MetricsSample(ctx context.Context) (persistence.MetricsSample, error)
}

// UpdateCounter is a store that counts how its job transitions read their
// job (PostgreSQL's: see JobUpdateReads there).
type UpdateCounter interface {
	JobUpdateReads() (unread, stale int64)
}

// Server holds a server process's metrics. Its methods are safe on a nil
// *Server (they do nothing), so wiring can leave metrics out.
type Server struct {
	reg *prometheus.Registry

	jobsCreated   *prometheus.CounterVec
	jobsCompleted *prometheus.CounterVec
	stepsStarted  *prometheus.CounterVec
	stepsFinished *prometheus.CounterVec
	leaseExpiries prometheus.Counter
	claimSeconds  prometheus.Histogram
	hopSeconds    prometheus.Histogram
	stepSeconds   *prometheus.HistogramVec
	storeErrors   *prometheus.CounterVec
	httpRequests  *prometheus.CounterVec
	httpSeconds   *prometheus.HistogramVec
	webhookCalls  *prometheus.CounterVec
	sseClients    prometheus.Gauge
	logLines      prometheus.Counter
	logBytes      prometheus.Counter
	pruned        *prometheus.CounterVec

	// The per-step series, resolved once per label value.
	stepsStartedBy  byLabel[prometheus.Counter]  // stepsStarted
	stepsFinishedBy byLabel[prometheus.Counter]  // stepsFinished
	stepSecondsBy   byLabel[prometheus.Observer] // stepSeconds
	jobsCompletedBy byLabel[prometheus.Counter]  // jobsCompleted
}

// latencyBuckets suit store round trips and hand-offs: 1 ms to 10 s.
var latencyBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10}

// stepBuckets suit step run times: 100 ms to 2 h.
var stepBuckets = []float64{0.1, 0.5, 1, 5, 15, 30, 60, 300, 900, 1800, 3600, 7200}

// httpBuckets are the upstream's request duration buckets.
var httpBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// NewServer registers every server metric, the Go runtime and process
// collectors and, when sampler is not nil, the gauges read from the store
// at scrape time. replicaID (the store's origin, unique per process) is a
// label on every series, as upstream does, so replicas never collide.
func NewServer(replicaID string, sampler Sampler) *Server {
	reg := prometheus.NewRegistry()
	r := prometheus.WrapRegistererWith(prometheus.Labels{"replica_id": replicaID}, reg)
	m := &Server{
		reg:           reg,
		jobsCreated:   counterVec("stroem_jobs_created_total", "Jobs created, by what created them.", "source_type"),
		jobsCompleted: counterVec("stroem_jobs_completed_total", "Jobs that reached a terminal status, by status.", "status"),
		stepsStarted:  counterVec("stroem_steps_started_total", "Step attempts started, by how the worker got them (claim or handoff).", "via"),
		stepsFinished: counterVec("stroem_steps_finished_total", "Step attempts that ended, by result (completed, failed, cancelled, lost).", "result"),
		leaseExpiries: counter("stroem_lease_expiries_total", "Step attempts failed because their worker's lease expired."),
		claimSeconds:  histogram("stroem_claim_duration_seconds", "Duration of one claim query in the store.", latencyBuckets),
		hopSeconds:    histogram("stroem_hop_duration_seconds", "From the last dependency's completion to a dependent step's first attempt running.", latencyBuckets),
		stepSeconds:   histogramVec("stroem_step_duration_seconds", "Run time of step attempts, by result.", stepBuckets, "result"),
		storeErrors:   counterVec("stroem_store_errors_total", "Store calls that failed for a reason other than the request (unavailable or internal), by operation.", "op"),
		httpRequests:  counterVec("stroem_http_requests_total", "Requests served on /api/*, by method, route pattern and status.", "method", "route", "status"),
		httpSeconds:   histogramVec("stroem_http_request_duration_seconds", "Duration of requests on /api/*, by route pattern.", httpBuckets, "route"),
		webhookCalls:  counterVec("stroem_webhook_calls_total", "Webhook calls (/hooks/*), by HTTP status.", "status"),
		sseClients:    gauge("stroem_sse_clients", "Log stream (SSE) clients connected now."),
		logLines:      counter("stroem_log_lines_total", "Step log lines stored."),
		logBytes:      counter("stroem_log_bytes_total", "Bytes of step log text stored."),
		pruned:        counterVec("stroem_retention_deleted_total", "Rows deleted by retention, by kind (jobs, steps, trigger_ticks, workers).", "kind"),
	}
	r.MustRegister(m.jobsCreated, m.jobsCompleted, m.stepsStarted, m.stepsFinished, m.leaseExpiries,
		m.claimSeconds, m.hopSeconds, m.stepSeconds, m.storeErrors, m.httpRequests, m.httpSeconds,
		m.webhookCalls, m.sseClients, m.logLines, m.logBytes, m.pruned,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.stepsStartedBy.get, m.stepsFinishedBy.get = m.stepsStarted.WithLabelValues, m.stepsFinished.WithLabelValues
	m.stepSecondsBy.get, m.jobsCompletedBy.get = m.stepSeconds.WithLabelValues, m.jobsCompleted.WithLabelValues
	// Every terminal status has a series from the start, so rate() and
	// increase() see the first job of each.
	for _, s := range []string{"completed", "failed", "cancelled", "skipped"} {
		m.jobsCompletedBy.with(s)
	}
	if sampler != nil {
		r.MustRegister(&storeCollector{sampler: sampler, errs: m.storeErrors})
	}
	if uc, ok := sampler.(UpdateCounter); ok {
		r.MustRegister(
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "stroem_job_updates_unread_total",
				Help: "Job transitions that ran in one round trip, on the job as this server's last transition of it left it."},
				func() float64 { u, _ := uc.JobUpdateReads(); return float64(u) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "stroem_job_updates_unread_stale_total",
				Help: "Job transitions that tried to run on the kept job and ran again after reading it (it had changed, the clock estimate was off, or the transition refused it)."},
				func() float64 { _, st := uc.JobUpdateReads(); return float64(st) }))
	}
	return m
}

// Registry is where the metrics are registered (tests gather from it).
func (m *Server) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus text format. Unless public,
// a request must carry "Authorization: Bearer <token>" (the worker token,
// as upstream); an empty token refuses every request.
func (m *Server) Handler(token string, public bool) http.Handler {
	h := promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
	if public {
		return h
	}
	return BearerOnly(token, h)
}

// BearerOnly admits requests carrying "Authorization: Bearer <token>"
// (compared in constant time) and answers others 401 with a JSON error.
func BearerOnly(token string, next http.Handler) http.Handler {
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get("Authorization"))
		if token == "" || subtle.ConstantTimeCompare(got, want) != 1 {
			msg := "missing or wrong token (Authorization: Bearer <worker_token>, or set metrics.public)"
			w.Header().Set("WWW-Authenticate", `Bearer realm="stroem-metrics"`)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Pruned counts rows retention deleted.
func (m *Server) Pruned(kind string, n int64) {
	if m == nil || n <= 0 {
		return
	}
	m.pruned.WithLabelValues(kind).Add(float64(n))
}

// storeCollector reads the shared gauges from the store at scrape time. A
// failed read emits nothing for them (Prometheus marks them stale) rather
// than fabricated zeros, and counts a store error.
type storeCollector struct {
	sampler Sampler
	errs    *prometheus.CounterVec
}

var (
	descWorkers = prometheus.NewDesc("stroem_workers_active",
		"Workers that sent a heartbeat recently.", nil, nil)
	descInFlight = prometheus.NewDesc("stroem_jobs_in_flight",
		"Pending and running jobs, by status.", []string{"status"}, nil)
	descReady = prometheus.NewDesc("stroem_steps_ready",
		"Claimable ready steps (all capabilities).", nil, nil)
	descReadyBy = prometheus.NewDesc("stroem_steps_ready_by_capability",
		"Claimable ready steps, by the action type a worker needs to claim them.", []string{"capability"}, nil)
	descRunning = prometheus.NewDesc("stroem_steps_running",
		"Running steps: worker slots in use across all workers.", nil, nil)
)

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descWorkers
	ch <- descInFlight
	ch <- descReady
	ch <- descReadyBy
	ch <- descRunning
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := c.sampler.MetricsSample(ctx)
	if err != nil {
		c.errs.WithLabelValues("MetricsSample").Inc()
		return
	}
	ch <- prometheus.MustNewConstMetric(descWorkers, prometheus.GaugeValue, float64(s.WorkersActive))
	for status, n := range s.JobsInFlight {
		ch <- prometheus.MustNewConstMetric(descInFlight, prometheus.GaugeValue, float64(n), status)
	}
	var ready int64
	for capability, n := range s.StepsReady {
		ready += n
		ch <- prometheus.MustNewConstMetric(descReadyBy, prometheus.GaugeValue, float64(n), capability)
	}
	ch <- prometheus.MustNewConstMetric(descReady, prometheus.GaugeValue, float64(ready))
	ch <- prometheus.MustNewConstMetric(descRunning, prometheus.GaugeValue, float64(s.StepsRunning))
}
