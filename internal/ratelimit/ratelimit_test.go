package ratelimit

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// clock is a settable fake clock shared by a Memory and its users.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// A minute boundary, so window arithmetic is easy to read.
var base = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func newMemory(c *clock) *Memory {
	m := NewMemory()
	m.now = c.now
	return m
}

func incr(t *testing.T, ctr Counter, key string, window time.Duration) (int, time.Time) {
	t.Helper()
	n, end, err := ctr.Incr(context.Background(), key, window)
	if err != nil {
		t.Fatalf("Incr(%q): %v", key, err)
	}
	return n, end
}

func count(t *testing.T, ctr Counter, key string, window time.Duration) int {
	t.Helper()
	n, _, err := ctr.Count(context.Background(), key, window)
	if err != nil {
		t.Fatalf("Count(%q): %v", key, err)
	}
	return n
}

func TestMemoryCountsPerKeyPerWindow(t *testing.T) {
	c := &clock{t: base.Add(20 * time.Second)}
	m := newMemory(c)
	const w = time.Minute

	for want := 1; want <= 3; want++ {
		n, end := incr(t, m, "a", w)
		if n != want {
			t.Errorf("Incr(a) #%d = %d", want, n)
		}
		if !end.Equal(base.Add(w)) {
			t.Errorf("window end = %v, want %v", end, base.Add(w))
		}
	}
	if n, _ := incr(t, m, "b", w); n != 1 {
		t.Errorf("Incr(b) = %d, want 1 (keys are separate)", n)
	}
	if n, _ := incr(t, m, "a", time.Hour); n != 1 {
		t.Errorf("Incr(a, 1h) = %d, want 1 (window sizes are separate)", n)
	}
	if got := count(t, m, "a", w); got != 3 {
		t.Errorf("Count(a) = %d, want 3", got)
	}
	if got := count(t, m, "a", w); got != 3 {
		t.Errorf("Count(a) again = %d, want 3 (Count must not increment)", got)
	}
	if got := count(t, m, "never", w); got != 0 {
		t.Errorf("Count(never) = %d, want 0", got)
	}

	// Still the same window at its last instant.
	c.set(base.Add(w - time.Nanosecond))
	if n, _ := incr(t, m, "a", w); n != 4 {
		t.Errorf("Incr(a) at the end of the window = %d, want 4", n)
	}

	// The next window starts from zero.
	c.set(base.Add(w))
	if got := count(t, m, "a", w); got != 0 {
		t.Errorf("Count(a) in the next window = %d, want 0", got)
	}
	n, end := incr(t, m, "a", w)
	if n != 1 || !end.Equal(base.Add(2*w)) {
		t.Errorf("Incr(a) in the next window = %d, end %v; want 1, %v", n, end, base.Add(2*w))
	}
	// The hour window has not changed.
	if got := count(t, m, "a", time.Hour); got != 1 {
		t.Errorf("Count(a, 1h) = %d, want 1", got)
	}
}

func TestMemoryReset(t *testing.T) {
	c := &clock{t: base}
	m := newMemory(c)
	ctx := context.Background()
	incr(t, m, "a", time.Minute)
	incr(t, m, "a", time.Minute)
	incr(t, m, "b", time.Minute)
	if err := m.Reset(ctx, "a", time.Minute); err != nil {
		t.Fatal(err)
	}
	if got := count(t, m, "a", time.Minute); got != 0 {
		t.Errorf("Count(a) after Reset = %d, want 0", got)
	}
	if got := count(t, m, "b", time.Minute); got != 1 {
		t.Errorf("Count(b) after Reset(a) = %d, want 1", got)
	}
	if n, _ := incr(t, m, "a", time.Minute); n != 1 {
		t.Errorf("Incr(a) after Reset = %d, want 1", n)
	}
	if err := m.Reset(ctx, "unknown", time.Minute); err != nil {
		t.Errorf("Reset(unknown) = %v", err)
	}
}

func TestMemorySweepsPastWindows(t *testing.T) {
	c := &clock{t: base}
	m := newMemory(c)
	for i := range 100 {
		incr(t, m, string(rune('A'+i%26))+string(rune('a'+i/26)), time.Minute)
	}
	c.set(base.Add(time.Hour))
	for range 4096 {
		incr(t, m, "current", time.Minute)
	}
	m.mu.Lock()
	n := len(m.counts)
	m.mu.Unlock()
	if n != 1 {
		t.Errorf("%d keys kept after a sweep, want only the current window's 1", n)
	}
	if got := count(t, m, "current", time.Minute); got != 4096 {
		t.Errorf("Count(current) = %d, want 4096 (the sweep must keep the current window)", got)
	}
}

func TestMemoryConcurrentIncr(t *testing.T) {
	c := &clock{t: base}
	m := newMemory(c)
	const goroutines, each = 50, 200
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range each {
				if _, _, err := m.Incr(context.Background(), "shared", time.Minute); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if got := count(t, m, "shared", time.Minute); got != goroutines*each {
		t.Errorf("Count = %d, want %d", got, goroutines*each)
	}
}

func newLimiter(c *clock) (*Limiter, *Memory) {
	m := newMemory(c)
	l := NewLimiter(m)
	l.now = c.now
	return l, m
}

func TestLimiterAllowsExactlyLimit(t *testing.T) {
	c := &clock{t: base.Add(20 * time.Second)}
	l, _ := newLimiter(c)
	ctx := context.Background()
	const limit, w = 3, time.Minute

	for i := 1; i <= limit; i++ {
		r := l.Allow(ctx, "login:203.0.113.7", limit, w)
		if !r.Allowed || r.Remaining != limit-i || r.Limit != limit || r.RetryAfter != 0 || !r.Reset.Equal(base.Add(w)) {
			t.Errorf("request %d: %+v; want allowed, remaining %d, reset %v", i, r, limit-i, base.Add(w))
		}
	}
	for i := range 2 {
		r := l.Allow(ctx, "login:203.0.113.7", limit, w)
		if r.Allowed || r.Remaining != 0 {
			t.Errorf("request %d over the limit: %+v; want refused with 0 remaining", limit+1+i, r)
		}
		if r.RetryAfter <= 0 || r.RetryAfter > w {
			t.Errorf("RetryAfter = %v, want in (0, %v]", r.RetryAfter, w)
		}
		if r.RetryAfter != 40*time.Second {
			t.Errorf("RetryAfter = %v, want 40s (until the window ends)", r.RetryAfter)
		}
	}

	// Another key has its own budget.
	if r := l.Allow(ctx, "login:198.51.100.1", limit, w); !r.Allowed || r.Remaining != limit-1 {
		t.Errorf("other key: %+v, want allowed", r)
	}

	// The next window allows again.
	c.set(base.Add(w))
	if r := l.Allow(ctx, "login:203.0.113.7", limit, w); !r.Allowed || r.Remaining != limit-1 {
		t.Errorf("next window: %+v, want allowed with %d remaining", r, limit-1)
	}
}

func TestLimiterRetryAfterAtWindowStart(t *testing.T) {
	c := &clock{t: base}
	l, _ := newLimiter(c)
	l.Allow(context.Background(), "k", 1, time.Minute)
	r := l.Allow(context.Background(), "k", 1, time.Minute)
	if r.Allowed || r.RetryAfter != time.Minute {
		t.Errorf("%+v; want refused with RetryAfter 1m (never more than the window)", r)
	}
}

func TestLimiterConcurrentAllowsExactlyLimit(t *testing.T) {
	c := &clock{t: base}
	l, _ := newLimiter(c)
	const limit, callers = 25, 200
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		allowed int
	)
	for range callers {
		wg.Go(func() {
			if l.Allow(context.Background(), "k", limit, time.Minute).Allowed {
				mu.Lock()
				allowed++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if allowed != limit {
		t.Errorf("%d of %d concurrent requests allowed, want %d", allowed, callers, limit)
	}
}

// failingCounter stands in for an unreachable shared backend (Redis).
type failingCounter struct{ err error }

func (f failingCounter) Incr(context.Context, string, time.Duration) (int, time.Time, error) {
	return 0, time.Time{}, f.err
}

func (f failingCounter) Count(context.Context, string, time.Duration) (int, time.Time, error) {
	return 0, time.Time{}, f.err
}

func (f failingCounter) Reset(context.Context, string, time.Duration) error { return f.err }
func (f failingCounter) Decr(context.Context, string, time.Duration) error  { return f.err }

func TestLimiterFailsOpen(t *testing.T) {
	boom := errors.New("redis: connection refused")
	l := NewLimiter(failingCounter{boom})
	var got []error
	l.OnError = func(err error) { got = append(got, err) }
	for range 5 {
		r := l.Allow(context.Background(), "k", 1, time.Minute)
		if !r.Allowed || r.Remaining != 1 || r.Limit != 1 || r.RetryAfter != 0 {
			t.Errorf("Allow with a failing counter = %+v, want allowed", r)
		}
	}
	if len(got) != 5 || !errors.Is(got[0], boom) {
		t.Errorf("OnError got %v, want the counter's error 5 times", got)
	}
}

func TestLimiterDefaultOnErrorDoesNotPanic(t *testing.T) {
	l := NewLimiter(failingCounter{errors.New("down")})
	if r := l.Allow(context.Background(), "k", 1, time.Minute); !r.Allowed {
		t.Errorf("Allow = %+v, want allowed", r)
	}
}

func newThrottle(c *clock, m Counter, max int, window time.Duration) *Throttle {
	th := NewThrottle(m, max, window)
	th.now = c.now
	return th
}

func TestThrottle(t *testing.T) {
	c := &clock{t: base.Add(5 * time.Minute)}
	m := newMemory(c)
	const w = 15 * time.Minute
	th := newThrottle(c, m, 3, w)
	ctx := context.Background()

	blocked := func(account string) (time.Duration, bool) {
		t.Helper()
		return th.Blocked(ctx, account)
	}
	if _, b := blocked("alice@example.com"); b {
		t.Fatal("blocked before any failure")
	}
	th.Fail(ctx, "alice@example.com")
	th.Fail(ctx, "alice@example.com")
	if _, b := blocked("alice@example.com"); b {
		t.Fatal("blocked after 2 of 3 failures")
	}
	th.Fail(ctx, "alice@example.com")
	d, b := blocked("alice@example.com")
	if !b || d != 10*time.Minute {
		t.Fatalf("after 3 failures: Blocked = %v, %v; want true, 10m (until the window ends)", d, b)
	}
	// Checking does not count as a failure, and stays blocked.
	if d, b := blocked("alice@example.com"); !b || d != 10*time.Minute {
		t.Errorf("second check: %v, %v", d, b)
	}

	// Other accounts are unaffected.
	if _, b := blocked("bob@example.com"); b {
		t.Error("bob blocked by alice's failures")
	}
	// A rate-limit key spelled like the account does not collide.
	if n, _ := incr(t, m, "bob@example.com", w); n != 1 {
		t.Errorf("plain key shares the throttle's count: %d", n)
	}
	for range 5 {
		incr(t, m, "bob@example.com", w)
	}
	if _, b := blocked("bob@example.com"); b {
		t.Error("bob blocked by an unrelated counter key")
	}

	// A successful login resets.
	th.Reset(ctx, "alice@example.com")
	if _, b := blocked("alice@example.com"); b {
		t.Error("still blocked after Reset")
	}
	th.Fail(ctx, "alice@example.com")
	if _, b := blocked("alice@example.com"); b {
		t.Error("blocked after one failure following Reset")
	}

	// The next window forgets.
	th.Fail(ctx, "carol@example.com")
	th.Fail(ctx, "carol@example.com")
	th.Fail(ctx, "carol@example.com")
	if _, b := blocked("carol@example.com"); !b {
		t.Fatal("carol not blocked after 3 failures")
	}
	c.set(base.Add(w))
	if _, b := blocked("carol@example.com"); b {
		t.Error("carol still blocked in the next window")
	}
}

func TestThrottleFailsOpen(t *testing.T) {
	boom := errors.New("redis: timeout")
	th := NewThrottle(failingCounter{boom}, 1, time.Minute)
	var got []error
	th.OnError = func(err error) { got = append(got, err) }
	ctx := context.Background()
	th.Fail(ctx, "a")
	if d, b := th.Blocked(ctx, "a"); b || d != 0 {
		t.Errorf("Blocked with a failing counter = %v, %v; want 0, false", d, b)
	}
	th.Reset(ctx, "a")
	if len(got) != 3 {
		t.Fatalf("OnError called %d times, want 3 (Fail, Blocked, Reset)", len(got))
	}
	for _, err := range got {
		if !errors.Is(err, boom) {
			t.Errorf("OnError got %v, want %v", err, boom)
		}
	}
}

func TestLimiterRefund(t *testing.T) {
	ctx := context.Background()
	l, _ := newLimiter(&clock{t: base})
	for range 3 {
		if !l.Allow(ctx, "k", 3, time.Minute).Allowed {
			t.Fatal("refused within the limit")
		}
	}
	if l.Allow(ctx, "k", 3, time.Minute).Allowed {
		t.Fatal("fourth request allowed")
	}
	// The refused request and one allowed request are given back: one more fits.
	l.Refund(ctx, "k", time.Minute)
	l.Refund(ctx, "k", time.Minute)
	if !l.Allow(ctx, "k", 3, time.Minute).Allowed {
		t.Fatal("refund did not free a slot")
	}
	if l.Allow(ctx, "k", 3, time.Minute).Allowed {
		t.Fatal("refund freed more than it gave back")
	}
	// Refunding an unknown key never goes below zero.
	l.Refund(ctx, "fresh", time.Minute)
	for range 2 {
		l.Allow(ctx, "fresh", 2, time.Minute)
	}
	if l.Allow(ctx, "fresh", 2, time.Minute).Allowed {
		t.Fatal("a refund before any request created credit")
	}
}
