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
	"github.com/gatehouse-dev/gatehouse/internal/token"
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

// The daily job deletes authorization codes and provider refresh tokens
// more than a day after they expired or were revoked, and consents last
// granted more than OAUTH_CONSENT_TTL_DAYS (365) ago that no live grant
// depends on; everything else stays and keeps working.
func TestScheduledCleanupProviderGrants(t *testing.T) {
	oaEach(t, func(t *testing.T, e *apitest.Env) {
		s := oaStart(t, e)
		bob, carol := e.User("bob@example.com"), e.User("carol@example.com")
		now := time.Now().UTC()
		ago := func(d time.Duration) time.Time { return now.Add(-d).Truncate(time.Microsecond) }
		const day = 24 * time.Hour
		_, challenge := oaPKCE()

		// Codes, unredeemed (each oaFlow below adds a redeemed one, which
		// stays until a day after it expires too).
		newCode := func(expires time.Time) string {
			h := token.HashSecret(oaCode(t, e, s.alice.Access, oaParams(s.conf, challenge, nil)))
			if !expires.IsZero() {
				e.Exec(`UPDATE oauth_authorization_codes SET expires_at = $2 WHERE code_hash = $1`, h, expires)
			}
			return h
		}
		codes := map[string]bool{newCode(time.Time{}): true, newCode(ago(time.Hour)): true, newCode(ago(day + time.Hour)): false}

		// Grants (refresh tokens), by the hash of their refresh token.
		grant := func(u apitest.Tokens) (oaTokens, string) {
			tok := oaFlow(t, e, s.conf, u.Access, nil)
			return tok, token.HashSecret(tok.RefreshToken)
		}
		shift := func(column, hash string, at time.Time) {
			e.Exec(`UPDATE oauth_provider_refresh_tokens SET `+column+` = $2 WHERE token_hash = $1`, hash, at)
		}
		revoke := func(tok oaTokens) { oaRevoke(e, s.conf, tok.RefreshToken, "").Expect(t, http.StatusOK, "") }
		live, liveHash := grant(s.alice)
		_, expiredRecently := grant(s.alice)
		shift("expires_at", expiredRecently, ago(time.Hour))
		_, expiredLong := grant(s.alice)
		shift("expires_at", expiredLong, ago(day+time.Hour))
		tok, revokedRecently := grant(s.alice)
		revoke(tok)
		tok, revokedLong := grant(s.alice)
		revoke(tok)
		shift("revoked_at", revokedLong, ago(day+time.Hour))
		refresh := map[string]bool{liveHash: true, expiredRecently: true, expiredLong: false, revokedRecently: true, revokedLong: false}

		// Consents: alice's for the confidential client is fresh; bob's is
		// old and his grant revoked; carol's is old but her grant lives;
		// alice's for the public client is old but within the lifetime.
		bobTok, _ := grant(bob)
		revoke(bobTok)
		_, carolHash := grant(carol)
		oaCode(t, e, s.alice.Access, oaParams(s.pub, challenge, nil))
		age := func(userID, clientID string, d time.Duration) {
			e.Exec(`UPDATE oauth_consents SET created_at = $3, updated_at = $3 WHERE user_id = $1 AND client_id = $2`, userID, clientID, ago(d))
		}
		age(bob.UserID, s.conf.ID, 366*day)
		age(carol.UserID, s.conf.ID, 366*day)
		age(s.alice.UserID, s.pub.ID, 364*day)
		type consent struct{ user, client string }
		consents := map[consent]bool{{s.alice.UserID, s.conf.ID}: true, {bob.UserID, s.conf.ID}: false,
			{carol.UserID, s.conf.ID}: true, {s.alice.UserID, s.pub.ID}: true}
		refresh[carolHash] = true // carol's grant lives

		before := map[string]int{}
		for _, table := range []string{"oauth_authorization_codes", "oauth_provider_refresh_tokens", "oauth_consents"} {
			before[table] = e.Count(`SELECT COUNT(*) FROM ` + table)
		}
		if err := e.App.Scheduler.RunNow(context.Background()); err != nil {
			t.Fatal(err)
		}
		for h, keep := range codes {
			if n := e.Count(`SELECT COUNT(*) FROM oauth_authorization_codes WHERE code_hash = $1`, h); n != map[bool]int{true: 1}[keep] {
				t.Errorf("code %s…: %d rows left, keep=%v", h[:8], n, keep)
			}
		}
		for h, keep := range refresh {
			if n := e.Count(`SELECT COUNT(*) FROM oauth_provider_refresh_tokens WHERE token_hash = $1`, h); n != map[bool]int{true: 1}[keep] {
				t.Errorf("refresh token %s…: %d rows left, keep=%v", h[:8], n, keep)
			}
		}
		for c, keep := range consents {
			if n := e.Count(`SELECT COUNT(*) FROM oauth_consents WHERE user_id = $1 AND client_id = $2`, c.user, c.client); n != map[bool]int{true: 1}[keep] {
				t.Errorf("consent of %s for %s: %d rows left, keep=%v", c.user, c.client, n, keep)
			}
		}
		// Nothing else went: one old code, two refresh tokens, one consent.
		for table, gone := range map[string]int{"oauth_authorization_codes": 1, "oauth_provider_refresh_tokens": 2, "oauth_consents": 1} {
			if n := e.Count(`SELECT COUNT(*) FROM ` + table); n != before[table]-gone {
				t.Errorf("%s: %d rows after the purge, want %d - %d", table, n, before[table], gone)
			}
		}
		// The live grant still works.
		if !oaAccessWorks(t, e, live.AccessToken) {
			t.Fatal("the live grant's access token stopped working")
		}
		oaOK(t, oaRefresh(e, s.conf, live.RefreshToken, nil))
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
