// Package persistence is the store contract of Strøm: what the orchestrator,
// the HTTP layer and the server wiring may ask of durable storage, and the
// rules every store applies the same way. It holds no driver and runs no
// SQL.
//
//   - Store, the interface every store implements (optional capabilities
//     such as Origin or StepsRunning are methods, never type assertions);
//   - the state-machine types a store reads and writes: JobState and
//     StepState (what Store.JobUpdate hands to its callback), NewJob,
//     ClaimParams, ClaimedStep, StepLease, HeldStep, TriggerTick, JobFilter;
//   - the errors of the contract (ErrTickFired, ErrTriggerBusy);
//   - the helpers both stores share: the JobUpdate rules (Diff: allowed
//     transitions, the fields a store fills in, what changed), sanitizing
//     of user text for storage, and JSON encoding and decoding of columns.
//
// The implementations are siblings that never import each other:
// persistence/postgres (production) and persistence/sqlite (`stroem dev`).
// persistence/storetest is the behavioural specification both run.
package persistence
