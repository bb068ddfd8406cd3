package sqlstore_test

// Store-level contract tests that run on every engine (SQLite always,
// PostgreSQL when TEST_DATABASE_URL is set). Helpers shared with
// users_test.go: newUser and forEachEngine.

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/dbtest"
	"github.com/gatehouse-dev/gatehouse/internal/sqlstore"
	"github.com/gatehouse-dev/gatehouse/internal/token"
	"github.com/gatehouse-dev/gatehouse/internal/user"
)

// storeT0 is the fixed clock of these tests: store methods take "now" as an
// argument, so nothing here depends on the wall clock.
var storeT0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func strp(s string) *string { return &s }
func boolp(b bool) *bool    { return &b }

// mustCreateUser inserts u and fails the test on error.
func mustCreateUser(t *testing.T, st *sqlstore.Store, u user.User) user.User {
	t.Helper()
	if err := st.CreateUser(context.Background(), u); err != nil {
		t.Fatalf("create user %s: %v", u.Email, err)
	}
	return u
}

// sessionSpec describes a user_sessions row to insert.
type sessionSpec struct {
	active   bool
	lastUsed time.Time
	expires  time.Time
	updated  time.Time
}

// mustCreateSession inserts a session of userID and returns it.
func mustCreateSession(t *testing.T, st *sqlstore.Store, userID string, sp sessionSpec) auth.Session {
	t.Helper()
	if sp.updated.IsZero() {
		sp.updated = sp.lastUsed
	}
	s := auth.Session{ID: user.NewID(), UserID: userID, RefreshHash: token.HashSecret(token.RandomSecret()),
		DeviceName: strp("Chrome on Linux"), IPAddress: strp("192.0.2.1"), IsActive: sp.active,
		LastUsedAt: sp.lastUsed, ExpiresAt: sp.expires, CreatedAt: sp.lastUsed, UpdatedAt: sp.updated}
	if err := st.CreateSession(context.Background(), s); err != nil {
		t.Fatalf("create session: %v", err)
	}
	return s
}

// liveSession is an active session used just now that expires in a day.
func liveSession(t *testing.T, st *sqlstore.Store, userID string) auth.Session {
	t.Helper()
	return mustCreateSession(t, st, userID, sessionSpec{active: true, lastUsed: storeT0, expires: storeT0.Add(24 * time.Hour)})
}

// mustCreateResetToken inserts a reset token of userID with the given hash.
func mustCreateResetToken(t *testing.T, st *sqlstore.Store, userID, hash string, expires time.Time) auth.ResetToken {
	t.Helper()
	rt := auth.ResetToken{ID: user.NewID(), UserID: userID, Hash: hash, ExpiresAt: expires, CreatedAt: storeT0}
	if err := st.CreateResetToken(context.Background(), rt); err != nil {
		t.Fatalf("create reset token: %v", err)
	}
	return rt
}

// countRows runs a COUNT(*) query.
func countRows(t *testing.T, st *sqlstore.Store, query string, args ...any) int {
	t.Helper()
	var n int
	if err := st.DB().QueryRowContext(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("count %q: %v", query, err)
	}
	return n
}

// sessionActive reports whether the session row is active (and fails when
// the row is gone).
func sessionActive(t *testing.T, st *sqlstore.Store, id string) bool {
	t.Helper()
	s, err := st.SessionByID(context.Background(), id)
	if err != nil {
		t.Fatalf("session %s: %v", id, err)
	}
	return s.IsActive
}

func sessionExists(t *testing.T, st *sqlstore.Store, id string) bool {
	t.Helper()
	_, err := st.SessionByID(context.Background(), id)
	if errors.Is(err, auth.ErrSessionNotFound) {
		return false
	}
	if err != nil {
		t.Fatalf("session %s: %v", id, err)
	}
	return true
}

func ids(us []user.User) []string {
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = u.ID
	}
	return out
}

func sessionIDs(ss []auth.Session) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.ID
	}
	return out
}

// ---------------------------------------------------------------------------
// ListUsers

// listFixture builds the users of the listing tests. IDs are generated once
// so every engine stores exactly the same rows.
func listFixture() []user.User {
	type f struct {
		email, first string
		last, locale *string
		active, su   bool
		created      time.Duration // after storeT0
		updated      time.Duration
	}
	// Sub-second differences in created_at probe the stored timestamp
	// format's ordering (SQLite keeps timestamps as text).
	fs := []f{
		{"alice@example.com", "alice", strp("Smith"), strp("en"), true, false, 1 * time.Second, 9 * time.Second},
		{"bob@example.org", "Bob", nil, strp("fr"), true, true, 1500 * time.Millisecond, 3 * time.Second},
		{"carol@example.com", "Alice", strp("jones"), nil, false, false, 1250 * time.Millisecond, 5 * time.Second},
		{"dave@example.net", "dave", strp("O'Brien"), strp("de"), true, false, 2 * time.Second, 2 * time.Second},
		{"erin@example.com", "Erin", strp(`100%_real\x`), nil, true, false, 1*time.Second + time.Microsecond, 7 * time.Second},
		{"frank@example.com", "Frank", nil, strp("en"), false, true, 3 * time.Second, 8 * time.Second},
		{"grace@example.com", "Grace", strp("Harrison"), strp("EN"), true, false, 3 * time.Second, 1 * time.Second},
		{"heidi_r@example.com", "Heidi", strp("Roberts"), nil, true, false, 4 * time.Second, 6 * time.Second},
		{"ivan@example.com", `Ivan "The Rock"`, strp("Zed"), strp("es"), true, false, 5 * time.Second, 4 * time.Second},
		{"judy@example.com", "judy", nil, nil, true, false, 6 * time.Second, 10 * time.Second},
	}
	out := make([]user.User, len(fs))
	for i, x := range fs {
		u := newUser(x.email, storeT0.Add(x.created))
		u.FirstName, u.LastName, u.Locale, u.IsActive, u.IsSuperuser = x.first, x.last, x.locale, x.active, x.su
		u.UpdatedAt = storeT0.Add(x.updated)
		out[i] = u
	}
	return out
}

// expectedOrder sorts users the way the store promises: the field's value
// (text lower-cased, byte-wise; NULL text last in both directions), then id,
// both in the requested direction.
func expectedOrder(users []user.User, field string, desc bool) []string {
	s := slices.Clone(users)
	dir := func(c int) int {
		if desc {
			return -c
		}
		return c
	}
	nullableText := func(a, b *string) (int, bool) {
		switch {
		case a == nil && b == nil:
			return 0, false
		case a == nil:
			return 1, true // NULL last, whatever the direction
		case b == nil:
			return -1, true
		}
		return dir(strings.Compare(strings.ToLower(*a), strings.ToLower(*b))), false
	}
	boolInt := func(b bool) int {
		if b {
			return 1
		}
		return 0
	}
	slices.SortFunc(s, func(a, b user.User) int {
		var c int
		switch field {
		case "email":
			c = dir(strings.Compare(strings.ToLower(a.Email), strings.ToLower(b.Email)))
		case "first_name":
			c = dir(strings.Compare(strings.ToLower(a.FirstName), strings.ToLower(b.FirstName)))
		case "last_name", "locale":
			pa, pb := a.LastName, b.LastName
			if field == "locale" {
				pa, pb = a.Locale, b.Locale
			}
			var fixed bool
			if c, fixed = nullableText(pa, pb); fixed {
				return c
			}
		case "created_at":
			c = dir(a.CreatedAt.Compare(b.CreatedAt))
		case "updated_at":
			c = dir(a.UpdatedAt.Compare(b.UpdatedAt))
		case "is_active":
			c = dir(cmp.Compare(boolInt(a.IsActive), boolInt(b.IsActive)))
		case "is_superuser":
			c = dir(cmp.Compare(boolInt(a.IsSuperuser), boolInt(b.IsSuperuser)))
		default:
			panic("unknown field " + field)
		}
		if c != 0 {
			return c
		}
		return dir(strings.Compare(a.ID, b.ID))
	})
	return ids(s)
}

func TestListUsersSortOrders(t *testing.T) {
	users := listFixture()
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		for _, u := range users {
			mustCreateUser(t, st, u)
		}
		// Every whitelisted field, both directions.
		for _, field := range user.SortFields {
			for _, desc := range []bool{false, true} {
				got, total, err := st.ListUsers(ctx, user.ListQuery{SortBy: field, Desc: desc, Limit: 100})
				if err != nil {
					t.Fatalf("sort %s desc=%v: %v", field, desc, err)
				}
				if total != len(users) {
					t.Errorf("sort %s desc=%v: total %d, want %d", field, desc, total, len(users))
				}
				if want := expectedOrder(users, field, desc); !slices.Equal(ids(got), want) {
					t.Errorf("sort %s desc=%v:\n got %v\nwant %v", field, desc, emails(got), emailsOf(want, users))
				}
			}
		}
		// NULL last names are last in both directions.
		for _, desc := range []bool{false, true} {
			got, _, err := st.ListUsers(ctx, user.ListQuery{SortBy: "last_name", Desc: desc, Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			seenNull := false
			for _, u := range got {
				if u.LastName == nil {
					seenNull = true
				} else if seenNull {
					t.Errorf("last_name desc=%v: %s (last name %q) after a NULL last name", desc, u.Email, *u.LastName)
				}
			}
			if !seenNull {
				t.Fatalf("fixture has NULL last names but none was listed")
			}
		}
		// No sort field: created_at desc, then id desc.
		got, _, err := st.ListUsers(ctx, user.ListQuery{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		if want := expectedOrder(users, "created_at", true); !slices.Equal(ids(got), want) {
			t.Errorf("default order:\n got %v\nwant %v", emails(got), emailsOf(want, users))
		}
	})
}

func emails(got []user.User) []string {
	out := make([]string, len(got))
	for i, u := range got {
		out[i] = u.Email
	}
	return out
}

func emailsOf(idList []string, users []user.User) []string {
	byID := map[string]string{}
	for _, u := range users {
		byID[u.ID] = u.Email
	}
	out := make([]string, len(idList))
	for i, id := range idList {
		out[i] = byID[id]
	}
	return out
}

func TestListUsersPagingFiltersAndDeleted(t *testing.T) {
	users := listFixture()
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		for _, u := range users {
			mustCreateUser(t, st, u)
		}
		// A soft-deleted user is never listed nor counted.
		gone := mustCreateUser(t, st, newUser("gone@example.com", storeT0.Add(time.Hour)))
		if err := st.SoftDeleteUser(ctx, gone.ID, storeT0.Add(2*time.Hour)); err != nil {
			t.Fatal(err)
		}
		want := expectedOrder(users, "created_at", true)

		t.Run("page", func(t *testing.T) {
			got, total, err := st.ListUsers(ctx, user.ListQuery{Offset: 2, Limit: 3})
			if err != nil {
				t.Fatal(err)
			}
			if total != len(users) {
				t.Errorf("total %d, want %d (deleted users excluded)", total, len(users))
			}
			if !slices.Equal(ids(got), want[2:5]) {
				t.Errorf("page 2..5:\n got %v\nwant %v", emails(got), emailsOf(want[2:5], users))
			}
			got, total, err = st.ListUsers(ctx, user.ListQuery{Offset: 8, Limit: 5})
			if err != nil {
				t.Fatal(err)
			}
			if total != len(users) || !slices.Equal(ids(got), want[8:]) {
				t.Errorf("last page: total %d, got %v, want %v", total, emails(got), emailsOf(want[8:], users))
			}
			got, total, err = st.ListUsers(ctx, user.ListQuery{Offset: 50, Limit: 5})
			if err != nil || len(got) != 0 || total != len(users) {
				t.Errorf("past the end: %d users, total %d, err %v", len(got), total, err)
			}
		})

		filtered := func(keep func(u user.User) bool) []string {
			var out []user.User
			for _, u := range users {
				if keep(u) {
					out = append(out, u)
				}
			}
			return expectedOrder(out, "created_at", true)
		}
		cases := []struct {
			name string
			q    user.ListQuery
			keep func(user.User) bool
		}{
			{"active", user.ListQuery{IsActive: boolp(true)}, func(u user.User) bool { return u.IsActive }},
			{"inactive", user.ListQuery{IsActive: boolp(false)}, func(u user.User) bool { return !u.IsActive }},
			{"superusers", user.ListQuery{IsSuperuser: boolp(true)}, func(u user.User) bool { return u.IsSuperuser }},
			{"regular", user.ListQuery{IsSuperuser: boolp(false)}, func(u user.User) bool { return !u.IsSuperuser }},
			{"active superusers", user.ListQuery{IsActive: boolp(true), IsSuperuser: boolp(true)},
				func(u user.User) bool { return u.IsActive && u.IsSuperuser }},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				tc.q.Limit = 100
				got, total, err := st.ListUsers(ctx, tc.q)
				if err != nil {
					t.Fatal(err)
				}
				w := filtered(tc.keep)
				if len(w) == 0 {
					t.Fatal("fixture selects nobody; the case proves nothing")
				}
				if total != len(w) || !slices.Equal(ids(got), w) {
					t.Errorf("total %d, got %v; want total %d, %v", total, emails(got), len(w), emailsOf(w, users))
				}
			})
		}
	})
}

func TestListUsersSearchIsLiteralAndCaseInsensitive(t *testing.T) {
	users := listFixture()
	byEmail := map[string]string{}
	for _, u := range users {
		byEmail[u.Email] = u.ID
	}
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		for _, u := range users {
			mustCreateUser(t, st, u)
		}
		gone := newUser("deleted-smith@example.com", storeT0)
		gone.LastName = strp("Smith")
		mustCreateUser(t, st, gone)
		if err := st.SoftDeleteUser(ctx, gone.ID, storeT0); err != nil {
			t.Fatal(err)
		}
		cases := []struct {
			search string
			want   []string // emails, in default order (created_at desc)
		}{
			// Case-insensitive, over email, first name and last name.
			{"ALICE", []string{"carol@example.com", "alice@example.com"}}, // first names alice / Alice
			{"EXAMPLE.ORG", []string{"bob@example.org"}},
			{"sMiTh", []string{"alice@example.com"}}, // last name; the deleted Smith is excluded
			{"jones", []string{"carol@example.com"}},
			// LIKE wildcards are literal.
			{"%_r", []string{"erin@example.com"}},
			{"%", []string{"erin@example.com"}},
			{"_", []string{"heidi_r@example.com", "erin@example.com"}},
			{"i_r", []string{"heidi_r@example.com"}},
			{"0%_REAL", []string{"erin@example.com"}},
			{"%x", nil},    // "%" followed by "x" appears nowhere
			{"a%e", nil},   // would match "alice", "grace"... as a pattern
			{"h_idi", nil}, // would match "heidi" as a pattern
			{`\`, []string{"erin@example.com"}},
			{`\x`, []string{"erin@example.com"}},
			{`l\x`, []string{"erin@example.com"}},
			{`\%`, nil}, // a backslash followed by a percent sign appears nowhere
			// Quotes are data, not syntax.
			{"o'brien", []string{"dave@example.net"}},
			{"'", []string{"dave@example.net"}},
			{`"the rock"`, []string{"ivan@example.com"}},
			{`"`, []string{"ivan@example.com"}},
			{"nobody-has-this", nil},
		}
		for _, tc := range cases {
			t.Run(tc.search, func(t *testing.T) {
				got, total, err := st.ListUsers(ctx, user.ListQuery{Search: tc.search, Limit: 100})
				if err != nil {
					t.Fatalf("search %q: %v", tc.search, err)
				}
				var want []string
				for _, e := range tc.want {
					want = append(want, byEmail[e])
				}
				if total != len(want) || !slices.Equal(ids(got), want) {
					t.Errorf("search %q: total %d, got %v; want %v", tc.search, total, emails(got), tc.want)
				}
			})
		}
		// Search combines with the filters and with paging.
		got, total, err := st.ListUsers(ctx, user.ListQuery{Search: "example.com", IsActive: boolp(true), Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		var want []user.User
		for _, u := range users {
			if u.IsActive && strings.Contains(u.Email, "example.com") {
				want = append(want, u)
			}
		}
		if w := expectedOrder(want, "created_at", true)[:2]; total != len(want) || !slices.Equal(ids(got), w) {
			t.Errorf("search+filter+limit: total %d, got %v; want total %d, %v", total, emails(got), len(want), emailsOf(w, users))
		}
	})
}

// Non-ASCII names: search is case-insensitive and the sort order is the same
// on both engines, also beyond ASCII.
func TestListUsersNonASCII(t *testing.T) {
	var users []user.User
	for i, first := range []string{"Émile", "éa", "Zoë", "eve"} {
		u := newUser(fmt.Sprintf("n%d@example.com", i), storeT0.Add(time.Duration(i)*time.Second))
		u.FirstName = first
		users = append(users, u)
	}
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		for _, u := range users {
			mustCreateUser(t, st, u)
		}
		for _, search := range []string{"Émile", "émile", "ÉMILE", "zoë", "ZOË"} {
			got, total, err := st.ListUsers(ctx, user.ListQuery{Search: search, Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			if total != 1 || len(got) != 1 || !strings.EqualFold(got[0].FirstName, search) {
				t.Errorf("search %q: total %d, got %v; want exactly the user named like it", search, total, firstNames(got))
			}
		}
		for _, desc := range []bool{false, true} {
			got, _, err := st.ListUsers(ctx, user.ListQuery{SortBy: "first_name", Desc: desc, Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			if want := expectedOrder(users, "first_name", desc); !slices.Equal(ids(got), want) {
				t.Errorf("first_name desc=%v: got %v, want the order of Unicode lower-case names %v",
					desc, firstNames(got), firstNamesOf(want, users))
			}
		}
	})
}

func firstNames(us []user.User) []string {
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = u.FirstName
	}
	return out
}

func firstNamesOf(idList []string, users []user.User) []string {
	byID := map[string]string{}
	for _, u := range users {
		byID[u.ID] = u.FirstName
	}
	out := make([]string, len(idList))
	for i, id := range idList {
		out[i] = byID[id]
	}
	return out
}

// ---------------------------------------------------------------------------
// UpdateUser, SetPassword, SoftDeleteUser

func TestUpdateUserIsAtomic(t *testing.T) {
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		u := newUser("counter@example.com", storeT0)
		u.Preferences = json.RawMessage(`{"n":0}`)
		mustCreateUser(t, st, u)
		// N concurrent read-modify-write updates: none may be lost.
		const n = 12
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				_, err := st.UpdateUser(ctx, u.ID, storeT0.Add(time.Minute), func(x *user.User) error {
					var p struct{ N int }
					if err := json.Unmarshal(x.Preferences, &p); err != nil {
						return err
					}
					x.Preferences = json.RawMessage(fmt.Sprintf(`{"n":%d}`, p.N+1))
					return nil
				})
				if err != nil {
					t.Errorf("update: %v", err)
				}
			})
		}
		wg.Wait()
		got, err := st.UserByID(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		var p struct{ N int }
		if err := json.Unmarshal(got.Preferences, &p); err != nil || p.N != n {
			t.Fatalf("after %d concurrent increments preferences = %s (err %v), want n=%d", n, got.Preferences, err, n)
		}
		if !got.UpdatedAt.Equal(storeT0.Add(time.Minute)) {
			t.Errorf("updated_at = %v, want %v", got.UpdatedAt, storeT0.Add(time.Minute))
		}
	})
}

func TestUpdateUserDeactivationRevokesSessions(t *testing.T) {
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		u := mustCreateUser(t, st, newUser("deact@example.com", storeT0))
		other := mustCreateUser(t, st, newUser("other@example.com", storeT0))
		s1, s2 := liveSession(t, st, u.ID), liveSession(t, st, u.ID)
		otherS := liveSession(t, st, other.ID)
		later := storeT0.Add(time.Hour)

		// A change that keeps the user active leaves the sessions alone.
		got, err := st.UpdateUser(ctx, u.ID, later, func(x *user.User) error { x.FirstName = "Renamed"; return nil })
		if err != nil || got.FirstName != "Renamed" {
			t.Fatalf("rename: %v %+v", err, got)
		}
		if !sessionActive(t, st, s1.ID) || !sessionActive(t, st, s2.ID) {
			t.Fatal("a profile change revoked sessions")
		}

		got, err = st.UpdateUser(ctx, u.ID, later, func(x *user.User) error { x.IsActive = false; return nil })
		if err != nil || got.IsActive {
			t.Fatalf("deactivate: %v %+v", err, got)
		}
		for _, id := range []string{s1.ID, s2.ID} {
			s, err := st.SessionByID(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if s.IsActive || !s.UpdatedAt.Equal(later) {
				t.Errorf("session after deactivation: active=%v updated_at=%v; want revoked at %v", s.IsActive, s.UpdatedAt, later)
			}
		}
		if !sessionActive(t, st, otherS.ID) {
			t.Error("deactivating one user revoked another user's session")
		}
		if n := countRows(t, st, `SELECT COUNT(*) FROM users WHERE id = $1 AND is_active = FALSE`, u.ID); n != 1 {
			t.Errorf("user row not inactive")
		}

		// Reactivation does not bring revoked sessions back.
		if _, err := st.UpdateUser(ctx, u.ID, later, func(x *user.User) error { x.IsActive = true; return nil }); err != nil {
			t.Fatal(err)
		}
		if sessionActive(t, st, s1.ID) {
			t.Error("reactivation re-enabled a revoked session")
		}
	})
}

func TestUpdateUserErrorChangesNothing(t *testing.T) {
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		u := mustCreateUser(t, st, newUser("keep@example.com", storeT0))
		taken := mustCreateUser(t, st, newUser("taken@example.com", storeT0))
		s := liveSession(t, st, u.ID)
		before, err := st.UserByID(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		boom := errors.New("boom")
		_, err = st.UpdateUser(ctx, u.ID, storeT0.Add(time.Hour), func(x *user.User) error {
			x.FirstName, x.IsActive, x.Email = "Changed", false, "changed@example.com"
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("UpdateUser returned %v, want fn's error", err)
		}
		// A failing UPDATE (unique email) after a deactivation in fn also
		// changes nothing: no half-applied deactivation, no revoked session.
		_, err = st.UpdateUser(ctx, u.ID, storeT0.Add(time.Hour), func(x *user.User) error {
			x.IsActive, x.Email = false, taken.Email
			return nil
		})
		if !errors.Is(err, user.ErrEmailTaken) {
			t.Fatalf("UpdateUser to a taken email returned %v, want ErrEmailTaken", err)
		}
		after, err := st.UserByID(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if after.FirstName != before.FirstName || after.Email != before.Email || !after.IsActive || !after.UpdatedAt.Equal(before.UpdatedAt) {
			t.Errorf("user changed by a failed update: before %+v after %+v", before, after)
		}
		if !sessionActive(t, st, s.ID) {
			t.Error("a failed update revoked the user's session")
		}
		if _, err := st.UpdateUser(ctx, user.NewID(), storeT0, func(*user.User) error { return nil }); !errors.Is(err, user.ErrNotFound) {
			t.Errorf("update of a missing user: %v, want ErrNotFound", err)
		}
	})
}

func TestSetPassword(t *testing.T) {
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		u := mustCreateUser(t, st, newUser("pw@example.com", storeT0))
		other := mustCreateUser(t, st, newUser("pw-other@example.com", storeT0))
		keep, drop1, drop2 := liveSession(t, st, u.ID), liveSession(t, st, u.ID), liveSession(t, st, u.ID)
		otherSess := liveSession(t, st, other.ID)
		unused := mustCreateResetToken(t, st, u.ID, "h-unused", storeT0.Add(time.Hour))
		used := mustCreateResetToken(t, st, u.ID, "h-used", storeT0.Add(time.Hour))
		otherTok := mustCreateResetToken(t, st, other.ID, "h-other", storeT0.Add(time.Hour))
		if _, err := st.DB().ExecContext(ctx, `UPDATE password_reset_tokens SET used_at = $2 WHERE id = $1`, used.ID, storeT0); err != nil {
			t.Fatal(err)
		}
		later := storeT0.Add(time.Hour)
		if err := st.SetPassword(ctx, u.ID, "$2a$04$new", keep.ID, later); err != nil {
			t.Fatal(err)
		}
		got, err := st.UserByID(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.PasswordHash != "$2a$04$new" || got.PasswordChangedAt == nil || !got.PasswordChangedAt.Equal(later) {
			t.Errorf("after SetPassword: hash %q changed_at %v", got.PasswordHash, got.PasswordChangedAt)
		}
		if !sessionActive(t, st, keep.ID) {
			t.Error("the kept session was revoked")
		}
		if sessionActive(t, st, drop1.ID) || sessionActive(t, st, drop2.ID) {
			t.Error("another session of the user stayed active")
		}
		if !sessionActive(t, st, otherSess.ID) {
			t.Error("another user's session was revoked")
		}
		if _, err := st.ResetTokenByHash(ctx, unused.Hash); !errors.Is(err, auth.ErrResetTokenInvalid) {
			t.Errorf("unused reset token survived a password change: %v", err)
		}
		if _, err := st.ResetTokenByHash(ctx, used.Hash); err != nil {
			t.Errorf("used reset token (history) was deleted: %v", err)
		}
		if _, err := st.ResetTokenByHash(ctx, otherTok.Hash); err != nil {
			t.Errorf("another user's reset token was deleted: %v", err)
		}

		// "" keeps nothing.
		if err := st.SetPassword(ctx, u.ID, "$2a$04$newer", "", later); err != nil {
			t.Fatal(err)
		}
		if sessionActive(t, st, keep.ID) {
			t.Error(`SetPassword with keepSessionID "" left a session active`)
		}
		if err := st.SetPassword(ctx, user.NewID(), "$2a$04$x", "", later); !errors.Is(err, user.ErrNotFound) {
			t.Errorf("SetPassword on a missing user: %v, want ErrNotFound", err)
		}
	})
}

func TestSoftDeleteUser(t *testing.T) {
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		u := mustCreateUser(t, st, newUser("del@example.com", storeT0))
		other := mustCreateUser(t, st, newUser("del-other@example.com", storeT0))
		s1, s2 := liveSession(t, st, u.ID), liveSession(t, st, u.ID)
		otherSess := liveSession(t, st, other.ID)
		mustCreateResetToken(t, st, u.ID, "d-1", storeT0.Add(time.Hour))
		used := mustCreateResetToken(t, st, u.ID, "d-2", storeT0.Add(time.Hour))
		if _, err := st.DB().ExecContext(ctx, `UPDATE password_reset_tokens SET used_at = $2 WHERE id = $1`, used.ID, storeT0); err != nil {
			t.Fatal(err)
		}
		otherTok := mustCreateResetToken(t, st, other.ID, "d-other", storeT0.Add(time.Hour))

		later := storeT0.Add(time.Hour)
		if err := st.SoftDeleteUser(ctx, u.ID, later); err != nil {
			t.Fatal(err)
		}
		if n := countRows(t, st, `SELECT COUNT(*) FROM users WHERE id = $1 AND is_active = FALSE AND deleted_at IS NOT NULL`, u.ID); n != 1 {
			t.Error("deleted user is not marked inactive and deleted")
		}
		if _, err := st.UserByID(ctx, u.ID); !errors.Is(err, user.ErrNotFound) {
			t.Errorf("UserByID of a deleted user: %v", err)
		}
		if _, err := st.UserByEmail(ctx, u.Email); !errors.Is(err, user.ErrNotFound) {
			t.Errorf("UserByEmail of a deleted user: %v", err)
		}
		if sessionActive(t, st, s1.ID) || sessionActive(t, st, s2.ID) {
			t.Error("deleted user kept an active session")
		}
		if !sessionActive(t, st, otherSess.ID) {
			t.Error("another user's session was revoked")
		}
		if n := countRows(t, st, `SELECT COUNT(*) FROM password_reset_tokens WHERE user_id = $1`, u.ID); n != 0 {
			t.Errorf("%d reset tokens of the deleted user remain", n)
		}
		if _, err := st.ResetTokenByHash(ctx, otherTok.Hash); err != nil {
			t.Errorf("another user's reset token was deleted: %v", err)
		}
		// The session join still sees the deleted user, so callers can tell.
		_, su, err := st.SessionWithUser(ctx, s1.ID)
		if err != nil || su.DeletedAt == nil || !su.DeletedAt.Equal(later) {
			t.Errorf("SessionWithUser of a deleted user: err %v deleted_at %v", err, su.DeletedAt)
		}
		if err := st.SoftDeleteUser(ctx, u.ID, later); !errors.Is(err, user.ErrNotFound) {
			t.Errorf("second SoftDeleteUser: %v, want ErrNotFound", err)
		}
		if _, err := st.UpdateUser(ctx, u.ID, later, func(*user.User) error { return nil }); !errors.Is(err, user.ErrNotFound) {
			t.Errorf("UpdateUser of a deleted user: %v, want ErrNotFound", err)
		}
		if err := st.SetPassword(ctx, u.ID, "$2a$04$x", "", later); !errors.Is(err, user.ErrNotFound) {
			t.Errorf("SetPassword of a deleted user: %v, want ErrNotFound", err)
		}
	})
}

// ---------------------------------------------------------------------------
// Sessions

func TestSessionWithUser(t *testing.T) {
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		u := mustCreateUser(t, st, newUser("swu@example.com", storeT0))
		s := liveSession(t, st, u.ID)
		gotS, gotU, err := st.SessionWithUser(ctx, s.ID)
		if err != nil {
			t.Fatal(err)
		}
		if gotS.ID != s.ID || gotS.UserID != u.ID || gotS.RefreshHash != s.RefreshHash || !gotS.IsActive ||
			gotS.DeviceName == nil || *gotS.DeviceName != "Chrome on Linux" || gotS.DeviceID != nil ||
			!gotS.ExpiresAt.Equal(s.ExpiresAt) || !gotS.LastUsedAt.Equal(s.LastUsedAt) {
			t.Errorf("session = %+v, want %+v", gotS, s)
		}
		if gotU.ID != u.ID || gotU.Email != u.Email || gotU.PasswordHash != u.PasswordHash || gotU.LastName == nil ||
			*gotU.LastName != "Doe" || !gotU.IsActive || gotU.DeletedAt != nil {
			t.Errorf("user = %+v", gotU)
		}
		if _, _, err := st.SessionWithUser(ctx, user.NewID()); !errors.Is(err, auth.ErrSessionNotFound) {
			t.Errorf("missing session: %v, want ErrSessionNotFound", err)
		}
	})
}

// TouchSession moves a session's last use forward only when it is older
// than the given bound, so concurrent requests write it once.
func TestTouchSession(t *testing.T) {
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		u := mustCreateUser(t, st, newUser("touch@example.com", storeT0))
		s := liveSession(t, st, u.ID) // last used at storeT0
		lastUsed := func() time.Time {
			t.Helper()
			got, err := st.SessionByID(ctx, s.ID)
			if err != nil {
				t.Fatal(err)
			}
			return got.LastUsedAt
		}
		later := storeT0.Add(10 * time.Minute)
		if err := st.TouchSession(ctx, s.ID, later, later.Add(-time.Minute)); err != nil {
			t.Fatal(err)
		}
		if got := lastUsed(); !got.Equal(later) {
			t.Fatalf("last used %v after a touch, want %v", got, later)
		}
		// Within the bound: unchanged.
		if err := st.TouchSession(ctx, s.ID, later.Add(30*time.Second), later.Add(-30*time.Second)); err != nil {
			t.Fatal(err)
		}
		if got := lastUsed(); !got.Equal(later) {
			t.Fatalf("last used %v after a touch within the bound, want %v unchanged", got, later)
		}
	})
}

func TestActiveSessions(t *testing.T) {
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		u := mustCreateUser(t, st, newUser("as@example.com", storeT0))
		other := mustCreateUser(t, st, newUser("as-other@example.com", storeT0))
		day := storeT0.Add(24 * time.Hour)
		older := mustCreateSession(t, st, u.ID, sessionSpec{active: true, lastUsed: storeT0.Add(-time.Hour), expires: day})
		newest := mustCreateSession(t, st, u.ID, sessionSpec{active: true, lastUsed: storeT0.Add(-time.Second), expires: day})
		middle := mustCreateSession(t, st, u.ID, sessionSpec{active: true, lastUsed: storeT0.Add(-time.Minute), expires: day})
		mustCreateSession(t, st, u.ID, sessionSpec{active: false, lastUsed: storeT0, expires: day})                      // revoked
		mustCreateSession(t, st, u.ID, sessionSpec{active: true, lastUsed: storeT0, expires: storeT0.Add(-time.Second)}) // expired
		mustCreateSession(t, st, u.ID, sessionSpec{active: true, lastUsed: storeT0, expires: storeT0})                   // expires now
		mustCreateSession(t, st, other.ID, sessionSpec{active: true, lastUsed: storeT0, expires: day})                   // not theirs
		got, err := st.ActiveSessions(ctx, u.ID, storeT0)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{newest.ID, middle.ID, older.ID}; !slices.Equal(sessionIDs(got), want) {
			t.Errorf("ActiveSessions = %v, want %v (active, unexpired, last used first)", sessionIDs(got), want)
		}
		none, err := st.ActiveSessions(ctx, user.NewID(), storeT0)
		if err != nil || none == nil || len(none) != 0 {
			t.Errorf("no sessions: %v %v, want an empty non-nil list", none, err)
		}
	})
}

func TestRevokeUserSessionsCount(t *testing.T) {
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		u := mustCreateUser(t, st, newUser("rv@example.com", storeT0))
		other := mustCreateUser(t, st, newUser("rv-other@example.com", storeT0))
		for range 3 {
			liveSession(t, st, u.ID)
		}
		mustCreateSession(t, st, u.ID, sessionSpec{active: false, lastUsed: storeT0, expires: storeT0.Add(time.Hour)})
		otherS := liveSession(t, st, other.ID)
		n, err := st.RevokeUserSessions(ctx, u.ID, storeT0.Add(time.Minute))
		if err != nil || n != 3 {
			t.Fatalf("RevokeUserSessions = %d, %v; want 3 (already revoked ones not counted)", n, err)
		}
		if c := countRows(t, st, `SELECT COUNT(*) FROM user_sessions WHERE user_id = $1 AND is_active = TRUE`, u.ID); c != 0 {
			t.Errorf("%d sessions still active", c)
		}
		if n, err := st.RevokeUserSessions(ctx, u.ID, storeT0.Add(time.Minute)); err != nil || n != 0 {
			t.Errorf("second RevokeUserSessions = %d, %v; want 0", n, err)
		}
		if !sessionActive(t, st, otherS.ID) {
			t.Error("another user's session was revoked")
		}
	})
}

func TestDeleteInactiveExpiredSessions(t *testing.T) {
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		u := mustCreateUser(t, st, newUser("die@example.com", storeT0))
		other := mustCreateUser(t, st, newUser("die-other@example.com", storeT0))
		past, future := storeT0.Add(-time.Hour), storeT0.Add(time.Hour)
		activeExpired := mustCreateSession(t, st, u.ID, sessionSpec{active: true, lastUsed: past, expires: past})
		inactiveLive := mustCreateSession(t, st, u.ID, sessionSpec{active: false, lastUsed: past, expires: future})
		inactiveExpired := mustCreateSession(t, st, u.ID, sessionSpec{active: false, lastUsed: past, expires: past})
		activeLive := mustCreateSession(t, st, u.ID, sessionSpec{active: true, lastUsed: past, expires: future})
		otherInactiveExpired := mustCreateSession(t, st, other.ID, sessionSpec{active: false, lastUsed: past, expires: past})

		n, err := st.DeleteInactiveExpiredSessions(ctx, u.ID, storeT0)
		if err != nil || n != 1 {
			t.Fatalf("DeleteInactiveExpiredSessions = %d, %v; want 1", n, err)
		}
		if sessionExists(t, st, inactiveExpired.ID) {
			t.Error("the inactive expired session was not deleted")
		}
		for name, id := range map[string]string{"active expired": activeExpired.ID, "inactive unexpired": inactiveLive.ID,
			"active unexpired": activeLive.ID, "another user's inactive expired": otherInactiveExpired.ID} {
			if !sessionExists(t, st, id) {
				t.Errorf("%s session was deleted", name)
			}
		}
	})
}

func TestPurgeSessions(t *testing.T) {
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		a := mustCreateUser(t, st, newUser("pa@example.com", storeT0))
		b := mustCreateUser(t, st, newUser("pb@example.com", storeT0))
		cutoff := storeT0.Add(-24 * time.Hour)
		before, after := cutoff.Add(-time.Hour), cutoff.Add(time.Hour)
		future := storeT0.Add(24 * time.Hour)
		purged := []auth.Session{
			mustCreateSession(t, st, a.ID, sessionSpec{active: true, lastUsed: before, expires: before}),                   // expired before cutoff
			mustCreateSession(t, st, b.ID, sessionSpec{active: false, lastUsed: before, expires: before}),                  // both
			mustCreateSession(t, st, b.ID, sessionSpec{active: false, lastUsed: before, expires: future, updated: before}), // revoked long ago
		}
		kept := map[string]auth.Session{
			"active, expires later":                 mustCreateSession(t, st, a.ID, sessionSpec{active: true, lastUsed: before, expires: future}),
			"active, expired after cutoff":          mustCreateSession(t, st, a.ID, sessionSpec{active: true, lastUsed: before, expires: after}),
			"revoked after cutoff":                  mustCreateSession(t, st, b.ID, sessionSpec{active: false, lastUsed: before, expires: future, updated: after}),
			"active, untouched since before cutoff": mustCreateSession(t, st, b.ID, sessionSpec{active: true, lastUsed: before, expires: future, updated: before}),
		}
		n, err := st.PurgeSessions(ctx, cutoff)
		if err != nil || n != len(purged) {
			t.Fatalf("PurgeSessions = %d, %v; want %d", n, err, len(purged))
		}
		for i, s := range purged {
			if sessionExists(t, st, s.ID) {
				t.Errorf("purgeable session %d survived", i)
			}
		}
		for name, s := range kept {
			if !sessionExists(t, st, s.ID) {
				t.Errorf("%s: session was purged", name)
			}
		}
	})
}

func TestCreateSessionForMissingUser(t *testing.T) {
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		s := auth.Session{ID: user.NewID(), UserID: user.NewID(), RefreshHash: "x", IsActive: true,
			LastUsedAt: storeT0, ExpiresAt: storeT0.Add(time.Hour), CreatedAt: storeT0, UpdatedAt: storeT0}
		if err := st.CreateSession(context.Background(), s); !errors.Is(err, user.ErrNotFound) {
			t.Fatalf("CreateSession for a missing user: %v, want user.ErrNotFound", err)
		}
		if n := countRows(t, st, `SELECT COUNT(*) FROM user_sessions`); n != 0 {
			t.Errorf("%d sessions stored", n)
		}
	})
}

// ---------------------------------------------------------------------------
// Reset tokens

func TestResetPasswordConsumesOnce(t *testing.T) {
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		u := mustCreateUser(t, st, newUser("reset@example.com", storeT0))
		s1, s2 := liveSession(t, st, u.ID), liveSession(t, st, u.ID)
		rt := mustCreateResetToken(t, st, u.ID, token.HashSecret("the-token"), storeT0.Add(time.Hour))
		sibling := mustCreateResetToken(t, st, u.ID, token.HashSecret("another-token"), storeT0.Add(time.Hour))

		const n = 10
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			winners []string
		)
		for i := range n {
			wg.Go(func() {
				hash := fmt.Sprintf("$2a$04$winner-%02d", i)
				err := st.ResetPassword(ctx, rt.Hash, u.ID, hash, storeT0.Add(time.Minute))
				switch {
				case err == nil:
					mu.Lock()
					winners = append(winners, hash)
					mu.Unlock()
				case !errors.Is(err, auth.ErrResetTokenInvalid):
					t.Errorf("loser got %v, want ErrResetTokenInvalid", err)
				}
			})
		}
		wg.Wait()
		if len(winners) != 1 {
			t.Fatalf("%d concurrent resets with one token succeeded, want exactly 1", len(winners))
		}
		got, err := st.UserByID(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.PasswordHash != winners[0] {
			t.Errorf("password hash %q, want the winner's %q", got.PasswordHash, winners[0])
		}
		if got.PasswordChangedAt == nil || !got.PasswordChangedAt.Equal(storeT0.Add(time.Minute)) {
			t.Errorf("password_changed_at = %v", got.PasswordChangedAt)
		}
		consumed, err := st.ResetTokenByHash(ctx, rt.Hash)
		if err != nil || consumed.UsedAt == nil {
			t.Errorf("consumed token: %v, used_at %v", err, consumed.UsedAt)
		}
		if _, err := st.ResetTokenByHash(ctx, sibling.Hash); !errors.Is(err, auth.ErrResetTokenInvalid) {
			t.Errorf("the user's other pending token survived the reset: %v", err)
		}
		if sessionActive(t, st, s1.ID) || sessionActive(t, st, s2.ID) {
			t.Error("a session survived the password reset")
		}
		// And once more, sequentially: still refused.
		if err := st.ResetPassword(ctx, rt.Hash, u.ID, "$2a$04$late", storeT0.Add(2*time.Minute)); !errors.Is(err, auth.ErrResetTokenInvalid) {
			t.Errorf("reuse: %v", err)
		}
	})
}

func TestResetPasswordRefusals(t *testing.T) {
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		u := mustCreateUser(t, st, newUser("refuse@example.com", storeT0))
		other := mustCreateUser(t, st, newUser("refuse-other@example.com", storeT0))
		s := liveSession(t, st, u.ID)
		expired := mustCreateResetToken(t, st, u.ID, "expired", storeT0.Add(-time.Second))
		atNow := mustCreateResetToken(t, st, u.ID, "at-now", storeT0)
		valid := mustCreateResetToken(t, st, u.ID, "valid", storeT0.Add(time.Hour))

		check := func(name string, err error) {
			t.Helper()
			if !errors.Is(err, auth.ErrResetTokenInvalid) {
				t.Errorf("%s: %v, want ErrResetTokenInvalid", name, err)
			}
		}
		check("expired token", st.ResetPassword(ctx, expired.Hash, u.ID, "$2a$04$x", storeT0))
		check("token expiring now", st.ResetPassword(ctx, atNow.Hash, u.ID, "$2a$04$x", storeT0))
		check("someone else's user id", st.ResetPassword(ctx, valid.Hash, other.ID, "$2a$04$x", storeT0))
		check("unknown token", st.ResetPassword(ctx, "unknown", u.ID, "$2a$04$x", storeT0))
		if !sessionActive(t, st, s.ID) {
			t.Error("a refused reset revoked the user's session")
		}

		// An inactive user: refused, and the token is not consumed.
		if _, err := st.UpdateUser(ctx, u.ID, storeT0, func(x *user.User) error { x.IsActive = false; return nil }); err != nil {
			t.Fatal(err)
		}
		check("inactive user", st.ResetPassword(ctx, valid.Hash, u.ID, "$2a$04$x", storeT0))
		tok, err := st.ResetTokenByHash(ctx, valid.Hash)
		if err != nil || tok.UsedAt != nil {
			t.Errorf("a refused reset consumed the token: %v used_at %v", err, tok.UsedAt)
		}
		got, err := st.UserByID(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.PasswordHash != u.PasswordHash || got.PasswordChangedAt != nil {
			t.Errorf("a refused reset changed the password: %q", got.PasswordHash)
		}
		if n := countRows(t, st, `SELECT COUNT(*) FROM password_reset_tokens WHERE user_id = $1`, u.ID); n != 3 {
			t.Errorf("refused resets dropped tokens: %d left, want 3", n)
		}
	})
}

func TestPurgeResetTokens(t *testing.T) {
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		u := mustCreateUser(t, st, newUser("prt@example.com", storeT0))
		cutoff := storeT0
		old1 := mustCreateResetToken(t, st, u.ID, "old-1", cutoff.Add(-time.Hour))
		old2 := mustCreateResetToken(t, st, u.ID, "old-2", cutoff.Add(-time.Microsecond))
		fresh := mustCreateResetToken(t, st, u.ID, "fresh", cutoff.Add(time.Minute))
		atCutoff := mustCreateResetToken(t, st, u.ID, "at-cutoff", cutoff)
		n, err := st.PurgeResetTokens(ctx, cutoff)
		if err != nil || n != 2 {
			t.Fatalf("PurgeResetTokens = %d, %v; want 2", n, err)
		}
		for _, h := range []string{old1.Hash, old2.Hash} {
			if _, err := st.ResetTokenByHash(ctx, h); !errors.Is(err, auth.ErrResetTokenInvalid) {
				t.Errorf("token %s expired before the cutoff survived: %v", h, err)
			}
		}
		for _, h := range []string{fresh.Hash, atCutoff.Hash} {
			if _, err := st.ResetTokenByHash(ctx, h); err != nil {
				t.Errorf("token %s was purged: %v", h, err)
			}
		}
	})
}

// ---------------------------------------------------------------------------
// Concurrency of user creation

func TestConcurrentCreateUserSameEmail(t *testing.T) {
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		const n = 10
		var (
			wg   sync.WaitGroup
			wins = make(chan string, n)
		)
		for range n {
			wg.Go(func() {
				u := newUser("race@example.com", storeT0)
				err := st.CreateUser(ctx, u)
				switch {
				case err == nil:
					wins <- u.ID
				case !errors.Is(err, user.ErrEmailTaken):
					t.Errorf("loser got %v, want ErrEmailTaken", err)
				}
			})
		}
		wg.Wait()
		close(wins)
		if len(wins) != 1 {
			t.Fatalf("%d concurrent registrations of one email succeeded, want exactly 1", len(wins))
		}
		winner := <-wins
		got, err := st.UserByEmail(ctx, "race@example.com")
		if err != nil || got.ID != winner {
			t.Errorf("stored user %q (%v), want the winner %q", got.ID, err, winner)
		}
		if c := countRows(t, st, `SELECT COUNT(*) FROM users WHERE email = $1`, "race@example.com"); c != 1 {
			t.Errorf("%d rows with the email", c)
		}
	})
}

// ---------------------------------------------------------------------------
// Migrations and schema parity

func migrationNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := fs.ReadDir(sqlstore.Migrations(), dir)
	if err != nil {
		t.Fatalf("read %s: %v", dir, err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

func TestMigrationFoldersMatch(t *testing.T) {
	pg, lite := migrationNames(t, "migrations/postgres"), migrationNames(t, "migrations/sqlite")
	if len(pg) == 0 {
		t.Fatal("no PostgreSQL migrations embedded")
	}
	if !slices.Equal(pg, lite) {
		t.Fatalf("migration files differ:\npostgres %v\nsqlite   %v", pg, lite)
	}
}

var createTableRE = regexp.MustCompile(`(?i)CREATE TABLE\s+(?:IF NOT EXISTS\s+)?"?(\w+)"?`)

// migratedTables lists the tables the migration files create.
func migratedTables(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	for _, name := range migrationNames(t, dir) {
		b, err := fs.ReadFile(sqlstore.Migrations(), dir+"/"+name)
		if err != nil {
			t.Fatal(err)
		}
		up, _, _ := strings.Cut(string(b), "-- +goose Down")
		for _, m := range createTableRE.FindAllStringSubmatch(up, -1) {
			out = append(out, strings.ToLower(m[1]))
		}
	}
	slices.Sort(out)
	return out
}

// schemaOf returns table -> column names in declaration order, without
// goose's bookkeeping table and SQLite's internal ones.
func schemaOf(t *testing.T, st *sqlstore.Store) map[string][]string {
	t.Helper()
	q := `SELECT table_name, column_name FROM information_schema.columns
		WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position`
	if st.Engine() == sqlstore.SQLite {
		q = `SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p
			WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\_%' ESCAPE '\' ORDER BY m.name, p.cid`
	}
	rows, err := st.DB().QueryContext(context.Background(), q)
	if err != nil {
		t.Fatalf("%s schema: %v", st.Engine(), err)
	}
	defer rows.Close()
	out := map[string][]string{}
	for rows.Next() {
		var table, col string
		if err := rows.Scan(&table, &col); err != nil {
			t.Fatal(err)
		}
		if table == "goose_db_version" {
			continue
		}
		out[table] = append(out[table], col)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSchemaParity(t *testing.T) {
	wantTables := migratedTables(t, "migrations/postgres")
	if got := migratedTables(t, "migrations/sqlite"); !slices.Equal(got, wantTables) {
		t.Fatalf("migrations create different tables:\npostgres %v\nsqlite   %v", wantTables, got)
	}
	schemas := map[sqlstore.Engine]map[string][]string{}
	for _, e := range dbtest.Engines(t) {
		s := schemaOf(t, dbtest.Open(t, e))
		var tables []string
		for table := range s {
			tables = append(tables, table)
		}
		slices.Sort(tables)
		if !slices.Equal(tables, wantTables) {
			t.Errorf("%s tables %v, want those the migrations create %v", e, tables, wantTables)
		}
		schemas[e] = s
	}
	lite, pg := schemas[sqlstore.SQLite], schemas[sqlstore.Postgres]
	if pg == nil {
		return // PostgreSQL not configured: the file-level checks above are all we can do
	}
	for _, table := range wantTables {
		if !slices.Equal(lite[table], pg[table]) {
			t.Errorf("table %s columns differ:\nsqlite   %v\npostgres %v", table, lite[table], pg[table])
		}
	}
}

func TestMigrateDownAndUp(t *testing.T) {
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		mustCreateUser(t, st, newUser("before-down@example.com", storeT0))
		all := migrationNames(t, "migrations/sqlite")

		statuses := func() []sqlstore.MigrationStatus {
			t.Helper()
			list, err := st.MigrationStatuses(ctx)
			if err != nil {
				t.Fatalf("status: %v", err)
			}
			if len(list) != len(all) {
				t.Fatalf("status lists %d migrations, want %d", len(list), len(all))
			}
			return list
		}
		for _, m := range statuses() {
			if !m.Applied {
				t.Fatalf("fresh store: migration %d not applied", m.Version)
			}
		}
		// Roll every migration back, newest first.
		for i := len(all) - 1; i >= 0; i-- {
			m, err := st.MigrateDown(ctx)
			if err != nil {
				t.Fatalf("down: %v", err)
			}
			if !strings.HasPrefix(all[i], fmt.Sprintf("%05d_", m.Version)) {
				t.Errorf("rolled back version %d, want %s", m.Version, all[i])
			}
		}
		for _, m := range statuses() {
			if m.Applied {
				t.Errorf("after rolling everything back, migration %d is still applied", m.Version)
			}
		}
		if _, err := st.UserByEmail(ctx, "before-down@example.com"); err == nil {
			t.Error("users table still answers after rolling back the migration that creates it")
		}
		if tables := schemaOf(t, st); len(tables) != 0 {
			t.Errorf("tables left after rolling everything back: %v", tables)
		}
		if err := st.Migrate(ctx); err != nil {
			t.Fatalf("up again: %v", err)
		}
		for _, m := range statuses() {
			if !m.Applied {
				t.Errorf("after up, migration %d is pending", m.Version)
			}
		}
		if _, err := st.UserByEmail(ctx, "before-down@example.com"); !errors.Is(err, user.ErrNotFound) {
			t.Errorf("old row after down+up: %v, want ErrNotFound", err)
		}
		u := mustCreateUser(t, st, newUser("after-up@example.com", storeT0))
		liveSession(t, st, u.ID)
		// Up when everything is applied is a no-op.
		if err := st.Migrate(ctx); err != nil {
			t.Fatalf("second up: %v", err)
		}
	})
}

// ---------------------------------------------------------------------------
// Settings

func TestSettingOrCreateKeepsFirstValue(t *testing.T) {
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		if _, ok, err := st.Setting(ctx, "k"); err != nil || ok {
			t.Fatalf("absent setting: ok=%v err=%v", ok, err)
		}
		v, err := st.SettingOrCreate(ctx, "k", "first", storeT0)
		if err != nil || v != "first" {
			t.Fatalf("first SettingOrCreate = %q, %v", v, err)
		}
		v, err = st.SettingOrCreate(ctx, "k", "second", storeT0.Add(time.Hour))
		if err != nil || v != "first" {
			t.Fatalf("second SettingOrCreate = %q, %v; want the first value", v, err)
		}
		if v, ok, err := st.Setting(ctx, "k"); err != nil || !ok || v != "first" {
			t.Fatalf("Setting = %q %v %v", v, ok, err)
		}

		// Concurrent callers all get the one stored value.
		const n = 10
		results := make([]string, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				v, err := st.SettingOrCreate(ctx, "race", fmt.Sprintf("value-%d", i), storeT0)
				if err != nil {
					t.Errorf("concurrent SettingOrCreate: %v", err)
				}
				results[i] = v
			})
		}
		wg.Wait()
		stored, _, err := st.Setting(ctx, "race")
		if err != nil || !strings.HasPrefix(stored, "value-") {
			t.Fatalf("stored %q, %v", stored, err)
		}
		for i, v := range results {
			if v != stored {
				t.Errorf("caller %d got %q, stored is %q", i, v, stored)
			}
		}
	})
}

// TestConcurrentWritersAllLand runs transactions and single-statement writes
// from many goroutines at once (on SQLite they queue at the write gate, on
// PostgreSQL on row locks): every one succeeds and none is lost.
func TestConcurrentWritersAllLand(t *testing.T) {
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		const workers, each = 16, 10
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for i := range each {
					key := fmt.Sprintf("writer-%d-%d", w, i)
					var err error
					if i%2 == 0 {
						err = st.InTx(ctx, func(tx *sqlstore.Store) error {
							_, err := tx.SettingOrCreate(ctx, key, "tx", storeT0)
							return err
						})
					} else {
						_, err = st.SettingOrCreate(ctx, key, "single", storeT0)
					}
					if err != nil {
						t.Errorf("%s: %v", key, err)
						return
					}
				}
			})
		}
		wg.Wait()
		if n := countRows(t, st, `SELECT COUNT(*) FROM app_settings WHERE key LIKE 'writer-%'`); n != workers*each {
			t.Fatalf("%d of %d writes landed", n, workers*each)
		}
	})
}
