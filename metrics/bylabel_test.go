package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem/stroemtest"
)

// The cached children count per label value, the first use and the later
// ones alike, and a value has no series before it is used.
func TestByLabelCountsPerLabelValue(t *testing.T) {
	t.Parallel()
	cv, ov := counterVec("c_total", "c", "result"), histogramVec("h_seconds", "h", stepBuckets, "result")
	c := byLabel[prometheus.Counter]{get: cv.WithLabelValues}
	o := byLabel[prometheus.Observer]{get: ov.WithLabelValues}
	reg := prometheus.NewRegistry()
	reg.MustRegister(cv, ov)
	sum := func(name string, labels map[string]string) (float64, int) {
		fams, err := reg.Gather()
		require.NoError(t, err)
		for _, f := range fams {
			if f.GetName() == name {
				n, _ := stroemtest.MetricSum(f, labels)
				return n, len(f.GetMetric())
			}
		}
		return 0, 0
	}
	_, series := sum("c_total", nil)
	require.Zero(t, series, "no series before use")
	for range 3 {
		c.with("completed").Inc()
		o.with("completed").Observe(1)
	}
	c.with("failed").Inc()
	o.with("failed").Observe(2)
	n, series := sum("c_total", map[string]string{"result": "completed"})
	require.Equal(t, 3.0, n)
	require.Equal(t, 2, series, "one series per value used")
	n, _ = sum("c_total", map[string]string{"result": "failed"})
	require.Equal(t, 1.0, n)
	n, series = sum("h_seconds", map[string]string{"result": "completed"})
	require.Equal(t, 3.0, n, "three observations")
	require.Equal(t, 2, series)
	require.Same(t, c.with("completed"), c.with("completed"))
}
