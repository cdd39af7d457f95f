package storetest

import (
	"testing"

	"github.com/stroem/stroem/persistence"
)

// Run runs the whole suite. open must return a fresh, empty, migrated store
// for the test it is given and close it when that test ends; every subtest
// opens its own and runs in parallel.
func Run(t *testing.T, open func(t *testing.T) persistence.Store) {
	t.Run("JobInsert", func(t *testing.T) { t.Parallel(); testJobInsert(t, open) })
	t.Run("Snapshots", func(t *testing.T) { t.Parallel(); testSnapshots(t, open) })
	t.Run("JobGet", func(t *testing.T) { t.Parallel(); testJobGet(t, open) })
	t.Run("JobList", func(t *testing.T) { t.Parallel(); testJobList(t, open) })
	t.Run("JobIDPrefix", func(t *testing.T) { t.Parallel(); testJobIDPrefix(t, open) })
	t.Run("JobUpdate", func(t *testing.T) { t.Parallel(); testJobUpdate(t, open) })
	t.Run("Claims", func(t *testing.T) { t.Parallel(); testClaims(t, open) })
	t.Run("Fencing", func(t *testing.T) { t.Parallel(); testFencing(t, open) })
	t.Run("Transitions", func(t *testing.T) { t.Parallel(); testTransitions(t, open) })
	t.Run("StepUnclaim", func(t *testing.T) { t.Parallel(); testStepUnclaim(t, open) })
	t.Run("StartAck", func(t *testing.T) { t.Parallel(); testStartAck(t, open) })
	t.Run("Offers", func(t *testing.T) { t.Parallel(); testOffers(t, open) })
	t.Run("Routing", func(t *testing.T) { t.Parallel(); testRouting(t, open) })
	t.Run("StepsRunning", func(t *testing.T) { t.Parallel(); testStepsRunning(t, open) })
	t.Run("Leases", func(t *testing.T) { t.Parallel(); testLeases(t, open) })
	t.Run("Workers", func(t *testing.T) { t.Parallel(); testWorkers(t, open) })
	t.Run("WorkerCredentials", func(t *testing.T) { t.Parallel(); testWorkerCredentials(t, open) })
	t.Run("StepRevision", func(t *testing.T) { t.Parallel(); testStepRevision(t, open) })
	t.Run("Sanitizing", func(t *testing.T) { t.Parallel(); testSanitizing(t, open) })
	t.Run("WorkspaceArchives", func(t *testing.T) { t.Parallel(); testArchives(t, open) })
	t.Run("ListenAndPing", func(t *testing.T) { t.Parallel(); testListenAndPing(t, open) })
	t.Run("Triggers", func(t *testing.T) { t.Parallel(); testTriggers(t, open) })
	t.Run("JobContext", func(t *testing.T) { t.Parallel(); testJobContext(t, open) })
	t.Run("Logs", func(t *testing.T) { t.Parallel(); testLogs(t, open) })
	t.Run("Retention", func(t *testing.T) { t.Parallel(); testRetention(t, open) })
	t.Run("Users", func(t *testing.T) { t.Parallel(); testUsers(t, open) })
	t.Run("StateArtifacts", func(t *testing.T) { t.Parallel(); testStateArtifacts(t, open) })
	t.Run("Gates", func(t *testing.T) { t.Parallel(); testGates(t, open) })
	t.Run("AppendSteps", func(t *testing.T) { t.Parallel(); testAppendSteps(t, open) })
}
