package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/apitest"
	"github.com/gatehouse-dev/gatehouse/internal/dbtest"
	"github.com/gatehouse-dev/gatehouse/internal/redistest"
	"github.com/gatehouse-dev/gatehouse/internal/sqlstore"
)

// Several instances as one service (issue 8): servers in this process on
// loopback, sharing one real PostgreSQL database and, for the rate limits,
// one real Redis. PostgreSQL is what a cluster runs on, so these tests run
// on it only: skipped without TEST_DATABASE_URL, failed when it is set and
// unreachable; the Redis ones likewise with TEST_REDIS_URL.

// needPostgres skips the test without TEST_DATABASE_URL (a set but
// unreachable one fails when the cluster starts).
func needPostgres(t *testing.T) {
	t.Helper()
	if os.Getenv(dbtest.EnvPostgres) == "" {
		t.Skipf("%s is not set: a cluster needs PostgreSQL", dbtest.EnvPostgres)
	}
}

// startCluster starts n instances of one deployment on one new PostgreSQL
// database.
func startCluster(t *testing.T, n int, opts ...apitest.Option) []*apitest.Env {
	t.Helper()
	needPostgres(t)
	first := apitest.New(t, sqlstore.Postgres, opts...)
	envs := []*apitest.Env{first}
	for range n - 1 {
		envs = append(envs, apitest.New(t, sqlstore.Postgres, slices.Concat(opts, []apitest.Option{apitest.SameDatabase(first)})...))
	}
	return envs
}

// withRedis points instances at Redis under a key prefix private to the
// test.
func withRedis(url, prefix string) []apitest.Option {
	return []apitest.Option{apitest.WithEnv("REDIS_URL", url), apitest.WithEnv("REDIS_KEY_PREFIX", prefix)}
}

// rateLimited turns the per-IP limits on, unscaled (IS_TEST is not set).
var rateLimited = apitest.WithEnv("RATE_LIMIT_ENABLED", "true")

// (a) A limit is one budget for the whole cluster: login allows 10 a minute
// per address, and 10 logins spread over two instances use it up, each
// answer counting down the shared budget; the next is refused on either.
func TestClusterRateLimitIsShared(t *testing.T) {
	t.Parallel()
	needPostgres(t)
	url, prefix := redistest.Shared(t)
	envs := startCluster(t, 2, append(withRedis(url, prefix), rateLimited)...)
	a, b := envs[0], envs[1]
	a.Register("shared-limit@example.com")

	apitest.FreshWindow(t, burstBudget, time.Minute)
	for i := range 10 {
		e := envs[i%2]
		r := login(e, "shared-limit@example.com").Expect(t, http.StatusOK, "")
		if got, want := r.Header.Get("X-RateLimit-Remaining"), strconv.Itoa(9-i); got != want {
			t.Errorf("login %d (instance %d): X-RateLimit-Remaining = %s, want %s (one budget for both)", i+1, i%2, got, want)
		}
	}
	for _, e := range []*apitest.Env{a, b, a} {
		expectRateLimited(t, login(e, "shared-limit@example.com"), 10)
	}
	if keys := redistest.Keys(t, redistest.Client(t, url), prefix); len(keys) == 0 {
		t.Error("no counts in Redis")
	}
}

// (a2) The per-account failed-login throttle is one count for the whole
// cluster: with LOGIN_THROTTLE_ATTEMPTS=3, two wrong passwords on A and one
// on B throttle the account, and then even the right password is refused
// on either instance (429 SYS_004 with Retry-After, as on one instance:
// TestLoginThrottlePerAccount), while other accounts log in. Neither
// instance saw 3 failures itself: the control cluster, the same but
// without Redis, lets the right password in, so the refusal comes from the
// count shared in Redis.
func TestClusterLoginThrottleIsShared(t *testing.T) {
	t.Parallel()
	needPostgres(t)
	const wrong = "Wr0ng!Password"
	// spread makes the failed logins, two on A and one on B, and returns
	// what the right password then gets on each instance.
	spread := func(t *testing.T, envs []*apitest.Env) (onB, onA apitest.Response) {
		a, b := envs[0], envs[1]
		a.Register("victim@example.com")
		a.Register("bystander@example.com")
		apitest.FreshWindow(t, burstBudget, a.Config.Auth.LoginFailureWindow)
		for _, e := range []*apitest.Env{a, b, a} {
			e.Post(pathLogin, "", map[string]any{"email": "victim@example.com", "password": wrong}).Expect(t, http.StatusUnauthorized, "AUTH_001")
		}
		return login(b, "victim@example.com"), login(a, "victim@example.com")
	}
	throttle := apitest.WithEnv("LOGIN_THROTTLE_ATTEMPTS", "3")

	t.Run("shared in Redis", func(t *testing.T) {
		t.Parallel()
		url, prefix := redistest.Shared(t)
		envs := startCluster(t, 2, append(withRedis(url, prefix), throttle)...)
		onB, onA := spread(t, envs)
		window := int(envs[0].Config.Auth.LoginFailureWindow / time.Second)
		for name, r := range map[string]apitest.Response{"B": onB, "A": onA} {
			expectEnvelope(t, r, http.StatusTooManyRequests, "SYS_004")
			if n, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || n <= 0 || n > window {
				t.Errorf("the right password on %s: Retry-After = %q, want an integer in 1..%d", name, r.Header.Get("Retry-After"), window)
			}
		}
		found := false
		for _, k := range redistest.Keys(t, redistest.Client(t, url), prefix) {
			found = found || strings.HasSuffix(k, "login-failures:victim@example.com")
		}
		if !found {
			t.Error("no failed-login count for the account in Redis")
		}
		for _, e := range envs {
			e.Login("bystander@example.com", apitest.Password)
		}
	})
	t.Run("control: each instance counting alone", func(t *testing.T) {
		t.Parallel()
		envs := startCluster(t, 2, throttle)
		onB, onA := spread(t, envs)
		onB.Expect(t, http.StatusOK, "")
		onA.Expect(t, http.StatusOK, "")
	})
}

// (b) Revocation is immediate everywhere: every request checks the session
// in the shared database, so a session revoked through one instance is
// refused by another at its next request, both by DELETE /sessions/{id} and
// by logout.
func TestClusterRevokedSessionIsRefusedEverywhere(t *testing.T) {
	t.Parallel()
	envs := startCluster(t, 2)
	a, b := envs[0], envs[1]
	a.Register("revoked@example.com")
	onA := a.Login("revoked@example.com", apitest.Password)
	onB := b.Login("revoked@example.com", apitest.Password)
	for _, e := range envs {
		for _, tk := range []apitest.Tokens{onA, onB} {
			e.Get(pathMe, tk.Access).Expect(t, http.StatusOK, "")
		}
	}

	a.Delete("/api/v1/sessions/"+sessionIDOf(t, onB.Access), onA.Access).Expect(t, http.StatusOK, "")
	b.Get(pathMe, onB.Access).Expect(t, http.StatusUnauthorized, "AUTH_006")
	b.Post(pathRefresh, "", map[string]any{"refresh_token": onB.Refresh}).Expect(t, http.StatusUnauthorized, "AUTH_006")
	b.Get(pathMe, onA.Access).Expect(t, http.StatusOK, "")

	b.Post(pathLogout, onA.Access, map[string]any{"refresh_token": onA.Refresh}).Expect(t, http.StatusOK, "")
	a.Get(pathMe, onA.Access).Expect(t, http.StatusUnauthorized, "AUTH_006")
	a.Post(pathRefresh, "", map[string]any{"refresh_token": onA.Refresh}).Expect(t, http.StatusUnauthorized, "AUTH_006")
}

// (c) The authorization server's signing keys are shared: a token issued by
// one instance verifies on the other (introspection and userinfo). After a
// rotation on B, B signs with the new key at once; A, which has not
// reloaded, verifies those tokens (an unknown kid makes it reload), signs
// with the new key from then on, and tokens of the old key still verify
// everywhere.
func TestClusterProviderKeysAreShared(t *testing.T) {
	t.Parallel()
	envs := startCluster(t, 2, oaOn())
	a, b := envs[0], envs[1]
	s := oaStart(t, a)
	kid := func(raw string) string {
		h, _ := oaJWT(t, raw)
		k, _ := h["kid"].(string)
		return k
	}
	verifiesOn := func(e *apitest.Env, tok oaTokens, what string) {
		t.Helper()
		if !oaActive(t, e, s.conf, tok.AccessToken) {
			t.Fatalf("%s: introspection says inactive", what)
		}
		oaUserinfo(e, tok.AccessToken).Expect(t, http.StatusOK, "")
	}

	fromA := oaFlow(t, a, s.conf, s.alice.Access, nil)
	verifiesOn(b, fromA, "A's token on B")
	verifiesOn(a, fromA, "A's token on A")
	oldKid := kid(fromA.AccessToken)

	if _, err := b.App.Keys.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	fromB := oaFlow(t, b, s.conf, s.alice.Access, nil)
	newKid := kid(fromB.AccessToken)
	if newKid == oldKid {
		t.Fatalf("B still signs with %s after rotating", oldKid)
	}
	verifiesOn(a, fromB, "B's token of the new key on A")
	verifiesOn(b, fromB, "B's token of the new key on B")
	verifiesOn(a, fromA, "A's token of the old key on A after the rotation")
	verifiesOn(b, fromA, "A's token of the old key on B after the rotation")
	// A's token can be refreshed on B (one grant, one database).
	refreshed := oaOK(t, oaRefresh(b, s.conf, fromA.RefreshToken, nil))
	verifiesOn(a, refreshed, "a token refreshed on B")

	// A reloaded its keys on meeting the new kid: it signs with the new key
	// and publishes both.
	again := oaFlow(t, a, s.conf, s.alice.Access, nil)
	if got := kid(again.AccessToken); got != newKid {
		t.Errorf("A signs with %s after verifying a token of B's new key %s", got, newKid)
	}
	set := oaJWKS(t, a)
	if len(set.Key(oldKid)) != 1 || len(set.Key(newKid)) != 1 {
		t.Errorf("A's JWKS lacks the old or the new key: %v", set.Keys)
	}
	oaVerify(t, oaJWKS(t, b), again.AccessToken)
}

// (d) The daily job fires on every instance at once and runs on one: the
// run is claimed in the database. The expired sessions are deleted once,
// by the one instance that reports running; the others report the run as
// already done.
func TestClusterDailyJobRunsOnce(t *testing.T) {
	t.Parallel()
	envs := startCluster(t, 3)
	a := envs[0]
	uid := a.Register("sessions@example.com")
	const expired = 6
	for i := range expired {
		envs[i%3].Login("sessions@example.com", apitest.Password)
	}
	a.Exec(`UPDATE user_sessions SET expires_at = $1 WHERE user_id = $2`, time.Now().UTC().AddDate(0, 0, -40), uid)
	fresh := envs[1].Login("sessions@example.com", apitest.Password)

	slot := time.Now().UTC().Truncate(24 * time.Hour).Add(2 * time.Hour) // today's run
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		ran   = make([]bool, len(envs))
	)
	for i, e := range envs {
		wg.Go(func() {
			<-start
			ok, err := e.App.Scheduler.RunPeriod(context.Background(), slot)
			if err != nil {
				t.Error(err)
			}
			ran[i] = ok
		})
	}
	close(start)
	wg.Wait()

	affected := regexp.MustCompile(`job=purge-sessions affected=(\d+)`)
	runners, deleted := 0, 0
	for i, e := range envs {
		logs := e.Logs.String()
		ms := affected.FindAllStringSubmatch(logs, -1)
		for _, m := range ms {
			n, _ := strconv.Atoi(m[1])
			deleted += n
		}
		switch {
		case ran[i] && len(ms) == 1 && strings.Contains(logs, "running scheduled maintenance"):
			runners++
		case !ran[i] && len(ms) == 0 && strings.Contains(logs, "already run by another instance"):
		default:
			t.Errorf("instance %d: ran %v, purge-sessions logged %d times:\n%s", i, ran[i], len(ms), logs)
		}
	}
	if runners != 1 || deleted != expired {
		t.Fatalf("%d instances ran the job, deleting %d sessions in all; want one instance deleting %d", runners, deleted, expired)
	}
	if n := a.Count(`SELECT COUNT(*) FROM user_sessions WHERE user_id = $1`, uid); n != 1 {
		t.Fatalf("%d sessions left, want the fresh one", n)
	}
	envs[2].Get(pathMe, fresh.Access).Expect(t, http.StatusOK, "")
}

// (e) Redis dies while requests flow, and comes back while they still
// flow. On each instance, three clients send rate-limited requests in a
// loop from before redis-server is killed until after it answers again and
// both instances have noticed:
//   - "fresh-login" and "fresh-sessions" (POST /auth/login, GET
//     /sessions/me with a token issued before the outage) give every request
//     a client address of its own (X-Forwarded-For from a trusted proxy), so
//     no budget is ever exceeded, wherever it is counted: every answer must
//     be a 200 with a full budget less one in its headers;
//   - "hammer" logs in from one address per phase of the outage, shared by
//     both instances, far beyond the budget of 10 a minute: every answer
//     must be a 200 or the rate limit's own 429.
//
// No request may fail or hang because of Redis: no transport error, no
// 5xx, nothing slower than a few seconds. Authentication never depends on
// Redis. While Redis is down each instance counts in its memory: its own
// fresh budget of 10 for the hammer's address, exactly 10 logins and then
// 429s. Before and after the outage the count is in Redis, shared: the
// hammer's requests on A and B together get at most 10 logins, and after
// the outage exactly 10. Each instance logs the outage once and the
// recovery once.
func TestClusterSurvivesRedisOutage(t *testing.T) {
	t.Parallel()
	needPostgres(t)
	srv := redistest.Start(t)
	envs := startCluster(t, 2, append(withRedis(srv.URL(), "gatehouse:"), rateLimited,
		apitest.WithEnv("TRUSTED_PROXIES", "127.0.0.1"))...)
	a, b := envs[0], envs[1]
	client := redistest.Client(t, srv.URL())
	a.Register("outage@example.com")
	tk := b.Login("outage@example.com", apitest.Password)
	if len(redistest.Keys(t, client, "gatehouse:")) == 0 {
		t.Fatal("no counts in Redis before the outage")
	}
	creds := map[string]any{"email": "outage@example.com", "password": apitest.Password}
	streams := []outageStream{
		{name: "fresh-login", method: "POST", path: pathLogin, body: creds, limit: 10, fresh: true},
		{name: "fresh-sessions", method: "GET", path: "/api/v1/sessions/me", token: tk.Access, limit: 30, fresh: true},
		{name: "hammer", method: "POST", path: pathLogin, body: creds, limit: 10},
	}

	// The whole load runs within one rate-limit window (it takes a few
	// seconds), so no count starts again halfway.
	apitest.FreshWindow(t, burstBudget, time.Minute)
	window := time.Now().UnixNano() / int64(time.Minute)
	load := &outageLoad{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, e := range envs {
		for _, s := range streams {
			wg.Go(func() { load.run(e, i, s, stop) })
		}
	}
	stopped := false
	stopLoad := func() {
		if !stopped {
			stopped = true
			close(stop)
			wg.Wait()
		}
	}
	defer stopLoad()
	// progress waits until each instance has sent each stream at least
	// min[stream] requests sent and answered in the current phase.
	progress := func(what string, min map[string]int) {
		t.Helper()
		ph := load.phase.Load()
		load.waitFor(t, what, func(calls []outageCall) bool {
			type key struct {
				instance int
				stream   string
			}
			n := map[key]int{}
			for _, c := range calls {
				if c.from == ph && c.to == ph {
					n[key{c.instance, c.stream.name}]++
				}
			}
			for i := range envs {
				for s, m := range min {
					if n[key{i, s}] < m {
						return false
					}
				}
			}
			return true
		})
	}

	progress("load with Redis up", map[string]int{"fresh-login": 3, "fresh-sessions": 3, "hammer": 6})
	srv.Stop()
	load.phase.Store(redisDown)
	progress("load with Redis down", map[string]int{"fresh-login": 3, "fresh-sessions": 3, "hammer": 12})
	load.phase.Store(redisRestarting)
	srv.Restart()
	for i, e := range envs {
		load.waitFor(t, fmt.Sprintf("instance %d to count in Redis again", i), func([]outageCall) bool {
			return strings.Contains(e.Logs.String(), "Redis answers again")
		})
	}
	load.phase.Store(redisBack)
	progress("load with Redis back", map[string]int{"fresh-login": 3, "fresh-sessions": 3, "hammer": 6})
	stopLoad()

	// Every answer is one the limits call for.
	perPhase := map[string]int{}
	for _, c := range load.calls {
		perPhase[phaseNames[c.from]+"/"+strconv.Itoa(c.status)]++
	}
	t.Logf("%d requests by phase sent in / status: %v", len(load.calls), perPhase)
	bad := 0
	for _, c := range load.calls {
		if p := c.problem(); p != "" {
			if bad++; bad <= 20 {
				t.Errorf("%s on instance %d (phase %s): %s", c.stream.name, c.instance, phaseNames[c.from], p)
			}
		}
		if c.took > 5*time.Second {
			t.Errorf("%s on instance %d (phase %s) took %v", c.stream.name, c.instance, phaseNames[c.from], c.took)
		}
		if c.sentWindow != window || c.answeredWindow != window {
			t.Fatalf("the load outlasted the rate-limit window it started in; the counts below would not add up")
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d requests got an answer the limits do not call for", bad, len(load.calls))
	}
	// While Redis was down (sent after the kill, answered before the
	// restart) each instance counted the hammer's address itself, from zero:
	// 10 logins, then 429s.
	for i := range envs {
		j := 0
		for _, c := range load.calls {
			if c.instance != i || c.stream.name != "hammer" || c.from != redisDown || c.to != redisDown {
				continue
			}
			if want := c.expectLocal(j); want != "" {
				t.Errorf("instance %d, hammer request %d with Redis down: %s", i, j+1, want)
			}
			j++
		}
	}
	// With Redis up, A and B share one budget for the hammer's address.
	for _, ph := range []int32{redisUp, redisBack} {
		var ok []int
		n := 0
		for _, c := range load.calls {
			if c.stream.name != "hammer" || c.from != ph || c.to != ph {
				continue
			}
			n++
			if c.status == http.StatusOK {
				rem, _ := strconv.Atoi(c.header.Get("X-RateLimit-Remaining"))
				ok = append(ok, rem)
			}
		}
		slices.Sort(ok)
		switch {
		case len(ok) > 10:
			t.Errorf("Redis %s: %d logins from one address on A and B together, want at most 10 (one budget in Redis)", phaseNames[ph], len(ok))
		case ph == redisBack && len(ok) != min(n, 10):
			t.Errorf("Redis %s: %d of %d logins from one address on A and B succeeded, want %d", phaseNames[ph], len(ok), n, min(n, 10))
		case ph == redisBack && !slices.Equal(ok, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}[10-len(ok):]):
			t.Errorf("Redis %s: the successful logins had X-RateLimit-Remaining %v, want each of 9 down to %d once", phaseNames[ph], ok, 10-len(ok))
		}
	}
	for i, e := range envs {
		for _, msg := range []string{"Redis is unreachable", "Redis answers again"} {
			if n := strings.Count(e.Logs.String(), msg); n != 1 {
				t.Errorf("instance %d logged %q %d times, want once", i, msg, n)
			}
		}
	}

	// Once the load has stopped: the limit holds across the instances in
	// Redis, counted down by each answer on either.
	apitest.FreshWindow(t, burstBudget, time.Minute)
	from := map[string]string{"X-Forwarded-For": "203.0.113.50"}
	loginFrom := func(e *apitest.Env) apitest.Response {
		return e.Do(apitest.Request{Method: "POST", Path: pathLogin, Body: creds, Headers: from})
	}
	for i := range 10 {
		r := loginFrom(envs[i%2]).Expect(t, http.StatusOK, "")
		if got, want := r.Header.Get("X-RateLimit-Remaining"), strconv.Itoa(9-i); got != want {
			t.Errorf("login %d after Redis came back: X-RateLimit-Remaining = %s, want %s (one budget in Redis)", i+1, got, want)
		}
	}
	expectRateLimited(t, loginFrom(b), 10)
	expectRateLimited(t, loginFrom(a), 10)
	if len(redistest.Keys(t, client, "gatehouse:")) == 0 {
		t.Error("no counts in Redis after it came back")
	}
}

// The phases of TestClusterSurvivesRedisOutage.
const (
	redisUp         int32 = iota // before the outage
	redisDown                    // from when redis-server has been killed
	redisRestarting              // from when it is being started again
	redisBack                    // from when both instances count in it again
)

var phaseNames = []string{"up", "down", "restarting", "back"}

// outageStream is one kind of client of TestClusterSurvivesRedisOutage.
type outageStream struct {
	name, method, path, token string
	body                      any
	limit                     int // of the endpoint, per minute
	// fresh: a client address of its own for every request; otherwise one
	// address per phase, shared by the instances.
	fresh bool
}

// outageCall is one request of the load and its answer.
type outageCall struct {
	stream                     outageStream
	instance                   int
	from, to                   int32 // the phase when it was sent and when it was answered
	sentWindow, answeredWindow int64 // the rate-limit minutes
	status                     int
	header                     http.Header
	body                       []byte
	err                        error
	took                       time.Duration
}

// problem says what is wrong with the answer: any error, any status but
// 200 and (for the hammer) the limit's 429, rate-limit headers that do not
// fit.
func (c outageCall) problem() string {
	if c.err != nil {
		return c.err.Error()
	}
	limit, rem := c.header.Get("X-RateLimit-Limit"), c.header.Get("X-RateLimit-Remaining")
	if limit != strconv.Itoa(c.stream.limit) {
		return fmt.Sprintf("status %d, X-RateLimit-Limit %q, want %d: %.200s", c.status, limit, c.stream.limit, c.body)
	}
	n, err := strconv.Atoi(rem)
	switch {
	case c.status == http.StatusOK && c.stream.fresh && rem != strconv.Itoa(c.stream.limit-1):
		return fmt.Sprintf("a fresh address has X-RateLimit-Remaining %q, want %d", rem, c.stream.limit-1)
	case c.status == http.StatusOK && (err != nil || n < 0 || n >= c.stream.limit):
		return fmt.Sprintf("X-RateLimit-Remaining %q", rem)
	case c.status == http.StatusOK:
		return ""
	case c.status != http.StatusTooManyRequests || c.stream.fresh:
		return fmt.Sprintf("status %d: %.300s", c.status, c.body)
	}
	var env struct {
		Errors []struct{ Code, Message string } `json:"errors"`
	}
	_ = json.Unmarshal(c.body, &env)
	ra, err := strconv.Atoi(c.header.Get("Retry-After"))
	want := fmt.Sprintf("Rate limit exceeded: %d per 1 minute", c.stream.limit)
	if len(env.Errors) != 1 || env.Errors[0].Code != "SYS_004" || env.Errors[0].Message != want || rem != "0" || err != nil || ra < 1 || ra > 60 {
		return fmt.Sprintf("not the rate limit's 429 (Retry-After %q, X-RateLimit-Remaining %q): %.300s", c.header.Get("Retry-After"), rem, c.body)
	}
	return ""
}

// expectLocal checks the answer to the j-th (from 0) request an instance
// counted in its own memory for an address it had not counted before:
// X-RateLimit-Remaining 9 down to 0, then 429s.
func (c outageCall) expectLocal(j int) string {
	if j < c.stream.limit {
		if rem := c.header.Get("X-RateLimit-Remaining"); c.status != http.StatusOK || rem != strconv.Itoa(c.stream.limit-1-j) {
			return fmt.Sprintf("status %d, X-RateLimit-Remaining %q; want 200 with %d left", c.status, rem, c.stream.limit-1-j)
		}
		return ""
	}
	if c.status != http.StatusTooManyRequests {
		return fmt.Sprintf("status %d, want 429 (the budget of %d is used up)", c.status, c.stream.limit)
	}
	return ""
}

// outageLoad is the load of TestClusterSurvivesRedisOutage.
type outageLoad struct {
	phase atomic.Int32
	addrs atomic.Int64 // fresh client addresses handed out

	mu    sync.Mutex
	calls []outageCall
}

// run sends s's requests to e, one after the other, until stop is closed.
func (l *outageLoad) run(e *apitest.Env, instance int, s outageStream, stop <-chan struct{}) {
	var body []byte
	if s.body != nil {
		body, _ = json.Marshal(s.body)
	}
	for {
		select {
		case <-stop:
			return
		case <-time.After(5 * time.Millisecond):
		}
		c := outageCall{stream: s, instance: instance, from: l.phase.Load()}
		addr := fmt.Sprintf("198.51.100.%d", c.from+1)
		if s.fresh {
			n := l.addrs.Add(1)
			addr = fmt.Sprintf("10.%d.%d.%d", n>>16&255, n>>8&255, n&255)
		}
		start := time.Now()
		c.sentWindow = start.UnixNano() / int64(time.Minute)
		c.status, c.header, c.body, c.err = clusterCall(e, s.method, s.path, s.token, addr, body)
		end := time.Now()
		c.to, c.took, c.answeredWindow = l.phase.Load(), end.Sub(start), end.UnixNano()/int64(time.Minute)
		l.mu.Lock()
		l.calls = append(l.calls, c)
		l.mu.Unlock()
	}
}

// waitFor polls until ok holds for the calls so far, failing the test
// after a bound that only detects a hang.
func (l *outageLoad) waitFor(t *testing.T, what string, ok func([]outageCall) bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; {
		l.mu.Lock()
		done := ok(l.calls)
		l.mu.Unlock()
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited 30s for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// clusterCall sends one request from the client address addr (in
// X-Forwarded-For) and returns the answer or the transport's error; unlike
// apitest.Env.Do it is safe off the test's goroutine.
func clusterCall(e *apitest.Env, method, path, bearer, addr string, body []byte) (int, http.Header, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, e.Server.URL+path, rd)
	if err != nil {
		return 0, nil, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	req.Header.Set("X-Forwarded-For", addr)
	resp, err := e.Server.Client().Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b, err
}
