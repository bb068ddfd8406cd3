package httpapi_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"

	"github.com/gatehouse-dev/gatehouse/internal/apitest"
	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/internal/token"
)

// The OAuth 2.1 / OpenID Connect authorization server end to end (reference
// §6B with fixes 20 and 25-28, contract §4.3, the RFC 9700 checklist of
// docs/mcp-authorization.md): the real service on every engine, driven over
// HTTP. Codes are obtained the reference way, with a first-party bearer
// token at the authorization endpoint and the consent form API.

const (
	oaBase       = "/api/v1/oauth/provider"
	oaRedirect   = "https://client.example.com/callback"
	oaFormType   = "application/x-www-form-urlencoded"
	oaDisabled   = "OAuth provider mode is not enabled. Set OAUTH_PROVIDER_ENABLED=true"
	oaAdminEmail = "root@example.com"
)

func oaOn() apitest.Option { return apitest.WithEnv("OAUTH_PROVIDER_ENABLED", "true") }

// oaEach runs fn on every engine with the authorization server enabled.
func oaEach(t *testing.T, fn func(t *testing.T, e *apitest.Env), opts ...apitest.Option) {
	// https://mcp.example.com/mcp is a resource this server is configured to
	// protect (OAUTH_RESOURCES), besides its own /mcp and /api/v1.
	apitest.Each(t, fn, append([]apitest.Option{oaOn(), apitest.WithEnv("OAUTH_RESOURCES", "https://mcp.example.com/mcp")}, opts...)...)
}

// oaClient is a registered client as a test knows it.
type oaClient struct {
	ID, Secret, Redirect string
}

func (c oaClient) public() bool { return c.Secret == "" }

// oaPost posts a form, with an optional bearer token and extra headers.
func oaPost(e *apitest.Env, path, bearer string, form url.Values, headers map[string]string) apitest.Response {
	e.T.Helper()
	h := map[string]string{"Content-Type": oaFormType}
	for k, v := range headers {
		h[k] = v
	}
	return e.Do(apitest.Request{Method: "POST", Path: path, Token: bearer, Body: form.Encode(), Headers: h})
}

// oaRegister registers a client through the superuser API.
func oaRegister(e *apitest.Env, admin string, form url.Values) apitest.Response {
	e.T.Helper()
	return oaPost(e, oaBase+"/clients", admin, form, nil)
}

// oaNewClient registers a client and returns it.
func oaNewClient(t testing.TB, e *apitest.Env, admin, typ, scopes string, redirects ...string) oaClient {
	t.Helper()
	if len(redirects) == 0 {
		redirects = []string{oaRedirect}
	}
	f := url.Values{"client_name": {"App " + typ}, "client_type": {typ}, "redirect_uris": {strings.Join(redirects, ",")}}
	if scopes != "" {
		f.Set("scopes", scopes)
	}
	m := oaRegister(e, admin, f).Expect(t, http.StatusOK, "").JSON(t)
	c := oaClient{ID: m["client_id"].(string), Redirect: redirects[0]}
	if s, ok := m["client_secret"].(string); ok {
		c.Secret = s
	}
	if (typ == oauth.Confidential) != (c.Secret != "") {
		t.Fatalf("%s client registered with secret %q", typ, c.Secret)
	}
	return c
}

// oaPKCE returns a verifier and its S256 challenge.
func oaPKCE() (verifier, challenge string) {
	verifier = token.RandomSecret() + "-" + token.RandomSecret()
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

// oaParams is an authorization request of c (PKCE when challenge is set).
func oaParams(c oaClient, challenge string, extra url.Values) url.Values {
	v := url.Values{"response_type": {"code"}, "client_id": {c.ID}, "redirect_uri": {c.Redirect}, "state": {"st-" + token.RandomSecret()[:10]}}
	if challenge != "" {
		v.Set("code_challenge", challenge)
		v.Set("code_challenge_method", "S256")
	}
	for k, vs := range extra {
		if len(vs) == 0 {
			v.Del(k)
		} else {
			v[k] = vs
		}
	}
	return v
}

func oaAuthorize(e *apitest.Env, bearer string, v url.Values) apitest.Response {
	e.T.Helper()
	return e.Do(apitest.Request{Method: "GET", Path: oaBase + "/authorize?" + v.Encode(), Token: bearer})
}

// oaConsent posts the consent form for the authorization request v.
func oaConsent(e *apitest.Env, bearer string, v url.Values, approved string) apitest.Response {
	e.T.Helper()
	f := url.Values{"approved": {approved}}
	for k, vs := range v {
		if k != "response_type" {
			f[k] = vs
		}
	}
	return oaPost(e, oaBase+"/authorize/consent", bearer, f, nil)
}

// oaLocation checks a redirect's status and returns its target.
func oaLocation(t testing.TB, r apitest.Response, status int) *url.URL {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d; Location %q; body %s", r.Status, status, r.Header.Get("Location"), r.Body)
	}
	u, err := url.Parse(r.Header.Get("Location"))
	if err != nil || r.Header.Get("Location") == "" {
		t.Fatalf("bad Location %q: %v", r.Header.Get("Location"), err)
	}
	return u
}

// oaAtClient reports whether u points at the redirect URI redirect.
func oaAtClient(u *url.URL, redirect string) bool {
	r, err := url.Parse(redirect)
	return err == nil && u.Scheme == r.Scheme && u.Host == r.Host && u.Path == r.Path
}

// oaBackAtClient checks a redirect to the client: state and iss (RFC 9207)
// always, and returns the query.
func oaBackAtClient(t testing.TB, e *apitest.Env, u *url.URL, v url.Values) url.Values {
	t.Helper()
	if !oaAtClient(u, v.Get("redirect_uri")) {
		t.Fatalf("redirected to %s, want the client's %s", u, v.Get("redirect_uri"))
	}
	q := u.Query()
	if q.Get("state") != v.Get("state") || (v.Get("state") == "") == q.Has("state") {
		t.Fatalf("state %q back for %q: %s", q.Get("state"), v.Get("state"), u)
	}
	if q.Get("iss") != e.Config.Provider.Issuer || len(q["iss"]) != 1 {
		t.Fatalf("iss %q, want %q (RFC 9207): %s", q["iss"], e.Config.Provider.Issuer, u)
	}
	return q
}

// oaWantRedirectError checks an error sent back to the client.
func oaWantRedirectError(t *testing.T, e *apitest.Env, r apitest.Response, status int, v url.Values, code, desc string) {
	t.Helper()
	q := oaBackAtClient(t, e, oaLocation(t, r, status), v)
	if q.Get("error") != code || !strings.Contains(q.Get("error_description"), desc) || q.Has("code") {
		t.Fatalf("error %q %q (code %q), want %s mentioning %q", q.Get("error"), q.Get("error_description"), q.Get("code"), code, desc)
	}
}

// oaCode runs the authorization request as the bearer's user, consenting
// when asked, and returns the code.
func oaCode(t testing.TB, e *apitest.Env, bearer string, v url.Values) string {
	t.Helper()
	u := oaLocation(t, oaAuthorize(e, bearer, v), http.StatusFound)
	if !oaAtClient(u, v.Get("redirect_uri")) {
		if u.Path != "/oauth/consent" || u.Query().Get("client_id") != v.Get("client_id") {
			t.Fatalf("authorize sent the user to %s, want the consent page or the client", u)
		}
		u = oaLocation(t, oaConsent(e, bearer, v, "true"), http.StatusSeeOther)
	}
	q := oaBackAtClient(t, e, u, v)
	if q.Get("error") != "" || len(q.Get("code")) < 43 {
		t.Fatalf("no code: %s", u)
	}
	return q.Get("code")
}

// oaTokens is a token response.
type oaTokens struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
	Scope        string `json:"scope"`
	IDToken      string `json:"id_token"`
}

func oaNoStore(t testing.TB, r apitest.Response) {
	t.Helper()
	if r.Header.Get("Cache-Control") != "no-store" || r.Header.Get("Pragma") != "no-cache" {
		t.Fatalf("status %d: Cache-Control %q Pragma %q, want no-store / no-cache", r.Status, r.Header.Get("Cache-Control"), r.Header.Get("Pragma"))
	}
}

// oaOK checks a successful token response.
func oaOK(t testing.TB, r apitest.Response) oaTokens {
	t.Helper()
	if r.Status != http.StatusOK {
		t.Fatalf("token endpoint: status %d: %s", r.Status, r.Body)
	}
	oaNoStore(t, r)
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("Content-Type %q", r.Header.Get("Content-Type"))
	}
	var tok oaTokens
	r.Decode(t, &tok)
	if tok.AccessToken == "" || tok.RefreshToken == "" || tok.TokenType != "Bearer" || tok.ExpiresIn <= 0 {
		t.Fatalf("token response: %s", r.Body)
	}
	return tok
}

// oaErr checks an RFC 6749 §5.2 error: status, error code, a description
// containing desc, no-store headers, and nothing but the RFC's keys.
func oaErr(t testing.TB, r apitest.Response, status int, code, desc string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d (%s); body %s", r.Status, status, code, r.Body)
	}
	oaNoStore(t, r)
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("error body is not JSON: %s", r.Body)
	}
	if m["error"] != code || !strings.Contains(fmt.Sprint(m["error_description"]), desc) {
		t.Fatalf("error %v %q, want %s mentioning %q", m["error"], m["error_description"], code, desc)
	}
	for k := range m {
		if k != "error" && k != "error_description" && k != "error_uri" {
			t.Fatalf("error body has %q: %s", k, r.Body)
		}
	}
	if status == http.StatusUnauthorized && !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Basic") {
		t.Fatalf("401 without WWW-Authenticate: Basic (got %q)", r.Header.Get("WWW-Authenticate"))
	}
}

// oaWithClient adds client authentication (client_secret_post, or only the
// id for public clients).
func oaWithClient(c oaClient, f url.Values) url.Values {
	f.Set("client_id", c.ID)
	if c.Secret != "" {
		f.Set("client_secret", c.Secret)
	}
	return f
}

func oaMerge(f, extra url.Values) url.Values {
	for k, vs := range extra {
		if len(vs) == 0 {
			f.Del(k)
		} else {
			f[k] = vs
		}
	}
	return f
}

func oaExchange(e *apitest.Env, c oaClient, code, verifier string, extra url.Values) apitest.Response {
	e.T.Helper()
	f := oaWithClient(c, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {c.Redirect}})
	if verifier != "" {
		f.Set("code_verifier", verifier)
	}
	return oaPost(e, oaBase+"/token", "", oaMerge(f, extra), nil)
}

func oaRefresh(e *apitest.Env, c oaClient, refresh string, extra url.Values) apitest.Response {
	e.T.Helper()
	f := oaWithClient(c, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}})
	return oaPost(e, oaBase+"/token", "", oaMerge(f, extra), nil)
}

func oaRevoke(e *apitest.Env, c oaClient, tok, hint string) apitest.Response {
	e.T.Helper()
	f := oaWithClient(c, url.Values{"token": {tok}})
	if hint != "" {
		f.Set("token_type_hint", hint)
	}
	return oaPost(e, oaBase+"/revoke", "", f, nil)
}

func oaIntrospect(e *apitest.Env, c oaClient, tok string) apitest.Response {
	e.T.Helper()
	return oaPost(e, oaBase+"/introspect", "", oaWithClient(c, url.Values{"token": {tok}}), nil)
}

// oaActive asks the introspection endpoint (as a confidential client).
func oaActive(t *testing.T, e *apitest.Env, as oaClient, tok string) bool {
	t.Helper()
	r := oaIntrospect(e, as, tok)
	if r.Status != http.StatusOK {
		t.Fatalf("introspection: %d %s", r.Status, r.Body)
	}
	oaNoStore(t, r)
	return r.JSON(t)["active"] == true
}

func oaUserinfo(e *apitest.Env, tok string) apitest.Response {
	e.T.Helper()
	return e.Get(oaBase+"/userinfo", tok)
}

// oaFlow runs the whole code flow with PKCE for c as the bearer's user.
func oaFlow(t testing.TB, e *apitest.Env, c oaClient, bearer string, extra url.Values) oaTokens {
	t.Helper()
	verifier, challenge := oaPKCE()
	v := oaParams(c, challenge, extra)
	code := oaCode(t, e, bearer, v)
	return oaOK(t, oaExchange(e, c, code, verifier, url.Values{"redirect_uri": {v.Get("redirect_uri")}}))
}

// oaAlive reports whether a grant works: its access token at userinfo and,
// optionally, its refresh token (which a successful refresh rotates).
func oaAccessWorks(t *testing.T, e *apitest.Env, access string) bool {
	t.Helper()
	r := oaUserinfo(e, access)
	switch r.Status {
	case http.StatusOK:
		return true
	case http.StatusUnauthorized:
		if !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Fatalf("userinfo 401 without a Bearer challenge: %q", r.Header.Get("WWW-Authenticate"))
		}
		return false
	}
	t.Fatalf("userinfo: %d %s", r.Status, r.Body)
	return false
}

// oaJWT splits a JWT without verifying it.
func oaJWT(t *testing.T, raw string) (header map[string]any, claims jwt.MapClaims) {
	t.Helper()
	claims = jwt.MapClaims{}
	tok, _, err := jwt.NewParser().ParseUnverified(raw, claims)
	if err != nil {
		t.Fatalf("not a JWT: %v", err)
	}
	return tok.Header, claims
}

func oaJWKS(t *testing.T, e *apitest.Env) jose.JSONWebKeySet {
	t.Helper()
	r := e.Get("/.well-known/jwks.json", "").Expect(t, http.StatusOK, "")
	var set jose.JSONWebKeySet
	r.Decode(t, &set)
	return set
}

// oaVerify verifies a JWT against the published JWKS: the header's kid must
// name a published key of the header's algorithm.
func oaVerify(t *testing.T, set jose.JSONWebKeySet, raw string) (map[string]any, jwt.MapClaims) {
	t.Helper()
	claims := jwt.MapClaims{}
	tok, err := jwt.ParseWithClaims(raw, claims, func(tok *jwt.Token) (any, error) {
		kid, _ := tok.Header["kid"].(string)
		keys := set.Key(kid)
		if len(keys) != 1 {
			return nil, fmt.Errorf("kid %q published %d times", kid, len(keys))
		}
		if keys[0].Algorithm != tok.Method.Alg() {
			return nil, fmt.Errorf("kid %q is for %s, token says %s", kid, keys[0].Algorithm, tok.Method.Alg())
		}
		return keys[0].Key, nil
	}, jwt.WithValidMethods([]string{"ES256", "RS256"}))
	if err != nil {
		t.Fatalf("JWT does not verify against the JWKS: %v", err)
	}
	return tok.Header, claims
}

// oaSetup is the usual cast: a superuser, a user and a confidential and a
// public client allowed openid profile email.
type oaSetup struct {
	admin, alice apitest.Tokens
	conf, pub    oaClient
}

func oaStart(t testing.TB, e *apitest.Env) oaSetup {
	t.Helper()
	s := oaSetup{admin: e.Superuser(oaAdminEmail), alice: e.User("alice@example.com")}
	s.conf = oaNewClient(t, e, s.admin.Access, oauth.Confidential, "")
	s.pub = oaNewClient(t, e, s.admin.Access, oauth.Public, "", "http://127.0.0.1:8765/callback")
	return s
}

// oaBurst sends n copies of a form concurrently and returns the statuses
// and bodies.
func oaBurst(t *testing.T, e *apitest.Env, n int, path string, form url.Values) ([]int, []string) {
	t.Helper()
	var (
		wg       sync.WaitGroup
		statuses = make([]int, n)
		bodies   = make([]string, n)
		errs     = make([]error, n)
		start    = make(chan struct{})
	)
	client := e.Server.Client()
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			resp, err := client.Post(e.Server.URL+path, oaFormType, strings.NewReader(form.Encode()))
			if err != nil {
				errs[i] = err
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			statuses[i], bodies[i] = resp.StatusCode, string(b)
		}(i)
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return statuses, bodies
}

// --- discovery and the off switch -------------------------------------------

func TestOAuthMetadata(t *testing.T) {
	oaEach(t, func(t *testing.T, e *apitest.Env) {
		const iss = "https://auth.example.com"
		a := e.Get("/.well-known/oauth-authorization-server", "").Expect(t, http.StatusOK, "")
		o := e.Get("/.well-known/openid-configuration", "").Expect(t, http.StatusOK, "")
		m, om := a.JSON(t), o.JSON(t)
		if !reflect.DeepEqual(m, om) {
			t.Fatalf("the two discovery documents differ:\n%s\n%s", a.Body, o.Body)
		}
		if m["issuer"] != iss || e.Config.Provider.Issuer != iss {
			t.Fatalf("issuer %v, want %s (OAUTH_ISSUER without its trailing slash)", m["issuer"], iss)
		}
		for k, path := range map[string]string{
			"authorization_endpoint": oaBase + "/authorize",
			"token_endpoint":         oaBase + "/token",
			"revocation_endpoint":    oaBase + "/revoke",
			"introspection_endpoint": oaBase + "/introspect",
			"userinfo_endpoint":      oaBase + "/userinfo",
			"jwks_uri":               "/.well-known/jwks.json",
		} {
			if m[k] != iss+path {
				t.Errorf("%s = %v, want %s", k, m[k], iss+path)
			}
		}
		for k, v := range m {
			if s, ok := v.(string); ok && (strings.HasSuffix(k, "_endpoint") || strings.HasSuffix(k, "_uri")) && !strings.HasPrefix(s, iss+"/") {
				t.Errorf("%s = %s is not under the issuer", k, s)
			}
		}
		list := func(k string) []string {
			var out []string
			raw, _ := m[k].([]any)
			for _, x := range raw {
				out = append(out, fmt.Sprint(x))
			}
			return out
		}
		if got := list("code_challenge_methods_supported"); !slices.Equal(got, []string{"S256"}) {
			t.Errorf("code_challenge_methods_supported %v, want [S256] only", got)
		}
		if m["authorization_response_iss_parameter_supported"] != true {
			t.Error("authorization_response_iss_parameter_supported is not true (RFC 9207)")
		}
		if got := list("response_types_supported"); !slices.Equal(got, []string{"code"}) {
			t.Errorf("response_types_supported %v", got)
		}
		if got := list("grant_types_supported"); !slices.Equal(got, []string{"authorization_code", "refresh_token"}) {
			t.Errorf("grant_types_supported %v (no implicit, no password)", got)
		}
		for _, want := range []string{"client_secret_basic", "client_secret_post", "none"} {
			if !slices.Contains(list("token_endpoint_auth_methods_supported"), want) {
				t.Errorf("token_endpoint_auth_methods_supported lacks %s", want)
			}
		}
		if got := list("scopes_supported"); !slices.Equal(got, oauth.Scopes) {
			t.Errorf("scopes_supported %v", got)
		}
		if !slices.Contains(list("id_token_signing_alg_values_supported"), "RS256") || !slices.Contains(list("subject_types_supported"), "public") {
			t.Errorf("OpenID Connect discovery fields: %s", a.Body)
		}

		// The published keys are those that sign the tokens, and the issuer
		// is the same everywhere (fix 28).
		s := oaStart(t, e)
		set := oaJWKS(t, e)
		if len(set.Keys) != 2 {
			t.Fatalf("JWKS has %d keys, want one ES256 and one RS256", len(set.Keys))
		}
		for _, k := range set.Keys {
			if !k.IsPublic() || k.Use != "sig" || k.KeyID == "" || (k.Algorithm != "ES256" && k.Algorithm != "RS256") {
				t.Fatalf("JWKS key %+v", k)
			}
		}
		tok := oaFlow(t, e, s.conf, s.alice.Access, url.Values{"scope": {"openid"}, "nonce": {"n"}})
		for _, raw := range []string{tok.AccessToken, tok.IDToken} {
			_, claims := oaVerify(t, set, raw)
			if claims["iss"] != iss {
				t.Fatalf("token iss %v, want %s", claims["iss"], iss)
			}
		}
		if r := e.Get("/.well-known/jwks.json", ""); !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
			t.Fatalf("JWKS Content-Type %q", r.Header.Get("Content-Type"))
		}
	}, apitest.WithEnv("OAUTH_ISSUER", "https://auth.example.com/"))
}

func TestOAuthDisabledAnswers404Everywhere(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		admin := e.Superuser(oaAdminEmail)
		form := map[string]string{"Content-Type": oaFormType}
		reqs := []apitest.Request{
			{Method: "GET", Path: "/.well-known/oauth-authorization-server"},
			{Method: "GET", Path: "/.well-known/openid-configuration"},
			{Method: "GET", Path: "/.well-known/jwks.json"},
			{Method: "GET", Path: oaBase + "/authorize?response_type=code&client_id=x&redirect_uri=https://a/cb"},
			{Method: "GET", Path: oaBase + "/authorize"},
			{Method: "POST", Path: oaBase + "/authorize/consent", Body: "approved=true", Headers: form},
			{Method: "POST", Path: oaBase + "/token", Body: "grant_type=authorization_code&code=x", Headers: form},
			{Method: "POST", Path: oaBase + "/token", Body: `{"grant_type":"x"}`},
			{Method: "POST", Path: oaBase + "/revoke", Body: "token=x", Headers: form},
			{Method: "POST", Path: oaBase + "/introspect", Body: "token=x", Headers: form},
			{Method: "GET", Path: oaBase + "/userinfo"},
			{Method: "POST", Path: oaBase + "/userinfo"},
			{Method: "POST", Path: oaBase + "/clients", Body: "client_name=x&redirect_uris=https://a/cb", Headers: form},
			{Method: "GET", Path: oaBase + "/clients"},
			{Method: "DELETE", Path: oaBase + "/clients/abc"},
			{Method: "GET", Path: oaBase + "/consents"},
			{Method: "DELETE", Path: oaBase + "/consents/abc"},
		}
		for _, req := range reqs {
			// Before authentication (no token, a garbage token) and with a
			// superuser's token alike.
			for _, tok := range []string{"", "garbage", admin.Access} {
				req.Token = tok
				r := e.Do(req)
				if r.Status != http.StatusNotFound || r.Header.Get("Location") != "" {
					t.Fatalf("%s %s (token %.8q): %d %s", req.Method, req.Path, tok, r.Status, r.Body)
				}
				expectError(t, r, http.StatusNotFound, "SYS_002", oaDisabled, "")
			}
		}
	})
}

// --- client registration ------------------------------------------------------

func TestOAuthClientRegistration(t *testing.T) {
	oaEach(t, func(t *testing.T, e *apitest.Env) {
		admin := e.Superuser(oaAdminEmail)
		bob := e.User("bob@example.com")
		valid := func() url.Values {
			return url.Values{"client_name": {"Inspector"}, "redirect_uris": {oaRedirect}, "client_type": {"confidential"}}
		}
		clients := func() int { return e.Count(`SELECT COUNT(*) FROM oauth_clients`) }

		// Who may register.
		expectError(t, oaRegister(e, bob.Access, valid()), http.StatusForbidden, "AUTH_004", "Not enough permissions", "")
		oaRegister(e, "", valid()).Expect(t, http.StatusUnauthorized, "AUTH_006")
		if clients() != 0 {
			t.Fatal("a refused registration created a client")
		}

		// A confidential client gets its secret once, stored as a digest.
		f := valid()
		f.Set("redirect_uris", " https://client.example.com/cb , http://127.0.0.1:8080/cb,http://[::1]/cb,, http://localhost:3000/cb ")
		f.Set("scopes", "openid email read:users email")
		f.Set("client_description", "Connects things")
		r := oaRegister(e, admin.Access, f).Expect(t, http.StatusOK, "")
		m := r.JSON(t)
		secret, _ := m["client_secret"].(string)
		id, _ := m["client_id"].(string)
		if len(id) < 43 || len(secret) < 43 || m["client_type"] != "confidential" || m["client_name"] != "Inspector" ||
			m["warning"] != "Store the client_secret securely! It will not be shown again." {
			t.Fatalf("registration: %s", r.Body)
		}
		if got := fmt.Sprint(m["redirect_uris"]); got != "[https://client.example.com/cb http://127.0.0.1:8080/cb http://[::1]/cb http://localhost:3000/cb]" {
			t.Fatalf("redirect_uris %s", got)
		}
		if got := fmt.Sprint(m["allowed_scopes"]); got != "[email openid read:users]" {
			t.Fatalf("allowed_scopes %s", got)
		}
		var hash string
		if err := e.App.Store.DB().QueryRowContext(context.Background(), `SELECT client_secret_hash FROM oauth_clients WHERE client_id = $1`, id).Scan(&hash); err != nil {
			t.Fatal(err)
		}
		if hash == secret || strings.Contains(hash, secret) || !strings.HasPrefix(hash, "sha256:") || hash != oauth.HashSecret(secret) {
			t.Fatalf("stored secret hash %q", hash)
		}

		// A public client: no secret, default scopes.
		pf := url.Values{"client_name": {"CLI"}, "redirect_uris": {"http://127.0.0.1:6276/oauth/callback"}}
		r = oaRegister(e, admin.Access, pf).Expect(t, http.StatusOK, "")
		pm := r.JSON(t)
		if _, ok := pm["client_secret"]; ok || pm["client_type"] != "public" || pm["warning"] != nil {
			t.Fatalf("public registration: %s", r.Body)
		}
		if got := fmt.Sprint(pm["allowed_scopes"]); got != "[email openid profile]" {
			t.Fatalf("default scopes %s", got)
		}
		var nullHash *string
		_ = e.App.Store.DB().QueryRowContext(context.Background(), `SELECT client_secret_hash FROM oauth_clients WHERE client_id = $1`, pm["client_id"]).Scan(&nullHash)
		if nullHash != nil {
			t.Fatalf("public client has a secret hash %q", *nullHash)
		}

		// Refusals: 422 with the field (fix 20: never a 500), nothing stored.
		before := clients()
		for _, tc := range []struct {
			name  string
			set   map[string]string
			field string
		}{
			{"javascript", map[string]string{"redirect_uris": "javascript:alert(document.cookie)"}, "redirect_uris"},
			{"data", map[string]string{"redirect_uris": "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=="}, "redirect_uris"},
			{"relative", map[string]string{"redirect_uris": "/callback"}, "redirect_uris"},
			{"scheme-relative", map[string]string{"redirect_uris": "//client.example.com/cb"}, "redirect_uris"},
			{"fragment", map[string]string{"redirect_uris": "https://client.example.com/cb#token"}, "redirect_uris"},
			{"userinfo", map[string]string{"redirect_uris": "https://user:pw@client.example.com/cb"}, "redirect_uris"},
			{"plain http", map[string]string{"redirect_uris": "http://client.example.com/cb"}, "redirect_uris"},
			{"one bad among good", map[string]string{"redirect_uris": oaRedirect + ",http://evil.example/cb"}, "redirect_uris"},
			{"unknown scope", map[string]string{"scopes": "openid superpowers"}, "scopes"},
			{"bad client_type", map[string]string{"client_type": "superclient"}, "client_type"},
			{"client_type case", map[string]string{"client_type": "Confidential"}, "client_type"},
			{"long name", map[string]string{"client_name": strings.Repeat("n", 256)}, "client_name"},
			{"missing name", map[string]string{"client_name": ""}, "client_name"},
			{"blank name", map[string]string{"client_name": "   "}, "client_name"},
			{"control in name", map[string]string{"client_name": "a\x00b"}, "client_name"},
			{"bad mcp_server_url", map[string]string{"mcp_server_url": "not a url"}, "mcp_server_url"},
		} {
			f := valid()
			for k, v := range tc.set {
				f.Set(k, v)
			}
			r := oaRegister(e, admin.Access, f)
			if r.Status != http.StatusUnprocessableEntity {
				t.Fatalf("%s: status %d, want 422; %s", tc.name, r.Status, r.Body)
			}
			if _, ok := fieldErrors(t, r)[tc.field]; !ok {
				t.Fatalf("%s: no error for field %s: %s", tc.name, tc.field, r.Body)
			}
		}
		noURIs := valid()
		noURIs.Del("redirect_uris")
		if r := oaRegister(e, admin.Access, noURIs); r.Status != http.StatusUnprocessableEntity {
			t.Fatalf("missing redirect_uris: %d %s", r.Status, r.Body)
		}
		for _, empty := range []string{"", " , ,", ","} {
			f := valid()
			f.Set("redirect_uris", empty)
			expectError(t, oaRegister(e, admin.Access, f), http.StatusBadRequest, "VAL_006", "At least one redirect_uri is required", "")
		}
		if n := clients(); n != before {
			t.Fatalf("refused registrations created %d clients", n-before)
		}
		// A name of exactly 255 characters is fine.
		f = valid()
		f.Set("client_name", strings.Repeat("é", 255))
		oaRegister(e, admin.Access, f).Expect(t, http.StatusOK, "")
	})
}

func TestOAuthClientListAndDelete(t *testing.T) {
	oaEach(t, func(t *testing.T, e *apitest.Env) {
		s := oaStart(t, e)
		third := oaNewClient(t, e, s.admin.Access, oauth.Confidential, "")

		e.Get(oaBase+"/clients", s.alice.Access).Expect(t, http.StatusForbidden, "AUTH_004")
		var list []map[string]any
		e.Get(oaBase+"/clients", s.admin.Access).Expect(t, http.StatusOK, "").Decode(t, &list)
		var ids []string
		for _, c := range list {
			ids = append(ids, c["client_id"].(string))
			for _, k := range []string{"client_name", "client_description", "redirect_uris", "allowed_scopes", "id", "client_id", "client_type", "is_active", "created_at"} {
				if _, ok := c[k]; !ok {
					t.Fatalf("list item lacks %s: %v", k, c)
				}
			}
			if _, ok := c["client_secret"]; ok {
				t.Fatal("the list shows a secret")
			}
		}
		if !slices.Equal(ids, []string{third.ID, s.pub.ID, s.conf.ID}) {
			t.Fatalf("clients not newest first: %v", ids)
		}

		// A client with a grant, a code and a consent.
		tok := oaFlow(t, e, s.conf, s.alice.Access, url.Values{"scope": {"openid"}})
		_, challenge := oaPKCE()
		oaCode(t, e, s.alice.Access, oaParams(s.conf, challenge, nil))
		otherTok := oaFlow(t, e, third, s.alice.Access, url.Values{"scope": {"openid"}})

		e.Delete(oaBase+"/clients/"+s.conf.ID, s.alice.Access).Expect(t, http.StatusForbidden, "AUTH_004")
		e.Delete(oaBase+"/clients/"+s.conf.ID, s.admin.Access).Expect(t, http.StatusNoContent, "")
		for _, table := range []string{"oauth_authorization_codes", "oauth_provider_refresh_tokens", "oauth_consents"} {
			if n := e.Count(`SELECT COUNT(*) FROM `+table+` WHERE client_id = $1`, s.conf.ID); n != 0 {
				t.Fatalf("%s keeps %d rows of the deleted client", table, n)
			}
			if n := e.Count(`SELECT COUNT(*) FROM `+table+` WHERE client_id = $1`, third.ID); n == 0 {
				t.Fatalf("%s lost the other client's rows", table)
			}
		}
		if oaAccessWorks(t, e, tok.AccessToken) {
			t.Fatal("an access token of a deleted client still works")
		}
		if !oaAccessWorks(t, e, otherTok.AccessToken) {
			t.Fatal("another client's token stopped working")
		}
		oaErr(t, oaRefresh(e, s.conf, tok.RefreshToken, nil), http.StatusUnauthorized, "invalid_client", "")
		expectError(t, e.Delete(oaBase+"/clients/"+s.conf.ID, s.admin.Access), http.StatusNotFound, "SYS_002", "Client not found", "")
		expectError(t, e.Delete(oaBase+"/clients/no-such-client", s.admin.Access), http.StatusNotFound, "SYS_002", "Client not found", "")
		e.Get(oaBase+"/clients", s.admin.Access).Expect(t, http.StatusOK, "").Decode(t, &list)
		if len(list) != 2 {
			t.Fatalf("%d clients listed after the delete", len(list))
		}
		// An inactive client is unknown: not listed, not deletable.
		e.Exec(`UPDATE oauth_clients SET is_active = FALSE WHERE client_id = $1`, third.ID)
		e.Get(oaBase+"/clients", s.admin.Access).Expect(t, http.StatusOK, "").Decode(t, &list)
		if len(list) != 1 || list[0]["client_id"] != s.pub.ID {
			t.Fatalf("list with an inactive client: %v", list)
		}
		expectError(t, e.Delete(oaBase+"/clients/"+third.ID, s.admin.Access), http.StatusNotFound, "SYS_002", "Client not found", "")
	})
}

// --- the authorization endpoint ----------------------------------------------

// RFC 9700 §4.11 / E.2: an unknown client or an unregistered redirect URI is
// shown to the user and never redirected to (no open redirector).
func TestOAuthAuthorizeNeverRedirectsToUnverifiedURIs(t *testing.T) {
	oaEach(t, func(t *testing.T, e *apitest.Env) {
		s := oaStart(t, e)
		_, challenge := oaPKCE()
		for _, tc := range []struct {
			name  string
			extra url.Values
			msg   string
		}{
			{"unregistered", url.Values{"redirect_uri": {"https://evil.example.com/callback"}}, "Invalid redirect_uri"},
			{"prefix", url.Values{"redirect_uri": {oaRedirect + "/more"}}, "Invalid redirect_uri"},
			{"path trick", url.Values{"redirect_uri": {"https://client.example.com/callback/../evil"}}, "Invalid redirect_uri"},
			{"extra query", url.Values{"redirect_uri": {oaRedirect + "?next=https://evil.example.com"}}, "Invalid redirect_uri"},
			{"fragment", url.Values{"redirect_uri": {oaRedirect + "#x"}}, "Invalid redirect_uri"},
			{"other host", url.Values{"redirect_uri": {"https://client.example.com.evil.example/callback"}}, "Invalid redirect_uri"},
			{"userinfo", url.Values{"redirect_uri": {"https://client.example.com@evil.example/callback"}}, "Invalid redirect_uri"},
			{"http", url.Values{"redirect_uri": {"http://client.example.com/callback"}}, "Invalid redirect_uri"},
			{"missing", url.Values{"redirect_uri": nil}, "Invalid redirect_uri"},
			{"javascript", url.Values{"redirect_uri": {"javascript:alert(1)"}}, "Invalid redirect_uri"},
			// Other errors do not turn an unverified URI into a redirect.
			{"implicit", url.Values{"redirect_uri": {"https://evil.example.com/cb"}, "response_type": {"token"}}, "Invalid redirect_uri"},
			{"bad scope", url.Values{"redirect_uri": {"https://evil.example.com/cb"}, "scope": {"admin"}}, "Invalid redirect_uri"},
			{"unknown client", url.Values{"client_id": {"no-such-client"}}, "Unknown client_id"},
			{"missing client", url.Values{"client_id": nil}, "client_id"},
			{"another client's URI", url.Values{"redirect_uri": {s.pub.Redirect}}, "Invalid redirect_uri"},
		} {
			v := oaParams(s.conf, challenge, tc.extra)
			for _, bearer := range []string{"", s.alice.Access} {
				r := oaAuthorize(e, bearer, v)
				if r.Header.Get("Location") != "" || r.Status/100 == 3 {
					t.Fatalf("%s: redirected to %q", tc.name, r.Header.Get("Location"))
				}
				if r.Status != http.StatusBadRequest {
					t.Errorf("%s: status %d, want 400; %s", tc.name, r.Status, r.Body)
					continue
				}
				_, msg, _ := r.ErrorCode(t)
				if !strings.Contains(msg, tc.msg) {
					t.Errorf("%s: message %q, want it to mention %q", tc.name, msg, tc.msg)
				}
			}
			// A browser gets an HTML page, still no redirect.
			r := e.Do(apitest.Request{Method: "GET", Path: oaBase + "/authorize?" + v.Encode(), Headers: map[string]string{"Accept": "text/html,application/xhtml+xml"}})
			if r.Header.Get("Location") != "" || r.Status != http.StatusBadRequest || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") ||
				!strings.Contains(string(r.Body), "<html") {
				t.Errorf("%s (browser): %d %q %s", tc.name, r.Status, r.Header.Get("Content-Type"), r.Body)
			}
			if strings.Contains(string(r.Body), "<script") {
				t.Errorf("%s: error page carries a script", tc.name)
			}
		}
		// A deleted or deactivated client is unknown.
		e.Exec(`UPDATE oauth_clients SET is_active = FALSE WHERE client_id = $1`, s.conf.ID)
		r := oaAuthorize(e, s.alice.Access, oaParams(s.conf, challenge, nil))
		if r.Header.Get("Location") != "" || r.Status != http.StatusBadRequest {
			t.Fatalf("inactive client: %d %q", r.Status, r.Header.Get("Location"))
		}
	})
}

// Once client and redirect URI are verified, every error goes back to the
// client with error, error_description, state and iss (RFC 6749 §4.1.2.1,
// RFC 9207).
func TestOAuthAuthorizeErrorsGoBackToTheClient(t *testing.T) {
	oaEach(t, func(t *testing.T, e *apitest.Env) {
		s := oaStart(t, e)
		_, challenge := oaPKCE()
		for _, tc := range []struct {
			name   string
			client oaClient
			extra  url.Values
			code   string
			desc   string
		}{
			{"implicit", s.conf, url.Values{"response_type": {"token"}}, "unsupported_response_type", "code"},
			{"hybrid", s.conf, url.Values{"response_type": {"code id_token"}}, "unsupported_response_type", "code"},
			{"plain PKCE", s.pub, url.Values{"code_challenge_method": {"plain"}}, "invalid_request", "S256"},
			{"plain PKCE (confidential)", s.conf, url.Values{"code_challenge_method": {"plain"}}, "invalid_request", "S256"},
			{"challenge without method", s.pub, url.Values{"code_challenge_method": nil}, "invalid_request", "S256"},
			{"method without challenge", s.pub, url.Values{"code_challenge": nil}, "invalid_request", "PKCE with S256 is required for public clients"},
			{"public without PKCE", s.pub, url.Values{"code_challenge": nil, "code_challenge_method": nil}, "invalid_request", "PKCE with S256 is required for public clients"},
			{"short challenge", s.pub, url.Values{"code_challenge": {"abc"}}, "invalid_request", "code_challenge"},
			{"challenge with padding", s.pub, url.Values{"code_challenge": {challenge[:42] + "="}}, "invalid_request", "code_challenge"},
			{"challenge not base64url", s.pub, url.Values{"code_challenge": {strings.Repeat("+", 43)}}, "invalid_request", "code_challenge"},
			{"challenge too long", s.pub, url.Values{"code_challenge": {challenge + "A"}}, "invalid_request", "code_challenge"},
			{"no allowed scope", s.conf, url.Values{"scope": {"admin write:users"}}, "invalid_scope", "None of the requested scopes are allowed for this client"},
			{"unknown scopes only", s.pub, url.Values{"scope": {"foo bar"}}, "invalid_scope", "None of the requested scopes"},
			{"bad resource", s.conf, url.Values{"resource": {"not-a-uri"}}, "invalid_target", "resource"},
			{"resource with fragment", s.conf, url.Values{"resource": {"https://mcp.example.com/mcp#x"}}, "invalid_target", "resource"},
			{"bad prompt", s.conf, url.Values{"prompt": {"select_account"}}, "invalid_request", "prompt"},
		} {
			for _, state := range []string{"", "a b&c=d/é?#%"} {
				v := oaParams(tc.client, challenge, tc.extra)
				if state == "" {
					v.Del("state")
				} else {
					v.Set("state", state)
				}
				for _, bearer := range []string{"", s.alice.Access} {
					r := oaAuthorize(e, bearer, v)
					if r.Status != http.StatusFound {
						t.Fatalf("%s: status %d, want 302; %s", tc.name, r.Status, r.Body)
					}
					oaWantRedirectError(t, e, r, http.StatusFound, v, tc.code, tc.desc)
				}
			}
		}
	})
}

// OAuth 2.1 §7.12.2, RFC 9700 §4.11.2 (MCP checklist row 9): anyone can
// create a client with any redirect URI, by dynamic registration (open by
// default) or by publishing a metadata document, so the authorization
// errors of such a client are shown to the user, not redirected, until the
// user has consented to that client. Clients an administrator registered
// get theirs at once (TestOAuthAuthorizeErrorsGoBackToTheClient).
func TestOAuthAuthorizeSelfRegisteredClientsGetNoErrorsBeforeConsent(t *testing.T) {
	oaEach(t, func(t *testing.T, e *apitest.Env) {
		s := oaStart(t, e)
		bob := e.User("bob@example.com")
		cs := newCIMDServer(t)
		cs.trust(e)
		reg := regPost(e, regPath, "", map[string]any{"redirect_uris": []string{"https://evil.example/cb"},
			"token_endpoint_auth_method": "none", "client_name": "Totally Legit"}).Expect(t, http.StatusCreated, "").JSON(t)
		clients := map[string]oaClient{
			"dynamic":           {ID: reg["client_id"].(string), Redirect: "https://evil.example/cb"},
			"metadata document": {ID: cs.URL + "/good.json", Redirect: "http://127.0.0.1:7777/cb"},
		}
		_, challenge := oaPKCE()
		// loginOrConsent is the answer to prompt=none: login_required
		// anonymously, consent_required for a user without consent to the
		// requested scope.
		const loginOrConsent = "login_required|consent_required"
		cases := []struct {
			name  string
			extra url.Values
			code  string
		}{
			{"implicit", url.Values{"response_type": {"token"}}, "unsupported_response_type"},
			{"plain PKCE", url.Values{"code_challenge_method": {"plain"}}, "invalid_request"},
			{"public without PKCE", url.Values{"code_challenge": nil, "code_challenge_method": nil}, "invalid_request"},
			{"unknown scopes only", url.Values{"scope": {"foo"}}, "invalid_scope"},
			{"resource not served", url.Values{"resource": {"https://elsewhere.example/api"}}, "invalid_target"},
			{"bad prompt", url.Values{"prompt": {"select_account"}}, "invalid_request"},
			{"prompt=none", url.Values{"prompt": {"none"}, "scope": {"openid write:users"}}, loginOrConsent},
		}
		want := func(code, bearer string) string {
			if code != loginOrConsent {
				return code
			}
			if bearer == "" {
				return "login_required"
			}
			return "consent_required"
		}
		// shown checks that the error is on the error page (the envelope for
		// API callers, HTML for browsers), with no redirect anywhere.
		shown := func(t *testing.T, c oaClient, v url.Values, bearer, code string) {
			t.Helper()
			r := oaAuthorize(e, bearer, v)
			if r.Status != http.StatusBadRequest || r.Header.Get("Location") != "" {
				t.Fatalf("status %d, Location %q, want 400 and no redirect; %s", r.Status, r.Header.Get("Location"), r.Body)
			}
			if _, msg, _ := r.ErrorCode(t); !strings.HasPrefix(msg, code+":") {
				t.Fatalf("error %q, want %s", msg, code)
			}
			r = e.Do(apitest.Request{Method: "GET", Path: oaBase + "/authorize?" + v.Encode(), Token: bearer,
				Headers: map[string]string{"Accept": "text/html"}})
			host, _ := url.Parse(c.Redirect)
			if r.Status != http.StatusBadRequest || r.Header.Get("Location") != "" || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") ||
				!strings.Contains(string(r.Body), code) || !strings.Contains(string(r.Body), "not sent back to the application at "+host.Host) {
				t.Fatalf("browser: %d %q %q:\n%s", r.Status, r.Header.Get("Location"), r.Header.Get("Content-Type"), r.Body)
			}
		}
		for _, name := range []string{"dynamic", "metadata document"} {
			c := clients[name]
			t.Run(name, func(t *testing.T) {
				// The repro of the audit: nobody signed in, and signed in
				// without consent.
				for _, tc := range cases {
					for _, bearer := range []string{"", s.alice.Access} {
						t.Run(tc.name, func(t *testing.T) { shown(t, c, oaParams(c, challenge, tc.extra), bearer, want(tc.code, bearer)) })
					}
				}
				// The consent API refuses the same way before a consent…
				bad := oaParams(c, challenge, url.Values{"scope": {"foo"}})
				if r := oaConsent(e, s.alice.Access, bad, "true"); r.Status != http.StatusBadRequest || r.Header.Get("Location") != "" {
					t.Fatalf("consent API without consent: %d %q", r.Status, r.Header.Get("Location"))
				}
				// …but the user's own answer goes back: a Deny on the consent
				// page is an interaction with a page that named the host.
				v := oaParams(c, challenge, url.Values{"scope": {"read:users"}})
				oaWantRedirectError(t, e, oaConsent(e, bob.Access, v, "false"), http.StatusSeeOther, v, "access_denied", "")

				// Once alice has consented, her errors go back to the client,
				// with state and iss (RFC 9207), as for any client.
				oaFlow(t, e, c, s.alice.Access, url.Values{"scope": {"read:users"}})
				for _, tc := range cases {
					t.Run(tc.name+" after consent", func(t *testing.T) {
						v := oaParams(c, challenge, tc.extra)
						oaWantRedirectError(t, e, oaAuthorize(e, s.alice.Access, v), http.StatusFound, v, want(tc.code, s.alice.Access), "")
						// Nobody signed in, or bob (who only denied), still see
						// the page.
						shown(t, c, v, "", want(tc.code, ""))
						shown(t, c, v, bob.Access, want(tc.code, bob.Access))
					})
				}
				oaWantRedirectError(t, e, oaConsent(e, s.alice.Access, bad, "true"), http.StatusSeeOther, bad, "invalid_scope", "")
			})
		}
	}, apitest.WithEnv("OAUTH_CIMD_ALLOW_PRIVATE", "true"))
}

func TestOAuthRedirectURIRules(t *testing.T) {
	oaEach(t, func(t *testing.T, e *apitest.Env) {
		s := oaStart(t, e)
		withQuery := oaNewClient(t, e, s.admin.Access, oauth.Confidential, "", "https://client.example.com/cb?tenant=acme&mode=x")
		loop := oaNewClient(t, e, s.admin.Access, oauth.Public, "",
			"http://127.0.0.1:8080/callback", "http://[::1]:8080/callback", "http://localhost:8080/callback")

		// A registered query is kept, the parameters are added to it.
		verifier, challenge := oaPKCE()
		v := oaParams(withQuery, challenge, nil)
		code := oaCode(t, e, s.alice.Access, v)
		u := oaLocation(t, oaAuthorize(e, s.alice.Access, v), http.StatusFound)
		q := u.Query()
		if q.Get("tenant") != "acme" || q.Get("mode") != "x" || q.Get("code") == "" || len(q["tenant"]) != 1 {
			t.Fatalf("redirect with a registered query: %s", u)
		}
		oaOK(t, oaExchange(e, withQuery, code, verifier, nil))
		// Errors too.
		ev := oaParams(withQuery, challenge, url.Values{"response_type": {"token"}})
		r := oaAuthorize(e, s.alice.Access, ev)
		oaWantRedirectError(t, e, r, http.StatusFound, ev, "unsupported_response_type", "")
		if eq := oaLocation(t, r, http.StatusFound).Query(); eq.Get("tenant") != "acme" || eq.Get("mode") != "x" {
			t.Fatalf("error redirect lost the registered query: %s", r.Header.Get("Location"))
		}

		// Loopback IP literals match with any port (RFC 8252 §7.3); the code
		// is bound to the URI actually used.
		for _, redirect := range []string{"http://127.0.0.1:53124/callback", "http://127.0.0.1/callback", "http://[::1]:49152/callback", "http://127.0.0.1:8080/callback"} {
			c := loop
			c.Redirect = redirect
			verifier, challenge := oaPKCE()
			code := oaCode(t, e, s.alice.Access, oaParams(c, challenge, nil))
			if redirect != "http://127.0.0.1:8080/callback" {
				reg := c
				reg.Redirect = "http://127.0.0.1:8080/callback"
				oaErr(t, oaExchange(e, reg, code, verifier, nil), http.StatusBadRequest, "invalid_grant", "redirect_uri mismatch")
			}
			oaOK(t, oaExchange(e, c, code, verifier, nil))
		}
		// localhost is a name: exact string, port included; other paths,
		// hosts and schemes never match.
		for _, redirect := range []string{"http://localhost:9999/callback", "http://localhost/callback", "http://127.0.0.1:53124/other",
			"https://127.0.0.1:8080/callback", "http://127.0.0.2:8080/callback", "http://127.0.0.1:8080/callback?x=1", "http://[::1]:8080/other"} {
			c := loop
			c.Redirect = redirect
			r := oaAuthorize(e, s.alice.Access, oaParams(c, challenge, nil))
			if r.Status != http.StatusBadRequest || r.Header.Get("Location") != "" {
				t.Fatalf("%s: %d %q", redirect, r.Status, r.Header.Get("Location"))
			}
		}
		c := loop
		c.Redirect = "http://localhost:8080/callback"
		oaCode(t, e, s.alice.Access, oaParams(c, challenge, nil))
	})
}

// Fix 27 as the reference states it: "should append with &". The
// registered query (here in non-alphabetical order) is kept as registered.
func TestOAuthRedirectKeepsRegisteredQueryVerbatim(t *testing.T) {
	oaEach(t, func(t *testing.T, e *apitest.Env) {
		s := oaStart(t, e)
		const reg = "https://client.example.com/cb?tenant=acme&mode=x"
		c := oaNewClient(t, e, s.admin.Access, oauth.Confidential, "", reg)
		_, challenge := oaPKCE()
		v := oaParams(c, challenge, nil)
		oaCode(t, e, s.alice.Access, v)
		loc := oaAuthorize(e, s.alice.Access, v).Header.Get("Location")
		if !strings.HasPrefix(loc, reg+"&") {
			t.Fatalf("GET /authorize redirected to %s; want the registered URI %s kept as is, followed by &code=…&iss=…&state=…", loc, reg)
		}
	})
}

func TestOAuthPromptAndConsent(t *testing.T) {
	oaEach(t, func(t *testing.T, e *apitest.Env) {
		s := oaStart(t, e)
		verifier, challenge := oaPKCE()
		base := func(extra url.Values) url.Values { return oaParams(s.conf, challenge, extra) }

		// Anonymous: prompt=none answers login_required; otherwise the user
		// is sent to log in (not to the client, no code).
		v := base(url.Values{"prompt": {"none"}})
		oaWantRedirectError(t, e, oaAuthorize(e, "", v), http.StatusFound, v, "login_required", "")
		u := oaLocation(t, oaAuthorize(e, "", base(nil)), http.StatusFound)
		if oaAtClient(u, oaRedirect) || u.Query().Has("code") {
			t.Fatalf("anonymous authorize went to %s", u)
		}
		// A first-party token of an inactive user does not log in.
		mallory := e.User("mallory@example.com")
		e.Exec(`UPDATE users SET is_active = FALSE WHERE id = $1`, mallory.UserID)
		v = base(url.Values{"prompt": {"none"}})
		oaWantRedirectError(t, e, oaAuthorize(e, mallory.Access, v), http.StatusFound, v, "login_required", "")

		// Logged in without consent: prompt=none answers consent_required,
		// otherwise the consent page.
		v = base(url.Values{"prompt": {"none"}, "scope": {"openid profile"}})
		oaWantRedirectError(t, e, oaAuthorize(e, s.alice.Access, v), http.StatusFound, v, "consent_required", "")
		v = base(url.Values{"scope": {"openid profile"}})
		u = oaLocation(t, oaAuthorize(e, s.alice.Access, v), http.StatusFound)
		if u.Path != "/oauth/consent" || u.Query().Get("client_id") != s.conf.ID || u.Query().Get("scope") != "openid profile" ||
			u.Query().Get("state") != v.Get("state") || u.Query().Has("code") {
			t.Fatalf("consent page URL %s", u)
		}
		if n := e.Count(`SELECT COUNT(*) FROM oauth_authorization_codes`); n != 0 {
			t.Fatalf("%d codes issued before consent", n)
		}

		// Denied: access_denied after a 303, and no consent stored.
		oaWantRedirectError(t, e, oaConsent(e, s.alice.Access, v, "false"), http.StatusSeeOther, v, "access_denied", "User denied authorization")
		if n := e.Count(`SELECT COUNT(*) FROM oauth_consents`); n != 0 {
			t.Fatal("a denial stored a consent")
		}
		// Approved: a code after a 303 (RFC 9700 §4.12), bound to the scopes.
		q := oaBackAtClient(t, e, oaLocation(t, oaConsent(e, s.alice.Access, v, "true"), http.StatusSeeOther), v)
		tok := oaOK(t, oaExchange(e, s.conf, q.Get("code"), verifier, nil))
		if tok.Scope != "openid profile" {
			t.Fatalf("scope %q", tok.Scope)
		}

		// Remembered: the same scopes (or fewer) give a code at once, also
		// with prompt=none.
		for _, scope := range []string{"openid profile", "profile openid", "openid"} {
			for _, prompt := range []string{"", "none"} {
				v := base(url.Values{"scope": {scope}, "prompt": {prompt}})
				if prompt == "" {
					v.Del("prompt")
				}
				q := oaBackAtClient(t, e, oaLocation(t, oaAuthorize(e, s.alice.Access, v), http.StatusFound), v)
				if q.Get("code") == "" {
					t.Fatalf("scope %q prompt %q: no code directly: %v", scope, prompt, q)
				}
			}
		}
		// prompt=consent asks again.
		if u := oaLocation(t, oaAuthorize(e, s.alice.Access, base(url.Values{"scope": {"openid"}, "prompt": {"consent"}})), http.StatusFound); u.Path != "/oauth/consent" {
			t.Fatalf("prompt=consent went to %s", u)
		}
		// A new scope asks again; approving adds it to the consent.
		v = base(url.Values{"scope": {"openid email"}})
		if u := oaLocation(t, oaAuthorize(e, s.alice.Access, v), http.StatusFound); u.Path != "/oauth/consent" {
			t.Fatalf("new scope went to %s", u)
		}
		oaLocation(t, oaConsent(e, s.alice.Access, v, "true"), http.StatusSeeOther)
		var consents []map[string]any
		e.Get(oaBase+"/consents", s.alice.Access).Expect(t, http.StatusOK, "").Decode(t, &consents)
		if len(consents) != 1 || fmt.Sprint(consents[0]["granted_scopes"]) != "[email openid profile]" {
			t.Fatalf("consent after a second approval: %v", consents)
		}
		// Narrowed by the user on the consent form: the code carries only
		// what was approved, the consent only grows.
		v = base(url.Values{"scope": {"openid profile email"}, "prompt": {"consent"}})
		f := url.Values{}
		for k, vs := range v {
			f[k] = vs
		}
		f.Set("scope", "email")
		q = oaBackAtClient(t, e, oaLocation(t, oaConsent(e, s.alice.Access, f, "true"), http.StatusSeeOther), v)
		if tok := oaOK(t, oaExchange(e, s.conf, q.Get("code"), verifier, nil)); tok.Scope != "email" || tok.IDToken != "" {
			t.Fatalf("narrowed grant: scope %q id_token %v", tok.Scope, tok.IDToken != "")
		}
		// Another user has no consent.
		bob := e.User("bob@example.com")
		if u := oaLocation(t, oaAuthorize(e, bob.Access, base(nil)), http.StatusFound); u.Path != "/oauth/consent" {
			t.Fatalf("another user skipped consent: %s", u)
		}

		// The consent form: a user is required, and approved must be a boolean.
		oaConsent(e, "", v, "true").Expect(t, http.StatusUnauthorized, "AUTH_006")
		oaConsent(e, "garbage", v, "true").Expect(t, http.StatusUnauthorized, "AUTH_006")
		if r := oaConsent(e, s.alice.Access, v, "maybe"); r.Status != http.StatusUnprocessableEntity {
			t.Fatalf("approved=maybe: %d %s", r.Status, r.Body)
		}
		// …and it never redirects to an unverified URI either.
		bad := base(url.Values{"redirect_uri": {"https://evil.example.com/cb"}})
		if r := oaConsent(e, s.alice.Access, bad, "true"); r.Status != http.StatusBadRequest || r.Header.Get("Location") != "" {
			t.Fatalf("consent with an unregistered redirect_uri: %d %q", r.Status, r.Header.Get("Location"))
		}
		bad = base(url.Values{"client_id": {"nope"}})
		if r := oaConsent(e, s.alice.Access, bad, "false"); r.Status/100 == 3 {
			t.Fatalf("consent denial for an unknown client redirected to %q", r.Header.Get("Location"))
		}
		// JSON clients of the consent API can ask for the URL instead.
		r := oaPost(e, oaBase+"/authorize/consent", s.alice.Access, oaMerge(url.Values{"approved": {"true"}}, base(nil)), map[string]string{"Accept": "application/json"})
		if r.Status != http.StatusOK || !strings.HasPrefix(fmt.Sprint(r.JSON(t)["redirect_url"]), oaRedirect+"?") {
			t.Fatalf("consent with Accept: application/json: %d %s", r.Status, r.Body)
		}
	})
}

// After a POST the browser is sent on with 303 (RFC 9700 §4.12; issue: "303
// after POSTs"), for errors as for codes.
func TestOAuthConsentErrorsAnswer303(t *testing.T) {
	oaEach(t, func(t *testing.T, e *apitest.Env) {
		s := oaStart(t, e)
		_, challenge := oaPKCE()
		for _, tc := range []struct {
			name   string
			client oaClient
			extra  url.Values
			code   string
		}{
			{"scope outside the client's", s.conf, url.Values{"scope": {"admin"}}, "invalid_scope"},
			{"public client without PKCE", s.pub, url.Values{"code_challenge": nil, "code_challenge_method": nil}, "invalid_request"},
			{"plain PKCE", s.pub, url.Values{"code_challenge_method": {"plain"}}, "invalid_request"},
		} {
			v := oaParams(tc.client, challenge, tc.extra)
			r := oaConsent(e, s.alice.Access, v, "true")
			if r.Status != http.StatusSeeOther {
				t.Errorf("%s: POST /authorize/consent answered %d to %s, want 303 (a code answers 303)", tc.name, r.Status, r.Header.Get("Location"))
				continue
			}
			oaWantRedirectError(t, e, r, http.StatusSeeOther, v, tc.code, "")
		}
	})
}

func TestOAuthCodeLifetimeAndStorage(t *testing.T) {
	check := func(want time.Duration) func(t *testing.T, e *apitest.Env) {
		return func(t *testing.T, e *apitest.Env) {
			s := oaStart(t, e)
			_, challenge := oaPKCE()
			code := oaCode(t, e, s.alice.Access, oaParams(s.conf, challenge, url.Values{"nonce": {"nonce-1"}, "resource": {"HTTPS://MCP.example.com/mcp/"}}))
			if n := e.Count(`SELECT COUNT(*) FROM oauth_authorization_codes WHERE code_hash = $1`, code); n != 0 {
				t.Fatal("the code is stored in clear")
			}
			c, err := e.App.Store.CodeByHash(context.Background(), token.HashSecret(code))
			if err != nil {
				t.Fatal(err)
			}
			if got := c.ExpiresAt.Sub(c.CreatedAt); got != want {
				t.Fatalf("code lives %v, want %v", got, want)
			}
			if c.ClientID != s.conf.ID || c.UserID != s.alice.UserID || c.RedirectURI != oaRedirect || c.CodeChallenge != challenge ||
				c.CodeChallengeMethod != "S256" || c.Nonce != "nonce-1" || c.Resource != "https://mcp.example.com/mcp" || c.Scope != "email openid profile" {
				t.Fatalf("code bound to %+v", c)
			}
		}
	}
	t.Run("default", func(t *testing.T) { oaEach(t, check(10*time.Minute)) })
	t.Run("configured", func(t *testing.T) {
		oaEach(t, check(90*time.Second), apitest.WithEnv("OAUTH_CODE_EXPIRE_SECONDS", "90"))
	})
}

// --- the token endpoint --------------------------------------------------------

func TestOAuthTokenEndpointRequestErrors(t *testing.T) {
	oaEach(t, func(t *testing.T, e *apitest.Env) {
		s := oaStart(t, e)
		path := oaBase + "/token"
		client := url.Values{"client_id": {s.conf.ID}, "client_secret": {s.conf.Secret}}

		r := e.Do(apitest.Request{Method: "POST", Path: path, Body: map[string]any{"grant_type": "authorization_code", "client_id": s.conf.ID}})
		oaErr(t, r, http.StatusBadRequest, "invalid_request", "")
		r = e.Do(apitest.Request{Method: "POST", Path: path, Body: "grant_type=refresh_token", Headers: map[string]string{"Content-Type": "text/plain"}})
		oaErr(t, r, http.StatusBadRequest, "invalid_request", "")
		r = e.Do(apitest.Request{Method: "POST", Path: path, Body: "client_id=" + s.conf.ID + "&client_secret=" + s.conf.Secret + "&grant_type=refresh_token&grant_type=authorization_code&code=x", Headers: map[string]string{"Content-Type": oaFormType}})
		oaErr(t, r, http.StatusBadRequest, "invalid_request", "grant_type")
		r = e.Do(apitest.Request{Method: "POST", Path: path, Body: "grant_type=refresh_token&refresh_token=a&refresh_token=b&client_id=" + s.conf.ID, Headers: map[string]string{"Content-Type": oaFormType}})
		oaErr(t, r, http.StatusBadRequest, "invalid_request", "refresh_token")
		r = e.Do(apitest.Request{Method: "POST", Path: path, Body: "%zz=1", Headers: map[string]string{"Content-Type": oaFormType}})
		oaErr(t, r, http.StatusBadRequest, "invalid_request", "")
		oaErr(t, oaPost(e, path, "", oaMerge(url.Values{}, client), nil), http.StatusBadRequest, "invalid_request", "grant_type")
		for _, g := range []string{"password", "client_credentials", "implicit", "urn:ietf:params:oauth:grant-type:device_code", "AUTHORIZATION_CODE"} {
			f := oaMerge(url.Values{"grant_type": {g}, "username": {"alice@example.com"}, "password": {apitest.Password}}, client)
			oaErr(t, oaPost(e, path, "", f, nil), http.StatusBadRequest, "unsupported_grant_type", "")
		}
		// Method not allowed: GET carries no credentials in the query.
		if r := e.Get(path+"?grant_type=authorization_code", ""); r.Status != http.StatusMethodNotAllowed {
			t.Fatalf("GET /token: %d", r.Status)
		}

		// The code grant's own checks; none of them uses the code up.
		verifier, challenge := oaPKCE()
		code := oaCode(t, e, s.alice.Access, oaParams(s.conf, challenge, nil))
		other := oaNewClient(t, e, s.admin.Access, oauth.Confidential, "")
		oaErr(t, oaExchange(e, s.conf, "", verifier, url.Values{"code": nil}), http.StatusBadRequest, "invalid_request", "code required")
		oaErr(t, oaExchange(e, s.conf, code, verifier, url.Values{"redirect_uri": nil}), http.StatusBadRequest, "invalid_request", "redirect_uri required")
		oaErr(t, oaExchange(e, s.conf, code, verifier, url.Values{"redirect_uri": {oaRedirect + "/x"}}), http.StatusBadRequest, "invalid_grant", "redirect_uri mismatch")
		oaErr(t, oaExchange(e, s.conf, code+"x", verifier, nil), http.StatusBadRequest, "invalid_grant", "Invalid authorization code")
		oaErr(t, oaExchange(e, s.conf, "garbage", verifier, nil), http.StatusBadRequest, "invalid_grant", "Invalid authorization code")
		oaErr(t, oaExchange(e, other, code, verifier, nil), http.StatusBadRequest, "invalid_grant", "not issued to this client")
		oaErr(t, oaExchange(e, s.conf, code, verifier, url.Values{"resource": {"https://other.example.com"}}), http.StatusBadRequest, "invalid_target", "")
		tok := oaOK(t, oaExchange(e, s.conf, code, verifier, nil))
		if tok.Scope != "email openid profile" || tok.ExpiresIn != 3600 {
			t.Fatalf("tokens: %+v", tok)
		}

		// An expired code.
		code = oaCode(t, e, s.alice.Access, oaParams(s.conf, challenge, nil))
		e.Exec(`UPDATE oauth_authorization_codes SET expires_at = created_at WHERE code_hash = $1`, token.HashSecret(code))
		oaErr(t, oaExchange(e, s.conf, code, verifier, nil), http.StatusBadRequest, "invalid_grant", "expired")

		// A user deactivated between authorization and redemption.
		code = oaCode(t, e, s.alice.Access, oaParams(s.conf, challenge, nil))
		e.Exec(`UPDATE users SET is_active = FALSE WHERE id = $1`, s.alice.UserID)
		oaErr(t, oaExchange(e, s.conf, code, verifier, nil), http.StatusBadRequest, "invalid_grant", "User not found or inactive")
	})
}

func TestOAuthClientAuthentication(t *testing.T) {
	oaEach(t, func(t *testing.T, e *apitest.Env) {
		s := oaStart(t, e)
		path := oaBase + "/token"
		verifier, challenge := oaPKCE()
		newCode := func(c oaClient) string { return oaCode(t, e, s.alice.Access, oaParams(c, challenge, nil)) }
		grant := func(code string) url.Values {
			return url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {oaRedirect}, "code_verifier": {verifier}}
		}
		basic := func(id, secret string) map[string]string {
			return map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))}
		}

		// Fix 25: a wrong secret is refused before the code is looked at,
		// so the code still works with the right one.
		code := newCode(s.conf)
		for _, tc := range []struct {
			name    string
			form    url.Values
			headers map[string]string
			status  int
			err     string
		}{
			{"wrong secret (post)", url.Values{"client_id": {s.conf.ID}, "client_secret": {"wrong"}}, nil, 401, "invalid_client"},
			{"wrong secret (basic)", nil, basic(s.conf.ID, s.conf.Secret+"x"), 401, "invalid_client"},
			{"no secret", url.Values{"client_id": {s.conf.ID}}, nil, 401, "invalid_client"},
			{"empty basic secret", nil, basic(s.conf.ID, ""), 401, "invalid_client"},
			{"no client", nil, nil, 401, "invalid_client"},
			{"unknown client", url.Values{"client_id": {"nobody"}, "client_secret": {"x"}}, nil, 401, "invalid_client"},
			{"unknown client (basic)", nil, basic("nobody", "x"), 401, "invalid_client"},
			{"malformed basic", nil, map[string]string{"Authorization": "Basic !!!not-base64"}, 401, "invalid_client"},
			{"another client's secret", url.Values{"client_id": {s.conf.ID}, "client_secret": {oaNewClient(t, e, s.admin.Access, oauth.Confidential, "").Secret}}, nil, 401, "invalid_client"},
			{"basic and form disagree", url.Values{"client_id": {s.pub.ID}}, basic(s.conf.ID, s.conf.Secret), 400, "invalid_request"},
		} {
			r := oaPost(e, path, "", oaMerge(grant(code), tc.form), tc.headers)
			oaErr(t, r, tc.status, tc.err, "")
		}
		// Basic with both parts form-url-encoded (RFC 6749 §2.3.1): every
		// byte percent-encoded still names the client.
		pct := func(s string) string {
			var b strings.Builder
			for i := 0; i < len(s); i++ {
				fmt.Fprintf(&b, "%%%02X", s[i])
			}
			return b.String()
		}
		tok := oaOK(t, oaPost(e, path, "", grant(code), basic(pct(s.conf.ID), pct(s.conf.Secret))))

		// Basic alone, Basic with the same client_id in the form, and
		// client_secret_post all work.
		oaOK(t, oaPost(e, path, "", grant(newCode(s.conf)), basic(s.conf.ID, s.conf.Secret)))
		oaOK(t, oaPost(e, path, "", oaMerge(grant(newCode(s.conf)), url.Values{"client_id": {s.conf.ID}}), basic(s.conf.ID, s.conf.Secret)))
		oaOK(t, oaPost(e, path, "", oaMerge(grant(newCode(s.conf)), url.Values{"client_id": {s.conf.ID}, "client_secret": {s.conf.Secret}}), nil))

		// A public client presents its id only; a secret is refused.
		pubGrant := func(code string) url.Values {
			g := grant(code)
			g.Set("redirect_uri", s.pub.Redirect)
			return g
		}
		code = newCode(s.pub)
		oaErr(t, oaPost(e, path, "", oaMerge(pubGrant(code), url.Values{"client_id": {s.pub.ID}, "client_secret": {"anything"}}), nil), 401, "invalid_client", "")
		oaErr(t, oaPost(e, path, "", pubGrant(code), basic(s.pub.ID, "anything")), 401, "invalid_client", "")
		oaOK(t, oaPost(e, path, "", oaMerge(pubGrant(code), url.Values{"client_id": {s.pub.ID}}), nil))
		oaOK(t, oaPost(e, path, "", pubGrant(newCode(s.pub)), basic(s.pub.ID, "")))

		// Refresh authenticates the same way, before the token is used.
		oaErr(t, oaRefresh(e, oaClient{ID: s.conf.ID, Secret: "wrong"}, tok.RefreshToken, nil), 401, "invalid_client", "")
		oaErr(t, oaRefresh(e, oaClient{ID: s.conf.ID}, tok.RefreshToken, nil), 401, "invalid_client", "")
		oaOK(t, oaRefresh(e, s.conf, tok.RefreshToken, nil))

		// A deactivated client is unknown.
		code = newCode(s.conf)
		e.Exec(`UPDATE oauth_clients SET is_active = FALSE WHERE client_id = $1`, s.conf.ID)
		oaErr(t, oaExchange(e, s.conf, code, verifier, nil), 401, "invalid_client", "")
	})
}

func TestOAuthPKCE(t *testing.T) {
	oaEach(t, func(t *testing.T, e *apitest.Env) {
		s := oaStart(t, e)
		verifier, challenge := oaPKCE()
		pubParams := oaParams(s.pub, challenge, nil)

		// Public client: the verifier is required and checked; failures do
		// not use the code up.
		code := oaCode(t, e, s.alice.Access, pubParams)
		oaErr(t, oaExchange(e, s.pub, code, "", nil), 400, "invalid_grant", "code_verifier required")
		oaErr(t, oaExchange(e, s.pub, code, verifier+"x", nil), 400, "invalid_grant", "Invalid code_verifier")
		other, _ := oaPKCE()
		oaErr(t, oaExchange(e, s.pub, code, other, nil), 400, "invalid_grant", "Invalid code_verifier")
		oaErr(t, oaExchange(e, s.pub, code, challenge, nil), 400, "invalid_grant", "Invalid code_verifier")
		oaOK(t, oaExchange(e, s.pub, code, verifier, nil))

		// Confidential client with PKCE: checked as well.
		code = oaCode(t, e, s.alice.Access, oaParams(s.conf, challenge, nil))
		oaErr(t, oaExchange(e, s.conf, code, "", nil), 400, "invalid_grant", "code_verifier required")
		oaErr(t, oaExchange(e, s.conf, code, other, nil), 400, "invalid_grant", "Invalid code_verifier")
		oaOK(t, oaExchange(e, s.conf, code, verifier, nil))

		// Confidential client without PKCE: a verifier is a downgrade attempt
		// (RFC 9700 §4.8) and refused; without one it works.
		code = oaCode(t, e, s.alice.Access, oaParams(s.conf, "", nil))
		oaErr(t, oaExchange(e, s.conf, code, verifier, nil), 400, "invalid_grant", "code_challenge")
		oaOK(t, oaExchange(e, s.conf, code, "", nil))
	})
}

// RFC 9700 §4.5 / E.6: a code works once; a replay is refused and revokes
// the tokens issued from it.
func TestOAuthCodeReplayRevokesItsTokens(t *testing.T) {
	oaEach(t, func(t *testing.T, e *apitest.Env) {
		s := oaStart(t, e)
		verifier, challenge := oaPKCE()
		code := oaCode(t, e, s.alice.Access, oaParams(s.conf, challenge, url.Values{"scope": {"openid email"}}))
		tok := oaOK(t, oaExchange(e, s.conf, code, verifier, nil))
		// A second grant of the same user and client is not affected.
		keep := oaFlow(t, e, s.conf, s.alice.Access, url.Values{"scope": {"openid"}})
		if !oaAccessWorks(t, e, tok.AccessToken) || !oaActive(t, e, s.conf, tok.RefreshToken) {
			t.Fatal("fresh tokens do not work")
		}

		oaErr(t, oaExchange(e, s.conf, code, verifier, nil), 400, "invalid_grant", "Authorization code has already been used")
		if oaAccessWorks(t, e, tok.AccessToken) {
			t.Fatal("the access token of a replayed code still works at userinfo")
		}
		if oaActive(t, e, s.conf, tok.AccessToken) || oaActive(t, e, s.conf, tok.RefreshToken) {
			t.Fatal("tokens of a replayed code still introspect as active")
		}
		oaErr(t, oaRefresh(e, s.conf, tok.RefreshToken, nil), 400, "invalid_grant", "")
		if !oaAccessWorks(t, e, keep.AccessToken) || !oaActive(t, e, s.conf, keep.RefreshToken) {
			t.Fatal("a replay revoked another grant")
		}
		// Replays keep failing, also by another client.
		oaErr(t, oaExchange(e, s.conf, code, verifier, nil), 400, "invalid_grant", "already been used")
		other := oaNewClient(t, e, s.admin.Access, oauth.Confidential, "")
		oaErr(t, oaExchange(e, other, code, verifier, nil), 400, "invalid_grant", "")
	})
}

func TestOAuthCodeParallelRedemption(t *testing.T) {
	oaEach(t, func(t *testing.T, e *apitest.Env) {
		s := oaStart(t, e)
		for round := 0; round < 3; round++ {
			verifier, challenge := oaPKCE()
			code := oaCode(t, e, s.alice.Access, oaParams(s.conf, challenge, nil))
			form := oaWithClient(s.conf, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {oaRedirect}, "code_verifier": {verifier}})
			statuses, bodies := oaBurst(t, e, 8, oaBase+"/token", form)
			ok := 0
			for i, st := range statuses {
				switch {
				case st == http.StatusOK:
					ok++
				case st == http.StatusBadRequest && strings.Contains(bodies[i], `"invalid_grant"`):
				default:
					t.Fatalf("redemption answered %d: %s", st, bodies[i])
				}
			}
			if ok != 1 {
				t.Fatalf("%d of 8 parallel redemptions of one code succeeded, want exactly 1", ok)
			}
			if n := e.Count(`SELECT COUNT(*) FROM oauth_provider_refresh_tokens rt JOIN oauth_authorization_codes c ON c.id = rt.code_id WHERE c.code_hash = $1`, token.HashSecret(code)); n != 1 {
				t.Fatalf("%d refresh tokens issued from one code", n)
			}
		}
	})
}

// The losers of a parallel redemption are replays: the tokens the winner got
// from that code must end up revoked (RFC 9700 §4.5), whatever the timing.
func TestOAuthCodeParallelReplayRevokesWinner(t *testing.T) {
	oaEach(t, func(t *testing.T, e *apitest.Env) {
		s := oaStart(t, e)
		survived := 0
		const rounds = 30
		for round := 0; round < rounds; round++ {
			verifier, challenge := oaPKCE()
			code := oaCode(t, e, s.alice.Access, oaParams(s.conf, challenge, nil))
			form := oaWithClient(s.conf, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {oaRedirect}, "code_verifier": {verifier}})
			statuses, bodies := oaBurst(t, e, 8, oaBase+"/token", form)
			for i, st := range statuses {
				if st != http.StatusOK {
					continue
				}
				var tok oaTokens
				_ = json.Unmarshal([]byte(bodies[i]), &tok)
				if oaAccessWorks(t, e, tok.AccessToken) {
					survived++
				}
			}
		}
		if survived > 0 {
			t.Fatalf("in %d of %d rounds of 8 parallel redemptions the winner's tokens survived the losers' replay detection", survived, rounds)
		}
	})
}

// --- refresh tokens ---------------------------------------------------------------

func TestOAuthRefreshRotationAndReuseDetection(t *testing.T) {
	oaEach(t, func(t *testing.T, e *apitest.Env) {
		s := oaStart(t, e)
		for _, c := range []oaClient{s.conf, s.pub} {
			first := oaFlow(t, e, c, s.alice.Access, url.Values{"scope": {"openid email"}})
			other := oaFlow(t, e, c, s.alice.Access, url.Values{"scope": {"openid"}})
			second := oaOK(t, oaRefresh(e, c, first.RefreshToken, nil))
			if second.RefreshToken == first.RefreshToken || second.AccessToken == first.AccessToken || second.Scope != "email openid" {
				t.Fatalf("refresh: %+v", second)
			}
			_, c1 := oaJWT(t, first.AccessToken)
			_, c2 := oaJWT(t, second.AccessToken)
			if c1["jti"] == c2["jti"] {
				t.Fatal("the refreshed access token reuses the jti")
			}
			third := oaOK(t, oaRefresh(e, c, second.RefreshToken, nil))
			if !oaAccessWorks(t, e, third.AccessToken) || !oaActive(t, e, s.conf, third.RefreshToken) {
				t.Fatal("the newest tokens do not work")
			}
			if oaActive(t, e, s.conf, first.RefreshToken) {
				t.Fatal("a rotated refresh token introspects as active")
			}

			// Reuse of a rotated token: refused, and the whole family dies.
			oaErr(t, oaRefresh(e, c, first.RefreshToken, nil), 400, "invalid_grant", "")
			oaErr(t, oaRefresh(e, c, third.RefreshToken, nil), 400, "invalid_grant", "")
			if oaAccessWorks(t, e, third.AccessToken) || oaActive(t, e, s.conf, third.AccessToken) {
				t.Fatal("the newest access token survives refresh-token reuse")
			}
			if oaAccessWorks(t, e, first.AccessToken) || oaAccessWorks(t, e, second.AccessToken) {
				t.Fatal("older access tokens of the family survive reuse")
			}
			oaErr(t, oaRefresh(e, c, second.RefreshToken, nil), 400, "invalid_grant", "")
			// Another family of the same user and client lives on.
			if !oaAccessWorks(t, e, other.AccessToken) {
				t.Fatal("reuse revoked another family")
			}
			oaOK(t, oaRefresh(e, c, other.RefreshToken, nil))
			if !strings.Contains(e.Logs.String(), "refresh token reused") {
				t.Fatal("no security event logged for the reuse")
			}
		}
	})
}

func TestOAuthRefreshParallel(t *testing.T) {
	oaEach(t, func(t *testing.T, e *apitest.Env) {
		s := oaStart(t, e)
		tok := oaFlow(t, e, s.pub, s.alice.Access, url.Values{"scope": {"openid"}})
		form := oaWithClient(s.pub, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}})
		statuses, bodies := oaBurst(t, e, 8, oaBase+"/token", form)
		var won oaTokens
		ok := 0
		for i, st := range statuses {
			switch {
			case st == http.StatusOK:
				ok++
				_ = json.Unmarshal([]byte(bodies[i]), &won)
			case st == http.StatusBadRequest && strings.Contains(bodies[i], `"invalid_grant"`):
			default:
				t.Fatalf("refresh answered %d: %s", st, bodies[i])
			}
		}
		if ok != 1 {
			t.Fatalf("%d of 8 parallel refreshes succeeded, want exactly 1", ok)
		}
		// The losers presented a rotated token: the family is revoked.
		oaErr(t, oaRefresh(e, s.pub, won.RefreshToken, nil), 400, "invalid_grant", "")
		if oaAccessWorks(t, e, won.AccessToken) || oaAccessWorks(t, e, tok.AccessToken) {
			t.Fatal("tokens of the family survive concurrent reuse")
		}
	})
}

func TestOAuthRefreshRules(t *testing.T) {
	oaEach(t, func(t *testing.T, e *apitest.Env) {
		s := oaStart(t, e)
		tok := oaFlow(t, e, s.conf, s.alice.Access, url.Values{"scope": {"openid profile email"}})

		oaErr(t, oaRefresh(e, s.conf, "", url.Values{"refresh_token": nil}), 400, "invalid_request", "refresh_token required")
		oaErr(t, oaRefresh(e, s.conf, "garbage", nil), 400, "invalid_grant", "Invalid refresh token")
		oaErr(t, oaRefresh(e, s.conf, tok.AccessToken, nil), 400, "invalid_grant", "")
		// Widening is refused, and does not use the token up.
		oaErr(t, oaRefresh(e, s.conf, tok.RefreshToken, url.Values{"scope": {"openid admin"}}), 400, "invalid_scope", "Cannot expand scope on refresh")
		oaErr(t, oaRefresh(e, s.conf, tok.RefreshToken, url.Values{"resource": {"https://other.example.com"}}), 400, "invalid_target", "")
		// Another client cannot use it (and does not burn it).
		other := oaNewClient(t, e, s.admin.Access, oauth.Confidential, "")
		oaErr(t, oaRefresh(e, other, tok.RefreshToken, nil), 400, "invalid_grant", "not issued to this client")
		oaErr(t, oaRefresh(e, s.pub, tok.RefreshToken, nil), 400, "invalid_grant", "not issued to this client")
		// Narrowing is allowed and sticks.
		narrow := oaOK(t, oaRefresh(e, s.conf, tok.RefreshToken, url.Values{"scope": {"email openid"}}))
		if narrow.Scope != "email openid" {
			t.Fatalf("narrowed scope %q", narrow.Scope)
		}
		if _, c := oaJWT(t, narrow.AccessToken); c["scope"] != "email openid" {
			t.Fatalf("narrowed access token scope %v", c["scope"])
		}
		next := oaOK(t, oaRefresh(e, s.conf, narrow.RefreshToken, nil))
		if next.Scope != "email openid" {
			t.Fatalf("scope after a narrowed refresh: %q", next.Scope)
		}
		oaErr(t, oaRefresh(e, s.conf, next.RefreshToken, url.Values{"scope": {"openid profile"}}), 400, "invalid_scope", "Cannot expand scope on refresh")
		next = oaOK(t, oaRefresh(e, s.conf, next.RefreshToken, url.Values{"scope": {"openid"}}))

		// Expired.
		e.Exec(`UPDATE oauth_provider_refresh_tokens SET expires_at = created_at WHERE token_hash = $1`, token.HashSecret(next.RefreshToken))
		oaErr(t, oaRefresh(e, s.conf, next.RefreshToken, nil), 400, "invalid_grant", "expired")

		// The user deactivated.
		tok = oaFlow(t, e, s.conf, s.alice.Access, url.Values{"scope": {"openid"}})
		e.Exec(`UPDATE users SET is_active = FALSE WHERE id = $1`, s.alice.UserID)
		oaErr(t, oaRefresh(e, s.conf, tok.RefreshToken, nil), 400, "invalid_grant", "User not found or inactive")
		if oaAccessWorks(t, e, tok.AccessToken) {
			t.Fatal("an inactive user's access token works at userinfo")
		}
		if oaActive(t, e, s.conf, tok.AccessToken) || oaActive(t, e, s.conf, tok.RefreshToken) {
			t.Fatal("an inactive user's tokens introspect as active")
		}
	})
}

// Contract §3 (fix 5): password reset, deactivation and deletion revoke all
// OAuth-provider refresh tokens. Reactivating a user must not revive them,
// and a reset (the user stays active) must end them.
func TestOAuthUserLifecycleRevokesProviderTokens(t *testing.T) {
	oaEach(t, func(t *testing.T, e *apitest.Env) {
		s := oaStart(t, e)

		t.Run("deactivate then activate", func(t *testing.T) {
			tok := oaFlow(t, e, s.conf, s.alice.Access, url.Values{"scope": {"openid"}})
			e.Post(adminUser(s.alice.UserID)+"/deactivate", s.admin.Access, nil).Expect(t, http.StatusOK, "")
			e.Post(adminUser(s.alice.UserID)+"/activate", s.admin.Access, nil).Expect(t, http.StatusOK, "")
			if r := oaRefresh(e, s.conf, tok.RefreshToken, nil); r.Status == http.StatusOK {
				t.Errorf("after deactivation and reactivation the provider refresh token still works (POST /token grant_type=refresh_token → 200)")
			}
			if oaAccessWorks(t, e, tok.AccessToken) {
				t.Errorf("after deactivation and reactivation the provider access token still works at userinfo")
			}
		})

		t.Run("password reset", func(t *testing.T) {
			bob := e.User("bob@example.com")
			tok := oaFlow(t, e, s.conf, bob.Access, url.Values{"scope": {"openid"}})
			e.Post("/api/v1/auth/password-reset/request", "", map[string]any{"email": "bob@example.com"}).Expect(t, http.StatusOK, "")
			m := e.Mail.Wait(t, 1, 10*time.Second)[0]
			i := strings.Index(m.Text, "token=")
			if i < 0 {
				t.Fatalf("no reset link:\n%s", m.Text)
			}
			link := strings.Fields(m.Text[i:])[0]
			q, err := url.ParseQuery(link)
			if err != nil {
				t.Fatal(err)
			}
			e.Post("/api/v1/auth/password-reset/confirm", "", map[string]any{"token": q.Get("token"), "new_password": "An0ther!Passw0rd"}).Expect(t, http.StatusOK, "")
			if r := oaRefresh(e, s.conf, tok.RefreshToken, nil); r.Status == http.StatusOK {
				t.Errorf("after a password reset the provider refresh token still works (POST /token grant_type=refresh_token → 200)")
			}
			if oaAccessWorks(t, e, tok.AccessToken) {
				t.Errorf("after a password reset the provider access token still works at userinfo")
			}
		})

		t.Run("password change", func(t *testing.T) {
			dave := e.User("dave@example.com")
			tok := oaFlow(t, e, s.conf, dave.Access, url.Values{"scope": {"openid"}})
			e.Patch("/api/v1/users/me/password", dave.Access, map[string]any{"current_password": apitest.Password, "new_password": "An0ther!Passw0rd"}).
				Expect(t, http.StatusOK, "")
			oaErr(t, oaRefresh(e, s.conf, tok.RefreshToken, nil), 400, "invalid_grant", "")
			if oaAccessWorks(t, e, tok.AccessToken) {
				t.Fatal("after a password change the provider access token still works at userinfo")
			}
		})

		t.Run("logout from all devices", func(t *testing.T) {
			erin := e.User("erin@example.com")
			tok := oaFlow(t, e, s.conf, erin.Access, url.Values{"scope": {"openid"}})
			e.Post("/api/v1/auth/logout-all", erin.Access, nil).Expect(t, http.StatusOK, "")
			oaErr(t, oaRefresh(e, s.conf, tok.RefreshToken, nil), 400, "invalid_grant", "")
			if oaAccessWorks(t, e, tok.AccessToken) {
				t.Fatal("after logout-all the provider access token still works at userinfo")
			}
		})

		t.Run("delete", func(t *testing.T) {
			carol := e.User("carol@example.com")
			tok := oaFlow(t, e, s.conf, carol.Access, url.Values{"scope": {"openid"}})
			e.Delete(adminUser(carol.UserID), s.admin.Access).Expect(t, http.StatusOK, "")
			oaErr(t, oaRefresh(e, s.conf, tok.RefreshToken, nil), 400, "invalid_grant", "")
			if oaAccessWorks(t, e, tok.AccessToken) {
				t.Fatal("a deleted user's provider access token works")
			}
		})
	})
}

// --- token formats ------------------------------------------------------------------

func TestOAuthAccessTokenFormat(t *testing.T) {
	for _, alg := range []string{"ES256", "RS256"} {
		t.Run(alg, func(t *testing.T) {
			oaEach(t, func(t *testing.T, e *apitest.Env) {
				s := oaStart(t, e)
				set := oaJWKS(t, e)
				tok := oaFlow(t, e, s.conf, s.alice.Access, url.Values{"scope": {"openid email"}, "nonce": {"n-123"}})
				h, c := oaVerify(t, set, tok.AccessToken)
				if h["typ"] != "at+jwt" || h["alg"] != alg || h["kid"] == "" {
					t.Fatalf("header %v, want typ at+jwt alg %s with a kid", h, alg)
				}
				num := func(k string) int64 {
					f, ok := c[k].(float64)
					if !ok {
						t.Fatalf("claim %s = %v", k, c[k])
					}
					return int64(f)
				}
				if c["iss"] != e.Config.Provider.Issuer || c["sub"] != s.alice.UserID || fmt.Sprint(c["aud"]) != s.conf.ID && fmt.Sprint(c["aud"]) != "["+s.conf.ID+"]" ||
					c["client_id"] != s.conf.ID || c["scope"] != "email openid" || c["email"] != "alice@example.com" || c["name"] != "Test User" ||
					c["nonce"] != "n-123" || c["jti"] == "" || c["jti"] == nil {
					t.Fatalf("claims %v", c)
				}
				if num("exp")-num("iat") != 3600 || num("nbf") != num("iat") || num("auth_time") <= 0 || num("auth_time") > num("iat") {
					t.Fatalf("times: exp %d iat %d nbf %d auth_time %d", num("exp"), num("iat"), num("nbf"), num("auth_time"))
				}
				// No nonce claim when none was sent.
				if _, c := oaJWT(t, oaFlow(t, e, s.conf, s.alice.Access, url.Values{"scope": {"openid"}}).AccessToken); c["nonce"] != nil {
					t.Fatalf("nonce without a nonce: %v", c["nonce"])
				}

				// Never signed with SECRET_KEY: HS256 verification fails…
				if _, err := jwt.Parse(tok.AccessToken, func(*jwt.Token) (any, error) { return []byte(apitest.Secret), nil },
					jwt.WithValidMethods([]string{"HS256"})); err == nil {
					t.Fatal("the access token verifies with SECRET_KEY")
				}
				// …and a look-alike signed with it (key confusion), or unsigned,
				// is refused.
				forged := jwt.NewWithClaims(jwt.SigningMethodHS256, c)
				forged.Header["typ"], forged.Header["kid"] = "at+jwt", h["kid"]
				raw, _ := forged.SignedString([]byte(apitest.Secret))
				none := jwt.NewWithClaims(jwt.SigningMethodNone, c)
				none.Header["typ"], none.Header["kid"] = "at+jwt", h["kid"]
				rawNone, _ := none.SignedString(jwt.UnsafeAllowNoneSignatureType)
				parts := strings.Split(tok.AccessToken, ".")
				stripped := parts[0] + "." + parts[1] + "."
				for _, bad := range []string{raw, rawNone, stripped} {
					if oaAccessWorks(t, e, bad) || oaActive(t, e, s.conf, bad) {
						t.Fatalf("forged token accepted: %.60s…", bad)
					}
				}

				// Provider tokens are not first-party tokens, and back.
				e.Get(pathMe, tok.AccessToken).Expect(t, http.StatusUnauthorized, "AUTH_006")
				e.Get(oaBase+"/consents", tok.AccessToken).Expect(t, http.StatusUnauthorized, "AUTH_006")
				if oaAccessWorks(t, e, s.alice.Access) || oaActive(t, e, s.conf, s.alice.Access) || oaActive(t, e, s.conf, s.alice.Refresh) {
					t.Fatal("a first-party token is accepted by the authorization server")
				}
				if r := e.Post(pathRefresh, "", map[string]any{"refresh_token": tok.RefreshToken}); r.Status != http.StatusUnauthorized {
					t.Fatalf("provider refresh token at /auth/refresh: %d", r.Status)
				}
			}, apitest.WithEnv("OAUTH_ACCESS_TOKEN_ALG", alg))
		})
	}
}

func TestOAuthResourceIndicators(t *testing.T) {
	oaEach(t, func(t *testing.T, e *apitest.Env) {
		s := oaStart(t, e)
		tok := oaFlow(t, e, s.pub, s.alice.Access, url.Values{"scope": {"openid"}, "resource": {"HTTPS://MCP.Example.com/mcp/"}})
		if _, c := oaJWT(t, tok.AccessToken); fmt.Sprint(c["aud"]) != "https://mcp.example.com/mcp" && fmt.Sprint(c["aud"]) != "[https://mcp.example.com/mcp]" {
			t.Fatalf("aud %v, want the canonical resource", c["aud"])
		}
		// The refresh keeps the audience; another resource is refused, also one
		// this server protects but the grant does not include (no widening).
		oaErr(t, oaRefresh(e, s.pub, tok.RefreshToken, url.Values{"resource": {"https://other.example.com/mcp"}}), 400, "invalid_target", "")
		oaErr(t, oaRefresh(e, s.pub, tok.RefreshToken, url.Values{"resource": {e.Config.Provider.APIResource}}), 400, "invalid_target", "")
		next := oaOK(t, oaRefresh(e, s.pub, tok.RefreshToken, url.Values{"resource": {"https://mcp.example.com/mcp"}}))
		if _, c := oaJWT(t, next.AccessToken); fmt.Sprint(c["aud"]) != "https://mcp.example.com/mcp" && fmt.Sprint(c["aud"]) != "[https://mcp.example.com/mcp]" {
			t.Fatalf("aud after refresh %v", c["aud"])
		}
		r := oaIntrospect(e, s.conf, next.AccessToken).JSON(t)
		if r["aud"] != "https://mcp.example.com/mcp" {
			t.Fatalf("introspected aud %v", r["aud"])
		}
		// A resource the server does not protect is refused at authorization.
		_, ch := oaPKCE()
		bad := oaParams(s.pub, ch, url.Values{"scope": {"openid"}, "resource": {"https://elsewhere.example.com/mcp"}})
		oaWantRedirectError(t, e, oaAuthorize(e, s.alice.Access, bad), http.StatusFound, bad, "invalid_target", "not served")
		// Two resources at authorization; the token request narrows to one, the
		// refresh to the other, and without a resource the token has both.
		two := url.Values{"scope": {"openid"}, "resource": {"https://mcp.example.com/mcp", e.Config.Provider.APIResource}}
		both := oaFlow(t, e, s.pub, s.alice.Access, two)
		if _, c := oaJWT(t, both.AccessToken); fmt.Sprint(c["aud"]) != "[https://mcp.example.com/mcp "+e.Config.Provider.APIResource+"]" {
			t.Fatalf("aud with two resources %v", c["aud"])
		}
		audOf := func(raw string) string {
			t.Helper()
			_, c := oaJWT(t, raw)
			aud, err := c.GetAudience()
			if err != nil {
				t.Fatal(err)
			}
			return strings.Join(aud, " ")
		}
		verifier, challenge := oaPKCE()
		v := oaParams(s.pub, challenge, two)
		code := oaCode(t, e, s.alice.Access, v)
		// A resource outside the grant is refused at the exchange too (no
		// widening), and leaves the code unused.
		oaErr(t, oaExchange(e, s.pub, code, verifier, url.Values{"resource": {e.Config.Provider.MCPResource}}), 400, "invalid_target", "")
		oaErr(t, oaExchange(e, s.pub, code, verifier, url.Values{"resource": {e.Config.Provider.APIResource, e.Config.Provider.MCPResource}}),
			400, "invalid_target", "")
		// Narrowed at the exchange (in another spelling of the same URI): the
		// access token is for that resource only…
		narrow := oaOK(t, oaExchange(e, s.pub, code, verifier, url.Values{"resource": {"HTTPS://mcp.example.com:443/mcp"}}))
		if got := audOf(narrow.AccessToken); got != "https://mcp.example.com/mcp" {
			t.Fatalf("aud after narrowing at the exchange %q, want only https://mcp.example.com/mcp", got)
		}
		if r := oaIntrospect(e, s.conf, narrow.AccessToken).JSON(t); r["aud"] != "https://mcp.example.com/mcp" {
			t.Fatalf("introspected aud after narrowing at the exchange %v", r["aud"])
		}
		// …while the grant keeps both: the refresh narrows to the other, and
		// without a resource the token has both again.
		api := oaOK(t, oaRefresh(e, s.pub, narrow.RefreshToken, url.Values{"resource": {e.Config.Provider.APIResource}}))
		if got := audOf(api.AccessToken); got != e.Config.Provider.APIResource {
			t.Fatalf("narrowed aud at refresh %q", got)
		}
		again := oaOK(t, oaRefresh(e, s.pub, api.RefreshToken, nil))
		if got := audOf(again.AccessToken); got != "https://mcp.example.com/mcp "+e.Config.Provider.APIResource {
			t.Fatalf("aud of a refresh without resource %q, want the whole grant", got)
		}
	})
}

func TestOAuthIDToken(t *testing.T) {
	oaEach(t, func(t *testing.T, e *apitest.Env) {
		s := oaStart(t, e)
		set := oaJWKS(t, e)
		full := oaFlow(t, e, s.conf, s.alice.Access, url.Values{"scope": {"openid profile email"}, "nonce": {"nonce-xyz"}})
		if full.IDToken == "" {
			t.Fatal("no id_token with openid")
		}
		h, c := oaVerify(t, set, full.IDToken)
		if h["alg"] != "RS256" || h["kid"] == "" {
			t.Fatalf("ID token header %v", h)
		}
		if c["iss"] != e.Config.Provider.Issuer || c["sub"] != s.alice.UserID || (c["aud"] != s.conf.ID && fmt.Sprint(c["aud"]) != "["+s.conf.ID+"]") ||
			c["nonce"] != "nonce-xyz" {
			t.Fatalf("ID token claims %v", c)
		}
		sum := sha256.Sum256([]byte(full.AccessToken))
		if c["at_hash"] != base64.RawURLEncoding.EncodeToString(sum[:16]) {
			t.Fatalf("at_hash %v does not match the access token", c["at_hash"])
		}
		for _, k := range []string{"exp", "iat", "auth_time"} {
			if _, ok := c[k].(float64); !ok {
				t.Fatalf("ID token %s = %v", k, c[k])
			}
		}
		if c["email"] != "alice@example.com" || c["name"] != "Test User" || c["given_name"] != "Test" || c["family_name"] != "User" {
			t.Fatalf("profile/email claims %v", c)
		}
		if _, ok := c["email_verified"]; !ok {
			t.Fatal("email without email_verified")
		}

		// Claims follow the scopes.
		for _, tc := range []struct {
			scope          string
			email, profile bool
		}{
			{"openid", false, false},
			{"openid email", true, false},
			{"openid profile", false, true},
		} {
			tok := oaFlow(t, e, s.conf, s.alice.Access, url.Values{"scope": {tc.scope}})
			_, c := oaVerify(t, set, tok.IDToken)
			if _, has := c["email"]; has != tc.email {
				t.Errorf("scope %q: email claim %v", tc.scope, c["email"])
			}
			if _, has := c["email_verified"]; has != tc.email {
				t.Errorf("scope %q: email_verified claim %v", tc.scope, c["email_verified"])
			}
			for _, k := range []string{"name", "given_name", "family_name"} {
				if _, has := c[k]; has != tc.profile {
					t.Errorf("scope %q: %s claim %v", tc.scope, k, c[k])
				}
			}
			if c["nonce"] != nil {
				t.Errorf("scope %q: nonce %v without a nonce in the request", tc.scope, c["nonce"])
			}
		}
		// No ID token without openid.
		if tok := oaFlow(t, e, s.conf, s.alice.Access, url.Values{"scope": {"profile email"}}); tok.IDToken != "" {
			t.Fatal("an ID token without the openid scope")
		}
	})
}

// --- revocation, introspection, userinfo ------------------------------------

func TestOAuthRevocation(t *testing.T) {
	oaEach(t, func(t *testing.T, e *apitest.Env) {
		s := oaStart(t, e)
		path := oaBase + "/revoke"
		okBody := func(r apitest.Response) {
			t.Helper()
			if r.Status != http.StatusOK || r.JSON(t)["status"] != "ok" {
				t.Fatalf("revoke: %d %s", r.Status, r.Body)
			}
			oaNoStore(t, r)
		}

		tok := oaFlow(t, e, s.conf, s.alice.Access, url.Values{"scope": {"openid"}})
		// Client authentication is required (fix 26).
		oaErr(t, oaPost(e, path, "", url.Values{"token": {tok.RefreshToken}}, nil), 401, "invalid_client", "")
		oaErr(t, oaRevoke(e, oaClient{ID: s.conf.ID}, tok.RefreshToken, ""), 401, "invalid_client", "")
		oaErr(t, oaRevoke(e, oaClient{ID: s.conf.ID, Secret: "wrong"}, tok.RefreshToken, ""), 401, "invalid_client", "")
		oaErr(t, oaRevoke(e, oaClient{ID: "nobody"}, tok.RefreshToken, ""), 401, "invalid_client", "")
		// Another client's token: 401, and the token lives on.
		oaErr(t, oaRevoke(e, s.pub, tok.RefreshToken, ""), 401, "invalid_client", "")
		oaErr(t, oaRevoke(e, s.pub, tok.AccessToken, ""), 401, "invalid_client", "")
		if !oaAccessWorks(t, e, tok.AccessToken) {
			t.Fatal("a refused revocation revoked the token")
		}
		oaErr(t, oaRevoke(e, s.conf, "", ""), 400, "invalid_request", "token")

		// Revoking the refresh token ends the access token too.
		okBody(oaRevoke(e, s.conf, tok.RefreshToken, "refresh_token"))
		oaErr(t, oaRefresh(e, s.conf, tok.RefreshToken, nil), 400, "invalid_grant", "")
		if oaAccessWorks(t, e, tok.AccessToken) || oaActive(t, e, s.conf, tok.AccessToken) {
			t.Fatal("the access token survives the revocation of its refresh token")
		}
		okBody(oaRevoke(e, s.conf, tok.RefreshToken, "")) // again: still 200

		// Revoking the access token ends the refresh token too (whatever the hint).
		for _, hint := range []string{"", "access_token", "refresh_token"} {
			tok := oaFlow(t, e, s.conf, s.alice.Access, url.Values{"scope": {"openid"}})
			okBody(oaRevoke(e, s.conf, tok.AccessToken, hint))
			oaErr(t, oaRefresh(e, s.conf, tok.RefreshToken, nil), 400, "invalid_grant", "")
			if oaAccessWorks(t, e, tok.AccessToken) {
				t.Fatalf("hint %q: the access token works after its revocation", hint)
			}
		}
		// …and the whole family, rotated tokens included.
		tok = oaFlow(t, e, s.conf, s.alice.Access, url.Values{"scope": {"openid"}})
		next := oaOK(t, oaRefresh(e, s.conf, tok.RefreshToken, nil))
		okBody(oaRevoke(e, s.conf, tok.AccessToken, ""))
		if oaAccessWorks(t, e, next.AccessToken) {
			t.Fatal("revoking an older access token of the family left the newest working")
		}
		oaErr(t, oaRefresh(e, s.conf, next.RefreshToken, nil), 400, "invalid_grant", "")

		// A public client revokes its own tokens with its id only.
		ptok := oaFlow(t, e, s.pub, s.alice.Access, url.Values{"scope": {"openid"}})
		okBody(oaRevoke(e, s.pub, ptok.RefreshToken, ""))
		oaErr(t, oaRefresh(e, s.pub, ptok.RefreshToken, nil), 400, "invalid_grant", "")
		if oaAccessWorks(t, e, ptok.AccessToken) {
			t.Fatal("public client's revocation did not end the access token")
		}
		// Unknown tokens: 200 (RFC 7009 §2.2), first-party tokens included.
		for _, junk := range []string{"garbage", strings.Repeat("x", 4000), s.alice.Access, s.alice.Refresh, "a.b.c"} {
			okBody(oaRevoke(e, s.conf, junk, ""))
		}
		e.Get(pathMe, s.alice.Access).Expect(t, http.StatusOK, "")
		// Basic authentication works here too.
		tok = oaFlow(t, e, s.conf, s.alice.Access, url.Values{"scope": {"openid"}})
		r := oaPost(e, path, "", url.Values{"token": {tok.RefreshToken}}, map[string]string{
			"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(s.conf.ID+":"+s.conf.Secret))})
		okBody(r)
		if oaAccessWorks(t, e, tok.AccessToken) {
			t.Fatal("Basic-authenticated revocation did nothing")
		}
	})
}

var oaIntrospectionKeys = []string{"active", "scope", "client_id", "username", "token_type", "exp", "iat", "nbf", "sub", "aud", "iss"}

func TestOAuthIntrospection(t *testing.T) {
	oaEach(t, func(t *testing.T, e *apitest.Env) {
		s := oaStart(t, e)
		path := oaBase + "/introspect"
		tok := oaFlow(t, e, s.conf, s.alice.Access, url.Values{"scope": {"openid email"}})
		ptok := oaFlow(t, e, s.pub, s.alice.Access, url.Values{"scope": {"openid"}})

		// Confidential clients only (fix 26).
		oaErr(t, oaPost(e, path, "", url.Values{"token": {tok.AccessToken}}, nil), 401, "invalid_client", "")
		oaErr(t, oaIntrospect(e, s.pub, ptok.AccessToken), 401, "invalid_client", "")
		oaErr(t, oaIntrospect(e, oaClient{ID: s.conf.ID, Secret: "wrong"}, tok.AccessToken), 401, "invalid_client", "")
		oaErr(t, oaIntrospect(e, oaClient{ID: s.conf.ID}, tok.AccessToken), 401, "invalid_client", "")
		oaErr(t, oaIntrospect(e, s.conf, ""), 400, "invalid_request", "token")

		get := func(tokn string) map[string]any {
			t.Helper()
			r := oaIntrospect(e, s.conf, tokn)
			if r.Status != http.StatusOK {
				t.Fatalf("introspect: %d %s", r.Status, r.Body)
			}
			oaNoStore(t, r)
			m := r.JSON(t)
			for _, k := range oaIntrospectionKeys {
				if _, ok := m[k]; !ok {
					t.Fatalf("introspection lacks %q: %s", k, r.Body)
				}
			}
			return m
		}
		inactive := func(name, tokn string) {
			t.Helper()
			m := get(tokn)
			if m["active"] != false {
				t.Fatalf("%s: active %v", name, m["active"])
			}
			for _, k := range oaIntrospectionKeys[1:] {
				if m[k] != nil {
					t.Fatalf("%s: inactive answer carries %s = %v", name, k, m[k])
				}
			}
		}

		// An active access token: every RFC 7662 field.
		m := get(tok.AccessToken)
		_, c := oaJWT(t, tok.AccessToken)
		if m["active"] != true || m["scope"] != "email openid" || m["client_id"] != s.conf.ID || m["username"] != "alice@example.com" ||
			m["token_type"] != "Bearer" || m["sub"] != s.alice.UserID || m["aud"] != s.conf.ID || m["iss"] != e.Config.Provider.Issuer ||
			m["exp"] != c["exp"] || m["iat"] != c["iat"] || m["nbf"] != c["nbf"] {
			t.Fatalf("access token introspection %v (claims %v)", m, c)
		}
		// A public client's token, introspected by a confidential one.
		if m := get(ptok.AccessToken); m["active"] != true || m["client_id"] != s.pub.ID {
			t.Fatalf("public client's token: %v", m)
		}
		// A refresh token.
		m = get(tok.RefreshToken)
		if m["active"] != true || m["token_type"] != "refresh_token" || m["client_id"] != s.conf.ID || m["scope"] != "email openid" ||
			m["sub"] != s.alice.UserID {
			t.Fatalf("refresh token introspection %v", m)
		}
		if _, ok := m["exp"].(float64); !ok {
			t.Fatalf("refresh token exp %v", m["exp"])
		}
		// Hints do not hide a token.
		r := oaPost(e, path, "", oaWithClient(s.conf, url.Values{"token": {tok.AccessToken}, "token_type_hint": {"refresh_token"}}), nil)
		if r.JSON(t)["active"] != true {
			t.Fatalf("access token with a refresh_token hint: %s", r.Body)
		}
		r = oaPost(e, path, "", oaWithClient(s.conf, url.Values{"token": {tok.RefreshToken}, "token_type_hint": {"access_token"}}), nil)
		if r.JSON(t)["active"] != true {
			t.Fatalf("refresh token with an access_token hint: %s", r.Body)
		}

		// Garbage, first-party tokens, expired, rotated and revoked ones.
		inactive("garbage", "garbage")
		inactive("JWT-shaped garbage", "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln")
		inactive("first-party access", s.alice.Access)
		inactive("first-party refresh", s.alice.Refresh)
		var ac oauth.AccessClaims
		if _, _, err := jwt.NewParser().ParseUnverified(tok.AccessToken, &ac); err != nil {
			t.Fatal(err)
		}
		// Re-signed with the server's own key: still valid, then expired.
		fresh, err := e.App.OAuth.Tokens().Access(context.Background(), ac)
		if err != nil {
			t.Fatal(err)
		}
		if get(fresh)["active"] != true {
			t.Fatal("control: a re-signed valid token is inactive")
		}
		ac.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-time.Minute))
		ac.IssuedAt = jwt.NewNumericDate(time.Now().Add(-time.Hour))
		expired, err := e.App.OAuth.Tokens().Access(context.Background(), ac)
		if err != nil {
			t.Fatal(err)
		}
		inactive("expired access", expired)
		// A validly signed token whose jti names no grant (not even a UUID:
		// no 500 from PostgreSQL's uuid column).
		for _, jti := range []string{"not-a-uuid", "'; --", "00000000-0000-4000-8000-000000000000"} {
			ac.ExpiresAt, ac.ID = jwt.NewNumericDate(time.Now().Add(time.Hour)), jti
			orphan, err := e.App.OAuth.Tokens().Access(context.Background(), ac)
			if err != nil {
				t.Fatal(err)
			}
			inactive("jti "+jti, orphan)
			if oaAccessWorks(t, e, orphan) {
				t.Fatalf("a token with jti %q works at userinfo", jti)
			}
			oaRevoke(e, s.conf, orphan, "access_token").Expect(t, http.StatusOK, "")
		}
		if oaAccessWorks(t, e, expired) {
			t.Fatal("an expired access token works at userinfo")
		}
		next := oaOK(t, oaRefresh(e, s.conf, tok.RefreshToken, nil))
		inactive("rotated refresh", tok.RefreshToken)
		e.Exec(`UPDATE oauth_provider_refresh_tokens SET expires_at = created_at WHERE token_hash = $1`, token.HashSecret(next.RefreshToken))
		inactive("expired refresh", next.RefreshToken)
		tok = oaFlow(t, e, s.conf, s.alice.Access, url.Values{"scope": {"openid"}})
		oaRevoke(e, s.conf, tok.RefreshToken, "").Expect(t, http.StatusOK, "")
		inactive("revoked access", tok.AccessToken)
		inactive("revoked refresh", tok.RefreshToken)
	})
}

func TestOAuthUserInfo(t *testing.T) {
	oaEach(t, func(t *testing.T, e *apitest.Env) {
		s := oaStart(t, e)
		full := oaFlow(t, e, s.conf, s.alice.Access, url.Values{"scope": {"openid profile email"}})
		for _, r := range []apitest.Response{
			oaUserinfo(e, full.AccessToken),
			e.Do(apitest.Request{Method: "POST", Path: oaBase + "/userinfo", Token: full.AccessToken}),
			oaPost(e, oaBase+"/userinfo", "", url.Values{"access_token": {full.AccessToken}}, nil),
		} {
			if r.Status != http.StatusOK {
				t.Fatalf("userinfo: %d %s", r.Status, r.Body)
			}
			m := r.JSON(t)
			if m["sub"] != s.alice.UserID || m["email"] != "alice@example.com" || m["name"] != "Test User" || m["given_name"] != "Test" ||
				m["family_name"] != "User" {
				t.Fatalf("userinfo claims %v", m)
			}
			if _, ok := m["email_verified"]; !ok {
				t.Fatal("no email_verified")
			}
		}
		// Only openid: the subject only.
		only := oaFlow(t, e, s.conf, s.alice.Access, url.Values{"scope": {"openid"}})
		m := oaUserinfo(e, only.AccessToken).Expect(t, http.StatusOK, "").JSON(t)
		if len(m) != 1 || m["sub"] != s.alice.UserID {
			t.Fatalf("userinfo with openid only: %v", m)
		}
		// Without openid: 403 insufficient_scope.
		noOpenID := oaFlow(t, e, s.conf, s.alice.Access, url.Values{"scope": {"profile email"}})
		r := oaUserinfo(e, noOpenID.AccessToken)
		if r.Status != http.StatusForbidden || r.JSON(t)["error"] != "insufficient_scope" || !strings.Contains(r.Header.Get("WWW-Authenticate"), "insufficient_scope") {
			t.Fatalf("userinfo without openid: %d %q %s", r.Status, r.Header.Get("WWW-Authenticate"), r.Body)
		}
		// No token, a bad one, a revoked one: 401 with a Bearer challenge.
		for name, raw := range map[string]string{"none": "", "garbage": "garbage", "first-party": s.alice.Access} {
			r := oaUserinfo(e, raw)
			if r.Status != http.StatusUnauthorized || !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Fatalf("userinfo with %s token: %d %q", name, r.Status, r.Header.Get("WWW-Authenticate"))
			}
		}
		oaRevoke(e, s.conf, full.RefreshToken, "").Expect(t, http.StatusOK, "")
		r = oaUserinfo(e, full.AccessToken)
		if r.Status != http.StatusUnauthorized || !strings.Contains(r.Header.Get("WWW-Authenticate"), `error="invalid_token"`) ||
			r.JSON(t)["error"] != "invalid_token" {
			t.Fatalf("userinfo with a revoked token: %d %q %s", r.Status, r.Header.Get("WWW-Authenticate"), r.Body)
		}
		// The audience: the client itself (no resource) or the API, to which
		// userinfo belongs; a token only for /mcp or another resource server
		// is refused as invalid_token (RFC 6750 §3.1), so that a resource
		// server cannot replay the tokens it receives.
		for name, res := range map[string][]string{"API": {e.Config.Provider.APIResource},
			"API and /mcp": {e.Config.Provider.APIResource, e.Config.Provider.MCPResource}} {
			tok := oaFlow(t, e, s.conf, s.alice.Access, url.Values{"scope": {"openid email"}, "resource": res})
			if m := oaUserinfo(e, tok.AccessToken).Expect(t, http.StatusOK, "").JSON(t); m["sub"] != s.alice.UserID {
				t.Fatalf("userinfo with a token for the %s: %v", name, m)
			}
		}
		for name, res := range map[string]string{"/mcp": e.Config.Provider.MCPResource, "another resource server": "https://mcp.example.com/mcp"} {
			tok := oaFlow(t, e, s.conf, s.alice.Access, url.Values{"scope": {"openid email"}, "resource": {res}})
			for _, r := range []apitest.Response{oaUserinfo(e, tok.AccessToken),
				oaPost(e, oaBase+"/userinfo", "", url.Values{"access_token": {tok.AccessToken}}, nil)} {
				if r.Status != http.StatusUnauthorized || !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), `Bearer error="invalid_token", error_description="`) {
					t.Fatalf("userinfo with a token for %s: %d %q %s", name, r.Status, r.Header.Get("WWW-Authenticate"), r.Body)
				}
				oaNoStore(t, r)
				if m := r.JSON(t); m["error"] != "invalid_token" || m["sub"] != nil || m["email"] != nil {
					t.Fatalf("userinfo with a token for %s: %v", name, m)
				}
			}
		}

		// Claims are read at request time.
		e.Exec(`UPDATE users SET first_name = 'Alicia' WHERE id = $1`, s.alice.UserID)
		prof := oaFlow(t, e, s.conf, s.alice.Access, url.Values{"scope": {"openid profile"}})
		if m := oaUserinfo(e, prof.AccessToken).Expect(t, http.StatusOK, "").JSON(t); m["given_name"] != "Alicia" || m["email"] != nil {
			t.Fatalf("userinfo after a profile change: %v", m)
		}
	})
}

func TestOAuthConsentsAPI(t *testing.T) {
	oaEach(t, func(t *testing.T, e *apitest.Env) {
		s := oaStart(t, e)
		bob := e.User("bob@example.com")
		tok := oaFlow(t, e, s.conf, s.alice.Access, url.Values{"scope": {"openid email"}})
		ptok := oaFlow(t, e, s.pub, s.alice.Access, url.Values{"scope": {"openid"}})
		btok := oaFlow(t, e, s.conf, bob.Access, url.Values{"scope": {"openid"}})

		e.Get(oaBase+"/consents", "").Expect(t, http.StatusUnauthorized, "AUTH_006")
		var list []map[string]any
		e.Get(oaBase+"/consents", s.alice.Access).Expect(t, http.StatusOK, "").Decode(t, &list)
		byID := map[string]map[string]any{}
		for _, c := range list {
			byID[c["client_id"].(string)] = c
			if _, ok := c["granted_at"].(string); !ok {
				t.Fatalf("granted_at %v", c["granted_at"])
			}
			if _, ok := c["client_description"]; !ok {
				t.Fatalf("no client_description: %v", c)
			}
		}
		if len(list) != 2 || byID[s.conf.ID]["client_name"] != "App confidential" || fmt.Sprint(byID[s.conf.ID]["granted_scopes"]) != "[email openid]" ||
			byID[s.pub.ID]["client_name"] != "App public" || fmt.Sprint(byID[s.pub.ID]["granted_scopes"]) != "[openid]" {
			t.Fatalf("consents %v", list)
		}

		// Revoking a consent ends the user's tokens for that client at once.
		e.Delete(oaBase+"/consents/"+s.conf.ID, s.alice.Access).Expect(t, http.StatusNoContent, "")
		if oaAccessWorks(t, e, tok.AccessToken) {
			t.Fatal("the access token works after the consent was revoked")
		}
		oaErr(t, oaRefresh(e, s.conf, tok.RefreshToken, nil), 400, "invalid_grant", "")
		if !oaAccessWorks(t, e, ptok.AccessToken) || !oaAccessWorks(t, e, btok.AccessToken) {
			t.Fatal("revoking one consent ended another client's or another user's tokens")
		}
		e.Get(oaBase+"/consents", s.alice.Access).Expect(t, http.StatusOK, "").Decode(t, &list)
		if len(list) != 1 || list[0]["client_id"] != s.pub.ID {
			t.Fatalf("consents after revoking one: %v", list)
		}
		// The next authorization asks again.
		_, challenge := oaPKCE()
		if u := oaLocation(t, oaAuthorize(e, s.alice.Access, oaParams(s.conf, challenge, url.Values{"scope": {"openid"}})), http.StatusFound); u.Path != "/oauth/consent" {
			t.Fatalf("authorize after revoking consent went to %s", u)
		}
		expectError(t, e.Delete(oaBase+"/consents/"+s.conf.ID, s.alice.Access), http.StatusNotFound, "SYS_002", "No consent found for this client", "")
		expectError(t, e.Delete(oaBase+"/consents/no-such-client", s.alice.Access), http.StatusNotFound, "SYS_002", "No consent found for this client", "")
		e.Delete(oaBase+"/consents/"+s.pub.ID, "").Expect(t, http.StatusUnauthorized, "AUTH_006")
		// Bob's consent is his own.
		e.Get(oaBase+"/consents", bob.Access).Expect(t, http.StatusOK, "").Decode(t, &list)
		if len(list) != 1 || list[0]["client_id"] != s.conf.ID {
			t.Fatalf("bob's consents %v", list)
		}
	})
}

// `gatehouse keys rotate`: tokens signed before keep working, new ones carry
// the new keys, and the JWKS publishes both.
func TestOAuthKeyRotation(t *testing.T) {
	oaEach(t, func(t *testing.T, e *apitest.Env) {
		s := oaStart(t, e)
		before := oaFlow(t, e, s.conf, s.alice.Access, url.Values{"scope": {"openid"}})
		oldSet := oaJWKS(t, e)
		oldAccess, _ := oaJWT(t, before.AccessToken)
		oldID, _ := oaJWT(t, before.IDToken)

		rotated, err := e.App.Keys.Rotate(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		newKids := map[string]string{}
		for _, k := range rotated {
			newKids[k.Algorithm] = k.ID
		}
		set := oaJWKS(t, e)
		if len(set.Keys) != 4 {
			t.Fatalf("JWKS after rotation has %d keys, want 4", len(set.Keys))
		}
		for _, k := range oldSet.Keys {
			if len(set.Key(k.KeyID)) != 1 {
				t.Fatalf("rotated key %s no longer published", k.KeyID)
			}
		}
		// Tokens signed before the rotation still work and verify.
		if !oaAccessWorks(t, e, before.AccessToken) || !oaActive(t, e, s.conf, before.AccessToken) {
			t.Fatal("an access token signed before the rotation is refused")
		}
		oaVerify(t, set, before.AccessToken)
		oaVerify(t, set, before.IDToken)
		// New tokens carry the new kids.
		after := oaOK(t, oaRefresh(e, s.conf, before.RefreshToken, nil))
		ah, _ := oaVerify(t, set, after.AccessToken)
		ih, _ := oaVerify(t, set, after.IDToken)
		if ah["kid"] != newKids["ES256"] || ah["kid"] == oldAccess["kid"] || ih["kid"] != newKids["RS256"] || ih["kid"] == oldID["kid"] {
			t.Fatalf("kids after rotation: access %v (was %v, new %s), id %v (was %v, new %s)", ah["kid"], oldAccess["kid"], newKids["ES256"],
				ih["kid"], oldID["kid"], newKids["RS256"])
		}
		if !oaAccessWorks(t, e, after.AccessToken) {
			t.Fatal("a token of the new key is refused")
		}
		// kids are unique in the set.
		var kids []string
		for _, k := range set.Keys {
			kids = append(kids, k.KeyID)
		}
		sort.Strings(kids)
		if len(slices.Compact(kids)) != 4 {
			t.Fatalf("duplicate kids %v", kids)
		}
	})
}
