// Package dbtest gives tests a private, migrated database on every engine:
// SQLite always, PostgreSQL when TEST_DATABASE_URL is set. Once set, a
// PostgreSQL that cannot be reached fails the test instead of skipping it,
// so CI cannot go green without it.
package dbtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/sqlstore"
)

// EnvPostgres names the admin URL of the test PostgreSQL server.
const EnvPostgres = "TEST_DATABASE_URL"

// Engines lists the engines to run a test on.
func Engines(t testing.TB) []sqlstore.Engine {
	t.Helper()
	engines := []sqlstore.Engine{sqlstore.SQLite}
	if os.Getenv(EnvPostgres) != "" && !testing.Short() {
		engines = append(engines, sqlstore.Postgres)
	}
	return engines
}

// Open returns a migrated store private to the test, closed (and, on
// PostgreSQL, dropped) when the test ends.
func Open(t testing.TB, engine sqlstore.Engine) *sqlstore.Store {
	t.Helper()
	st, err := sqlstore.Open(context.Background(), config.DB{URL: URL(t, engine), PoolSize: 10, MaxOverflow: 10,
		PoolRecycle: time.Hour, ApplicationName: "gatehouse-test"})
	if err != nil {
		t.Fatalf("open %s: %v", engine, err)
	}
	t.Cleanup(func() { st.Close() })
	if engine == sqlstore.SQLite {
		if err := st.Migrate(context.Background()); err != nil {
			t.Fatalf("migrate: %v", err)
		}
	}
	return st
}

// URL returns a DATABASE_URL for a fresh, migrated database private to the
// test (for tests that start the whole service).
func URL(t testing.TB, engine sqlstore.Engine) string {
	t.Helper()
	if engine == sqlstore.SQLite {
		dir := t.TempDir()
		if strings.ContainsAny(dir, "#?%") {
			// A repeated subtest name (sqlite#01) would cut the URL at
			// "#": every such test would share one file elsewhere.
			var err error
			if dir, err = os.MkdirTemp("", "gatehouse-test-"); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(dir) })
		}
		return "sqlite://" + filepath.Join(dir, "test.db")
	}
	admin := os.Getenv(EnvPostgres)
	if admin == "" {
		t.Fatalf("%s is not set", EnvPostgres)
	}
	db, err := sql.Open("pgx", admin)
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	defer db.Close()
	ctx := context.Background()
	tmpl, err := ensureTemplate(ctx, db, admin)
	if err != nil {
		t.Fatalf("postgres template: %v", err)
	}
	name := "gatehouse_t_" + randomHex(8)
	if err := withLock(ctx, db, func(conn *sql.Conn) error {
		_, err := conn.ExecContext(ctx, fmt.Sprintf(`CREATE DATABASE %s TEMPLATE %s`, name, tmpl))
		return err
	}); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("pgx", admin)
		if err != nil {
			return
		}
		defer db.Close()
		_, _ = db.ExecContext(context.Background(), fmt.Sprintf(`DROP DATABASE IF EXISTS %s WITH (FORCE)`, name))
	})
	return withDatabase(admin, name)
}

// ensureTemplate creates (once per migration set, shared by every test
// process) a migrated database to copy test databases from.
func ensureTemplate(ctx context.Context, db *sql.DB, admin string) (string, error) {
	name := "gatehouse_tmpl_" + migrationsHash()
	err := withLock(ctx, db, func(conn *sql.Conn) error {
		var exists bool
		if err := conn.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
			return err
		}
		if exists {
			return nil
		}
		building := name + "_build"
		_, _ = conn.ExecContext(ctx, fmt.Sprintf(`DROP DATABASE IF EXISTS %s WITH (FORCE)`, building))
		if _, err := conn.ExecContext(ctx, `CREATE DATABASE `+building); err != nil {
			return err
		}
		st, err := sqlstore.Open(ctx, config.DB{URL: withDatabase(admin, building), PoolSize: 2, PoolRecycle: time.Hour})
		if err != nil {
			return err
		}
		err = st.Migrate(ctx)
		st.Close()
		if err != nil {
			return err
		}
		_, err = conn.ExecContext(ctx, fmt.Sprintf(`ALTER DATABASE %s RENAME TO %s`, building, name))
		return err
	})
	return name, err
}

// withLock runs fn holding a server-wide advisory lock, so concurrent test
// processes do not copy a template at the same time.
func withLock(ctx context.Context, db *sql.DB, fn func(*sql.Conn) error) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	const key = 7243011
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, key); err != nil {
		return err
	}
	defer conn.ExecContext(context.Background(), `SELECT pg_advisory_unlock($1)`, key) //nolint:errcheck
	return fn(conn)
}

func withDatabase(admin, name string) string {
	u, err := url.Parse(admin)
	if err != nil {
		return admin
	}
	u.Path = "/" + name
	return u.String()
}

// migrationsHash identifies the migration set, so a changed migration gets
// a fresh template.
func migrationsHash() string {
	h := sha256.New()
	_ = fs.WalkDir(sqlstore.Migrations(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(sqlstore.Migrations(), path)
		h.Write([]byte(path))
		h.Write(b)
		return err
	})
	return hex.EncodeToString(h.Sum(nil))[:12]
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
