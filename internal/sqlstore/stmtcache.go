package sqlstore

import (
	"context"
	"database/sql"
	"sync"
	"time"
)

// stmtCache keeps one prepared statement per query text. The SQLite driver
// compiles every statement from scratch, and on the hot paths (checking a
// token's session, rotating a refresh token) compiling costs about as much as
// running: a profile of GET /users/me spent a quarter of its CPU in SQLite's
// parser. database/sql prepares a cached statement lazily on each pooled
// connection and inside a transaction reuses the one of its connection.
// PostgreSQL needs none of this: pgx caches prepared statements per
// connection itself.
type stmtCache struct {
	db      *sql.DB
	mu      sync.RWMutex
	m       map[string]*sql.Stmt
	pending map[string]bool // being prepared in the background
}

// stmtCacheMax bounds the cache. The query texts are constants of this
// package, but a few are built (IN lists of bulk actions, list filters), and
// those beyond the bound simply run unprepared.
const stmtCacheMax = 256

func newStmtCache(db *sql.DB) *stmtCache {
	return &stmtCache{db: db, m: map[string]*sql.Stmt{}, pending: map[string]bool{}}
}

// get returns the prepared statement for query, or nil when it cannot be
// cached (the caller then runs the query directly).
func (c *stmtCache) get(ctx context.Context, query string) *sql.Stmt {
	c.mu.RLock()
	st, ok := c.m[query]
	full := len(c.m) >= stmtCacheMax
	c.mu.RUnlock()
	if ok || full {
		return st
	}
	st, err := c.db.PrepareContext(ctx, query)
	if err != nil {
		return nil // the direct call reports the error
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev, ok := c.m[query]; ok {
		_ = st.Close()
		return prev
	}
	c.m[query] = st
	return st
}

// lookup returns the cached statement for query without preparing one. A
// transaction uses it: it holds a pooled connection, and preparing takes a
// second one, which under load may never come (every other connection
// waiting for the write lock this transaction holds). A missing statement is
// prepared in the background for the next time.
func (c *stmtCache) lookup(query string) *sql.Stmt {
	c.mu.RLock()
	st, ok := c.m[query]
	skip := ok || c.pending[query] || len(c.m) >= stmtCacheMax
	c.mu.RUnlock()
	if skip {
		return st
	}
	c.mu.Lock()
	if c.pending[query] {
		c.mu.Unlock()
		return nil
	}
	c.pending[query] = true
	c.mu.Unlock()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c.get(ctx, query)
		c.mu.Lock()
		delete(c.pending, query)
		c.mu.Unlock()
	}()
	return nil
}

func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for q, st := range c.m {
		_ = st.Close()
		delete(c.m, q)
	}
}

// cachedDB is a querier over the pool that runs queries as cached
// statements, and statements that write one at a time (writeGate).
type cachedDB struct {
	*sql.DB
	cache  *stmtCache
	writes writeGate
}

func (d cachedDB) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	release, err := d.writes.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	if st := d.cache.get(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return d.DB.ExecContext(ctx, query, args...)
}

func (d cachedDB) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := d.cache.get(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return d.DB.QueryContext(ctx, query, args...)
}

func (d cachedDB) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := d.cache.get(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return d.DB.QueryRowContext(ctx, query, args...)
}

// cachedTx is a querier over a transaction: the cached statement bound to
// the transaction's connection (closed with the transaction).
type cachedTx struct {
	*sql.Tx
	cache *stmtCache
}

func (t cachedTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := t.cache.lookup(query); st != nil {
		return t.Tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return t.Tx.ExecContext(ctx, query, args...)
}

func (t cachedTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := t.cache.lookup(query); st != nil {
		return t.Tx.StmtContext(ctx, st).QueryContext(ctx, args...)
	}
	return t.Tx.QueryContext(ctx, query, args...)
}

func (t cachedTx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := t.cache.lookup(query); st != nil {
		return t.Tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return t.Tx.QueryRowContext(ctx, query, args...)
}
