package pat_test

// Service tests: the rules of internal/pat over the real store, on every
// engine. The clock is the only fake.

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/apperr"
	"github.com/gatehouse-dev/gatehouse/internal/dbtest"
	"github.com/gatehouse-dev/gatehouse/internal/pat"
	"github.com/gatehouse-dev/gatehouse/internal/sqlstore"
	"github.com/gatehouse-dev/gatehouse/internal/token"
	"github.com/gatehouse-dev/gatehouse/internal/user"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// clock is a settable time for Service.Now.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time          { return c.now }
func (c *clock) advance(d time.Duration) { c.now = c.now.Add(d) }

type fixture struct {
	st    *sqlstore.Store
	svc   *pat.Service
	clock *clock
}

var defaultOptions = pat.Options{DefaultExpiryDays: 90, MaxExpiryDays: 365}

func forEachEngine(t *testing.T, opts pat.Options, fn func(t *testing.T, f fixture)) {
	for _, e := range dbtest.Engines(t) {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			st := dbtest.Open(t, e)
			c := &clock{now: t0}
			svc := pat.NewService(st, opts, slog.New(slog.NewTextHandler(io.Discard, nil)))
			svc.Now = c.Now
			fn(t, fixture{st: st, svc: svc, clock: c})
		})
	}
}

// person creates a user and returns the actor of a first-party session.
func (f fixture) person(t *testing.T, email string, superuser bool) user.Actor {
	t.Helper()
	u := user.User{ID: user.NewID(), Email: email, FirstName: "Test", IsActive: true, IsSuperuser: superuser,
		CreatedAt: t0, UpdatedAt: t0}
	if err := f.st.CreateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	return user.Actor{UserID: u.ID, SessionID: user.NewID(), IsSuperuser: superuser}
}

func (f fixture) exec(t *testing.T, q string, args ...any) {
	t.Helper()
	if _, err := f.st.DB().ExecContext(context.Background(), q, args...); err != nil {
		t.Fatal(err)
	}
}

// create makes a read:users token with the default expiry.
func (f fixture) create(t *testing.T, actor user.Actor, scopes ...string) (pat.Token, string) {
	t.Helper()
	if len(scopes) == 0 {
		scopes = []string{pat.ScopeReadUsers}
	}
	tok, secret, err := f.svc.Create(context.Background(), actor, pat.Input{Name: "ci", Scopes: scopes})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	return tok, secret
}

// drain writes the queued last uses and returns.
func (f fixture) drain() {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f.svc.Run(ctx)
}

func (f fixture) lastUsed(t *testing.T, tok pat.Token) *time.Time {
	t.Helper()
	got, _, err := f.st.PATByHash(context.Background(), tok.Hash)
	if err != nil {
		t.Fatal(err)
	}
	return got.LastUsedAt
}

func days(n int) user.Opt[int] { return user.Opt[int]{Set: true, Value: n} }

// fieldsOf returns the fields of a 422, failing on any other error.
func fieldsOf(t *testing.T, err error) map[string]string {
	t.Helper()
	ae, ok := apperr.As(err)
	if !ok || ae.Kind != apperr.Invalid || ae.Code != apperr.CodeValidation {
		t.Fatalf("error %v, want a 422 VAL_001", err)
	}
	out := map[string]string{}
	for _, f := range ae.Fields {
		out[f.Field] = f.Message
	}
	return out
}

func TestCreate(t *testing.T) {
	forEachEngine(t, defaultOptions, func(t *testing.T, f fixture) {
		ctx := context.Background()
		alice := f.person(t, "alice@example.com", false)

		tok, secret, err := f.svc.Create(ctx, alice, pat.Input{Name: "  deploy  ", Scopes: []string{"write:users", "read:users"}})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(secret, pat.Prefix) || len(secret) != len(pat.Prefix)+43 {
			t.Fatalf("secret %q: want the prefix and 43 base64url characters (256 bits)", secret)
		}
		if tok.Prefix != secret[:22] || tok.Hash != token.HashSecret(secret) || tok.Name != "deploy" || tok.UserID != alice.UserID ||
			strings.Join(tok.Scopes, " ") != "read:users write:users" || tok.ExpiresAt == nil || !tok.ExpiresAt.Equal(t0.AddDate(0, 0, 90)) {
			t.Fatalf("token %+v", tok)
		}
		if n := countRows(t, f.st, `SELECT COUNT(*) FROM personal_access_tokens WHERE token_hash = $1 AND prefix = $2`, tok.Hash, tok.Prefix); n != 1 {
			t.Fatal("the token is not stored by its digest")
		}
		if n := countRows(t, f.st, `SELECT COUNT(*) FROM personal_access_tokens WHERE token_hash = $1`, secret); n != 0 {
			t.Fatal("the secret is stored")
		}
		_, again, _ := f.svc.Create(ctx, alice, pat.Input{Name: "deploy", Scopes: []string{"read:users"}})
		if again == secret {
			t.Fatal("two tokens share a secret")
		}

		// Explicit lifetimes: 1 day and the maximum.
		for _, d := range []int{1, 365} {
			tok, _, err := f.svc.Create(ctx, alice, pat.Input{Name: "n", Scopes: []string{"read:users"}, ExpiresInDays: days(d)})
			if err != nil || !tok.ExpiresAt.Equal(t0.AddDate(0, 0, d)) {
				t.Fatalf("%d days: %v, %v", d, tok.ExpiresAt, err)
			}
		}

		// The admin scope is the superusers'.
		_, _, err = f.svc.Create(ctx, alice, pat.Input{Name: "root", Scopes: []string{"admin"}})
		if !errors.Is(err, pat.ErrAdminScope) || apperr.KindOf(err) != apperr.Forbidden {
			t.Fatalf("admin scope for a regular user: %v", err)
		}
		root := f.person(t, "root@example.com", true)
		if tok, _, err := f.svc.Create(ctx, root, pat.Input{Name: "root", Scopes: []string{"admin", "read:users"}}); err != nil ||
			strings.Join(tok.Scopes, " ") != "read:users admin" {
			t.Fatalf("admin scope for a superuser: %v %v", tok.Scopes, err)
		}

		// Only a first-party sign-in manages tokens: not a personal access
		// token's actor, nor an application's.
		viaToken := user.Actor{UserID: alice.UserID}
		if _, _, err := f.svc.Create(ctx, viaToken, pat.Input{Name: "n", Scopes: []string{"read:users"}}); !errors.Is(err, pat.ErrFirstPartyOnly) {
			t.Fatalf("actor without a session: %v", err)
		}
		if _, err := f.svc.Mine(ctx, viaToken); !errors.Is(err, pat.ErrFirstPartyOnly) {
			t.Fatalf("Mine without a session: %v", err)
		}
		if _, err := f.svc.Revoke(ctx, viaToken, tok.ID); !errors.Is(err, pat.ErrFirstPartyOnly) {
			t.Fatalf("Revoke without a session: %v", err)
		}
		superViaToken := user.Actor{UserID: root.UserID, IsSuperuser: true}
		if _, _, err := f.svc.List(ctx, superViaToken, pat.ListQuery{Limit: 10, Live: true}); !errors.Is(err, pat.ErrFirstPartyOnly) {
			t.Fatalf("List without a session: %v", err)
		}
		if _, err := f.svc.RevokeAny(ctx, superViaToken, tok.ID); !errors.Is(err, pat.ErrFirstPartyOnly) {
			t.Fatalf("RevokeAny without a session: %v", err)
		}
		// An unknown or deleted user gets nothing.
		ghost := user.Actor{UserID: user.NewID(), SessionID: user.NewID()}
		if _, _, err := f.svc.Create(ctx, ghost, pat.Input{Name: "n", Scopes: []string{"read:users"}}); !errors.Is(err, user.ErrNotFound) {
			t.Fatalf("unknown user: %v", err)
		}
	})
}

func TestCreateRefusals(t *testing.T) {
	forEachEngine(t, defaultOptions, func(t *testing.T, f fixture) {
		ctx := context.Background()
		alice := f.person(t, "alice@example.com", false)
		before := countRows(t, f.st, `SELECT COUNT(*) FROM personal_access_tokens`)
		for _, tc := range []struct {
			name string
			in   pat.Input
			want map[string]string // field -> fragment of its message
		}{
			{"10 000-character name", pat.Input{Name: strings.Repeat("n", 10_000), Scopes: []string{"read:users"}},
				map[string]string{"name": "at most 100 characters"}},
			{"control characters", pat.Input{Name: "ci\r\nX-Injected: 1", Scopes: []string{"read:users"}},
				map[string]string{"name": "control characters"}},
			{"markup", pat.Input{Name: `<img src=x onerror=alert(1)>`, Scopes: []string{"read:users"}},
				map[string]string{"name": "< or >"}},
			{"unknown scope, named", pat.Input{Name: "n", Scopes: []string{"read:users", "root"}},
				map[string]string{"scopes": `Unknown scope "root"`}},
			{"no scopes", pat.Input{Name: "n"}, map[string]string{"scopes": "At least one scope"}},
			{"expiry today", pat.Input{Name: "n", Scopes: []string{"read:users"}, ExpiresInDays: days(0)},
				map[string]string{"expires_in_days": "must be in the future"}},
			{"expiry in the past", pat.Input{Name: "n", Scopes: []string{"read:users"}, ExpiresInDays: days(-30)},
				map[string]string{"expires_in_days": "must be in the future"}},
			{"beyond the limit", pat.Input{Name: "n", Scopes: []string{"read:users"}, ExpiresInDays: days(366)},
				map[string]string{"expires_in_days": "at most 365 days"}},
			{"far beyond the limit", pat.Input{Name: "n", Scopes: []string{"read:users"}, ExpiresInDays: days(1 << 40)},
				map[string]string{"expires_in_days": "at most 365 days"}},
			{"explicit null", pat.Input{Name: "n", Scopes: []string{"read:users"}, ExpiresInDays: user.Opt[int]{Set: true, Null: true}},
				map[string]string{"expires_in_days": `send "no_expiry": true`}},
			{"no expiry not allowed", pat.Input{Name: "n", Scopes: []string{"read:users"}, NoExpiry: true},
				map[string]string{"no_expiry": "not allowed on this server"}},
			{"both", pat.Input{Name: "n", Scopes: []string{"read:users"}, NoExpiry: true, ExpiresInDays: days(5)},
				map[string]string{"expires_in_days": "either expires_in_days or no_expiry"}},
			{"every problem at once", pat.Input{Name: "", Scopes: []string{"nope"}, ExpiresInDays: days(0)},
				map[string]string{"name": "must not be empty", "scopes": `"nope"`, "expires_in_days": "in the future"}},
			// Validation comes before the admin-scope permission.
			{"admin with a bad name", pat.Input{Name: "<x>", Scopes: []string{"admin"}}, map[string]string{"name": "< or >"}},
		} {
			_, secret, err := f.svc.Create(ctx, alice, tc.in)
			if secret != "" {
				t.Errorf("%s: a secret was returned with the error", tc.name)
			}
			got := fieldsOf(t, err)
			if len(got) != len(tc.want) {
				t.Errorf("%s: fields %v, want %v", tc.name, got, tc.want)
			}
			for field, fragment := range tc.want {
				if !strings.Contains(got[field], fragment) {
					t.Errorf("%s: %s: %q, want it to contain %q", tc.name, field, got[field], fragment)
				}
			}
		}
		if after := countRows(t, f.st, `SELECT COUNT(*) FROM personal_access_tokens`); after != before {
			t.Fatalf("refused creations stored %d tokens", after-before)
		}
	})
}

func TestCreateWithoutExpiryWhenAllowed(t *testing.T) {
	opts := defaultOptions
	opts.AllowNoExpiry, opts.DefaultExpiryDays, opts.MaxExpiryDays = true, 7, 30
	forEachEngine(t, opts, func(t *testing.T, f fixture) {
		ctx := context.Background()
		alice := f.person(t, "alice@example.com", false)
		tok, _, err := f.svc.Create(ctx, alice, pat.Input{Name: "forever", Scopes: []string{"read:users"}, NoExpiry: true,
			ExpiresInDays: user.Opt[int]{Set: true, Null: true}})
		if err != nil || tok.ExpiresAt != nil {
			t.Fatalf("no expiry: %v %v", tok.ExpiresAt, err)
		}
		// The settings' default and maximum apply.
		tok, _, err = f.svc.Create(ctx, alice, pat.Input{Name: "default", Scopes: []string{"read:users"}})
		if err != nil || !tok.ExpiresAt.Equal(t0.AddDate(0, 0, 7)) {
			t.Fatalf("default: %v %v", tok.ExpiresAt, err)
		}
		_, _, err = f.svc.Create(ctx, alice, pat.Input{Name: "long", Scopes: []string{"read:users"}, ExpiresInDays: days(31)})
		if !strings.Contains(fieldsOf(t, err)["expires_in_days"], "at most 30 days") {
			t.Fatalf("maximum: %v", err)
		}
		// A token without expiry never expires.
		f.clock.advance(100 * 365 * 24 * time.Hour)
		list, err := f.svc.Mine(ctx, alice)
		if err != nil || len(list) != 1 || list[0].Name != "forever" {
			t.Fatalf("after a century: %v %v", list, err)
		}
	})
}

func TestCreateLiveLimit(t *testing.T) {
	forEachEngine(t, defaultOptions, func(t *testing.T, f fixture) {
		ctx := context.Background()
		alice := f.person(t, "alice@example.com", false)
		var first pat.Token
		for i := range pat.MaxLive {
			tok, _ := f.create(t, alice)
			if i == 0 {
				first = tok
			}
		}
		_, _, err := f.svc.Create(ctx, alice, pat.Input{Name: "one too many", Scopes: []string{"read:users"}})
		if !errors.Is(err, pat.ErrTooMany) || apperr.KindOf(err) != apperr.Conflict {
			t.Fatalf("token %d: %v, want ErrTooMany", pat.MaxLive+1, err)
		}
		// Revoking one makes room.
		if _, err := f.svc.Revoke(ctx, alice, first.ID); err != nil {
			t.Fatal(err)
		}
		f.create(t, alice)
	})
}

func TestAuthenticate(t *testing.T) {
	forEachEngine(t, defaultOptions, func(t *testing.T, f fixture) {
		ctx := context.Background()
		alice := f.person(t, "alice@example.com", false)
		tok, secret := f.create(t, alice, pat.ScopeReadUsers)

		got, owner, err := f.svc.Authenticate(ctx, secret)
		if err != nil || got.ID != tok.ID || owner.ID != alice.UserID || !got.Allows(pat.ScopeReadUsers) {
			t.Fatalf("good token: %+v %+v %v", got, owner, err)
		}
		if a := got.Actor(owner); a.UserID != alice.UserID || a.SessionID != "" || a.IsSuperuser {
			t.Fatalf("actor %+v", a)
		}

		// Guessing: right prefix, wrong rest; a token cut short; garbage.
		wrong := secret[:22] + strings.Repeat("A", len(secret)-22)
		for _, raw := range []string{wrong, secret[:len(secret)-1], secret + "A", tok.Prefix, tok.Hash, "", pat.Prefix} {
			if _, _, err := f.svc.Authenticate(ctx, raw); !errors.Is(err, pat.ErrInvalid) {
				t.Errorf("Authenticate(%.30q) = %v, want ErrInvalid", raw, err)
			}
		}

		// Expired: at the expiry instant and after.
		f.clock.advance(90 * 24 * time.Hour)
		if _, _, err := f.svc.Authenticate(ctx, secret); !errors.Is(err, pat.ErrExpired) || apperr.KindOf(err) != apperr.Unauthenticated {
			t.Fatalf("expired: %v", err)
		}
		f.clock.now = t0

		// The owner's state is read on every call.
		f.exec(t, `UPDATE users SET is_active = FALSE WHERE id = $1`, alice.UserID)
		if _, _, err := f.svc.Authenticate(ctx, secret); !errors.Is(err, pat.ErrOwnerInactive) {
			t.Fatalf("inactive owner: %v", err)
		}
		f.exec(t, `UPDATE users SET is_active = TRUE WHERE id = $1`, alice.UserID)
		if _, _, err := f.svc.Authenticate(ctx, secret); err != nil {
			t.Fatalf("active again: %v", err)
		}
		f.exec(t, `UPDATE users SET deleted_at = created_at WHERE id = $1`, alice.UserID)
		if _, _, err := f.svc.Authenticate(ctx, secret); !errors.Is(err, pat.ErrInvalid) {
			t.Fatalf("deleted owner: %v", err)
		}
		f.exec(t, `UPDATE users SET deleted_at = NULL WHERE id = $1`, alice.UserID)

		// Revocation applies to the next call.
		if _, err := f.svc.Revoke(ctx, alice, tok.ID); err != nil {
			t.Fatal(err)
		}
		if _, _, err := f.svc.Authenticate(ctx, secret); !errors.Is(err, pat.ErrRevoked) {
			t.Fatalf("revoked: %v", err)
		}
	})
}

func TestMineRevokeAndTheSuperusersView(t *testing.T) {
	forEachEngine(t, defaultOptions, func(t *testing.T, f fixture) {
		ctx := context.Background()
		alice := f.person(t, "alice@example.com", false)
		bob := f.person(t, "bob@example.com", false)
		root := f.person(t, "root@example.com", true)
		a1, _ := f.create(t, alice)
		f.clock.advance(time.Second)
		a2, _ := f.create(t, alice)
		b1, _ := f.create(t, bob)

		mine, err := f.svc.Mine(ctx, alice)
		if err != nil || len(mine) != 2 || mine[0].ID != a2.ID || mine[1].ID != a1.ID {
			t.Fatalf("alice's tokens: %v %v", mine, err)
		}
		// Bob's token through Alice's revoke is not found, like an unknown id.
		for _, id := range []string{b1.ID, user.NewID(), "not-a-uuid"} {
			if _, err := f.svc.Revoke(ctx, alice, id); !errors.Is(err, pat.ErrNotFound) {
				t.Errorf("alice revokes %s: %v, want ErrNotFound", id, err)
			}
		}
		if list, _ := f.svc.Mine(ctx, bob); len(list) != 1 {
			t.Fatal("bob's token was touched")
		}
		got, err := f.svc.Revoke(ctx, alice, a1.ID)
		if err != nil || got.RevokedAt == nil {
			t.Fatalf("revoke own: %+v %v", got, err)
		}
		if _, err := f.svc.Revoke(ctx, alice, a1.ID); err != nil {
			t.Fatalf("revoking again succeeds: %v", err)
		}
		if mine, _ := f.svc.Mine(ctx, alice); len(mine) != 1 || mine[0].ID != a2.ID {
			t.Fatalf("after revoking: %v", mine)
		}

		// The superusers' listing and revocation.
		if _, _, err := f.svc.List(ctx, alice, pat.ListQuery{Limit: 10, Live: true}); !errors.Is(err, pat.ErrNotPermitted) {
			t.Fatalf("List by a regular user: %v", err)
		}
		if _, err := f.svc.RevokeAny(ctx, alice, b1.ID); !errors.Is(err, pat.ErrNotPermitted) {
			t.Fatalf("RevokeAny by a regular user: %v", err)
		}
		live, total, err := f.svc.List(ctx, root, pat.ListQuery{Limit: 10, Live: true})
		if err != nil || total != 2 || len(live) != 2 || live[0].ID != b1.ID || live[0].UserEmail != "bob@example.com" {
			t.Fatalf("live tokens: %+v %d %v", live, total, err)
		}
		if old, total, _ := f.svc.List(ctx, root, pat.ListQuery{Limit: 10, UserID: alice.UserID}); total != 1 || old[0].ID != a1.ID {
			t.Fatalf("alice's revoked tokens: %+v", old)
		}
		// The listing's "now" is the service's clock: after expiry, live
		// tokens move to the other list.
		f.clock.advance(91 * 24 * time.Hour)
		if _, total, _ := f.svc.List(ctx, root, pat.ListQuery{Limit: 10, Live: true}); total != 0 {
			t.Fatalf("%d live tokens after every expiry", total)
		}
		if _, err := f.svc.RevokeAny(ctx, root, b1.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.RevokeAny(ctx, root, user.NewID()); !errors.Is(err, pat.ErrNotFound) {
			t.Fatalf("unknown id: %v", err)
		}
	})
}

// last_used_at is written at most once a minute per token, by the
// background writer, never by the request.
func TestLastUseIsWrittenAtMostOnceAMinute(t *testing.T) {
	forEachEngine(t, defaultOptions, func(t *testing.T, f fixture) {
		ctx := context.Background()
		alice := f.person(t, "alice@example.com", false)
		tok, secret := f.create(t, alice)
		other, otherSecret := f.create(t, alice)
		use := func(raw string) {
			t.Helper()
			if _, _, err := f.svc.Authenticate(ctx, raw); err != nil {
				t.Fatal(err)
			}
		}
		want := func(tk pat.Token, at time.Time) {
			t.Helper()
			got := f.lastUsed(t, tk)
			if at.IsZero() {
				if got != nil {
					t.Fatalf("last_used_at %v, want none", got)
				}
				return
			}
			if got == nil || !got.Equal(at) {
				t.Fatalf("last_used_at %v, want %v", got, at)
			}
		}

		use(secret)
		want(tok, time.Time{}) // not written by the request itself
		f.clock.advance(30 * time.Second)
		use(secret) // within the minute: not queued again
		f.drain()
		want(tok, t0) // one write, of the first use
		want(other, time.Time{})

		f.clock.advance(29 * time.Second) // 59 s after the first use: read back from the row, still within
		use(secret)
		f.drain()
		want(tok, t0)

		f.clock.advance(2 * time.Second) // 61 s after the first use
		use(secret)
		use(otherSecret) // per token
		f.drain()
		want(tok, t0.Add(61*time.Second))
		want(other, t0.Add(61*time.Second))
	})
}

// A full queue drops the write: a request never waits for it.
func TestLastUseQueueNeverBlocks(t *testing.T) {
	opts := defaultOptions
	opts.UsageQueue = 1
	forEachEngine(t, opts, func(t *testing.T, f fixture) {
		ctx := context.Background()
		alice := f.person(t, "alice@example.com", false)
		var toks []pat.Token
		var secrets []string
		for range 3 {
			tok, secret := f.create(t, alice)
			toks, secrets = append(toks, tok), append(secrets, secret)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			for _, s := range secrets { // no writer runs: the queue holds one
				if _, _, err := f.svc.Authenticate(ctx, s); err != nil {
					t.Error(err)
				}
			}
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("Authenticate blocked on a full last-use queue")
		}
		f.drain()
		if f.lastUsed(t, toks[0]) == nil || f.lastUsed(t, toks[1]) != nil || f.lastUsed(t, toks[2]) != nil {
			t.Fatal("want the first use written and the two that found the queue full dropped")
		}
	})
}

func countRows(t *testing.T, st *sqlstore.Store, q string, args ...any) int {
	t.Helper()
	var n int
	if err := st.DB().QueryRowContext(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
