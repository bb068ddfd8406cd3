package httpapi_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/apitest"
	"github.com/gatehouse-dev/gatehouse/internal/dbtest"
	"github.com/gatehouse-dev/gatehouse/internal/redistest"
)

// The readiness probe with Redis (issue 8): Redis is reported, and Redis not
// answering makes the instance degraded but ready, because rate limits then
// count in its memory and every request is still served (docs/DECISIONS.md).
// The liveness probe touches neither the database nor Redis.

// healthChecks returns /health's status code, status and checks.
func healthChecks(t *testing.T, e *apitest.Env) (int, string, map[string]map[string]string) {
	t.Helper()
	r := e.Get("/health", "")
	var body struct {
		Status string                       `json:"status"`
		Checks map[string]map[string]string `json:"checks"`
	}
	r.Decode(t, &body)
	return r.Status, body.Status, body.Checks
}

func expectRedisCheck(t *testing.T, e *apitest.Env, wantHTTP int, wantStatus, wantRedis string) {
	t.Helper()
	code, status, checks := healthChecks(t, e)
	if code != wantHTTP || status != wantStatus {
		t.Errorf("/health = %d %q, want %d %q (checks %v)", code, status, wantHTTP, wantStatus, checks)
	}
	if db := checks["database"]; db["status"] != "healthy" {
		t.Errorf("checks.database = %v, want healthy", db)
	}
	redis, ok := checks["redis"]
	switch {
	case wantRedis == "" && ok:
		t.Errorf("checks.redis = %v without REDIS_URL", redis)
	case wantRedis != "" && redis["status"] != wantRedis:
		t.Errorf("checks.redis = %v, want status %q", redis, wantRedis)
	case wantRedis == "unhealthy" && redis["message"] != "Redis connection failed: rate limits are counted per instance until it answers":
		t.Errorf("checks.redis.message = %q", redis["message"])
	case wantRedis == "healthy" && redis["message"] != "Redis connection successful":
		t.Errorf("checks.redis.message = %q", redis["message"])
	}
}

func TestHealthWithoutRedisHasNoRedisCheck(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		expectRedisCheck(t, e, http.StatusOK, "healthy", "")
	})
}

func TestHealthRedisReachable(t *testing.T) {
	url, prefix := redistest.Shared(t)
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		expectRedisCheck(t, e, http.StatusOK, "healthy", "healthy")
	}, withRedis(url, prefix)...)
}

// A Redis that nobody listens for: degraded, still ready, and the rate
// limited endpoints still answer (counted locally).
func TestHealthRedisUnreachableIsDegradedButReady(t *testing.T) {
	closed := fmt.Sprintf("redis://127.0.0.1:%d/0", redistest.FreePort(t))
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		expectRedisCheck(t, e, http.StatusOK, "degraded", "unhealthy")
		e.Register("degraded@example.com")
		r := login(e, "degraded@example.com").Expect(t, http.StatusOK, "")
		if r.Header.Get("X-RateLimit-Remaining") != "9" {
			t.Errorf("X-RateLimit-Remaining = %q, want 9 (counted locally)", r.Header.Get("X-RateLimit-Remaining"))
		}
	}, apitest.WithEnv("REDIS_URL", closed), rateLimited)
}

// Redis stopped and started again under a running instance: the probe
// follows it both ways without a restart.
func TestHealthFollowsRedisOutage(t *testing.T) {
	for _, engine := range dbtest.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			srv := redistest.Start(t) // one per engine: each stops its own
			e := apitest.New(t, engine, apitest.WithEnv("REDIS_URL", srv.URL()))
			expectRedisCheck(t, e, http.StatusOK, "healthy", "healthy")
			srv.Stop()
			expectRedisCheck(t, e, http.StatusOK, "degraded", "unhealthy")
			srv.Restart()
			expectRedisCheck(t, e, http.StatusOK, "healthy", "healthy")
		})
	}
}

// Liveness answers without the database: with the pool closed, readiness
// fails and liveness still answers.
func TestHealthLiveNeedsNoDatabase(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		live := func() {
			t.Helper()
			r := e.Get("/health/live", "").Expect(t, http.StatusOK, "")
			if got := r.JSON(t); len(got) != 1 || got["status"] != "alive" {
				t.Errorf("/health/live body %s, want {\"status\":\"alive\"}", r.Body)
			}
		}
		live()
		e.Get("/health", "").Expect(t, http.StatusOK, "")
		if err := e.App.Store.Close(); err != nil {
			t.Fatal(err)
		}
		r := e.Get("/health", "")
		if r.Status != http.StatusServiceUnavailable {
			t.Fatalf("/health with the database closed = %d %s, want 503", r.Status, r.Body)
		}
		expectHealthBody(t, r, "unhealthy", "Database connection failed")
		live()
	})
}
