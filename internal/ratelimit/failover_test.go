package ratelimit

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/redistest"
)

// The failover counter against real network conditions: a closed port
// (connections refused), a server that accepts and never answers, and a
// redis-server of the test's own that is killed and started again.

// logBuffer collects log output safely across goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), s)
}

const (
	logDown = "Redis is unreachable"
	logUp   = "Redis answers again"
)

// newFailover returns a Failover over the Redis at url and a local Memory,
// its breaker timed by c. The local counter's clock stands still at the
// start of an hour: counts a test expects in one window stay in one, however
// the test's requests fall on the real clock.
func newFailover(t *testing.T, url string, c *clock) (*Failover, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	local := NewMemory()
	local.now = (&clock{t: futureBase()}).now
	f := NewFailover(newRedis(t, url, "gatehouse:"), local, slog.New(slog.NewTextHandler(logs, nil)))
	f.now = c.now
	return f, logs
}

// With Redis down, every request is counted locally, at once, and limits
// still hold per instance; the outage is logged once, however many requests
// and probes fail.
func TestFailoverCountsLocallyWhileRedisIsUnreachable(t *testing.T) {
	c := &clock{t: time.Now()}
	f, logs := newFailover(t, fmt.Sprintf("redis://127.0.0.1:%d/0", redistest.FreePort(t)), c)
	ctx := context.Background()
	start := time.Now()
	for want := 1; want <= 20; want++ {
		n, end, err := f.Incr(ctx, "k", time.Minute)
		if err != nil || n != want || end.IsZero() {
			t.Fatalf("Incr #%d = %d, %v, %v; want %d from the local counter", want, n, end, err, want)
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("20 requests took %v with Redis down, want them not slowed", d)
	}
	// Probes after each backoff fail too: still one warning.
	for range 3 {
		c.set(c.now().Add(f.Backoff + time.Millisecond))
		if n, _, err := f.Incr(ctx, "k", time.Minute); err != nil || n < 21 {
			t.Fatalf("Incr after the backoff = %d, %v", n, err)
		}
	}
	if got := logs.count(logDown); got != 1 {
		t.Errorf("outage logged %d times, want once", got)
	}
	if got := logs.count(logUp); got != 0 {
		t.Errorf("recovery logged %d times while Redis is still down", got)
	}

	l := NewLimiter(f)
	l.now = f.local.(*Memory).now
	for i := range 4 {
		r := l.Allow(ctx, "login:203.0.113.7", 3, time.Minute)
		if r.Allowed != (i < 3) {
			t.Fatalf("request %d: %+v; local limits must still hold", i+1, r)
		}
		if !r.Allowed && (r.RetryAfter <= 0 || r.Reset.IsZero()) {
			t.Fatalf("refused without Retry-After: %+v", r)
		}
	}
}

// A Redis that accepts connections and never answers costs a request at
// most the timeout, and the requests that follow within the backoff nothing.
func TestFailoverTimeoutBoundsAHangingRedis(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var accepted atomic.Int32
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			go func() { // read and never answer, until the client hangs up
				buf := make([]byte, 1024)
				for {
					if _, err := conn.Read(buf); err != nil {
						conn.Close()
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close() })

	c := &clock{t: time.Now()}
	f, logs := newFailover(t, "redis://"+ln.Addr().String()+"/0", c)
	f.Timeout = 100 * time.Millisecond
	ctx := context.Background()

	start := time.Now()
	if n, _, err := f.Incr(ctx, "k", time.Minute); err != nil || n != 1 {
		t.Fatalf("Incr = %d, %v; want 1 from the local counter", n, err)
	}
	if d := time.Since(start); d < f.Timeout || d > f.Timeout+400*time.Millisecond {
		t.Errorf("the first request took %v, want about the timeout (%v)", d, f.Timeout)
	}
	tried := accepted.Load()
	start = time.Now()
	for range 50 {
		if _, _, err := f.Incr(ctx, "k", time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("50 requests within the backoff took %v, want no waiting", d)
	}
	if accepted.Load() != tried {
		t.Errorf("Redis was tried again within the backoff")
	}
	if got := count(t, f, "k", time.Minute); got != 51 {
		t.Errorf("Count = %d, want 51", got)
	}
	if got := logs.count(logDown); got != 1 {
		t.Errorf("outage logged %d times, want once", got)
	}
}

// A request cancelled by its client says nothing about Redis: no outage.
func TestFailoverCancelledRequestIsNotAnOutage(t *testing.T) {
	c := &clock{t: time.Now()}
	f, logs := newFailover(t, fmt.Sprintf("redis://127.0.0.1:%d/0", redistest.FreePort(t)), c)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := f.Incr(ctx, "k", time.Minute); err != nil {
		t.Fatal(err)
	}
	if logs.count(logDown) != 0 || !f.tryShared() {
		t.Fatal("a cancelled request opened the breaker")
	}
	if _, _, err := f.Incr(context.Background(), "k", time.Minute); err != nil {
		t.Fatal(err)
	}
	if logs.count(logDown) != 1 {
		t.Fatal("a refused connection was not taken for an outage")
	}
}

// Redis killed while requests flow: nothing fails, counting goes local;
// Redis started again: after the backoff the counts are in Redis again,
// and both transitions are logged once.
func TestFailoverReturnsToRedis(t *testing.T) {
	srv := redistest.Start(t)
	c := &clock{t: time.Now()}
	f, logs := newFailover(t, srv.URL(), c)
	// Another instance's view of Redis, to see where counts land.
	direct := newRedis(t, srv.URL(), "gatehouse:")
	const w = time.Hour
	window := &clock{t: futureBase()}
	f.shared.(*Redis).now, direct.now = window.now, window.now

	incr(t, f, "k", w)
	incr(t, f, "k", w)
	if got := count(t, direct, "k", w); got != 2 {
		t.Fatalf("Redis count = %d, want 2", got)
	}

	srv.Stop()
	for want := 1; want <= 3; want++ {
		if n, _ := incr(t, f, "k", w); n != want {
			t.Errorf("Incr with Redis down = %d, want %d (the local counter)", n, want)
		}
	}
	if logs.count(logDown) != 1 {
		t.Fatalf("outage logged %d times, want once", logs.count(logDown))
	}

	srv.Restart()
	// Within the backoff: still local.
	if n, _ := incr(t, f, "k", w); n != 4 {
		t.Errorf("Incr within the backoff = %d, want 4 (local)", n)
	}
	if got := count(t, direct, "k", w); got != 0 {
		t.Errorf("Redis count within the backoff = %d, want 0 (a fresh server)", got)
	}
	// After it, the next request probes Redis and counting goes back there.
	c.set(c.now().Add(f.Backoff + time.Millisecond))
	var n int
	for range 20 { // the client may need a try or two to drop dead connections
		n, _ = incr(t, f, "k", w)
		if logs.count(logUp) == 1 {
			break
		}
		c.set(c.now().Add(f.Backoff + time.Millisecond))
	}
	if logs.count(logUp) != 1 {
		t.Fatalf("recovery logged %d times, want once:\n%s", logs.count(logUp), logs.b.String())
	}
	if n != 1 {
		t.Errorf("first Incr back in Redis = %d, want 1", n)
	}
	incr(t, f, "k", w)
	if got := count(t, direct, "k", w); got != 2 {
		t.Errorf("Redis count after recovery = %d, want 2", got)
	}
	if logs.count(logDown) != 1 {
		t.Errorf("outage logged %d times in all, want once", logs.count(logDown))
	}
}
