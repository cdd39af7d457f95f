package persistence

import (
	"time"

	"github.com/stroem/stroem"
)

// TriggerTick is the scheduler tick a job is fired for. JobInsert records it
// in trigger_ticks in the job's own transaction, serialised per trigger, so
// that however many servers fire the same tick exactly one job is created.
type TriggerTick struct {
	// Trigger is the trigger's name; the workspace is the job's.
	Trigger string
	// At is the tick's scheduled time (not the time it was handled), so
	// every server computes the same value for the same tick.
	At time.Time
	// SkipIfUnfinished refuses the job with ErrTriggerBusy while an earlier
	// job of the trigger (source_type trigger, source_id
	// stroem.TriggerSourceID of the workspace and Trigger) is pending or
	// running: concurrency: skip. The tick is then
	// not recorded.
	SkipIfUnfinished bool
}

// Errors of JobInsert with a Tick. Both are CodeConflict (errors.Is with
// stroem.ErrConflict holds too); nothing was written.
var (
	// ErrTickFired: the tick, or a later tick of the trigger, was already
	// fired (by another server, or before a restart).
	ErrTickFired = &stroem.Error{Code: stroem.CodeConflict, Message: "this tick of the trigger has already fired"}
	// ErrTriggerBusy: SkipIfUnfinished was set and an earlier job of the
	// trigger is unfinished.
	ErrTriggerBusy = &stroem.Error{Code: stroem.CodeConflict, Message: "the trigger's previous job is unfinished"}
)
