package httpapi

// Panic recovery inside the real middleware chain: a handler that panics is
// mounted on a server built by newServer (the constructor New uses), so the
// request passes through exactly the chain production requests do. Nothing
// in production code knows about these test routes.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/config"
)

// panicValue is what the test handlers panic with; it must reach the log
// and never the client.
const panicValue = "boom: secret internal detail 7f3a"

// panicLog is a concurrency-safe buffer for the server's JSON log.
type panicLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *panicLog) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines returns every log record whose msg is msg.
func (b *panicLog) lines(t *testing.T, msg string) []map[string]any {
	t.Helper()
	b.mu.Lock()
	text := b.buf.String()
	b.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", sc.Text())
		}
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// panicServer builds the real server (development or production settings)
// with a JSON logger into the returned buffer, and mounts two panicking
// handlers: a plain route on the router, and an /api/v1 operation
// registered the way every API operation is.
func panicServer(t *testing.T, environment string) (http.Handler, *panicLog) {
	t.Helper()
	env := map[string]string{
		"SECRET_KEY":   "panic-test-secret-key-0123456789abcdef",
		"DATABASE_URL": "sqlite://:memory:",
		"ENVIRONMENT":  environment,
	}
	if environment == "production" {
		env["FIRST_SUPERUSER_EMAIL"] = "admin@example.com"
		env["FIRST_SUPERUSER_PASSWORD"] = "Pr0duction!Passw0rd"
	}
	cfg, _, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	logs := &panicLog{}
	s := newServer(Deps{Logger: slog.New(slog.NewJSONHandler(logs, nil)), Config: cfg})
	s.router.Get("/test/panic", func(http.ResponseWriter, *http.Request) { panic(panicValue) })
	s.router.Get("/test/abort", func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) })
	register(s, endpoint{op: op("GET", "/api/v1/test/panic", "testPanic", "Panics", "Test", http.StatusOK, "")},
		func(context.Context, *struct{}) (*struct{}, error) { panic(errors.New(panicValue)) })
	return s.router, logs
}

func TestPanicRecoveredInMiddlewareChain(t *testing.T) {
	for _, tc := range []struct {
		name, environment, path string
		hsts                    bool
	}{
		{"router handler", "development", "/test/panic", false},
		{"api operation", "development", "/api/v1/test/panic", false},
		{"api operation in production", "production", "/api/v1/test/panic", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h, logs := panicServer(t, tc.environment)
			srv := httptest.NewServer(h)
			defer srv.Close()

			resp, err := http.Get(srv.URL + tc.path)
			if err != nil {
				t.Fatalf("GET %s: %v (the panic was not recovered)", tc.path, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()

			// 500 in the envelope, SYS_001, a generic message.
			if resp.StatusCode != http.StatusInternalServerError {
				t.Fatalf("status %d, want 500; body %s", resp.StatusCode, body)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
			var env struct {
				Success *bool `json:"success"`
				Errors  []struct {
					Code    string  `json:"code"`
					Message string  `json:"message"`
					Field   *string `json:"field"`
				} `json:"errors"`
			}
			if err := json.Unmarshal(body, &env); err != nil || env.Success == nil || *env.Success || len(env.Errors) != 1 {
				t.Fatalf("body is not the error envelope: %s", body)
			}
			if e := env.Errors[0]; e.Code != "SYS_001" || e.Message != "An internal error occurred. Please try again later." || e.Field != nil {
				t.Errorf("error item %+v, want SYS_001 with the generic message and no field", e)
			}
			if bytes.Contains(body, []byte("boom")) || bytes.Contains(body, []byte("7f3a")) || bytes.Contains(body, []byte("goroutine")) {
				t.Errorf("the panic leaked to the client: %s", body)
			}

			// The security headers of reference §7.1 (a fix: the reference's
			// unhandled-exception 500s have none).
			want := map[string]string{
				"X-Frame-Options":         "DENY",
				"X-Content-Type-Options":  "nosniff",
				"X-XSS-Protection":        "1; mode=block",
				"Permissions-Policy":      "geolocation=(), microphone=(), camera=()",
				"Referrer-Policy":         "strict-origin-when-cross-origin",
				"Content-Security-Policy": cspRelaxed,
			}
			if tc.hsts {
				want["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
			}
			for k, v := range want {
				if got := resp.Header.Values(k); len(got) != 1 || got[0] != v {
					t.Errorf("%s = %q, want exactly %q", k, got, v)
				}
			}
			if !tc.hsts && resp.Header.Get("Strict-Transport-Security") != "" {
				t.Error("Strict-Transport-Security outside production")
			}

			// The request id is echoed, and ties the log lines to the response.
			rid := resp.Header.Get("X-Request-ID")
			if !validRequestID(rid) {
				t.Fatalf("X-Request-ID = %q, want a request id", rid)
			}

			// One error line with the panic value, the request id and a stack
			// trace that shows where the panic happened.
			panics := logs.lines(t, "panic serving request")
			if len(panics) != 1 {
				t.Fatalf("%d panic log lines, want 1", len(panics))
			}
			p := panics[0]
			if p["level"] != "ERROR" {
				t.Errorf("panic logged at level %v, want ERROR", p["level"])
			}
			if v, _ := p["panic"].(string); v != panicValue {
				t.Errorf("logged panic value %q, want %q", p["panic"], panicValue)
			}
			if p["request_id"] != rid {
				t.Errorf("logged request_id %v, want the response's %q", p["request_id"], rid)
			}
			stack, _ := p["stack"].(string)
			if !strings.Contains(stack, "goroutine ") || !strings.Contains(stack, "panicServer.func") ||
				!strings.Contains(stack, "panic_internal_test.go") {
				t.Errorf("logged stack does not lead to the panicking handler:\n%s", stack)
			}

			// The access log records the request as the 500 it was.
			var found bool
			for _, l := range logs.lines(t, "request") {
				if l["request_id"] == rid {
					found = true
					if l["status"] != float64(http.StatusInternalServerError) {
						t.Errorf("access log status %v, want 500", l["status"])
					}
				}
			}
			if !found {
				t.Error("no access log line for the panicking request")
			}

			// The server keeps serving.
			resp, err = http.Get(srv.URL + "/health/live")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("after the panic, /health/live answered %d", resp.StatusCode)
			}
		})
	}
}

// http.ErrAbortHandler is net/http's way to abort a response on purpose;
// recovery must let it through instead of answering a 500 envelope.
func TestPanicAbortHandlerIsNotSwallowed(t *testing.T) {
	t.Parallel()
	h, logs := panicServer(t, "development")
	rec := httptest.NewRecorder()
	var got any
	func() {
		defer func() { got = recover() }()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/test/abort", nil))
	}()
	if got != http.ErrAbortHandler {
		t.Fatalf("recovered %v, want http.ErrAbortHandler to propagate", got)
	}
	if rec.Code == http.StatusInternalServerError || rec.Body.Len() != 0 {
		t.Errorf("an aborted handler got a response: %d %s", rec.Code, rec.Body)
	}
	if n := len(logs.lines(t, "panic serving request")); n != 0 {
		t.Errorf("an abort was logged as a panic (%d lines)", n)
	}
}
