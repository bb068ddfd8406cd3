package httpapi_test

// End-to-end tests of the admin API for users and sessions and of the
// dashboard statistics (reference §5.6 and §9 with fixes 18, 19, 21, 30
// and 36), on every engine.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/apitest"
	"github.com/gatehouse-dev/gatehouse/internal/sqlstore"
	"github.com/gatehouse-dev/gatehouse/internal/user"
)

const (
	adminUsers    = "/api/v1/admin/users"
	adminSessions = "/api/v1/admin/sessions"
	adminStats    = "/api/v1/admin/stats"
	unknownID     = "00000000-0000-4000-8000-0000000000aa"
)

func adminUser(id string) string { return adminUsers + "/" + id }

func put(e *apitest.Env, path, token string, body any) apitest.Response {
	e.T.Helper()
	return e.Do(apitest.Request{Method: "PUT", Path: path, Token: token, Body: body})
}

// expectError checks status, code, the exact message and, when field is not
// empty, the field of the first envelope error.
func expectError(t *testing.T, r apitest.Response, status int, code, msg, field string) {
	t.Helper()
	r.Expect(t, status, code)
	_, gotMsg, gotField := r.ErrorCode(t)
	if gotMsg != msg {
		t.Fatalf("message %q, want %q", gotMsg, msg)
	}
	if field != "" && gotField != field {
		t.Fatalf("field %v, want %q; body %s", gotField, field, r.Body)
	}
}

func messageOf(t *testing.T, r apitest.Response) string {
	t.Helper()
	m := r.JSON(t)
	if m["success"] != true {
		t.Fatalf("success is not true: %s", r.Body)
	}
	msg, _ := m["message"].(string)
	return msg
}

// expectUnchanged runs fn and fails when it changed any table's row count,
// the number of active sessions, or any user's identity, flags or password.
func expectUnchanged(t *testing.T, e *apitest.Env, fn func()) {
	t.Helper()
	state := func() string {
		var rows []string
		r, err := e.App.Store.DB().Query(`SELECT id, email, first_name, is_active, is_superuser, COALESCE(password_hash, ''),
			CASE WHEN deleted_at IS NULL THEN 0 ELSE 1 END FROM users ORDER BY id`)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		for r.Next() {
			var id, email, first, hash string
			var active, super bool
			var deleted int
			if err := r.Scan(&id, &email, &first, &active, &super, &hash, &deleted); err != nil {
				t.Fatal(err)
			}
			rows = append(rows, fmt.Sprint(id, email, first, active, super, hash, deleted))
		}
		return e.Snapshot() + "\n" + strings.Join(rows, "\n")
	}
	before := state()
	fn()
	if after := state(); after != before {
		t.Fatalf("a refused request changed the database:\nbefore %s\nafter  %s", before, after)
	}
}

// adminEndpoints is every operation of this file's API with a valid request.
func adminEndpoints(id, sid string) []apitest.Request {
	return []apitest.Request{
		{Method: "GET", Path: adminStats},
		{Method: "GET", Path: adminUsers},
		{Method: "POST", Path: adminUsers, Body: map[string]any{"email": "gate@example.com", "password": apitest.Password, "first_name": "G"}},
		{Method: "GET", Path: adminUser(id)},
		{Method: "PUT", Path: adminUser(id), Body: map[string]any{"first_name": "Gated"}},
		{Method: "DELETE", Path: adminUser(id)},
		{Method: "POST", Path: adminUser(id) + "/activate"},
		{Method: "POST", Path: adminUser(id) + "/deactivate"},
		{Method: "POST", Path: adminUsers + "/bulk-action", Body: map[string]any{"action": "delete", "user_ids": []string{id}}},
		{Method: "GET", Path: adminSessions},
		{Method: "DELETE", Path: adminSessions + "/" + sid},
	}
}

func TestAdminGate(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		admin := e.Superuser("root@example.com")
		regular := e.User("plain@example.com")
		sid := sessionIDOf(t, regular.Access)
		for _, req := range adminEndpoints(regular.UserID, sid) {
			t.Run(req.Method+" "+req.Path, func(t *testing.T) {
				expectUnchanged(t, e, func() {
					req.Token = ""
					r := e.Do(req)
					expectError(t, r, http.StatusUnauthorized, "AUTH_006", "Not authenticated", "")
					req.Token = regular.Access
					expectError(t, e.Do(req), http.StatusForbidden, "AUTH_004", "Superuser privileges required", "")
					// The gate answers before the input is read.
					req.Path = strings.ReplaceAll(req.Path, regular.UserID, "not-a-uuid")
					expectError(t, e.Do(req), http.StatusForbidden, "AUTH_004", "Superuser privileges required", "")
				})
			})
		}
		// The regular user's token still works: nothing above touched it;
		// and the gate lets superusers through.
		e.Get(pathMe, regular.Access).Expect(t, http.StatusOK, "")
		e.Get(adminUser(regular.UserID), admin.Access).Expect(t, http.StatusOK, "")
	})
}

// A superuser whose account is inactive gets 403 "Inactive user" and a
// deleted one 401 from every admin endpoint, users and organizations alike,
// and neither changes anything.
func TestAdminGateRefusesInactiveAndDeletedSuperusers(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		e.Superuser("root@example.com")
		target := e.User("target@example.com")
		sid := sessionIDOf(t, target.Access)
		idle, gone := e.User("idle@example.com"), e.User("gone@example.com")
		e.Exec(`UPDATE users SET is_superuser = TRUE WHERE id IN ($1, $2)`, idle.UserID, gone.UserID)
		e.Get(adminUsers, idle.Access).Expect(t, http.StatusOK, "")
		e.Get(adminUsers, gone.Access).Expect(t, http.StatusOK, "")
		// Flags set behind the API's back, so the sessions stay active and
		// the gate itself must refuse.
		e.Exec(`UPDATE users SET is_active = FALSE WHERE id = $1`, idle.UserID)
		e.Exec(`UPDATE users SET deleted_at = created_at WHERE id = $1`, gone.UserID)

		oid := unknownID // refused before the organization is looked up
		reqs := append(adminEndpoints(target.UserID, sid),
			apitest.Request{Method: "GET", Path: adminOrgsAPI},
			apitest.Request{Method: "POST", Path: adminOrgsAPI, Body: map[string]any{"name": "Gate", "slug": "gate"}},
			apitest.Request{Method: "GET", Path: adminOrgURL(oid)},
			apitest.Request{Method: "PUT", Path: adminOrgURL(oid), Body: map[string]any{"name": "Gated"}},
			apitest.Request{Method: "DELETE", Path: adminOrgURL(oid)},
			apitest.Request{Method: "GET", Path: adminOrgURL(oid, "/members")},
			apitest.Request{Method: "POST", Path: adminOrgURL(oid, "/members"), Body: map[string]any{"user_id": target.UserID}},
			apitest.Request{Method: "DELETE", Path: adminOrgURL(oid, "/members/", target.UserID)},
		)
		for _, req := range reqs {
			t.Run(req.Method+" "+req.Path, func(t *testing.T) {
				expectUnchanged(t, e, func() {
					req.Token = idle.Access
					expectError(t, e.Do(req), http.StatusForbidden, "AUTH_004", "Inactive user", "")
					req.Token = gone.Access
					e.Do(req).Expect(t, http.StatusUnauthorized, "AUTH_006")
				})
			})
		}
	})
}

type userPage struct {
	Data []struct {
		ID          string  `json:"id"`
		Email       string  `json:"email"`
		FirstName   string  `json:"first_name"`
		LastName    *string `json:"last_name"`
		IsActive    bool    `json:"is_active"`
		IsSuperuser bool    `json:"is_superuser"`
	} `json:"data"`
	Pagination struct {
		Total      int  `json:"total"`
		Page       int  `json:"page"`
		PageSize   int  `json:"page_size"`
		TotalPages int  `json:"total_pages"`
		HasNext    bool `json:"has_next"`
		HasPrev    bool `json:"has_prev"`
	} `json:"pagination"`
}

func (p userPage) emails() []string {
	out := []string{}
	for _, d := range p.Data {
		out = append(out, d.Email)
	}
	return out
}

func TestAdminListUsers(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		admin := e.Superuser("root@example.com")
		reg := func(email, first, last string) string {
			r := e.Post("/api/v1/auth/register", "", map[string]any{"email": email, "password": apitest.Password,
				"first_name": first, "last_name": last}).Expect(t, http.StatusCreated, "")
			return r.JSON(t)["id"].(string)
		}
		reg("percent@example.com", "100%", "Sure")
		reg("plain@example.com", "Plain", "Person")
		reg("under_score@example.com", "Under", "Score")
		reg("quote@example.com", "O'Brien", `Say "hi"`)
		reg("slash@example.com", `Back\slash`, "Name")
		reg("accent@example.com", "Élodie", "Àlvarez")
		inactive := reg("inactive@example.com", "Ina", "Ctive")
		e.Post(adminUser(inactive)+"/deactivate", admin.Access, nil).Expect(t, http.StatusOK, "")
		gone := reg("gone-percent@example.com", "Gone 100%", "X")
		e.Delete(adminUser(gone), admin.Access).Expect(t, http.StatusOK, "")

		get := func(query string) userPage {
			t.Helper()
			var p userPage
			e.Get(adminUsers+query, admin.Access).Expect(t, http.StatusOK, "").Decode(t, &p)
			return p
		}
		t.Run("soft-deleted users are excluded; default order is newest first", func(t *testing.T) {
			p := get("")
			if p.Pagination.Total != 8 || slices.Contains(p.emails(), "gone-percent@example.com") {
				t.Fatalf("total %d, %v", p.Pagination.Total, p.emails())
			}
			if got := p.emails(); got[0] != "inactive@example.com" || got[len(got)-1] != "root@example.com" {
				t.Fatalf("default order (created_at desc): %v", got)
			}
		})
		t.Run("search is a literal, case-insensitive substring of email, first or last name", func(t *testing.T) {
			for _, tc := range []struct {
				search string
				want   []string
			}{
				{"%", []string{"percent@example.com"}},
				{"_", []string{"under_score@example.com"}},
				{"'", []string{"quote@example.com"}},
				{`"hi"`, []string{"quote@example.com"}},
				{`\`, []string{"slash@example.com"}},
				{`k\s`, []string{"slash@example.com"}},
				{"PLAIN", []string{"plain@example.com"}},
				{"person", []string{"plain@example.com"}},
				{"élodie", []string{"accent@example.com"}},
				{"ÀLVAREZ", []string{"accent@example.com"}},
				{"gone", []string{}},
				{"nobody-matches-this", []string{}},
				{"%%", []string{}},
			} {
				got := get("?search=" + urlQueryEscape(tc.search) + "&limit=100").emails()
				sort.Strings(got)
				if !slices.Equal(got, tc.want) {
					t.Errorf("search %q: %v, want %v", tc.search, got, tc.want)
				}
			}
			if p := get("?search=example&is_active=false"); !slices.Equal(p.emails(), []string{"inactive@example.com"}) {
				t.Errorf("search with a filter: %v", p.emails())
			}
		})
		t.Run("filters, sort and pagination", func(t *testing.T) {
			if got := get("?is_superuser=yes").emails(); !slices.Equal(got, []string{"root@example.com"}) {
				t.Errorf("is_superuser=yes: %v", got)
			}
			if got := get("?is_active=0").emails(); !slices.Equal(got, []string{"inactive@example.com"}) {
				t.Errorf("is_active=0: %v", got)
			}
			if got := get("?sort_by=email&limit=100").emails(); !sort.StringsAreSorted(got) || len(got) != 8 {
				t.Errorf("sort_by=email: %v", got)
			}
			if got := get("?sort_by=email&sort_order=desc").emails(); !sort.IsSorted(sort.Reverse(sort.StringSlice(got))) {
				t.Errorf("sort_by=email desc: %v", got)
			}
			p := get("?page=2&limit=3&sort_by=email")
			if p.Pagination.Total != 8 || p.Pagination.Page != 2 || p.Pagination.PageSize != 3 || p.Pagination.TotalPages != 3 ||
				!p.Pagination.HasNext || !p.Pagination.HasPrev || p.emails()[0] != "plain@example.com" {
				t.Errorf("page 2: %+v %v", p.Pagination, p.emails())
			}
		})
		t.Run("bad query parameters are 422 on their field", func(t *testing.T) {
			for query, field := range map[string]string{
				"?page=-1": "page", "?page=0": "page", "?limit=0": "limit", "?limit=101": "limit",
				"?sort_by=password_hash": "sort_by", "?sort_order=sideways": "sort_order", "?is_active=maybe": "is_active",
				"?is_superuser=2": "is_superuser", "?search=" + strings.Repeat("x", 256): "search", "?search=%00": "search",
				"?search=%FF": "search",
			} {
				r := e.Get(adminUsers+query, admin.Access).Expect(t, http.StatusUnprocessableEntity, "VAL_001")
				if _, ok := fieldErrors(t, r)[field]; !ok {
					t.Errorf("%.40s: no error on %s: %s", query, field, r.Body)
				}
			}
		})
	})
}

func urlQueryEscape(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

func TestAdminCreateUser(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		admin := e.Superuser("root@example.com")
		t.Run("defaults: an active regular user", func(t *testing.T) {
			r := e.Post(adminUsers, admin.Access, map[string]any{"email": "New@Example.com", "password": apitest.Password,
				"first_name": "New", "last_name": "Person", "phone_number": "+39 (333) 123-4567"}).Expect(t, http.StatusCreated, "")
			u := r.JSON(t)
			if u["email"] != "new@example.com" || u["first_name"] != "New" || u["last_name"] != "Person" ||
				u["phone_number"] != "+393331234567" || u["is_active"] != true || u["is_superuser"] != false {
				t.Fatalf("created %v", u)
			}
			for _, k := range []string{"id", "created_at", "updated_at", "locale"} {
				if _, ok := u[k]; !ok {
					t.Errorf("UserResponse lacks %s", k)
				}
			}
			if _, ok := u["password_hash"]; ok {
				t.Error("the password hash is serialised")
			}
			e.Login("new@example.com", apitest.Password)
		})
		t.Run("is_superuser and is_active are honoured (fix 21)", func(t *testing.T) {
			u := e.Post(adminUsers, admin.Access, map[string]any{"email": "boss@example.com", "password": apitest.Password,
				"first_name": "Boss", "is_superuser": true}).Expect(t, http.StatusCreated, "").JSON(t)
			if u["is_superuser"] != true || u["is_active"] != true {
				t.Fatalf("created %v", u)
			}
			boss := e.Login("boss@example.com", apitest.Password)
			e.Get(adminStats, boss.Access).Expect(t, http.StatusOK, "")

			u = e.Post(adminUsers, admin.Access, map[string]any{"email": "dormant@example.com", "password": apitest.Password,
				"first_name": "Dormant", "is_active": false}).Expect(t, http.StatusCreated, "").JSON(t)
			if u["is_active"] != false || u["is_superuser"] != false {
				t.Fatalf("created %v", u)
			}
			r := e.Post(pathLogin, "", map[string]any{"email": "dormant@example.com", "password": apitest.Password})
			expectError(t, r, http.StatusUnauthorized, "AUTH_001", "User account is inactive", "")
		})
		t.Run("null flags mean their defaults", func(t *testing.T) {
			u := e.Post(adminUsers, admin.Access, map[string]any{"email": "nulls@example.com", "password": apitest.Password,
				"first_name": "Nulls", "is_active": nil, "is_superuser": nil}).Expect(t, http.StatusCreated, "").JSON(t)
			if u["is_active"] != true || u["is_superuser"] != false {
				t.Fatalf("created %v", u)
			}
		})
		t.Run("duplicate email is 409 USER_002 naming it, whatever its case", func(t *testing.T) {
			expectUnchanged(t, e, func() {
				r := e.Post(adminUsers, admin.Access, map[string]any{"email": "NEW@example.COM", "password": apitest.Password, "first_name": "Again"})
				expectError(t, r, http.StatusConflict, "USER_002", "User with email new@example.com already exists", "")
			})
		})
		t.Run("a deleted user's email can be used again", func(t *testing.T) {
			gone := e.User("reuse@example.com")
			e.Delete(adminUser(gone.UserID), admin.Access).Expect(t, http.StatusOK, "")
			u := e.Post(adminUsers, admin.Access, map[string]any{"email": "reuse@example.com", "password": apitest.Password, "first_name": "Reuse"}).
				Expect(t, http.StatusCreated, "").JSON(t)
			if u["id"] == gone.UserID {
				t.Fatal("the deleted account was revived")
			}
		})
		t.Run("field rules of registration", func(t *testing.T) {
			for _, tc := range []struct {
				name, field, msg string
				body             map[string]any
			}{
				{"weak password", "password", "Value error, Password must be at least 12 characters long", map[string]any{"email": "x@example.com", "password": "weak", "first_name": "X"}},
				{"reserved domain", "email", "value is not a valid email address", map[string]any{"email": "x@example.test", "password": apitest.Password, "first_name": "X"}},
				{"blank first name", "first_name", "Value error, First name cannot be empty", map[string]any{"email": "x@example.com", "password": apitest.Password, "first_name": " "}},
				{"bad phone", "phone_number", "Value error, Phone number must start with + or 0 followed by 8-14 digits", map[string]any{"email": "x@example.com", "password": apitest.Password, "first_name": "X", "phone_number": "12"}},
				{"long last name", "last_name", "String should have at most 100 characters", map[string]any{"email": "x@example.com", "password": apitest.Password, "first_name": "X", "last_name": strings.Repeat("a", 101)}},
				{"missing password", "password", "Field required", map[string]any{"email": "x@example.com", "first_name": "X"}},
				{"string for a boolean", "is_active", "", map[string]any{"email": "x@example.com", "password": apitest.Password, "first_name": "X", "is_active": "yes"}},
			} {
				t.Run(tc.name, func(t *testing.T) {
					expectUnchanged(t, e, func() {
						r := e.Post(adminUsers, admin.Access, tc.body).Expect(t, http.StatusUnprocessableEntity, "VAL_001")
						msg, ok := fieldErrors(t, r)[tc.field]
						if !ok || !strings.HasPrefix(msg, tc.msg) {
							t.Fatalf("field %s: %q, want it to start with %q; body %s", tc.field, msg, tc.msg, r.Body)
						}
					})
				})
			}
		})
	})
}

func TestAdminGetUser(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		admin := e.Superuser("root@example.com")
		alice := e.User("alice@example.com")
		u := e.Get(adminUser(strings.ToUpper(alice.UserID)), admin.Access).Expect(t, http.StatusOK, "").JSON(t)
		if u["id"] != alice.UserID || u["email"] != "alice@example.com" {
			t.Fatalf("user %v", u)
		}
		expectError(t, e.Get(adminUser(unknownID), admin.Access), http.StatusNotFound, "SYS_002", "User "+unknownID+" not found", "")
		e.Delete(adminUser(alice.UserID), admin.Access).Expect(t, http.StatusOK, "")
		expectError(t, e.Get(adminUser(alice.UserID), admin.Access), http.StatusNotFound, "SYS_002", "User "+alice.UserID+" not found", "")
		e.Get(adminUser("not-a-uuid"), admin.Access).Expect(t, http.StatusUnprocessableEntity, "VAL_001")
		if _, _, f := e.Get(adminUser("123"), admin.Access).ErrorCode(t); f != "user_id" {
			t.Fatalf("field %v", f)
		}
	})
}

func TestAdminUpdateUser(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		admin := e.Superuser("root@example.com")
		bob := e.User("bob@example.com")
		bob2 := e.Login("bob@example.com", apitest.Password)

		t.Run("partial update with explicit nulls", func(t *testing.T) {
			u := put(e, adminUser(bob.UserID), admin.Access, map[string]any{"first_name": "Robert", "last_name": nil, "locale": "en-GB"}).
				Expect(t, http.StatusOK, "").JSON(t)
			if u["first_name"] != "Robert" || u["last_name"] != nil || u["locale"] != "en-gb" || u["email"] != "bob@example.com" || u["is_active"] != true {
				t.Fatalf("user %v", u)
			}
			e.Get(pathMe, bob.Access).Expect(t, http.StatusOK, "")
		})
		t.Run("refusals change nothing", func(t *testing.T) {
			for _, tc := range []struct {
				name   string
				body   map[string]any
				status int
				code   string
				field  string
				msg    string
			}{
				{"is_superuser", map[string]any{"is_superuser": true}, 422, "VAL_001", "is_superuser", "Value error, Cannot modify superuser status through user update"},
				{"is_superuser false", map[string]any{"is_superuser": false, "first_name": "X"}, 422, "VAL_001", "is_superuser", "Value error, Cannot modify superuser status through user update"},
				{"weak password with a valid name", map[string]any{"password": "weak", "first_name": "X"}, 422, "VAL_001", "password", "Value error, Password must be at least 12 characters long"},
				{"null password", map[string]any{"password": nil}, 422, "VAL_001", "password", "Value error, Password cannot be null"},
				{"null is_active", map[string]any{"is_active": nil}, 422, "VAL_001", "is_active", "Input should be a valid boolean"},
				{"null first name", map[string]any{"first_name": nil}, 422, "VAL_001", "first_name", "Value error, First name cannot be null"},
				{"bad locale with a password", map[string]any{"locale": "fr", "password": "N3w!Password-1"}, 422, "VAL_001", "locale", "Value error, Unsupported locale 'fr'. Supported locales: ['en', 'en-gb', 'en-us', 'it', 'it-it']"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					expectUnchanged(t, e, func() {
						r := put(e, adminUser(bob.UserID), admin.Access, tc.body).Expect(t, tc.status, tc.code)
						if got := fieldErrors(t, r)[tc.field]; got != tc.msg {
							t.Fatalf("field %s: %q, want %q; body %s", tc.field, got, tc.msg, r.Body)
						}
					})
				})
			}
			expectUnchanged(t, e, func() {
				expectError(t, put(e, adminUser(admin.UserID), admin.Access, map[string]any{"is_active": false, "first_name": "Me"}),
					http.StatusForbidden, "AUTH_007", "Cannot deactivate your own account", "")
				expectError(t, put(e, adminUser(unknownID), admin.Access, map[string]any{"first_name": "Ghost", "password": "N3w!Password-1"}),
					http.StatusNotFound, "SYS_002", "User "+unknownID+" not found", "")
				expectError(t, put(e, adminUser("nope"), admin.Access, map[string]any{"first_name": "X"}),
					http.StatusUnprocessableEntity, "VAL_001", "Input should be a valid UUID, invalid character or length", "user_id")
			})
			e.Get(pathMe, bob.Access).Expect(t, http.StatusOK, "")
		})
		t.Run("setting the password revokes every session and reset token of the user", func(t *testing.T) {
			e.Post("/api/v1/auth/password-reset/request", "", map[string]any{"email": "bob@example.com"}).Expect(t, http.StatusOK, "")
			waitFor(t, func() bool {
				return e.Count(`SELECT COUNT(*) FROM password_reset_tokens WHERE user_id = $1`, bob.UserID) == 1
			})
			u := put(e, adminUser(bob.UserID), admin.Access, map[string]any{"password": "N3w!Password-1", "first_name": "Bobby"}).
				Expect(t, http.StatusOK, "").JSON(t)
			if u["first_name"] != "Bobby" {
				t.Fatalf("user %v", u)
			}
			for _, tk := range []apitest.Tokens{bob, bob2} {
				e.Get(pathMe, tk.Access).Expect(t, http.StatusUnauthorized, "AUTH_006")
				e.Post(pathRefresh, "", map[string]any{"refresh_token": tk.Refresh}).Expect(t, http.StatusUnauthorized, "AUTH_006")
			}
			if n := e.Count(`SELECT COUNT(*) FROM password_reset_tokens WHERE user_id = $1 AND used_at IS NULL`, bob.UserID); n != 0 {
				t.Fatalf("%d pending reset tokens survived", n)
			}
			e.Post(pathLogin, "", map[string]any{"email": "bob@example.com", "password": apitest.Password}).Expect(t, http.StatusUnauthorized, "AUTH_001")
			bob = e.Login("bob@example.com", "N3w!Password-1")
			e.Get(pathMe, admin.Access).Expect(t, http.StatusOK, "")
		})
		t.Run("superusers setting their own password keep the calling session", func(t *testing.T) {
			other := e.Login("root@example.com", apitest.Password)
			put(e, adminUser(admin.UserID), admin.Access, map[string]any{"password": "R00t!Password-2"}).Expect(t, http.StatusOK, "")
			e.Get(pathMe, admin.Access).Expect(t, http.StatusOK, "")
			e.Get(pathMe, other.Access).Expect(t, http.StatusUnauthorized, "AUTH_006")
		})
		t.Run("is_active false revokes sessions, true reactivates", func(t *testing.T) {
			u := put(e, adminUser(bob.UserID), admin.Access, map[string]any{"is_active": false}).Expect(t, http.StatusOK, "").JSON(t)
			if u["is_active"] != false {
				t.Fatalf("user %v", u)
			}
			if n := e.Count(`SELECT COUNT(*) FROM user_sessions WHERE user_id = $1 AND is_active = TRUE`, bob.UserID); n != 0 {
				t.Fatalf("%d sessions active after deactivation", n)
			}
			e.Post(pathRefresh, "", map[string]any{"refresh_token": bob.Refresh}).Expect(t, http.StatusUnauthorized, "AUTH_006")
			u = put(e, adminUser(bob.UserID), admin.Access, map[string]any{"is_active": true}).Expect(t, http.StatusOK, "").JSON(t)
			if u["is_active"] != true {
				t.Fatalf("user %v", u)
			}
			e.Login("bob@example.com", "N3w!Password-1")
		})
	})
}

// waitFor polls cond for up to five seconds (for effects of background work).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not met within 5s")
}

func TestAdminDeleteUser(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		admin := e.Superuser("root@example.com")
		carol := e.User("carol@example.com")
		expectUnchanged(t, e, func() {
			expectError(t, e.Delete(adminUser(admin.UserID), admin.Access), http.StatusForbidden, "AUTH_007", "Cannot delete your own account", "")
			expectError(t, e.Delete(adminUser(unknownID), admin.Access), http.StatusNotFound, "SYS_002", "User "+unknownID+" not found", "")
			e.Delete(adminUser("me"), admin.Access).Expect(t, http.StatusUnprocessableEntity, "VAL_001")
		})
		r := e.Delete(adminUser(carol.UserID), admin.Access).Expect(t, http.StatusOK, "")
		if msg := messageOf(t, r); msg != "User carol@example.com has been deleted" {
			t.Fatalf("message %q", msg)
		}
		e.Get(pathMe, carol.Access).Expect(t, http.StatusUnauthorized, "AUTH_006")
		e.Post(pathRefresh, "", map[string]any{"refresh_token": carol.Refresh}).Expect(t, http.StatusUnauthorized, "AUTH_006")
		if n := e.Count(`SELECT COUNT(*) FROM users WHERE id = $1 AND is_active = FALSE AND deleted_at IS NOT NULL`, carol.UserID); n != 1 {
			t.Fatal("not soft-deleted and inactive")
		}
		expectError(t, e.Delete(adminUser(carol.UserID), admin.Access), http.StatusNotFound, "SYS_002", "User "+carol.UserID+" not found", "")
		e.Register("carol@example.com")
	})
}

func TestAdminActivateDeactivate(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		admin := e.Superuser("root@example.com")
		dave := e.User("dave@example.com")
		r := e.Post(adminUser(dave.UserID)+"/deactivate", admin.Access, nil).Expect(t, http.StatusOK, "")
		if msg := messageOf(t, r); msg != "User dave@example.com has been deactivated" {
			t.Fatalf("message %q", msg)
		}
		if n := e.Count(`SELECT COUNT(*) FROM user_sessions WHERE user_id = $1 AND is_active = TRUE`, dave.UserID); n != 0 {
			t.Fatalf("%d sessions still active", n)
		}
		expectError(t, e.Get(pathMe, dave.Access), http.StatusForbidden, "AUTH_004", "Inactive user", "")
		e.Post(pathRefresh, "", map[string]any{"refresh_token": dave.Refresh}).Expect(t, http.StatusUnauthorized, "AUTH_006")
		// Deactivating again succeeds again.
		e.Post(adminUser(dave.UserID)+"/deactivate", admin.Access, nil).Expect(t, http.StatusOK, "")

		r = e.Post(adminUser(dave.UserID)+"/activate", admin.Access, nil).Expect(t, http.StatusOK, "")
		if msg := messageOf(t, r); msg != "User dave@example.com has been activated" {
			t.Fatalf("message %q", msg)
		}
		if u := e.Get(adminUser(dave.UserID), admin.Access).JSON(t); u["is_active"] != true {
			t.Fatalf("user %v", u)
		}
		// Reactivation does not revive the revoked session.
		e.Get(pathMe, dave.Access).Expect(t, http.StatusUnauthorized, "AUTH_006")
		dave = e.Login("dave@example.com", apitest.Password)

		expectUnchanged(t, e, func() {
			expectError(t, e.Post(adminUser(admin.UserID)+"/deactivate", admin.Access, nil), http.StatusForbidden, "AUTH_007", "Cannot deactivate your own account", "")
			for _, action := range []string{"activate", "deactivate"} {
				expectError(t, e.Post(adminUser(unknownID)+"/"+action, admin.Access, nil), http.StatusNotFound, "SYS_002", "User "+unknownID+" not found", "")
				e.Post(adminUser("x")+"/"+action, admin.Access, nil).Expect(t, http.StatusUnprocessableEntity, "VAL_001")
			}
		})
		e.Post(adminUser(admin.UserID)+"/activate", admin.Access, nil).Expect(t, http.StatusOK, "")
		e.Get(pathMe, admin.Access).Expect(t, http.StatusOK, "")

		e.Delete(adminUser(dave.UserID), admin.Access).Expect(t, http.StatusOK, "")
		for _, action := range []string{"activate", "deactivate"} {
			expectError(t, e.Post(adminUser(dave.UserID)+"/"+action, admin.Access, nil), http.StatusNotFound, "SYS_002", "User "+dave.UserID+" not found", "")
		}
		if n := e.Count(`SELECT COUNT(*) FROM users WHERE id = $1 AND is_active = FALSE`, dave.UserID); n != 1 {
			t.Fatal("activating a deleted user changed it")
		}
	})
}

type bulkResult struct {
	Success       bool      `json:"success"`
	AffectedCount int       `json:"affected_count"`
	FailedCount   int       `json:"failed_count"`
	Message       string    `json:"message"`
	FailedIDs     *[]string `json:"failed_ids"`
}

func TestAdminBulkAction(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		const path = adminUsers + "/bulk-action"
		admin := e.Superuser("root@example.com")
		bulk := func(action string, ids ...string) bulkResult {
			t.Helper()
			var b bulkResult
			e.Post(path, admin.Access, map[string]any{"action": action, "user_ids": ids}).Expect(t, http.StatusOK, "").Decode(t, &b)
			if b.FailedIDs == nil {
				t.Fatalf("failed_ids is null: %+v", b)
			}
			return b
		}
		u1, u2, u3 := e.User("u1@example.com"), e.User("u2@example.com"), e.User("u3@example.com")
		gone := e.User("gone@example.com")
		e.Delete(adminUser(gone.UserID), admin.Access).Expect(t, http.StatusOK, "")
		bystander := e.User("bystander@example.com")

		t.Run("deactivate: duplicates once, the caller, deleted and unknown ids skipped in request order", func(t *testing.T) {
			b := bulk("deactivate", u1.UserID, unknownID, strings.ToUpper(u2.UserID), admin.UserID, u1.UserID, gone.UserID, u2.UserID, unknownID, admin.UserID)
			want := []string{unknownID, admin.UserID, gone.UserID}
			if b.Success || b.AffectedCount != 2 || b.FailedCount != 3 || !slices.Equal(*b.FailedIDs, want) ||
				b.Message != "Bulk deactivate: 2 users affected, 3 skipped" {
				t.Fatalf("result %+v, want 2 affected and failed %v", b, want)
			}
			for _, tk := range []apitest.Tokens{u1, u2} {
				expectError(t, e.Get(pathMe, tk.Access), http.StatusForbidden, "AUTH_004", "Inactive user", "")
				e.Post(pathRefresh, "", map[string]any{"refresh_token": tk.Refresh}).Expect(t, http.StatusUnauthorized, "AUTH_006")
				if n := e.Count(`SELECT COUNT(*) FROM user_sessions WHERE user_id = $1 AND is_active = TRUE`, tk.UserID); n != 0 {
					t.Errorf("%d sessions of a deactivated user still active", n)
				}
			}
			e.Get(pathMe, admin.Access).Expect(t, http.StatusOK, "")
			e.Get(pathMe, u3.Access).Expect(t, http.StatusOK, "")
			e.Get(pathMe, bystander.Access).Expect(t, http.StatusOK, "")
		})
		t.Run("activate: the caller counts as affected; all done is success", func(t *testing.T) {
			b := bulk("activate", u1.UserID, u2.UserID, admin.UserID, u3.UserID)
			if !b.Success || b.AffectedCount != 4 || b.FailedCount != 0 || len(*b.FailedIDs) != 0 || b.Message != "Bulk activate: 4 users affected, 0 skipped" {
				t.Fatalf("result %+v", b)
			}
			e.Login("u1@example.com", apitest.Password)
			b = bulk("activate", gone.UserID)
			if b.Success || b.AffectedCount != 0 || !slices.Equal(*b.FailedIDs, []string{gone.UserID}) {
				t.Fatalf("activating a deleted user: %+v", b)
			}
			if n := e.Count(`SELECT COUNT(*) FROM users WHERE id = $1 AND is_active = FALSE AND deleted_at IS NOT NULL`, gone.UserID); n != 1 {
				t.Fatal("a deleted user was reactivated")
			}
		})
		t.Run("delete: never the caller; sessions stop working; emails free again", func(t *testing.T) {
			fresh := e.Login("u3@example.com", apitest.Password)
			b := bulk("delete", u3.UserID, admin.UserID, u1.UserID)
			if b.Success || b.AffectedCount != 2 || !slices.Equal(*b.FailedIDs, []string{admin.UserID}) || b.Message != "Bulk delete: 2 users affected, 1 skipped" {
				t.Fatalf("result %+v", b)
			}
			for _, tk := range []apitest.Tokens{u3, fresh} {
				e.Get(pathMe, tk.Access).Expect(t, http.StatusUnauthorized, "AUTH_006")
				e.Post(pathRefresh, "", map[string]any{"refresh_token": tk.Refresh}).Expect(t, http.StatusUnauthorized, "AUTH_006")
			}
			if n := e.Count(`SELECT COUNT(*) FROM users WHERE id IN ($1, $2) AND deleted_at IS NOT NULL AND is_active = FALSE`, u1.UserID, u3.UserID); n != 2 {
				t.Fatalf("%d of 2 users soft-deleted", n)
			}
			e.Get(pathMe, admin.Access).Expect(t, http.StatusOK, "")
			e.Get(adminUser(u3.UserID), admin.Access).Expect(t, http.StatusNotFound, "SYS_002")
			e.Register("u3@example.com")
			// Deleted ids are skipped afterwards.
			if b := bulk("delete", u3.UserID); b.AffectedCount != 0 || b.FailedCount != 1 {
				t.Fatalf("deleting again: %+v", b)
			}
		})
		t.Run("bad requests are 422 on their field and change nothing", func(t *testing.T) {
			many := make([]string, 101)
			for i := range many {
				many[i] = user.NewID()
			}
			hundred := append([]string{}, many[:99]...)
			hundred = append(hundred, bystander.UserID)
			for _, tc := range []struct {
				name  string
				body  any
				field string
			}{
				{"unknown action", map[string]any{"action": "purge", "user_ids": []string{bystander.UserID}}, "action"},
				{"missing action", map[string]any{"user_ids": []string{bystander.UserID}}, "action"},
				{"no ids", map[string]any{"action": "delete", "user_ids": []string{}}, "user_ids"},
				{"missing ids", map[string]any{"action": "delete"}, "user_ids"},
				{"null ids", map[string]any{"action": "delete", "user_ids": nil}, "user_ids"},
				{"101 ids", map[string]any{"action": "delete", "user_ids": append(many[:100:100], bystander.UserID)}, "user_ids"},
				{"invalid uuid", map[string]any{"action": "delete", "user_ids": []string{bystander.UserID, user.NewID(), user.NewID(), "not-a-uuid"}}, "user_ids.3"},
				{"number for an id", map[string]any{"action": "delete", "user_ids": []any{bystander.UserID, 7}}, "user_ids.1"},
				{"ids as a string", map[string]any{"action": "delete", "user_ids": bystander.UserID}, "user_ids"},
				{"invalid JSON", `{"action":"delete","user_ids":[`, ""},
			} {
				t.Run(tc.name, func(t *testing.T) {
					expectUnchanged(t, e, func() {
						r := e.Post(path, admin.Access, tc.body).Expect(t, http.StatusUnprocessableEntity, "VAL_001")
						if tc.field != "" {
							if _, ok := fieldErrors(t, r)[tc.field]; !ok {
								t.Fatalf("no error on %s: %s", tc.field, r.Body)
							}
						}
					})
				})
			}
			// 100 ids are accepted; 99 unknown ones are skipped.
			b := bulk("deactivate", hundred...)
			if b.AffectedCount != 1 || b.FailedCount != 99 || !slices.Equal(*b.FailedIDs, hundred[:99]) {
				t.Fatalf("100 ids: affected %d failed %d", b.AffectedCount, b.FailedCount)
			}
		})
	})
}

type adminSessionPage struct {
	Data []struct {
		ID           string  `json:"id"`
		UserID       string  `json:"user_id"`
		UserEmail    string  `json:"user_email"`
		UserFullName *string `json:"user_full_name"`
		DeviceName   *string `json:"device_name"`
		DeviceID     *string `json:"device_id"`
		IPAddress    *string `json:"ip_address"`
		IsActive     bool    `json:"is_active"`
	} `json:"data"`
	Pagination struct {
		Total    int `json:"total"`
		PageSize int `json:"page_size"`
	} `json:"pagination"`
}

func TestAdminSessions(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		admin := e.Superuser("root@example.com")
		aliceID := e.Register("alice@example.com")
		alice := loginWith(t, e, "alice@example.com", map[string]string{"User-Agent": chromeMac, "X-Device-Id": "laptop-1"})
		aliceOld := e.Login("alice@example.com", apitest.Password)
		e.Post("/api/v1/auth/logout", aliceOld.Access, map[string]any{"refresh_token": aliceOld.Refresh}).Expect(t, http.StatusOK, "")
		bob := e.User("bob@example.com")
		e.Exec(`UPDATE users SET first_name = '', last_name = NULL WHERE id = $1`, bob.UserID)
		carol := e.User("carol@example.com")
		e.Delete(adminUser(carol.UserID), admin.Access).Expect(t, http.StatusOK, "")

		list := func(query string) adminSessionPage {
			t.Helper()
			var p adminSessionPage
			e.Get(adminSessions+query, admin.Access).Expect(t, http.StatusOK, "").Decode(t, &p)
			return p
		}
		ids := func(p adminSessionPage) []string {
			out := []string{}
			for _, d := range p.Data {
				out = append(out, d.ID)
			}
			sort.Strings(out)
			return out
		}
		sorted := func(s ...string) []string { sort.Strings(s); return s }
		active := sorted(sessionIDOf(t, admin.Access), sessionIDOf(t, alice.Access), sessionIDOf(t, bob.Access))

		t.Run("omitted and true list active sessions; false the revoked ones (fix 19)", func(t *testing.T) {
			for _, q := range []string{"", "?is_active=true", "?is_active=on"} {
				p := list(q)
				if got := ids(p); !slices.Equal(got, active) || p.Pagination.Total != 3 {
					t.Errorf("%q: %v (total %d), want %v", q, got, p.Pagination.Total, active)
				}
			}
			p := list("?is_active=false")
			if got := ids(p); !slices.Equal(got, []string{sessionIDOf(t, aliceOld.Access)}) || p.Pagination.Total != 1 || p.Data[0].IsActive {
				t.Errorf("is_active=false: %+v (the deleted user's revoked session must not be listed)", p)
			}
		})
		t.Run("AdminSessionResponse fields", func(t *testing.T) {
			byID := map[string]int{}
			p := list("")
			for i, d := range p.Data {
				byID[d.ID] = i
			}
			a := p.Data[byID[sessionIDOf(t, alice.Access)]]
			if a.UserID != aliceID || a.UserEmail != "alice@example.com" || a.UserFullName == nil || *a.UserFullName != "Test User" ||
				a.DeviceName == nil || *a.DeviceName != "Chrome on Mac" || a.DeviceID == nil || *a.DeviceID != "laptop-1" ||
				a.IPAddress == nil || *a.IPAddress != "127.0.0.1" || !a.IsActive {
				t.Errorf("alice's session %+v: %s %s %s %s", a, deref(a.UserFullName), deref(a.DeviceName), deref(a.DeviceID), deref(a.IPAddress))
			}
			if b := p.Data[byID[sessionIDOf(t, bob.Access)]]; b.UserFullName != nil {
				t.Errorf("user_full_name of a user without names: %q, want null", *b.UserFullName)
			}
			var raw struct {
				Data []map[string]json.RawMessage `json:"data"`
			}
			e.Get(adminSessions, admin.Access).Decode(t, &raw)
			for _, k := range []string{"device_name", "device_id", "id", "user_id", "user_email", "user_full_name", "ip_address",
				"location_city", "location_country", "last_used_at", "created_at", "expires_at", "is_active"} {
				if _, ok := raw.Data[0][k]; !ok {
					t.Errorf("AdminSessionResponse lacks %s", k)
				}
			}
			if p := list("?limit=2&page=2"); len(p.Data) != 1 || p.Pagination.Total != 3 || p.Pagination.PageSize != 1 {
				t.Errorf("page 2 of 2: %+v", p)
			}
		})
		t.Run("bad query parameters", func(t *testing.T) {
			for query, field := range map[string]string{"?is_active=maybe": "is_active", "?limit=0": "limit", "?limit=101": "limit", "?page=-1": "page"} {
				r := e.Get(adminSessions+query, admin.Access).Expect(t, http.StatusUnprocessableEntity, "VAL_001")
				if _, ok := fieldErrors(t, r)[field]; !ok {
					t.Errorf("%s: no error on %s", query, field)
				}
			}
		})
		t.Run("revoking anyone's session stops its tokens on the next request", func(t *testing.T) {
			e.Get(pathMe, alice.Access).Expect(t, http.StatusOK, "")
			r := e.Delete(adminSessions+"/"+sessionIDOf(t, alice.Access), admin.Access).Expect(t, http.StatusOK, "")
			if msg := messageOf(t, r); msg != "Session revoked: Chrome on Mac" {
				t.Fatalf("message %q", msg)
			}
			expectError(t, e.Get(pathMe, alice.Access), http.StatusUnauthorized, "AUTH_006", "Session has been revoked. Please log in again.", "")
			e.Post(pathRefresh, "", map[string]any{"refresh_token": alice.Refresh}).Expect(t, http.StatusUnauthorized, "AUTH_006")
			e.Get(pathMe, bob.Access).Expect(t, http.StatusOK, "")
			// Revoking again succeeds again.
			e.Delete(adminSessions+"/"+sessionIDOf(t, alice.Access), admin.Access).Expect(t, http.StatusOK, "")

			e.Exec(`UPDATE user_sessions SET device_name = NULL WHERE id = $1`, sessionIDOf(t, bob.Access))
			r = e.Delete(adminSessions+"/"+sessionIDOf(t, bob.Access), admin.Access).Expect(t, http.StatusOK, "")
			if msg := messageOf(t, r); msg != "Session revoked: Unknown device" {
				t.Fatalf("message %q", msg)
			}
			e.Get(pathMe, bob.Access).Expect(t, http.StatusUnauthorized, "AUTH_006")
			if got := ids(list("?is_active=false")); !slices.Contains(got, sessionIDOf(t, alice.Access)) || !slices.Contains(got, sessionIDOf(t, bob.Access)) {
				t.Errorf("revoked sessions not listed as inactive: %v", got)
			}
		})
		t.Run("unknown, deleted users' and invalid ids", func(t *testing.T) {
			expectUnchanged(t, e, func() {
				expectError(t, e.Delete(adminSessions+"/"+unknownID, admin.Access), http.StatusNotFound, "SYS_002", "Session "+unknownID+" not found", "")
				sid := sessionIDOf(t, carol.Access)
				expectError(t, e.Delete(adminSessions+"/"+sid, admin.Access), http.StatusNotFound, "SYS_002", "Session "+sid+" not found", "")
				expectError(t, e.Delete(adminSessions+"/nope", admin.Access), http.StatusUnprocessableEntity, "VAL_001",
					"Input should be a valid UUID, invalid character or length", "session_id")
			})
		})
		t.Run("superusers may revoke their own session here", func(t *testing.T) {
			other := e.Login("root@example.com", apitest.Password)
			e.Delete(adminSessions+"/"+sessionIDOf(t, other.Access), admin.Access).Expect(t, http.StatusOK, "")
			e.Get(pathMe, other.Access).Expect(t, http.StatusUnauthorized, "AUTH_006")
			e.Get(pathMe, admin.Access).Expect(t, http.StatusOK, "")
		})
	})
}

type statsBody struct {
	UserGrowth []struct {
		Date        string `json:"date"`
		TotalUsers  int    `json:"total_users"`
		ActiveUsers int    `json:"active_users"`
	} `json:"user_growth"`
	OrganizationDistribution []struct {
		Name  string `json:"name"`
		Value int    `json:"value"`
	} `json:"organization_distribution"`
	RegistrationActivity []struct {
		Date          string `json:"date"`
		Registrations int    `json:"registrations"`
	} `json:"registration_activity"`
	UserStatus []struct {
		Name  string `json:"name"`
		Value int    `json:"value"`
	} `json:"user_status"`
}

func TestAdminStats(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		today := time.Now().UTC().Truncate(24 * time.Hour)
		admin := e.Superuser("root@example.com") // created today, active
		ids := map[string]string{"root": admin.UserID}
		addUser := func(label string, created time.Time, active, deleted bool) {
			id := user.NewID()
			var del any
			if deleted {
				del = created
			}
			e.Exec(`INSERT INTO users (id, email, password_hash, first_name, last_name, phone_number, is_active, is_superuser,
				preferences, locale, password_changed_at, created_at, updated_at, deleted_at)
				VALUES ($1, $2, NULL, $3, NULL, NULL, $4, FALSE, NULL, NULL, NULL, $5, $5, $6)`,
				id, label+"@example.com", label, active, created, del)
			ids[label] = id
		}
		addUser("old", today.AddDate(0, 0, -40), true, false)
		addUser("first", today.AddDate(0, 0, -29), false, false)                // first instant of the first day
		addUser("mid", today.AddDate(0, 0, -10).Add(12*time.Hour), true, false) // in both windows
		addUser("yesterday", today.Add(-time.Microsecond), true, false)         // last instant of yesterday
		addUser("deleted", today.AddDate(0, 0, -5), true, true)                 // never counted
		addUser("deleted-old", today.AddDate(0, 0, -35), false, true)           // never counted
		addOrg := func(name string, members map[string]bool) {
			id := user.NewID()
			e.Exec(`INSERT INTO organizations (id, name, slug, description, is_active, settings, created_at, updated_at)
				VALUES ($1, $2, $3, NULL, TRUE, NULL, $4, $4)`, id, name, "org-"+id[len(id)-12:], today)
			for label, active := range members {
				e.Exec(`INSERT INTO user_organizations (user_id, organization_id, role, is_active, custom_permissions, created_at, updated_at)
					VALUES ($1, $2, 'member', $3, NULL, $4, $4)`, ids[label], id, active, today)
			}
		}
		addOrg("Bravo", map[string]bool{"root": true})
		addOrg("Acme", map[string]bool{"old": true, "mid": true, "yesterday": true, "first": false})
		addOrg("Beta", map[string]bool{"first": true, "root": false})
		addOrg("Deleted only", map[string]bool{"deleted": true, "deleted-old": true})
		addOrg("Removed only", map[string]bool{"old": false})
		addOrg("Empty", nil)

		var b statsBody
		e.Get(adminStats, admin.Access).Expect(t, http.StatusOK, "").Decode(t, &b)
		if time.Now().UTC().Truncate(24*time.Hour) != today {
			t.Skip("the UTC day changed during the test; the expected numbers are for the previous day")
		}

		if len(b.UserGrowth) != 30 {
			t.Fatalf("%d growth entries", len(b.UserGrowth))
		}
		for i, g := range b.UserGrowth {
			d := today.AddDate(0, 0, i-29)
			total, active := 2, 1 // old, first (inactive)
			if i >= 19 {
				total, active = total+1, active+1 // mid
			}
			if i >= 28 {
				total, active = total+1, active+1 // yesterday
			}
			if i == 29 {
				total, active = total+1, active+1 // root
			}
			if g.Date != d.Format("Jan 02") || g.TotalUsers != total || g.ActiveUsers != active {
				t.Errorf("growth[%d] = %+v, want %s total %d active %d", i, g, d.Format("Jan 02"), total, active)
			}
		}
		if len(b.RegistrationActivity) != 14 {
			t.Fatalf("%d registration entries", len(b.RegistrationActivity))
		}
		for i, r := range b.RegistrationActivity {
			d := today.AddDate(0, 0, i-13)
			want := 0
			if i == 3 || i == 12 || i == 13 { // mid, yesterday, root
				want = 1
			}
			if r.Date != d.Format("Jan 02") || r.Registrations != want {
				t.Errorf("registrations[%d] = %+v, want %s %d", i, r, d.Format("Jan 02"), want)
			}
		}
		type nv = struct {
			Name  string `json:"name"`
			Value int    `json:"value"`
		}
		if want := []nv{{"Acme", 3}, {"Beta", 1}, {"Bravo", 1}}; !slices.Equal(b.OrganizationDistribution, want) {
			t.Errorf("distribution %+v, want %+v", b.OrganizationDistribution, want)
		}
		if want := []nv{{"Active", 4}, {"Inactive", 1}}; !slices.Equal(b.UserStatus, want) {
			t.Errorf("user_status %+v, want %+v", b.UserStatus, want)
		}
	})
}

func TestAdminOpenAPI(t *testing.T) {
	t.Parallel()
	e := apitest.New(t, sqlstore.SQLite)
	var doc struct {
		Paths map[string]map[string]openAPIOperation `json:"paths"`
	}
	e.Get("/api/v1/openapi.json", "").Expect(t, http.StatusOK, "").Decode(t, &doc)
	var raw struct {
		Paths map[string]map[string]struct {
			Summary     string   `json:"summary"`
			Description string   `json:"description"`
			Tags        []string `json:"tags"`
			Security    []any    `json:"security"`
		} `json:"paths"`
	}
	e.Get("/api/v1/openapi.json", "").Decode(t, &raw)
	for _, want := range []struct {
		method, path string
		body         bool
		params       []string
	}{
		{"GET", "/api/v1/admin/stats", false, nil},
		{"GET", "/api/v1/admin/users", false, []string{"page", "limit", "sort_by", "sort_order", "is_active", "is_superuser", "search"}},
		{"POST", "/api/v1/admin/users", true, nil},
		{"POST", "/api/v1/admin/users/bulk-action", true, nil},
		{"GET", "/api/v1/admin/users/{user_id}", false, []string{"user_id"}},
		{"PUT", "/api/v1/admin/users/{user_id}", true, []string{"user_id"}},
		{"DELETE", "/api/v1/admin/users/{user_id}", false, []string{"user_id"}},
		{"POST", "/api/v1/admin/users/{user_id}/activate", false, []string{"user_id"}},
		{"POST", "/api/v1/admin/users/{user_id}/deactivate", false, []string{"user_id"}},
		{"GET", "/api/v1/admin/sessions", false, []string{"page", "limit", "is_active"}},
		{"DELETE", "/api/v1/admin/sessions/{session_id}", false, []string{"session_id"}},
	} {
		m := strings.ToLower(want.method)
		op, ok := doc.Paths[want.path][m]
		if !ok {
			t.Errorf("%s %s is not documented", want.method, want.path)
			continue
		}
		meta := raw.Paths[want.path][m]
		if meta.Summary == "" || len(meta.Description) < 40 || !slices.Contains(meta.Tags, "Admin") || len(meta.Security) == 0 {
			t.Errorf("%s %s: summary %q, description %q, tags %v, security %v", want.method, want.path, meta.Summary, meta.Description, meta.Tags, meta.Security)
		}
		if !strings.Contains(meta.Description, "Superusers only") {
			t.Errorf("%s %s: the description does not say who may call it", want.method, want.path)
		}
		var params []string
		for _, p := range op.Parameters {
			params = append(params, p.Name)
		}
		for _, p := range want.params {
			if !slices.Contains(params, p) {
				t.Errorf("%s %s: parameter %s not documented (%v)", want.method, want.path, p, params)
			}
		}
		if want.body && (op.RequestBody == nil || len(op.RequestBody.Content) == 0) {
			t.Errorf("%s %s: no request body documented", want.method, want.path)
		}
		var success, envelope bool
		for status, resp := range op.Responses {
			media, ok := resp.Content["application/json"]
			if !ok {
				continue
			}
			success = success || strings.HasPrefix(status, "2") && len(media.Schema) > 0
			envelope = envelope || media.Schema["$ref"] == "#/components/schemas/Envelope"
		}
		if !success || !envelope {
			t.Errorf("%s %s: success schema %v, envelope errors %v", want.method, want.path, success, envelope)
		}
	}
}

// TestAdminBadInputNever500s sends malformed requests to every admin
// operation: each is a 4xx envelope and changes nothing.
func TestAdminBadInputNever500s(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		admin := e.Superuser("root@example.com")
		victim := e.User("victim@example.com")
		long := strings.Repeat("x", 10_000)
		reqs := []apitest.Request{
			{Method: "POST", Path: adminUsers, Body: `{"email":`},
			{Method: "POST", Path: adminUsers, Body: `[]`},
			{Method: "POST", Path: adminUsers, Body: `{"email":1,"password":2,"first_name":3}`},
			{Method: "POST", Path: adminUsers, Body: `{"email":"` + long + `@example.com","password":"` + apitest.Password + `","first_name":"A"}`},
			{Method: "POST", Path: adminUsers, Body: `{"email":"nul@example.com","password":"` + apitest.Password + `","first_name":"A\u0000"}`},
			{Method: "POST", Path: adminUsers, Body: `{"email":"long@example.com","password":"` + long + `","first_name":"A"}`},
			{Method: "PUT", Path: adminUser(victim.UserID), Body: `{"preferences":{"x":"\u0000"}}`},
			{Method: "PUT", Path: adminUser(victim.UserID), Body: `{"preferences":[1]}`},
			{Method: "PUT", Path: adminUser(victim.UserID), Body: `{"password":"` + long + `"}`},
			{Method: "PUT", Path: adminUser(victim.UserID), Body: `{"password":"😀😀😀😀😀😀😀😀😀😀😀😀"}`},
			{Method: "PUT", Path: adminUser(victim.UserID), Body: `{"is_active":"no"}`},
			{Method: "PUT", Path: adminUser(victim.UserID), Body: ``},
			{Method: "PUT", Path: adminUser("%F0%9F%98%80"), Body: `{}`},
			{Method: "GET", Path: adminUser("%00")},
			{Method: "DELETE", Path: adminUser(long)},
			{Method: "POST", Path: adminUser("123") + "/deactivate"},
			{Method: "POST", Path: adminUsers + "/bulk-action", Body: `{"action":"delete","user_ids":["` + long + `"]}`},
			{Method: "POST", Path: adminUsers + "/bulk-action", Body: `{"action":null,"user_ids":[]}`},
			{Method: "POST", Path: adminUsers + "/bulk-action", Body: `{"action":"delete","user_ids":[null]}`},
			{Method: "GET", Path: adminUsers + "?search=%27%3B%20DROP%20TABLE%20users%3B--&limit=abc"},
			{Method: "GET", Path: adminUsers + "?page=99999999999999999999"},
			{Method: "GET", Path: adminSessions + "?page=abc"},
			{Method: "DELETE", Path: adminSessions + "/" + long},
			{Method: "GET", Path: adminStats + "?unexpected=1&page=-1", Token: "garbage"},
		}
		for _, req := range reqs {
			t.Run(req.Method+" "+req.Path[:min(len(req.Path), 60)], func(t *testing.T) {
				if req.Token == "" {
					req.Token = admin.Access
				}
				expectUnchanged(t, e, func() {
					r := e.Do(req)
					if r.Status < 400 || r.Status > 499 {
						t.Fatalf("status %d, want 4xx; body %.300s", r.Status, r.Body)
					}
					if _, msg, _ := r.ErrorCode(t); msg == "" {
						t.Fatalf("empty message: %s", r.Body)
					}
				})
			})
		}
		// A search full of SQL and LIKE syntax is only text.
		if p := e.Get(adminUsers+"?search=%27%3B%20DROP%20TABLE%20users%3B--", admin.Access).Expect(t, http.StatusOK, "").JSON(t); p["pagination"].(map[string]any)["total"] != float64(0) {
			t.Fatalf("body %v", p)
		}
		expectHealthy(t, e)
		if strings.Contains(e.Logs.String(), "panic serving request") {
			t.Error("a request panicked")
		}
	})
}

func deref(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}

// Bulk deactivation and deletion end the affected users' provider tokens,
// as the single-user actions do: after deactivate + activate the old
// refresh and access tokens stay dead, and every refresh token row is
// marked revoked.
func TestAdminBulkRevokesProviderTokens(t *testing.T) {
	oaEach(t, func(t *testing.T, e *apitest.Env) {
		s := oaStart(t, e)
		bulk := func(action, id string) {
			t.Helper()
			var b bulkResult
			e.Post(adminUsers+"/bulk-action", s.admin.Access, map[string]any{"action": action, "user_ids": []string{id}}).
				Expect(t, http.StatusOK, "").Decode(t, &b)
			if b.AffectedCount != 1 {
				t.Fatalf("bulk %s: %+v", action, b)
			}
		}
		live := func(userID string) int {
			return e.Count(`SELECT COUNT(*) FROM oauth_provider_refresh_tokens WHERE user_id = $1 AND revoked_at IS NULL`, userID)
		}
		for _, action := range []string{"deactivate", "delete"} {
			t.Run(action, func(t *testing.T) {
				u := e.User(action + "@example.com")
				tok := oaFlow(t, e, s.conf, u.Access, url.Values{"scope": {"openid"}})
				if live(u.UserID) != 1 {
					t.Fatal("the flow stored no live refresh token")
				}
				bulk(action, u.UserID)
				if n := live(u.UserID); n != 0 {
					t.Fatalf("%d provider refresh tokens still unrevoked after bulk %s", n, action)
				}
				if action == "deactivate" {
					bulk("activate", u.UserID)
				}
				oaErr(t, oaRefresh(e, s.conf, tok.RefreshToken, nil), http.StatusBadRequest, "invalid_grant", "")
				if oaAccessWorks(t, e, tok.AccessToken) {
					t.Fatalf("after bulk %s the provider access token still works at userinfo", action)
				}
			})
		}
	})
}
