package oauth

// Fuzz targets for the parsers of the authorization server: redirect URIs,
// scopes, PKCE, resource indicators, redirect building and authorization
// requests. `go test` runs each seed corpus (and testdata/fuzz/<Target>,
// where found crashers are kept as regression seeds); `go test -fuzz=Target`
// explores further. Each target checks properties, not just the absence of
// panics.

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// Real-world redirect URIs, good and bad.
var redirectSeeds = []string{
	"https://app.example.com/callback",
	"https://app.example.com/cb?tenant=acme&x=1",
	"https://app.example.com:8443/oauth/callback",
	"HTTPS://App.Example.COM/Callback",
	"https://xn--bcher-kva.example/cb",
	"https://bücher.example/cb",
	"http://127.0.0.1/callback",
	"http://127.0.0.1:0/cb",
	"http://127.0.0.1:6276/oauth/callback",
	"http://127.0.0.1:65535/x",
	"http://127.0.0.1:99999/x",
	"http://[::1]/cb",
	"http://[::1]:65535/x",
	"http://[::1%25lo]:8080/cb",
	"http://[::ffff:127.0.0.1]:80/cb",
	"http://localhost/cb",
	"http://localhost:3000/auth/callback",
	"http://LOCALHOST/cb",
	"http://localhost.evil.com/cb",
	"http://127.0.0.1.nip.io/cb",
	"http://127.1/cb",
	"http://127.0.0.2/cb",
	"http://127.255.255.254:8080/cb",
	"http://[0:0:0:0:0:0:0:1]/cb",
	"https://app.example.com/\xff\xfe",
	"http://0x7f000001/cb",
	"http://2130706433/cb",
	"http://0.0.0.0/cb",
	"http://example.com/cb",
	"HTTP://example.com/cb",
	"https://app.example.com/cb#frag",
	"https://app.example.com/cb#",
	"https://app.example.com/cb%23frag",
	"https://app.example.com/cb?next=%23x",
	"https://user:pass@app.example.com/cb",
	"https://user@app.example.com/cb",
	"https://app.example.com@evil.com/cb",
	"https://:443/cb",
	"https://:/cb",
	"https://::/cb",
	"https:///cb",
	"https:/cb",
	"https:cb",
	"//app.example.com/cb",
	"/callback",
	"callback",
	"",
	" ",
	"javascript:alert(1)",
	"javascript://app.example.com/%0aalert(1)",
	"data:text/html,<script>alert(1)</script>",
	"file:///etc/passwd",
	"vbscript:msgbox(1)",
	"myapp://callback",
	"com.example.app:/oauth2redirect",
	"https://app.example.com/cb\x00",
	"https://app.example.com/\r\nLocation: https://evil.com",
	"https://app.example.com/\xff\xfe",
	"https://\xff.example/cb",
	"https://[::1/cb",
	"https://app.example.com:port/cb",
	"https://app.example.com/%zz",
	"https://app.example.com/" + strings.Repeat("a", 2100),
	"http://127.0.0.1/" + strings.Repeat("%41", 700),
}

// FuzzValidateRedirectURI: no panic, and what registration accepts is an
// absolute https URL, or http on a loopback host, with a host, without a
// fragment and without user information.
func FuzzValidateRedirectURI(f *testing.F) {
	for _, s := range redirectSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		why := ValidateRedirectURI(raw)
		if why != "" {
			return
		}
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatalf("accepted %q, which does not parse: %v", raw, err)
		}
		if !u.IsAbs() || u.Opaque != "" || u.Hostname() == "" {
			t.Fatalf("accepted %q: not absolute with a host (host %q)", raw, u.Host)
		}
		if strings.Contains(raw, "#") || u.Fragment != "" {
			t.Fatalf("accepted %q with a fragment", raw)
		}
		if u.User != nil {
			t.Fatalf("accepted %q with user information", raw)
		}
		switch u.Scheme {
		case "https":
		case "http":
			if h := u.Hostname(); h != "localhost" && h != "127.0.0.1" && h != "::1" {
				t.Fatalf("accepted http URL %q whose host %q is not 127.0.0.1, [::1] or localhost", raw, h)
			}
		default:
			t.Fatalf("accepted %q with scheme %q", raw, u.Scheme)
		}
		if len(raw) > 2048 {
			t.Fatalf("accepted %d bytes", len(raw))
		}
	})
}

// FuzzMatchRedirectURI: no panic; every registered URI matches itself; no
// URI whose host differs from every registered one matches; a match that is
// not exact differs from a registered loopback-IP URI by the port only, and
// is itself a valid redirect URI when the registered ones are.
func FuzzMatchRedirectURI(f *testing.F) {
	pairs := [][3]string{
		{"https://app.example.com/cb", "", "https://app.example.com/cb"},
		{"https://app.example.com/cb", "", "https://app.example.com/cb/"},
		{"https://app.example.com/cb", "", "https://APP.example.com/cb"},
		{"https://app.example.com/cb", "", "https://app.example.com:443/cb"},
		{"https://app.example.com/cb", "", "https://app.example.com/cb?x=1"},
		{"https://app.example.com/cb", "", "https://app.example.com.evil.com/cb"},
		{"https://app.example.com/cb", "", "https://evil.com/cb"},
		{"https://app.example.com/cb", "", "https://app.example.com@evil.com/cb"},
		{"https://app.example.com/cb", "", "//evil.com/cb"},
		{"http://127.0.0.1/callback", "", "http://127.0.0.1:51234/callback"},
		{"http://127.0.0.1:0/cb", "", "http://127.0.0.1:8080/cb"},
		{"http://127.0.0.1/cb", "", "http://127.0.0.1:8080/cb#"},
		{"http://127.0.0.1/cb", "", "http://127.0.0.1:8080/cb#frag"},
		{"http://127.0.0.1/cb", "", "http://u:p@127.0.0.1:8080/cb"},
		{"http://127.0.0.1/cb", "", "http://127.0.0.1:8080/cb/other"},
		{"http://127.0.0.1/cb", "", "http://127.0.0.1:8080/cb?x=1"},
		{"http://127.0.0.1/cb", "", "https://127.0.0.1:8080/cb"},
		{"http://127.0.0.1/cb", "", "http://127.0.0.2:8080/cb"},
		{"http://127.0.0.1/cb", "", "http://localhost:8080/cb"},
		{"http://[::1]:65535/x", "", "http://[::1]:1/x"},
		{"http://[::1]/x", "", "http://[0:0:0:0:0:0:0:1]:1/x"},
		{"http://localhost/cb", "", "http://localhost:3000/cb"},
		{"http://127.0.0.1/cb%2Fx", "", "http://127.0.0.1:9/cb/x"},
		{"https://a.example/cb", "http://127.0.0.1/cb", "http://127.0.0.1:9/cb"},
		{"javascript:alert(1)", "", "javascript:alert(1)"},
		{"", "", ""},
		{"http://127.0.0.1/\xff", "", "http://127.0.0.1:1/\xff"},
	}
	for _, p := range pairs {
		f.Add(p[0], p[1], p[2])
	}
	f.Fuzz(func(t *testing.T, reg1, reg2, requested string) {
		registered := []string{reg1}
		if reg2 != "" {
			registered = append(registered, reg2)
		}
		for _, r := range registered {
			if !MatchRedirectURI(registered, r) {
				t.Fatalf("registered %q does not match itself", r)
			}
		}
		if !MatchRedirectURI(registered, requested) || slices.Contains(registered, requested) {
			return
		}
		q, err := url.Parse(requested)
		if err != nil {
			t.Fatalf("%q matched %q but does not parse: %v", requested, registered, err)
		}
		sameHost, portOnly := false, false
		for _, r := range registered {
			u, err := url.Parse(r)
			if err != nil || u.Hostname() != q.Hostname() {
				continue
			}
			sameHost = true
			portOnly = portOnly || (u.Scheme == "http" && u.EscapedPath() == q.EscapedPath() && u.RawQuery == q.RawQuery)
		}
		if !sameHost {
			t.Fatalf("%q matched %q although its host %q is registered nowhere", requested, registered, q.Hostname())
		}
		if h := q.Hostname(); q.Scheme != "http" || (h != "127.0.0.1" && h != "::1") {
			t.Fatalf("%q matched %q without being equal and without being http://127.0.0.1 or http://[::1]", requested, registered)
		}
		if !portOnly {
			t.Fatalf("%q matched %q but differs in more than the port", requested, registered)
		}
		allValid := true
		for _, r := range registered {
			allValid = allValid && ValidateRedirectURI(r) == ""
		}
		if allValid && ValidateRedirectURI(requested) != "" {
			t.Fatalf("%q matched the valid %q but is itself invalid: %s", requested, registered, ValidateRedirectURI(requested))
		}
	})
}

// FuzzParseScope: ParseScope is idempotent through JoinScope and yields
// sorted, unique, non-empty, whitespace-free entries.
func FuzzParseScope(f *testing.F) {
	for _, s := range []string{
		"", " ", "openid", "openid profile email", "email openid  profile\temail",
		"  openid\n\nprofile  ", "read:users write:users admin", "openid openid openid",
		"OPENID openid", "profile\u00a0email", "openid\u3000email", "openid\x00profile",
		"\xff\xfe openid", "openid,profile", "openid+profile", "openid%20profile",
		strings.Repeat("a ", 2000), strings.Repeat("z", 5000),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := ParseScope(s)
		if again := ParseScope(JoinScope(got)); !slices.Equal(again, got) {
			t.Fatalf("ParseScope(JoinScope(ParseScope(%q))) = %q, want %q", s, again, got)
		}
		for i, v := range got {
			if v == "" || strings.ContainsAny(v, " \t\r\n") || len(strings.Fields(v)) != 1 {
				t.Fatalf("ParseScope(%q) has an empty or blank entry %q", s, v)
			}
			if i > 0 && got[i-1] >= v {
				t.Fatalf("ParseScope(%q) = %q is not sorted and unique", s, got)
			}
		}
		// Intersecting with the known scopes keeps only known ones.
		for _, v := range intersect(got, Scopes) {
			if !slices.Contains(Scopes, v) || !slices.Contains(got, v) {
				t.Fatalf("intersect kept %q", v)
			}
		}
	})
}

func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// FuzzCheckPKCE: checkPKCE never panics and accepts exactly when the code
// had an S256 challenge equal to base64url(SHA-256(verifier)) and the
// verifier has 43 to 128 characters; without a challenge, only a
// confidential client presenting no verifier passes.
func FuzzCheckPKCE(f *testing.F) {
	good := "dBjftJeZ4CVP-mJ92ZodNBc8FGs8aLEqPMskF9ZGhM0xyzABCDEFGhijkl" // 57 chars
	seeds := []struct {
		verifier, challenge, method string
		public, derive              bool
	}{
		{good, "", "S256", true, true},
		{good, "", "S256", false, true},
		{"dBjftJeZ4CVP-mJ92ZodNBc8FGs8aLEqPMskF9ZGhM", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "S256", true, false},
		{strings.Repeat("a", 42), "", "S256", true, true},
		{strings.Repeat("a", 43), "", "S256", true, true},
		{strings.Repeat("a", 128), "", "S256", true, true},
		{strings.Repeat("a", 129), "", "S256", true, true},
		{good, good, "plain", true, false},
		{good, good, "S256", true, false},
		{good, "", "s256", false, true},
		{"", s256(good), "S256", true, false},
		{good, "", "", false, false},
		{good, "", "", true, false},
		{"", "", "", false, false},
		{"", "", "", true, false},
		{strings.Repeat("\xff", 64), "", "S256", false, true},
		{strings.Repeat("é", 40), "", "S256", false, true}, // 40 runes, 80 bytes
		{good, s256(good) + "=", "S256", false, false},
		{good, strings.ToUpper(s256(good)), "S256", false, false},
	}
	for _, s := range seeds {
		f.Add(s.verifier, s.challenge, s.method, s.public, s.derive)
	}
	f.Fuzz(func(t *testing.T, verifier, challenge, method string, public, derive bool) {
		if derive {
			challenge = s256(verifier)
		}
		c := Client{ClientID: "c", Type: Confidential}
		if public {
			c.Type = Public
		}
		code := Code{CodeChallenge: challenge, CodeChallengeMethod: method}
		err := checkPKCE(c, code, verifier)
		var want bool
		if challenge == "" {
			want = !public && verifier == ""
		} else {
			want = method == "S256" && len(verifier) >= 43 && len(verifier) <= 128 && s256(verifier) == challenge
		}
		if (err == nil) != want {
			t.Fatalf("checkPKCE(public=%v, challenge=%q, method=%q, verifier=%q) = %v, want accept=%v", public, challenge, method, verifier, err, want)
		}
		if err != nil {
			if e, ok := err.(*Error); !ok || e.Code != "invalid_grant" || e.Status != 400 {
				t.Fatalf("checkPKCE error %#v, want invalid_grant 400", err)
			}
		}
	})
}

// FuzzCanonicalResource: idempotent; a non-empty result parses as an
// absolute URL with a host, without fragment or user information, with a
// lower-case scheme and host, no default port and no trailing slash.
func FuzzCanonicalResource(f *testing.F) {
	for _, s := range []string{
		"https://mcp.example.com", "https://mcp.example.com/", "https://mcp.example.com/mcp/",
		"HTTPS://MCP.Example.COM/MCP", "https://mcp.example.com:443/mcp", "http://mcp.example.com:80/",
		"https://mcp.example.com:8443/mcp", "http://127.0.0.1:8000/mcp", "http://[::1]:443/x",
		"https://mcp.example.com/mcp#frag", "https://mcp.example.com/mcp%23frag", "https://mcp.example.com/a%2Fb/",
		"https://mcp.example.com/mcp?tenant=1", "https://mcp.example.com/?", "https://u:p@mcp.example.com/",
		"https://:443", "https://:443/mcp", "http://:80", "https://:", "https://::", "https://x:", "https://mcp.example.com:/x",
		"  https://mcp.example.com/mcp  ", "//mcp.example.com/mcp", "/mcp", "mcp", "", "urn:ietf:params:x",
		"javascript:alert(1)", "data:text/plain,hi", "https://%C3%89.example/x", "https://É.example/x",
		"https://\xff.example/", "https://mcp.example.com/\xff", "https://[::1%25EN0]/x",
		"https://mcp.example.com/" + strings.Repeat("a/", 1000),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got := CanonicalResource(raw)
		if got == "" {
			return
		}
		if again := CanonicalResource(got); again != got {
			t.Fatalf("CanonicalResource(%q) = %q, but CanonicalResource(%q) = %q", raw, got, got, again)
		}
		u, err := url.Parse(got)
		if err != nil {
			t.Fatalf("CanonicalResource(%q) = %q does not parse: %v", raw, got, err)
		}
		if !u.IsAbs() || u.Hostname() == "" || u.User != nil {
			t.Fatalf("CanonicalResource(%q) = %q: not absolute with a host and without user info", raw, got)
		}
		if strings.Contains(got, "#") || u.Fragment != "" {
			t.Fatalf("CanonicalResource(%q) = %q has a fragment", raw, got)
		}
		if u.Scheme != strings.ToLower(u.Scheme) || u.Host != strings.ToLower(u.Host) {
			t.Fatalf("CanonicalResource(%q) = %q: scheme or host not lower-case", raw, got)
		}
		if (u.Scheme == "https" && u.Port() == "443") || (u.Scheme == "http" && u.Port() == "80") {
			t.Fatalf("CanonicalResource(%q) = %q keeps the default port", raw, got)
		}
		if strings.HasSuffix(u.Path, "/") {
			t.Fatalf("CanonicalResource(%q) = %q has a trailing slash", raw, got)
		}
	})
}

// FuzzWithParams: the result parses, keeps the original query parameters,
// contains the added non-empty ones and stays on the same scheme and host.
func FuzzWithParams(f *testing.F) {
	type seed struct{ raw, code, state, iss string }
	for _, s := range []seed{
		{"https://app.example.com/cb", "abc", "xyz", "https://auth.example.com"},
		{"https://app.example.com/cb?tenant=acme", "abc", "", "https://auth.example.com"},
		{"https://app.example.com/cb?tenant=acme&tenant=b", "a&b=c", "x y+z", "http://localhost:8000"},
		{"https://app.example.com/cb?", "abc", "s", "i"},
		{"https://app.example.com/cb?code=attacker", "abc", "s", "i"},
		{"https://app.example.com/cb?x=%zz", "abc", "s", "i"},
		{"https://app.example.com/cb?a;b=c", "abc", "s", "i"},
		{"http://127.0.0.1:51234/callback", "c#d", "s#t", "i"},
		{"http://[::1]:65535/x?y", "\xff\xfe", "\x00", "i"},
		{"myapp:/cb?x=1", "abc", "s", "i"},
		{"com.example.app:/oauth2redirect", "abc", "", ""},
		{"/relative?x=1", "abc", "s", "i"},
		{"https://app.example.com/a%2Fb?x=1", "c", "s", "i"},
		{"https://app.example.com/cb#frag", "c", "s", "i"},
		{"", "c", "s", "i"},
		{"%", "c", "s", "i"},
	} {
		f.Add(s.raw, s.code, s.state, s.iss)
	}
	f.Fuzz(func(t *testing.T, raw, code, state, iss string) {
		add := url.Values{"code": {code}, "state": {state}, "iss": {iss}}
		got := WithParams(raw, add)
		in, err := url.Parse(raw)
		if err != nil {
			if got != raw {
				t.Fatalf("WithParams(%q) changed an unparsable URL into %q", raw, got)
			}
			return
		}
		out, err := url.Parse(got)
		if err != nil {
			t.Fatalf("WithParams(%q) = %q does not parse: %v", raw, got, err)
		}
		if out.Scheme != in.Scheme || out.Host != in.Host || out.Path != in.Path {
			t.Fatalf("WithParams(%q) = %q moved to another place", raw, got)
		}
		// A registered query may hold pairs ParseQuery refuses ("a;b",
		// "%zz"); the pairs it can read must survive, and the added ones
		// must be readable.
		orig, _ := url.ParseQuery(in.RawQuery)
		have, _ := url.ParseQuery(out.RawQuery)
		for k, vs := range orig {
			for _, v := range vs {
				if !slices.Contains(have[k], v) {
					t.Fatalf("WithParams(%q) = %q lost %s=%q", raw, got, k, v)
				}
			}
		}
		for k, vs := range add {
			if v := vs[0]; v != "" && !slices.Contains(have[k], v) {
				t.Fatalf("WithParams(%q) = %q lacks %s=%q", raw, got, k, v)
			} else if v == "" && len(have[k]) != len(orig[k]) {
				t.Fatalf("WithParams(%q) = %q added an empty %s", raw, got, k)
			}
		}
	})
}

// clientStore is the part of Store that CheckAuthRequest uses; any other
// method panics through the nil embedded interface, which the fuzzer would
// report.
type clientStore struct {
	Store
	clients map[string]Client
}

func (s clientStore) ClientByClientID(_ context.Context, id string) (Client, error) {
	if c, ok := s.clients[id]; ok {
		return c, nil
	}
	return Client{}, ErrUnknownClient
}

// FuzzCheckAuthRequest: an authorization request never panics; an error
// goes back to the client only when the client and redirect URI are
// registered, and that redirect stays on the registered host (no open
// redirector); an accepted request has a non-empty scope allowed to the
// client, a valid S256 challenge when the client is public, and a
// canonical resource.
func FuzzCheckAuthRequest(f *testing.F) {
	regs := []string{"https://app.example.com/cb", "http://127.0.0.1/callback", "http://localhost:8080/cb?x=1"}
	allowed := []string{"email", "openid", "profile"}
	st := clientStore{clients: map[string]Client{
		"pub":      {ClientID: "pub", Type: Public, RedirectURIs: regs, AllowedScopes: allowed, IsActive: true},
		"conf":     {ClientID: "conf", Type: Confidential, RedirectURIs: regs, AllowedScopes: allowed, IsActive: true},
		"off":      {ClientID: "off", Type: Public, RedirectURIs: regs, AllowedScopes: allowed},
		"noredir":  {ClientID: "noredir", Type: Public, AllowedScopes: allowed, IsActive: true},
		"noscopes": {ClientID: "noscopes", Type: Public, RedirectURIs: regs, IsActive: true},
	}}
	svc := NewService(st, nil, Options{Issuer: "https://auth.example.com"}, nil)
	ch := s256(strings.Repeat("v", 43))
	for _, q := range []string{
		"response_type=code&client_id=pub&redirect_uri=https://app.example.com/cb&code_challenge=" + ch + "&code_challenge_method=S256&state=s",
		"response_type=code&client_id=conf&redirect_uri=https://app.example.com/cb&scope=openid+admin",
		"response_type=code&client_id=conf&redirect_uri=https://app.example.com/cb&scope=admin",
		"response_type=code&client_id=pub&redirect_uri=http://127.0.0.1:51234/callback&code_challenge=" + ch + "&code_challenge_method=S256",
		"response_type=code&client_id=pub&redirect_uri=http://localhost:9999/cb?x=1&code_challenge=" + ch + "&code_challenge_method=S256",
		"response_type=token&client_id=pub&redirect_uri=https://app.example.com/cb",
		"response_type=code&client_id=pub&redirect_uri=https://evil.com/cb",
		"response_type=code&client_id=pub&redirect_uri=javascript:alert(1)",
		"response_type=code&client_id=pub&redirect_uri=//evil.com/cb",
		"response_type=code&client_id=pub&redirect_uri=https://app.example.com/cb#x",
		"response_type=code&client_id=unknown&redirect_uri=https://app.example.com/cb",
		"response_type=code&client_id=off&redirect_uri=https://app.example.com/cb",
		"response_type=code&client_id=noredir&redirect_uri=https://app.example.com/cb",
		"response_type=code&client_id=noscopes&redirect_uri=https://app.example.com/cb&code_challenge=" + ch + "&code_challenge_method=S256",
		"response_type=code&client_id=pub&redirect_uri=https://app.example.com/cb&code_challenge=" + ch + "&code_challenge_method=plain",
		"response_type=code&client_id=pub&redirect_uri=https://app.example.com/cb&code_challenge=short&code_challenge_method=S256",
		"response_type=code&client_id=pub&redirect_uri=https://app.example.com/cb&code_challenge=" + ch,
		"response_type=code&client_id=conf&redirect_uri=https://app.example.com/cb&resource=HTTPS://MCP.example.com:443/mcp/",
		"response_type=code&client_id=conf&redirect_uri=https://app.example.com/cb&resource=https://mcp.example.com/mcp%23x",
		"response_type=code&client_id=conf&redirect_uri=https://app.example.com/cb&resource=https://:443",
		"response_type=code&client_id=conf&redirect_uri=https://app.example.com/cb&prompt=select_account",
		"response_type=code&client_id=conf&redirect_uri=https://app.example.com/cb&state=" + strings.Repeat("s", 1025),
		"response_type=code&client_id=" + strings.Repeat("c", 3000) + "&redirect_uri=https://app.example.com/cb",
		"",
	} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, query string) {
		v, _ := url.ParseQuery(query)
		req := ParseAuthRequest(v)
		if back := ParseAuthRequest(req.Values()); !reflect.DeepEqual(back, req) && !(len(back.Resources) == 0 && len(req.Resources) == 0) {
			t.Fatalf("ParseAuthRequest(Values()) = %+v, want %+v", back, req)
		}
		checked, err := svc.CheckAuthRequest(context.Background(), req)
		if err != nil {
			ae, ok := err.(*AuthError)
			if !ok {
				t.Fatalf("CheckAuthRequest(%q) returned %T %v, want *AuthError", query, err, err)
			}
			if ae.Err.Code == "" || ae.Err.Status < 400 || ae.Err.Status > 499 {
				t.Fatalf("CheckAuthRequest(%q) error %+v", query, ae.Err)
			}
			if !ae.Redirect {
				return
			}
			c, known := st.clients[req.ClientID]
			if !known || !c.IsActive || !MatchRedirectURI(c.RedirectURIs, req.RedirectURI) {
				t.Fatalf("CheckAuthRequest(%q): error %v sent back to an unregistered client or redirect URI", query, ae.Err)
			}
			to, err := url.Parse(svc.ErrorRedirect(req, ae.Err))
			from, _ := url.Parse(req.RedirectURI)
			if err != nil || to.Host != from.Host || to.Scheme != from.Scheme {
				t.Fatalf("error redirect for %q goes to %v (%v)", req.RedirectURI, to, err)
			}
			if got := to.Query(); got.Get("error") != ae.Err.Code || got.Get("iss") != "https://auth.example.com" ||
				(req.State != "" && got.Get("state") != req.State) {
				t.Fatalf("error redirect %q lacks error, iss or state", to)
			}
			return
		}
		c := st.clients[req.ClientID]
		if !c.IsActive || !MatchRedirectURI(c.RedirectURIs, req.RedirectURI) || req.ResponseType != "code" {
			t.Fatalf("CheckAuthRequest accepted %+v", req)
		}
		if len(checked.Scopes) == 0 || !covers(c.AllowedScopes, checked.Scopes) ||
			!slices.Equal(checked.Scopes, ParseScope(JoinScope(checked.Scopes))) {
			t.Fatalf("CheckAuthRequest(%q) scopes %q, allowed %q", query, checked.Scopes, c.AllowedScopes)
		}
		if c.Type == Public && (!validChallenge(req.CodeChallenge) || req.CodeChallengeMethod != "S256") {
			t.Fatalf("public client accepted without an S256 challenge: %+v", req)
		}
		if req.CodeChallenge != "" && req.CodeChallengeMethod != "S256" {
			t.Fatalf("accepted challenge method %q", req.CodeChallengeMethod)
		}
		for _, r := range checked.Req.Resources {
			if CanonicalResource(r) != r {
				t.Fatalf("resource %q is not canonical", r)
			}
		}
		if len(req.Resources) > 0 && len(checked.Req.Resources) == 0 {
			t.Fatalf("resources %q dropped", req.Resources)
		}
	})
}
