package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/pressly/goose/v3"
	sqlite3 "modernc.org/sqlite"
	sqlite3lib "modernc.org/sqlite/lib"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// busyTimeout is how long a statement waits for a lock another process
// holds (only a tool opening the file behind the store's back can, given
// the process lock) before failing with CodeUnavailable.
const busyTimeout = 10 * time.Second

// stepCacheJobs bounds the jobs whose steps JobUpdate keeps in memory.
const stepCacheJobs = 512

// clockTick is step_clock's counter, and stampVersion sets a job_steps
// row's version to it: the statements of this store that write step rows
// often stamp them themselves, which spares each row the second write the
// triggers of migration 00210 would make.
const (
	clockTick    = `(SELECT tick FROM step_clock)`
	stampVersion = `version = ` + clockTick
)

var _ persistence.Store = (*Store)(nil)

// Store is Strøm's embedded storage on one SQLite file. It is safe for
// concurrent use by one process; see the package comment for how it maps
// PostgreSQL's guarantees.
type Store struct {
	write *sql.DB // exactly one connection; every write, BEGIN IMMEDIATE
	read  *sql.DB // query-only connections for reads
	log   *slog.Logger
	path  string

	// writeStmts and readStmts keep the statements the transactions of
	// each pool run prepared.
	writeStmts, readStmts *stmtCache

	unlock func()
	closed atomic.Bool
	once   sync.Once

	// now is the store's clock (the Go clock, UTC, without a monotonic
	// reading so stored times compare equal to what was written).
	now func() time.Time

	// snapshots caches the ids of task snapshots known to be stored, so
	// JobInsert writes a snapshot's body once per process.
	snapshots persistence.Snapshots

	// origin names this store in notification payloads (see Origin).
	origin string

	// steps keeps the steps of recently updated jobs, so that JobUpdate
	// reads only the rows written since (migration 00210).
	steps *persistence.StepCache
}

// Origin is the identity this store would put in front of its
// notifications' payloads. An embedded store has one process and Listen
// delivers nothing but the initial "", so it only has to be unique.
func (s *Store) Origin() string { return s.origin }

// Open opens (creating it if needed) the database file at path, migrates
// it, and returns the store. The file's folder is created too. A path in
// use by another process is a CodeUnavailable error.
func Open(ctx context.Context, path string, log *slog.Logger) (_ *Store, err error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if path == "" {
		return nil, stroem.Errorf(stroem.CodeInvalid, "sqlite store: empty database path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite store %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return nil, fmt.Errorf("sqlite store %s: %w", abs, err)
	}
	unlock, err := lockFile(abs + ".lock")
	if err != nil {
		return nil, err
	}
	s := &Store{log: log, path: abs, unlock: unlock, origin: uuid.NewString(), steps: persistence.NewStepCache(stepCacheJobs), now: func() time.Time { return time.Now().UTC() }}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()

	if err := migrate(ctx, dsn(abs, true), log); err != nil {
		return nil, fmt.Errorf("sqlite store %s: migrate: %w", abs, interpretError(err))
	}
	if s.write, err = sql.Open("sqlite", dsn(abs, true)); err != nil {
		return nil, fmt.Errorf("sqlite store %s: %w", abs, err)
	}
	s.write.SetMaxOpenConns(1)
	s.write.SetMaxIdleConns(1)
	s.write.SetConnMaxLifetime(0)
	s.write.SetConnMaxIdleTime(0)
	if s.read, err = sql.Open("sqlite", dsn(abs, false)); err != nil {
		return nil, fmt.Errorf("sqlite store %s: %w", abs, err)
	}
	s.writeStmts, s.readStmts = newStmtCache(s.write), newStmtCache(s.read)
	readers := max(4, runtime.NumCPU())
	s.read.SetMaxOpenConns(readers)
	s.read.SetMaxIdleConns(readers)
	if err := s.write.PingContext(ctx); err != nil {
		return nil, fmt.Errorf("sqlite store %s: %w", abs, interpretError(err))
	}
	if err := s.read.PingContext(ctx); err != nil {
		return nil, fmt.Errorf("sqlite store %s: %w", abs, interpretError(err))
	}
	return s, nil
}

// dsn is the modernc.org/sqlite data source name of a connection: a file:
// URI (so any character of the path is safe) with the pragmas every
// connection sets. The writer takes the write lock at BEGIN and fsyncs
// every commit; readers are query-only.
func dsn(path string, writer bool) string {
	q := url.Values{}
	q.Set("_busy_timeout", fmt.Sprint(busyTimeout.Milliseconds()))
	q.Set("_foreign_keys", "on")
	if writer {
		q.Set("_journal_mode", "WAL")
		q.Set("_synchronous", "FULL")
		q.Set("_txlock", "immediate")
	} else {
		q.Set("_query_only", "on")
	}
	return (&url.URL{Scheme: "file", OmitHost: true, Path: path, RawQuery: q.Encode()}).String()
}

// migrate applies the embedded migrations on a connection of its own
// (goose closes the database it is given).
func migrate(ctx context.Context, dsn string, log *slog.Logger) error {
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return err
	}
	db.SetMaxOpenConns(1)
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		db.Close()
		return err
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, sub, goose.WithSlog(log))
	if err != nil {
		db.Close()
		return err
	}
	defer p.Close()
	res, err := p.Up(ctx)
	for _, r := range res {
		if r.Error == nil {
			log.Info("migration applied", "migration", r.Source.Path, "duration", r.Duration)
		}
	}
	return err
}

// Close closes the database and releases the process lock. Listen loops
// should have ended first. Safe to call twice.
func (s *Store) Close() {
	s.once.Do(func() {
		s.closed.Store(true)
		for _, c := range []*stmtCache{s.readStmts, s.writeStmts} {
			if c != nil {
				c.close()
			}
		}
		if s.read != nil {
			_ = s.read.Close()
		}
		if s.write != nil {
			// Closing the last connection checkpoints the WAL into the file.
			if err := s.write.Close(); err != nil {
				s.log.Warn("close sqlite store", "path", s.path, "err", err)
			}
		}
		if s.unlock != nil {
			s.unlock()
		}
	})
}

// Path returns the database file's absolute path.
func (s *Store) Path() string { return s.path }

// Ping checks that the database answers (used by /readyz).
func (s *Store) Ping(ctx context.Context) error {
	if s.closed.Load() {
		return s.closedError()
	}
	var one int
	return interpretError(s.read.QueryRowContext(ctx, `SELECT 1`).Scan(&one))
}

// Listen reports "" once and then blocks until ctx is done, returning
// ctx.Err(). In PostgreSQL it delivers the NOTIFYs of other server
// processes; an embedded store has one process, whose orchestrator wakes
// its own dispatcher whenever steps become ready, so there is nothing
// to hear. The initial "" mirrors the PostgreSQL store's call after every
// (re)connect, which tells the consumer to re-scan.
func (s *Store) Listen(ctx context.Context, channel string, onNotify func(payload string)) error {
	onNotify("")
	<-ctx.Done()
	return ctx.Err()
}

// querier is what both *sql.DB and *sql.Tx offer.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// writeTx runs fn in a write transaction (BEGIN IMMEDIATE on the single
// writer connection: no other write runs meanwhile) and commits it. now
// is read once the write lock is held, so times written by successive
// transactions never go backwards relative to their commit order.
func (s *Store) writeTx(ctx context.Context, fn func(tx *txn, now time.Time) error) error {
	if s.closed.Load() {
		return s.closedError()
	}
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer s.writeStmts.prepareWanted(ctx) // after the rollback below: the connection is free
	defer func() { _ = tx.Rollback() }()  // no-op after Commit
	if err := fn(&txn{tx, s.writeStmts}, s.now()); err != nil {
		return err
	}
	return tx.Commit()
}

// readTx runs fn in a read transaction: one consistent snapshot of the
// database for all its statements.
func (s *Store) readTx(ctx context.Context, fn func(tx *txn) error) error {
	if s.closed.Load() {
		return s.closedError()
	}
	tx, err := s.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	defer s.readStmts.prepareWanted(ctx)
	defer func() { _ = tx.Rollback() }()
	if err := fn(&txn{tx, s.readStmts}); err != nil {
		return err
	}
	return tx.Commit()
}

// writeCount runs exec, one statement, in a write transaction and returns
// how many rows it changed.
func (s *Store) writeCount(ctx context.Context, exec func(tx *txn, now time.Time) (sql.Result, error)) (int64, error) {
	var n int64
	err := s.writeTx(ctx, func(tx *txn, now time.Time) error {
		r, err := exec(tx, now)
		if err != nil {
			return err
		}
		n, err = r.RowsAffected()
		return err
	})
	return n, err
}

// count reads one count(*) with the read pool.
func (s *Store) count(ctx context.Context, query string, args ...any) (int64, error) {
	var n int64
	err := s.queryRow(ctx, query, args...).Scan(&n)
	return n, err
}

// query runs a query with the read pool; once the store is closed it
// fails with the store's closed error.
func (s *Store) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	db, err := s.reader()
	if err != nil {
		return nil, err
	}
	return db.QueryContext(ctx, query, args...)
}

// queryRow runs a query of one row with the read pool; once the store is
// closed, the row's Scan fails with the store's closed error.
func (s *Store) queryRow(ctx context.Context, query string, args ...any) rowScanner {
	db, err := s.reader()
	if err != nil {
		return errRow{err}
	}
	return db.QueryRowContext(ctx, query, args...)
}

// collect reads every row of rows, the result of a query (err its error),
// with scan, in order, and closes them; never nil.
func collect[T any](rows *sql.Rows, err error, scan func(rowScanner) (T, error)) ([]T, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return persistence.CollectRows(rows, func() (T, error) { return scan(rows) })
}

// column collects the one text column of a query's rows.
func column(rows *sql.Rows, err error) ([]string, error) {
	return collect(rows, err, func(r rowScanner) (v string, err error) { return v, r.Scan(&v) })
}

// errRow is a row that could not be read: its Scan returns the error.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// reader returns the read pool, or an error once the store is closed.
func (s *Store) reader() (*sql.DB, error) {
	if s.closed.Load() {
		return nil, s.closedError()
	}
	return s.read, nil
}

func (s *Store) closedError() error {
	return stroem.Errorf(stroem.CodeUnavailable, "database unavailable: the store %s is closed", s.path)
}

// errs reads a row's error (errs.Row) and wraps a method's (errs.Wrap)
// with interpretError.
var errs = persistence.Errors{NoRows: sql.ErrNoRows, Interpret: interpretError}

// interpretError is the one place where database errors become domain
// errors: no rows → CodeNotFound; a uniqueness violation → CodeConflict;
// a locked, full, unreadable or closed database → CodeUnavailable (the
// API answers 503). Errors that already carry a code pass through
// unchanged; anything else is returned as is (an internal error).
func interpretError(err error) error {
	if err, ok := persistence.CodedError(err, sql.ErrNoRows); ok {
		return err
	}
	var se *sqlite3.Error
	if errors.As(err, &se) {
		switch code := se.Code(); {
		case code == sqlite3lib.SQLITE_CONSTRAINT_PRIMARYKEY, code == sqlite3lib.SQLITE_CONSTRAINT_UNIQUE:
			return stroem.Errorf(stroem.CodeConflict, "already exists: %w", err)
		case unavailableCode(code & 0xff):
			return stroem.Errorf(stroem.CodeUnavailable, "database unavailable: %w", err)
		}
		return err
	}
	if errors.Is(err, sql.ErrConnDone) || errors.Is(err, context.DeadlineExceeded) {
		return stroem.Errorf(stroem.CodeUnavailable, "database unavailable: %w", err)
	}
	return err
}

// unavailableCode reports primary result codes that mean "the database
// cannot answer now" rather than "this request is wrong".
func unavailableCode(primary int) bool {
	switch primary {
	case sqlite3lib.SQLITE_BUSY, sqlite3lib.SQLITE_LOCKED, sqlite3lib.SQLITE_IOERR, sqlite3lib.SQLITE_FULL,
		sqlite3lib.SQLITE_CANTOPEN, sqlite3lib.SQLITE_READONLY, sqlite3lib.SQLITE_NOMEM, sqlite3lib.SQLITE_PROTOCOL:
		return true
	}
	return false
}

// notFound returns the CodeNotFound error for a missing thing.
func notFound(format string, args ...any) error {
	return stroem.Errorf(stroem.CodeNotFound, format, args...)
}

// canonicalUUID and canonicalWorker: see persistence.CanonicalUUID and
// persistence.CanonicalWorker (the PostgreSQL store canonicalizes the same
// way).
var (
	canonicalUUID   = persistence.CanonicalUUID
	canonicalWorker = persistence.CanonicalWorker
)

// Times are stored as INTEGER Unix nanoseconds, UTC.

func nanos(t time.Time) int64 { return t.UnixNano() }

// nanosPtr returns nil for a nil time (SQL NULL).
func nanosPtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

// timeCol scans a nullable time column into a *time.Time.
type timeCol struct{ dst **time.Time }

func (c timeCol) Scan(v any) error {
	switch x := v.(type) {
	case nil:
		*c.dst = nil
	case int64:
		t := fromNanos(x)
		*c.dst = &t
	default:
		return fmt.Errorf("time column: unexpected %T", v)
	}
	return nil
}

// timeVal scans a NOT NULL time column.
type timeVal struct{ dst *time.Time }

func (c timeVal) Scan(v any) error {
	x, ok := v.(int64)
	if !ok {
		return fmt.Errorf("time column: unexpected %T", v)
	}
	*c.dst = fromNanos(x)
	return nil
}
