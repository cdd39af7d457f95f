package sqlite

import (
	"context"

	"github.com/stroem/stroem/persistence"
)

// insertSkeleton inserts the pending skeleton of a step a JobUpdate
// appended (a loop instance); writeState then writes the step over it.
func insertSkeleton(ctx context.Context, tx *txn, jobID string, st *persistence.StepState) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO job_steps (job_id, step_name, position, action_name,
			action_type, image, depends_on, continue_on_failure, max_attempts, status, required_tags, version)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, `+clockTick+`)`,
		jobID, st.Name, st.Position, st.ActionName, st.ActionType, st.Image, encodeStrings(st.DependsOn),
		st.ContinueOnFailure, st.MaxAttempts, encodeStrings(st.Tags))
	return err
}
