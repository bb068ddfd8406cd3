package httpapi_test

import (
	"context"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
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

// (e) Redis dies while requests flow: nothing fails or waits because of it
// (authentication never depends on Redis, limits count per instance
// meanwhile) and each instance logs the outage once. Redis comes back:
// after the back-off the instances count in Redis again, and a limit holds
// across them once more.
func TestClusterSurvivesRedisOutage(t *testing.T) {
	t.Parallel()
	needPostgres(t)
	srv := redistest.Start(t)
	envs := startCluster(t, 2, append(withRedis(srv.URL(), "gatehouse:"), rateLimited)...)
	a, b := envs[0], envs[1]
	client := redistest.Client(t, srv.URL())
	a.Register("outage@example.com")
	tk := b.Login("outage@example.com", apitest.Password)
	if len(redistest.Keys(t, client, "gatehouse:")) == 0 {
		t.Fatal("no counts in Redis before the outage")
	}

	srv.Stop()
	var wg sync.WaitGroup
	statuses := make(chan int, 100)
	start := time.Now()
	for i := range 24 { // concurrently, on both instances, with Redis dead
		e := envs[i%2]
		wg.Go(func() {
			statuses <- e.Get("/api/v1/sessions/me", tk.Access).Status
			statuses <- e.Get(pathMe, tk.Access).Status
		})
	}
	wg.Wait()
	close(statuses)
	for s := range statuses {
		if s != http.StatusOK {
			t.Fatalf("a request failed with Redis down: status %d", s)
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("48 requests took %v with Redis down", d)
	}
	login(a, "outage@example.com").Expect(t, http.StatusOK, "")
	for i, e := range envs {
		if n := strings.Count(e.Logs.String(), "Redis is unreachable"); n != 1 {
			t.Errorf("instance %d logged the outage %d times, want once", i, n)
		}
	}

	srv.Restart()
	time.Sleep(1100 * time.Millisecond) // the back-off (ratelimit.DefaultBackoff)
	apitest.FreshWindow(t, burstBudget, time.Minute)
	for i := range 10 {
		r := login(envs[i%2], "outage@example.com").Expect(t, http.StatusOK, "")
		if got, want := r.Header.Get("X-RateLimit-Remaining"), strconv.Itoa(9-i); got != want {
			t.Errorf("login %d after Redis came back: X-RateLimit-Remaining = %s, want %s (one budget in Redis)", i+1, got, want)
		}
	}
	expectRateLimited(t, login(b, "outage@example.com"), 10)
	expectRateLimited(t, login(a, "outage@example.com"), 10)
	if len(redistest.Keys(t, client, "gatehouse:")) == 0 {
		t.Error("no counts in Redis after it came back")
	}
	for i, e := range envs {
		if n := strings.Count(e.Logs.String(), "Redis answers again"); n != 1 {
			t.Errorf("instance %d logged the recovery %d times, want once", i, n)
		}
	}
}
