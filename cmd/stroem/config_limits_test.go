package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The upstream's server-wide job timeout and unmatched-step grace load
// under their upstream names, and out-of-range values are refused.
func TestJobLimitsConfig(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "s.yaml")
	require.NoError(t, os.WriteFile(p, []byte(`worker_token: x
listen: 127.0.0.1:8080
default_job_timeout: 4h
recovery:
  heartbeat_timeout_secs: 120
  sweep_interval_secs: 60
  unmatched_step_timeout_secs: 45
`), 0o600))
	cfg := defaultServerConfig()
	require.NoError(t, loadConfig(p, &cfg, nil))
	require.Equal(t, 4*time.Hour, cfg.DefaultJobTimeout)
	require.Equal(t, 45*time.Second, cfg.Recovery.unmatchedStepTimeout())
	require.NoError(t, cfg.validate())

	cfg.DefaultJobTimeout = 8 * 24 * time.Hour
	require.EqualError(t, cfg.validate(), "key default_job_timeout: 192h0m0s is out of range (0 to 7d)")
	cfg.DefaultJobTimeout = 0
	cfg.Recovery.UnmatchedStepTimeoutSecs = -1
	require.ErrorContains(t, cfg.validate(), "key recovery.unmatched_step_timeout_secs: -1 is out of range")
}
