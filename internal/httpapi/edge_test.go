package httpapi_test

// End-to-end tests of the HTTP edge: routing errors, body limits, rate
// limits, security headers, CORS, health (including a database outage),
// the documentation, and the rule that bad input never causes a 500 and
// never changes anything (contract §2, reference §1, §5.1 and §7).

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/apitest"
	"github.com/gatehouse-dev/gatehouse/internal/dbtest"
	"github.com/gatehouse-dev/gatehouse/internal/sqlstore"
)

// The exact header values of reference §7.1.
const (
	cspRelaxed = "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval' https://cdn.jsdelivr.net https://unpkg.com https://cdnjs.cloudflare.com https://www.googletagmanager.com https://www.google-analytics.com; style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://unpkg.com https://cdnjs.cloudflare.com https://fonts.googleapis.com; font-src 'self' data: https://fonts.gstatic.com https://cdn.jsdelivr.net; img-src 'self' data: blob: https:; connect-src 'self' https://www.google-analytics.com https://analytics.google.com; media-src 'self' data: blob:; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
	cspStrict  = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
	cspDocs    = "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; font-src 'self' https://fonts.gstatic.com; img-src 'self' data: https://fastapi.tiangolo.com; frame-ancestors 'none'"
	hsts       = "max-age=31536000; includeSubDomains"
)

var fixedSecurityHeaders = map[string]string{
	"X-Frame-Options":        "DENY",
	"X-Content-Type-Options": "nosniff",
	"X-XSS-Protection":       "1; mode=block",
	"Permissions-Policy":     "geolocation=(), microphone=(), camera=()",
	"Referrer-Policy":        "strict-origin-when-cross-origin",
}

const (
	mib           = 1 << 20
	corsOrigin    = "http://localhost:3000" // the default BACKEND_CORS_ORIGINS
	foreignOrigin = "https://evil.example.com"
)

// ---------------------------------------------------------------------------
// Helpers

// expectEnvelope checks the status, that the body is the error envelope with
// the given first code, and that it is served as JSON. It returns the first
// error's message and field.
func expectEnvelope(t *testing.T, r apitest.Response, status int, code string) (string, any) {
	t.Helper()
	r.Expect(t, status, code)
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("status %d: Content-Type %q, want application/json", r.Status, ct)
	}
	_, msg, field := r.ErrorCode(t)
	if msg == "" {
		t.Fatalf("status %d: envelope without a message: %s", r.Status, r.Body)
	}
	return msg, field
}

// noRedirects is a client that reports redirects instead of following them.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// send performs a request whose body length the test controls: size >= 0
// announces Content-Length, size < 0 sends the body chunked.
func send(t *testing.T, e *apitest.Env, method, path string, body io.Reader, size int64, headers map[string]string) apitest.Response {
	t.Helper()
	req, err := http.NewRequest(method, e.Server.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = size
	if size < 0 {
		req.TransferEncoding = []string{"chunked"}
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, path, err)
	}
	return apitest.Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// unsized hides the length of a reader from net/http, so the body is sent
// chunked, as a streaming client would.
type unsized struct{ r io.Reader }

func (u unsized) Read(p []byte) (int, error) { return u.r.Read(p) }

// loginBody is a syntactically valid login body of at least n bytes.
func loginBody(n int) string {
	const head, tail = `{"email":"big@example.com","password":"`, `"}`
	return head + strings.Repeat("a", max(0, n-len(head)-len(tail))) + tail
}

// expectHealthy asserts that the service answers /health with 200.
func expectHealthy(t *testing.T, e *apitest.Env) {
	t.Helper()
	r := e.Get("/health", "")
	if r.Status != http.StatusOK {
		t.Fatalf("after the request, /health = %d %s", r.Status, r.Body)
	}
}

// expectSecurityHeaders checks the headers of reference §7.1 with their
// exact values; csp "" means the header must be absent, and hstsOn whether
// Strict-Transport-Security must be present.
func expectSecurityHeaders(t *testing.T, r apitest.Response, csp string, hstsOn bool) {
	t.Helper()
	for k, want := range fixedSecurityHeaders {
		if got := r.Header.Values(k); len(got) != 1 || got[0] != want {
			t.Errorf("status %d: %s = %q, want exactly %q", r.Status, k, got, want)
		}
	}
	if got, ok := r.Header["Content-Security-Policy"]; csp == "" && ok {
		t.Errorf("status %d: Content-Security-Policy present (%q), want none", r.Status, got)
	} else if csp != "" && (len(got) != 1 || got[0] != csp) {
		t.Errorf("status %d: Content-Security-Policy = %q,\nwant %q", r.Status, got, csp)
	}
	got, ok := r.Header["Strict-Transport-Security"]
	switch {
	case hstsOn && (len(got) != 1 || got[0] != hsts):
		t.Errorf("status %d: Strict-Transport-Security = %q, want %q", r.Status, got, hsts)
	case !hstsOn && ok:
		t.Errorf("status %d: Strict-Transport-Security = %q outside production", r.Status, got)
	}
}

// ---------------------------------------------------------------------------
// 1. Routing errors

func TestEdgeUnknownRouteAndMethod(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		for _, path := range []string{"/api/v1/does-not-exist", "/nope", "/api/v1/users/me/extra/segments", "/api/v2/users/me"} {
			r := e.Get(path, "")
			if msg, field := expectEnvelope(t, r, http.StatusNotFound, "SYS_002"); msg != "Not Found" || field != nil {
				t.Errorf("GET %s: message %q field %v", path, msg, field)
			}
		}

		cases := []struct {
			method, path string
			allow        []string
		}{
			{"PUT", "/health", []string{"GET"}},
			{"POST", "/health", []string{"GET"}},
			{"DELETE", "/api/v1/auth/login", []string{"POST"}},
			{"GET", "/api/v1/auth/login", []string{"POST"}},
			// "me" also matches /users/{user_id} and /sessions/{session_id}
			// (DELETE /users/me is a 422, as in the reference).
			{"PUT", "/api/v1/users/me", []string{"DELETE", "GET", "PATCH"}},
			{"POST", "/api/v1/sessions/me", []string{"DELETE", "GET"}},
			{"PUT", "/api/v1/users", []string{"GET"}},
		}
		for _, c := range cases {
			r := e.Do(apitest.Request{Method: c.method, Path: c.path})
			if msg, _ := expectEnvelope(t, r, http.StatusMethodNotAllowed, "SYS_003"); msg != "Method Not Allowed" {
				t.Errorf("%s %s: message %q", c.method, c.path, msg)
			}
			var allow []string
			for _, v := range r.Header.Values("Allow") {
				for _, m := range strings.Split(v, ",") {
					allow = append(allow, strings.TrimSpace(m))
				}
			}
			slices.Sort(allow)
			if !slices.Equal(allow, c.allow) {
				t.Errorf("%s %s: Allow = %q, want %q", c.method, c.path, allow, c.allow)
			}
		}
	})
}

func TestEdgeTrailingSlashRedirect(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		tok := e.User("slash@example.com")
		for path, want := range map[string]string{
			"/api/v1/users/me/":         "/api/v1/users/me",
			"/api/v1/users/me/?x=1&y=2": "/api/v1/users/me?x=1&y=2",
			"/health/":                  "/health",
		} {
			r := e.Get(path, tok.Access)
			if r.Status != http.StatusTemporaryRedirect || r.Header.Get("Location") != want {
				t.Errorf("GET %s = %d Location %q, want 307 to %q", path, r.Status, r.Header.Get("Location"), want)
			}
		}
		// A 307 keeps the method: a PATCH is redirected, not answered 405.
		r := e.Patch("/api/v1/users/me/", tok.Access, map[string]any{"first_name": "X"})
		if r.Status != http.StatusTemporaryRedirect || r.Header.Get("Location") != "/api/v1/users/me" {
			t.Errorf("PATCH /api/v1/users/me/ = %d Location %q", r.Status, r.Header.Get("Location"))
		}
		// No redirect to a path that does not exist either.
		expectEnvelope(t, e.Get("/api/v1/nothing-here/", ""), http.StatusNotFound, "SYS_002")
		// Following the redirect reaches the resource.
		me := e.Get("/api/v1/users/me", tok.Access).Expect(t, http.StatusOK, "").JSON(t)
		if me["email"] != "slash@example.com" {
			t.Fatalf("me = %v", me)
		}
	})
}

// Every request gets an id (the client's when well-formed) and one access
// log line with method, route pattern, status, duration and client IP; no
// log line holds a password or a token, even one sent in the query string.
func TestEdgeRequestIDAndAccessLog(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		tok := e.User("logs@example.com")

		r := e.Do(apitest.Request{Method: "GET", Path: "/api/v1/users/me?access_token=" + tok.Access, Token: tok.Access,
			Headers: map[string]string{"X-Request-ID": "trace-abc.123_x"}})
		r.Expect(t, http.StatusOK, "")
		if got := r.Header.Get("X-Request-ID"); got != "trace-abc.123_x" {
			t.Errorf("X-Request-ID = %q, want the client's", got)
		}
		r = e.Get("/api/v1/users/"+tok.UserID, tok.Access).Expect(t, http.StatusOK, "")
		byID := r.Header.Get("X-Request-ID")
		for _, bad := range []string{"has spaces", strings.Repeat("a", 65), "<script>"} {
			r := e.Do(apitest.Request{Method: "GET", Path: "/health", Headers: map[string]string{"X-Request-ID": bad}})
			if got := r.Header.Get("X-Request-ID"); got == "" || got == bad || !regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`).MatchString(got) {
				t.Errorf("X-Request-ID %q answered with %q, want a fresh well-formed id", bad, got)
			}
		}

		logs := e.Logs.String()
		line := func(id string) string {
			t.Helper()
			for _, l := range strings.Split(logs, "\n") {
				if strings.Contains(l, "msg=request ") && strings.Contains(l, "request_id="+id+" ") {
					return l
				}
			}
			t.Fatalf("no access log line for request %s in:\n%s", id, logs)
			return ""
		}
		for id, route := range map[string]string{"trace-abc.123_x": "/api/v1/users/me", byID: "/api/v1/users/{user_id}"} {
			l := line(id)
			for _, want := range []string{"method=GET", "route=" + route + " ", "status=200", "duration=", "client_ip=127.0.0.1"} {
				if !strings.Contains(l, want) {
					t.Errorf("access log line lacks %q: %s", want, l)
				}
			}
		}
		for name, secret := range map[string]string{"password": apitest.Password, "access token": tok.Access, "refresh token": tok.Refresh} {
			if strings.Contains(logs, secret) {
				t.Errorf("the logs contain the %s", name)
			}
		}
	})
}

// ---------------------------------------------------------------------------
// 2. Request bodies

func TestEdgeBodyLimits(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		tok := e.User("body@example.com")
		before := e.Snapshot()
		wantMsg := "Request body too large. Maximum size is 1MB"

		cases := []struct {
			name    string
			method  string
			path    string
			token   string
			n       int
			chunked bool
		}{
			{"announced over 1 MiB", "POST", "/api/v1/auth/login", "", mib + 1, false},
			{"chunked over 1 MiB", "POST", "/api/v1/auth/login", "", mib + 1, true},
			{"announced 20 MB", "POST", "/api/v1/auth/register", "", 20_000_000, false},
			{"chunked 20 MB", "POST", "/api/v1/auth/register", "", 20_000_000, true},
			{"authenticated, chunked over 1 MiB", "PATCH", "/api/v1/users/me", tok.Access, 2 * mib, true},
			{"authenticated, announced over 1 MiB", "PATCH", "/api/v1/users/me/password", tok.Access, 2 * mib, false},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				body := loginBody(c.n)
				var rd io.Reader = strings.NewReader(body)
				size := int64(len(body))
				if c.chunked {
					rd, size = unsized{rd}, -1
				}
				hdr := map[string]string{"Origin": corsOrigin}
				if c.token != "" {
					hdr["Authorization"] = "Bearer " + c.token
				}
				r := send(t, e, c.method, c.path, rd, size, hdr)
				if msg, field := expectEnvelope(t, r, http.StatusRequestEntityTooLarge, "REQUEST_TOO_LARGE"); msg != wantMsg || field != nil {
					t.Errorf("message %q field %v, want %q and null", msg, field, wantMsg)
				}
				// Fix 24: a browser can read the 413, announced or not.
				if got := r.Header.Get("Access-Control-Allow-Origin"); got != corsOrigin {
					t.Errorf("413 Access-Control-Allow-Origin %q, want %q", got, corsOrigin)
				}
				expectSecurityHeaders(t, r, cspRelaxed, false)
				expectHealthy(t, e)
			})
		}

		// A body just under the limit is read and judged on its content.
		body := loginBody(mib - 100)
		r := send(t, e, "POST", "/api/v1/auth/login", unsized{strings.NewReader(body)}, -1, nil)
		if _, field := expectEnvelope(t, r, http.StatusUnprocessableEntity, "VAL_001"); field != "password" {
			t.Errorf("under the limit: field %v, want password", field)
		}

		if after := e.Snapshot(); after != before {
			t.Fatalf("oversized bodies changed the database:\nbefore %s\nafter  %s", before, after)
		}
	})
}

// MAX_REQUEST_BODY_BYTES is enforced while the body is read, below the
// 1 MiB the operations themselves accept.
func TestEdgeConfiguredBodyLimit(t *testing.T) {
	t.Parallel()
	e := apitest.New(t, sqlstore.SQLite, apitest.WithEnv("MAX_REQUEST_BODY_BYTES", "4096"))
	before := e.Snapshot()
	const wantMsg = "Request body too large. Maximum size is 4096 bytes"
	for _, chunked := range []bool{false, true} {
		body := loginBody(5000)
		var rd io.Reader = strings.NewReader(body)
		size := int64(len(body))
		if chunked {
			rd, size = unsized{rd}, -1
		}
		r := send(t, e, "POST", "/api/v1/auth/login", rd, size, nil)
		if msg, _ := expectEnvelope(t, r, http.StatusRequestEntityTooLarge, "REQUEST_TOO_LARGE"); msg != wantMsg {
			t.Errorf("chunked=%v: message %q, want %q", chunked, msg, wantMsg)
		}
	}
	// Under the limit, the body reaches validation.
	r := send(t, e, "POST", "/api/v1/auth/login", unsized{strings.NewReader(loginBody(4000))}, -1, nil)
	expectEnvelope(t, r, http.StatusUnauthorized, "AUTH_001")
	if after := e.Snapshot(); after != before {
		t.Fatalf("oversized bodies changed the database:\nbefore %s\nafter  %s", before, after)
	}
}

func TestEdgeMalformedContentLength(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		before := e.Snapshot()

		// (a) Through the handler: the header is whatever the request says.
		for _, cl := range []string{"abc", "-5", "12abc", "1e3", "99999999999999999999999"} {
			req := httptest.NewRequest("POST", "/api/v1/auth/login", strings.NewReader(`{"email":"a@example.com","password":"x"}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Content-Length", cl)
			rec := httptest.NewRecorder()
			e.App.Handler.ServeHTTP(rec, req)
			r := apitest.Response{Status: rec.Code, Header: rec.Header(), Body: rec.Body.Bytes()}
			if msg, _ := expectEnvelope(t, r, http.StatusBadRequest, "VAL_006"); !strings.Contains(msg, "Content-Length") {
				t.Errorf("Content-Length %q: message %q does not name the header", cl, msg)
			}
		}

		// (b) Over the wire: Go's server refuses the request itself.
		addr := strings.TrimPrefix(e.Server.URL, "http://")
		for _, cl := range []string{"abc", "-1", "1, 2"} {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
			raw := "POST /api/v1/auth/login HTTP/1.1\r\nHost: " + addr + "\r\nContent-Type: application/json\r\n" +
				"Content-Length: " + cl + "\r\nConnection: close\r\n\r\n{}"
			if _, err := io.WriteString(conn, raw); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("Content-Length %q: no HTTP response: %v", cl, err)
			}
			_ = resp.Body.Close()
			_ = conn.Close()
			if resp.StatusCode < 400 || resp.StatusCode > 499 {
				t.Errorf("raw Content-Length %q: status %d, want 4xx", cl, resp.StatusCode)
			}
		}
		expectHealthy(t, e)
		if after := e.Snapshot(); after != before {
			t.Fatalf("bad Content-Length changed the database:\nbefore %s\nafter  %s", before, after)
		}
	})
}

// ---------------------------------------------------------------------------
// 3. Rate limits

func login(e *apitest.Env, email string) apitest.Response {
	e.T.Helper()
	return e.Post("/api/v1/auth/login", "", map[string]any{"email": email, "password": apitest.Password})
}

// burstBudget is the time a test asks apitest.FreshWindow to leave of the
// current rate-limit window before a counted burst (the limits count in
// fixed windows aligned to the clock, and a burst straddling a window's end
// starts counting again). The bursts here are at most a couple of dozen
// requests with test-cost bcrypt and take a second or two under -race; this
// leaves ample room for a loaded 2-core CI machine.
const burstBudget = 20 * time.Second

// expectRateLimited checks a 429: envelope SYS_004, the message, a positive
// integer Retry-After.
func expectRateLimited(t *testing.T, r apitest.Response, perMinute int) {
	t.Helper()
	want := fmt.Sprintf("Rate limit exceeded: %d per 1 minute", perMinute)
	if msg, _ := expectEnvelope(t, r, http.StatusTooManyRequests, "SYS_004"); msg != want {
		t.Errorf("429 message %q, want %q", msg, want)
	}
	ra := r.Header.Get("Retry-After")
	if n, err := strconv.Atoi(ra); err != nil || n <= 0 || n > 60 {
		t.Errorf("Retry-After = %q, want an integer in 1..60", ra)
	}
}

func TestEdgeRateLimitLogin(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		e.Register("limited@example.com")
		apitest.FreshWindow(t, burstBudget, time.Minute)
		for i := range 10 {
			r := login(e, "limited@example.com").Expect(t, http.StatusOK, "")
			if got := r.Header.Get("X-RateLimit-Limit"); got != "10" {
				t.Errorf("login %d: X-RateLimit-Limit = %q, want 10", i+1, got)
			}
			if got, want := r.Header.Get("X-RateLimit-Remaining"), strconv.Itoa(9-i); got != want {
				t.Errorf("login %d: X-RateLimit-Remaining = %q, want %s", i+1, got, want)
			}
		}
		before := e.Snapshot()
		r := login(e, "limited@example.com")
		expectRateLimited(t, r, 10)
		expectSecurityHeaders(t, r, cspRelaxed, false)
		if got := r.Header.Get("X-RateLimit-Remaining"); got != "0" {
			t.Errorf("429: X-RateLimit-Remaining = %q, want 0", got)
		}
		// Still limited, and the refused logins opened no session.
		expectRateLimited(t, login(e, "limited@example.com"), 10)
		if after := e.Snapshot(); after != before {
			t.Fatalf("a rate-limited login changed the database:\nbefore %s\nafter  %s", before, after)
		}
		// Counters are per endpoint: refresh is not affected.
		r = e.Post("/api/v1/auth/refresh", "", map[string]any{"refresh_token": "not-a-token"})
		expectEnvelope(t, r, http.StatusUnauthorized, "AUTH_006")
	}, apitest.WithEnv("RATE_LIMIT_ENABLED", "true"))
}

// Requests rejected by validation (422) are not counted (reference §5
// legend): malformed bodies, and also well-formed bodies whose email is not
// an email address (the reference validates it as part of the body).
func TestEdgeRateLimitIgnoresInvalidRequests(t *testing.T) {
	groups := []struct {
		name    string
		invalid []string
	}{
		{"malformed bodies", []string{
			`{"email":`,
			`{}`,
			`{"email":5,"password":true}`,
			`[]`,
			`{"email":"valid@example.com","password":"` + strings.Repeat("p", 5000) + `"}`,
			``,
		}},
		{"invalid email", []string{
			`{"email":"not-an-email","password":"x"}`,
			`{"email":"valid@","password":"x"}`,
			`{"email":"@example.com","password":"x"}`,
		}},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			apitest.Each(t, func(t *testing.T, e *apitest.Env) {
				e.Register("valid@example.com")
				apitest.FreshWindow(t, burstBudget, time.Minute)
				for range 12 / len(g.invalid) {
					for _, body := range g.invalid {
						r := e.Post("/api/v1/auth/login", "", body)
						expectEnvelope(t, r, http.StatusUnprocessableEntity, "VAL_001")
					}
				}
				// 12 rejected-by-validation requests did not use up the 10 allowed.
				for i := range 10 {
					r := login(e, "valid@example.com")
					if r.Status != http.StatusOK {
						t.Fatalf("valid login %d after 12 invalid ones: %d %s", i+1, r.Status, r.Body)
					}
				}
				expectRateLimited(t, login(e, "valid@example.com"), 10)
			}, apitest.WithEnv("RATE_LIMIT_ENABLED", "true"))
		})
	}

	// The same rule on the reset request (3 per minute).
	t.Run("reset request", func(t *testing.T) {
		apitest.Each(t, func(t *testing.T, e *apitest.Env) {
			reset := func(email any) apitest.Response {
				return e.Post("/api/v1/auth/password-reset/request", "", map[string]any{"email": email})
			}
			apitest.FreshWindow(t, burstBudget, time.Minute)
			for range 2 {
				expectEnvelope(t, reset(42), http.StatusUnprocessableEntity, "VAL_001")
				expectEnvelope(t, reset("not-an-email"), http.StatusUnprocessableEntity, "VAL_001")
			}
			for i := range 3 {
				if r := reset("someone@example.com"); r.Status != http.StatusOK {
					t.Fatalf("valid reset request %d after 4 invalid ones: %d %s", i+1, r.Status, r.Body)
				}
			}
			expectRateLimited(t, reset("someone@example.com"), 3)
		}, apitest.WithEnv("RATE_LIMIT_ENABLED", "true"))
	})
}

func TestEdgeRateLimitTestMultiplier(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		e.Register("many@example.com")
		for i := range 11 {
			r := login(e, "many@example.com")
			if r.Status != http.StatusOK {
				t.Fatalf("login %d with IS_TEST=True: %d %s", i+1, r.Status, r.Body)
			}
			if got := r.Header.Get("X-RateLimit-Limit"); got != "1000" {
				t.Fatalf("X-RateLimit-Limit = %q, want 1000", got)
			}
		}
		// The form login is not multiplied (reference §5.2): 10, then 429.
		form := func() apitest.Response {
			return e.Do(apitest.Request{Method: "POST", Path: "/api/v1/auth/login/oauth",
				Body:    "username=many%40example.com&password=" + url.QueryEscape(apitest.Password),
				Headers: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}})
		}
		apitest.FreshWindow(t, burstBudget, time.Minute)
		for i := range 10 {
			if r := form(); r.Status != http.StatusOK {
				t.Fatalf("form login %d: %d %s", i+1, r.Status, r.Body)
			}
		}
		expectRateLimited(t, form(), 10)
	}, apitest.WithEnv("RATE_LIMIT_ENABLED", "true"), apitest.WithEnv("IS_TEST", "True"))
}

// ---------------------------------------------------------------------------
// 4. Security headers

func TestEdgeSecurityHeaders(t *testing.T) {
	t.Parallel()
	prodEnv := []apitest.Option{
		apitest.WithEnv("ENVIRONMENT", "production"),
		apitest.WithEnv("FIRST_SUPERUSER_EMAIL", "root@example.com"),
		apitest.WithEnv("FIRST_SUPERUSER_PASSWORD", "Sup3rSecretPassw0rd"),
	}
	cases := []struct {
		name    string
		opts    []apitest.Option
		api     string // CSP of API responses, "" for none
		docs    string // CSP of /docs responses
		hstsOn  bool
		wantEnv string
	}{
		{"default relaxed", nil, cspRelaxed, cspDocs, false, "development"},
		{"strict", []apitest.Option{apitest.WithEnv("CSP_MODE", "strict")}, cspStrict, cspDocs, false, "development"},
		{"strict, any case", []apitest.Option{apitest.WithEnv("CSP_MODE", "STRICT")}, cspStrict, cspDocs, false, "development"},
		{"unknown mode is relaxed", []apitest.Option{apitest.WithEnv("CSP_MODE", "paranoid")}, cspRelaxed, cspDocs, false, "development"},
		{"disabled", []apitest.Option{apitest.WithEnv("CSP_MODE", "disabled")}, "", "", false, "development"},
		{"production", prodEnv, cspRelaxed, cspDocs, true, "production"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := apitest.New(t, sqlstore.SQLite, c.opts...)

			r := e.Get("/health", "").Expect(t, http.StatusOK, "")
			if env := r.JSON(t)["environment"]; env != c.wantEnv {
				t.Fatalf("environment %v, want %s", env, c.wantEnv)
			}
			expectSecurityHeaders(t, r, c.api, c.hstsOn)

			r = e.Get("/", "").Expect(t, http.StatusOK, "")
			expectSecurityHeaders(t, r, c.api, c.hstsOn)

			// Errors of every origin: router 404 and 405, auth 401, validation 422.
			r = e.Get("/api/v1/nowhere", "")
			expectEnvelope(t, r, http.StatusNotFound, "SYS_002")
			expectSecurityHeaders(t, r, c.api, c.hstsOn)
			r = e.Do(apitest.Request{Method: "PUT", Path: "/health"})
			expectEnvelope(t, r, http.StatusMethodNotAllowed, "SYS_003")
			expectSecurityHeaders(t, r, c.api, c.hstsOn)
			r = e.Get("/api/v1/users/me", "")
			expectEnvelope(t, r, http.StatusUnauthorized, "AUTH_006")
			expectSecurityHeaders(t, r, c.api, c.hstsOn)
			r = e.Post("/api/v1/auth/login", "", `{"email":`)
			expectEnvelope(t, r, http.StatusUnprocessableEntity, "VAL_001")
			expectSecurityHeaders(t, r, c.api, c.hstsOn)

			// The documentation has its own policy.
			for _, p := range []string{"/docs/", "/docs/swagger-ui-bundle.js", "/docs"} {
				r = e.Get(p, "")
				if r.Status >= 400 {
					t.Fatalf("GET %s = %d", p, r.Status)
				}
				expectSecurityHeaders(t, r, c.docs, c.hstsOn)
			}
			// A path that merely starts with "docs" is not the documentation.
			r = e.Get("/docsearch", "")
			expectEnvelope(t, r, http.StatusNotFound, "SYS_002")
			expectSecurityHeaders(t, r, c.api, c.hstsOn)
		})
	}
}

// ---------------------------------------------------------------------------
// 5. CORS

func preflight(e *apitest.Env, origin, method, headers string) apitest.Response {
	e.T.Helper()
	h := map[string]string{"Origin": origin, "Access-Control-Request-Method": method}
	if headers != "" {
		h["Access-Control-Request-Headers"] = headers
	}
	return e.Do(apitest.Request{Method: "OPTIONS", Path: "/api/v1/auth/login", Headers: h})
}

func TestEdgeCORS(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		t.Run("allowed preflight", func(t *testing.T) {
			r := preflight(e, corsOrigin, "POST", "Content-Type, Authorization, X-Device-Id")
			if r.Status != http.StatusOK {
				t.Fatalf("preflight = %d %s", r.Status, r.Body)
			}
			want := map[string]string{
				"Access-Control-Allow-Origin":      corsOrigin,
				"Access-Control-Allow-Credentials": "true",
				"Access-Control-Max-Age":           "600",
			}
			for k, v := range want {
				if got := r.Header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			methods := strings.ToUpper(r.Header.Get("Access-Control-Allow-Methods"))
			for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"} {
				if !strings.Contains(methods, m) {
					t.Errorf("Access-Control-Allow-Methods %q lacks %s", methods, m)
				}
			}
			headers := strings.ToLower(r.Header.Get("Access-Control-Allow-Headers"))
			for _, h := range []string{"content-type", "authorization", "x-device-id"} {
				if !strings.Contains(headers, h) {
					t.Errorf("Access-Control-Allow-Headers %q lacks %s", headers, h)
				}
			}
			expectSecurityHeaders(t, r, cspRelaxed, false)
		})

		t.Run("disallowed origin", func(t *testing.T) {
			r := preflight(e, foreignOrigin, "POST", "Content-Type")
			if r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), "Disallowed CORS origin") {
				t.Fatalf("preflight = %d %q, want 400 Disallowed CORS origin", r.Status, r.Body)
			}
			if got := r.Header.Get("Access-Control-Allow-Origin"); got != "" {
				t.Errorf("Access-Control-Allow-Origin = %q on a refused preflight", got)
			}
		})

		t.Run("disallowed header", func(t *testing.T) {
			r := preflight(e, corsOrigin, "POST", "Content-Type, X-Evil")
			body := string(r.Body)
			if r.Status != http.StatusBadRequest || !strings.Contains(body, "headers") || strings.Contains(body, "origin") {
				t.Fatalf("preflight = %d %q, want 400 naming only the headers", r.Status, body)
			}
		})

		t.Run("disallowed method", func(t *testing.T) {
			r := preflight(e, corsOrigin, "TRACE", "")
			body := string(r.Body)
			if r.Status != http.StatusBadRequest || !strings.Contains(body, "method") || strings.Contains(body, "origin") {
				t.Fatalf("preflight = %d %q, want 400 naming only the method", r.Status, body)
			}
		})

		t.Run("simple requests", func(t *testing.T) {
			r := e.Do(apitest.Request{Method: "GET", Path: "/health", Headers: map[string]string{"Origin": corsOrigin}})
			r.Expect(t, http.StatusOK, "")
			if r.Header.Get("Access-Control-Allow-Origin") != corsOrigin || r.Header.Get("Access-Control-Allow-Credentials") != "true" {
				t.Errorf("allowed origin: CORS headers %v", r.Header)
			}
			// Errors are readable by the allowed frontend too.
			r = e.Do(apitest.Request{Method: "GET", Path: "/api/v1/users/me", Headers: map[string]string{"Origin": corsOrigin}})
			expectEnvelope(t, r, http.StatusUnauthorized, "AUTH_006")
			if r.Header.Get("Access-Control-Allow-Origin") != corsOrigin {
				t.Errorf("401 for the allowed origin lacks Access-Control-Allow-Origin")
			}

			r = e.Do(apitest.Request{Method: "GET", Path: "/health", Headers: map[string]string{"Origin": foreignOrigin}})
			r.Expect(t, http.StatusOK, "")
			for k := range r.Header {
				if strings.HasPrefix(k, "Access-Control-") {
					t.Errorf("foreign origin got %s: %q", k, r.Header.Get(k))
				}
			}
			r = e.Get("/health", "")
			if got := r.Header.Get("Access-Control-Allow-Origin"); got != "" {
				t.Errorf("no Origin: Access-Control-Allow-Origin = %q", got)
			}
		})
	})
}

func TestEdgeCORSConfiguredOrigins(t *testing.T) {
	t.Parallel()
	e := apitest.New(t, sqlstore.SQLite, apitest.WithEnv("BACKEND_CORS_ORIGINS", `["https://app.example.com"]`))
	if r := preflight(e, "https://app.example.com", "PATCH", "authorization"); r.Status != http.StatusOK ||
		r.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" {
		t.Fatalf("configured origin: %d %v", r.Status, r.Header)
	}
	if r := preflight(e, corsOrigin, "PATCH", ""); r.Status != http.StatusBadRequest ||
		!strings.Contains(string(r.Body), "Disallowed CORS origin") {
		t.Fatalf("default origin no longer configured: %d %q", r.Status, r.Body)
	}
}

// ---------------------------------------------------------------------------
// 6. Health

func TestEdgeHealth(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		for _, path := range []string{"/health", "/health?verbose=1&x=%zz"} {
			r := e.Get(path, "").Expect(t, http.StatusOK, "")
			if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q", ct)
			}
			expectHealthBody(t, r, "healthy", "Database connection successful")
			m := r.JSON(t)
			if m["version"] != "1.0.0" || m["environment"] != "development" {
				t.Errorf("version %v environment %v", m["version"], m["environment"])
			}
		}
		expectEnvelope(t, e.Post("/health", "", map[string]any{}), http.StatusMethodNotAllowed, "SYS_003")
	})
}

// expectHealthBody checks the /health body of reference §5.1.
func expectHealthBody(t *testing.T, r apitest.Response, status, dbMessagePrefix string) {
	t.Helper()
	var body struct {
		Status      string `json:"status"`
		Timestamp   string `json:"timestamp"`
		Version     string `json:"version"`
		Environment string `json:"environment"`
		Checks      map[string]struct {
			Status  string `json:"status"`
			Message string `json:"message"`
		} `json:"checks"`
	}
	r.Decode(t, &body)
	if body.Status != status {
		t.Errorf("status %q, want %q", body.Status, status)
	}
	if ts, err := time.Parse(time.RFC3339Nano, body.Timestamp); err != nil || !strings.HasSuffix(body.Timestamp, "Z") || ts.Location() != time.UTC {
		t.Errorf("timestamp %q is not UTC ISO-8601 ending in Z (%v)", body.Timestamp, err)
	}
	if body.Version == "" || body.Environment == "" {
		t.Errorf("version %q environment %q", body.Version, body.Environment)
	}
	db, ok := body.Checks["database"]
	if !ok || db.Status != status || !strings.HasPrefix(db.Message, dbMessagePrefix) {
		t.Errorf("checks.database = %+v, want status %q message %q…", db, status, dbMessagePrefix)
	}
}

// tcpProxy forwards loopback connections to a target; stopping it closes the
// listener and every connection, which looks like a database outage.
type tcpProxy struct {
	t      *testing.T
	target string
	addr   string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func startProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	p := &tcpProxy{t: t, target: target, addr: "127.0.0.1:0", conns: map[net.Conn]struct{}{}}
	p.start()
	t.Cleanup(p.stop)
	return p
}

// start listens on p.addr (the same port again after a stop).
func (p *tcpProxy) start() {
	p.t.Helper()
	var ln net.Listener
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; {
		if ln, err = net.Listen("tcp", p.addr); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		p.t.Fatalf("proxy listen on %s: %v", p.addr, err)
	}
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Add(1)
			go func() { defer p.wg.Done(); p.serve(c) }()
		}
	}()
}

func (p *tcpProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln == nil {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *tcpProxy) serve(client net.Conn) {
	upstream, err := net.Dial("tcp", p.target)
	if err != nil {
		client.Close()
		return
	}
	if !p.track(client) || !p.track(upstream) {
		client.Close()
		upstream.Close()
		return
	}
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	go pipe(upstream, client)
	go pipe(client, upstream)
	<-done
	client.Close()
	upstream.Close()
	<-done
}

// stop closes the listener and every open connection.
func (p *tcpProxy) stop() {
	p.mu.Lock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// DB_POOL_TIMEOUT bounds how long a request waits for the database: with
// the only connection (PostgreSQL, pool of one) or the write lock (SQLite)
// held elsewhere, a registration gets 503 SYS_006 with Retry-After and
// writes nothing, and succeeds once it is released.
func TestEdgePoolTimeout(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		ctx := context.Background()
		held, release := make(chan struct{}), make(chan struct{})
		done := make(chan error, 1)
		go func() {
			done <- e.App.Store.InTx(ctx, func(*sqlstore.Store) error {
				close(held)
				<-release
				return nil
			})
		}()
		<-held
		body := map[string]any{"email": "late@example.com", "password": apitest.Password, "first_name": "L"}
		r := e.Post("/api/v1/auth/register", "", body)
		close(release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		expectEnvelope(t, r, http.StatusServiceUnavailable, "SYS_006")
		if n, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || n <= 0 {
			t.Errorf("503 Retry-After = %q, want a positive integer", r.Header.Get("Retry-After"))
		}
		if n := e.Count(`SELECT COUNT(*) FROM users WHERE email = 'late@example.com'`); n != 0 {
			t.Fatalf("the timed-out registration wrote %d users", n)
		}
		e.Post("/api/v1/auth/register", "", body).Expect(t, http.StatusCreated, "")
	}, apitest.WithEnv("DB_POOL_TIMEOUT", "1"), apitest.WithEnv("DB_POOL_SIZE", "1"), apitest.WithEnv("DB_MAX_OVERFLOW", "0"))
}

func TestEdgeHealthDatabaseOutage(t *testing.T) {
	if !slices.Contains(dbtest.Engines(t), sqlstore.Postgres) {
		t.Skip("PostgreSQL only: set " + dbtest.EnvPostgres + " (SQLite cannot go away)")
	}
	t.Parallel()
	dbURL := dbtest.URL(t, sqlstore.Postgres)
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := startProxy(t, u.Host)
	u.Host = proxy.addr
	e := apitest.New(t, sqlstore.Postgres, apitest.WithEnv("DATABASE_URL", u.String()))

	tok := e.User("outage@example.com")
	expectHealthBody(t, e.Get("/health", "").Expect(t, http.StatusOK, ""), "healthy", "Database connection successful")

	proxy.stop()

	r := e.Get("/health", "")
	if r.Status != http.StatusServiceUnavailable {
		t.Fatalf("/health during the outage = %d %s, want 503", r.Status, r.Body)
	}
	expectHealthBody(t, r, "unhealthy", "Database connection failed")
	expectSecurityHeaders(t, r, cspRelaxed, false)

	for _, req := range []apitest.Request{
		{Method: "GET", Path: "/api/v1/users/me", Token: tok.Access},
		{Method: "GET", Path: "/api/v1/sessions/me", Token: tok.Access},
		{Method: "POST", Path: "/api/v1/auth/login", Body: map[string]any{"email": "outage@example.com", "password": apitest.Password}},
		{Method: "POST", Path: "/api/v1/auth/register", Body: map[string]any{"email": "new@example.com", "password": apitest.Password, "first_name": "N"}},
	} {
		r := e.Do(req)
		expectEnvelope(t, r, http.StatusServiceUnavailable, "SYS_006")
		if n, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || n <= 0 {
			t.Errorf("%s %s: 503 Retry-After = %q, want a positive integer", req.Method, req.Path, r.Header.Get("Retry-After"))
		}
	}

	proxy.start() // same port: the database is back

	poll := func(path, token string) apitest.Response {
		t.Helper()
		var r apitest.Response
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if r = e.Get(path, token); r.Status == http.StatusOK {
				break
			}
			if r.Status != http.StatusServiceUnavailable {
				t.Fatalf("%s while recovering: %d %s (only 503 is acceptable)", path, r.Status, r.Body)
			}
		}
		return r
	}
	expectHealthBody(t, poll("/health", "").Expect(t, http.StatusOK, ""), "healthy", "Database connection successful")
	me := poll("/api/v1/users/me", tok.Access).Expect(t, http.StatusOK, "").JSON(t)
	if me["email"] != "outage@example.com" {
		t.Fatalf("me after recovery = %v", me)
	}
}

// ---------------------------------------------------------------------------
// 7. Root page, docs, OpenAPI document

func TestEdgeRootAndDocs(t *testing.T) {
	t.Parallel()
	e := apitest.New(t, sqlstore.SQLite)

	r := e.Get("/", "").Expect(t, http.StatusOK, "")
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("GET / Content-Type %q, want text/html", ct)
	}
	if !strings.Contains(string(r.Body), "Welcome to") || !strings.Contains(string(r.Body), `href="/docs"`) {
		t.Errorf("GET / body: %s", r.Body)
	}

	// /docs is the documentation, directly or by a redirect to /docs/.
	r = e.Get("/docs", "")
	switch {
	case r.Status == http.StatusOK && strings.Contains(string(r.Body), "swagger-ui"):
	case r.Status/100 == 3 && r.Header.Get("Location") == "/docs/":
	default:
		t.Errorf("GET /docs = %d Location %q: neither the documentation nor a redirect to /docs/", r.Status, r.Header.Get("Location"))
	}

	r = e.Get("/docs/", "").Expect(t, http.StatusOK, "")
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("/docs/ Content-Type %q", ct)
	}
	page := string(r.Body)
	if !strings.Contains(page, "/api/v1/openapi.json") {
		t.Errorf("/docs/ does not load /api/v1/openapi.json")
	}
	// Every script and stylesheet is served by Gatehouse under /docs/.
	assetRe := regexp.MustCompile(`(?i)<(?:script|link)\b[^>]*?\b(?:src|href)\s*=\s*["']([^"']+)["']`)
	var assets []string
	for _, m := range assetRe.FindAllStringSubmatch(page, -1) {
		assets = append(assets, m[1])
	}
	if !slices.Contains(assets, "/docs/swagger-ui-bundle.js") {
		t.Errorf("/docs/ assets %q lack /docs/swagger-ui-bundle.js", assets)
	}
	for _, a := range assets {
		if !strings.HasPrefix(a, "/docs/") {
			t.Errorf("/docs/ loads %q from outside /docs/", a)
			continue
		}
		if r := e.Get(a, ""); r.Status != http.StatusOK || len(r.Body) == 0 {
			t.Errorf("GET %s = %d (%d bytes)", a, r.Status, len(r.Body))
		}
	}
	if regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?(https?:)?//`).MatchString(page) {
		t.Errorf("/docs/ references an external host")
	}
	r = e.Get("/docs/swagger-ui-bundle.js", "").Expect(t, http.StatusOK, "")
	if len(r.Body) < 10_000 {
		t.Errorf("swagger-ui-bundle.js is only %d bytes", len(r.Body))
	}

	// The reference's OAuth2 redirect page for the Authorize dialog.
	r = e.Get("/docs/oauth2-redirect", "").Expect(t, http.StatusOK, "")
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") || !strings.Contains(string(r.Body), "oauth2") {
		t.Errorf("/docs/oauth2-redirect: Content-Type %q, body %.200s", ct, r.Body)
	}
	// Anything else under /docs is answered like any other route: the
	// envelope, with the middleware's headers.
	r = e.Get("/docs/no-such-asset.js", "")
	r.Expect(t, http.StatusNotFound, "SYS_002")
	if r.Header.Get("X-Content-Type-Options") != "nosniff" || r.Header.Get("X-Request-ID") == "" {
		t.Errorf("404 under /docs lacks the middleware's headers: %v", r.Header)
	}
	for _, m := range []string{"POST", "PUT", "DELETE", "PATCH"} {
		r = e.Do(apitest.Request{Method: m, Path: "/docs/swagger-ui.css"})
		r.Expect(t, http.StatusMethodNotAllowed, "SYS_003")
		if allow := r.Header.Get("Allow"); allow != "GET, HEAD" {
			t.Errorf("%s /docs/swagger-ui.css: Allow %q", m, allow)
		}
	}
}

// documentedRoutes is every route registered in routes.go, with what its
// OpenAPI operation must document.
var documentedRoutes = []struct {
	method, path string
	body         bool     // takes a request body
	params       []string // parameters it must declare
}{
	{"GET", "/", false, nil},
	{"GET", "/health", false, nil},
	{"GET", "/health/live", false, nil},
	{"POST", "/api/v1/auth/register", true, nil},
	{"POST", "/api/v1/auth/login", true, nil},
	{"POST", "/api/v1/auth/login/oauth", true, nil},
	{"POST", "/api/v1/auth/refresh", true, nil},
	{"POST", "/api/v1/auth/logout", true, nil},
	{"POST", "/api/v1/auth/logout-all", false, nil},
	{"POST", "/api/v1/auth/password-reset/request", true, nil},
	{"POST", "/api/v1/auth/password-reset/confirm", true, nil},
	{"GET", "/api/v1/users", false, []string{"page", "limit", "sort_by", "sort_order", "is_active", "is_superuser"}},
	{"GET", "/api/v1/users/me", false, nil},
	{"PATCH", "/api/v1/users/me", true, nil},
	{"PATCH", "/api/v1/users/me/password", true, nil},
	{"POST", "/api/v1/users/me/tokens", true, nil},
	{"GET", "/api/v1/users/me/tokens", false, nil},
	{"DELETE", "/api/v1/users/me/tokens/{token_id}", false, []string{"token_id"}},
	{"GET", "/api/v1/users/{user_id}", false, []string{"user_id"}},
	{"PATCH", "/api/v1/users/{user_id}", true, []string{"user_id"}},
	{"DELETE", "/api/v1/users/{user_id}", false, []string{"user_id"}},
	{"GET", "/api/v1/sessions/me", false, nil},
	{"DELETE", "/api/v1/sessions/me/expired", false, nil},
	{"DELETE", "/api/v1/sessions/{session_id}", false, []string{"session_id"}},
	{"GET", "/api/v1/organizations/me", false, []string{"is_active"}},
	{"POST", "/api/v1/organizations", true, nil},
	{"POST", "/api/v1/organizations/invitations/accept", true, nil},
	{"GET", "/api/v1/organizations/{organization_id}", false, []string{"organization_id"}},
	{"PUT", "/api/v1/organizations/{organization_id}", true, []string{"organization_id"}},
	{"GET", "/api/v1/organizations/{organization_id}/members", false, []string{"organization_id", "page", "limit", "is_active"}},
	{"POST", "/api/v1/organizations/{organization_id}/members", true, []string{"organization_id"}},
	{"PATCH", "/api/v1/organizations/{organization_id}/members/{user_id}", true, []string{"organization_id", "user_id"}},
	{"DELETE", "/api/v1/organizations/{organization_id}/members/{user_id}", false, []string{"organization_id", "user_id"}},
	{"POST", "/api/v1/organizations/{organization_id}/invitations", true, []string{"organization_id"}},
	{"GET", "/api/v1/organizations/{organization_id}/invitations", false, []string{"organization_id"}},
	{"DELETE", "/api/v1/organizations/{organization_id}/invitations/{invitation_id}", false, []string{"organization_id", "invitation_id"}},
	{"GET", "/api/v1/oauth/providers", false, nil},
	{"GET", "/api/v1/oauth/authorize/{provider}", false, []string{"provider", "redirect_uri"}},
	{"POST", "/api/v1/oauth/callback/{provider}", true, []string{"provider", "redirect_uri"}},
	{"GET", "/api/v1/oauth/accounts", false, nil},
	{"DELETE", "/api/v1/oauth/accounts/{provider}", false, []string{"provider"}},
	{"POST", "/api/v1/oauth/link/{provider}", false, []string{"provider", "redirect_uri"}},
	{"POST", "/api/v1/oauth/provider/clients", true, nil},
	{"GET", "/api/v1/oauth/provider/clients", false, nil},
	{"GET", "/api/v1/oauth/provider/consents", false, nil},
	{"GET", "/api/v1/admin/stats", false, nil},
	{"GET", "/api/v1/admin/users", false, []string{"page", "limit", "sort_by", "sort_order", "is_active", "is_superuser", "search"}},
	{"POST", "/api/v1/admin/users", true, nil},
	{"POST", "/api/v1/admin/users/bulk-action", true, nil},
	{"GET", "/api/v1/admin/users/{user_id}", false, []string{"user_id"}},
	{"PUT", "/api/v1/admin/users/{user_id}", true, []string{"user_id"}},
	{"DELETE", "/api/v1/admin/users/{user_id}", false, []string{"user_id"}},
	{"POST", "/api/v1/admin/users/{user_id}/activate", false, []string{"user_id"}},
	{"POST", "/api/v1/admin/users/{user_id}/deactivate", false, []string{"user_id"}},
	{"GET", "/api/v1/admin/sessions", false, []string{"page", "limit", "is_active"}},
	{"DELETE", "/api/v1/admin/sessions/{session_id}", false, []string{"session_id"}},
	{"GET", "/api/v1/admin/tokens", false, []string{"page", "limit", "user_id", "is_active"}},
	{"DELETE", "/api/v1/admin/tokens/{token_id}", false, []string{"token_id"}},
	{"GET", "/api/v1/admin/organizations", false, []string{"page", "limit", "is_active", "search"}},
	{"POST", "/api/v1/admin/organizations", true, nil},
	{"GET", "/api/v1/admin/organizations/{org_id}", false, []string{"org_id"}},
	{"PUT", "/api/v1/admin/organizations/{org_id}", true, []string{"org_id"}},
	{"DELETE", "/api/v1/admin/organizations/{org_id}", false, []string{"org_id"}},
	{"GET", "/api/v1/admin/organizations/{org_id}/members", false, []string{"org_id", "page", "limit", "is_active"}},
	{"POST", "/api/v1/admin/organizations/{org_id}/members", true, []string{"org_id"}},
	{"DELETE", "/api/v1/admin/organizations/{org_id}/members/{user_id}", false, []string{"org_id", "user_id"}},
}

// protocolRoutes are documented without the API's JSON conventions: the
// OAuth protocol endpoints (RFC wire formats, redirects) and 204 answers.
var protocolRoutes = []struct{ method, path, status string }{
	{"GET", "/.well-known/oauth-authorization-server", "200"},
	{"GET", "/.well-known/openid-configuration", "200"},
	{"GET", "/.well-known/jwks.json", "200"},
	{"GET", "/api/v1/oauth/provider/authorize", "302"},
	{"POST", "/api/v1/oauth/provider/authorize/consent", "303"},
	{"POST", "/api/v1/oauth/provider/token", "200"},
	{"POST", "/api/v1/oauth/provider/revoke", "200"},
	{"POST", "/api/v1/oauth/provider/introspect", "200"},
	{"GET", "/api/v1/oauth/provider/userinfo", "200"},
	{"POST", "/api/v1/oauth/provider/userinfo", "200"},
	{"POST", "/api/v1/oauth/provider/register", "201"},
	{"GET", "/authorize", "302"},
	{"POST", "/token", "200"},
	{"POST", "/register", "201"},
	{"GET", "/.well-known/oauth-protected-resource/mcp", "200"},
	{"GET", "/.well-known/oauth-protected-resource/api/v1", "200"},
	{"POST", "/mcp", "200"},
	{"DELETE", "/api/v1/oauth/provider/clients/{client_id}", "204"},
	{"DELETE", "/api/v1/oauth/provider/consents/{client_id}", "204"},
}

type openAPIMedia struct {
	Schema map[string]any `json:"schema"`
}

type openAPIOperation struct {
	OperationID string `json:"operationId"`
	Parameters  []struct {
		Name string `json:"name"`
		In   string `json:"in"`
	} `json:"parameters"`
	RequestBody *struct {
		Content map[string]openAPIMedia `json:"content"`
	} `json:"requestBody"`
	Responses map[string]struct {
		Content map[string]openAPIMedia `json:"content"`
	} `json:"responses"`
}

func TestEdgeOpenAPIDocument(t *testing.T) {
	t.Parallel()
	e := apitest.New(t, sqlstore.SQLite)
	r := e.Get("/api/v1/openapi.json", "").Expect(t, http.StatusOK, "")
	var doc struct {
		OpenAPI string `json:"openapi"`
		Info    struct {
			Title   string `json:"title"`
			Version string `json:"version"`
		} `json:"info"`
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			Schemas map[string]struct {
				Type       any            `json:"type"`
				Properties map[string]any `json:"properties"`
				Required   []string       `json:"required"`
			} `json:"schemas"`
		} `json:"components"`
	}
	r.Decode(t, &doc)
	if !strings.HasPrefix(doc.OpenAPI, "3.1.") {
		t.Errorf("openapi %q, want 3.1.x", doc.OpenAPI)
	}
	if doc.Info.Title != "Gatehouse" || doc.Info.Version != "1.0.0" {
		t.Errorf("info %+v, want PROJECT_NAME and VERSION", doc.Info)
	}

	envelope, ok := doc.Components.Schemas["Envelope"]
	if !ok {
		t.Fatalf("no Envelope schema among %d schemas", len(doc.Components.Schemas))
	}
	for _, p := range []string{"success", "errors"} {
		if _, ok := envelope.Properties[p]; !ok || !slices.Contains(envelope.Required, p) {
			t.Errorf("Envelope schema lacks required property %q", p)
		}
	}
	if item, ok := doc.Components.Schemas["ErrorItem"]; !ok {
		t.Errorf("no ErrorItem schema")
	} else {
		for _, p := range []string{"code", "message", "field"} {
			if _, ok := item.Properties[p]; !ok {
				t.Errorf("ErrorItem schema lacks %q", p)
			}
		}
	}

	listed := map[string]bool{}
	for _, r := range documentedRoutes {
		listed[r.method+" "+r.path] = true
	}
	for _, r := range protocolRoutes {
		listed[r.method+" "+r.path] = true
		raw, ok := doc.Paths[r.path][strings.ToLower(r.method)]
		if !ok {
			t.Errorf("%s %s is not documented", r.method, r.path)
			continue
		}
		var op openAPIOperation
		if err := json.Unmarshal(raw, &op); err != nil {
			t.Fatal(err)
		}
		if _, ok := op.Responses[r.status]; !ok {
			t.Errorf("%s %s: response %s not documented", r.method, r.path, r.status)
		}
	}
	for path, ops := range doc.Paths {
		for method := range ops {
			if !listed[strings.ToUpper(method)+" "+path] {
				t.Errorf("%s %s is documented but not in documentedRoutes: add it to this test", strings.ToUpper(method), path)
			}
		}
	}
	for _, want := range documentedRoutes {
		raw, ok := doc.Paths[want.path][strings.ToLower(want.method)]
		if !ok {
			t.Errorf("%s %s is not documented", want.method, want.path)
			continue
		}
		var op openAPIOperation
		if err := json.Unmarshal(raw, &op); err != nil {
			t.Fatalf("%s %s: %v", want.method, want.path, err)
		}
		var params []string
		for _, p := range op.Parameters {
			params = append(params, p.Name)
		}
		for _, p := range want.params {
			if !slices.Contains(params, p) {
				t.Errorf("%s %s: parameter %q not documented (have %q)", want.method, want.path, p, params)
			}
		}
		if !strings.HasPrefix(want.path, "/api/v1/") {
			continue
		}
		if want.body {
			if op.RequestBody == nil || len(op.RequestBody.Content) == 0 {
				t.Errorf("%s %s: no request body documented", want.method, want.path)
			}
			if op.RequestBody != nil {
				for ct, m := range op.RequestBody.Content {
					if len(m.Schema) == 0 {
						t.Errorf("%s %s: request body %s without a schema", want.method, want.path, ct)
					}
				}
			}
		}
		var success, envelopeErr bool
		for status, resp := range op.Responses {
			m, ok := resp.Content["application/json"]
			if !ok || len(m.Schema) == 0 {
				continue
			}
			if strings.HasPrefix(status, "2") {
				success = true
			}
			if (strings.HasPrefix(status, "4") || status == "default") && m.Schema["$ref"] == "#/components/schemas/Envelope" {
				envelopeErr = true
			}
		}
		if !success {
			t.Errorf("%s %s: no JSON success response schema", want.method, want.path)
		}
		if !envelopeErr {
			t.Errorf("%s %s: no error response with the Envelope schema", want.method, want.path)
		}
	}
}

// ---------------------------------------------------------------------------
// 8. Bad input never causes a 500 and never changes anything

func TestEdgeBadInputNever500s(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		su := e.Superuser("root@example.com")
		u := e.User("plain@example.com")
		long := strings.Repeat("x", 10_000)
		form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}

		// state is everything a bad request could have changed.
		state := func(t *testing.T) string {
			t.Helper()
			me := e.Get("/api/v1/users/me", u.Access).Expect(t, http.StatusOK, "").Body
			root := e.Get("/api/v1/users/me", su.Access).Expect(t, http.StatusOK, "").Body
			return e.Snapshot() + "\n" + string(me) + "\n" + string(root)
		}

		type tc struct {
			name   string
			req    apitest.Request
			status int    // 0: any 4xx
			field  string // expected field of the first error, "" to skip
		}
		post := func(name, path, body string, status int, field string) tc {
			return tc{name, apitest.Request{Method: "POST", Path: path, Body: body}, status, field}
		}
		patchMe := func(name, body string, field string) tc {
			return tc{name, apitest.Request{Method: "PATCH", Path: "/api/v1/users/me", Token: u.Access, Body: body}, 422, field}
		}
		listUsers := func(query, field string) tc {
			return tc{"list users " + query, apitest.Request{Method: "GET", Path: "/api/v1/users?" + query, Token: su.Access}, 422, field}
		}
		const reg = "/api/v1/auth/register"
		const login = "/api/v1/auth/login"
		cases := []tc{
			// Registration.
			post("register invalid JSON", reg, `{"email":`, 422, ""),
			post("register trailing garbage", reg, `{"email":"a@example.com"} xyz`, 422, ""),
			post("register numbers for strings", reg, `{"email":123,"password":true,"first_name":5}`, 422, "email"),
			post("register nulls", reg, `{"email":null,"password":null,"first_name":null}`, 422, "email"),
			post("register missing fields", reg, `{}`, 422, ""),
			post("register 10k email", reg, `{"email":"`+long+`@example.com","password":"`+apitest.Password+`","first_name":"A"}`, 422, "email"),
			post("register 10k first name", reg, `{"email":"long@example.com","password":"`+apitest.Password+`","first_name":"`+long+`"}`, 422, "first_name"),
			post("register 10k password", reg, `{"email":"long@example.com","password":"`+long+`","first_name":"A"}`, 422, "password"),
			post("register emoji password", reg, `{"email":"emoji@example.com","password":"😀😀😀😀😀😀😀😀😀😀😀😀","first_name":"A"}`, 422, "password"),
			post("register emoji phone", reg, `{"email":"emoji@example.com","password":"`+apitest.Password+`","first_name":"A","phone_number":"📞📞📞"}`, 422, "phone_number"),
			post("register string for boolean", reg, `{"email":"b@example.com","password":"`+apitest.Password+`","first_name":"A","is_superuser":"yes please"}`, 422, "is_superuser"),
			post("register array", reg, `[{"email":"c@example.com","password":"`+apitest.Password+`","first_name":"A"}]`, 422, ""),
			post("register empty body", reg, ``, 422, ""),
			post("register JSON null", reg, `null`, 422, ""),
			post("register NUL in email", reg, `{"email":"nul\u0000@example.com","password":"`+apitest.Password+`","first_name":"A"}`, 0, ""),
			post("register NUL in last name", reg, `{"email":"nul@example.com","password":"`+apitest.Password+`","first_name":"A","last_name":"B\u0000"}`, 422, "last_name"),
			post("register deeply nested", reg, `{"email":"deep@example.com","password":"`+apitest.Password+`","first_name":"A","x":`+strings.Repeat("[", 100_000)+strings.Repeat("]", 100_000)+`}`, 422, ""),
			{"register as XML", apitest.Request{Method: "POST", Path: reg, Body: `<user><email>x@example.com</email></user>`, Headers: map[string]string{"Content-Type": "application/xml"}}, 415, ""},
			{"register JSON sent as text/plain", apitest.Request{Method: "POST", Path: reg, Body: `{"email":"t@example.com","password":"` + apitest.Password + `","first_name":"A"}`, Headers: map[string]string{"Content-Type": "text/plain"}}, 415, ""},
			post("register existing email", reg, `{"email":"PLAIN@example.com","password":"`+apitest.Password+`","first_name":"A"}`, 400, ""),

			// Login and tokens.
			post("login invalid JSON", login, `{"email": "plain@example.com", "password": }`, 422, ""),
			post("login numbers", login, `{"email":1,"password":2}`, 422, "email"),
			post("login nulls", login, `{"email":null,"password":null}`, 422, "email"),
			post("login not an email", login, `{"email":"plain","password":"x"}`, 422, "email"),
			post("login 10k password", login, `{"email":"plain@example.com","password":"`+long+`"}`, 422, "password"),
			post("login string body", login, `"plain@example.com"`, 422, ""),
			post("login empty body", login, ``, 422, ""),
			post("login NUL in email", login, `{"email":"plain\u0000@example.com","password":"x"}`, 0, ""),
			{"form login NUL in username", apitest.Request{Method: "POST", Path: "/api/v1/auth/login/oauth", Body: "username=plain%00%40example.com&password=x", Headers: form}, 0, ""},
			post("login wrong password", login, `{"email":"plain@example.com","password":"Wr0ng!Password"}`, 401, ""),
			{"form login empty", apitest.Request{Method: "POST", Path: "/api/v1/auth/login/oauth", Body: "", Headers: form}, 422, ""},
			{"form login bad grant", apitest.Request{Method: "POST", Path: "/api/v1/auth/login/oauth", Body: "username=plain%40example.com&password=x&grant_type=bogus", Headers: form}, 422, "grant_type"},
			{"form login as JSON", apitest.Request{Method: "POST", Path: "/api/v1/auth/login/oauth", Body: `{"username":"plain@example.com"}`}, 0, ""},
			post("refresh number", "/api/v1/auth/refresh", `{"refresh_token":123}`, 422, "refresh_token"),
			post("refresh null", "/api/v1/auth/refresh", `{"refresh_token":null}`, 422, "refresh_token"),
			post("refresh 10k", "/api/v1/auth/refresh", `{"refresh_token":"`+long+`"}`, 422, "refresh_token"),
			post("refresh garbage", "/api/v1/auth/refresh", `{"refresh_token":"😀.😀.😀"}`, 401, ""),
			{"logout short token", apitest.Request{Method: "POST", Path: "/api/v1/auth/logout", Token: u.Access, Body: `{"refresh_token":"short"}`}, 422, "refresh_token"},
			{"logout array", apitest.Request{Method: "POST", Path: "/api/v1/auth/logout", Token: u.Access, Body: `{"refresh_token":["a","b"]}`}, 422, "refresh_token"},
			post("reset request boolean", "/api/v1/auth/password-reset/request", `{"email":true}`, 422, "email"),
			post("reset request not an email", "/api/v1/auth/password-reset/request", `{"email":"😀"}`, 422, "email"),
			post("reset confirm nulls", "/api/v1/auth/password-reset/confirm", `{"token":null,"new_password":null}`, 422, ""),
			post("reset confirm short password", "/api/v1/auth/password-reset/confirm", `{"token":"abc","new_password":"short"}`, 422, "new_password"),
			post("reset confirm bad token", "/api/v1/auth/password-reset/confirm", `{"token":"abc","new_password":"`+apitest.Password+`x"}`, 400, ""),

			// Profile.
			patchMe("patch me number for string", `{"first_name":123}`, "first_name"),
			patchMe("patch me null first name", `{"first_name":null}`, "first_name"),
			patchMe("patch me string for boolean", `{"is_active":"maybe"}`, "is_active"),
			patchMe("patch me 10k first name", `{"first_name":"`+long+`"}`, "first_name"),
			patchMe("patch me emoji phone", `{"phone_number":"😀😀😀😀😀😀😀😀😀"}`, "phone_number"),
			patchMe("patch me emoji locale", `{"locale":"😀"}`, "locale"),
			patchMe("patch me preferences string", `{"preferences":"dark"}`, "preferences"),
			patchMe("patch me preferences array", `{"preferences":[1,2]}`, "preferences"),
			patchMe("patch me preferences number out of range", `{"preferences":{"a":1e999}}`, ""),
			{"patch me NUL in preferences", apitest.Request{Method: "PATCH", Path: "/api/v1/users/me", Token: u.Access, Body: `{"preferences":{"theme":"dark\u0000"}}`}, 0, ""},
			patchMe("patch me NUL in last name", `{"last_name":"x\u0000"}`, "last_name"),
			patchMe("patch me password", `{"password":"`+apitest.Password+`x"}`, "password"),
			patchMe("patch me superuser", `{"is_superuser":true}`, "is_superuser"),
			patchMe("patch me array", `[{"first_name":"A"}]`, ""),
			patchMe("patch me invalid JSON", `{"first_name":"A",}`, ""),
			patchMe("patch me empty body", ``, ""),
			{"password change numbers", apitest.Request{Method: "PATCH", Path: "/api/v1/users/me/password", Token: u.Access, Body: `{"current_password":1,"new_password":2}`}, 422, "current_password"},
			{"password change weak", apitest.Request{Method: "PATCH", Path: "/api/v1/users/me/password", Token: u.Access, Body: `{"current_password":"` + apitest.Password + `","new_password":"weak"}`}, 422, "new_password"},
			{"password change wrong current", apitest.Request{Method: "PATCH", Path: "/api/v1/users/me/password", Token: u.Access, Body: `{"current_password":"Wr0ng!Password","new_password":"` + apitest.Password + `x"}`}, 403, ""},

			// Path parameters.
			{"get user not a uuid", apitest.Request{Method: "GET", Path: "/api/v1/users/not-a-uuid", Token: su.Access}, 422, "user_id"},
			{"get user emoji", apitest.Request{Method: "GET", Path: "/api/v1/users/" + url.PathEscape("😀"), Token: su.Access}, 422, "user_id"},
			{"get user short uuid", apitest.Request{Method: "GET", Path: "/api/v1/users/123", Token: su.Access}, 422, "user_id"},
			{"patch user not a uuid", apitest.Request{Method: "PATCH", Path: "/api/v1/users/not-a-uuid", Token: su.Access, Body: `{"first_name":"A"}`}, 422, "user_id"},
			{"patch user string for boolean", apitest.Request{Method: "PATCH", Path: "/api/v1/users/" + u.UserID, Token: su.Access, Body: `{"is_active":"maybe"}`}, 422, "is_active"},
			{"patch user null first name", apitest.Request{Method: "PATCH", Path: "/api/v1/users/" + u.UserID, Token: su.Access, Body: `{"first_name":null}`}, 422, "first_name"},
			{"delete user not a uuid", apitest.Request{Method: "DELETE", Path: "/api/v1/users/not-a-uuid", Token: su.Access}, 422, "user_id"},
			{"delete user me", apitest.Request{Method: "DELETE", Path: "/api/v1/users/me", Token: su.Access}, 422, "user_id"},
			{"delete user unknown", apitest.Request{Method: "DELETE", Path: "/api/v1/users/00000000-0000-4000-8000-000000000000", Token: su.Access}, 404, ""},
			{"revoke session 123", apitest.Request{Method: "DELETE", Path: "/api/v1/sessions/123", Token: u.Access}, 422, "session_id"},
			{"revoke session not a uuid", apitest.Request{Method: "DELETE", Path: "/api/v1/sessions/not-a-uuid", Token: u.Access}, 422, "session_id"},
			{"revoke session unknown", apitest.Request{Method: "DELETE", Path: "/api/v1/sessions/00000000-0000-4000-8000-000000000000", Token: u.Access}, 404, ""},

			// Query parameters of the user list.
			listUsers("page=-1", "page"),
			// Malformed escapes are read literally (as the reference does), so a
			// declared parameter is refused instead of silently defaulted.
			listUsers("page=%zz", "page"),
			listUsers("limit=1%", "limit"),
			listUsers("page=1;2", "page"),
			listUsers("page=0", "page"),
			listUsers("page=99999999999999999999", "page"),
			listUsers("page=abc", "page"),
			listUsers("page=%F0%9F%98%80", "page"),
			listUsers("limit=0", "limit"),
			listUsers("limit=-5", "limit"),
			listUsers("limit=101", "limit"),
			listUsers("limit=1.5", "limit"),
			listUsers("sort_by=favourite_colour", "sort_by"),
			listUsers("sort_by=password_hash", "sort_by"),
			{"list users 10k sort_by", apitest.Request{Method: "GET", Path: "/api/v1/users?sort_by=" + long, Token: su.Access}, 422, "sort_by"},
			listUsers("sort_order=sideways", "sort_order"),
			listUsers("is_active=maybe", "is_active"),
			listUsers("is_superuser=2", "is_superuser"),

			// Authentication problems are 4xx too.
			{"bearer garbage", apitest.Request{Method: "GET", Path: "/api/v1/users/me", Token: "😀"}, 401, ""},
			{"regular user lists users", apitest.Request{Method: "GET", Path: "/api/v1/users?page=-1", Token: u.Access}, 403, ""},
		}

		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				before := state(t)
				r := e.Do(c.req)
				if r.Status < 400 || r.Status > 499 {
					t.Fatalf("%s %.80s: status %d, want 4xx; body %.500s", c.req.Method, c.req.Path, r.Status, r.Body)
				}
				if c.status != 0 && r.Status != c.status {
					t.Errorf("status %d, want %d; body %.500s", r.Status, c.status, r.Body)
				}
				_, msg, field := r.ErrorCode(t)
				if msg == "" {
					t.Errorf("empty error message: %s", r.Body)
				}
				if c.field != "" && field != c.field {
					t.Errorf("field %v, want %q; body %.500s", field, c.field, r.Body)
				}
				if after := state(t); after != before {
					t.Fatalf("a refused request changed the state:\nbefore %s\nafter  %s", before, after)
				}
			})
		}
		// Unparseable JSON says so, whichever decoding step noticed it.
		for _, body := range []string{`{"first_name":"A",}`, `{"first_name":"A"`, `{"preferences":{"a":1e999}}`} {
			r := e.Patch("/api/v1/users/me", u.Access, body)
			if msg, _ := expectEnvelope(t, r, http.StatusUnprocessableEntity, "VAL_001"); !strings.HasPrefix(msg, "Invalid JSON body: ") {
				t.Errorf("PATCH %s: message %q, want it to start with \"Invalid JSON body: \"", body, msg)
			}
		}
		expectHealthy(t, e)
		// Nothing above reached the recover middleware.
		if logs := e.Logs.String(); strings.Contains(logs, "panic serving request") {
			t.Errorf("a request panicked:\n%s", logs)
		}
	})
}
