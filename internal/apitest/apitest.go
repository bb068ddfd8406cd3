// Package apitest starts the whole service for end-to-end tests: the real
// wiring (app.New) over a private database on the chosen engine, a real SMTP
// server on loopback, and an httptest server. Helpers keep test tables short.
package apitest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/app"
	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/dbtest"
	"github.com/gatehouse-dev/gatehouse/internal/mailtest"
	"github.com/gatehouse-dev/gatehouse/internal/ratelimit"
	"github.com/gatehouse-dev/gatehouse/internal/sqlstore"
)

// Secret is the SECRET_KEY of test servers (tests forge tokens with it).
const Secret = "test-secret-key-0123456789abcdef-0123456789"

// Password is a password that satisfies the password rule.
const Password = "Str0ng!Passw0rd"

// Env is one running service.
type Env struct {
	T      testing.TB
	Engine sqlstore.Engine
	App    *app.App
	Server *httptest.Server
	Mail   *mailtest.Server
	Config config.Config
	Logs   *syncBuffer
}

// Option adjusts the environment variables of the service.
type Option func(env map[string]string)

// WithEnv sets one environment variable.
func WithEnv(k, v string) Option { return func(m map[string]string) { m[k] = v } }

// SameDatabase makes the service use other's database instead of a fresh
// one: several instances of one deployment (other must be on the same
// engine, and the first to start: its database lives as long as its test).
func SameDatabase(other *Env) Option { return WithEnv("DATABASE_URL", other.Config.DB.URL) }

// New starts a service on engine, with a database of its own unless an
// option names one (SameDatabase).
func New(t testing.TB, engine sqlstore.Engine, opts ...Option) *Env {
	t.Helper()
	smtp := mailtest.Start(t)
	vars := map[string]string{
		"SECRET_KEY":         Secret,
		"BCRYPT_COST":        "4",
		"RATE_LIMIT_ENABLED": "false",
		"SMTP_HOST":          smtp.Host,
		"SMTP_PORT":          strconv.Itoa(smtp.Port),
		"SMTP_TLS":           "none",
		"SMTP_FROM":          "Gatehouse <no-reply@gatehouse.dev>",
		"FRONTEND_URL":       "https://app.example.com",
		"SCHEDULER_ENABLED":  "false",
		"LOG_LEVEL":          "debug",
	}
	for _, o := range opts {
		o(vars)
	}
	if vars["DATABASE_URL"] == "" {
		vars["DATABASE_URL"] = dbtest.URL(t, engine)
	}
	cfg, _, err := config.Load(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	st, err := sqlstore.Open(ctx, cfg.DB)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	a, err := app.New(ctx, cfg, logger, st)
	if err != nil {
		t.Fatal(err)
	}
	done, patsDone := make(chan struct{}), make(chan struct{})
	go func() { a.Mail.Run(ctx, 1, 5e9); close(done) }()
	go func() { a.PATs.Run(ctx); close(patsDone) }()
	srv := httptest.NewServer(a.Handler)
	t.Cleanup(func() {
		srv.Close()
		cancel()
		<-done
		<-patsDone
		a.Close()
		st.Close()
	})
	return &Env{T: t, Engine: engine, App: a, Server: srv, Mail: smtp, Config: cfg, Logs: logs}
}

// Each runs fn once per engine, each with its own service.
func Each(t *testing.T, fn func(t *testing.T, e *Env), opts ...Option) {
	for _, engine := range dbtest.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			fn(t, New(t, engine, opts...))
		})
	}
}

// Response is a finished HTTP exchange.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into a map.
func (r Response) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v\n%s", err, r.Body)
	}
	return m
}

// Decode decodes the body into v.
func (r Response) Decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode body: %v\n%s", err, r.Body)
	}
}

// ErrorCode returns the first envelope error's code, message and field.
func (r Response) ErrorCode(t testing.TB) (code, message string, field any) {
	t.Helper()
	var env struct {
		Success *bool `json:"success"`
		Errors  []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Field   any    `json:"field"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(r.Body, &env); err != nil || env.Success == nil || *env.Success || len(env.Errors) == 0 {
		t.Fatalf("status %d: body is not the error envelope: %s", r.Status, r.Body)
	}
	return env.Errors[0].Code, env.Errors[0].Message, env.Errors[0].Field
}

// Expect checks the status and, when code is not empty, the envelope code.
func (r Response) Expect(t testing.TB, status int, code string) Response {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d; body: %s", r.Status, status, r.Body)
	}
	if code != "" {
		if got, msg, _ := r.ErrorCode(t); got != code {
			t.Fatalf("error code %s (%s), want %s", got, msg, code)
		}
	}
	return r
}

// Request describes one call.
type Request struct {
	Method  string
	Path    string
	Token   string
	Body    any // marshalled to JSON unless it is a string or []byte
	Headers map[string]string
}

// Do performs req against the service.
func (e *Env) Do(req Request) Response {
	e.T.Helper()
	var body io.Reader
	ctype := "application/json"
	switch b := req.Body.(type) {
	case nil:
	case string:
		body = strings.NewReader(b)
	case []byte:
		body = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.T.Fatal(err)
		}
		body = bytes.NewReader(j)
	}
	r, err := http.NewRequest(req.Method, e.Server.URL+req.Path, body)
	if err != nil {
		e.T.Fatal(err)
	}
	if body != nil {
		r.Header.Set("Content-Type", ctype)
	}
	if req.Token != "" {
		r.Header.Set("Authorization", "Bearer "+req.Token)
	}
	for k, v := range req.Headers {
		r.Header.Set(k, v)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(r)
	if err != nil {
		e.T.Fatalf("%s %s: %v", req.Method, req.Path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// Get, Post, Patch, Put and Delete are shorthands for Do.
func (e *Env) Get(path, token string) Response {
	e.T.Helper()
	return e.Do(Request{Method: "GET", Path: path, Token: token})
}

// Post sends body as JSON.
func (e *Env) Post(path, token string, body any) Response {
	e.T.Helper()
	return e.Do(Request{Method: "POST", Path: path, Token: token, Body: body})
}

// Patch sends body as JSON.
func (e *Env) Patch(path, token string, body any) Response {
	e.T.Helper()
	return e.Do(Request{Method: "PATCH", Path: path, Token: token, Body: body})
}

// Delete sends a DELETE.
func (e *Env) Delete(path, token string) Response {
	e.T.Helper()
	return e.Do(Request{Method: "DELETE", Path: path, Token: token})
}

// Tokens is a login result.
type Tokens struct {
	Access, Refresh, UserID string
}

// Register creates an account with Password and returns its id.
func (e *Env) Register(email string) string {
	e.T.Helper()
	r := e.Post("/api/v1/auth/register", "", map[string]any{"email": email, "password": Password, "first_name": "Test", "last_name": "User"})
	r.Expect(e.T, http.StatusCreated, "")
	return r.JSON(e.T)["id"].(string)
}

// Login logs in and returns the tokens.
func (e *Env) Login(email, password string) Tokens {
	e.T.Helper()
	r := e.Post("/api/v1/auth/login", "", map[string]any{"email": email, "password": password})
	r.Expect(e.T, http.StatusOK, "")
	m := r.JSON(e.T)
	return Tokens{Access: m["access_token"].(string), Refresh: m["refresh_token"].(string), UserID: m["user"].(map[string]any)["id"].(string)}
}

// User registers and logs in a regular user.
func (e *Env) User(email string) Tokens {
	e.T.Helper()
	e.Register(email)
	return e.Login(email, Password)
}

// Superuser creates a superuser directly and logs in.
func (e *Env) Superuser(email string) Tokens {
	e.T.Helper()
	if _, created, err := e.App.Users.EnsureSuperuser(context.Background(), email, Password); err != nil || !created {
		e.T.Fatalf("create superuser: created=%v err=%v", created, err)
	}
	return e.Login(email, Password)
}

// Exec runs SQL directly against the service's database (test setup).
func (e *Env) Exec(query string, args ...any) {
	e.T.Helper()
	if _, err := e.App.Store.DB().ExecContext(context.Background(), query, args...); err != nil {
		e.T.Fatalf("exec %q: %v", query, err)
	}
}

// Count runs a COUNT query.
func (e *Env) Count(query string, args ...any) int {
	e.T.Helper()
	var n int
	if err := e.App.Store.DB().QueryRowContext(context.Background(), query, args...).Scan(&n); err != nil {
		e.T.Fatalf("count %q: %v", query, err)
	}
	return n
}

// Snapshot returns row counts of every table, to assert that a failed
// request changed nothing.
func (e *Env) Snapshot() string {
	e.T.Helper()
	var parts []string
	for _, table := range []string{"users", "user_sessions", "password_reset_tokens", "organizations", "user_organizations"} {
		parts = append(parts, fmt.Sprintf("%s=%d", table, e.Count("SELECT COUNT(*) FROM "+table)))
	}
	activeSessions := e.Count("SELECT COUNT(*) FROM user_sessions WHERE is_active = TRUE")
	parts = append(parts, fmt.Sprintf("active_sessions=%d", activeSessions))
	return strings.Join(parts, " ")
}

// Rows returns the whole contents of table (every column of every row,
// ordered by id) as text, one line per row, to assert that a failed request
// changed nothing in it, not even a timestamp. table must have an id column.
func (e *Env) Rows(table string) string {
	e.T.Helper()
	rows, err := e.App.Store.DB().QueryContext(context.Background(), "SELECT * FROM "+table+" ORDER BY id")
	if err != nil {
		e.T.Fatalf("rows of %s: %v", table, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		e.T.Fatalf("rows of %s: %v", table, err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s:", table)
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			e.T.Fatalf("rows of %s: %v", table, err)
		}
		b.WriteString("\n ")
		for i, v := range vals {
			switch x := v.(type) {
			case nil:
				v = "NULL"
			case []byte:
				v = fmt.Sprintf("%q", x)
			case time.Time:
				v = x.UTC().Format(time.RFC3339Nano)
			}
			fmt.Fprintf(&b, " %s=%v", cols[i], v)
		}
	}
	if err := rows.Err(); err != nil {
		e.T.Fatalf("rows of %s: %v", table, err)
	}
	return b.String()
}

// syncBuffer is a log buffer safe for concurrent writes and reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything logged so far.
func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// FreshWindow waits, when less than budget is left of the current rate-limit
// window of any of the given lengths, until that window has ended, so that
// whatever the test counts within budget from now falls into one window of
// each length. Call it right before a counted burst (after slow setup such
// as registrations), with a budget well above what the burst takes on a
// loaded machine under -race; it sleeps at most about budget.
//
// The limits count in fixed windows aligned to the clock (the per-IP limits
// per minute, the login throttle per LOGIN_THROTTLE_WINDOW_MINUTES): a test
// that expects the request after N to be refused fails whenever its N
// requests straddle the end of a window, where the count starts again.
// Where the windows end is asked of a ratelimit counter, so this agrees with
// the service's own arithmetic; the clock stays the real one.
func FreshWindow(t testing.TB, budget time.Duration, windows ...time.Duration) {
	t.Helper()
	if len(windows) == 0 {
		t.Fatal("FreshWindow: no window given")
	}
	for _, w := range windows {
		if budget <= 0 || budget >= w {
			t.Fatalf("FreshWindow: budget %v must be positive and shorter than the window %v", budget, w)
		}
	}
	probe := ratelimit.NewMemory()
	// A sleep ends just past the latest end among the short windows, where
	// each window dividing it starts afresh too; the check is repeated all
	// the same (with the service's windows, a minute and whole minutes, the
	// second check passes).
	for {
		now := time.Now()
		var wait, of time.Duration
		for _, w := range windows {
			_, end, _ := probe.Count(context.Background(), "", w)
			if left := end.Sub(now); left < budget && left > wait {
				wait, of = left, w
			}
		}
		if wait <= 0 {
			return
		}
		t.Logf("FreshWindow: %v left of the current %v window, less than the budget of %v: waiting for the next one",
			wait.Round(time.Millisecond), of, budget)
		time.Sleep(wait + 20*time.Millisecond)
	}
}
