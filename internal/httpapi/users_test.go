package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/apitest"
)

func fieldErrors(t *testing.T, r apitest.Response) map[string]string {
	t.Helper()
	var env struct {
		Errors []struct {
			Message string
			Field   *string
		}
	}
	r.Decode(t, &env)
	out := map[string]string{}
	for _, it := range env.Errors {
		if it.Field != nil {
			out[*it.Field] = it.Message
		}
	}
	return out
}

func TestUpdateMe(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		tok := e.User("me@example.com")
		t.Run("partial update, normalisation and explicit nulls", func(t *testing.T) {
			r := e.Patch(pathMe, tok.Access, map[string]any{"first_name": "Maria", "phone_number": "+39 (333) 123-4567",
				"locale": "en-US", "preferences": map[string]any{"theme": "dark"}}).Expect(t, http.StatusOK, "")
			u := r.JSON(t)
			if u["first_name"] != "Maria" || u["last_name"] != "User" || u["phone_number"] != "+393331234567" || u["locale"] != "en-us" {
				t.Fatalf("user %v", u)
			}
			if p, _ := u["preferences"].(map[string]any); p["theme"] != "dark" {
				t.Fatalf("preferences not returned (fix 38): %v", u["preferences"])
			}
			u = e.Patch(pathMe, tok.Access, map[string]any{"last_name": nil, "phone_number": nil}).Expect(t, http.StatusOK, "").JSON(t)
			if u["last_name"] != nil || u["phone_number"] != nil || u["first_name"] != "Maria" {
				t.Fatalf("nulls not applied or other fields changed: %v", u)
			}
			again := e.Get(pathMe, tok.Access).Expect(t, http.StatusOK, "").JSON(t)
			if again["last_name"] != nil || again["locale"] != "en-us" {
				t.Fatalf("not persisted: %v", again)
			}
		})
		refusals := []struct {
			name, field, msg string
			body             map[string]any
		}{
			{"password (fix 4)", "password", "/api/v1/users/me/password", map[string]any{"password": "N3w!Password-1"}},
			{"is_superuser", "is_superuser", "Cannot modify superuser status through user update", map[string]any{"is_superuser": true}},
			{"is_superuser false too", "is_superuser", "Cannot modify superuser status", map[string]any{"is_superuser": false}},
			{"is_active by a regular user (fix 4)", "is_active", "Only superusers", map[string]any{"is_active": false}},
			{"null first name", "first_name", "First name cannot be null", map[string]any{"first_name": nil}},
			{"long first name", "first_name", "at most 100", map[string]any{"first_name": strings.Repeat("é", 101)}},
			{"unsupported locale", "locale", "Unsupported locale 'fr'", map[string]any{"locale": "fr"}},
			{"malformed locale", "locale", "Invalid locale format", map[string]any{"locale": "english"}},
			{"empty phone", "phone_number", "Phone number cannot be empty", map[string]any{"phone_number": "  "}},
			{"preferences not an object", "preferences", "dictionary", map[string]any{"preferences": []int{1}}},
		}
		for _, tc := range refusals {
			t.Run(tc.name, func(t *testing.T) {
				before := e.Get(pathMe, tok.Access).Body
				r := e.Patch(pathMe, tok.Access, tc.body).Expect(t, http.StatusUnprocessableEntity, "VAL_001")
				if msg := fieldErrors(t, r)[tc.field]; !strings.Contains(msg, tc.msg) {
					t.Fatalf("field %s: %q, want it to contain %q (body %s)", tc.field, msg, tc.msg, r.Body)
				}
				if after := e.Get(pathMe, tok.Access).Body; string(after) != string(before) {
					t.Fatalf("profile changed by a refused update:\n%s\n%s", before, after)
				}
			})
		}
		t.Run("preferences that PostgreSQL's jsonb would refuse are normalised, not a 500", func(t *testing.T) {
			u := e.Patch(pathMe, tok.Access, map[string]any{"preferences": json.RawMessage(`{"a":"\ud800","n":12345678901234567890}`)}).
				Expect(t, http.StatusOK, "").JSON(t)
			p, _ := u["preferences"].(map[string]any)
			if p["a"] != "\ufffd" {
				t.Fatalf("lone surrogate stored as %q, want U+FFFD", p["a"])
			}
			if !strings.Contains(string(e.Get(pathMe, tok.Access).Body), `12345678901234567890`) {
				t.Fatal("a large number lost its digits")
			}
		})
		t.Run("the refused password did not change the password", func(t *testing.T) {
			e.Login("me@example.com", apitest.Password)
		})
	})
}

func TestChangePassword(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		const path = "/api/v1/users/me/password"
		current := e.User("pw@example.com")
		other := e.Login("pw@example.com", apitest.Password)
		t.Run("wrong current password is 403 AUTH_001 (fix 35)", func(t *testing.T) {
			r := e.Patch(path, current.Access, map[string]any{"current_password": "Wr0ng!Password", "new_password": "N3w!Password-1"}).
				Expect(t, http.StatusForbidden, "AUTH_001")
			if _, msg, _ := r.ErrorCode(t); msg != "Current password is incorrect" {
				t.Fatalf("message %q", msg)
			}
		})
		t.Run("weak new password is 422 on new_password", func(t *testing.T) {
			r := e.Patch(path, current.Access, map[string]any{"current_password": apitest.Password, "new_password": "weak"}).
				Expect(t, http.StatusUnprocessableEntity, "VAL_001")
			if _, ok := fieldErrors(t, r)["new_password"]; !ok {
				t.Fatalf("body %s", r.Body)
			}
		})
		t.Run("success keeps the current session and revokes the others (fix 5)", func(t *testing.T) {
			r := e.Patch(path, current.Access, map[string]any{"current_password": apitest.Password, "new_password": "N3w!Password-1"}).
				Expect(t, http.StatusOK, "")
			if r.JSON(t)["message"] != "Password changed successfully" {
				t.Fatalf("body %s", r.Body)
			}
			e.Get(pathMe, current.Access).Expect(t, http.StatusOK, "")
			e.Post(pathRefresh, "", map[string]any{"refresh_token": current.Refresh}).Expect(t, http.StatusOK, "")
			e.Get(pathMe, other.Access).Expect(t, http.StatusUnauthorized, "AUTH_006")
			e.Post(pathRefresh, "", map[string]any{"refresh_token": other.Refresh}).Expect(t, http.StatusUnauthorized, "AUTH_006")
			e.Post(pathLogin, "", map[string]any{"email": "pw@example.com", "password": apitest.Password}).Expect(t, http.StatusUnauthorized, "AUTH_001")
			e.Login("pw@example.com", "N3w!Password-1")
		})
		t.Run("account without a password gets a clear 400 (fix 12)", func(t *testing.T) {
			tk := e.User("nopw@example.com")
			e.Exec(`UPDATE users SET password_hash = NULL WHERE id = $1`, tk.UserID)
			r := e.Patch(path, tk.Access, map[string]any{"current_password": "anything", "new_password": "N3w!Password-1"}).
				Expect(t, http.StatusBadRequest, "VAL_006")
			if _, msg, _ := r.ErrorCode(t); !strings.Contains(msg, "no password set") || !strings.Contains(msg, "password reset") {
				t.Fatalf("message %q", msg)
			}
		})
	})
}

func TestUserByID(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		admin := e.Superuser("admin@example.com")
		alice := e.User("alice@example.com")
		bob := e.User("bob@example.com")
		path := func(id string) string { return "/api/v1/users/" + id }

		e.Get(path(alice.UserID), alice.Access).Expect(t, http.StatusOK, "")
		r := e.Get(path(bob.UserID), alice.Access).Expect(t, http.StatusForbidden, "AUTH_004")
		if _, msg, _ := r.ErrorCode(t); msg != "Not enough permissions to view this user" {
			t.Fatalf("message %q", msg)
		}
		// The permission check comes before the existence check.
		e.Get(path("00000000-0000-4000-8000-000000000000"), alice.Access).Expect(t, http.StatusForbidden, "AUTH_004")
		r = e.Get(path("00000000-0000-4000-8000-000000000000"), admin.Access).Expect(t, http.StatusNotFound, "SYS_002")
		if _, msg, _ := r.ErrorCode(t); msg != "User 00000000-0000-4000-8000-000000000000 not found" {
			t.Fatalf("message %q", msg)
		}
		if got := e.Get(path(strings.ToUpper(bob.UserID)), admin.Access).Expect(t, http.StatusOK, "").JSON(t)["id"]; got != bob.UserID {
			t.Fatalf("upper-case id: got %v", got)
		}
		r = e.Get(path("not-a-uuid"), admin.Access).Expect(t, http.StatusUnprocessableEntity, "VAL_001")
		if _, _, field := r.ErrorCode(t); field != "user_id" {
			t.Fatalf("field %v", field)
		}

		t.Run("patch another user: regular 403, superuser may deactivate, revoking sessions (fix 5)", func(t *testing.T) {
			r := e.Patch(path(bob.UserID), alice.Access, map[string]any{"first_name": "Hacked"}).Expect(t, http.StatusForbidden, "AUTH_004")
			if _, msg, _ := r.ErrorCode(t); msg != "Not enough permissions to update this user" {
				t.Fatalf("message %q", msg)
			}
			// Privilege escalation through PATCH is refused for everyone.
			e.Patch(path(alice.UserID), alice.Access, map[string]any{"is_superuser": true}).Expect(t, http.StatusUnprocessableEntity, "VAL_001")
			e.Patch(path(alice.UserID), admin.Access, map[string]any{"is_superuser": true}).Expect(t, http.StatusUnprocessableEntity, "VAL_001")
			u := e.Patch(path(bob.UserID), admin.Access, map[string]any{"is_active": false}).Expect(t, http.StatusOK, "").JSON(t)
			if u["is_active"] != false {
				t.Fatalf("user %v", u)
			}
			if n := e.Count(`SELECT COUNT(*) FROM user_sessions WHERE user_id = $1 AND is_active = TRUE`, bob.UserID); n != 0 {
				t.Fatalf("%d sessions still active after deactivation", n)
			}
			e.Get(pathMe, bob.Access).Expect(t, http.StatusForbidden, "AUTH_004")
			e.Post(pathRefresh, "", map[string]any{"refresh_token": bob.Refresh}).Expect(t, http.StatusUnauthorized, "AUTH_006")
			e.Post(pathLogin, "", map[string]any{"email": "bob@example.com", "password": apitest.Password}).Expect(t, http.StatusUnauthorized, "AUTH_001")
			e.Patch(path(bob.UserID), admin.Access, map[string]any{"is_active": true}).Expect(t, http.StatusOK, "")
			e.Login("bob@example.com", apitest.Password)
		})
		t.Run("superusers cannot deactivate themselves", func(t *testing.T) {
			e.Patch(path(admin.UserID), admin.Access, map[string]any{"is_active": false}).Expect(t, http.StatusForbidden, "AUTH_007")
			e.Patch(pathMe, admin.Access, map[string]any{"is_active": false}).Expect(t, http.StatusForbidden, "AUTH_007")
		})
		t.Run("delete", func(t *testing.T) {
			carol := e.User("carol@example.com")
			e.Delete(path(carol.UserID), alice.Access).Expect(t, http.StatusForbidden, "AUTH_004")
			r := e.Delete(path(admin.UserID), admin.Access).Expect(t, http.StatusForbidden, "AUTH_004")
			if _, msg, _ := r.ErrorCode(t); msg != "Cannot delete your own account" {
				t.Fatalf("message %q", msg)
			}
			e.Delete("/api/v1/users/me", admin.Access).Expect(t, http.StatusUnprocessableEntity, "VAL_001")
			r = e.Delete(path(carol.UserID), admin.Access).Expect(t, http.StatusOK, "")
			if r.JSON(t)["message"] != fmt.Sprintf("User %s deleted successfully", carol.UserID) {
				t.Fatalf("body %s", r.Body)
			}
			// Deleted: no login, no tokens, not found, email free again (fix 3).
			e.Get(pathMe, carol.Access).Expect(t, http.StatusUnauthorized, "AUTH_006")
			e.Post(pathRefresh, "", map[string]any{"refresh_token": carol.Refresh}).Expect(t, http.StatusUnauthorized, "AUTH_006")
			e.Post(pathLogin, "", map[string]any{"email": "carol@example.com", "password": apitest.Password}).Expect(t, http.StatusUnauthorized, "AUTH_001")
			e.Get(path(carol.UserID), admin.Access).Expect(t, http.StatusNotFound, "SYS_002")
			e.Delete(path(carol.UserID), admin.Access).Expect(t, http.StatusNotFound, "SYS_002")
			if n := e.Count(`SELECT COUNT(*) FROM users WHERE id = $1 AND is_active = FALSE AND deleted_at IS NOT NULL`, carol.UserID); n != 1 {
				t.Fatal("deleted user is not soft-deleted and inactive")
			}
			e.Register("carol@example.com")
		})
	})
}

func TestListUsers(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		admin := e.Superuser("root@example.com")
		regular := e.User("plain@example.com")
		names := []string{"delta", "alpha", "charlie", "bravo", "echo"}
		for _, n := range names {
			e.Register(n + "@example.com")
		}
		e.Exec(`UPDATE users SET is_active = FALSE WHERE email = 'echo@example.com'`)
		e.Register("deleted@example.com")
		e.Exec(`UPDATE users SET deleted_at = updated_at WHERE email = 'deleted@example.com'`)

		r := e.Get("/api/v1/users", regular.Access).Expect(t, http.StatusForbidden, "AUTH_004")
		if _, msg, _ := r.ErrorCode(t); msg != "Not enough permissions" {
			t.Fatalf("message %q", msg)
		}
		e.Get("/api/v1/users", "").Expect(t, http.StatusUnauthorized, "AUTH_006")

		type page struct {
			Data []struct {
				Email string `json:"email"`
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
		get := func(query string) page {
			t.Helper()
			var p page
			e.Get("/api/v1/users"+query, admin.Access).Expect(t, http.StatusOK, "").Decode(t, &p)
			return p
		}
		emails := func(p page) []string {
			var out []string
			for _, d := range p.Data {
				out = append(out, d.Email)
			}
			return out
		}
		all := get("")
		if all.Pagination.Total != 7 || len(all.Data) != 7 {
			t.Fatalf("total %d, %d rows; want 7 live users", all.Pagination.Total, len(all.Data))
		}
		if slices.Contains(emails(all), "deleted@example.com") {
			t.Fatal("soft-deleted user listed")
		}
		// Default order: newest first (fix 18).
		if got := emails(all)[0]; got != "deleted@example.com" && got != "echo@example.com" {
			t.Fatalf("default order starts with %s, want the newest (echo)", got)
		}
		p := get("?page=2&limit=3")
		if p.Pagination.Page != 2 || p.Pagination.PageSize != 3 || p.Pagination.TotalPages != 3 || !p.Pagination.HasNext || !p.Pagination.HasPrev {
			t.Fatalf("pagination %+v", p.Pagination)
		}
		last := get("?page=3&limit=3")
		if last.Pagination.PageSize != 1 || last.Pagination.HasNext {
			t.Fatalf("last page %+v", last.Pagination)
		}
		if got := get("?page=50").Data; len(got) != 0 {
			t.Fatalf("page past the end returned %d rows", len(got))
		}
		sorted := emails(get("?sort_by=email&sort_order=asc&limit=100"))
		if !sort.StringsAreSorted(sorted) {
			t.Fatalf("not sorted by email: %v", sorted)
		}
		desc := emails(get("?sort_by=email&sort_order=desc"))
		if !sort.IsSorted(sort.Reverse(sort.StringSlice(desc))) {
			t.Fatalf("not sorted desc: %v", desc)
		}
		if got := get("?is_active=no").Data; len(got) != 1 || got[0].Email != "echo@example.com" {
			t.Fatalf("is_active=no: %v", got)
		}
		if got := get("?is_superuser=true").Data; len(got) != 1 || got[0].Email != "root@example.com" {
			t.Fatalf("is_superuser=true: %v", got)
		}
		for query, field := range map[string]string{
			"?sort_by=password_hash": "sort_by", // fix 18: whitelist
			"?sort_by=organizations": "sort_by",
			"?sort_order=up":         "sort_order",
			"?page=0":                "page",
			"?limit=101":             "limit",
			"?limit=0":               "limit",
			"?is_active=maybe":       "is_active",
		} {
			r := e.Get("/api/v1/users"+query, admin.Access).Expect(t, http.StatusUnprocessableEntity, "VAL_001")
			if _, ok := fieldErrors(t, r)[field]; !ok {
				t.Errorf("%s: no error on %s: %s", query, field, r.Body)
			}
		}
	})
}
