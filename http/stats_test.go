package http

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSummarise(t *testing.T) {
	t.Parallel()
	empty := summarise(nil)
	require.Equal(t, 0, empty.SampleSize)
	require.Nil(t, empty.AvgMS, "no sample: null aggregates")
	require.Nil(t, empty.P50MS)

	one := summarise([]float64{7})
	require.Equal(t, 7.0, *one.P50MS)
	require.Equal(t, 7.0, *one.P95MS)

	s := summarise([]float64{40, 10, 30, 20, 100})
	require.Equal(t, 5, s.SampleSize)
	require.Equal(t, 40.0, *s.AvgMS)
	require.Equal(t, 30.0, *s.P50MS)
	require.Equal(t, 88.0, *s.P95MS, "interpolated between 40 and 100")
	require.Equal(t, 10.0, *s.MinMS)
	require.Equal(t, 100.0, *s.MaxMS)
}
