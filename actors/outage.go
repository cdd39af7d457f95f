package actors

import (
	"context"
	"time"
)

// Store outages and leases.
//
// A lease runs out in the database's clock whether or not the server could
// record the heartbeats that would have renewed it. While the store is
// unreachable no heartbeat is recorded, so once it answers again every step
// that ran through the outage looks lost although its worker never stopped
// heartbeating. The server treats a store outage like its own restart (see
// Start): from the first sign that the store is unreachable until it has
// extended every running lease by one lease period after the store came
// back, leases are not trusted — an expired lease is not declared lost, and
// heartbeat answers do not tell workers to stop steps they hold. A worker
// that really died meanwhile loses its steps one lease after the outage.

// storeFailed tells the orchestrator that a store call failed. An
// unavailable store (connection lost, shutting down, timeout) puts leases in
// doubt until they are extended after the store is back. The worker API
// calls it when recording a heartbeat failed.
func (o *Orchestrator) storeFailed(err error) {
	if err != nil && isUnavailable(err) && !o.storeDown.Swap(true) {
		o.log.Warn("store unavailable: leases are not expired until it is back", "err", err)
	}
}

// leasesTrusted reports whether expired leases mean lost workers: false from
// a store outage until every running lease has been extended after it.
func (o *Orchestrator) leasesTrusted() bool { return !o.storeDown.Load() }

// watchStore runs until Stop: every lease/5 (the heartbeat period) it pings
// the store, to notice an outage even when no other call ran into it; after
// an outage it extends every running lease, then trusts leases again.
//
// Every lease period it also sweeps the store for expired leases and hands
// them to their JobActors. StepActors watch the leases of the steps their
// server claimed or handed off; the sweep is the safety net for a step no
// actor watches — a claim whose commit succeeded while its answer from the
// database was lost, a job another server gave up on.
func (o *Orchestrator) watchStore() {
	every := max(heartbeatPeriod(o.cfg.Lease), 50*time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	for tick := 1; ; tick++ {
		select {
		case <-o.stopped:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), max(o.cfg.Lease/2, time.Second))
		if !o.storeDown.Load() {
			o.storeFailed(o.store.Ping(ctx))
			if tick%5 == 0 && o.leasesTrusted() {
				o.sweepLeases(ctx)
			}
			cancel()
			continue
		}
		n, err := o.store.LeasesExtendAll(ctx, o.cfg.Lease)
		cancel()
		if err != nil {
			continue
		}
		o.storeDown.Store(false)
		o.log.Info("store reachable again: running leases extended", "leases_extended", n)
		o.Wake()
	}
}

// sweepLeases sends an expired-lease event for each running step whose lease
// ran out; the JobActor fences it against the stored attempt and lease, so a
// lease renewed or a step ended meanwhile is left alone.
func (o *Orchestrator) sweepLeases(ctx context.Context) {
	refs, err := o.store.LeasesExpired(ctx, 1000)
	if err != nil {
		o.storeFailed(err)
		return
	}
	for _, r := range refs {
		o.root.Send(o.orch, &routed{jobID: r.JobID, msg: &jobEvent{ev: evLeaseExpired{step: r.Step, attempt: r.Attempt}}})
	}
}
