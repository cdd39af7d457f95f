package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/jackc/puddle/v2"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/migrations"
	"github.com/stroem/stroem/persistence"
)

// Pool sizing: the orchestrator runs many short transactions concurrently
// (claims, completions, heartbeats, reads for the API), so the pgx default of
// max(4, NumCPU) is too small on small machines. A pool_max_conns in the URL
// wins.
const (
	defaultMaxConns       = 20
	defaultConnectTimeout = 5 * time.Second
	// maxTxAttempts bounds the retries of a transaction PostgreSQL aborted
	// with a deadlock or a serialization failure.
	maxTxAttempts = 10
	// stepCacheJobs bounds the jobs whose steps JobUpdate keeps in memory.
	stepCacheJobs = 512
)

var _ persistence.Store = (*Store)(nil)

// Store is Strøm's PostgreSQL storage: every SQL statement of the system runs
// here. It is safe for concurrent use. Consumers declare the small interface
// of the methods they need rather than depending on *Store.
type Store struct {
	pool *pgxpool.Pool
	log  *slog.Logger
	host string // host:port, for error messages

	// snapshots caches the ids of task snapshots known to be stored, so
	// JobInsert sends a snapshot's body once per process, not once per job.
	snapshots persistence.Snapshots

	// steps caches recently updated jobs' steps for JobUpdate (see loadState).
	steps *persistence.StepCache
	// clock estimates the database's time for updates that do not read
	// first, and unread counts them (see jobUpdateUnread).
	clock  dbClock
	unread unreadStats

	// starts groups concurrent StepStarts into one statement.
	starts starts

	// origin identifies this Store in its notifications, so a server can
	// tell its own (whose waiters it already woke) from other servers'.
	origin string
}

// Origin is the identity this Store puts in front of its notifications'
// payloads ("<origin>:<job id>").
func (s *Store) Origin() string { return s.origin }

func (s *Store) notifyPayload(jobID string) string { return s.origin + ":" + jobID }

// Open connects to the database at url and checks that it answers. It fails
// fast, with a CodeUnavailable error naming the host, when PostgreSQL cannot
// be reached. It does not migrate: call Migrate.
func Open(ctx context.Context, url string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// The parse error may quote the URL, password included: do not wrap it.
		return nil, stroem.Errorf(stroem.CodeInvalid, "invalid database URL: %s", redactParseError(err))
	}
	if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = defaultMaxConns
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = defaultConnectTimeout
	}
	host := fmt.Sprintf("%s:%d", cfg.ConnConfig.Host, cfg.ConnConfig.Port)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, stroem.Errorf(stroem.CodeUnavailable, "database unavailable: cannot connect to PostgreSQL at %s: %w", host, err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, stroem.Errorf(stroem.CodeUnavailable, "database unavailable: cannot connect to PostgreSQL at %s: %w", host, err)
	}
	return &Store{pool: pool, log: log, host: host, origin: uuid.NewString(), steps: persistence.NewStepCache(stepCacheJobs),
		clock: dbClock{slack: unreadClockSlack}}, nil
}

// redactParseError keeps a URL parse error useful without echoing the URL.
func redactParseError(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 && strings.Contains(msg, "://") {
		return msg[i+2:]
	}
	return msg
}

// Close closes every connection. Listen loops must have ended first (their
// context cancelled); they use their own connections.
func (s *Store) Close() { s.pool.Close() }

// Pool returns the underlying pool, for tests and benchmarks only.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Ping checks that the database answers (used by /readyz).
func (s *Store) Ping(ctx context.Context) error {
	return interpretError(s.pool.Ping(ctx))
}

// MigrationState is one migration as `stroem migrate status` shows it.
type MigrationState struct {
	Version   int64
	Name      string // file name, e.g. 00001_init.sql
	Applied   bool
	AppliedAt time.Time // zero when pending
}

// provider builds a goose provider over the pool. The session locker makes
// concurrent migrations from several servers safe: one migrates while the
// others wait for the advisory lock, then find nothing left to do.
func (s *Store) provider() (*goose.Provider, func(), error) {
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
	if err != nil {
		return nil, nil, err
	}
	db := stdlib.OpenDBFromPool(s.pool) // closing it leaves the pool open
	p, err := goose.NewProvider(goose.DialectPostgres, db, migrations.FS(),
		goose.WithSessionLocker(locker), goose.WithSlog(s.log))
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return p, func() { _ = p.Close() }, nil
}

// withProvider runs fn with a goose provider (see provider) and closes it.
// An error, building the provider or of fn, is wrapped with what.
func (s *Store) withProvider(what string, fn func(p *goose.Provider) error) error {
	p, done, err := s.provider()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer done()
	if err := fn(p); err != nil {
		return fmt.Errorf("%s: %w", what, interpretError(err))
	}
	return nil
}

// Migrate applies every pending migration; a no-op when there is none. Safe
// when several servers start at once.
func (s *Store) Migrate(ctx context.Context) error {
	return s.withProvider("migrate", func(p *goose.Provider) error {
		res, err := p.Up(ctx)
		if err != nil {
			return err
		}
		for _, r := range res {
			s.log.Info("migration applied", "migration", r.Source.Path, "duration", r.Duration)
		}
		return nil
	})
}

// MigrationStatus lists every known migration and whether it is applied.
func (s *Store) MigrationStatus(ctx context.Context) ([]MigrationState, error) {
	var out []MigrationState
	err := s.withProvider("migration status", func(p *goose.Provider) error {
		list, err := p.Status(ctx)
		out = make([]MigrationState, 0, len(list))
		for _, m := range list {
			out = append(out, MigrationState{
				Version:   m.Source.Version,
				Name:      m.Source.Path,
				Applied:   m.State == goose.StateApplied,
				AppliedAt: m.AppliedAt,
			})
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// MigrationsPending reports whether some migration is not applied yet (for
// /readyz: a server is ready only on a fully migrated database).
func (s *Store) MigrationsPending(ctx context.Context) (bool, error) {
	var pending bool
	err := s.withProvider("migration status", func(p *goose.Provider) (err error) {
		pending, err = p.HasPending(ctx)
		return err
	})
	return pending && err == nil, err
}

// inTx runs fn in a transaction and commits it, retrying the whole
// transaction (fn included) when PostgreSQL aborts it with a deadlock or a
// serialization failure. fn must therefore be safe to run again.
func (s *Store) inTx(ctx context.Context, opts pgx.TxOptions, fn func(tx pgx.Tx) error) error {
	var err error
	for attempt := 1; ; attempt++ {
		err = s.tryTx(ctx, opts, fn)
		if err == nil || !retryable(err) || attempt >= maxTxAttempts || ctx.Err() != nil {
			return err
		}
		s.log.Debug("transaction retried", "attempt", attempt, "err", err)
		// A short, growing pause lets the other transaction finish.
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(attempt) * time.Millisecond):
		}
	}
}

func (s *Store) tryTx(ctx context.Context, opts pgx.TxOptions, fn func(tx pgx.Tx) error) error {
	tx, err := s.pool.BeginTx(ctx, opts)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }() // no-op after Commit
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// retry runs a single statement again on a deadlock or serialization failure.
func (s *Store) retry(ctx context.Context, fn func() error) error {
	var err error
	for attempt := 1; ; attempt++ {
		err = fn()
		if err == nil || !retryable(err) || attempt >= maxTxAttempts || ctx.Err() != nil {
			return err
		}
		time.Sleep(time.Duration(attempt) * time.Millisecond)
	}
}

// genericPlans makes the statements after it in its transaction (an
// explicit one, or the implicit one of a batch) use their prepared
// statement's generic plan. PostgreSQL otherwise plans a statement that
// unnests array parameters again at every execution: the generic plan's
// estimate (ten elements per array) always looks dearer than a custom
// plan for the one or two elements actually sent, so it is never chosen.
// Planning the acknowledgement's statement cost about 0.3 ms, four times
// its execution; a transition's step write is bigger still.
const genericPlans = "SET LOCAL plan_cache_mode = force_generic_plan"

// keyedPlans is genericPlans for transactions whose statements all find
// their rows by key (a JobUpdate's, the acknowledgements'): it also rules
// out sequential and bitmap scans. A generic plan is made once per
// connection and kept: made while job_steps is small (a new database) it
// could read the whole table where an index finds the rows, and keep doing
// so once the table is large. Without bitmap scans the step write also
// meets its rows in (job_id, position) index order, the order claims,
// acknowledgements and heartbeats lock in, whatever join the plan uses
// (see writeStepsSQL).
const keyedPlans = `SELECT ` + keyedPlansColumn

// keyedPlansColumn is keyedPlans as a column of another statement's row
// (text, to be ignored): the statements after it are planned under it.
const keyedPlansColumn = `concat(set_config('plan_cache_mode', 'force_generic_plan', true),
	set_config('enable_seqscan', 'off', true), set_config('enable_bitmapscan', 'off', true))`

// queryKeyed runs sql under keyedPlans, in one round trip, and calls each
// for each row (scanned by each).
func (s *Store) queryKeyed(ctx context.Context, each func(pgx.Rows) error, sql string, args ...any) error {
	b := &pgx.Batch{}
	b.Queue(keyedPlans)
	b.Queue(sql, args...)
	br := s.pool.SendBatch(ctx, b)
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		return err
	}
	rows, err := br.Query()
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := each(rows); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	rows.Close()
	return br.Close()
}

// retryable reports a deadlock (40P01) or serialization failure (40001).
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, new(persistence.StaleCacheError)) {
		return true
	}
	// 40P01 deadlock, 40001 serialization failure, ST409 a step moved
	// during a JobUpdate (stroem_step_moved), ST410/ST411 a JobUpdate that
	// did not read found the kept job out of date (stroem_job_unread_stale).
	return errors.As(err, &pgErr) && (pgErr.Code == "40P01" || pgErr.Code == "40001" || pgErr.Code == "ST409" ||
		pgErr.Code == "ST410" || pgErr.Code == "ST411")
}

// errs reads a row's error (errs.Row) and wraps a method's (errs.Wrap)
// with interpretError.
var errs = persistence.Errors{NoRows: pgx.ErrNoRows, Interpret: interpretError}

// interpretError is the one place where database errors become domain
// errors: no rows → CodeNotFound, PostgreSQL unreachable or shutting down →
// CodeUnavailable (the API answers 503), unique violations → CodeConflict.
// Errors that already carry a code pass through unchanged; anything else is
// returned as is (an internal error).
func interpretError(err error) error {
	if err, ok := persistence.CodedError(err, pgx.ErrNoRows); ok {
		return err
	}
	if unavailable(err) {
		return stroem.Errorf(stroem.CodeUnavailable, "database unavailable: %w", err)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return stroem.Errorf(stroem.CodeConflict, "already exists (%s): %w", pgErr.ConstraintName, err)
	}
	return err
}

// unavailable reports errors that mean "PostgreSQL cannot answer now" rather
// than "this request is wrong".
func unavailable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "08"), // connection exception
			pgErr.Code == "57P01", // admin_shutdown
			pgErr.Code == "57P02", // crash_shutdown
			pgErr.Code == "57P03", // cannot_connect_now
			pgErr.Code == "53300": // too_many_connections
			return true
		}
		return false
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connectErr) ||
		errors.As(err, &netErr) ||
		errors.Is(err, puddle.ErrClosedPool) ||
		errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) ||
		pgconn.Timeout(err)
}

// notFound returns the CodeNotFound error for a missing thing.
func notFound(format string, args ...any) error {
	return stroem.Errorf(stroem.CodeNotFound, format, args...)
}

// validUUID reports whether id parses as a UUID; ids that do not can name no
// row, and must not reach a uuid column (PostgreSQL would reject the query).
func validUUID(id string) bool {
	_, err := uuid.Parse(id)
	return err == nil
}

// canonicalUUID returns id in PostgreSQL's text form (lower case, dashed),
// so ids read back from the database compare equal to the ones given. Worker
// ids stored on steps are text; they are canonicalized the same way when
// they are UUIDs, and kept as given otherwise.
func canonicalUUID(id string) string {
	u, err := uuid.Parse(id)
	if err != nil {
		return id
	}
	return u.String()
}

// rowTo adapts a scan function of one row to pgx.CollectRows.
func rowTo[T any](scan func(pgx.Row) (T, error)) pgx.RowToFunc[T] {
	return func(row pgx.CollectableRow) (T, error) { return scan(row) }
}
