package main

import (
	"fmt"
	"time"

	"github.com/stroem/stroem/workspace"
)

// recoveryConfig is the part of the upstream's `recovery:` section this
// server reads. heartbeat_timeout_secs and sweep_interval_secs are accepted
// for upstream config files and not used: leases (`lease:`) find lost
// workers here, and timers replace the sweep.
type recoveryConfig struct {
	// UnmatchedStepTimeoutSecs is how long a ready step waits for an active
	// worker with its capability before it fails (default 30).
	UnmatchedStepTimeoutSecs int `yaml:"unmatched_step_timeout_secs"`
	HeartbeatTimeoutSecs     int `yaml:"heartbeat_timeout_secs"`
	SweepIntervalSecs        int `yaml:"sweep_interval_secs"`
}

func (r recoveryConfig) unmatchedStepTimeout() time.Duration {
	return time.Duration(r.UnmatchedStepTimeoutSecs) * time.Second
}

// validateLimits checks the server-wide timeouts of the upstream language.
func (c *serverConfig) validateLimits() error {
	if c.DefaultJobTimeout < 0 || c.DefaultJobTimeout > workspace.MaxJobTimeout {
		return fmt.Errorf("key default_job_timeout: %s is out of range (0 to 7d)", c.DefaultJobTimeout)
	}
	if s := c.Recovery.UnmatchedStepTimeoutSecs; s < 0 || s > 86400 {
		return fmt.Errorf("key recovery.unmatched_step_timeout_secs: %d is out of range (1 to 86400; 0 or absent: 30)", s)
	}
	return nil
}
