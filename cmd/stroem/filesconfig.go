package main

import (
	"fmt"

	"github.com/stroem/stroem/actors"
)

// Task state and artifacts (issue 22, docs/state-artifacts.md): both are
// stored in the database (blob chunks), so every server reads the same
// copy; these sections only bound them.

// artifactStorageConfig is the server's artifact_storage: section.
type artifactStorageConfig struct {
	// MaxFileBytes bounds one artifact (default 100 MiB).
	MaxFileBytes int64 `yaml:"max_file_bytes"`
	// MaxJobBytes bounds a job's artifacts together (default 1 GiB).
	MaxJobBytes int64 `yaml:"max_job_bytes"`
}

// stateStorageConfig is the server's state_storage: section. The
// upstream's prefix and archive keys are accepted and ignored: snapshots
// live in the database.
type stateStorageConfig struct {
	// MaxSnapshots is how many snapshots a task keeps (default 5).
	MaxSnapshots int `yaml:"max_snapshots"`
	// MaxBytes bounds a snapshot's tarball (default 50 MiB).
	MaxBytes int64          `yaml:"max_bytes"`
	Prefix   string         `yaml:"prefix"`
	Archive  map[string]any `yaml:"archive"`
}

// fileLimits checks the sections and turns them into the service's limits.
func fileLimits(a artifactStorageConfig, s stateStorageConfig) (actors.FileLimits, error) {
	for key, v := range map[string]int64{
		"artifact_storage.max_file_bytes": a.MaxFileBytes, "artifact_storage.max_job_bytes": a.MaxJobBytes,
		"state_storage.max_bytes": s.MaxBytes, "state_storage.max_snapshots": int64(s.MaxSnapshots),
	} {
		if v < 0 {
			return actors.FileLimits{}, fmt.Errorf("key %s: %d is negative", key, v)
		}
	}
	return actors.FileLimits{MaxFileBytes: a.MaxFileBytes, MaxJobBytes: a.MaxJobBytes, MaxStateBytes: s.MaxBytes, StateKeep: s.MaxSnapshots}, nil
}
