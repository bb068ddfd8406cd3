package main

// Smoke tests of the real program: run is called as main calls it, with a
// map-backed environment, and the service is exercised over real HTTP on a
// loopback port. Bounded waits below only detect hangs; no test asserts how
// long anything takes.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/dbtest"
	"github.com/gatehouse-dev/gatehouse/internal/keys"
	"github.com/gatehouse-dev/gatehouse/internal/sqlstore"
)

const (
	smokeSecret   = "smoke-test-secret-key-0123456789abcdefgh" // 40 characters
	smokePassword = "Str0ng!Passw0rd"
	// hangBound is how long a step may take before the test calls it hung.
	hangBound = 30 * time.Second
)

// logBuffer collects what run writes, safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// jsonLines parses every non-empty line as a JSON object and fails the
// test on any other line (LOG_FORMAT=json).
func (b *logBuffer) jsonLines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(b.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		out = append(out, m)
	}
	return out
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// smokeEnv is the environment of a development instance on a fresh SQLite
// database in the test's temporary folder.
func smokeEnv(t *testing.T) map[string]string {
	t.Helper()
	return smokeEnvOn(t, sqlstore.SQLite)
}

// smokeEnvOn is smokeEnv on the given engine (PostgreSQL: a private
// database from dbtest).
func smokeEnvOn(t *testing.T, engine sqlstore.Engine) map[string]string {
	t.Helper()
	url := "sqlite://" + filepath.Join(t.TempDir(), "gh.db")
	if engine != sqlstore.SQLite {
		url = dbtest.URL(t, engine)
	}
	return map[string]string{
		"DATABASE_URL":      url,
		"SECRET_KEY":        smokeSecret,
		"BCRYPT_COST":       "4",
		"SCHEDULER_ENABLED": "false",
		"LOG_FORMAT":        "json",
	}
}

func getenvOf(env map[string]string) func(string) string {
	return func(k string) string { return env[k] }
}

// instance is one running `gatehouse serve`.
type instance struct {
	t      *testing.T
	base   string
	addr   string
	logs   *logBuffer
	client *http.Client
	cancel context.CancelFunc
	done   chan error
	// stopped is set once stop has collected run's result.
	stopped bool
}

// start runs the service with env (HTTP_ADDR is chosen here) and waits
// until GET /health answers 200.
func start(t *testing.T, env map[string]string) *instance {
	t.Helper()
	for attempt := 0; ; attempt++ {
		in, err := tryStart(t, env)
		if err == nil {
			return in
		}
		// Another process may take the port between freeAddr and Listen.
		if attempt < 3 && strings.Contains(err.Error(), "listen on") {
			continue
		}
		t.Fatalf("start: %v\nlogs:\n%s", err, in.logs.String())
	}
}

func tryStart(t *testing.T, env map[string]string) (*instance, error) {
	t.Helper()
	env = cloneEnv(env)
	env["HTTP_ADDR"] = freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{t: t, base: "http://" + env["HTTP_ADDR"], addr: env["HTTP_ADDR"], logs: &logBuffer{},
		client: &http.Client{Transport: &http.Transport{}}, cancel: cancel, done: make(chan error, 1)}
	var stdout logBuffer
	go func() { in.done <- run(ctx, []string{"gatehouse"}, getenvOf(env), &stdout, in.logs) }()
	deadline := time.Now().Add(hangBound)
	for {
		select {
		case err := <-in.done:
			cancel()
			if err == nil {
				err = errors.New("run returned nil before the service became healthy")
			}
			return in, err
		default:
		}
		if resp, err := in.client.Get(in.base + "/health"); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			cancel()
			<-in.done
			return in, errors.New("GET /health never answered 200")
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Cleanup(func() {
		if !in.stopped {
			in.cancel()
			select {
			case <-in.done:
			case <-time.After(hangBound):
				t.Errorf("run did not return after the test ended")
			}
		}
		in.client.CloseIdleConnections()
	})
	return in, nil
}

func cloneEnv(env map[string]string) map[string]string {
	out := make(map[string]string, len(env))
	for k, v := range env {
		out[k] = v
	}
	return out
}

// stop cancels run's context (what SIGINT/SIGTERM do in main) and requires
// run to return nil: a graceful shutdown.
func (in *instance) stop() {
	in.t.Helper()
	in.cancel()
	select {
	case err := <-in.done:
		in.stopped = true
		if err != nil {
			in.t.Fatalf("run returned %v after the context was cancelled, want nil (graceful shutdown)", err)
		}
	case <-time.After(hangBound):
		in.t.Fatalf("run did not return after the context was cancelled")
	}
}

// reply is one HTTP exchange.
type reply struct {
	status int
	body   map[string]any
	raw    string
}

func (in *instance) do(method, path, bearer string, body any) reply {
	in.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			in.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, in.base+path, rd)
	if err != nil {
		in.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := in.client.Do(req)
	if err != nil {
		in.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, raw: string(raw)}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

func (r reply) want(t *testing.T, status int, what string) reply {
	t.Helper()
	if r.status != status {
		t.Fatalf("%s: status %d, want %d; body %s", what, r.status, status, r.raw)
	}
	return r
}

func (r reply) str(t *testing.T, key string) string {
	t.Helper()
	s, ok := r.body[key].(string)
	if !ok || s == "" {
		t.Fatalf("response has no %q: %s", key, r.raw)
	}
	return s
}

type tokens struct{ access, refresh string }

func (in *instance) login(email, pw string) (tokens, reply) {
	in.t.Helper()
	r := in.do("POST", "/api/v1/auth/login", "", map[string]any{"email": email, "password": pw}).
		want(in.t, http.StatusOK, "login "+email)
	return tokens{access: r.str(in.t, "access_token"), refresh: r.str(in.t, "refresh_token")}, r
}

func (in *instance) register(email string) reply {
	in.t.Helper()
	return in.do("POST", "/api/v1/auth/register", "", map[string]any{
		"email": email, "password": smokePassword, "first_name": "Smoke", "last_name": "Test"}).
		want(in.t, http.StatusCreated, "register "+email)
}

func TestServeWalkthrough(t *testing.T) {
	for _, engine := range dbtest.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			walkthrough(t, smokeEnvOn(t, engine))
		})
	}
	// The contract also supports a private in-memory SQLite database.
	t.Run("sqlite-memory", func(t *testing.T) {
		t.Parallel()
		env := smokeEnv(t)
		env["DATABASE_URL"] = "sqlite://:memory:"
		walkthrough(t, env)
	})
}

func walkthrough(t *testing.T, env map[string]string) {
	in := start(t, env)

	reg := in.register("walk@example.com")
	if reg.body["email"] != "walk@example.com" || reg.body["is_superuser"] != false || reg.body["is_active"] != true {
		t.Fatalf("register response: %s", reg.raw)
	}
	if _, leaked := reg.body["password_hash"]; leaked {
		t.Fatalf("register response exposes the password hash: %s", reg.raw)
	}

	first, lr := in.login("walk@example.com", smokePassword)
	if lr.body["token_type"] != "bearer" || first.access == first.refresh {
		t.Fatalf("login response: %s", lr.raw)
	}
	me := in.do("GET", "/api/v1/users/me", first.access, nil).want(t, http.StatusOK, "users/me")
	if me.body["email"] != "walk@example.com" || me.body["id"] != reg.body["id"] {
		t.Fatalf("users/me = %s, want the registered user", me.raw)
	}

	rr := in.do("POST", "/api/v1/auth/refresh", "", map[string]any{"refresh_token": first.refresh}).
		want(t, http.StatusOK, "refresh")
	second := tokens{access: rr.str(t, "access_token"), refresh: rr.str(t, "refresh_token")}
	if second.refresh == first.refresh || second.access == first.access {
		t.Fatalf("refresh returned the same tokens")
	}
	in.do("POST", "/api/v1/auth/refresh", "", map[string]any{"refresh_token": first.refresh}).
		want(t, http.StatusUnauthorized, "refresh with the rotated-out token")
	in.do("GET", "/api/v1/users/me", second.access, nil).want(t, http.StatusOK, "users/me with the refreshed token")
	sr := in.do("GET", "/api/v1/sessions/me", second.access, nil).want(t, http.StatusOK, "sessions/me")
	sessions, _ := sr.body["sessions"].([]any)
	if len(sessions) != 1 {
		t.Fatalf("sessions/me after one login and one refresh: %s", sr.raw)
	}
	if s, _ := sessions[0].(map[string]any); s["is_current"] != true || s["ip_address"] != "127.0.0.1" {
		t.Errorf("session = %v, want the current session from 127.0.0.1", s)
	}

	in.do("POST", "/api/v1/auth/logout", second.access, map[string]any{"refresh_token": second.refresh}).
		want(t, http.StatusOK, "logout")
	in.do("GET", "/api/v1/users/me", second.access, nil).want(t, http.StatusUnauthorized, "access token after logout")
	in.do("GET", "/api/v1/users/me", first.access, nil).want(t, http.StatusUnauthorized, "older access token of the logged-out session")
	in.do("POST", "/api/v1/auth/refresh", "", map[string]any{"refresh_token": second.refresh}).
		want(t, http.StatusUnauthorized, "refresh token after logout")

	in.stop()

	// Logs: JSON, and never a password, a token or the secret key.
	lines := in.logs.jsonLines(t)
	if len(lines) == 0 {
		t.Fatal("nothing was logged")
	}
	logs := in.logs.String()
	for name, secret := range map[string]string{"the user's password": smokePassword, "SECRET_KEY": smokeSecret,
		"an access token": first.access, "a refresh token": first.refresh, "the refreshed access token": second.access,
		"the refreshed refresh token": second.refresh} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log contains %s", name)
		}
	}
}

// generatedPassword finds the log line announcing the generated first
// superuser and returns its password attribute ("" when there is none).
func generatedPassword(lines []map[string]any) (pw string, n int) {
	for _, l := range lines {
		if p, ok := l["password"].(string); ok {
			n++
			if l["email"] == "admin@example.com" {
				pw = p
			}
		}
	}
	return pw, n
}

func TestFirstRunAdminAndRestartWithGeneratedSecret(t *testing.T) {
	for _, engine := range dbtest.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			firstRunAndRestart(t, engine)
		})
	}
}

func firstRunAndRestart(t *testing.T, engine sqlstore.Engine) {
	env := smokeEnvOn(t, engine)
	delete(env, "SECRET_KEY") // the generated key must be kept in the database

	in := start(t, env)
	pw, n := generatedPassword(in.logs.jsonLines(t))
	if pw == "" || n != 1 {
		t.Fatalf("want exactly one log line with the generated admin@example.com password, found %d (password %q)\n%s", n, pw, in.logs.String())
	}
	if c := strings.Count(in.logs.String(), pw); c != 1 {
		t.Errorf("the generated password appears %d times in the log, want exactly once", c)
	}
	warned := false
	for _, l := range in.logs.jsonLines(t) {
		if msg, _ := l["msg"].(string); l["level"] == "WARN" && strings.Contains(msg, "SECRET_KEY") {
			warned = true
		}
	}
	if !warned {
		t.Error("no warning that SECRET_KEY is not set and a generated key is used")
	}
	admin, lr := in.login("admin@example.com", pw)
	if u, _ := lr.body["user"].(map[string]any); u["is_superuser"] != true {
		t.Fatalf("generated admin is not a superuser: %s", lr.raw)
	}
	in.register("before-restart@example.com")
	userTok, _ := in.login("before-restart@example.com", smokePassword)
	in.stop()

	// The key generated on first start is stored, and never logged.
	st, err := sqlstore.Open(context.Background(), config.DB{URL: env["DATABASE_URL"], PoolSize: 1, PoolRecycle: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	key, ok, err := st.Setting(context.Background(), "generated_secret_key")
	st.Close()
	if err != nil || !ok || len(key) < 32 {
		t.Fatalf("generated secret key in the database: %q ok=%v err=%v", key, ok, err)
	}
	if strings.Contains(in.logs.String(), key) {
		t.Error("the generated SECRET_KEY was written to the log")
	}

	again := start(t, env)
	if pw2, n2 := generatedPassword(again.logs.jsonLines(t)); n2 != 0 || pw2 != "" {
		t.Errorf("second start logged a password again (%d lines)", n2)
	}
	if strings.Contains(again.logs.String(), pw) {
		t.Error("second start printed the first start's password")
	}
	// Tokens issued before the restart still work.
	me := again.do("GET", "/api/v1/users/me", userTok.access, nil).want(t, http.StatusOK, "access token from before the restart")
	if me.body["email"] != "before-restart@example.com" {
		t.Fatalf("users/me = %s", me.raw)
	}
	again.do("GET", "/api/v1/users/me", admin.access, nil).want(t, http.StatusOK, "admin access token from before the restart")
	again.do("POST", "/api/v1/auth/refresh", "", map[string]any{"refresh_token": userTok.refresh}).
		want(t, http.StatusOK, "refresh token from before the restart")
	// The admin was not recreated: the first password still logs in.
	again.login("admin@example.com", pw)
	again.stop()
}

func TestRestartWithSameSecretKeepsTokens(t *testing.T) {
	t.Parallel()
	env := smokeEnv(t)
	in := start(t, env)
	in.register("keep@example.com")
	tok, _ := in.login("keep@example.com", smokePassword)
	in.stop()

	again := start(t, env)
	if _, n := generatedPassword(again.logs.jsonLines(t)); n != 0 {
		t.Errorf("second start logged a generated password")
	}
	again.do("GET", "/api/v1/users/me", tok.access, nil).want(t, http.StatusOK, "access token across a restart")
	again.stop()
}

// runOnce runs a command of the program with a bounded context and returns
// its outputs. A command that serves instead of finishing is cut off by the
// bound and reported.
func runOnce(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	env = cloneEnv(env)
	if _, ok := env["HTTP_ADDR"]; !ok {
		env["HTTP_ADDR"] = freeAddr(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), hangBound)
	defer cancel()
	var out, errb logBuffer
	err = run(ctx, append([]string{"gatehouse"}, args...), getenvOf(env), &out, &errb)
	if ctx.Err() != nil {
		t.Fatalf("gatehouse %v did not finish on its own (it served until cancelled); err=%v\n%s", args, err, errb.String())
	}
	return out.String(), errb.String(), err
}

func TestVersionAndHelp(t *testing.T) {
	t.Parallel()
	out, _, err := runOnce(t, map[string]string{}, "version")
	if err != nil || !strings.HasPrefix(out, "gatehouse ") {
		t.Fatalf("version: %q, %v", out, err)
	}
	out, _, err = runOnce(t, map[string]string{"VERSION": "9.8.7"}, "version")
	if err != nil || !strings.HasPrefix(out, "gatehouse 9.8.7") {
		t.Fatalf("version with VERSION set: %q, %v", out, err)
	}
	out, _, err = runOnce(t, map[string]string{}, "help")
	if err != nil || !strings.Contains(out, "createsuperuser") || !strings.Contains(out, "migrate") {
		t.Fatalf("help: %q, %v", out, err)
	}
	if _, _, err := runOnce(t, smokeEnv(t), "frobnicate"); err == nil || !strings.Contains(err.Error(), "frobnicate") {
		t.Fatalf("unknown command: %v, want an error naming it", err)
	}
}

func TestOpenAPICommand(t *testing.T) {
	t.Parallel()
	out, _, err := runOnce(t, smokeEnv(t), "openapi")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("openapi output is not JSON: %v\n%.300s", err, out)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf(`"openapi" = %q, want "3.1.0"`, doc.OpenAPI)
	}
	if _, ok := doc.Paths["/api/v1/auth/login"]["post"]; !ok {
		t.Errorf("no POST /api/v1/auth/login in the document's paths")
	}
}

var statusLine = regexp.MustCompile(`^(\d{5})\s+(applied|pending)\s+(\S+)`)

// migrationStates parses `migrate status` output into version -> state.
func migrationStates(t *testing.T, out string) map[string]string {
	t.Helper()
	states := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		m := statusLine.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			t.Fatalf("unexpected status line %q in:\n%s", line, out)
		}
		states[m[1]] = m[2]
	}
	return states
}

// `gatehouse keys rotate`, run as an operator runs it (a process of its
// own on the deployment's database): it prints one new key per algorithm
// and exits 0; the database then holds those as the active keys and the
// previous ones retired but kept; a server started afterwards signs with
// the new keys and still publishes the old ones, so tokens they signed keep
// verifying. A wrong usage exits 1 and changes nothing.
func TestKeysRotateCommand(t *testing.T) {
	for _, engine := range dbtest.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			env := providerEnv(t, engine)
			in := start(t, env)
			pv := newProvider(t, in.base)
			old := pv.flow(in.base)
			before := jwksKids(t, in.base)
			in.stop()
			if len(before) != 2 {
				t.Fatalf("JWKS before the rotation: %v, want one ES256 and one RS256 key", before)
			}

			stdout, stderr, code := runProcess(t, env, "keys", "rotate")
			if code != 0 {
				t.Fatalf("keys rotate: exit code %d, want 0\n%s%s", code, stdout, stderr)
			}
			created := rotatedKids(t, stdout)
			stored := storedKeys(t, env)
			if len(stored) != 4 {
				t.Fatalf("%d signing keys in the database after one rotation, want 4 (two new, two retired)", len(stored))
			}
			for kid, k := range stored {
				switch {
				case created[k.Algorithm] == kid && k.RetiredAt != nil:
					t.Errorf("the new %s key %s is retired", k.Algorithm, kid)
				case created[k.Algorithm] != kid && before[kid] == "":
					t.Errorf("the database holds a %s key %s that is neither new nor published before", k.Algorithm, kid)
				case created[k.Algorithm] != kid && k.RetiredAt == nil:
					t.Errorf("the old %s key %s is still active after the rotation", k.Algorithm, kid)
				}
			}

			again := start(t, env)
			after := jwksKids(t, again.base)
			for kid, alg := range before {
				if after[kid] != alg {
					t.Errorf("the old %s key %s is no longer published after the rotation: %v", alg, kid, after)
				}
			}
			for alg, kid := range created {
				if after[kid] != alg {
					t.Errorf("the new %s key %s is not published: %v", alg, kid, after)
				}
			}
			pv.bases = []string{again.base}
			g := pv.flow(again.base)
			if got, got2 := kidOf(t, g.access), kidOf(t, g.id); got != created[keys.ES256] || got2 != created[keys.RS256] {
				t.Errorf("after the rotation the server signs with %s and %s, want the new %v", got, got2, created)
			}
			pv.verifiesEverywhere(old, "a token signed before the rotation")
			pv.verifiesEverywhere(g, "a token signed after the rotation")
			again.stop()

			for _, args := range [][]string{{"keys"}, {"keys", "spin"}, {"keys", "rotate", "now"}} {
				stdout, stderr, code := runProcess(t, env, args...)
				if code != 1 || stdout != "" || !strings.Contains(stderr, "usage: gatehouse keys rotate") {
					t.Errorf("gatehouse %v: exit code %d, stdout %q, stderr %q; want 1 and the usage on stderr", args, code, stdout, stderr)
				}
			}
			if n := len(storedKeys(t, env)); n != 4 {
				t.Errorf("%d signing keys after the wrong usages, want the 4 still", n)
			}
		})
	}
}

func TestInvalidConfigurationIsNamed(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		set   map[string]string
		unset []string
		want  []string // variable names the error must mention
	}{
		{"not a number", map[string]string{"ACCESS_TOKEN_EXPIRE_MINUTES": "abc"}, nil, []string{"ACCESS_TOKEN_EXPIRE_MINUTES"}},
		{"out of range", map[string]string{"BCRYPT_COST": "3"}, nil, []string{"BCRYPT_COST"}},
		{"bad enum", map[string]string{"LOG_FORMAT": "xml"}, nil, []string{"LOG_FORMAT"}},
		{"short secret", map[string]string{"SECRET_KEY": "short"}, nil, []string{"SECRET_KEY"}},
		{"all problems at once", map[string]string{"ACCESS_TOKEN_EXPIRE_MINUTES": "abc", "SMTP_TLS": "maybe"}, nil,
			[]string{"ACCESS_TOKEN_EXPIRE_MINUTES", "SMTP_TLS"}},
		{"production without first superuser", map[string]string{"ENVIRONMENT": "production"}, nil,
			[]string{"FIRST_SUPERUSER_EMAIL", "FIRST_SUPERUSER_PASSWORD"}},
		{"production without secret key", map[string]string{"ENVIRONMENT": "production",
			"FIRST_SUPERUSER_EMAIL": "root@example.com", "FIRST_SUPERUSER_PASSWORD": "Sup3r!SecretPass"},
			[]string{"SECRET_KEY"}, []string{"SECRET_KEY"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := smokeEnv(t)
			for k, v := range tc.set {
				env[k] = v
			}
			for _, k := range tc.unset {
				delete(env, k)
			}
			_, _, err := runOnce(t, env, "serve")
			if err == nil {
				t.Fatal("run started with an invalid configuration")
			}
			for _, name := range tc.want {
				if !strings.Contains(err.Error(), name) {
					t.Errorf("error %q does not name %s", err, name)
				}
			}
		})
	}
}

// Cancelling the context while a client holds an idle keep-alive
// connection still lets run return.
func TestShutdownWithKeepAliveConnection(t *testing.T) {
	t.Parallel()
	in := start(t, smokeEnv(t))
	reused := false
	for range 2 {
		trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) { reused = info.Reused }}
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", in.base+"/health", nil)
		resp, err := in.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if !reused {
		t.Fatal("the client did not keep its connection alive; the test would prove nothing")
	}
	// The idle connection is still open in in.client's pool here.
	in.stop()
	if _, err := net.DialTimeout("tcp", in.addr, time.Second); err == nil {
		t.Error("the service still accepts connections after run returned")
	}
}

// With the scheduler running, cancelling the context stops it and run
// returns.
func TestShutdownWithSchedulerEnabled(t *testing.T) {
	t.Parallel()
	env := smokeEnv(t)
	env["SCHEDULER_ENABLED"] = "true"
	in := start(t, env)
	in.stop()
}

// A request in flight when shutdown starts is finished before run returns.
// The request is written by hand on its own connection with "Expect:
// 100-continue": the server answers "100 Continue" only once the handler
// reads the body, so the test knows the request is in flight before it
// cancels, and sends the body only after the listener has closed.
func TestShutdownFinishesInFlightRequest(t *testing.T) {
	t.Parallel()
	in := start(t, smokeEnv(t))
	body, _ := json.Marshal(map[string]any{"email": "inflight@example.com", "password": smokePassword, "first_name": "In", "last_name": "Flight"})
	conn, err := net.DialTimeout("tcp", in.addr, hangBound)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * hangBound))
	fmt.Fprintf(conn, "POST /api/v1/auth/register HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"+
		"Content-Length: %d\r\nExpect: 100-continue\r\n\r\n", in.addr, len(body))
	br := bufio.NewReader(conn)
	cont, err := http.ReadResponse(br, nil)
	if err != nil || cont.StatusCode != http.StatusContinue {
		t.Fatalf("want 100 Continue once the handler reads the body, got %v %v", cont, err)
	}

	in.cancel() // what SIGTERM does in main
	// Wait until the listener is closed: shutdown has begun.
	for i := 0; ; i++ {
		c, err := net.DialTimeout("tcp", in.addr, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if i > 3000 {
			t.Fatal("the listener never closed after the context was cancelled")
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case err := <-in.done:
		in.stopped = true
		t.Fatalf("run returned (%v) while a request was still in flight", err)
	default:
	}
	if _, err := conn.Write(body); err != nil {
		t.Fatalf("sending the body of the in-flight request: %v", err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("in-flight request got no response: %v\n%s", err, in.logs.String())
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || !strings.Contains(string(got), "inflight@example.com") {
		t.Fatalf("in-flight request during shutdown: %d %s", resp.StatusCode, got)
	}
	select {
	case err := <-in.done:
		in.stopped = true
		if err != nil {
			t.Fatalf("run returned %v, want nil", err)
		}
	case <-time.After(hangBound):
		t.Fatal("run did not return after the in-flight request finished")
	}
	if !strings.Contains(in.logs.String(), "shutdown complete") {
		t.Errorf("no shutdown-complete log line:\n%s", in.logs.String())
	}
}

// A development start with nothing configured but a private database (in a
// folder that does not exist yet) works: no SECRET_KEY, text logs.
func TestServeWithMinimalEnvironment(t *testing.T) {
	t.Parallel()
	env := map[string]string{"DATABASE_URL": "sqlite://" + filepath.Join(t.TempDir(), "sub", "gh.db"), "BCRYPT_COST": "4",
		"SCHEDULER_ENABLED": "false"}
	in := start(t, env)
	r := in.do("GET", "/health", "", nil).want(t, http.StatusOK, "health")
	if r.body["status"] != "healthy" {
		t.Fatalf("health = %s", r.raw)
	}
	in.stop()
}

// LOG_FORMAT=json writes one line per request with the request id, method,
// route pattern (not the raw path), status, duration and client address.
func TestAccessLogLines(t *testing.T) {
	t.Parallel()
	in := start(t, smokeEnv(t))
	in.do("POST", "/api/v1/auth/login", "", map[string]any{"email": "nobody@example.com", "password": "Wr0ng!Password"}).
		want(t, http.StatusUnauthorized, "login with unknown account")
	const id = "0190a5d4-0000-7000-8000-000000000001"
	in.do("GET", "/api/v1/users/"+id+"?token=secret-in-query", "", nil).want(t, http.StatusUnauthorized, "users/{id} without a token")
	in.stop()

	var login, user map[string]any
	for _, l := range in.logs.jsonLines(t) {
		if l["msg"] != "request" {
			continue
		}
		switch l["route"] {
		case "/api/v1/auth/login":
			login = l
		case "/api/v1/users/{user_id}":
			user = l
		}
	}
	if login == nil || user == nil {
		t.Fatalf("missing request lines (login %v, users/{user_id} %v) in:\n%s", login, user, in.logs.String())
	}
	if login["method"] != "POST" || login["status"] != float64(http.StatusUnauthorized) {
		t.Errorf("login request line: %v", login)
	}
	for _, l := range []map[string]any{login, user} {
		if s, _ := l["request_id"].(string); s == "" {
			t.Errorf("request line without request_id: %v", l)
		}
		if _, ok := l["duration"].(float64); !ok {
			t.Errorf("request line without duration: %v", l)
		}
		if l["client_ip"] != "127.0.0.1" {
			t.Errorf("request line client_ip = %q, want the client's address 127.0.0.1: %v", l["client_ip"], l)
		}
	}
	if logs := in.logs.String(); strings.Contains(logs, id) || strings.Contains(logs, "secret-in-query") {
		t.Errorf("the log contains the raw path or query of a request")
	}
}

// main reads a .env file from the working directory; the process
// environment wins over it. (Not parallel: it changes the working directory
// and the environment.)
func TestDotEnvFile(t *testing.T) {
	dir := t.TempDir()
	content := "# settings\nexport GATEHOUSE_DOTENV_A=from-file\nGATEHOUSE_DOTENV_B='quoted value'\nGATEHOUSE_DOTENV_C=file\n"
	if err := os.WriteFile(filepath.Join(dir, ".env"), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	t.Setenv("GATEHOUSE_DOTENV_C", "process")
	getenv := getenvWithDotEnv()
	for k, want := range map[string]string{"GATEHOUSE_DOTENV_A": "from-file", "GATEHOUSE_DOTENV_B": "quoted value",
		"GATEHOUSE_DOTENV_C": "process", "GATEHOUSE_DOTENV_MISSING": ""} {
		if got := getenv(k); got != want {
			t.Errorf("getenv(%s) = %q, want %q", k, got, want)
		}
	}
}
