package httpapi_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/apitest"
)

type sessionsBody struct {
	Sessions []struct {
		ID         string  `json:"id"`
		DeviceName *string `json:"device_name"`
		DeviceID   *string `json:"device_id"`
		IPAddress  *string `json:"ip_address"`
		IsCurrent  bool    `json:"is_current"`
		Kind       string  `json:"kind"`
	} `json:"sessions"`
	Total int `json:"total"`
}

func listSessions(t *testing.T, e *apitest.Env, access string) sessionsBody {
	t.Helper()
	var b sessionsBody
	e.Get("/api/v1/sessions/me", access).Expect(t, http.StatusOK, "").Decode(t, &b)
	return b
}

const chromeMac = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"

func loginWith(t *testing.T, e *apitest.Env, email string, headers map[string]string) apitest.Tokens {
	t.Helper()
	r := e.Do(apitest.Request{Method: "POST", Path: pathLogin, Body: map[string]any{"email": email, "password": apitest.Password}, Headers: headers}).
		Expect(t, http.StatusOK, "")
	m := r.JSON(t)
	return apitest.Tokens{Access: m["access_token"].(string), Refresh: m["refresh_token"].(string)}
}

func TestSessions(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		e.Register("dev@example.com")
		older := loginWith(t, e, "dev@example.com", map[string]string{"User-Agent": chromeMac, "X-Device-Id": "laptop-1"})
		newer := loginWith(t, e, "dev@example.com", map[string]string{"User-Agent": "curl/8.5.0"})

		t.Run("the calling session is listed first and is the only current one (fix 22)", func(t *testing.T) {
			b := listSessions(t, e, older.Access)
			if b.Total != 2 || len(b.Sessions) != 2 {
				t.Fatalf("sessions %+v", b)
			}
			if !b.Sessions[0].IsCurrent || b.Sessions[1].IsCurrent || b.Sessions[0].ID != sessionIDOf(t, older.Access) {
				t.Fatalf("current session not first/unique: %+v", b.Sessions)
			}
			s := b.Sessions[0]
			if s.DeviceName == nil || *s.DeviceName != "Chrome on Mac" || s.DeviceID == nil || *s.DeviceID != "laptop-1" || s.IPAddress == nil || *s.IPAddress != "127.0.0.1" {
				t.Fatalf("device info %+v", s)
			}
			b = listSessions(t, e, newer.Access)
			if b.Sessions[0].ID != sessionIDOf(t, newer.Access) || !b.Sessions[0].IsCurrent {
				t.Fatalf("from the newer session: %+v", b.Sessions)
			}
		})
		t.Run("over-long device fields are truncated, never fail the login (fix 23)", func(t *testing.T) {
			tk := loginWith(t, e, "dev@example.com", map[string]string{"X-Device-Id": strings.Repeat("d", 1000), "User-Agent": strings.Repeat("u", 2000)})
			b := listSessions(t, e, tk.Access)
			if len(*b.Sessions[0].DeviceID) != 255 {
				t.Fatalf("device id length %d", len(*b.Sessions[0].DeviceID))
			}
			e.Post(pathRefresh, "", map[string]any{"refresh_token": tk.Refresh}).Expect(t, http.StatusOK, "")
			e.Delete("/api/v1/sessions/"+sessionIDOf(t, tk.Access), tk.Access).Expect(t, http.StatusOK, "")
		})
		t.Run("device fields that are not UTF-8 are stored replaced, on both engines (fix 23)", func(t *testing.T) {
			tk := loginWith(t, e, "dev@example.com", map[string]string{"X-Device-Id": "pad\xff\xfe1", "User-Agent": "Bot\xff/2.0"})
			got := listSessions(t, e, tk.Access).Sessions[0]
			if got.DeviceID == nil || *got.DeviceID != "pad\uFFFD1" {
				t.Fatalf("device id %v, want %q", got.DeviceID, "pad\uFFFD1")
			}
			e.Delete("/api/v1/sessions/"+sessionIDOf(t, tk.Access), tk.Access).Expect(t, http.StatusOK, "")
		})
		t.Run("X-Forwarded-For is ignored from untrusted peers (fix 14)", func(t *testing.T) {
			tk := loginWith(t, e, "dev@example.com", map[string]string{"X-Forwarded-For": "203.0.113.9"})
			if ip := *listSessions(t, e, tk.Access).Sessions[0].IPAddress; ip != "127.0.0.1" {
				t.Fatalf("ip %s", ip)
			}
			e.Delete("/api/v1/sessions/"+sessionIDOf(t, tk.Access), tk.Access).Expect(t, http.StatusOK, "")
		})
		t.Run("revoking a session stops its tokens at once", func(t *testing.T) {
			r := e.Delete("/api/v1/sessions/"+sessionIDOf(t, newer.Access), older.Access).Expect(t, http.StatusOK, "")
			if r.JSON(t)["message"] != "Session revoked: curl" {
				t.Fatalf("body %s", r.Body)
			}
			e.Get(pathMe, newer.Access).Expect(t, http.StatusUnauthorized, "AUTH_006")
			e.Post(pathRefresh, "", map[string]any{"refresh_token": newer.Refresh}).Expect(t, http.StatusUnauthorized, "AUTH_006")
			if b := listSessions(t, e, older.Access); b.Total != 1 {
				t.Fatalf("revoked session still listed: %+v", b)
			}
		})
		t.Run("other users' sessions, unknown and invalid ids", func(t *testing.T) {
			stranger := e.User("stranger@example.com")
			admin := e.Superuser("sessions-admin@example.com")
			sid := sessionIDOf(t, older.Access)
			for _, tk := range []apitest.Tokens{stranger, admin} {
				r := e.Delete("/api/v1/sessions/"+sid, tk.Access).Expect(t, http.StatusForbidden, "AUTH_004")
				if _, msg, _ := r.ErrorCode(t); msg != "You can only revoke your own sessions" {
					t.Fatalf("message %q", msg)
				}
			}
			e.Get(pathMe, older.Access).Expect(t, http.StatusOK, "")
			r := e.Delete("/api/v1/sessions/00000000-0000-4000-8000-000000000001", older.Access).Expect(t, http.StatusNotFound, "SYS_002")
			if _, msg, _ := r.ErrorCode(t); msg != "Session 00000000-0000-4000-8000-000000000001 not found" {
				t.Fatalf("message %q", msg)
			}
			e.Delete("/api/v1/sessions/xyz", older.Access).Expect(t, http.StatusUnprocessableEntity, "VAL_001")
		})
		t.Run("cleanup deletes only the caller's revoked and expired sessions", func(t *testing.T) {
			owner := sessionIDOf(t, older.Access)
			var uid string
			if err := e.App.Store.DB().QueryRow(`SELECT user_id FROM user_sessions WHERE id = $1`, owner).Scan(&uid); err != nil {
				t.Fatal(err)
			}
			// One revoked+expired, one active+expired, one revoked+valid (plus the earlier revoked ones).
			a := loginWith(t, e, "dev@example.com", nil)
			b := loginWith(t, e, "dev@example.com", nil)
			c := loginWith(t, e, "dev@example.com", nil)
			e.Exec(`UPDATE user_sessions SET is_active = FALSE, expires_at = created_at WHERE id = $1`, sessionIDOf(t, a.Access))
			e.Exec(`UPDATE user_sessions SET expires_at = created_at WHERE id = $1`, sessionIDOf(t, b.Access))
			e.Exec(`UPDATE user_sessions SET is_active = FALSE WHERE id = $1`, sessionIDOf(t, c.Access))
			e.Exec(`UPDATE user_sessions SET expires_at = created_at WHERE user_id = $1 AND is_active = FALSE AND id <> $2`, uid, sessionIDOf(t, c.Access))
			want := e.Count(`SELECT COUNT(*) FROM user_sessions WHERE user_id = $1 AND is_active = FALSE AND expires_at < $2`, uid, time.Now().UTC())
			other := e.User("cleanup-other@example.com")
			e.Exec(`UPDATE user_sessions SET is_active = FALSE, expires_at = created_at WHERE user_id = $1`, other.UserID)
			r := e.Delete("/api/v1/sessions/me/expired", older.Access).Expect(t, http.StatusOK, "")
			if msg := r.JSON(t)["message"]; msg != "Cleaned up "+itoa(want)+" expired sessions" || want < 2 {
				t.Fatalf("message %q, want %d", msg, want)
			}
			if n := e.Count(`SELECT COUNT(*) FROM user_sessions WHERE user_id = $1`, other.UserID); n != 1 {
				t.Fatal("another user's session was deleted")
			}
			if n := e.Count(`SELECT COUNT(*) FROM user_sessions WHERE id = $1`, sessionIDOf(t, b.Access)); n != 1 {
				t.Fatal("an active (expired) session was deleted")
			}
		})
	})
}

func TestTrustedProxyClientIP(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		e.Register("proxied@example.com")
		tk := loginWith(t, e, "proxied@example.com", map[string]string{"X-Forwarded-For": "198.51.100.7, 203.0.113.9"})
		if ip := *listSessions(t, e, tk.Access).Sessions[0].IPAddress; ip != "203.0.113.9" {
			t.Fatalf("ip %s, want the rightmost untrusted hop", ip)
		}
	}, apitest.WithEnv("TRUSTED_PROXIES", "127.0.0.1/32,::1/128"))
}

func itoa(n int) string { return strconv.Itoa(n) }

// /sessions/me says which sessions are API (token) sessions and which are
// sign-ins on the built-in pages, so a user can tell them apart.
func TestSessionsShowTheirKind(t *testing.T) {
	pgEach(t, func(t *testing.T, e *apitest.Env) {
		e.Register("kind@example.com")
		b := pgNewBrowser(t, e)
		page := b.get(pgLogin).expect(t, http.StatusOK)
		b.login(page, "kind@example.com", apitest.Password) // no return_to: the "signed in" page
		if n := pgBrowserSessions(t, e); n != 1 {
			t.Fatalf("%d browser sessions after the login form, want 1", n)
		}
		tk := e.Login("kind@example.com", apitest.Password)
		kinds := map[string]string{}
		for _, se := range listSessions(t, e, tk.Access).Sessions {
			kinds[se.ID] = se.Kind
		}
		browserID := ""
		if err := e.App.Store.DB().QueryRowContext(context.Background(),
			`SELECT id FROM user_sessions WHERE kind = 'browser'`).Scan(&browserID); err != nil {
			t.Fatal(err)
		}
		want := map[string]string{sessionIDOf(t, tk.Access): "api", browserID: "browser"}
		if len(kinds) != 2 || kinds[sessionIDOf(t, tk.Access)] != "api" || kinds[browserID] != "browser" {
			t.Fatalf("session kinds %v, want %v", kinds, want)
		}

		// Using the pages records the browser session's use, at most once a
		// minute, as a refresh does for a token session.
		lastUsed := func() time.Time {
			t.Helper()
			var at time.Time
			if err := e.App.Store.DB().QueryRowContext(context.Background(),
				`SELECT last_used_at FROM user_sessions WHERE id = $1`, browserID).Scan(&at); err != nil {
				t.Fatal(err)
			}
			return at.UTC()
		}
		old := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Second)
		e.Exec(`UPDATE user_sessions SET last_used_at = $2 WHERE id = $1`, browserID, old)
		if !strings.Contains(b.get(pgLogin).expect(t, http.StatusOK).Body, "kind@example.com") {
			t.Fatal("the login page does not show the signed-in user")
		}
		touched := lastUsed()
		if time.Since(touched) > time.Minute {
			t.Fatalf("last use %v after a page view, want about now", touched)
		}
		recent := time.Now().UTC().Add(-30 * time.Second).Truncate(time.Second)
		e.Exec(`UPDATE user_sessions SET last_used_at = $2 WHERE id = $1`, browserID, recent)
		b.get(pgLogin).expect(t, http.StatusOK)
		if got := lastUsed(); !got.Equal(recent) {
			t.Fatalf("last use %v after a page view 30 s after the last, want %v unchanged", got, recent)
		}
	})
}
