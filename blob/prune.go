package blob

import (
	"context"
	"time"
)

// Pruner is the store method retention calls (persistence.Store).
type Pruner interface {
	BlobsPrune(ctx context.Context, before time.Time, limit int, dryRun bool) (int64, error)
}

// OrphanAge is how old an unnamed blob must be before it is deleted: an
// upload in progress is never younger than its first chunk, and none takes
// this long.
const OrphanAge = 6 * time.Hour

// PruneHook returns a retention hook (retention.Hook) that deletes, batch
// by batch, the blobs no artifact or snapshot names any more that are
// older than OrphanAge: a deleted job's artifacts, replaced artifacts,
// pruned snapshots and uploads a crash cut off.
func PruneHook(s Pruner) func(ctx context.Context, jobIDs []string) error {
	return func(ctx context.Context, _ []string) error {
		for {
			n, err := s.BlobsPrune(ctx, time.Now().Add(-OrphanAge), 100, false)
			if err != nil || n < 100 {
				return err
			}
		}
	}
}
