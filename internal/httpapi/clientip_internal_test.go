package httpapi

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

func clientIPTestPrefixes(t *testing.T, cidrs ...string) []netip.Prefix {
	t.Helper()
	out := make([]netip.Prefix, 0, len(cidrs))
	for _, c := range cidrs {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			t.Fatalf("bad test prefix %q: %v", c, err)
		}
		out = append(out, p.Masked())
	}
	return out
}

func TestResolveClientIP(t *testing.T) {
	// A typical deployment: the load balancer lives in 10/8 or fd00::/8.
	trusted := clientIPTestPrefixes(t, "10.0.0.0/8", "fd00::/8")

	tests := []struct {
		name    string
		trusted []netip.Prefix
		peer    string   // RemoteAddr
		xff     []string // X-Forwarded-For header lines, in order
		realIP  string   // X-Real-IP
		want    string
	}{
		// No trusted proxies: the socket address, whatever the headers say.
		{name: "no proxies, no headers", peer: "203.0.113.7:51234", want: "203.0.113.7"},
		{name: "no proxies, spoofed XFF ignored", peer: "203.0.113.7:51234", xff: []string{"1.2.3.4"}, want: "203.0.113.7"},
		{name: "no proxies, spoofed X-Real-IP ignored", peer: "203.0.113.7:51234", realIP: "1.2.3.4", want: "203.0.113.7"},
		{name: "no proxies, both spoofed", peer: "203.0.113.7:51234", xff: []string{"1.2.3.4, 5.6.7.8"}, realIP: "9.9.9.9", want: "203.0.113.7"},
		{name: "no proxies, even a private peer is not trusted", peer: "10.0.0.1:80", xff: []string{"1.2.3.4"}, want: "10.0.0.1"},
		{name: "no proxies, IPv6 peer", peer: "[2001:db8::1]:443", xff: []string{"1.2.3.4"}, want: "2001:db8::1"},
		{name: "no proxies, IPv4-mapped peer", peer: "[::ffff:203.0.113.7]:443", want: "203.0.113.7"},
		{name: "RemoteAddr without port", peer: "203.0.113.7", want: "203.0.113.7"},

		// Proxies configured, but the peer is not one of them.
		{name: "untrusted peer, spoofed XFF ignored", trusted: trusted, peer: "198.51.100.9:4000", xff: []string{"1.2.3.4"}, want: "198.51.100.9"},
		{name: "untrusted peer, spoofed X-Real-IP ignored", trusted: trusted, peer: "198.51.100.9:4000", realIP: "1.2.3.4", want: "198.51.100.9"},

		// Trusted peer: X-Forwarded-For is read from the right.
		{name: "trusted peer, single hop", trusted: trusted, peer: "10.0.0.1:80", xff: []string{"203.0.113.7"}, want: "203.0.113.7"},
		{name: "trusted peer, no headers", trusted: trusted, peer: "10.0.0.1:80", want: "10.0.0.1"},
		{name: "rightmost untrusted hop, spoofed left part ignored", trusted: trusted, peer: "10.0.0.1:80",
			xff: []string{"1.2.3.4, 203.0.113.7, 10.0.0.2"}, want: "203.0.113.7"},
		{name: "trusted hops in the middle are skipped", trusted: trusted, peer: "10.0.0.1:80",
			xff: []string{"198.51.100.1, 10.9.9.9, 10.0.0.2"}, want: "198.51.100.1"},
		{name: "several XFF headers are concatenated in order", trusted: trusted, peer: "10.0.0.1:80",
			xff: []string{"1.2.3.4", "203.0.113.7, 10.0.0.2"}, want: "203.0.113.7"},
		{name: "last header line holds the client", trusted: trusted, peer: "10.0.0.1:80",
			xff: []string{"1.2.3.4, 5.6.7.8", "203.0.113.7"}, want: "203.0.113.7"},
		{name: "spaces around hops", trusted: trusted, peer: "10.0.0.1:80",
			xff: []string{"  1.2.3.4 ,   203.0.113.7  ,10.0.0.2  "}, want: "203.0.113.7"},
		{name: "IPv6 hop", trusted: trusted, peer: "10.0.0.1:80", xff: []string{"2001:db8::7, 10.0.0.2"}, want: "2001:db8::7"},
		{name: "IPv6 trusted peer and hop", trusted: trusted, peer: "[fd00::1]:80", xff: []string{"2001:db8::7, fd00::2"}, want: "2001:db8::7"},
		{name: "IPv4-mapped hop is unmapped", trusted: trusted, peer: "10.0.0.1:80", xff: []string{"::ffff:203.0.113.7"}, want: "203.0.113.7"},
		{name: "IPv4-mapped trusted hop is trusted", trusted: trusted, peer: "10.0.0.1:80",
			xff: []string{"203.0.113.7, ::ffff:10.0.0.2"}, want: "203.0.113.7"},
		{name: "IPv4-mapped trusted peer is trusted", trusted: trusted, peer: "[::ffff:10.0.0.1]:80", xff: []string{"203.0.113.7"}, want: "203.0.113.7"},
		{name: "all hops trusted: the furthest one", trusted: trusted, peer: "10.0.0.1:80",
			xff: []string{"10.0.0.3, 10.0.0.2"}, want: "10.0.0.3"},
		{name: "garbage hop stops the walk at the last good hop", trusted: trusted, peer: "10.0.0.1:80",
			xff: []string{"203.0.113.7, garbage, 10.0.0.2"}, want: "10.0.0.2"},
		{name: "garbage rightmost hop: the peer", trusted: trusted, peer: "10.0.0.1:80",
			xff: []string{"203.0.113.7, not-an-ip"}, want: "10.0.0.1"},
		{name: "empty hop: the peer", trusted: trusted, peer: "10.0.0.1:80",
			xff: []string{"203.0.113.7, "}, want: "10.0.0.1"},

		// X-Real-IP: only from a trusted peer, only without XFF.
		{name: "X-Real-IP from trusted peer", trusted: trusted, peer: "10.0.0.1:80", realIP: "203.0.113.7", want: "203.0.113.7"},
		{name: "X-Real-IP trimmed", trusted: trusted, peer: "10.0.0.1:80", realIP: "  203.0.113.7 ", want: "203.0.113.7"},
		{name: "X-Real-IP IPv6", trusted: trusted, peer: "10.0.0.1:80", realIP: "2001:db8::9", want: "2001:db8::9"},
		{name: "X-Real-IP IPv4-mapped", trusted: trusted, peer: "10.0.0.1:80", realIP: "::ffff:203.0.113.7", want: "203.0.113.7"},
		{name: "X-Real-IP ignored when XFF present", trusted: trusted, peer: "10.0.0.1:80",
			xff: []string{"198.51.100.1"}, realIP: "203.0.113.7", want: "198.51.100.1"},
		{name: "garbage X-Real-IP: the peer", trusted: trusted, peer: "10.0.0.1:80", realIP: "nonsense", want: "10.0.0.1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/api/v1/auth/login", nil)
			r.RemoteAddr = tc.peer
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if tc.realIP != "" {
				r.Header.Set("X-Real-IP", tc.realIP)
			}
			if got := resolveClientIP(r, tc.trusted); got != tc.want {
				t.Errorf("resolveClientIP(peer %q, XFF %q, X-Real-IP %q) = %q, want %q", tc.peer, tc.xff, tc.realIP, got, tc.want)
			}
		})
	}
}

// TestClientIPMiddlewareStoresResolvedIP checks that the middleware hands the
// resolved address to the handlers through ClientIP.
func TestClientIPMiddlewareStoresResolvedIP(t *testing.T) {
	trusted := clientIPTestPrefixes(t, "10.0.0.0/8")
	var got string
	h := clientIP(trusted)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = ClientIP(r.Context())
	}))
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = "10.1.2.3:4567"
	r.Header.Set("X-Forwarded-For", "1.2.3.4, 203.0.113.7")
	h.ServeHTTP(httptest.NewRecorder(), r)
	if got != "203.0.113.7" {
		t.Fatalf("ClientIP in handler = %q, want %q", got, "203.0.113.7")
	}
}

// The Content-Security-Policy values, copied from reference §7.1.
const (
	wantCSPDocs    = "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; font-src 'self' https://fonts.gstatic.com; img-src 'self' data: https://fastapi.tiangolo.com; frame-ancestors 'none'"
	wantCSPStrict  = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
	wantCSPRelaxed = "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval' https://cdn.jsdelivr.net https://unpkg.com https://cdnjs.cloudflare.com https://www.googletagmanager.com https://www.google-analytics.com; style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://unpkg.com https://cdnjs.cloudflare.com https://fonts.googleapis.com; font-src 'self' data: https://fonts.gstatic.com https://cdn.jsdelivr.net; img-src 'self' data: blob: https:; connect-src 'self' https://www.google-analytics.com https://analytics.google.com; media-src 'self' data: blob:; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)

func TestCSPFor(t *testing.T) {
	tests := []struct {
		mode, path, want string
	}{
		{"relaxed", "/api/v1/users/me", wantCSPRelaxed},
		{"relaxed", "/", wantCSPRelaxed},
		{"strict", "/api/v1/users/me", wantCSPStrict},
		{"strict", "/health", wantCSPStrict},
		{"disabled", "/api/v1/users/me", ""},
		// Any other value behaves as relaxed (config lower-cases CSP_MODE).
		{"", "/api/v1/users/me", wantCSPRelaxed},
		{"bogus", "/api/v1/users/me", wantCSPRelaxed},

		// Docs paths get the docs policy in every mode but disabled.
		{"relaxed", "/docs", wantCSPDocs},
		{"strict", "/docs", wantCSPDocs},
		{"bogus", "/docs", wantCSPDocs},
		{"strict", "/docs/", wantCSPDocs},
		{"strict", "/docs/oauth2-redirect", wantCSPDocs},
		{"relaxed", "/redoc", wantCSPDocs},
		{"strict", "/redoc/", wantCSPDocs},
		{"strict", "/redoc/static/app.js", wantCSPDocs},
		{"disabled", "/docs", ""},
		{"disabled", "/redoc", ""},

		// Only the exact prefixes count.
		{"strict", "/docsx", wantCSPStrict},
		{"strict", "/redocs", wantCSPStrict},
		{"relaxed", "/api/v1/docs", wantCSPRelaxed},
		{"strict", "/openapi.json", wantCSPStrict},
	}
	for _, tc := range tests {
		t.Run(tc.mode+" "+tc.path, func(t *testing.T) {
			if got := cspFor(tc.mode, tc.path); got != tc.want {
				t.Errorf("cspFor(%q, %q) = %q, want %q", tc.mode, tc.path, got, tc.want)
			}
		})
	}
}

func TestSecurityHeadersCSP(t *testing.T) {
	tests := []struct {
		mode, path string
		production bool
		wantCSP    string
		wantHSTS   string
	}{
		{"strict", "/api/v1/users/me", true, wantCSPStrict, "max-age=31536000; includeSubDomains"},
		{"relaxed", "/docs", false, wantCSPDocs, ""},
		{"disabled", "/api/v1/users/me", false, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.mode+" "+tc.path, func(t *testing.T) {
			h := securityHeaders(tc.mode, tc.production)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tc.path, nil))
			csp, ok := rec.Header()["Content-Security-Policy"]
			if tc.wantCSP == "" {
				if ok {
					t.Errorf("Content-Security-Policy = %q, want absent", csp)
				}
			} else if got := rec.Header().Get("Content-Security-Policy"); got != tc.wantCSP {
				t.Errorf("Content-Security-Policy = %q, want %q", got, tc.wantCSP)
			}
			if got := rec.Header().Get("Strict-Transport-Security"); got != tc.wantHSTS {
				t.Errorf("Strict-Transport-Security = %q, want %q", got, tc.wantHSTS)
			}
			if got := rec.Header().Get("X-Frame-Options"); got != "DENY" {
				t.Errorf("X-Frame-Options = %q, want DENY", got)
			}
		})
	}
}

func TestValidRequestID(t *testing.T) {
	tests := []struct {
		id   string
		want bool
	}{
		{"", false},
		{"a", true},
		{"0f8fad5b-d9cb-469f-a165-70867728950e", true},
		{"req_123.abc-XYZ", true},
		{strings.Repeat("a", 64), true},
		{strings.Repeat("a", 65), false},
		{"has space", false},
		{"line\nbreak", false},
		{"crlf\r\nX-Injected: 1", false},
		{"<script>", false},
		{"a/b", false},
		{"a:b", false},
		{"naïve", false},
		{"tab\t", false},
	}
	for _, tc := range tests {
		if got := validRequestID(tc.id); got != tc.want {
			t.Errorf("validRequestID(%q) = %v, want %v", tc.id, got, tc.want)
		}
	}
}

func TestRequestIDMiddleware(t *testing.T) {
	var seen string
	h := requestID(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = requestIDFrom(r.Context())
	}))

	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("X-Request-ID", "client-id-1")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if got := rec.Header().Get("X-Request-ID"); got != "client-id-1" || seen != "client-id-1" {
		t.Errorf("valid client id: header %q, context %q; want both %q", got, seen, "client-id-1")
	}

	r = httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("X-Request-ID", "bad id <x>")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	got := rec.Header().Get("X-Request-ID")
	if got == "bad id <x>" || !validRequestID(got) || seen != got {
		t.Errorf("invalid client id: header %q, context %q; want a fresh valid id in both", got, seen)
	}
}
