package httpapi_test

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/apitest"
)

// The daily job, run on demand, deletes long-expired and long-revoked
// sessions and expired reset tokens, and nothing else.
func TestScheduledCleanup(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		keep := e.User("keep@example.com")
		old := e.User("old@example.com")
		revoked := e.User("revoked@example.com")
		longAgo := time.Now().UTC().Add(-40 * 24 * time.Hour)
		e.Exec(`UPDATE user_sessions SET expires_at = $2 WHERE user_id = $1`, old.UserID, longAgo)
		e.Exec(`UPDATE user_sessions SET is_active = FALSE, updated_at = $2 WHERE user_id = $1`, revoked.UserID, longAgo)
		e.Post("/api/v1/auth/password-reset/request", "", map[string]any{"email": "keep@example.com"}).Expect(t, http.StatusOK, "")
		e.Post("/api/v1/auth/password-reset/request", "", map[string]any{"email": "old@example.com"}).Expect(t, http.StatusOK, "")
		e.Exec(`UPDATE password_reset_tokens SET expires_at = $2 WHERE user_id = $1`, old.UserID, longAgo)

		if err := e.App.Scheduler.RunNow(context.Background()); err != nil {
			t.Fatal(err)
		}
		for uid, want := range map[string]int{keep.UserID: 1, old.UserID: 0, revoked.UserID: 0} {
			if n := e.Count(`SELECT COUNT(*) FROM user_sessions WHERE user_id = $1`, uid); n != want {
				t.Errorf("user %s: %d sessions left, want %d", uid, n, want)
			}
		}
		if n := e.Count(`SELECT COUNT(*) FROM password_reset_tokens WHERE user_id = $1`, keep.UserID); n != 1 {
			t.Errorf("a valid reset token was purged")
		}
		if n := e.Count(`SELECT COUNT(*) FROM password_reset_tokens WHERE user_id = $1`, old.UserID); n != 0 {
			t.Errorf("an expired reset token survived")
		}
		e.Get(pathMe, keep.Access).Expect(t, http.StatusOK, "")
	})
}

// An SMTP server that is down neither blocks nor fails the request; the
// failure is logged.
func TestMailFailureDoesNotFailRequests(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close() // nothing listens there now
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		e.Register("nomail@example.com")
		r := e.Post("/api/v1/auth/password-reset/request", "", map[string]any{"email": "nomail@example.com"}).Expect(t, http.StatusOK, "")
		if !strings.Contains(r.JSON(t)["message"].(string), "If your email is registered") {
			t.Fatalf("body %s", r.Body)
		}
		deadline := time.Now().Add(20 * time.Second)
		for !strings.Contains(e.Logs.String(), "email send failed") {
			if time.Now().After(deadline) {
				t.Fatalf("the failed send was not logged:\n%s", e.Logs.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}, apitest.WithEnv("SMTP_PORT", strconv.Itoa(port)), apitest.WithEnv("SMTP_HOST", "127.0.0.1"))
}
