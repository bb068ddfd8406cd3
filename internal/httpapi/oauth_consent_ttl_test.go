package httpapi_test

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/apitest"
)

// A consent lasts OAUTH_CONSENT_TTL_DAYS from its last grant: older, it
// counts as missing at the authorization endpoint and the user is asked
// again; the new answer starts a new consent. 0 keeps consents forever.
func TestOAuthConsentLifetime(t *testing.T) {
	const days = 30
	grantedAgo := func(e *apitest.Env, userID string, ago time.Duration) {
		e.T.Helper()
		at := time.Now().UTC().Add(-ago).Truncate(time.Microsecond)
		e.Exec(`UPDATE oauth_consents SET created_at = $2, updated_at = $2 WHERE user_id = $1`, userID, at)
	}
	t.Run("expires", func(t *testing.T) {
		oaEach(t, func(t *testing.T, e *apitest.Env) {
			s := oaStart(t, e)
			verifier, challenge := oaPKCE()
			v := oaParams(s.conf, challenge, url.Values{"scope": {"openid profile"}})
			oaCode(t, e, s.alice.Access, v)
			ttl := days * 24 * time.Hour

			// Within its lifetime the consent is used: a code at once.
			grantedAgo(e, s.alice.UserID, ttl-time.Hour)
			if q := oaBackAtClient(t, e, oaLocation(t, oaAuthorize(e, s.alice.Access, v), http.StatusFound), v); q.Get("code") == "" {
				t.Fatalf("consent granted %d days ago less an hour was not used: %v", days, q)
			}

			// Past it, the user is asked again (prompt=none cannot skip that).
			grantedAgo(e, s.alice.UserID, ttl+time.Minute)
			if u := oaLocation(t, oaAuthorize(e, s.alice.Access, v), http.StatusFound); u.Path != "/oauth/consent" {
				t.Fatalf("an expired consent went to %s, want the consent page", u)
			}
			none := oaMerge(url.Values{}, v)
			none.Set("prompt", "none")
			oaWantRedirectError(t, e, oaAuthorize(e, s.alice.Access, none), http.StatusFound, none, "consent_required", "")

			// The new answer is a new consent: the expired scopes are not
			// carried over, and it is dated now.
			narrow := oaMerge(url.Values{}, v)
			narrow.Set("scope", "openid")
			q := oaBackAtClient(t, e, oaLocation(t, oaConsent(e, s.alice.Access, narrow, "true"), http.StatusSeeOther), narrow)
			oaOK(t, oaExchange(e, s.conf, q.Get("code"), verifier, nil))
			var consents []map[string]any
			e.Get(oaBase+"/consents", s.alice.Access).Expect(t, http.StatusOK, "").Decode(t, &consents)
			if len(consents) != 1 || fmt.Sprint(consents[0]["granted_scopes"]) != "[openid]" {
				t.Fatalf("consents after granting again: %v", consents)
			}
			granted, err := time.Parse(time.RFC3339Nano, fmt.Sprint(consents[0]["granted_at"]))
			if err != nil || time.Since(granted) > time.Hour {
				t.Fatalf("granted_at %v (%v), want now", consents[0]["granted_at"], err)
			}
			if u := oaLocation(t, oaAuthorize(e, s.alice.Access, v), http.StatusFound); u.Path != "/oauth/consent" {
				t.Fatalf("profile, granted only in the expired consent, went to %s", u)
			}
			if q := oaBackAtClient(t, e, oaLocation(t, oaAuthorize(e, s.alice.Access, narrow), http.StatusFound), narrow); q.Get("code") == "" {
				t.Fatalf("the renewed consent was not used: %v", q)
			}
		}, apitest.WithEnv("OAUTH_CONSENT_TTL_DAYS", fmt.Sprint(days)))
	})

	t.Run("never with 0", func(t *testing.T) {
		oaEach(t, func(t *testing.T, e *apitest.Env) {
			s := oaStart(t, e)
			_, challenge := oaPKCE()
			v := oaParams(s.conf, challenge, nil)
			oaCode(t, e, s.alice.Access, v)
			grantedAgo(e, s.alice.UserID, 50*365*24*time.Hour)
			if q := oaBackAtClient(t, e, oaLocation(t, oaAuthorize(e, s.alice.Access, v), http.StatusFound), v); q.Get("code") == "" {
				t.Fatalf("with OAUTH_CONSENT_TTL_DAYS=0 a 50-year-old consent was not used: %v", q)
			}
		}, apitest.WithEnv("OAUTH_CONSENT_TTL_DAYS", "0"))
	})
}
