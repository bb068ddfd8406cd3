package ratelimit

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/redistest"
)

// The Redis counter against a real Redis (TEST_REDIS_URL), each test under
// a key prefix of its own.

func newRedis(t *testing.T, url, prefix string) *Redis {
	t.Helper()
	r, err := NewRedis(url, prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// futureBase is an hour boundary a day ahead: fake clocks start there, so
// window arithmetic is easy to read and the keys' expiry lies in the future
// (the test's clean-up deletes them).
func futureBase() time.Time { return time.Now().UTC().Truncate(time.Hour).Add(24 * time.Hour) }

func TestRedisCountsPerKeyPerWindow(t *testing.T) {
	url, prefix := redistest.Shared(t)
	base := futureBase()
	c := &clock{t: base.Add(20 * time.Second)}
	r := newRedis(t, url, prefix)
	r.now = c.now
	const w = time.Minute

	for want := 1; want <= 3; want++ {
		n, end := incr(t, r, "a", w)
		if n != want || !end.Equal(base.Add(w)) {
			t.Errorf("Incr(a) #%d = %d, end %v; want %d, %v", want, n, end, want, base.Add(w))
		}
	}
	if n, _ := incr(t, r, "b", w); n != 1 {
		t.Errorf("Incr(b) = %d, want 1 (keys are separate)", n)
	}
	if n, _ := incr(t, r, "a", time.Hour); n != 1 {
		t.Errorf("Incr(a, 1h) = %d, want 1 (window sizes are separate)", n)
	}
	if got := count(t, r, "a", w); got != 3 {
		t.Errorf("Count(a) = %d, want 3", got)
	}
	if got := count(t, r, "a", w); got != 3 {
		t.Errorf("Count(a) again = %d, want 3 (Count must not increment)", got)
	}
	if n, end, err := r.Count(context.Background(), "never", w); err != nil || n != 0 || !end.Equal(base.Add(w)) {
		t.Errorf("Count(never) = %d, %v, %v; want 0 and the window's end", n, end, err)
	}

	c.set(base.Add(w - time.Nanosecond))
	if n, _ := incr(t, r, "a", w); n != 4 {
		t.Errorf("Incr(a) at the end of the window = %d, want 4", n)
	}
	c.set(base.Add(w))
	if got := count(t, r, "a", w); got != 0 {
		t.Errorf("Count(a) in the next window = %d, want 0", got)
	}
	if n, end := incr(t, r, "a", w); n != 1 || !end.Equal(base.Add(2*w)) {
		t.Errorf("Incr(a) in the next window = %d, end %v; want 1, %v", n, end, base.Add(2*w))
	}
	if got := count(t, r, "a", time.Hour); got != 1 {
		t.Errorf("Count(a, 1h) = %d, want 1", got)
	}
}

func TestRedisDecrNeverBelowZeroAndReset(t *testing.T) {
	url, prefix := redistest.Shared(t)
	ctx := context.Background()
	r := newRedis(t, url, prefix)
	r.now = (&clock{t: futureBase()}).now
	const w = time.Minute

	if err := r.Decr(ctx, "fresh", w); err != nil {
		t.Fatal(err)
	}
	if n, _ := incr(t, r, "fresh", w); n != 1 {
		t.Errorf("Incr after a Decr of nothing = %d, want 1 (no credit below zero)", n)
	}
	incr(t, r, "fresh", w)
	for range 3 {
		if err := r.Decr(ctx, "fresh", w); err != nil {
			t.Fatal(err)
		}
	}
	if got := count(t, r, "fresh", w); got != 0 {
		t.Errorf("Count after more Decr than Incr = %d, want 0", got)
	}
	if keys := redistest.Keys(t, redistest.Client(t, url), prefix); len(keys) != 0 {
		t.Errorf("keys left at zero: %v", keys)
	}

	incr(t, r, "a", w)
	incr(t, r, "a", w)
	incr(t, r, "b", w)
	if err := r.Reset(ctx, "a", w); err != nil {
		t.Fatal(err)
	}
	if got := count(t, r, "a", w); got != 0 {
		t.Errorf("Count(a) after Reset = %d, want 0", got)
	}
	if got := count(t, r, "b", w); got != 1 {
		t.Errorf("Count(b) after Reset(a) = %d, want 1", got)
	}
	if err := r.Reset(ctx, "unknown", w); err != nil {
		t.Errorf("Reset(unknown) = %v", err)
	}
}

// Keys expire with their window (plus a small margin), so Redis keeps only
// current counts.
func TestRedisKeysExpireWithTheirWindow(t *testing.T) {
	url, prefix := redistest.Shared(t)
	r := newRedis(t, url, prefix)
	client := redistest.Client(t, url)
	const w = time.Minute
	_, end := incr(t, r, "login:203.0.113.7", w)
	keys := redistest.Keys(t, client, prefix)
	if len(keys) != 1 || !strings.HasPrefix(keys[0], prefix) || !strings.HasSuffix(keys[0], ":login:203.0.113.7") {
		t.Fatalf("keys %v, want one under %s ending in the counted key", keys, prefix)
	}
	ttl, err := client.PTTL(context.Background(), keys[0]).Result()
	if err != nil {
		t.Fatal(err)
	}
	if most := time.Until(end) + expiryMargin; ttl <= 0 || ttl > most+time.Second {
		t.Errorf("TTL %v, want until the window's end plus the margin (%v)", ttl, most)
	}
}

// Two instances (two clients) with the same prefix enforce one limit: of
// 200 concurrent requests spread over both, exactly the limit is allowed.
// Another prefix (another deployment) counts apart.
func TestRedisInstancesShareOneLimit(t *testing.T) {
	url, prefix := redistest.Shared(t)
	// Both instances on one clock standing still: the requests must all fall
	// into one window, whatever the real time.
	c := &clock{t: futureBase().Add(20 * time.Minute)}
	limiter := func(prefix string) *Limiter {
		r := newRedis(t, url, prefix)
		r.now = c.now
		l := NewLimiter(r)
		l.now = c.now
		return l
	}
	limiters := []*Limiter{limiter(prefix), limiter(prefix)}
	const limit, callers = 25, 200
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		allowed int
	)
	for i := range callers {
		wg.Go(func() {
			r := limiters[i%2].Allow(context.Background(), "k", limit, time.Hour)
			if r.Allowed {
				mu.Lock()
				allowed++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if allowed != limit {
		t.Errorf("%d of %d requests over two instances allowed, want %d", allowed, callers, limit)
	}
	r := limiters[0].Allow(context.Background(), "k", limit, time.Hour)
	if r.Allowed || r.Remaining != 0 || r.RetryAfter <= 0 || r.RetryAfter > time.Hour {
		t.Errorf("over the limit: %+v, want refused with a RetryAfter within the window", r)
	}
	other := limiter(prefix + "other:")
	if r := other.Allow(context.Background(), "k", limit, time.Hour); !r.Allowed || r.Remaining != limit-1 {
		t.Errorf("another prefix: %+v, want its own budget", r)
	}
}

func TestRedisThrottle(t *testing.T) {
	url, prefix := redistest.Shared(t)
	c := &clock{t: futureBase().Add(5 * time.Minute)}
	r := newRedis(t, url, prefix)
	r.now = c.now
	ctx := context.Background()
	th := newThrottle(c, r, 3, 15*time.Minute)
	for range 3 {
		th.Fail(ctx, "alice@example.com")
	}
	if d, b := th.Blocked(ctx, "alice@example.com"); !b || d != 10*time.Minute {
		t.Fatalf("after 3 failures: %v, %v; want blocked for 10m", d, b)
	}
	// Another instance sees the same failures.
	r2 := newRedis(t, url, prefix)
	r2.now = c.now
	if _, b := newThrottle(c, r2, 3, 15*time.Minute).Blocked(ctx, "alice@example.com"); !b {
		t.Fatal("another instance does not see the failures")
	}
	th.Reset(ctx, "alice@example.com")
	if _, b := th.Blocked(ctx, "alice@example.com"); b {
		t.Fatal("still blocked after Reset")
	}
}

func TestRedisPing(t *testing.T) {
	url, prefix := redistest.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := newRedis(t, url, prefix).Ping(ctx); err != nil {
		t.Errorf("Ping of a running Redis: %v", err)
	}
	closed := newRedis(t, fmt.Sprintf("redis://127.0.0.1:%d/0", redistest.FreePort(t)), prefix)
	start := time.Now()
	pctx, pcancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer pcancel()
	if err := closed.Ping(pctx); err == nil {
		t.Error("Ping of a closed port succeeded")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Ping of a closed port took %v, want it bounded by the caller's deadline", d)
	}
}
