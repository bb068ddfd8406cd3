package oauth

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// Unit tests of the authorization server's parsers and rules: scopes,
// redirect URIs (registration, matching, building), resource indicators,
// PKCE and the OpenID Connect at_hash.

func TestParseScope(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"   \t\n ", nil},
		{"openid", []string{"openid"}},
		{"profile openid email", []string{"email", "openid", "profile"}},
		{"  email\temail \n openid email ", []string{"email", "openid"}},
		{"read:users admin read:users", []string{"admin", "read:users"}},
	} {
		got := ParseScope(tc.in)
		if len(got) != len(tc.want) || (len(got) > 0 && !slices.Equal(got, tc.want)) {
			t.Errorf("ParseScope(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if j := JoinScope(got); j != strings.Join(tc.want, " ") {
			t.Errorf("JoinScope(ParseScope(%q)) = %q", tc.in, j)
		}
	}
}

func TestIntersectAndCovers(t *testing.T) {
	allowed := []string{"email", "openid", "profile"}
	for _, tc := range []struct {
		requested, want []string
	}{
		{[]string{"openid"}, []string{"openid"}},
		{[]string{"profile", "openid", "admin"}, []string{"openid", "profile"}},
		{[]string{"email", "email", "openid"}, []string{"email", "openid"}},
		{[]string{"admin", "write:users"}, nil},
		{nil, nil},
		{[]string{"OPENID"}, nil}, // scopes are case-sensitive (RFC 6749 §3.3)
	} {
		got := intersect(tc.requested, allowed)
		if len(got) != len(tc.want) || (len(got) > 0 && !slices.Equal(got, tc.want)) {
			t.Errorf("intersect(%q) = %q, want %q", tc.requested, got, tc.want)
		}
	}
	if !covers([]string{"email", "openid"}, []string{"openid"}) || !covers([]string{"openid"}, nil) {
		t.Error("covers refuses a subset")
	}
	if covers([]string{"openid"}, []string{"openid", "email"}) {
		t.Error("covers accepts a superset")
	}
}

func TestValidateRedirectURI(t *testing.T) {
	ok := []string{
		"https://app.example.com/callback",
		"https://app.example.com/cb?tenant=acme",
		"https://app.example.com:8443/cb",
		"http://127.0.0.1/callback",
		"http://127.0.0.1:6276/oauth/callback",
		"http://[::1]:8080/cb",
		"http://localhost/cb",
		"http://localhost:3000/cb",
	}
	for _, u := range ok {
		if why := ValidateRedirectURI(u); why != "" {
			t.Errorf("ValidateRedirectURI(%q) refused: %s", u, why)
		}
	}
	bad := map[string]string{
		"":                                   "valid URL",
		"/callback":                          "absolute",
		"callback":                           "absolute",
		"//app.example.com/cb":               "absolute",
		"javascript:alert(1)":                "absolute",
		"data:text/html;base64,PHNjcmlwdD4=": "absolute",
		"https://app.example.com/cb#frag":    "fragment",
		"https://app.example.com/cb#":        "fragment",
		"https://user:pw@app.example.com/cb": "user information",
		"https://user@app.example.com/cb":    "user information",
		"http://app.example.com/cb":          "https",
		"http://localhost.evil.example/cb":   "https",
		"http://127.0.0.1.nip.io/cb":         "https",
		"ftp://app.example.com/cb":           "https",
		"custom-scheme://callback":           "https",
		"https:///no-host":                   "absolute",
		"https://app.example.com/\x00":       "valid URL",
		"https://app.example.com/" + strings.Repeat("a", 2100): "valid URL",
	}
	for u, want := range bad {
		why := ValidateRedirectURI(u)
		if why == "" || !strings.Contains(why, want) {
			t.Errorf("ValidateRedirectURI(%q) = %q, want a refusal mentioning %q", u, why, want)
		}
	}
}

func TestMatchRedirectURI(t *testing.T) {
	registered := []string{
		"https://app.example.com/cb",
		"https://app.example.com/q?tenant=acme",
		"http://127.0.0.1:8080/callback",
		"http://[::1]/callback",
		"http://localhost:3000/cb",
	}
	for _, tc := range []struct {
		requested string
		want      bool
	}{
		{"https://app.example.com/cb", true},
		{"https://app.example.com/q?tenant=acme", true},
		// Exact string comparison for everything but loopback IP ports.
		{"https://app.example.com/cb/", false},
		{"https://APP.example.com/cb", false},
		{"https://app.example.com/CB", false},
		{"https://app.example.com:443/cb", false},
		{"https://app.example.com/cb?x=1", false},
		{"https://app.example.com/q?tenant=other", false},
		{"https://app.example.com/q", false},
		{"https://app.example.com/cb#x", false},
		{"https://evil.example.com/cb", false},
		{"https://app.example.com.evil.example/cb", false},
		// RFC 8252 §7.3: loopback IP literals with any port.
		{"http://127.0.0.1:8080/callback", true},
		{"http://127.0.0.1:51234/callback", true},
		{"http://127.0.0.1/callback", true},
		{"http://[::1]:49152/callback", true},
		{"http://[::1]/callback", true},
		// …but the same path, query, scheme and host.
		{"http://127.0.0.1:51234/other", false},
		{"http://127.0.0.1:51234/callback?x=1", false},
		{"http://127.0.0.1:51234/callback#f", false},
		{"http://user@127.0.0.1:51234/callback", false},
		{"https://127.0.0.1:8080/callback", false},
		{"http://[::1]:8080/other", false},
		{"http://127.0.0.1:9000/cb", false},
		{"http://[::1]:8080/cb", false},
		{"http://127.0.0.2:8080/callback", false},
		// localhost is a name, not a loopback IP: exact string only.
		{"http://localhost:3000/cb", true},
		{"http://localhost:3001/cb", false},
		{"http://localhost/cb", false},
		{"http://127.0.0.1:3000/cb", false},
		{"", false},
		{"%zz", false},
	} {
		if got := MatchRedirectURI(registered, tc.requested); got != tc.want {
			t.Errorf("MatchRedirectURI(%q) = %v, want %v", tc.requested, got, tc.want)
		}
	}
	if MatchRedirectURI(nil, "https://app.example.com/cb") {
		t.Error("matched against no registered URI")
	}
}

func TestWithParams(t *testing.T) {
	params := url.Values{"code": {"c0de/+="}, "state": {"s t&a=te"}, "iss": {"https://auth.example.com"}, "empty": {""}}
	got := WithParams("https://app.example.com/cb", params)
	u, err := url.Parse(got)
	if err != nil {
		t.Fatal(err)
	}
	if u.Scheme != "https" || u.Host != "app.example.com" || u.Path != "/cb" || u.Fragment != "" {
		t.Fatalf("WithParams changed the target: %s", got)
	}
	q := u.Query()
	if q.Get("code") != "c0de/+=" || q.Get("state") != "s t&a=te" || q.Get("iss") != "https://auth.example.com" {
		t.Fatalf("parameters not encoded as values: %s", got)
	}
	if q.Has("empty") {
		t.Fatalf("empty parameter sent: %s", got)
	}
	if len(q) != 3 {
		t.Fatalf("query %v", q)
	}
}

// Fix 27: a redirect URI with a query keeps it (RFC 6749 §3.1.2: "MUST be
// retained") and the parameters are appended with "&".
func TestWithParamsKeepsExistingQuery(t *testing.T) {
	for _, base := range []string{
		"https://app.example.com/cb?tenant=acme",
		"https://app.example.com/cb?tenant=acme&mode=x",
		"http://127.0.0.1:8080/cb?z=1&a=2",
	} {
		got := WithParams(base, url.Values{"code": {"abc"}, "state": {"xyz"}})
		u, err := url.Parse(got)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := url.Parse(base)
		for k, v := range b.Query() {
			if !slices.Equal(u.Query()[k], v) {
				t.Errorf("WithParams(%q) = %q lost %s=%v", base, got, k, v)
			}
		}
		if u.Query().Get("code") != "abc" || u.Query().Get("state") != "xyz" {
			t.Errorf("WithParams(%q) = %q: parameters missing", base, got)
		}
		if !strings.HasPrefix(got, base+"&") {
			t.Errorf("WithParams(%q) = %q: the registered query is not kept as is with the parameters appended after \"&\"", base, got)
		}
	}
}

func TestCanonicalResource(t *testing.T) {
	for in, want := range map[string]string{
		"https://mcp.example.com/mcp":         "https://mcp.example.com/mcp",
		"HTTPS://MCP.Example.COM/mcp":         "https://mcp.example.com/mcp",
		"https://mcp.example.com/MCP":         "https://mcp.example.com/MCP", // path is case-sensitive
		"https://mcp.example.com/mcp/":        "https://mcp.example.com/mcp",
		"https://mcp.example.com/":            "https://mcp.example.com",
		"https://mcp.example.com":             "https://mcp.example.com",
		"https://mcp.example.com:443/mcp":     "https://mcp.example.com/mcp",
		"http://mcp.example.com:80/mcp":       "http://mcp.example.com/mcp",
		"https://mcp.example.com:8443/mcp":    "https://mcp.example.com:8443/mcp",
		"http://127.0.0.1:9000/mcp":           "http://127.0.0.1:9000/mcp",
		"  https://mcp.example.com/mcp  ":     "https://mcp.example.com/mcp",
		"https://mcp.example.com/mcp#section": "",
		"https://mcp.example.com/mcp#":        "",
		"https://user@mcp.example.com/mcp":    "",
		"/mcp":                                "",
		"mcp.example.com":                     "",
		"urn:example:mcp":                     "",
		"":                                    "",
		"%zz":                                 "",
	} {
		if got := CanonicalResource(in); got != want {
			t.Errorf("CanonicalResource(%q) = %q, want %q", in, got, want)
		}
	}
}

// RFC 3986 §6.2.2.2: only percent-encoded unreserved characters may be
// decoded; %2F is a reserved "/" inside a segment, so these are two
// different resources and must not get the same audience.
func TestCanonicalResourceKeepsEncodedSlash(t *testing.T) {
	a, b := CanonicalResource("https://mcp.example.com/a%2Fb"), CanonicalResource("https://mcp.example.com/a/b")
	if a == "" || b == "" {
		t.Fatalf("refused: %q %q", a, b)
	}
	if a == b {
		t.Errorf("CanonicalResource maps https://mcp.example.com/a%%2Fb and https://mcp.example.com/a/b to the same audience %q", a)
	}
}

func pkcePair(t *testing.T) (verifier, challenge string) {
	t.Helper()
	verifier = strings.Repeat("v3rifier-", 6) // 54 characters of the unreserved set
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

func TestCheckPKCE(t *testing.T) {
	verifier, challenge := pkcePair(t)
	public := Client{ClientID: "pub", Type: Public}
	confidential := Client{ClientID: "conf", Type: Confidential}
	withChallenge := Code{CodeChallenge: challenge, CodeChallengeMethod: "S256"}
	noChallenge := Code{}

	long := strings.Repeat("a", 129)
	sumLong := sha256.Sum256([]byte(long))
	for _, tc := range []struct {
		name     string
		client   Client
		code     Code
		verifier string
		wantDesc string // "" = accepted
	}{
		{"public, right verifier", public, withChallenge, verifier, ""},
		{"confidential, right verifier", confidential, withChallenge, verifier, ""},
		{"confidential without PKCE", confidential, noChallenge, "", ""},
		{"missing verifier", public, withChallenge, "", "code_verifier required"},
		{"wrong verifier", public, withChallenge, verifier + "x", "Invalid code_verifier"},
		{"verifier is the challenge", public, withChallenge, challenge, "Invalid code_verifier"},
		{"verifier too short", public, Code{CodeChallenge: base64.RawURLEncoding.EncodeToString(func() []byte { s := sha256.Sum256([]byte("short")); return s[:] }()), CodeChallengeMethod: "S256"}, "short", "Invalid code_verifier"},
		{"verifier too long", public, Code{CodeChallenge: base64.RawURLEncoding.EncodeToString(sumLong[:]), CodeChallengeMethod: "S256"}, long, "Invalid code_verifier"},
		{"plain method stored", public, Code{CodeChallenge: verifier, CodeChallengeMethod: "plain"}, verifier, "Invalid code_verifier"},
		{"public without challenge", public, noChallenge, "", "PKCE required for public clients"},
		{"public without challenge, verifier sent", public, noChallenge, verifier, "PKCE required for public clients"},
		// RFC 9700 §4.8: a verifier for a code issued without a challenge is a downgrade.
		{"downgrade", confidential, noChallenge, verifier, "no code_challenge"},
	} {
		err := checkPKCE(tc.client, tc.code, tc.verifier)
		if tc.wantDesc == "" {
			if err != nil {
				t.Errorf("%s: refused: %v", tc.name, err)
			}
			continue
		}
		var oe *Error
		if !errors.As(err, &oe) || oe.Code != "invalid_grant" || oe.Status != 400 || !strings.Contains(oe.Description, tc.wantDesc) {
			t.Errorf("%s: got %v, want invalid_grant mentioning %q", tc.name, err, tc.wantDesc)
		}
	}
}

// RFC 7636 appendix B test vector.
func TestCheckPKCERFC7636Vector(t *testing.T) {
	code := Code{CodeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", CodeChallengeMethod: "S256"}
	if err := checkPKCE(Client{Type: Public}, code, "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"); err != nil {
		t.Fatal(err)
	}
}

func TestAtHash(t *testing.T) {
	// OpenID Connect Core §3.1.3.6: left half of SHA-256, base64url without padding.
	tok := "eyJhbGciOiJFUzI1NiJ9.e30.sig"
	sum := sha256.Sum256([]byte(tok))
	want := base64.RawURLEncoding.EncodeToString(sum[:16])
	if got := atHash(tok); got != want || len(got) != 22 {
		t.Fatalf("atHash = %q, want %q", got, want)
	}
	// Known vector: the access token of OpenID Connect Core appendix A.3/A.4
	// ("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y") has at_hash "77QmUPtjPfzWtF2AnpK9RQ".
	if got := atHash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"); got != "77QmUPtjPfzWtF2AnpK9RQ" {
		t.Fatalf("atHash of the OIDC Core example = %q", got)
	}
	if atHash("a") == atHash("b") {
		t.Fatal("atHash ignores its input")
	}
}

func TestErrorStatus(t *testing.T) {
	for code, status := range map[string]int{"invalid_request": 400, "invalid_grant": 400, "invalid_scope": 400,
		"unsupported_grant_type": 400, "invalid_client": 401, "invalid_token": 401, "insufficient_scope": 403} {
		if e := oerr(code, "x"); e.Status != status || e.Error() != code+": x" {
			t.Errorf("oerr(%s) = %d %q", code, e.Status, e.Error())
		}
	}
}

func TestParseAuthRequestRoundTrip(t *testing.T) {
	v := url.Values{"response_type": {"code"}, "client_id": {"c"}, "redirect_uri": {"https://a/cb?x=1"}, "scope": {"openid email"},
		"state": {"s&t"}, "code_challenge": {"ch"}, "code_challenge_method": {"S256"}, "nonce": {"n"}, "resource": {"https://r"}, "prompt": {"none"}}
	r := ParseAuthRequest(v)
	back := r.Values()
	for k := range v {
		if back.Get(k) != v.Get(k) {
			t.Errorf("%s: %q != %q", k, back.Get(k), v.Get(k))
		}
	}
	if got := (AuthRequest{ClientID: "c"}).Values(); len(got) != 1 {
		t.Errorf("empty values encoded: %v", got)
	}
}
