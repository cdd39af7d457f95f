package storetest

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem/persistence"
)

// testJobIDPrefix: JobList and JobCount with IDPrefix find the jobs whose id
// starts with it, as the CLI's short ids need.
func testJobIDPrefix(t *testing.T, open func(t *testing.T) persistence.Store) {
	s := open(t)
	ctx := context.Background()
	ids := []string{
		"0b7e2c1e-5d7b-4c53-9a67-1d2f3e4a5b6c",
		"0b7e2c1e-6000-4c53-9a67-1d2f3e4a5b6c",
		"0b7f0000-0000-4000-8000-000000000000",
		"ffffffff-ffff-4fff-bfff-ffffffffffff",
	}
	for _, id := range ids {
		nj := NewJob(Step{Name: "a"})
		nj.Job.ID = id
		require.NoError(t, s.JobInsert(ctx, nj))
	}
	for _, tt := range []struct {
		prefix string
		want   []string
	}{
		{"0b7e", ids[:2]},
		{"0B7E2C1E", ids[:2]},
		{"0b7e2c1e-5", ids[:1]},
		{"0b7e2c1e-5d7b-4c53-9a67-1d2f3e4a5b6c", ids[:1]},
		{"0B7E2C1E-5D7B-4C53-9A67-1D2F3E4A5B6C", ids[:1]}, // a full id, any case
		{"0b7e2c1e-5d7b-4c53-9a67-000000000000", nil},     // a full id of no job
		{"0b7", ids[:3]},
		{"ffff", ids[3:]},
		{"1", nil},
		{"0b7e2c1e5", nil}, // a dash belongs there
		{"xyz", nil},
		{"0b7e2c1e-5d7b-4c53-9a67-1d2f3e4a5b6c0", nil},
	} {
		jobs, err := s.JobList(ctx, persistence.JobFilter{IDPrefix: tt.prefix})
		require.NoError(t, err, tt.prefix)
		require.ElementsMatch(t, tt.want, jobIDs(jobs), tt.prefix)
		n, err := s.JobCount(ctx, persistence.JobFilter{IDPrefix: tt.prefix})
		require.NoError(t, err, tt.prefix)
		require.Equal(t, len(tt.want), n, tt.prefix)
	}
}
