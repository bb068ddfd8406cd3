// Package socialtest fakes the identity providers of social login for
// tests: an OpenID Connect provider (discovery, authorization endpoint,
// token endpoint with client authentication and PKCE, RS256 ID tokens,
// JWKS, userinfo) and GitHub (OAuth web flow, /user, /user/emails), both as
// httptest servers speaking the real protocols, with knobs to make them
// misbehave. It also drives a whole browser login against the real
// Gatehouse API. Only tests import it.
package socialtest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// OIDCUser is the person who logs in at the fake OpenID Connect provider.
// Empty strings and a nil EmailVerified are left out of the claims.
type OIDCUser struct {
	Subject       string
	Email         string
	EmailVerified any // true/false, "true"/"false", or nil to omit the claim
	GivenName     string
	FamilyName    string
	Name          string
}

// TokenMode makes the token endpoint misbehave.
type TokenMode int

const (
	TokenOK            TokenMode = iota
	TokenGarbage                 // 200 with a body that is not JSON
	TokenErrorJSON               // 400 {"error":"invalid_grant"} even for a valid code
	TokenNoIDToken               // a valid answer without id_token
	TokenNoAccessToken           // 200 JSON without access_token
)

// SignMode selects the key that signs ID tokens.
type SignMode int

const (
	SignCurrent    SignMode = iota // the current key, its kid in the JWKS
	SignWrongKey                   // another key, with the current key's kid
	SignUnknownKid                 // another key, with a kid the JWKS does not list
	SignNone                       // alg "none", unsigned
)

// Garbage is how an endpoint answers garbage: with status 200, as a proxy
// or a broken deployment would.
type Garbage int

const (
	GarbageNone  Garbage = iota // a proper answer
	GarbageHTML                 // an HTML error page labelled application/json
	GarbageShape                // valid JSON of the wrong shape for the endpoint
)

// writeGarbage answers g, with shape as the wrong-shaped JSON; it reports
// false (and writes nothing) for GarbageNone.
func writeGarbage(w http.ResponseWriter, g Garbage, shape any) bool {
	switch g {
	case GarbageHTML:
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte("<html><body><h1>502 Bad Gateway</h1></body></html>"))
		return true
	case GarbageShape:
		writeJSON(w, http.StatusOK, shape)
		return true
	}
	return false
}

// AuthorizationRequest is what arrived at an authorization endpoint.
type AuthorizationRequest struct {
	ResponseType        string
	ClientID            string
	RedirectURI         string
	Scope               string
	State               string
	CodeChallenge       string
	CodeChallengeMethod string
	Nonce               string
}

// TokenRequest is what arrived at a token endpoint (and was accepted or
// refused: Error says why, "" when tokens were issued).
type TokenRequest struct {
	ClientAuth   string // "basic", "form" or ""
	ClientID     string
	Code         string
	RedirectURI  string
	CodeVerifier string
	Accept       string
	Error        string
}

// Issued are the tokens a token endpoint handed out.
type Issued struct {
	AccessToken  string
	RefreshToken string
	IDToken      string
}

type signingKey struct {
	kid       string
	key       *rsa.PrivateKey
	withdrawn bool // no longer in the JWKS (it may still sign: a leaked key)
}

type oidcCode struct {
	req     AuthorizationRequest
	user    OIDCUser
	expires time.Time
}

// OIDC is a fake OpenID Connect provider. Its issuer is its URL.
type OIDC struct {
	Server       *httptest.Server
	ClientID     string
	ClientSecret string

	mu sync.Mutex
	// Knobs (set them with the methods, safe while requests run).
	user              OIDCUser
	tokenMode         TokenMode
	signMode          SignMode
	claimsHook        func(map[string]any)
	emailInUserInfo   bool // email and email_verified only in userinfo
	noRefreshToken    bool
	issuerSlash       bool // the issuer is URL() + "/"
	jwksCacheControl  string
	garbage           map[string]Garbage // by endpoint
	now               func() time.Time   // the clock of iat and exp
	delays            map[string]time.Duration
	closing           chan struct{}
	closed            bool
	keys              []signingKey // keys[len-1] signs; all but the withdrawn are published
	foreign           *rsa.PrivateKey
	codes             map[string]oidcCode
	accessTokens      map[string]OIDCUser
	authorizations    []AuthorizationRequest
	tokenRequests     []TokenRequest
	issued            []Issued
	jwksFetches       int
	discoveryRequests int
	userinfoRequests  int
}

// NewOIDC starts a fake provider for one client. It is closed when the test
// ends.
func NewOIDC(t testing.TB, clientID, clientSecret string) *OIDC {
	t.Helper()
	p := &OIDC{ClientID: clientID, ClientSecret: clientSecret, delays: map[string]time.Duration{}, now: time.Now, garbage: map[string]Garbage{},
		jwksCacheControl: "public, max-age=3600",
		closing:          make(chan struct{}), codes: map[string]oidcCode{}, accessTokens: map[string]OIDCUser{},
		user: OIDCUser{Subject: "1000001", Email: "user@example.com", EmailVerified: true, GivenName: "Test", FamilyName: "User", Name: "Test User"}}
	p.keys = []signingKey{{kid: "key-1", key: newKey(t)}}
	p.foreign = newKey(t)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", p.delayed("discovery", p.discovery))
	mux.HandleFunc("GET /authorize", p.delayed("authorize", p.authorize))
	mux.HandleFunc("POST /token", p.delayed("token", p.token))
	mux.HandleFunc("GET /jwks", p.delayed("jwks", p.jwks))
	mux.HandleFunc("GET /userinfo", p.delayed("userinfo", p.userinfo))
	p.Server = httptest.NewServer(mux)
	t.Cleanup(p.Close)
	return p
}

func newKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// URL is the base URL of the provider, and its issuer unless
// SetIssuerTrailingSlash is on.
func (p *OIDC) URL() string { return p.Server.URL }

// Issuer is the provider's issuer, as its discovery document and ID tokens
// state it.
func (p *OIDC) Issuer() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.issuer()
}

// issuer is Issuer with p.mu held.
func (p *OIDC) issuer() string {
	if p.issuerSlash {
		return p.Server.URL + "/"
	}
	return p.Server.URL
}

// SetIssuerTrailingSlash makes the issuer URL() + "/", as Auth0's issuers
// are: discovery stays at URL()/.well-known/openid-configuration (OpenID
// Connect Discovery §4 drops the trailing "/" before appending the path),
// but the document's issuer and every ID token's iss end in "/".
func (p *OIDC) SetIssuerTrailingSlash(on bool) { p.mu.Lock(); p.issuerSlash = on; p.mu.Unlock() }

// Close takes the provider down: later connections are refused.
func (p *OIDC) Close() {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		close(p.closing)
	}
	p.mu.Unlock()
	p.Server.Close()
}

// SetUser sets who logs in at the next authorization.
func (p *OIDC) SetUser(u OIDCUser) { p.mu.Lock(); p.user = u; p.mu.Unlock() }

// SetTokenMode makes the token endpoint misbehave.
func (p *OIDC) SetTokenMode(m TokenMode) { p.mu.Lock(); p.tokenMode = m; p.mu.Unlock() }

// SetSignMode chooses the key that signs ID tokens.
func (p *OIDC) SetSignMode(m SignMode) { p.mu.Lock(); p.signMode = m; p.mu.Unlock() }

// SetClaims lets a test change the ID token claims just before signing
// (wrong aud, iss, nonce, exp, missing sub …); nil restores the default.
func (p *OIDC) SetClaims(hook func(claims map[string]any)) {
	p.mu.Lock()
	p.claimsHook = hook
	p.mu.Unlock()
}

// SetEmailOnlyInUserInfo leaves email and email_verified out of the ID
// token; userinfo still has them.
func (p *OIDC) SetEmailOnlyInUserInfo(on bool) { p.mu.Lock(); p.emailInUserInfo = on; p.mu.Unlock() }

// SetNoRefreshToken leaves refresh_token out of token responses.
func (p *OIDC) SetNoRefreshToken(on bool) { p.mu.Lock(); p.noRefreshToken = on; p.mu.Unlock() }

// SetDelay makes an endpoint ("discovery", "authorize", "token", "jwks",
// "userinfo") answer only after d (or when the client gives up); 0 removes it.
func (p *OIDC) SetDelay(endpoint string, d time.Duration) {
	p.mu.Lock()
	p.delays[endpoint] = d
	p.mu.Unlock()
}

// RotateKey adds a new signing key with a new kid; the old key stays in the
// JWKS (as providers do during a rotation) but no longer signs.
func (p *OIDC) RotateKey(t testing.TB) string {
	t.Helper()
	k := newKey(t)
	p.mu.Lock()
	defer p.mu.Unlock()
	kid := fmt.Sprintf("key-%d", len(p.keys)+1)
	p.keys = append(p.keys, signingKey{kid: kid, key: k})
	return kid
}

// WithdrawKey takes the key kid out of the JWKS, as a provider does with a
// compromised key. If it is the current key it keeps signing ID tokens (as
// whoever stole it would) until RotateKey.
func (p *OIDC) WithdrawKey(kid string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range p.keys {
		if p.keys[i].kid == kid {
			p.keys[i].withdrawn = true
		}
	}
}

// CurrentKid is the kid of the key that signs ID tokens.
func (p *OIDC) CurrentKid() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.keys[len(p.keys)-1].kid
}

// SetGarbage makes an endpoint ("discovery", "jwks", "userinfo") answer
// garbage with status 200; GarbageNone restores it. (The token endpoint's
// garbage is SetTokenMode(TokenGarbage).) The wrong shapes are a discovery
// document with a relative authorization endpoint and no token endpoint, a
// JWKS whose keys is not a list, and userinfo whose sub is a number.
func (p *OIDC) SetGarbage(endpoint string, g Garbage) {
	p.mu.Lock()
	p.garbage[endpoint] = g
	p.mu.Unlock()
}

// SetJWKSCacheControl sets the Cache-Control header of the JWKS ("" leaves
// it out); the default is "public, max-age=3600".
func (p *OIDC) SetJWKSCacheControl(v string) { p.mu.Lock(); p.jwksCacheControl = v; p.mu.Unlock() }

// SetClock sets the clock ID tokens' iat and exp are computed from (nil:
// the real one), to follow a service whose clock a test moves.
func (p *OIDC) SetClock(now func() time.Time) {
	if now == nil {
		now = time.Now
	}
	p.mu.Lock()
	p.now = now
	p.mu.Unlock()
}

// JWKSFetches counts GET /jwks.
func (p *OIDC) JWKSFetches() int { p.mu.Lock(); defer p.mu.Unlock(); return p.jwksFetches }

// DiscoveryRequests counts GET /.well-known/openid-configuration.
func (p *OIDC) DiscoveryRequests() int { p.mu.Lock(); defer p.mu.Unlock(); return p.discoveryRequests }

// UserInfoRequests counts GET /userinfo.
func (p *OIDC) UserInfoRequests() int { p.mu.Lock(); defer p.mu.Unlock(); return p.userinfoRequests }

// Authorizations returns the authorization requests received, oldest first.
func (p *OIDC) Authorizations() []AuthorizationRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]AuthorizationRequest(nil), p.authorizations...)
}

// TokenRequests returns the token requests received, oldest first.
func (p *OIDC) TokenRequests() []TokenRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]TokenRequest(nil), p.tokenRequests...)
}

// Issued returns the tokens handed out, oldest first.
func (p *OIDC) Issued() []Issued {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Issued(nil), p.issued...)
}

// delayed wraps a handler with the endpoint's configured delay.
func (p *OIDC) delayed(endpoint string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		d, closing := p.delays[endpoint], p.closing
		p.mu.Unlock()
		if !wait(r, d, closing) {
			return
		}
		h(w, r)
	}
}

// wait sleeps d unless the client goes away or the server closes first; it
// reports whether to answer.
func wait(r *http.Request, d time.Duration, closing <-chan struct{}) bool {
	if d <= 0 {
		return true
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-r.Context().Done():
	case <-closing:
	}
	return false
}

func (p *OIDC) discovery(w http.ResponseWriter, _ *http.Request) {
	p.mu.Lock()
	p.discoveryRequests++
	issuer := p.issuer()
	garbage := p.garbage["discovery"]
	p.mu.Unlock()
	base := p.Server.URL
	if writeGarbage(w, garbage, map[string]any{"issuer": issuer, "authorization_endpoint": "/authorize", "jwks_uri": base + "/jwks"}) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                issuer,
		"authorization_endpoint":                base + "/authorize",
		"token_endpoint":                        base + "/token",
		"jwks_uri":                              base + "/jwks",
		"userinfo_endpoint":                     base + "/userinfo",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"scopes_supported":                      []string{"openid", "email", "profile"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
		"code_challenge_methods_supported":      []string{"S256"},
		"claims_supported":                      []string{"sub", "email", "email_verified", "given_name", "family_name", "name", "nonce"},
	})
}

// authorize is the browser-facing endpoint: the user is already logged in
// and consents, so it redirects back with a code at once. Bad requests get
// an error page, never a redirect (RFC 6749 §4.1.2.1).
func (p *OIDC) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	req := AuthorizationRequest{ResponseType: q.Get("response_type"), ClientID: q.Get("client_id"), RedirectURI: q.Get("redirect_uri"),
		Scope: q.Get("scope"), State: q.Get("state"), CodeChallenge: q.Get("code_challenge"),
		CodeChallengeMethod: q.Get("code_challenge_method"), Nonce: q.Get("nonce")}
	p.mu.Lock()
	p.authorizations = append(p.authorizations, req)
	user := p.user
	p.mu.Unlock()
	switch {
	case req.ClientID != p.ClientID:
		http.Error(w, "unknown client_id", http.StatusBadRequest)
		return
	case req.RedirectURI == "":
		http.Error(w, "missing redirect_uri", http.StatusBadRequest)
		return
	case req.ResponseType != "code":
		redirectBack(w, r, req.RedirectURI, url.Values{"error": {"unsupported_response_type"}, "state": {req.State}})
		return
	case req.CodeChallenge != "" && req.CodeChallengeMethod != "S256":
		redirectBack(w, r, req.RedirectURI, url.Values{"error": {"invalid_request"}, "error_description": {"S256 required"}, "state": {req.State}})
		return
	}
	code := randomToken("code")
	p.mu.Lock()
	p.codes[code] = oidcCode{req: req, user: user, expires: time.Now().Add(5 * time.Minute)}
	p.mu.Unlock()
	redirectBack(w, r, req.RedirectURI, url.Values{"code": {code}, "state": {req.State}})
}

// clientAuth reads client credentials from Basic auth (RFC 6749 §2.3.1:
// form-encoded before base64) or from the form.
func clientAuth(r *http.Request) (method, id, secret string) {
	if u, pw, ok := r.BasicAuth(); ok {
		id, _ = url.QueryUnescape(u)
		secret, _ = url.QueryUnescape(pw)
		return "basic", id, secret
	}
	if r.PostForm.Has("client_id") {
		return "form", r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	return "", "", ""
}

func (p *OIDC) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request"})
		return
	}
	method, id, secret := clientAuth(r)
	tr := TokenRequest{ClientAuth: method, ClientID: id, Code: r.PostForm.Get("code"), RedirectURI: r.PostForm.Get("redirect_uri"),
		CodeVerifier: r.PostForm.Get("code_verifier"), Accept: r.Header.Get("Accept")}
	p.mu.Lock()
	defer p.mu.Unlock()
	fail := func(status int, code, why string) {
		tr.Error = code + ": " + why
		p.tokenRequests = append(p.tokenRequests, tr)
		writeJSON(w, status, map[string]string{"error": code, "error_description": why})
	}
	if p.tokenMode == TokenErrorJSON {
		fail(http.StatusBadRequest, "invalid_grant", "the fake was told to refuse")
		return
	}
	if method == "" || id != p.ClientID || secret != p.ClientSecret {
		w.Header().Set("WWW-Authenticate", `Basic realm="fake"`)
		fail(http.StatusUnauthorized, "invalid_client", "client authentication failed")
		return
	}
	if r.PostForm.Get("grant_type") != "authorization_code" {
		fail(http.StatusBadRequest, "unsupported_grant_type", r.PostForm.Get("grant_type"))
		return
	}
	c, ok := p.codes[tr.Code]
	switch {
	case !ok || time.Now().After(c.expires):
		fail(http.StatusBadRequest, "invalid_grant", "unknown, used or expired code")
		return
	case c.req.ClientID != id:
		fail(http.StatusBadRequest, "invalid_grant", "code issued to another client")
		return
	case tr.RedirectURI != c.req.RedirectURI:
		fail(http.StatusBadRequest, "invalid_grant", "redirect_uri does not match the authorization request")
		return
	case c.req.CodeChallenge != "" && s256(tr.CodeVerifier) != c.req.CodeChallenge:
		fail(http.StatusBadRequest, "invalid_grant", "PKCE verification failed")
		return
	case c.req.CodeChallenge == "" && tr.CodeVerifier != "":
		fail(http.StatusBadRequest, "invalid_grant", "code_verifier without code_challenge")
		return
	}
	delete(p.codes, tr.Code) // single use
	p.tokenRequests = append(p.tokenRequests, tr)

	switch p.tokenMode {
	case TokenGarbage:
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte("<html>502 Bad Gateway</html>"))
		return
	case TokenNoAccessToken:
		writeJSON(w, http.StatusOK, map[string]any{"token_type": "Bearer", "expires_in": 3600})
		return
	}
	iss := Issued{AccessToken: randomToken("at"), RefreshToken: randomToken("rt")}
	if p.noRefreshToken {
		iss.RefreshToken = ""
	}
	p.accessTokens[iss.AccessToken] = c.user
	resp := map[string]any{"access_token": iss.AccessToken, "token_type": "Bearer", "expires_in": 3600, "scope": c.req.Scope}
	if iss.RefreshToken != "" {
		resp["refresh_token"] = iss.RefreshToken
	}
	if p.tokenMode != TokenNoIDToken && strings.Contains(" "+c.req.Scope+" ", " openid ") {
		idt, err := p.idToken(c)
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "server_error", "error_description": err.Error()})
			return
		}
		iss.IDToken = idt
		resp["id_token"] = idt
	}
	p.issued = append(p.issued, iss)
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, resp)
}

// userClaims are the profile claims of u (empty ones left out).
func userClaims(u OIDCUser, withEmail bool) map[string]any {
	c := map[string]any{}
	set := func(k, v string) {
		if v != "" {
			c[k] = v
		}
	}
	set("sub", u.Subject)
	set("given_name", u.GivenName)
	set("family_name", u.FamilyName)
	set("name", u.Name)
	if withEmail {
		set("email", u.Email)
		if u.EmailVerified != nil {
			c["email_verified"] = u.EmailVerified
		}
	}
	return c
}

// idToken signs the ID token of a code (p.mu held).
func (p *OIDC) idToken(c oidcCode) (string, error) {
	now := p.now()
	claims := userClaims(c.user, !p.emailInUserInfo)
	claims["iss"] = p.issuer()
	claims["aud"] = c.req.ClientID
	claims["azp"] = c.req.ClientID
	claims["iat"] = now.Unix()
	claims["exp"] = now.Add(time.Hour).Unix()
	if c.req.Nonce != "" {
		claims["nonce"] = c.req.Nonce
	}
	if p.claimsHook != nil {
		p.claimsHook(claims)
	}
	cur := p.keys[len(p.keys)-1]
	if p.signMode == SignNone {
		tok := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims(claims))
		tok.Header["kid"] = cur.kid
		return tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims(claims))
	key := cur.key
	tok.Header["kid"] = cur.kid
	switch p.signMode {
	case SignWrongKey:
		key = p.foreign
	case SignUnknownKid:
		key = p.foreign
		tok.Header["kid"] = "kid-nobody-knows"
	}
	return tok.SignedString(key)
}

func (p *OIDC) jwks(w http.ResponseWriter, _ *http.Request) {
	p.mu.Lock()
	p.jwksFetches++
	keys := make([]map[string]string, 0, len(p.keys))
	for _, k := range p.keys {
		if k.withdrawn {
			continue
		}
		keys = append(keys, map[string]string{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": k.kid,
			"n": base64.RawURLEncoding.EncodeToString(k.key.N.Bytes()),
			"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.key.E)).Bytes())})
	}
	cc := p.jwksCacheControl
	garbage := p.garbage["jwks"]
	p.mu.Unlock()
	if cc != "" {
		w.Header().Set("Cache-Control", cc)
	}
	if writeGarbage(w, garbage, map[string]any{"keys": "none"}) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"keys": keys})
}

func (p *OIDC) userinfo(w http.ResponseWriter, r *http.Request) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	p.mu.Lock()
	p.userinfoRequests++
	u, known := p.accessTokens[tok]
	garbage := p.garbage["userinfo"]
	p.mu.Unlock()
	if !ok || !known {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token"})
		return
	}
	if writeGarbage(w, garbage, map[string]any{"sub": 42, "email": u.Email, "email_verified": true}) {
		return
	}
	writeJSON(w, http.StatusOK, userClaims(u, true))
}

// s256 is the PKCE S256 transform (RFC 7636 §4.2).
func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// S256 is exported for tests that check a stored value against a challenge.
func S256(verifier string) string { return s256(verifier) }

func randomToken(prefix string) string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return prefix + "_" + base64.RawURLEncoding.EncodeToString(b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// redirectBack sends the browser to redirectURI with params added to its
// query.
func redirectBack(w http.ResponseWriter, r *http.Request, redirectURI string, params url.Values) {
	u, err := url.Parse(redirectURI)
	if err != nil {
		http.Error(w, "bad redirect_uri", http.StatusBadRequest)
		return
	}
	q := u.Query()
	for k, vs := range params {
		for _, v := range vs {
			if v != "" {
				q.Add(k, v)
			}
		}
	}
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}
