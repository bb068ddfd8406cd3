package sqlstore_test

// Store tests of the admin API's storage: bulk actions, combined profile and
// password updates (atomic on both engines), the session listing across
// users, and the statistics aggregates. Helpers come from store_test.go and
// users_test.go.

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/sqlstore"
	"github.com/gatehouse-dev/gatehouse/internal/user"
)

// failUpdatesWhen makes every UPDATE of a row of table for which cond (an
// SQL condition on NEW) holds fail, on either engine, so tests can break a
// transaction in its middle.
func failUpdatesWhen(t *testing.T, st *sqlstore.Store, table, cond string) {
	t.Helper()
	stmts := []string{`CREATE TRIGGER boom BEFORE UPDATE ON ` + table + ` WHEN (` + cond + `) BEGIN SELECT RAISE(ABORT, 'boom'); END`}
	if st.Engine() == sqlstore.Postgres {
		stmts = []string{
			`CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'boom'; END $$`,
			`CREATE TRIGGER boom BEFORE UPDATE ON ` + table + ` FOR EACH ROW WHEN (` + cond + `) EXECUTE FUNCTION boom()`,
		}
	}
	for _, s := range stmts {
		if _, err := st.DB().ExecContext(context.Background(), s); err != nil {
			t.Fatalf("install trigger: %v", err)
		}
	}
}

func userState(t *testing.T, st *sqlstore.Store, id string) (active, deleted bool) {
	t.Helper()
	var del *time.Time
	if err := st.DB().QueryRowContext(context.Background(), `SELECT is_active, deleted_at FROM users WHERE id = $1`, id).Scan(&active, &del); err != nil {
		t.Fatalf("user %s: %v", id, err)
	}
	return active, del != nil
}

func TestBulkUpdateUsers(t *testing.T) {
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		later := storeT0.Add(time.Hour)
		mk := func(email string, active bool) (user.User, auth.Session) {
			u := newUser(email, storeT0)
			u.IsActive = active
			mustCreateUser(t, st, u)
			return u, liveSession(t, st, u.ID)
		}
		caller, callerSess := mk("caller@example.com", true)
		a, aSess := mk("a@example.com", true)
		b, bSess := mk("b@example.com", false)
		gone, _ := mk("gone@example.com", true)
		if err := st.SoftDeleteUser(ctx, gone.ID, storeT0); err != nil {
			t.Fatal(err)
		}
		bystander, byS := mk("bystander@example.com", true)
		unknown := user.NewID()
		ids := []string{unknown, a.ID, gone.ID, caller.ID, b.ID}

		t.Run("deactivate skips the excepted, deleted and unknown ids and revokes sessions", func(t *testing.T) {
			done, err := st.BulkUpdateUsers(ctx, user.BulkDeactivate, ids, caller.ID, later)
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(done)
			want := []string{a.ID, b.ID}
			slices.Sort(want)
			if !slices.Equal(done, want) {
				t.Fatalf("applied to %v, want %v (already inactive users count)", done, want)
			}
			for _, id := range []string{a.ID, b.ID} {
				if active, _ := userState(t, st, id); active {
					t.Errorf("user %s still active", id)
				}
			}
			if sessionActive(t, st, aSess.ID) || sessionActive(t, st, bSess.ID) {
				t.Error("a deactivated user kept a session")
			}
			if active, _ := userState(t, st, caller.ID); !active || !sessionActive(t, st, callerSess.ID) {
				t.Error("the excepted user was deactivated")
			}
			if !sessionActive(t, st, byS.ID) {
				t.Error("a user not named lost a session")
			}
			// The user already inactive was not rewritten.
			if got := countRows(t, st, `SELECT COUNT(*) FROM users WHERE id = $1 AND updated_at = $2`, b.ID, storeT0); got != 1 {
				t.Error("an already inactive user was rewritten")
			}
		})
		t.Run("activate applies to the excepted user too when asked without exception", func(t *testing.T) {
			done, err := st.BulkUpdateUsers(ctx, user.BulkActivate, ids, "", later)
			if err != nil {
				t.Fatal(err)
			}
			if len(done) != 3 || !slices.Contains(done, caller.ID) || slices.Contains(done, gone.ID) || slices.Contains(done, unknown) {
				t.Fatalf("applied to %v", done)
			}
			if active, deleted := userState(t, st, gone.ID); active || !deleted {
				t.Error("a deleted user was reactivated")
			}
			if sessionActive(t, st, aSess.ID) {
				t.Error("activation brought a revoked session back")
			}
		})
		t.Run("delete is the single soft delete, user by user", func(t *testing.T) {
			fresh := liveSession(t, st, a.ID)
			tok := mustCreateResetToken(t, st, a.ID, "bulk-del", later.Add(time.Hour))
			done, err := st.BulkUpdateUsers(ctx, user.BulkDelete, []string{a.ID, caller.ID, gone.ID}, caller.ID, later)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(done, []string{a.ID}) {
				t.Fatalf("applied to %v, want only %s", done, a.ID)
			}
			if active, deleted := userState(t, st, a.ID); active || !deleted {
				t.Errorf("deleted user: active=%v deleted=%v", active, deleted)
			}
			if sessionActive(t, st, fresh.ID) {
				t.Error("a deleted user kept a session")
			}
			if _, err := st.ResetTokenByHash(ctx, tok.Hash); !errors.Is(err, auth.ErrResetTokenInvalid) {
				t.Errorf("a deleted user's reset token survived: %v", err)
			}
			if _, deleted := userState(t, st, caller.ID); deleted {
				t.Error("the excepted user was deleted")
			}
			// The email is free again.
			mustCreateUser(t, st, newUser("a@example.com", later))
		})
		t.Run("nothing matched", func(t *testing.T) {
			done, err := st.BulkUpdateUsers(ctx, user.BulkDelete, []string{unknown, gone.ID}, "", later)
			if err != nil || len(done) != 0 {
				t.Fatalf("%v %v", done, err)
			}
			if _, err := st.BulkUpdateUsers(ctx, user.BulkAction("purge"), []string{bystander.ID}, "", later); err == nil {
				t.Fatal("unknown action accepted")
			}
			if active, deleted := userState(t, st, bystander.ID); !active || deleted {
				t.Error("an unknown action changed a user")
			}
		})
	})
}

func TestBulkUpdateUsersIsAtomic(t *testing.T) {
	for _, action := range []user.BulkAction{user.BulkDeactivate, user.BulkDelete} {
		t.Run(string(action), func(t *testing.T) {
			forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
				ctx := context.Background()
				first := mustCreateUser(t, st, newUser("first@example.com", storeT0))
				boom := mustCreateUser(t, st, newUser("boom@example.com", storeT0))
				if boom.ID < first.ID {
					t.Fatal("user ids are not time-ordered: the failing user would not be handled last")
				}
				s1, s2 := liveSession(t, st, first.ID), liveSession(t, st, boom.ID)
				tok := mustCreateResetToken(t, st, first.ID, "atomic", storeT0.Add(time.Hour))
				// The last write of the action fails: deactivate revokes
				// sessions after updating the users; delete handles the
				// users one after the other.
				if action == user.BulkDeactivate {
					failUpdatesWhen(t, st, "user_sessions", `NEW.user_id = '`+boom.ID+`' AND NEW.is_active = FALSE`)
				} else {
					failUpdatesWhen(t, st, "users", `NEW.email = 'boom@example.com' AND NEW.is_active = FALSE`)
				}
				if _, err := st.BulkUpdateUsers(ctx, action, []string{first.ID, boom.ID}, "", storeT0.Add(time.Hour)); err == nil {
					t.Fatal("the failing bulk action reported success")
				}
				for _, u := range []user.User{first, boom} {
					if active, deleted := userState(t, st, u.ID); !active || deleted {
						t.Errorf("%s changed by a failed bulk action: active=%v deleted=%v", u.Email, active, deleted)
					}
				}
				if !sessionActive(t, st, s1.ID) || !sessionActive(t, st, s2.ID) {
					t.Error("a failed bulk action revoked a session")
				}
				if _, err := st.ResetTokenByHash(ctx, tok.Hash); err != nil {
					t.Errorf("a failed bulk action dropped a reset token: %v", err)
				}
			})
		})
	}
}

func TestUpdateUserAndPassword(t *testing.T) {
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		later := storeT0.Add(time.Hour)
		u := mustCreateUser(t, st, newUser("both@example.com", storeT0))
		keep, drop := liveSession(t, st, u.ID), liveSession(t, st, u.ID)
		tok := mustCreateResetToken(t, st, u.ID, "both", later.Add(time.Hour))
		rename := func(x *user.User) error { x.FirstName = "Renamed"; return nil }

		t.Run("without a hash only the profile changes", func(t *testing.T) {
			got, err := st.UpdateUserAndPassword(ctx, u.ID, "", "", later, rename)
			if err != nil || got.FirstName != "Renamed" || got.PasswordHash != u.PasswordHash {
				t.Fatalf("%v %+v", err, got)
			}
			if !sessionActive(t, st, keep.ID) || !sessionActive(t, st, drop.ID) {
				t.Error("a profile change revoked sessions")
			}
			if _, err := st.ResetTokenByHash(ctx, tok.Hash); err != nil {
				t.Errorf("a profile change dropped a reset token: %v", err)
			}
		})
		t.Run("a failing password write undoes the profile change", func(t *testing.T) {
			failUpdatesWhen(t, st, "users", `NEW.password_hash = '$2a$04$boom'`)
			if _, err := st.UpdateUserAndPassword(ctx, u.ID, "$2a$04$boom", "", later, func(x *user.User) error {
				x.FirstName, x.IsActive = "Half", false
				return nil
			}); err == nil {
				t.Fatal("reported success")
			}
			got, err := st.UserByID(ctx, u.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.FirstName != "Renamed" || !got.IsActive || got.PasswordHash != u.PasswordHash {
				t.Errorf("half-applied update: %+v", got)
			}
			if !sessionActive(t, st, keep.ID) || !sessionActive(t, st, drop.ID) {
				t.Error("a failed update revoked sessions")
			}
		})
		t.Run("with a hash the password is set, sessions but the kept one revoked, reset tokens dropped", func(t *testing.T) {
			got, err := st.UpdateUserAndPassword(ctx, u.ID, "$2a$04$new", keep.ID, later, func(x *user.User) error {
				x.FirstName = "Again"
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if got.PasswordHash != "$2a$04$new" || got.PasswordChangedAt == nil || !got.PasswordChangedAt.Equal(later) || got.FirstName != "Again" {
				t.Fatalf("returned %+v", got)
			}
			stored, err := st.UserByID(ctx, u.ID)
			if err != nil || stored.PasswordHash != "$2a$04$new" || stored.FirstName != "Again" {
				t.Fatalf("stored %+v %v", stored, err)
			}
			if !sessionActive(t, st, keep.ID) || sessionActive(t, st, drop.ID) {
				t.Error("sessions: want the kept one active and the other revoked")
			}
			if _, err := st.ResetTokenByHash(ctx, tok.Hash); !errors.Is(err, auth.ErrResetTokenInvalid) {
				t.Errorf("reset token survived: %v", err)
			}
		})
		t.Run("missing and deleted users", func(t *testing.T) {
			if _, err := st.UpdateUserAndPassword(ctx, user.NewID(), "$2a$04$x", "", later, rename); !errors.Is(err, user.ErrNotFound) {
				t.Errorf("missing user: %v", err)
			}
			d := mustCreateUser(t, st, newUser("both-del@example.com", storeT0))
			if err := st.SoftDeleteUser(ctx, d.ID, storeT0); err != nil {
				t.Fatal(err)
			}
			if _, err := st.UpdateUserAndPassword(ctx, d.ID, "$2a$04$x", "", later, rename); !errors.Is(err, user.ErrNotFound) {
				t.Errorf("deleted user: %v", err)
			}
		})
	})
}

func TestOwnedSessions(t *testing.T) {
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		alice := newUser("alice@example.com", storeT0)
		alice.FirstName, alice.LastName = "Alice", strp("Smith")
		mustCreateUser(t, st, alice)
		bob := newUser("bob@example.com", storeT0)
		bob.FirstName, bob.LastName = "", nil
		mustCreateUser(t, st, bob)
		gone := mustCreateUser(t, st, newUser("gone@example.com", storeT0))

		at := func(h int) time.Time { return storeT0.Add(time.Duration(h) * time.Hour) }
		spec := func(active bool, h int) sessionSpec {
			return sessionSpec{active: active, lastUsed: at(h), expires: at(h + 48)}
		}
		a1 := mustCreateSession(t, st, alice.ID, spec(true, 1))
		a2 := mustCreateSession(t, st, alice.ID, spec(true, 3))
		b1 := mustCreateSession(t, st, bob.ID, spec(true, 2))
		aOld := mustCreateSession(t, st, alice.ID, spec(false, 0))
		bOld := mustCreateSession(t, st, bob.ID, spec(false, 5))
		g1 := mustCreateSession(t, st, gone.ID, spec(true, 4))
		if _, err := st.DB().ExecContext(ctx, `UPDATE users SET deleted_at = $2 WHERE id = $1`, gone.ID, storeT0); err != nil {
			t.Fatal(err)
		}

		ids := func(list []auth.OwnedSession) []string {
			var out []string
			for _, s := range list {
				out = append(out, s.ID)
			}
			return out
		}
		list, total, err := st.OwnedSessions(ctx, auth.SessionQuery{Limit: 10, Active: true})
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{a2.ID, b1.ID, a1.ID}; total != 3 || !slices.Equal(ids(list), want) {
			t.Fatalf("active: total %d, %v; want %v (most recently used first, deleted user's %s absent)", total, ids(list), want, g1.ID)
		}
		first := list[0]
		if first.UserID != alice.ID || first.UserEmail != "alice@example.com" || first.UserFirstName != "Alice" ||
			first.UserLastName == nil || *first.UserLastName != "Smith" || !first.IsActive || !first.LastUsedAt.Equal(at(3)) {
			t.Errorf("owned session %+v", first)
		}
		if n := list[0].UserFullName(); n == nil || *n != "Alice Smith" {
			t.Errorf("full name %v", n)
		}
		if n := list[1].UserFullName(); n != nil {
			t.Errorf("full name of a user without names: %q, want nil", *n)
		}

		list, total, err = st.OwnedSessions(ctx, auth.SessionQuery{Limit: 10, Active: false})
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{bOld.ID, aOld.ID}; total != 2 || !slices.Equal(ids(list), want) {
			t.Fatalf("inactive: total %d, %v; want %v", total, ids(list), want)
		}

		list, total, err = st.OwnedSessions(ctx, auth.SessionQuery{Offset: 1, Limit: 1, Active: true})
		if err != nil {
			t.Fatal(err)
		}
		if total != 3 || !slices.Equal(ids(list), []string{b1.ID}) {
			t.Fatalf("second page: total %d, %v", total, ids(list))
		}
		list, _, err = st.OwnedSessions(ctx, auth.SessionQuery{Offset: 30, Limit: 10, Active: true})
		if err != nil || list == nil || len(list) != 0 {
			t.Fatalf("past the end: %v %v", list, err)
		}
	})
}

func TestUserCountsAtBoundaries(t *testing.T) {
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		b0, b1 := storeT0, storeT0.Add(24*time.Hour)
		mk := func(email string, created time.Time, active bool) user.User {
			u := newUser(email, created)
			u.IsActive = active
			return mustCreateUser(t, st, u)
		}
		mk("before@example.com", b0.Add(-time.Microsecond), true)
		mk("at-b0@example.com", b0, false) // not before b0
		mk("between@example.com", b1.Add(-time.Microsecond), true)
		mk("at-b1@example.com", b1, true) // not before b1
		gone := mk("gone@example.com", b0.Add(-time.Hour), true)
		if _, err := st.DB().ExecContext(ctx, `UPDATE users SET deleted_at = $2 WHERE id = $1`, gone.ID, b0); err != nil {
			t.Fatal(err)
		}
		c, err := st.UserCountsAt(ctx, []time.Time{b0, b1})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(c.CreatedBefore, []int{1, 3}) || !slices.Equal(c.ActiveCreatedBefore, []int{1, 2}) || c.Active != 3 || c.Inactive != 1 {
			t.Fatalf("counts %+v, want created [1 3], active [1 2], 3 active, 1 inactive", c)
		}
	})
}
