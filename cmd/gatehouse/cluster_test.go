package main

// Several `gatehouse serve` processes on one PostgreSQL database as one
// service (issue 8), run and operated as an operator would: here, the
// authorization server's signing keys rotated by `gatehouse keys rotate`
// from outside while the instances keep serving. The in-process cluster
// tests (internal/httpapi/cluster_test.go) cover a rotation made inside
// one instance.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/dbtest"
	"github.com/gatehouse-dev/gatehouse/internal/keys"
	"github.com/gatehouse-dev/gatehouse/internal/sqlstore"
)

// keysReloadBound is how long an instance may keep signing with keys that
// `keys rotate` retired: docs/DEPLOYMENT.md promises the new keys within a
// minute (each instance reloads its keys a minute after it last did); the
// rest is slack for a loaded machine. A bound, not a measurement.
const keysReloadBound = 90 * time.Second

// A rotation by the operator's command, with two instances serving: before
// the rotation both sign with the same keys and verify each other's
// tokens; right after it, tokens from either still verify on both, whether
// signed with the old keys or the new; within the documented minute both
// sign with the keys the command printed and publish the new and the old
// keys; tokens of the old keys verify on both until the end, and a grant
// issued before the rotation is refreshed on the other instance into a
// token of the new key.
func TestClusterKeysRotateCommand(t *testing.T) {
	t.Parallel()
	if os.Getenv(dbtest.EnvPostgres) == "" {
		t.Skipf("%s is not set: a cluster needs PostgreSQL", dbtest.EnvPostgres)
	}
	env := providerEnv(t, sqlstore.Postgres)
	a := startProcess(t, env)
	b := startProcess(t, env)
	pv := newProvider(t, a.base(), b.base())

	fromA, fromB := pv.flow(a.base()), pv.flow(b.base())
	oldES, oldRS := kidOf(t, fromA.access), kidOf(t, fromA.id)
	if kidOf(t, fromB.access) != oldES || kidOf(t, fromB.id) != oldRS {
		t.Fatalf("A and B sign with different keys before any rotation")
	}
	before := []grant{fromA, fromB}
	for _, g := range before {
		pv.verifiesEverywhere(g, "a token of the first keys")
	}

	stdout, stderr, code := runProcess(t, env, "keys", "rotate")
	rotatedAt := time.Now()
	if code != 0 {
		t.Fatalf("keys rotate: exit code %d\n%s%s", code, stdout, stderr)
	}
	created := rotatedKids(t, stdout)
	newES, newRS := created[keys.ES256], created[keys.RS256]
	if newES == oldES || newRS == oldRS {
		t.Fatalf("keys rotate printed the keys in use: %s", stdout)
	}

	// Right after the rotation the instances may still sign with the old
	// keys (for up to a minute); whichever they use verifies everywhere.
	for _, base := range []string{a.base(), b.base()} {
		g := pv.flow(base)
		if k := kidOf(t, g.access); k != oldES && k != newES {
			t.Errorf("right after the rotation, an access token of %s has kid %s, neither the old nor the new key", base, k)
		}
		pv.verifiesEverywhere(g, "a token issued right after the rotation")
		before = append(before, g)
	}

	// Within the minute, each instance reloads its keys and publishes the
	// new ones.
	for _, base := range []string{a.base(), b.base()} {
		for {
			kids := jwksKids(t, base)
			if kids[newES] == keys.ES256 && kids[newRS] == keys.RS256 {
				break
			}
			if time.Since(rotatedAt) > keysReloadBound {
				t.Fatalf("%s still does not publish the new keys %v after the rotation; JWKS %v", keysReloadBound, created, kids)
			}
			time.Sleep(time.Second)
		}
	}
	t.Logf("both instances published the new keys %v after the rotation", time.Since(rotatedAt).Round(time.Second))

	for _, base := range []string{a.base(), b.base()} {
		kids := jwksKids(t, base)
		if kids[oldES] != keys.ES256 || kids[oldRS] != keys.RS256 {
			t.Errorf("%s no longer publishes the old keys after the rotation: %v", base, kids)
		}
		g := pv.flow(base)
		if got, got2 := kidOf(t, g.access), kidOf(t, g.id); got != newES || got2 != newRS {
			t.Errorf("%s signs with %s (access) and %s (ID token), want the new %s and %s", base, got, got2, newES, newRS)
		}
		pv.verifiesEverywhere(g, "a token of the new keys")
	}
	for _, g := range before {
		pv.verifiesEverywhere(g, "a token issued before the instances loaded the new keys")
	}
	refreshed := pv.refresh(b.base(), fromA.refresh)
	if got := kidOf(t, refreshed.access); got != newES {
		t.Errorf("a grant from before the rotation refreshed on B: kid %s, want the new %s", got, newES)
	}
	pv.verifiesEverywhere(refreshed, "a token refreshed after the rotation")

	for _, p := range []*process{a, b} {
		p.terminate()
		p.waitExit()
		for _, l := range p.log.all() {
			if l.level() == "ERROR" {
				t.Errorf("error logged: %s", l.raw)
			}
		}
	}
}

// providerEnv is smokeEnvOn with the authorization server on, a first
// superuser to register clients, and no rate limits (the tests here send a
// few dozen requests from one address, which is not what they are about).
func providerEnv(t *testing.T, engine sqlstore.Engine) map[string]string {
	t.Helper()
	env := smokeEnvOn(t, engine)
	env["OAUTH_PROVIDER_ENABLED"] = "true"
	env["FIRST_SUPERUSER_EMAIL"] = "root@example.com"
	env["FIRST_SUPERUSER_PASSWORD"] = "R00t!Passw0rd"
	env["RATE_LIMIT_ENABLED"] = "false"
	return env
}

var rotatedLine = regexp.MustCompile(`^new (ES256|RS256) signing key ([A-Za-z0-9_-]{43})$`)

// rotatedKids parses the output of `keys rotate`: one line per algorithm,
// naming the new key.
func rotatedKids(t *testing.T, stdout string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		m := rotatedLine.FindStringSubmatch(line)
		if m == nil || out[m[1]] != "" {
			t.Fatalf("unexpected line %q in the output of keys rotate:\n%s", line, stdout)
		}
		out[m[1]] = m[2]
	}
	if len(out) != 2 {
		t.Fatalf("keys rotate printed %d keys, want one ES256 and one RS256:\n%s", len(out), stdout)
	}
	return out
}

// storedKeys reads the signing keys from the database at env's
// DATABASE_URL.
func storedKeys(t *testing.T, env map[string]string) map[string]keys.Stored {
	t.Helper()
	st, err := sqlstore.Open(context.Background(), config.DB{URL: env["DATABASE_URL"], PoolSize: 1, PoolRecycle: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	list, err := st.SigningKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]keys.Stored{}
	for _, k := range list {
		out[k.ID] = k
	}
	return out
}

// exchange is one HTTP exchange of a test client.
type exchange struct {
	status int
	header http.Header
	body   []byte
}

// noFollow is a client that returns redirects instead of following them.
var noFollow = &http.Client{Timeout: hangBound, Transport: &http.Transport{},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// ask sends one request; a body is JSON unless it is url.Values (a form).
func ask(t *testing.T, method, target, bearer string, body any) exchange {
	t.Helper()
	var (
		rd    io.Reader
		ctype string
	)
	switch b := body.(type) {
	case nil:
	case url.Values:
		rd, ctype = strings.NewReader(b.Encode()), "application/x-www-form-urlencoded"
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd, ctype = bytes.NewReader(j), "application/json"
	}
	req, err := http.NewRequest(method, target, rd)
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := noFollow.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, target, err)
	}
	return exchange{status: resp.StatusCode, header: resp.Header, body: raw}
}

func (x exchange) want(t *testing.T, status int, what string) exchange {
	t.Helper()
	if x.status != status {
		t.Fatalf("%s: status %d, want %d; Location %q; body %.500s", what, x.status, status, x.header.Get("Location"), x.body)
	}
	return x
}

// field returns a string member of the JSON body.
func (x exchange) field(t *testing.T, key string) string {
	t.Helper()
	var m map[string]any
	_ = json.Unmarshal(x.body, &m)
	s, ok := m[key].(string)
	if !ok || s == "" {
		t.Fatalf("no %q in %.500s", key, x.body)
	}
	return s
}

const (
	providerPath   = "/api/v1/oauth/provider"
	clientRedirect = "https://client.example.com/callback"
)

// provider drives the authorization server of a deployment: one
// confidential client registered by the first superuser, and one user who
// grants it access.
type provider struct {
	t             *testing.T
	bases         []string // every instance
	id, secret    string
	user, userSub string // the user's first-party access token and id
}

// grant is the tokens of one token response.
type grant struct{ access, refresh, id string }

// newProvider registers the client and the user through the instances at
// bases (the first, then the second).
func newProvider(t *testing.T, bases ...string) provider {
	t.Helper()
	first, second := bases[0], bases[len(bases)-1]
	admin := ask(t, "POST", first+"/api/v1/auth/login", "", map[string]any{"email": "root@example.com", "password": "R00t!Passw0rd"}).
		want(t, http.StatusOK, "superuser login").field(t, "access_token")
	c := ask(t, "POST", first+providerPath+"/clients", admin, url.Values{"client_name": {"Cluster app"},
		"client_type": {"confidential"}, "redirect_uris": {clientRedirect}}).want(t, http.StatusOK, "register a client")
	pv := provider{t: t, bases: bases, id: c.field(t, "client_id"), secret: c.field(t, "client_secret")}
	pv.userSub = ask(t, "POST", second+"/api/v1/auth/register", "", map[string]any{"email": "alice@example.com",
		"password": smokePassword, "first_name": "Alice"}).want(t, http.StatusCreated, "register").field(t, "id")
	pv.user = ask(t, "POST", first+"/api/v1/auth/login", "", map[string]any{"email": "alice@example.com", "password": smokePassword}).
		want(t, http.StatusOK, "login").field(t, "access_token")
	return pv
}

// flow runs the code flow with PKCE and scope openid on the instance at
// base, consenting when asked, and returns the tokens.
func (pv provider) flow(base string) grant {
	t := pv.t
	t.Helper()
	verifier := rand.Text() + rand.Text()
	sum := sha256.Sum256([]byte(verifier))
	v := url.Values{"response_type": {"code"}, "client_id": {pv.id}, "redirect_uri": {clientRedirect}, "scope": {"openid"},
		"state": {"st-cluster"}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
	loc := ask(t, "GET", base+providerPath+"/authorize?"+v.Encode(), pv.user, nil).want(t, http.StatusFound, "authorize").header.Get("Location")
	if !strings.HasPrefix(loc, clientRedirect+"?") {
		f := url.Values{"approved": {"true"}}
		for k, vs := range v {
			if k != "response_type" {
				f[k] = vs
			}
		}
		loc = ask(t, "POST", base+providerPath+"/authorize/consent", pv.user, f).want(t, http.StatusSeeOther, "consent").header.Get("Location")
	}
	u, err := url.Parse(loc)
	if err != nil || !strings.HasPrefix(loc, clientRedirect+"?") || u.Query().Get("code") == "" {
		t.Fatalf("no code in the redirect to the client: %q", loc)
	}
	return pv.tokens(ask(t, "POST", base+providerPath+"/token", "", url.Values{"grant_type": {"authorization_code"},
		"code": {u.Query().Get("code")}, "redirect_uri": {clientRedirect}, "code_verifier": {verifier},
		"client_id": {pv.id}, "client_secret": {pv.secret}}))
}

// refresh exchanges a refresh token on the instance at base.
func (pv provider) refresh(base, refresh string) grant {
	pv.t.Helper()
	return pv.tokens(ask(pv.t, "POST", base+providerPath+"/token", "", url.Values{"grant_type": {"refresh_token"},
		"refresh_token": {refresh}, "client_id": {pv.id}, "client_secret": {pv.secret}}))
}

func (pv provider) tokens(x exchange) grant {
	t := pv.t
	t.Helper()
	x.want(t, http.StatusOK, "token endpoint")
	return grant{access: x.field(t, "access_token"), refresh: x.field(t, "refresh_token"), id: x.field(t, "id_token")}
}

// verifiesEverywhere checks the access token on every instance: active at
// introspection (as the client) and accepted at userinfo, both for the
// user.
func (pv provider) verifiesEverywhere(g grant, what string) {
	t := pv.t
	t.Helper()
	for _, base := range pv.bases {
		in := ask(t, "POST", base+providerPath+"/introspect", "", url.Values{"token": {g.access},
			"client_id": {pv.id}, "client_secret": {pv.secret}}).want(t, http.StatusOK, "introspection")
		var m map[string]any
		_ = json.Unmarshal(in.body, &m)
		if m["active"] != true || m["sub"] != pv.userSub {
			t.Errorf("%s (kid %s) at %s: introspection says %s", what, kidOf(t, g.access), base, in.body)
		}
		ui := ask(t, "GET", base+providerPath+"/userinfo", g.access, nil)
		if ui.status != http.StatusOK || !strings.Contains(string(ui.body), pv.userSub) {
			t.Errorf("%s (kid %s) at %s: userinfo %d %s", what, kidOf(t, g.access), base, ui.status, ui.body)
		}
	}
}

// kidOf returns the kid in a JWT's header (not verified: the server does
// that).
func kidOf(t *testing.T, jwt string) string {
	t.Helper()
	head, _, _ := strings.Cut(jwt, ".")
	raw, err := base64.RawURLEncoding.DecodeString(head)
	var h struct {
		Kid string `json:"kid"`
	}
	if err != nil || json.Unmarshal(raw, &h) != nil || h.Kid == "" {
		t.Fatalf("no kid in the JWT header %q", raw)
	}
	return h.Kid
}

// jwksKids returns the keys the instance at base publishes: kid -> alg.
func jwksKids(t *testing.T, base string) map[string]string {
	t.Helper()
	x := ask(t, "GET", base+"/.well-known/jwks.json", "", nil).want(t, http.StatusOK, "JWKS")
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
			Alg string `json:"alg"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(x.body, &set); err != nil {
		t.Fatalf("JWKS: %v: %s", err, x.body)
	}
	out := map[string]string{}
	for _, k := range set.Keys {
		out[k.Kid] = k.Alg
	}
	return out
}
