package sqlstore_test

// Contract tests of the personal-access-token storage (pat.Store), on every
// engine.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/pat"
	"github.com/gatehouse-dev/gatehouse/internal/sqlstore"
	"github.com/gatehouse-dev/gatehouse/internal/token"
	"github.com/gatehouse-dev/gatehouse/internal/user"
)

// patSpec describes a token to insert.
type patSpec struct {
	created time.Time
	expires *time.Time // nil: never
	scopes  []string
}

// mustCreatePAT inserts a token of userID (with a fresh secret) and returns
// it and its secret.
func mustCreatePAT(t *testing.T, st *sqlstore.Store, userID string, sp patSpec) (pat.Token, string) {
	t.Helper()
	if sp.created.IsZero() {
		sp.created = storeT0
	}
	if sp.scopes == nil {
		sp.scopes = []string{pat.ScopeReadUsers}
	}
	secret := pat.Prefix + token.RandomSecret()
	tok := pat.Token{ID: user.NewID(), UserID: userID, Name: "ci " + secret[len(pat.Prefix):][:6], Hash: token.HashSecret(secret),
		Prefix: secret[:22], Scopes: sp.scopes, ExpiresAt: sp.expires, CreatedAt: sp.created}
	if err := st.CreatePAT(context.Background(), tok, pat.MaxLive, sp.created); err != nil {
		t.Fatalf("create token: %v", err)
	}
	return tok, secret
}

func patAt(d time.Duration) *time.Time { v := storeT0.Add(d); return &v }

// patState reads a token row again, through its digest.
func patState(t *testing.T, st *sqlstore.Store, tok pat.Token) pat.Token {
	t.Helper()
	got, _, err := st.PATByHash(context.Background(), tok.Hash)
	if err != nil {
		t.Fatalf("token %s: %v", tok.ID, err)
	}
	return got
}

func patIDs(list []pat.Token) []string {
	out := []string{}
	for _, t := range list {
		out = append(out, t.ID)
	}
	return out
}

func ownedIDs(list []pat.Owned) []string {
	out := []string{}
	for _, t := range list {
		out = append(out, t.ID)
	}
	return out
}

func TestPATRoundTripAndLookupByDigest(t *testing.T) {
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		u := mustCreateUser(t, st, newUser("owner@example.com", storeT0))
		created := storeT0.Add(1234567 * time.Nanosecond) // stored at microsecond precision
		want, secret := mustCreatePAT(t, st, u.ID, patSpec{created: created, expires: patAt(90 * 24 * time.Hour),
			scopes: []string{pat.ScopeReadUsers, pat.ScopeWriteOrganizations}})
		got, owner, err := st.PATByHash(ctx, token.HashSecret(secret))
		if err != nil {
			t.Fatal(err)
		}
		want.CreatedAt = created.Truncate(time.Microsecond)
		if got.ID != want.ID || got.UserID != u.ID || got.Name != want.Name || got.Hash != want.Hash || got.Prefix != want.Prefix ||
			!slices.Equal(got.Scopes, want.Scopes) || !got.CreatedAt.Equal(want.CreatedAt) || got.ExpiresAt == nil ||
			!got.ExpiresAt.Equal(*want.ExpiresAt) || got.LastUsedAt != nil || got.RevokedAt != nil {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
		}
		if owner.ID != u.ID || owner.Email != u.Email || !owner.IsActive || owner.DeletedAt != nil {
			t.Fatalf("owner %+v", owner)
		}
		// Never expires: NULL round-trips as nil.
		forever, _ := mustCreatePAT(t, st, u.ID, patSpec{})
		if got := patState(t, st, forever); got.ExpiresAt != nil {
			t.Fatalf("expires_at %v, want nil", got.ExpiresAt)
		}
		// Only the exact digest finds a token: not the secret itself, not
		// another digest sharing the display prefix.
		for _, h := range []string{secret, token.HashSecret(secret[:22] + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), want.Prefix, ""} {
			if _, _, err := st.PATByHash(ctx, h); !errors.Is(err, pat.ErrNotFound) {
				t.Errorf("PATByHash(%.20q) = %v, want ErrNotFound", h, err)
			}
		}
		// The secret is stored nowhere.
		if n := countRows(t, st, `SELECT COUNT(*) FROM personal_access_tokens WHERE token_hash = $1 OR prefix = $1 OR name = $1`, secret); n != 0 {
			t.Fatal("the secret is stored")
		}
	})
}

func TestCreatePATLiveLimitAndOwner(t *testing.T) {
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		u := mustCreateUser(t, st, newUser("limit@example.com", storeT0))
		other := mustCreateUser(t, st, newUser("other@example.com", storeT0))
		create := func(userID string, maxLive int) error {
			secret := pat.Prefix + token.RandomSecret()
			return st.CreatePAT(ctx, pat.Token{ID: user.NewID(), UserID: userID, Name: "n", Hash: token.HashSecret(secret),
				Prefix: secret[:22], Scopes: []string{pat.ScopeReadUsers}, CreatedAt: storeT0}, maxLive, storeT0)
		}
		// A revoked token and an expired one do not count against the limit.
		revoked, _ := mustCreatePAT(t, st, u.ID, patSpec{})
		if _, err := st.RevokePAT(ctx, revoked.ID, u.ID, storeT0); err != nil {
			t.Fatal(err)
		}
		mustCreatePAT(t, st, u.ID, patSpec{created: storeT0.Add(-48 * time.Hour), expires: patAt(-time.Hour)})
		// Expiring exactly now is expired.
		mustCreatePAT(t, st, u.ID, patSpec{created: storeT0.Add(-48 * time.Hour), expires: patAt(0)})
		for i := range 3 {
			if err := create(u.ID, 3); err != nil {
				t.Fatalf("token %d of 3: %v", i+1, err)
			}
		}
		if err := create(u.ID, 3); !errors.Is(err, pat.ErrTooMany) {
			t.Fatalf("fourth live token: %v, want ErrTooMany", err)
		}
		if err := create(other.ID, 3); err != nil {
			t.Fatalf("another user's limit is their own: %v", err)
		}
		if n := countRows(t, st, `SELECT COUNT(*) FROM personal_access_tokens WHERE user_id = $1`, u.ID); n != 6 {
			t.Fatalf("%d rows, want 6 (nothing inserted by the refused creation)", n)
		}

		// Inactive, deleted and unknown owners get no token.
		idle := mustCreateUser(t, st, newUser("idle@example.com", storeT0))
		if _, err := st.DB().ExecContext(ctx, `UPDATE users SET is_active = FALSE WHERE id = $1`, idle.ID); err != nil {
			t.Fatal(err)
		}
		gone := mustCreateUser(t, st, newUser("gone@example.com", storeT0))
		if err := st.SoftDeleteUser(ctx, gone.ID, storeT0); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{idle.ID, gone.ID, user.NewID()} {
			if err := create(id, 3); !errors.Is(err, user.ErrNotFound) {
				t.Errorf("owner %s: %v, want user.ErrNotFound", id, err)
			}
		}
	})
}

// Concurrent creations for one user cannot pass the limit together.
func TestCreatePATLimitUnderConcurrency(t *testing.T) {
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		u := mustCreateUser(t, st, newUser("race@example.com", storeT0))
		const limit, tries = 3, 12
		var (
			wg        sync.WaitGroup
			mu        sync.Mutex
			ok, tooMx int
			others    []error
		)
		for range tries {
			wg.Go(func() {
				secret := pat.Prefix + token.RandomSecret()
				err := st.CreatePAT(ctx, pat.Token{ID: user.NewID(), UserID: u.ID, Name: "n", Hash: token.HashSecret(secret),
					Prefix: secret[:22], Scopes: []string{pat.ScopeReadUsers}, CreatedAt: storeT0}, limit, storeT0)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					ok++
				case errors.Is(err, pat.ErrTooMany):
					tooMx++
				default:
					others = append(others, err)
				}
			})
		}
		wg.Wait()
		if len(others) > 0 {
			t.Fatalf("unexpected errors: %v", others)
		}
		if ok != limit || tooMx != tries-limit {
			t.Fatalf("%d created, %d refused; want %d and %d", ok, tooMx, limit, tries-limit)
		}
		if n := countRows(t, st, `SELECT COUNT(*) FROM personal_access_tokens WHERE user_id = $1`, u.ID); n != limit {
			t.Fatalf("%d rows, want %d", n, limit)
		}
	})
}

func TestUserPATsListsLiveTokensNewestFirst(t *testing.T) {
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		u := mustCreateUser(t, st, newUser("list@example.com", storeT0))
		other := mustCreateUser(t, st, newUser("other@example.com", storeT0))
		old, _ := mustCreatePAT(t, st, u.ID, patSpec{created: storeT0.Add(-3 * time.Hour)})
		newer, _ := mustCreatePAT(t, st, u.ID, patSpec{created: storeT0.Add(-time.Hour), expires: patAt(time.Microsecond)})
		mustCreatePAT(t, st, u.ID, patSpec{created: storeT0.Add(-2 * time.Hour), expires: patAt(0)}) // expired now
		revoked, _ := mustCreatePAT(t, st, u.ID, patSpec{created: storeT0.Add(-30 * time.Minute)})
		if _, err := st.RevokePAT(ctx, revoked.ID, "", storeT0); err != nil {
			t.Fatal(err)
		}
		mustCreatePAT(t, st, other.ID, patSpec{})
		got, err := st.UserPATs(ctx, u.ID, storeT0)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{newer.ID, old.ID}; !slices.Equal(patIDs(got), want) {
			t.Fatalf("listed %v, want %v (live only, newest first, own only)", patIDs(got), want)
		}
		if got, err := st.UserPATs(ctx, user.NewID(), storeT0); err != nil || got == nil || len(got) != 0 {
			t.Fatalf("no tokens: %v %v, want an empty list", got, err)
		}
	})
}

func TestPATsListingForSuperusers(t *testing.T) {
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		a := mustCreateUser(t, st, newUser("a@example.com", storeT0))
		b := mustCreateUser(t, st, newUser("b@example.com", storeT0))
		gone := mustCreateUser(t, st, newUser("gone@example.com", storeT0))
		a1, _ := mustCreatePAT(t, st, a.ID, patSpec{created: storeT0.Add(-5 * time.Minute)})
		b1, _ := mustCreatePAT(t, st, b.ID, patSpec{created: storeT0.Add(-4 * time.Minute)})
		a2, _ := mustCreatePAT(t, st, a.ID, patSpec{created: storeT0.Add(-3 * time.Minute)})
		aExpired, _ := mustCreatePAT(t, st, a.ID, patSpec{created: storeT0.Add(-2 * time.Minute), expires: patAt(-time.Minute)})
		bRevoked, _ := mustCreatePAT(t, st, b.ID, patSpec{created: storeT0.Add(-time.Minute)})
		if _, err := st.RevokePAT(ctx, bRevoked.ID, "", storeT0); err != nil {
			t.Fatal(err)
		}
		mustCreatePAT(t, st, gone.ID, patSpec{})
		if err := st.SoftDeleteUser(ctx, gone.ID, storeT0); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name  string
			q     pat.ListQuery
			want  []string
			total int
		}{
			{"live", pat.ListQuery{Limit: 10, Live: true}, []string{a2.ID, b1.ID, a1.ID}, 3},
			{"revoked or expired", pat.ListQuery{Limit: 10}, []string{bRevoked.ID, aExpired.ID}, 2},
			{"one user's", pat.ListQuery{Limit: 10, Live: true, UserID: a.ID}, []string{a2.ID, a1.ID}, 2},
			{"one user's expired", pat.ListQuery{Limit: 10, UserID: a.ID}, []string{aExpired.ID}, 1},
			{"page 2 of 2", pat.ListQuery{Limit: 2, Offset: 2, Live: true}, []string{a1.ID}, 3},
			{"past the end", pat.ListQuery{Limit: 2, Offset: 4, Live: true}, []string{}, 3},
			{"a deleted user's", pat.ListQuery{Limit: 10, UserID: gone.ID}, []string{}, 0},
			{"an unknown user", pat.ListQuery{Limit: 10, Live: true, UserID: user.NewID()}, []string{}, 0},
			{"not a UUID", pat.ListQuery{Limit: 10, Live: true, UserID: "nope"}, []string{}, 0},
		} {
			tc.q.Now = storeT0
			got, total, err := st.PATs(ctx, tc.q)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if !slices.Equal(ownedIDs(got), tc.want) || total != tc.total {
				t.Errorf("%s: %v (total %d), want %v (total %d)", tc.name, ownedIDs(got), total, tc.want, tc.total)
			}
		}
		got, _, _ := st.PATs(ctx, pat.ListQuery{Limit: 10, Live: true, UserID: b.ID, Now: storeT0})
		if len(got) != 1 || got[0].UserEmail != "b@example.com" || got[0].UserID != b.ID {
			t.Fatalf("owner of b's token: %+v", got)
		}
	})
}

func TestRevokePAT(t *testing.T) {
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		u := mustCreateUser(t, st, newUser("u@example.com", storeT0))
		other := mustCreateUser(t, st, newUser("other@example.com", storeT0))
		mine, _ := mustCreatePAT(t, st, u.ID, patSpec{})
		theirs, _ := mustCreatePAT(t, st, other.ID, patSpec{})

		// Another user's token, an unknown id and a malformed one are not found.
		for _, id := range []string{theirs.ID, user.NewID(), "not-a-uuid", ""} {
			if _, err := st.RevokePAT(ctx, id, u.ID, storeT0); !errors.Is(err, pat.ErrNotFound) {
				t.Errorf("revoke %q as u: %v, want ErrNotFound", id, err)
			}
		}
		if patState(t, st, theirs).RevokedAt != nil {
			t.Fatal("another user's token was revoked")
		}

		got, err := st.RevokePAT(ctx, mine.ID, u.ID, storeT0.Add(time.Minute))
		if err != nil || got.ID != mine.ID || got.RevokedAt == nil || !got.RevokedAt.Equal(storeT0.Add(time.Minute)) {
			t.Fatalf("revoke own: %+v %v", got, err)
		}
		// Again: succeeds and keeps the first revocation time.
		got, err = st.RevokePAT(ctx, mine.ID, u.ID, storeT0.Add(time.Hour))
		if err != nil || !got.RevokedAt.Equal(storeT0.Add(time.Minute)) {
			t.Fatalf("revoke again: %+v %v", got.RevokedAt, err)
		}
		// Without an owner (superusers): anyone's.
		if _, err := st.RevokePAT(ctx, theirs.ID, "", storeT0); err != nil {
			t.Fatal(err)
		}
		if patState(t, st, theirs).RevokedAt == nil {
			t.Fatal("not revoked")
		}
		// A deleted user's token is not found, even by superusers.
		gone := mustCreateUser(t, st, newUser("gone@example.com", storeT0))
		goneTok, _ := mustCreatePAT(t, st, gone.ID, patSpec{})
		if _, err := st.DB().ExecContext(ctx, `UPDATE users SET deleted_at = $2 WHERE id = $1`, gone.ID, storeT0); err != nil {
			t.Fatal(err)
		}
		if _, err := st.RevokePAT(ctx, goneTok.ID, "", storeT0); !errors.Is(err, pat.ErrNotFound) {
			t.Fatalf("deleted user's token: %v, want ErrNotFound", err)
		}
	})
}

func TestTouchPATOnlyMovesForward(t *testing.T) {
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		u := mustCreateUser(t, st, newUser("u@example.com", storeT0))
		tok, _ := mustCreatePAT(t, st, u.ID, patSpec{})
		steps := []struct {
			at, want time.Time
		}{
			{storeT0.Add(time.Minute), storeT0.Add(time.Minute)},
			{storeT0.Add(30 * time.Second), storeT0.Add(time.Minute)}, // an older write arriving late
			{storeT0.Add(3 * time.Minute), storeT0.Add(3 * time.Minute)},
		}
		for _, s := range steps {
			if err := st.TouchPAT(ctx, tok.ID, s.at); err != nil {
				t.Fatal(err)
			}
			if got := patState(t, st, tok).LastUsedAt; got == nil || !got.Equal(s.want) {
				t.Fatalf("after a use at %v: last_used_at %v, want %v", s.at, got, s.want)
			}
		}
		if err := st.TouchPAT(ctx, user.NewID(), storeT0); err != nil {
			t.Fatalf("an unknown token: %v", err)
		}
	})
}

// Every path that ends a user's credentials revokes their tokens in the same
// transaction; password changes only while the store revokes on them (the
// default, PAT_REVOKE_ON_PASSWORD_CHANGE=true). Logout-all and activation
// leave them alone.
func TestPATsRevokedWithTheirOwnersCredentials(t *testing.T) {
	type path struct {
		name     string
		revoke   bool // with the default policy
		password bool // revokes only while the store revokes on password changes
		run      func(t *testing.T, st *sqlstore.Store, u user.User) error
	}
	ctx := context.Background()
	paths := []path{
		{"password change", true, true, func(t *testing.T, st *sqlstore.Store, u user.User) error {
			sess := liveSession(t, st, u.ID)
			return st.SetPassword(ctx, u.ID, "$2a$04$new", sess.ID, storeT0)
		}},
		{"password set by a superuser", true, true, func(t *testing.T, st *sqlstore.Store, u user.User) error {
			_, err := st.UpdateUserAndPassword(ctx, u.ID, "$2a$04$new", "", storeT0, func(*user.User) error { return nil })
			return err
		}},
		{"password reset", true, true, func(t *testing.T, st *sqlstore.Store, u user.User) error {
			mustCreateResetToken(t, st, u.ID, "reset-hash", storeT0.Add(time.Hour))
			return st.ResetPassword(ctx, "reset-hash", u.ID, "$2a$04$new", storeT0)
		}},
		{"deactivation", true, false, func(t *testing.T, st *sqlstore.Store, u user.User) error {
			_, err := st.UpdateUser(ctx, u.ID, storeT0, func(u *user.User) error { u.IsActive = false; return nil })
			return err
		}},
		{"bulk deactivation", true, false, func(t *testing.T, st *sqlstore.Store, u user.User) error {
			_, err := st.BulkUpdateUsers(ctx, user.BulkDeactivate, []string{u.ID}, "", storeT0)
			return err
		}},
		{"deletion", true, false, func(t *testing.T, st *sqlstore.Store, u user.User) error {
			return st.SoftDeleteUser(ctx, u.ID, storeT0)
		}},
		{"bulk deletion", true, false, func(t *testing.T, st *sqlstore.Store, u user.User) error {
			_, err := st.BulkUpdateUsers(ctx, user.BulkDelete, []string{u.ID}, "", storeT0)
			return err
		}},
		{"logout everywhere", false, false, func(t *testing.T, st *sqlstore.Store, u user.User) error {
			_, err := st.RevokeUserSessions(ctx, u.ID, storeT0)
			return err
		}},
		{"profile update", false, false, func(t *testing.T, st *sqlstore.Store, u user.User) error {
			_, err := st.UpdateUser(ctx, u.ID, storeT0, func(u *user.User) error { u.FirstName = "Renamed"; return nil })
			return err
		}},
	}
	for _, keep := range []bool{false, true} {
		name := "revoking_on_password_change"
		if keep {
			name = "keeping_tokens_on_password_change"
		}
		t.Run(name, func(t *testing.T) {
			forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
				st.KeepPATsOnPasswordChange(keep)
				for i, p := range paths {
					want := p.revoke && !(keep && p.password)
					u := mustCreateUser(t, st, newUser(fmt.Sprintf("owner%d@example.com", i), storeT0))
					other := mustCreateUser(t, st, newUser(fmt.Sprintf("bystander%d@example.com", i), storeT0))
					a, _ := mustCreatePAT(t, st, u.ID, patSpec{})
					b, _ := mustCreatePAT(t, st, u.ID, patSpec{scopes: []string{pat.ScopeWriteUsers}})
					earlier, _ := mustCreatePAT(t, st, u.ID, patSpec{})
					if _, err := st.RevokePAT(ctx, earlier.ID, "", storeT0.Add(-time.Hour)); err != nil {
						t.Fatal(err)
					}
					theirs, _ := mustCreatePAT(t, st, other.ID, patSpec{})
					if err := p.run(t, st, u); err != nil {
						t.Fatalf("%s: %v", p.name, err)
					}
					for _, tok := range []pat.Token{a, b} {
						if got := patState(t, st, tok).RevokedAt; (got != nil) != want || (got != nil && !got.Equal(storeT0)) {
							t.Errorf("%s: revoked_at %v, want revoked %v at %v", p.name, got, want, storeT0)
						}
					}
					if got := patState(t, st, earlier).RevokedAt; got == nil || !got.Equal(storeT0.Add(-time.Hour)) {
						t.Errorf("%s: an earlier revocation time was rewritten: %v", p.name, got)
					}
					if patState(t, st, theirs).RevokedAt != nil {
						t.Errorf("%s: another user's token was revoked", p.name)
					}
				}
			})
		})
	}
}

// A failure after the tokens were revoked rolls their revocation back with
// the rest: it is part of the transaction.
func TestPATRevocationIsPartOfTheTransaction(t *testing.T) {
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		u := mustCreateUser(t, st, newUser("owner@example.com", storeT0))
		tok, _ := mustCreatePAT(t, st, u.ID, patSpec{})
		boom := errors.New("boom")
		err := st.InTx(ctx, func(tx *sqlstore.Store) error {
			if err := tx.SetPassword(ctx, u.ID, "$2a$04$new", "", storeT0); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("InTx: %v", err)
		}
		if patState(t, st, tok).RevokedAt != nil {
			t.Fatal("the token stayed revoked after the rollback")
		}
	})
}

func TestPurgePATs(t *testing.T) {
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		u := mustCreateUser(t, st, newUser("u@example.com", storeT0.Add(-100*24*time.Hour)))
		cutoff := storeT0.Add(-30 * 24 * time.Hour)
		old := storeT0.Add(-90 * 24 * time.Hour)
		expiredLongAgo, _ := mustCreatePAT(t, st, u.ID, patSpec{created: old, expires: &[]time.Time{cutoff.Add(-time.Second)}[0]})
		expiredRecently, _ := mustCreatePAT(t, st, u.ID, patSpec{created: old, expires: &[]time.Time{cutoff.Add(time.Second)}[0]})
		revokedLongAgo, _ := mustCreatePAT(t, st, u.ID, patSpec{created: old})
		revokedRecently, _ := mustCreatePAT(t, st, u.ID, patSpec{created: old})
		forever, _ := mustCreatePAT(t, st, u.ID, patSpec{created: old})
		live, _ := mustCreatePAT(t, st, u.ID, patSpec{created: old, expires: patAt(time.Hour)})
		for tok, when := range map[string]time.Time{revokedLongAgo.ID: cutoff.Add(-time.Second), revokedRecently.ID: cutoff.Add(time.Second)} {
			if _, err := st.RevokePAT(ctx, tok, "", when); err != nil {
				t.Fatal(err)
			}
		}
		n, err := st.PurgePATs(ctx, cutoff)
		if err != nil || n != 2 {
			t.Fatalf("purged %d (%v), want 2", n, err)
		}
		for _, tok := range []pat.Token{expiredRecently, revokedRecently, forever, live} {
			patState(t, st, tok) // fails when gone
		}
		for _, tok := range []pat.Token{expiredLongAgo, revokedLongAgo} {
			if _, _, err := st.PATByHash(ctx, tok.Hash); !errors.Is(err, pat.ErrNotFound) {
				t.Errorf("token %s still there: %v", tok.ID, err)
			}
		}
		if n, err := st.PurgePATs(ctx, cutoff); err != nil || n != 0 {
			t.Fatalf("second purge: %d %v", n, err)
		}
	})
}
