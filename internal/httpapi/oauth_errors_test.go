package httpapi_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/apitest"
	"github.com/gatehouse-dev/gatehouse/internal/oauth"
)

// Errors of reference §6B that need states no API creates (seeded in SQL),
// and the reference's exact error_description texts of client
// authentication.

const oaDeprecatedHash = "Client secret uses deprecated hash format. Please regenerate your client credentials."

// oaErrExactly is oaErr with the whole error_description.
func oaErrExactly(t *testing.T, r apitest.Response, status int, code, desc string) {
	t.Helper()
	oaErr(t, r, status, code, desc)
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil || m["error_description"] != desc {
		t.Fatalf("error_description %q, want exactly %q", m["error_description"], desc)
	}
}

func oaSecretHash(e *apitest.Env, clientID string) string {
	e.T.Helper()
	var h string
	if err := e.App.Store.DB().QueryRow(`SELECT client_secret_hash FROM oauth_clients WHERE client_id = $1`, clientID).Scan(&h); err != nil {
		e.T.Fatal(err)
	}
	return h
}

// A client whose redirect URIs are gone (§6B.3 step 3): 400 and no redirect,
// at the authorization endpoint (API and browser) and the consent API.
func TestOAuthClientWithoutRedirectURIs(t *testing.T) {
	oaEach(t, func(t *testing.T, e *apitest.Env) {
		s := oaStart(t, e)
		e.Exec(`UPDATE oauth_clients SET redirect_uris = '[]' WHERE client_id = $1`, s.conf.ID)
		_, challenge := oaPKCE()
		v := oaParams(s.conf, challenge, nil)
		const msg = "invalid_request: Client has no registered redirect URIs"
		for name, r := range map[string]apitest.Response{
			"authorize (anonymous)": oaAuthorize(e, "", v),
			"authorize (user)":      oaAuthorize(e, s.alice.Access, v),
			"consent API":           oaConsent(e, s.alice.Access, v, "true"),
		} {
			if r.Status != http.StatusBadRequest || r.Header.Get("Location") != "" {
				t.Errorf("%s: %d, Location %q; want 400 and no redirect", name, r.Status, r.Header.Get("Location"))
				continue
			}
			if _, got, _ := r.ErrorCode(t); got != msg {
				t.Errorf("%s: message %q, want %q", name, got, msg)
			}
		}
		r := e.Do(apitest.Request{Method: "GET", Path: oaBase + "/authorize?" + v.Encode(), Headers: map[string]string{"Accept": "text/html"}})
		if r.Status != http.StatusBadRequest || r.Header.Get("Location") != "" || !strings.Contains(string(r.Body), "Client has no registered redirect URIs") {
			t.Fatalf("browser: %d %q\n%s", r.Status, r.Header.Get("Location"), r.Body)
		}
		if n := e.Count(`SELECT COUNT(*) FROM oauth_consents`) + e.Count(`SELECT COUNT(*) FROM oauth_authorization_codes`); n != 0 {
			t.Fatalf("%d consents and codes recorded for a client without redirect URIs", n)
		}
	})
}

// Client authentication failures carry the reference's error_description
// (§6B.6 step 4) at the token endpoint (both grants), revocation and
// introspection alike.
func TestOAuthClientAuthenticationMessages(t *testing.T) {
	oaEach(t, func(t *testing.T, e *apitest.Env) {
		s := oaStart(t, e)
		verifier, challenge := oaPKCE()
		code := oaCode(t, e, s.alice.Access, oaParams(s.conf, challenge, nil))
		pubCode := oaCode(t, e, s.alice.Access, oaParams(s.pub, challenge, nil))
		tok := oaFlow(t, e, s.conf, s.alice.Access, nil)
		legacy := oaNewClient(t, e, s.admin.Access, oauth.Confidential, "")
		e.Exec(`UPDATE oauth_clients SET client_secret_hash = $2 WHERE client_id = $1`, legacy.ID, "md5:"+strings.Repeat("0", 32))
		for _, tc := range []struct {
			name   string
			client oaClient
			code   string
			desc   string
		}{
			{"confidential without secret", oaClient{ID: s.conf.ID, Redirect: s.conf.Redirect}, code, "Client secret required for confidential clients"},
			{"wrong secret", oaClient{ID: s.conf.ID, Secret: s.conf.Secret + "x", Redirect: s.conf.Redirect}, code, "Invalid client secret"},
			{"public with a secret", oaClient{ID: s.pub.ID, Secret: "anything", Redirect: s.pub.Redirect}, pubCode, "Client not configured with secret"},
			{"unknown client", oaClient{ID: "no-such-client", Secret: "x", Redirect: oaRedirect}, code, "Unknown client_id"},
			{"no client", oaClient{Redirect: oaRedirect}, code, "client_id required"},
			{"deprecated secret hash", legacy, code, oaDeprecatedHash},
		} {
			t.Run(tc.name, func(t *testing.T) {
				oaErrExactly(t, oaExchange(e, tc.client, tc.code, verifier, nil), 401, "invalid_client", tc.desc)
				oaErrExactly(t, oaRefresh(e, tc.client, tok.RefreshToken, nil), 401, "invalid_client", tc.desc)
				oaErrExactly(t, oaRevoke(e, tc.client, tok.RefreshToken, ""), 401, "invalid_client", tc.desc)
				oaErrExactly(t, oaIntrospect(e, tc.client, tok.AccessToken), 401, "invalid_client", tc.desc)
			})
		}
		// Nothing above used the codes or the grant up.
		oaOK(t, oaExchange(e, s.conf, code, verifier, nil))
		oaOK(t, oaExchange(e, s.pub, pubCode, verifier, nil))
		oaOK(t, oaRefresh(e, s.conf, tok.RefreshToken, nil))
		// The deprecated hash is refused even with the right secret, and kept.
		if h := oaSecretHash(e, legacy.ID); h != "md5:"+strings.Repeat("0", 32) {
			t.Fatalf("the deprecated hash was changed to %q", h)
		}
	})
}

// A secret stored as a bcrypt hash (older releases) keeps working and is
// replaced by its SHA-256 form on first use; a wrong secret changes nothing.
func TestOAuthLegacyBcryptSecretIsUpgraded(t *testing.T) {
	oaEach(t, func(t *testing.T, e *apitest.Env) {
		s := oaStart(t, e)
		old := bcryptHash(t, s.conf.Secret, 4)
		e.Exec(`UPDATE oauth_clients SET client_secret_hash = $2 WHERE client_id = $1`, s.conf.ID, old)
		verifier, challenge := oaPKCE()
		code := oaCode(t, e, s.alice.Access, oaParams(s.conf, challenge, nil))

		oaErrExactly(t, oaExchange(e, oaClient{ID: s.conf.ID, Secret: "wrong", Redirect: s.conf.Redirect}, code, verifier, nil),
			401, "invalid_client", "Invalid client secret")
		if h := oaSecretHash(e, s.conf.ID); h != old {
			t.Fatalf("a wrong secret replaced the bcrypt hash with %q", h)
		}

		tok := oaOK(t, oaExchange(e, s.conf, code, verifier, nil))
		h := oaSecretHash(e, s.conf.ID)
		if h != oauth.HashSecret(s.conf.Secret) || !strings.HasPrefix(h, "sha256:") {
			t.Fatalf("stored hash after first use %q, want the SHA-256 form %q", h, oauth.HashSecret(s.conf.Secret))
		}
		// The upgraded hash verifies, and only the right secret.
		oaOK(t, oaRefresh(e, s.conf, tok.RefreshToken, nil))
		oaErrExactly(t, oaIntrospect(e, oaClient{ID: s.conf.ID, Secret: s.conf.Secret + "x"}, tok.AccessToken), 401, "invalid_client", "Invalid client secret")
	})
}

// An inactive user's first-party token at the consent API: 403, nothing
// recorded (§6B.4).
func TestOAuthConsentAPIRefusesInactiveUser(t *testing.T) {
	oaEach(t, func(t *testing.T, e *apitest.Env) {
		s := oaStart(t, e)
		e.Exec(`UPDATE users SET is_active = FALSE WHERE id = $1`, s.alice.UserID)
		_, challenge := oaPKCE()
		for _, approved := range []string{"true", "false"} {
			r := oaConsent(e, s.alice.Access, oaParams(s.conf, challenge, nil), approved)
			r.Expect(t, http.StatusForbidden, "AUTH_004")
			if _, msg, _ := r.ErrorCode(t); msg != "Inactive user" || r.Header.Get("Location") != "" {
				t.Fatalf("approved=%s: message %q, Location %q", approved, msg, r.Header.Get("Location"))
			}
		}
		if n := e.Count(`SELECT COUNT(*) FROM oauth_consents`) + e.Count(`SELECT COUNT(*) FROM oauth_authorization_codes`); n != 0 {
			t.Fatalf("%d consents and codes recorded for an inactive user", n)
		}
		// Active again: the same request goes through (control).
		e.Exec(`UPDATE users SET is_active = TRUE WHERE id = $1`, s.alice.UserID)
		v := oaParams(s.conf, challenge, nil)
		if u := oaLocation(t, oaConsent(e, s.alice.Access, v, "true"), http.StatusSeeOther); !oaAtClient(u, oaRedirect) {
			t.Fatalf("control: consent went to %s", u)
		}
	})
}
