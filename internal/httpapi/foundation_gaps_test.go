package httpapi_test

// Foundation behaviours that had no test of their own: the rate limit of
// every limited account endpoint with the reference's numbers (§5.2-5.4,
// with and without the IS_TEST multiplier), profile updates through
// PATCH /users/{id} (fix 4), password-reset confirmation for inactive and
// deleted accounts (§4.12, fix 3), and refresh after the session row is gone
// (§7.7).

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/gatehouse-dev/gatehouse/internal/apitest"
	"github.com/gatehouse-dev/gatehouse/internal/token"
)

const (
	pathResetRequest = "/api/v1/auth/password-reset/request"
	pathResetConfirm = "/api/v1/auth/password-reset/confirm"
)

// limitedEndpoint is one rate-limited endpoint of reference §5.2-5.4 and a
// request that passes its gate and body validation, so that it is counted.
type limitedEndpoint struct {
	name      string
	perMinute int  // the reference's number
	scaled    bool // ×100 when IS_TEST=True (reference: register and JSON login only)
	// do makes one counted request; tok is a signed-in user's access token
	// (the password of that user is apitest.Password until "password change"
	// runs, which the table puts after every other row needing a login).
	do func(e *apitest.Env, tok string, i int) apitest.Response
}

func formLogin(e *apitest.Env, email string) apitest.Response {
	e.T.Helper()
	return e.Do(apitest.Request{Method: "POST", Path: "/api/v1/auth/login/oauth",
		Body:    "username=" + url.QueryEscape(email) + "&password=" + url.QueryEscape(apitest.Password),
		Headers: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}})
}

// limitedEndpoints lists every rate-limited endpoint of the foundation, in
// an order where each request leaves the signed-in user usable by the next
// (logout-all, which revokes the caller's session, comes last).
var limitedEndpoints = []limitedEndpoint{
	{"register", 5, true, func(e *apitest.Env, _ string, i int) apitest.Response {
		return e.Post(pathRegister, "", regBody(fmt.Sprintf("new%d-%s@example.com", i, uuid.NewString()[:8]), apitest.Password))
	}},
	{"login", 10, true, func(e *apitest.Env, _ string, _ int) apitest.Response {
		return login(e, "limits@example.com")
	}},
	{"form login", 10, false, func(e *apitest.Env, _ string, _ int) apitest.Response {
		return formLogin(e, "limits@example.com")
	}},
	{"refresh", 30, false, func(e *apitest.Env, _ string, _ int) apitest.Response {
		return e.Post(pathRefresh, "", map[string]any{"refresh_token": "not-a-refresh-token"})
	}},
	{"logout", 10, false, func(e *apitest.Env, tok string, _ int) apitest.Response {
		return e.Post(pathLogout, tok, map[string]any{"refresh_token": "not-a-refresh-token"})
	}},
	{"password-reset request", 3, false, func(e *apitest.Env, _ string, _ int) apitest.Response {
		return e.Post(pathResetRequest, "", map[string]any{"email": "nobody@example.com"})
	}},
	{"password-reset confirm", 5, false, func(e *apitest.Env, _ string, _ int) apitest.Response {
		return e.Post(pathResetConfirm, "", map[string]any{"token": "not-a-reset-token", "new_password": "N3w!Password-1"})
	}},
	{"GET sessions/me", 30, false, func(e *apitest.Env, tok string, _ int) apitest.Response {
		return e.Get("/api/v1/sessions/me", tok)
	}},
	{"DELETE sessions/{id}", 10, false, func(e *apitest.Env, tok string, _ int) apitest.Response {
		return e.Delete("/api/v1/sessions/"+uuid.NewString(), tok)
	}},
	{"DELETE sessions/me/expired", 5, false, func(e *apitest.Env, tok string, _ int) apitest.Response {
		return e.Delete("/api/v1/sessions/me/expired", tok)
	}},
	{"password change", 5, false, func(e *apitest.Env, tok string, _ int) apitest.Response {
		// Wrong current password: 403, counted all the same, nothing changes.
		return e.Patch("/api/v1/users/me/password", tok, map[string]any{"current_password": "Wr0ng!Password", "new_password": "N3w!Password-1"})
	}},
	{"logout-all", 5, false, func(e *apitest.Env, tok string, _ int) apitest.Response {
		return e.Post("/api/v1/auth/logout-all", tok, nil)
	}},
}

// TestFoundationRateLimitHeaders checks X-RateLimit-Limit on every limited
// account endpoint against the reference's numbers, unscaled and with
// IS_TEST=True, where only register and the JSON login are multiplied.
func TestFoundationRateLimitHeaders(t *testing.T) {
	for _, isTest := range []bool{false, true} {
		t.Run(fmt.Sprintf("IS_TEST=%v", isTest), func(t *testing.T) {
			opts := []apitest.Option{apitest.WithEnv("RATE_LIMIT_ENABLED", "true")}
			if isTest {
				opts = append(opts, apitest.WithEnv("IS_TEST", "True"))
			}
			apitest.Each(t, func(t *testing.T, e *apitest.Env) {
				tok := e.User("limits@example.com")
				for _, ep := range limitedEndpoints {
					want := ep.perMinute
					if isTest && ep.scaled {
						want *= 100
					}
					r := ep.do(e, tok.Access, 0)
					if r.Status == http.StatusTooManyRequests || r.Status >= 500 {
						t.Errorf("%s: status %d on its first request: %s", ep.name, r.Status, r.Body)
						continue
					}
					if got := r.Header.Get("X-RateLimit-Limit"); got != strconv.Itoa(want) {
						t.Errorf("%s: X-RateLimit-Limit = %q, want %d (status %d)", ep.name, got, want, r.Status)
					}
					rem, err := strconv.Atoi(r.Header.Get("X-RateLimit-Remaining"))
					if err != nil || rem < 0 || rem >= want {
						t.Errorf("%s: X-RateLimit-Remaining = %q, want a count below %d", ep.name, r.Header.Get("X-RateLimit-Remaining"), want)
					}
				}
			}, opts...)
		})
	}
}

// TestFoundationRateLimitBursts sends limit+1 counted requests within one
// window to endpoints the other rate-limit tests do not exhaust: the last
// one is refused with the envelope and Retry-After, and changes nothing.
// With IS_TEST=True the multiplied register endpoint is not refused after
// 5, while an unmultiplied one still is.
func TestFoundationRateLimitBursts(t *testing.T) {
	byName := map[string]limitedEndpoint{}
	for _, ep := range limitedEndpoints {
		byName[ep.name] = ep
	}
	burst := func(t *testing.T, e *apitest.Env, ep limitedEndpoint, tok string, n int) {
		t.Helper()
		for i := range n {
			r := ep.do(e, tok, i+1)
			if r.Status == http.StatusTooManyRequests || r.Status >= 500 {
				t.Fatalf("%s: request %d of %d: %d %s", ep.name, i+1, n, r.Status, r.Body)
			}
		}
	}
	t.Run("unscaled", func(t *testing.T) {
		apitest.Each(t, func(t *testing.T, e *apitest.Env) {
			// Created without the register endpoint, so that every counter
			// of the bursts starts at zero.
			tok := e.Superuser("limits@example.com")
			for _, name := range []string{"register", "password-reset confirm", "DELETE sessions/me/expired", "DELETE sessions/{id}"} {
				ep := byName[name]
				apitest.FreshWindow(t, burstBudget, time.Minute)
				burst(t, e, ep, tok.Access, ep.perMinute)
				before := e.Snapshot()
				r := ep.do(e, tok.Access, ep.perMinute+1)
				expectRateLimited(t, r, ep.perMinute)
				if got := r.Header.Get("X-RateLimit-Limit"); got != strconv.Itoa(ep.perMinute) {
					t.Errorf("%s: 429 with X-RateLimit-Limit = %q, want %d", name, got, ep.perMinute)
				}
				if after := e.Snapshot(); after != before {
					t.Errorf("%s: a refused request changed the database:\nbefore %s\nafter  %s", name, before, after)
				}
			}
			// The user of the refused registration does not exist.
			if n := e.Count(`SELECT COUNT(*) FROM users WHERE email LIKE 'new6-%'`); n != 0 {
				t.Errorf("the rate-limited registration created %d users", n)
			}
		}, apitest.WithEnv("RATE_LIMIT_ENABLED", "true"))
	})
	t.Run("IS_TEST=True", func(t *testing.T) {
		apitest.Each(t, func(t *testing.T, e *apitest.Env) {
			reg, confirm := byName["register"], byName["password-reset confirm"]
			apitest.FreshWindow(t, burstBudget, time.Minute)
			// Register is multiplied: its 6th and 7th requests succeed.
			for i := range 7 {
				reg.do(e, "", i+1).Expect(t, http.StatusCreated, "")
			}
			// Reset confirm is not: 5, then 429.
			burst(t, e, confirm, "", 5)
			expectRateLimited(t, confirm.do(e, "", 6), 5)
		}, apitest.WithEnv("RATE_LIMIT_ENABLED", "true"), apitest.WithEnv("IS_TEST", "True"))
	})
}

// TestFoundationPatchUserByIDRefusals: PATCH /users/{id} refuses password
// for everyone and is_active for regular users, also on their own id
// (fix 4), and a refused request changes nothing, including the fields it
// would otherwise have set.
func TestFoundationPatchUserByIDRefusals(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		admin := e.Superuser("admin@example.com")
		alice := e.User("alice@example.com")
		path := "/api/v1/users/" + alice.UserID
		hashOf := func() string {
			t.Helper()
			var h string
			if err := e.App.Store.DB().QueryRow(`SELECT password_hash FROM users WHERE id = $1`, alice.UserID).Scan(&h); err != nil {
				t.Fatal(err)
			}
			return h
		}
		cases := []struct {
			name, token, field, msg string
			body                    map[string]any
		}{
			{"own id, password", alice.Access, "password", "/api/v1/users/me/password",
				map[string]any{"password": "N3w!Password-1"}},
			{"own id, password with another field", alice.Access, "password", "/api/v1/users/me/password",
				map[string]any{"first_name": "Mallory", "password": "N3w!Password-1"}},
			{"own id, is_active false", alice.Access, "is_active", "Only superusers",
				map[string]any{"is_active": false}},
			{"own id, is_active true", alice.Access, "is_active", "Only superusers",
				map[string]any{"is_active": true, "first_name": "Mallory"}},
			{"superuser, another user's password", admin.Access, "password", "/api/v1/users/me/password",
				map[string]any{"password": "N3w!Password-1"}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				before, hash, snap := e.Get(pathMe, alice.Access).Expect(t, http.StatusOK, "").Body, hashOf(), e.Snapshot()
				r := e.Patch(path, tc.token, tc.body)
				expectEnvelope(t, r, http.StatusUnprocessableEntity, "VAL_001")
				if msg := fieldErrors(t, r)[tc.field]; !strings.Contains(msg, tc.msg) {
					t.Fatalf("field %s: %q, want it to contain %q (body %s)", tc.field, msg, tc.msg, r.Body)
				}
				if after := e.Get(pathMe, alice.Access).Expect(t, http.StatusOK, "").Body; string(after) != string(before) {
					t.Errorf("profile changed by a refused update:\n%s\n%s", before, after)
				}
				if hashOf() != hash {
					t.Error("password hash changed by a refused update")
				}
				if after := e.Snapshot(); after != snap {
					t.Errorf("database changed:\nbefore %s\nafter  %s", snap, after)
				}
			})
		}
		// The password still works, the new one does not, and the account is active.
		e.Login("alice@example.com", apitest.Password)
		e.Post(pathLogin, "", map[string]any{"email": "alice@example.com", "password": "N3w!Password-1"}).Expect(t, http.StatusUnauthorized, "AUTH_001")
		if n := e.Count(`SELECT COUNT(*) FROM users WHERE id = $1 AND is_active = TRUE AND first_name = 'Test'`, alice.UserID); n != 1 {
			t.Fatal("alice is no longer active with her old first name")
		}
	})
}

// resetTokenFor requests a password reset for email and returns the token
// of the email it causes.
func resetTokenFor(t *testing.T, e *apitest.Env, email string) string {
	t.Helper()
	before := len(e.Mail.Messages())
	e.Post(pathResetRequest, "", map[string]any{"email": email}).Expect(t, http.StatusOK, "")
	msgs := e.Mail.Wait(t, before+1, 10*time.Second)
	m := msgs[len(msgs)-1]
	if len(m.To) != 1 || m.To[0] != email {
		t.Fatalf("reset email went to %v, want %s", m.To, email)
	}
	return tokenFromEmail(t, m.Text)
}

// TestFoundationResetConfirmInactiveAndDeleted: a reset token issued while
// the account was active cannot be used once the account is deactivated
// (400 "User account is inactive", reference §4.12) or deleted (400, token
// invalid: fix 3), and the refused confirmation changes nothing.
func TestFoundationResetConfirmInactiveAndDeleted(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		admin := e.Superuser("admin@example.com")
		const newPassword = "N3w!Password-1"
		confirm := func(tok string) apitest.Response {
			return e.Post(pathResetConfirm, "", map[string]any{"token": tok, "new_password": newPassword})
		}
		hashOf := func(id string) string {
			t.Helper()
			var h string
			if err := e.App.Store.DB().QueryRow(`SELECT password_hash FROM users WHERE id = $1`, id).Scan(&h); err != nil {
				t.Fatal(err)
			}
			return h
		}
		unused := func(tok string) int {
			return e.Count(`SELECT COUNT(*) FROM password_reset_tokens WHERE token_hash = $1 AND used_at IS NULL`, token.HashSecret(tok))
		}
		refused := func(t *testing.T, userID, tok, wantMsg string) {
			t.Helper()
			hash, snap := hashOf(userID), e.Snapshot()
			tokens := unused(tok)
			msg, field := expectEnvelope(t, confirm(tok), http.StatusBadRequest, "VAL_006")
			if msg != wantMsg || field != nil {
				t.Errorf("message %q field %v, want %q and no field", msg, field, wantMsg)
			}
			if hashOf(userID) != hash {
				t.Error("the refused reset changed the password")
			}
			if unused(tok) != tokens {
				t.Error("the refused reset consumed the token")
			}
			if after := e.Snapshot(); after != snap {
				t.Errorf("database changed:\nbefore %s\nafter  %s", snap, after)
			}
		}

		t.Run("inactive", func(t *testing.T) {
			id := e.Register("inactive@example.com")
			tok := resetTokenFor(t, e, "inactive@example.com")
			e.Patch("/api/v1/users/"+id, admin.Access, map[string]any{"is_active": false}).Expect(t, http.StatusOK, "")
			refused(t, id, tok, "User account is inactive")
			if unused(tok) != 1 {
				t.Fatal("deactivation dropped the pending token; the inactive case was not reached")
			}
			// Reactivated, the account still has its old password.
			e.Patch("/api/v1/users/"+id, admin.Access, map[string]any{"is_active": true}).Expect(t, http.StatusOK, "")
			e.Login("inactive@example.com", apitest.Password)
		})
		t.Run("deleted through the API", func(t *testing.T) {
			id := e.Register("deleted@example.com")
			tok := resetTokenFor(t, e, "deleted@example.com")
			e.Delete("/api/v1/users/"+id, admin.Access).Expect(t, http.StatusOK, "")
			refused(t, id, tok, "Invalid or expired password reset token")
			if n := e.Count(`SELECT COUNT(*) FROM users WHERE id = $1 AND deleted_at IS NOT NULL AND is_active = FALSE`, id); n != 1 {
				t.Fatal("the deleted user is no longer deleted and inactive")
			}
		})
		t.Run("deleted but still flagged active, token kept", func(t *testing.T) {
			// A row as the reference's single delete leaves it (deleted_at
			// set, is_active true), with its reset token still stored: the
			// confirmation must not resurrect the account's password.
			id := e.Register("ghost@example.com")
			tok := resetTokenFor(t, e, "ghost@example.com")
			e.Exec(`UPDATE users SET deleted_at = updated_at WHERE id = $1`, id)
			refused(t, id, tok, "Invalid or expired password reset token")
			if unused(tok) != 1 {
				t.Fatal("the token row is gone; the deleted-user check was not reached")
			}
		})
	})
}

// TestFoundationRefreshAfterSessionRowDeleted: reference §7.7, "refresh
// rejected after the session row is deleted" (as DELETE /sessions/me/expired
// or the scheduled cleanup do); the access token of that session stops
// working too, and no session is created.
func TestFoundationRefreshAfterSessionRowDeleted(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		tok := e.User("gone@example.com")
		sid := sessionIDOf(t, tok.Access)
		e.Exec(`DELETE FROM user_sessions WHERE id = $1`, sid)
		r := e.Post(pathRefresh, "", map[string]any{"refresh_token": tok.Refresh})
		msg, _ := expectEnvelope(t, r, http.StatusUnauthorized, "AUTH_006")
		if msg != "Session has been revoked. Please log in again." {
			t.Errorf("message %q", msg)
		}
		if r.Header.Get("WWW-Authenticate") == "" {
			t.Error("401 without WWW-Authenticate")
		}
		if n := e.Count(`SELECT COUNT(*) FROM user_sessions WHERE user_id = $1`, tok.UserID); n != 0 {
			t.Fatalf("the refused refresh left %d sessions", n)
		}
		e.Get(pathMe, tok.Access).Expect(t, http.StatusUnauthorized, "AUTH_006")
		// A new login opens a new session whose refresh works.
		fresh := e.Login("gone@example.com", apitest.Password)
		e.Post(pathRefresh, "", map[string]any{"refresh_token": fresh.Refresh}).Expect(t, http.StatusOK, "")
	})
}
