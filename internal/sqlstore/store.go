// Package sqlstore is the only package that speaks SQL. One hand-written
// query set runs on PostgreSQL (pgx) and on SQLite (modernc, pure Go): the
// statements use $N placeholders, which both drivers bind by number, pass
// every timestamp from Go (UTC), and avoid engine-specific syntax; the few
// differences live in dialect.go and the two migration folders.
//
// Each exported method is one atomic unit of work: methods that write more
// than one row open a transaction themselves (InTx), and nothing slow
// (password hashing, network calls) ever runs inside one.
package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"modernc.org/sqlite"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/keys"
	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/internal/org"
	"github.com/gatehouse-dev/gatehouse/internal/social"
	"github.com/gatehouse-dev/gatehouse/internal/user"
)

// Engine names the database engine behind a Store.
type Engine string

// The supported engines.
const (
	Postgres Engine = "postgres"
	SQLite   Engine = "sqlite"
)

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Store gives access to the database. A Store made by InTx runs every query
// inside that transaction.
type Store struct {
	db     *sql.DB
	q      querier
	inTx   bool
	engine Engine
	stmts  *stmtCache // SQLite only; nil on PostgreSQL
	writes writeGate  // SQLite only; nil on PostgreSQL
	// keepPATsOnPassword: password changes leave personal access tokens
	// alone (KeepPATsOnPasswordChange).
	keepPATsOnPassword bool
}

// Open connects to the database named by cfg.URL and configures the pool.
// It does not migrate; call Migrate.
func Open(ctx context.Context, cfg config.DB) (*Store, error) {
	var (
		db     *sql.DB
		engine Engine
		err    error
	)
	switch {
	case strings.HasPrefix(cfg.URL, "sqlite://"):
		engine = SQLite
		db, err = openSQLite(strings.TrimPrefix(cfg.URL, "sqlite://"))
	case strings.HasPrefix(cfg.URL, "postgres://"), strings.HasPrefix(cfg.URL, "postgresql://"):
		engine = Postgres
		db, err = openPostgres(cfg)
	default:
		return nil, fmt.Errorf("DATABASE_URL: unsupported scheme in %q", redactURL(cfg.URL))
	}
	if err != nil {
		return nil, err
	}
	pingCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := db.PingContext(pingCtx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to %s: %w", redactURL(cfg.URL), err)
	}
	st := &Store{db: db, q: db, engine: engine}
	if engine == SQLite {
		st.stmts, st.writes = newStmtCache(db), newWriteGate()
		st.q = cachedDB{DB: db, cache: st.stmts, writes: st.writes}
	}
	return st, nil
}

func openSQLite(path string) (*sql.DB, error) {
	params := "_txlock=immediate&_time_format=sqlite&_timezone=UTC" +
		"&_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)"
	memory := path == ":memory:"
	var dsn string
	if memory {
		dsn = "file::memory:?" + params
	} else {
		if dir := filepath.Dir(path); dir != "" {
			if err := os.MkdirAll(dir, 0o750); err != nil {
				return nil, fmt.Errorf("create database folder: %w", err)
			}
		}
		dsn = "file:" + path + "?" + params + "&_pragma=journal_mode(WAL)"
	}
	db := sql.OpenDB(sqliteConnector{driver: newSQLiteDriver(), dsn: dsn})
	if memory {
		// Every connection to :memory: is its own empty database: keep one.
		db.SetMaxOpenConns(1)
		db.SetConnMaxLifetime(0)
		db.SetConnMaxIdleTime(0)
	} else {
		// WAL allows concurrent readers and one writer; writers queue on the
		// busy timeout. A small pool is faster than a large one here.
		db.SetMaxOpenConns(8)
		db.SetMaxIdleConns(8)
	}
	return db, nil
}

// newSQLiteDriver returns a modernc driver of our own whose LOWER is
// Unicode-aware like PostgreSQL's (SQLite's built-in folds only ASCII), so
// case-insensitive search and ordering agree on both engines.
func newSQLiteDriver() *sqlite.Driver {
	d := &sqlite.Driver{}
	d.MustRegisterDeterministicScalarFunction("lower", 1, func(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
		switch v := args[0].(type) {
		case string:
			return strings.ToLower(v), nil
		case []byte:
			return bytes.ToLower(v), nil
		}
		return args[0], nil
	})
	return d
}

// sqliteConnector opens connections of a private SQLite driver.
type sqliteConnector struct {
	driver *sqlite.Driver
	dsn    string
}

func (c sqliteConnector) Connect(context.Context) (driver.Conn, error) { return c.driver.Open(c.dsn) }
func (c sqliteConnector) Driver() driver.Driver                        { return c.driver }

func openPostgres(cfg config.DB) (*sql.DB, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	q := u.Query()
	setDefault := func(k, v string) {
		if q.Get(k) == "" {
			q.Set(k, v)
		}
	}
	// The reference's per-connection settings: application name, UTC,
	// 10 s connect timeout, 60 s statement timeout.
	setDefault("application_name", cfg.ApplicationName)
	setDefault("timezone", "UTC")
	setDefault("connect_timeout", "10")
	setDefault("statement_timeout", "60000")
	u.RawQuery = q.Encode()
	u.Scheme = "postgres"
	db, err := sql.Open("pgx", u.String())
	if err != nil {
		return nil, err
	}
	// The reference's pool: pool_size connections kept, up to
	// pool_size+max_overflow open, recycled after pool_recycle. database/sql
	// checks a connection before reuse (pgx's ResetSession), like pre-ping.
	db.SetMaxOpenConns(cfg.PoolSize + cfg.MaxOverflow)
	db.SetMaxIdleConns(cfg.PoolSize)
	db.SetConnMaxLifetime(cfg.PoolRecycle)
	db.SetConnMaxIdleTime(10 * time.Minute)
	return db, nil
}

// redactURL hides a password in a database URL for messages.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	return u.Redacted()
}

// Engine reports the engine behind the store.
func (s *Store) Engine() Engine { return s.engine }

// DB exposes the pool for tools that need it (migrations, tests).
func (s *Store) DB() *sql.DB { return s.db }

// Close closes the pool.
func (s *Store) Close() error {
	if s.stmts != nil {
		s.stmts.close()
	}
	return s.db.Close()
}

// Ping checks that the database answers a query.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.q.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
		return wrap("ping", err)
	}
	return nil
}

// InTx runs fn in a transaction: committed when fn returns nil, rolled back
// otherwise. Inside a transaction it joins the outer one.
func (s *Store) InTx(ctx context.Context, fn func(tx *Store) error) error {
	if s.inTx {
		return fn(s)
	}
	release, err := s.writes.acquire(ctx)
	if err != nil {
		return wrap("begin", err)
	}
	defer release()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return wrap("begin", err)
	}
	var q querier = tx
	if s.stmts != nil {
		q = cachedTx{Tx: tx, cache: s.stmts}
	}
	if err := fn(&Store{db: s.db, q: q, inTx: true, engine: s.engine, stmts: s.stmts, writes: s.writes,
		keepPATsOnPassword: s.keepPATsOnPassword}); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return wrap("commit", err)
	}
	return nil
}

// forUpdate locks the selected rows on PostgreSQL; SQLite's immediate
// transactions already hold the write lock.
func (s *Store) forUpdate() string {
	if s.engine == Postgres {
		return " FOR UPDATE"
	}
	return ""
}

// Setting returns a value from app_settings, or ok=false.
func (s *Store) Setting(ctx context.Context, key string) (string, bool, error) {
	var v string
	err := s.q.QueryRowContext(ctx, `SELECT value FROM app_settings WHERE key = $1`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, wrap("read setting", err)
	}
	return v, true, nil
}

// SettingOrCreate returns the stored value of key, storing value first if
// the key is absent. Concurrent callers all get the one stored value.
func (s *Store) SettingOrCreate(ctx context.Context, key, value string, now time.Time) (string, error) {
	_, err := s.q.ExecContext(ctx,
		`INSERT INTO app_settings (key, value, created_at) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING`,
		key, value, utc(now))
	if err != nil {
		return "", wrap("store setting", err)
	}
	v, _, err := s.Setting(ctx, key)
	return v, err
}

// utc normalises a time for storage: UTC, microsecond precision (what
// PostgreSQL keeps), so values read back compare equal on both engines.
func utc(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// The store satisfies every domain's storage interface.
var (
	_ user.Store   = (*Store)(nil)
	_ auth.Store   = (*Store)(nil)
	_ org.Store    = (*Store)(nil)
	_ social.Store = (*Store)(nil)
	_ oauth.Store  = (*Store)(nil)
	_ keys.Store   = (*Store)(nil)
)
