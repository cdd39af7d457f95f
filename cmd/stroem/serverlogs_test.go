package main

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
)

// statusOnlyStore answers JobStatus and nothing else: any other method of
// the embedded (nil) store panics.
type statusOnlyStore struct {
	persistence.Store
	asked []string
}

func (s *statusOnlyStore) JobStatus(_ context.Context, id string) (stroem.JobStatus, error) {
	s.asked = append(s.asked, id)
	return stroem.JobRunning, nil
}

// A log stream's status checks (when it opens, and at every keep-alive)
// read the job's status alone, never the job with its steps (JobGet): for
// a job of 10,000 steps that was 10,000 rows per stream every 15 s.
func TestHubSourceReadsTheStatusAlone(t *testing.T) {
	s := &statusOnlyStore{}
	got, err := hubSource{store: s}.JobStatus(context.Background(), "job-1")
	require.NoError(t, err)
	require.Equal(t, stroem.JobRunning, got)
	require.Equal(t, []string{"job-1"}, s.asked)
}
