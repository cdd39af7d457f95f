// Package retention deletes what is older than the configured ages
// (docs/operations/retention.md): terminal jobs with their steps, attempts,
// logs and artifacts, trigger ticks (each trigger's latest stays), and
// workers long gone. It runs in small batches, each its own short
// transaction that skips locked rows, with a pause between batches, so a
// large backlog never holds up claims; several servers pruning at once
// share the work.
//
// It must not contain SQL (the store's JobsPrune and friends do that) or
// know where logs live: what lives outside the jobs' tables is deleted by
// hooks the server wires in.
package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/stroem/stroem/persistence"
)

// Config is the `retention` section of the server config, with the
// upstream's keys. Zero ages disable that kind of pruning; retention is off
// unless one is set.
type Config struct {
	// WorkerHours deletes workers without a heartbeat for this long.
	WorkerHours int `yaml:"worker_hours"`
	// JobDays deletes terminal jobs (and their logs, artifacts and trigger
	// ticks) that ended this long ago.
	JobDays int `yaml:"job_days"`
	// IntervalSecs is how often a pass runs (default 3600).
	IntervalSecs int `yaml:"interval_secs"`
	// BatchSize is how many jobs one transaction deletes (default 500).
	BatchSize int `yaml:"batch_size"`
	// BatchPauseMS is the pause between two batches (default 20 ms), which
	// leaves the database to other work during a long prune.
	BatchPauseMS int `yaml:"batch_pause_ms"`
}

// Enabled reports whether any age is set.
func (c Config) Enabled() bool { return c.WorkerHours > 0 || c.JobDays > 0 }

// WithDefaults fills the zero fields.
func (c Config) WithDefaults() Config {
	if c.IntervalSecs == 0 {
		c.IntervalSecs = 3600
	}
	if c.BatchSize == 0 {
		c.BatchSize = persistence.DefaultPruneLimit
	}
	if c.BatchPauseMS == 0 {
		c.BatchPauseMS = 20
	}
	return c
}

// Validate checks the section (after WithDefaults).
func (c Config) Validate() error {
	switch {
	case c.WorkerHours < 0:
		return fmt.Errorf("key retention.worker_hours: %d, want 0 (off) or more", c.WorkerHours)
	case c.JobDays < 0:
		return fmt.Errorf("key retention.job_days: %d, want 0 (off) or more", c.JobDays)
	case c.IntervalSecs < 1:
		return fmt.Errorf("key retention.interval_secs: %d, want at least 1", c.IntervalSecs)
	case c.BatchSize < 1 || c.BatchSize > 10000:
		return fmt.Errorf("key retention.batch_size: %d, want 1 to 10000", c.BatchSize)
	case c.BatchPauseMS < 0:
		return fmt.Errorf("key retention.batch_pause_ms: %d, want 0 or more", c.BatchPauseMS)
	}
	return nil
}

// Store is what retention needs from the store.
type Store interface {
	JobsPrune(ctx context.Context, p persistence.PruneParams) (persistence.PruneResult, error)
	TriggerTicksPrune(ctx context.Context, before time.Time, limit int, dryRun bool) (int64, error)
	WorkersPrune(ctx context.Context, before time.Time, dryRun bool) (int64, error)
}

// Hook deletes what a job keeps outside the jobs' tables (its log file,
// its artifacts) after the job's rows are gone. An error is logged and
// retention goes on: the rows are already deleted, so the hook must
// tolerate ids it has nothing for.
type Hook func(ctx context.Context, jobIDs []string) error

// Report says what a pass deleted, or would delete for a dry run.
type Report struct {
	Jobs, Steps, TriggerTicks, Workers int64
	// JobsBefore and WorkersBefore are the cut-offs used (zero: off).
	JobsBefore, WorkersBefore time.Time
	DryRun                    bool
}

// Service runs retention passes every IntervalSecs until Stop.
type Service struct {
	cfg     Config
	store   Store
	hooks   []Hook
	log     *slog.Logger
	now     func() time.Time
	deleted func(kind string, n int64)

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// New returns a Service; deleted (may be nil) is told how many rows of each
// kind went (metrics).
func New(cfg Config, store Store, hooks []Hook, deleted func(kind string, n int64), log *slog.Logger) *Service {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if deleted == nil {
		deleted = func(string, int64) {}
	}
	return &Service{cfg: cfg.WithDefaults(), store: store, hooks: hooks, log: log, now: time.Now, deleted: deleted}
}

// Start runs a pass now and then every interval, in the background; it does
// nothing when retention is disabled or already started.
func (s *Service) Start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.cfg.Enabled() || s.cancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel, s.done = cancel, make(chan struct{})
	go s.loop(ctx, s.done)
}

// Stop ends the background passes (a batch in flight is cancelled) and
// waits for them. Safe to call twice, and without Start.
func (s *Service) Stop() {
	s.mu.Lock()
	cancel, done := s.cancel, s.done
	s.cancel = nil
	s.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

func (s *Service) loop(ctx context.Context, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(time.Duration(s.cfg.IntervalSecs) * time.Second)
	defer t.Stop()
	for {
		r, err := s.Run(ctx, false)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			s.log.Error("retention pass failed", "err", err)
		case r.Jobs+r.TriggerTicks+r.Workers > 0:
			s.log.Info("retention pass", "jobs", r.Jobs, "steps", r.Steps, "trigger_ticks", r.TriggerTicks, "workers", r.Workers)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Run makes one pass: batch after batch until nothing older than the
// cut-offs is left (or ctx ends). A dry run deletes nothing and reports
// what a pass would delete now.
func (s *Service) Run(ctx context.Context, dryRun bool) (Report, error) {
	now := s.now()
	r := Report{DryRun: dryRun}
	var errs []error
	if s.cfg.JobDays > 0 {
		r.JobsBefore = now.Add(-time.Duration(s.cfg.JobDays) * 24 * time.Hour)
		if err := s.jobs(ctx, &r); err != nil {
			errs = append(errs, err)
		}
		if err := s.ticks(ctx, &r); err != nil {
			errs = append(errs, err)
		}
	}
	if s.cfg.WorkerHours > 0 {
		r.WorkersBefore = now.Add(-time.Duration(s.cfg.WorkerHours) * time.Hour)
		n, err := s.store.WorkersPrune(ctx, r.WorkersBefore, dryRun)
		if err != nil {
			errs = append(errs, err)
		}
		r.Workers = n
		if !dryRun {
			s.deleted("workers", n)
		}
	}
	return r, errors.Join(errs...)
}

func (s *Service) jobs(ctx context.Context, r *Report) error {
	p := persistence.PruneParams{Before: r.JobsBefore, Limit: s.cfg.BatchSize, DryRun: r.DryRun}
	for {
		start := time.Now()
		res, err := s.store.JobsPrune(ctx, p)
		if err != nil {
			return err
		}
		took := time.Since(start)
		r.Jobs += res.Jobs
		r.Steps += res.Steps
		if r.DryRun {
			return nil
		}
		s.deleted("jobs", res.Jobs)
		s.deleted("steps", res.Steps)
		for _, h := range s.hooks {
			if err := h(ctx, res.JobIDs); err != nil {
				s.log.Warn("retention: deleting job data outside the database failed", "jobs", len(res.JobIDs), "err", err)
			}
		}
		if res.Jobs < int64(p.Limit) {
			return nil
		}
		if err := s.pause(ctx, took); err != nil {
			return err
		}
	}
}

func (s *Service) ticks(ctx context.Context, r *Report) error {
	for {
		start := time.Now()
		n, err := s.store.TriggerTicksPrune(ctx, r.JobsBefore, s.cfg.BatchSize, r.DryRun)
		if err != nil {
			return err
		}
		took := time.Since(start)
		r.TriggerTicks += n
		if r.DryRun {
			return nil
		}
		s.deleted("trigger_ticks", n)
		if n < int64(s.cfg.BatchSize) {
			return nil
		}
		if err := s.pause(ctx, took); err != nil {
			return err
		}
	}
}

// pause waits between two batches: batch_pause_ms, or as long as the
// batch took if that is longer, so a prune never has the database more
// than half the time however slow its batches are (a busy or small
// machine): claims and transitions get the rest.
func (s *Service) pause(ctx context.Context, took time.Duration) error {
	t := time.NewTimer(max(time.Duration(s.cfg.BatchPauseMS)*time.Millisecond, took))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
