package persistence

import (
	"strconv"
	"strings"
	"time"

	"github.com/stroem/stroem"
)

// JobState is a job and all its steps as stored, loaded inside a transaction
// that holds the job's locks (see Store.JobUpdate). The orchestrator derives
// every decision from it with the DAG logic; it never trusts its own memory.
//
// Its steps are copy-on-write (see state.go): they are read through At,
// Find and All, which return copies, and changed only through MutAt and
// Mut, which copy a step the first time it is changed and record it. A
// JobUpdate callback thus gets steps shared with the store's before-image
// (and cache), and the store diffs and writes only the steps it changed.
type JobState struct {
	Job stroem.Job // Steps left empty; see the steps below
	// SnapshotID names the stored task definition the job was created from.
	SnapshotID string
	// CancelRequested is set by a cancel; the job ends cancelled once every
	// step is terminal, and no new attempt is ever started.
	CancelRequested bool
	// Now is the database's transaction time (for a PostgreSQL update that
	// did not read the job first, an estimate the database checked is not
	// ahead of it): compare leases against it, not against the server's clock.
	Now time.Time
	// Context holds the job's extra template variables by name (a webhook's
	// "webhook": {headers, query}); nil for most jobs.
	Context map[string]any
	// StateScopes says which state scopes of the job's task had a snapshot
	// when JobUpdate read the job (StateArtifactStore.StateScopes, read in
	// the same statement): what a step handed off in this transition is
	// told to download, without a query of its own. Nil when not read.
	StateScopes *stroem.AssignmentState

	// steps in stored position order (a topological order of the DAG).
	steps []*StepState
	cow
}

// StepState is one stored step. A JobUpdate callback changes the fields of
// the step JobState.MutAt or Mut returns; the store writes what changed.
type StepState struct {
	Name       string
	Position   int
	ActionName string
	ActionType string
	Image      string
	// Tags are the worker tags the step requires (its action's tags,
	// sorted, each once; nil for none): only a worker they match may run
	// it (stroem.TagsMatch). Set at insert, never changed; shared between
	// copies of the step like DependsOn: never write through it.
	Tags              []string
	DependsOn         []string
	ContinueOnFailure bool
	MaxAttempts       int // total executions allowed; 1 = no retry

	Status stroem.StepStatus
	// Input is the rendered input (set when the step becomes ready).
	Input        map[string]any
	Output       any
	ErrorMessage string

	// The current (latest) attempt. Attempt is 0 before the first claim.
	Attempt       int
	WorkerID      string
	AttemptStatus stroem.AttemptStatus
	ExitCode      *int
	// LeaseExpiresAt is set while running.
	LeaseExpiresAt *time.Time
	// ReadyAt is when a ready step may be claimed (later than now while a
	// retry backs off). Claims take the oldest ReadyAt first.
	ReadyAt         *time.Time
	CancelRequested bool
	StartedAt       *time.Time
	CompletedAt     *time.Time
	// StartedAttempt is the attempt recorded as started: the worker
	// acknowledged it (its `start` report), or it was handed to the
	// worker's own completion in the transition that made it ready, where
	// the completion's answer stands for the acknowledgement (see
	// actors/handoff.go). A write of a running step whose StartedAttempt
	// equals its Attempt records that attempt as started; any other value
	// leaves the stored one as it is (an acknowledgement that came in
	// after the state was read is never undone).
	StartedAttempt int
}

// NewJob is everything JobInsert writes in one transaction.
type NewJob struct {
	// Job.ID must be set (a UUID). Job.Status is pending, or terminal when
	// every root step already failed (a root input that does not render).
	Job          stroem.Job
	SnapshotID   string
	SnapshotBody []byte // JSON; stored once per SnapshotID
	Steps        []NewStep
	// Context is stored with the job and read back as JobState.Context.
	Context map[string]any
	// Tick, when set, is the scheduler tick this job is fired for: see
	// TriggerTick for what JobInsert then checks.
	Tick *TriggerTick
}

// NewStep is one step of a NewJob.
type NewStep struct {
	Name       string
	ActionName string
	ActionType string
	Image      string
	// Tags are the worker tags the step requires (its action's); JobInsert
	// stores them sorted, each once.
	Tags              []string
	DependsOn         []string
	ContinueOnFailure bool
	MaxAttempts       int
	// Status is ready for roots (Input rendered), pending for the rest, or
	// failed/skipped when rendering a root failed.
	Status       stroem.StepStatus
	Input        map[string]any
	ErrorMessage string
	// Output is stored for a step inserted suspended (an approval gate's
	// message); such a step's started_at is the insert's time.
	Output any
	// Revision is the workspace revision the step runs on when its action
	// belongs to another workspace (a cross-workspace reference); "" for
	// the job's own revision.
	Revision string
}

// ClaimParams says who claims and what it can run.
type ClaimParams struct {
	WorkerID     string
	Capabilities []string // action types the worker runs
	// Tags and Exclusive are the worker's routing (stroem.TagsMatch): a
	// step is claimed only if its tags match them, as well as its type.
	Tags      []string
	Exclusive bool
	Limit     int
	Lease     time.Duration
	// Handed names completions whose claims this claim serves (see
	// HandedLink), at most one step each: the first len(Handed) steps
	// claimed, in claim order, are recorded as started (their worker runs
	// them without a `start` report, the completion's answer standing for
	// it) and as handed for Handed[i], by which StepsHandedFor finds them
	// when the worker repeats that completion. The other steps are claimed
	// unacknowledged, as for a long poll.
	Handed []string
}

// HandedLink names a completion (the completed step's job, step and
// attempt) for ClaimParams.Handed and StepsHandedFor. jobID must be in the
// store's canonical form (lower-case UUID).
func HandedLink(jobID, step string, attempt int) string {
	return jobID + "/" + strconv.Itoa(attempt) + "/" + step
}

// ValidHandedLink says whether link can name a completion: not empty, and
// not starting with '!', which the stores put in front of a link whose step
// a repeat was given (see StepsHandedFor).
func ValidHandedLink(link string) bool {
	return link != "" && link[0] != '!'
}

// Check applies StepsClaim's rules both stores share: a worker id and a
// positive lease are required. A claim without capabilities is valid and
// finds nothing.
func (p ClaimParams) Check() error {
	if p.WorkerID == "" {
		return stroem.Errorf(stroem.CodeInvalid, "claim: worker id is empty")
	}
	if p.Lease <= 0 {
		return stroem.Errorf(stroem.CodeInvalid, "claim: lease must be positive, got %s", p.Lease)
	}
	return nil
}

// Batch checks p (see Check) and returns how many steps the claim may
// take: p.Limit, at least 1, or 0 when p has no capabilities (no step can
// match, and the store runs no query).
func (p ClaimParams) Batch() (int, error) {
	if len(p.Capabilities) == 0 {
		return 0, nil
	}
	if err := p.Check(); err != nil {
		return 0, err
	}
	return max(p.Limit, 1), nil
}

// CheckRenew applies LeasesRenew's argument rules both stores share: a
// worker id that is not a UUID names no worker (CodeNotFound), and the lease
// must be positive. It returns the worker id in canonical form.
func CheckRenew(workerID string, lease time.Duration) (string, error) {
	wid, ok := CanonicalUUID(workerID)
	if !ok {
		return "", stroem.Errorf(stroem.CodeNotFound, "worker %s not found", workerID)
	}
	if lease <= 0 {
		return "", stroem.Errorf(stroem.CodeInvalid, "renew leases: lease must be positive, got %s", lease)
	}
	return wid, nil
}

// UnknownWorkers is WorkersSeen's answer both stores share: the ids of
// workerIDs, as given and in their order, whose canonical form known does
// not hold (not UUIDs included).
func UnknownWorkers(workerIDs []string, known map[string]bool) []string {
	unknown := []string{}
	for _, id := range workerIDs {
		if c, ok := CanonicalUUID(id); !ok || !known[c] {
			unknown = append(unknown, id)
		}
	}
	return unknown
}

// RenewedLeases is the outcome of a store's LeasesRenew once it renewed
// what it could: renewed maps each step whose lease it renewed (job id in
// canonical form) to whether its cancellation was requested, err is the
// renewal's error (interpreted and wrapped with e). It returns the steps
// of running the worker must stop, in their order: those whose job id is
// not a UUID, those not renewed, and renewed ones whose cancellation was
// requested.
func (e Errors) RenewedLeases(err error, workerID string, running []stroem.StepRef, renewed map[stroem.StepRef]bool) ([]stroem.StepRef, error) {
	if err != nil {
		return nil, e.Wrap(err, "renew leases of worker %s", workerID)
	}
	var cancel []stroem.StepRef
	for _, ref := range running {
		jobID, ok := CanonicalUUID(ref.JobID)
		if cancelReq, held := renewed[stroem.StepRef{JobID: jobID, Step: ref.Step, Attempt: ref.Attempt}]; !ok || !held || cancelReq {
			cancel = append(cancel, ref)
		}
	}
	return cancel, nil
}

// ClaimedStep is a step a claim moved to running for a worker.
type ClaimedStep struct {
	JobID          string
	StepName       string
	Attempt        int
	ActionName     string
	ActionType     string
	Image          string
	Input          map[string]any
	Workspace      string
	TaskName       string
	Revision       string
	SnapshotID     string
	LeaseExpiresAt time.Time
	// StateScopes says which state scopes of the job's task had a snapshot
	// when the step was claimed (read by the claim itself, see
	// JobState.StateScopes). Nil when not read.
	StateScopes *stroem.AssignmentState
	// Templates are extra template variables of the step's command
	// (`state`, `global_state`), set by the orchestrator, never stored.
	Templates map[string]any
	// Each is a loop instance's each.item and each.index, for its action's
	// templates (set by the orchestrator, not read from the store).
	Each map[string]any
	// HandedFor is the completion the step was claimed for and recorded as
	// started (ClaimParams.Handed), "" for a step claimed unacknowledged.
	HandedFor string
}

// JobFilter selects jobs for JobList. Zero fields do not filter.
type JobFilter struct {
	Workspace string
	Task      string
	Status    stroem.JobStatus
	// SourceType/SourceID find the jobs of one trigger.
	SourceType stroem.SourceType
	SourceID   string
	// CreatedAfter/CreatedBefore bound created_at (inclusive after,
	// exclusive before); zero times do not filter.
	CreatedAfter  time.Time
	CreatedBefore time.Time
	Limit         int // default 50, at most 1000
	Offset        int
	// IDPrefix keeps the jobs whose id starts with it (a short id as the
	// CLI prints it); see UUIDPrefixRange.
	IDPrefix string
}

// StepLease is the stored lease of a step's current attempt, read by the
// orchestrator's lease timers.
type StepLease struct {
	Attempt        int
	Status         stroem.StepStatus
	LeaseExpiresAt *time.Time
	// Now is the database clock at the time of reading.
	Now time.Time
}

// HeldStep is a running step and the worker holding it.
type HeldStep struct {
	stroem.StepRef
	WorkerID string
}

// ChannelStepsReady is the NOTIFY channel on which every transaction that
// makes a step ready (job creation, promotion, retry, unclaim) announces it,
// so any server process can wake its waiting claimers without polling. The
// payload is "<origin>:<job id>", origin naming the Store that sent it (see
// Origin); treat it as a hint and re-query.
const ChannelStepsReady = "stroem_steps_ready"

// WorkerStaleAfter is how long a worker may go without a heartbeat before
// WorkerList shows it as stale.
const WorkerStaleAfter = 30 * time.Second

// Job list paging: JobFilter.Limit's default and cap.
const (
	DefaultJobListLimit = 50
	MaxJobListLimit     = 1000
)

// Cond is one equality condition of a job list query: column = value.
type Cond struct {
	Column string
	Value  any
}

// Conds returns the filter's conditions, in a fixed order (the order of
// the job list's indexes).
func (f JobFilter) Conds() []Cond {
	var out []Cond
	for _, c := range []Cond{
		{"workspace", f.Workspace}, {"task_name", f.Task}, {"status", string(f.Status)},
		{"source_type", string(f.SourceType)}, {"source_id", f.SourceID},
	} {
		if c.Value != "" {
			out = append(out, c)
		}
	}
	return out
}

// Page returns the page the filter asks for: the limit defaulted and
// capped, the offset at least 0.
func (f JobFilter) Page() (limit, offset int) {
	limit = f.Limit
	if limit <= 0 {
		limit = DefaultJobListLimit
	}
	return min(limit, MaxJobListLimit), max(f.Offset, 0)
}

// Where is the WHERE clause (with its leading space, or empty) of a store's
// JobList and JobCount: the filter's equalities, its created_at range and
// its id range. arg records one value and returns its placeholder ($n in
// PostgreSQL, ? in SQLite; a store converts times as its columns hold
// them), so both stores run the same statement. Each filter combination the
// API offers matches an index whose order is the list order (see the
// migrations), so a page is a short index scan even at 100,000s of jobs.
func (f JobFilter) Where(arg func(v any) string) string {
	var where []string
	for _, c := range f.Conds() {
		where = append(where, c.Column+` = `+arg(c.Value))
	}
	if !f.CreatedAfter.IsZero() {
		where = append(where, `created_at >= `+arg(f.CreatedAfter))
	}
	if !f.CreatedBefore.IsZero() {
		where = append(where, `created_at < `+arg(f.CreatedBefore))
	}
	if lo, hi, ok := f.IDRange(); ok && lo == hi {
		// A full id: an equality, which is always answered from the primary
		// key (a range with parameters may be planned as a scan of the
		// created_at index in a generic plan).
		where = append(where, `id = `+arg(lo))
	} else if ok {
		where = append(where, `id >= `+arg(lo), `id <= `+arg(hi))
	}
	if len(where) == 0 {
		return ""
	}
	return ` WHERE ` + strings.Join(where, " AND ")
}

// ListPage is the end of JobList's statement, after Where: newest first
// (created_at, then id, descending) and the page (see Page).
func (f JobFilter) ListPage(arg func(v any) string) string {
	limit, offset := f.Page()
	return ` ORDER BY created_at DESC, id DESC LIMIT ` + arg(limit) + ` OFFSET ` + arg(offset)
}
