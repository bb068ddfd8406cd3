// Package ratelimit counts requests in fixed windows: per client IP per
// endpoint for the API's limits, and failed logins per account. The counting
// backend is a Counter, in memory by default; a shared backend lets several
// instances enforce one limit.
package ratelimit

import (
	"context"
	"sync"
	"time"
)

// Counter counts events per key in fixed time windows aligned to the clock.
type Counter interface {
	// Incr adds one to key's count in the current window and returns the new
	// count and when the window ends.
	Incr(ctx context.Context, key string, window time.Duration) (int, time.Time, error)
	// Count returns key's count in the current window without changing it.
	Count(ctx context.Context, key string, window time.Duration) (int, time.Time, error)
	// Decr takes one back from key's count in the current window (never
	// below zero).
	Decr(ctx context.Context, key string, window time.Duration) error
	// Reset forgets key's count in the current window.
	Reset(ctx context.Context, key string, window time.Duration) error
}

// windowOf returns the index and end of the window containing now.
func windowOf(now time.Time, window time.Duration) (int64, time.Time) {
	idx := now.UnixNano() / int64(window)
	return idx, time.Unix(0, (idx+1)*int64(window))
}

// Memory is an in-process Counter.
type Memory struct {
	mu      sync.Mutex
	counts  map[memKey]int
	ops     int
	now     func() time.Time
	maxKeys int
}

type memKey struct {
	key string
	idx int64
	win time.Duration
}

// NewMemory returns an empty in-memory counter.
func NewMemory() *Memory {
	return &Memory{counts: map[memKey]int{}, now: time.Now, maxKeys: 1 << 20}
}

// Incr implements Counter.
func (m *Memory) Incr(_ context.Context, key string, window time.Duration) (int, time.Time, error) {
	idx, end := windowOf(m.now(), window)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweep()
	k := memKey{key, idx, window}
	m.counts[k]++
	return m.counts[k], end, nil
}

// Count implements Counter.
func (m *Memory) Count(_ context.Context, key string, window time.Duration) (int, time.Time, error) {
	idx, end := windowOf(m.now(), window)
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.counts[memKey{key, idx, window}], end, nil
}

// Decr implements Counter.
func (m *Memory) Decr(_ context.Context, key string, window time.Duration) error {
	idx, _ := windowOf(m.now(), window)
	m.mu.Lock()
	defer m.mu.Unlock()
	k := memKey{key, idx, window}
	if m.counts[k] > 1 {
		m.counts[k]--
	} else {
		delete(m.counts, k)
	}
	return nil
}

// Reset implements Counter.
func (m *Memory) Reset(_ context.Context, key string, window time.Duration) error {
	idx, _ := windowOf(m.now(), window)
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.counts, memKey{key, idx, window})
	return nil
}

// sweep drops counts of past windows now and then, bounding memory.
func (m *Memory) sweep() {
	m.ops++
	if m.ops < 4096 && len(m.counts) < m.maxKeys {
		return
	}
	m.ops = 0
	now := m.now()
	for k := range m.counts {
		if idx, _ := windowOf(now, k.win); k.idx < idx {
			delete(m.counts, k)
		}
	}
}

// Result is the outcome of one rate-limit check.
type Result struct {
	Allowed    bool
	Limit      int
	Remaining  int
	RetryAfter time.Duration // until the window ends, when not allowed
	Reset      time.Time
}

// Limiter applies "limit events per window" to keys.
type Limiter struct {
	counter Counter
	now     func() time.Time
	// OnError is told when the counter fails; the request is then allowed
	// (rate limits fail open, authentication never does).
	OnError func(error)
}

// NewLimiter returns a Limiter over counter.
func NewLimiter(counter Counter) *Limiter {
	return &Limiter{counter: counter, now: time.Now, OnError: func(error) {}}
}

// Allow counts one event for key and reports whether it is within limit.
func (l *Limiter) Allow(ctx context.Context, key string, limit int, window time.Duration) Result {
	n, end, err := l.counter.Incr(ctx, key, window)
	if err != nil {
		l.OnError(err)
		return Result{Allowed: true, Limit: limit, Remaining: limit}
	}
	r := Result{Allowed: n <= limit, Limit: limit, Remaining: max(limit-n, 0), Reset: end}
	if !r.Allowed {
		r.RetryAfter = end.Sub(l.now())
	}
	return r
}

// Refund gives back the event counted by Allow for key, for requests that
// turned out invalid (the reference counts only requests that pass
// validation).
func (l *Limiter) Refund(ctx context.Context, key string, window time.Duration) {
	if err := l.counter.Decr(ctx, key, window); err != nil {
		l.OnError(err)
	}
}

// Throttle limits failed logins per account: after max failures within a
// window, further attempts are refused until the window ends.
type Throttle struct {
	counter Counter
	max     int
	window  time.Duration
	now     func() time.Time
	OnError func(error)
}

// NewThrottle returns a Throttle allowing max failures per window.
func NewThrottle(counter Counter, max int, window time.Duration) *Throttle {
	return &Throttle{counter: counter, max: max, window: window, now: time.Now, OnError: func(error) {}}
}

func throttleKey(account string) string { return "login-failures:" + account }

// Blocked reports whether the account is throttled and for how long.
func (t *Throttle) Blocked(ctx context.Context, account string) (time.Duration, bool) {
	n, end, err := t.counter.Count(ctx, throttleKey(account), t.window)
	if err != nil {
		t.OnError(err)
		return 0, false
	}
	if n >= t.max {
		return end.Sub(t.now()), true
	}
	return 0, false
}

// Fail records a failed login.
func (t *Throttle) Fail(ctx context.Context, account string) {
	if _, _, err := t.counter.Incr(ctx, throttleKey(account), t.window); err != nil {
		t.OnError(err)
	}
}

// Reset clears the account's failures after a successful login.
func (t *Throttle) Reset(ctx context.Context, account string) {
	if err := t.counter.Reset(ctx, throttleKey(account), t.window); err != nil {
		t.OnError(err)
	}
}
