package main

// The database commands (`migrate up|down|status`, `createsuperuser`) on
// every engine: each test runs the commands against an empty database of
// its own (SQLite, and PostgreSQL when TEST_DATABASE_URL is set) and checks
// both the output and what the commands did to the database.

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/gatehouse-dev/gatehouse/internal/dbtest"
	"github.com/gatehouse-dev/gatehouse/internal/sqlstore"
)

// emptyDB is a database with no tables at all, and a connection to it.
type emptyDB struct {
	env    map[string]string // smokeEnv on this database
	db     *sql.DB
	engine sqlstore.Engine
}

// eachEmptyDatabase runs fn, in parallel subtests, on an empty database of
// every engine dbtest runs tests on.
func eachEmptyDatabase(t *testing.T, fn func(t *testing.T, d emptyDB)) {
	for _, engine := range dbtest.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			d := emptyDB{engine: engine}
			if engine == sqlstore.Postgres {
				var dbURL string
				dbURL, d.db = emptyPostgres(t)
				d.env = pgEnv(t, dbURL)
			} else {
				d.env = smokeEnv(t) // a file that does not exist yet
				db, err := sql.Open("sqlite", strings.TrimPrefix(d.env["DATABASE_URL"], "sqlite://"))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { db.Close() })
				d.db = db
			}
			fn(t, d)
		})
	}
}

// emptyPostgres creates a database with no tables at all (not copied from
// dbtest's migrated template), dropped when the test ends, and returns its
// URL and a connection to it.
func emptyPostgres(t *testing.T) (string, *sql.DB) {
	t.Helper()
	admin := os.Getenv(dbtest.EnvPostgres)
	adb, err := sql.Open("pgx", admin)
	if err != nil {
		t.Fatal(err)
	}
	defer adb.Close()
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	name := "gatehouse_t_" + hex.EncodeToString(b) // dbtest's prefix
	if _, err := adb.ExecContext(context.Background(), `CREATE DATABASE `+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	db, err := sql.Open("pgx", u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		db.Close()
		if adb, err := sql.Open("pgx", admin); err == nil {
			_, _ = adb.ExecContext(context.Background(), `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`)
			adb.Close()
		}
	})
	return u.String(), db
}

// pgEnv is smokeEnv with the given PostgreSQL database.
func pgEnv(t *testing.T, dbURL string) map[string]string {
	env := smokeEnv(t)
	env["DATABASE_URL"] = dbURL
	return env
}

// tableExists reports whether the database has a table of that name.
func (d emptyDB) tableExists(t *testing.T, table string) bool {
	t.Helper()
	query := `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = $1`
	if d.engine == sqlstore.Postgres {
		query = `SELECT COUNT(*) FROM pg_tables WHERE schemaname = 'public' AND tablename = $1`
	}
	var n int
	if err := d.db.QueryRow(query, table).Scan(&n); err != nil {
		t.Fatalf("look up table %s: %v", table, err)
	}
	return n == 1
}

// appliedVersions reads goose's bookkeeping: the versions recorded as
// applied, in order (version 0 is goose's own starting row).
func (d emptyDB) appliedVersions(t *testing.T) []int64 {
	t.Helper()
	if !d.tableExists(t, "goose_db_version") {
		return nil
	}
	rows, err := d.db.Query(`SELECT version_id FROM goose_db_version WHERE is_applied AND version_id > 0 ORDER BY version_id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestMigrateCommands: status, up, down (one step at a time, down
// to nothing) and up again on an empty PostgreSQL database, checking the
// command output against goose's bookkeeping and the tables themselves.
// Rolling every migration back also runs every down migration.
func TestMigrateCommands(t *testing.T) {
	eachEmptyDatabase(t, testMigrateCommands)
}

func testMigrateCommands(t *testing.T, d emptyDB) {
	env := d.env
	files, err := fs.ReadDir(sqlstore.Migrations(), "migrations/"+string(d.engine))
	if err != nil {
		t.Fatal(err)
	}
	var versions []string
	for _, f := range files {
		versions = append(versions, f.Name()[:5])
	}
	// status checks the listing: every migration, in order, each applied
	// exactly when goose has it recorded, and returns the applied count.
	status := func(t *testing.T) int {
		t.Helper()
		out, _, err := runOnce(t, env, "migrate", "status")
		if err != nil {
			t.Fatalf("migrate status: %v", err)
		}
		states := migrationStates(t, out)
		if len(states) != len(files) {
			t.Fatalf("status lists %d migrations, want %d:\n%s", len(states), len(files), out)
		}
		applied := map[string]bool{}
		for _, v := range d.appliedVersions(t) {
			applied[fmt.Sprintf("%05d", v)] = true
		}
		n := 0
		for i, v := range versions {
			want := "pending"
			if applied[v] {
				want = "applied"
				n++
			}
			if states[v] != want {
				t.Fatalf("status says %s is %q, the database says %s:\n%s", v, states[v], want, out)
			}
			if line := strings.Split(strings.TrimSpace(out), "\n")[i]; !strings.Contains(line, files[i].Name()) {
				t.Errorf("status line %d %q does not name %s", i+1, line, files[i].Name())
			}
		}
		return n
	}

	if n := status(t); n != 0 {
		t.Fatalf("fresh database: %d migrations applied, want 0", n)
	}
	if d.tableExists(t, "users") {
		t.Fatal("status created the schema")
	}
	if _, _, err := runOnce(t, env, "migrate", "down"); err == nil {
		t.Error("migrate down on a database with nothing applied succeeded")
	}

	out, _, err := runOnce(t, env, "migrate", "up")
	if err != nil || strings.TrimSpace(out) != "migrations applied" {
		t.Fatalf("migrate up: %q, %v", out, err)
	}
	if n := status(t); n != len(files) {
		t.Fatalf("after up, %d of %d migrations applied", n, len(files))
	}
	for _, table := range []string{"users", "user_sessions", "password_reset_tokens", "organizations", "user_organizations"} {
		if !d.tableExists(t, table) {
			t.Errorf("after up, table %s does not exist", table)
		}
	}
	// Idempotent.
	if _, _, err := runOnce(t, env, "migrate", "up"); err != nil {
		t.Fatalf("second migrate up: %v", err)
	}
	if n := status(t); n != len(files) {
		t.Fatalf("after a second up, %d of %d migrations applied", n, len(files))
	}

	// down rolls back exactly the newest applied migration, each time.
	for i := len(files) - 1; i >= 0; i-- {
		out, _, err := runOnce(t, env, "migrate", "down")
		want := fmt.Sprintf("rolled back %s %s", strings.TrimLeft(versions[i], "0"), files[i].Name())
		if err != nil || strings.TrimSpace(out) != want {
			t.Fatalf("migrate down #%d: %q, %v; want %q", len(files)-i, out, err, want)
		}
		if n := status(t); n != i {
			t.Fatalf("after rolling back %s, %d migrations applied, want %d", versions[i], n, i)
		}
	}
	for _, table := range []string{"users", "user_sessions", "organizations"} {
		if d.tableExists(t, table) {
			t.Errorf("after rolling everything back, table %s still exists", table)
		}
	}
	if _, _, err := runOnce(t, env, "migrate", "down"); err == nil {
		t.Error("migrate down with everything rolled back succeeded")
	}

	// And up again from nothing.
	if _, _, err := runOnce(t, env, "migrate", "up"); err != nil {
		t.Fatalf("migrate up after rolling everything back: %v", err)
	}
	if n := status(t); n != len(files) {
		t.Fatalf("after up again, %d of %d migrations applied", n, len(files))
	}

	for _, args := range [][]string{{"migrate"}, {"migrate", "sideways"}, {"migrate", "up", "extra"}} {
		if _, _, err := runOnce(t, env, args...); err == nil {
			t.Errorf("gatehouse %v succeeded, want a usage error", args)
		}
	}
}

// superuserRow is what createsuperuser leaves in the users table.
type superuserRow struct {
	id, email, hash        string
	super, active, deleted bool
}

func superuserByEmail(t *testing.T, db *sql.DB, email string) (superuserRow, bool) {
	t.Helper()
	var r superuserRow
	err := db.QueryRow(`SELECT CAST(id AS TEXT), email, COALESCE(password_hash, ''), is_superuser, is_active, deleted_at IS NOT NULL
		FROM users WHERE LOWER(email) = LOWER($1)`, email).Scan(&r.id, &r.email, &r.hash, &r.super, &r.active, &r.deleted)
	if err == sql.ErrNoRows {
		return r, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return r, true
}

func countUsers(t *testing.T, db *sql.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM users`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestCreateSuperuserCommand: createsuperuser on each engine creates
// an active superuser with a hash of the printed (or chosen) password,
// refuses duplicates (case-insensitively), a missing email and a weak
// password without writing anything, and the account logs in.
func TestCreateSuperuserCommand(t *testing.T) {
	eachEmptyDatabase(t, testCreateSuperuserCommand)
}

func testCreateSuperuserCommand(t *testing.T, d emptyDB) {
	env, db := d.env, d.db
	env["FIRST_SUPERUSER_EMAIL"], env["FIRST_SUPERUSER_PASSWORD"] = "first@example.com", "FirstAdm1n!Password"

	// On an empty database the command migrates first (AUTO_MIGRATE defaults to true).
	out, _, err := runOnce(t, env, "createsuperuser", "-email", "X@Example.com")
	if err != nil {
		t.Fatalf("createsuperuser: %v", err)
	}
	m := regexp.MustCompile(`(?m)^password: (\S+)$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("createsuperuser output has no generated password:\n%s", out)
	}
	pw := m[1]
	row, ok := superuserByEmail(t, db, "x@example.com")
	if !ok {
		t.Fatal("no user row after createsuperuser")
	}
	if row.email != "x@example.com" || !row.super || !row.active || row.deleted {
		t.Fatalf("created row %+v, want an active, live superuser with the lower-cased email", row)
	}
	if want := fmt.Sprintf("created superuser x@example.com (id %s)", row.id); !strings.Contains(out, want) {
		t.Errorf("output %q does not contain %q", out, want)
	}
	if err := bcrypt.CompareHashAndPassword([]byte(row.hash), []byte(pw)); err != nil {
		t.Errorf("stored hash does not match the printed password: %v", err)
	}
	if n := countUsers(t, db); n != 1 {
		t.Fatalf("%d users after one createsuperuser, want 1 (serve's first superuser is not created here)", n)
	}

	// Refusals write nothing.
	refusals := [][]string{
		{"createsuperuser", "-email", "x@EXAMPLE.com"},
		{"createsuperuser"},
		{"createsuperuser", "-email", "weak@example.com", "-password", "weak"},
	}
	for _, args := range refusals {
		if _, _, err := runOnce(t, env, args...); err == nil {
			t.Errorf("gatehouse %v succeeded", args)
		}
		if n := countUsers(t, db); n != 1 {
			t.Fatalf("gatehouse %v: %d users, want 1", args, n)
		}
	}
	if again, _ := superuserByEmail(t, db, "x@example.com"); again != row {
		t.Errorf("the duplicate attempt changed the existing row:\n%+v\n%+v", row, again)
	}

	const chosen = "Ch0sen!Passw0rd"
	out, _, err = runOnce(t, env, "createsuperuser", "-email", "chosen@example.com", "-password", chosen)
	if err != nil || strings.Contains(out, chosen) || strings.Contains(out, "password:") {
		t.Fatalf("createsuperuser with -password: err %v; output must not echo the password:\n%s", err, out)
	}
	crow, ok := superuserByEmail(t, db, "chosen@example.com")
	if !ok || !crow.super || !crow.active || bcrypt.CompareHashAndPassword([]byte(crow.hash), []byte(chosen)) != nil {
		t.Fatalf("superuser with a chosen password: %+v (found %v)", crow, ok)
	}

	// The accounts work in the real service on the same database.
	in := start(t, env)
	tok, lr := in.login("x@example.com", pw)
	if u, _ := lr.body["user"].(map[string]any); u["is_superuser"] != true || u["id"] != row.id {
		t.Fatalf("login of the created superuser: %s", lr.raw)
	}
	in.do("GET", "/api/v1/users", tok.access, nil).want(t, http.StatusOK, "superuser list of users")
	in.login("chosen@example.com", chosen)
	in.do("POST", "/api/v1/auth/login", "", map[string]any{"email": "weak@example.com", "password": "weak"}).
		want(t, http.StatusUnauthorized, "login of the refused superuser")
	in.stop()
}

// TestCreateSuperuserWithoutAutoMigrate: with AUTO_MIGRATE=false
// createsuperuser does not touch the schema of an unmigrated database; it
// fails, and leaves the database empty.
func TestCreateSuperuserWithoutAutoMigrate(t *testing.T) {
	eachEmptyDatabase(t, testCreateSuperuserWithoutAutoMigrate)
}

func testCreateSuperuserWithoutAutoMigrate(t *testing.T, d emptyDB) {
	env, db := d.env, d.db
	env["AUTO_MIGRATE"] = "false"
	if _, _, err := runOnce(t, env, "createsuperuser", "-email", "x@example.com", "-password", "Ch0sen!Passw0rd"); err == nil {
		t.Fatal("createsuperuser on an unmigrated database with AUTO_MIGRATE=false succeeded")
	}
	if d.tableExists(t, "users") || len(d.appliedVersions(t)) != 0 {
		t.Fatal("createsuperuser migrated the database although AUTO_MIGRATE=false")
	}
	// After `migrate up` the same command works.
	if _, _, err := runOnce(t, env, "migrate", "up"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runOnce(t, env, "createsuperuser", "-email", "x@example.com", "-password", "Ch0sen!Passw0rd"); err != nil {
		t.Fatalf("createsuperuser after migrate up: %v", err)
	}
	if r, ok := superuserByEmail(t, db, "x@example.com"); !ok || !r.super {
		t.Fatalf("no superuser row: %+v", r)
	}
}
