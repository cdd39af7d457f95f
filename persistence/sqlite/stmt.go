package sqlite

import (
	"context"
	"database/sql"
	"sync"
)

// maxPrepared bounds the statements a pool keeps prepared: the store's
// statements are a few dozen texts; the rest (a list of ids of varying
// length, say) run unprepared.
const maxPrepared = 256

// stmtCache keeps the statements transactions run on one pool prepared.
// SQLite compiles a statement at every prepare, and a write of job_steps
// compiles the row triggers of migration 00210 with it: preparing was a
// quarter of the CPU of a claim and a completion. A text is prepared the
// first time a transaction runs it, once the transaction is over (the
// write pool's only connection is free then), and from then on every
// transaction runs the prepared statement on its own connection
// (sql.Tx.StmtContext, which prepares it there once if needed).
type stmtCache struct {
	db     *sql.DB
	mu     sync.Mutex
	ready  map[string]*sql.Stmt // nil: failed to prepare, stays unprepared
	wanted map[string]bool
	closed bool
}

func newStmtCache(db *sql.DB) *stmtCache {
	return &stmtCache{db: db, ready: map[string]*sql.Stmt{}, wanted: map[string]bool{}}
}

// get returns the prepared statement of query, or nil (and then notes it
// for prepareWanted).
func (c *stmtCache) get(query string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, ok := c.ready[query]
	if !ok && !c.closed && len(c.ready)+len(c.wanted) < maxPrepared {
		c.wanted[query] = true
	}
	return st
}

// prepareWanted prepares the statements transactions ran unprepared. The
// caller holds no transaction of the pool: on the write pool, preparing
// waits for its only connection.
func (c *stmtCache) prepareWanted(ctx context.Context) {
	c.mu.Lock()
	if len(c.wanted) == 0 || c.closed {
		c.mu.Unlock()
		return
	}
	queries := make([]string, 0, len(c.wanted))
	for q := range c.wanted {
		queries = append(queries, q)
	}
	clear(c.wanted)
	c.mu.Unlock()
	for _, q := range queries {
		st, err := c.db.PrepareContext(context.WithoutCancel(ctx), q)
		c.mu.Lock()
		switch {
		case c.closed:
			if st != nil {
				_ = st.Close()
			}
		case err != nil:
			c.ready[q] = nil // a closed pool, or a statement the transaction also failed on
		default:
			c.ready[q] = st
		}
		c.mu.Unlock()
	}
}

// close closes the prepared statements; get returns nil from now on.
func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for q, st := range c.ready {
		if st != nil {
			_ = st.Close()
		}
		delete(c.ready, q)
	}
}

// txn is a transaction of the store whose statements run prepared once
// prepared (stmtCache). A statement's rows must be read to their end or
// closed before the same text runs again in the transaction, which shares
// one prepared statement; every query of the store is read to its end
// before its next statement.
type txn struct {
	*sql.Tx
	stmts *stmtCache
}

func (t *txn) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := t.stmts.get(query); st != nil {
		return t.Tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return t.Tx.ExecContext(ctx, query, args...)
}

func (t *txn) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := t.stmts.get(query); st != nil {
		return t.Tx.StmtContext(ctx, st).QueryContext(ctx, args...)
	}
	return t.Tx.QueryContext(ctx, query, args...)
}

func (t *txn) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := t.stmts.get(query); st != nil {
		return t.Tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return t.Tx.QueryRowContext(ctx, query, args...)
}
