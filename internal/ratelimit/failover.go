package ratelimit

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Failover counts in a shared Counter (Redis, so that several instances
// enforce one limit) and, while that fails, in a local one: limits then hold
// per instance instead of across the cluster, which is looser but never
// refuses or slows a request because Redis is away. Authentication does not
// depend on it either way.
//
// It behaves like a circuit breaker: a failed call switches to the local
// counter for Backoff; then one call at a time tries the shared counter again
// (the others keep counting locally) until one succeeds. An outage is logged
// once when it starts and once when it ends, not per request.
type Failover struct {
	shared Counter
	local  Counter
	logger *slog.Logger
	// Timeout bounds each call to the shared counter, dialling included, so an
	// unreachable Redis costs a request at most this much, and only the few
	// requests that probe it.
	Timeout time.Duration
	// Backoff is how long the local counter is used after a failure before
	// the shared one is tried again.
	Backoff time.Duration
	now     func() time.Time

	mu      sync.Mutex
	down    bool      // an outage is in progress (and was logged)
	retryAt time.Time // while down: when the shared counter may be tried again
	probing bool      // while down: a call is trying the shared counter
}

// The defaults of Failover: a Redis on the local network answers within a
// millisecond or two, so 200 ms means it is in trouble; a second of backoff
// keeps a dead Redis from costing more than one probe per second.
const (
	DefaultTimeout = 200 * time.Millisecond
	DefaultBackoff = time.Second
)

// NewFailover returns a Counter using shared while it works and local while
// it does not.
func NewFailover(shared, local Counter, logger *slog.Logger) *Failover {
	return &Failover{shared: shared, local: local, logger: logger, Timeout: DefaultTimeout, Backoff: DefaultBackoff, now: time.Now}
}

// Incr implements Counter.
func (f *Failover) Incr(ctx context.Context, key string, window time.Duration) (int, time.Time, error) {
	var (
		n   int
		end time.Time
	)
	err := f.do(ctx, func(ctx context.Context, c Counter) (err error) {
		n, end, err = c.Incr(ctx, key, window)
		return err
	})
	return n, end, err
}

// Count implements Counter.
func (f *Failover) Count(ctx context.Context, key string, window time.Duration) (int, time.Time, error) {
	var (
		n   int
		end time.Time
	)
	err := f.do(ctx, func(ctx context.Context, c Counter) (err error) {
		n, end, err = c.Count(ctx, key, window)
		return err
	})
	return n, end, err
}

// Decr implements Counter.
func (f *Failover) Decr(ctx context.Context, key string, window time.Duration) error {
	return f.do(ctx, func(ctx context.Context, c Counter) error { return c.Decr(ctx, key, window) })
}

// Reset implements Counter.
func (f *Failover) Reset(ctx context.Context, key string, window time.Duration) error {
	return f.do(ctx, func(ctx context.Context, c Counter) error { return c.Reset(ctx, key, window) })
}

// do runs op on the shared counter when it is usable, and on the local one
// when it is not or fails.
func (f *Failover) do(ctx context.Context, op func(context.Context, Counter) error) error {
	if f.tryShared() {
		sctx, cancel := context.WithTimeout(ctx, f.Timeout)
		err := op(sctx, f.shared)
		cancel()
		if f.record(ctx, err) {
			return nil
		}
	}
	return op(ctx, f.local)
}

// tryShared reports whether this call should use the shared counter.
func (f *Failover) tryShared() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.down {
		return true
	}
	if f.probing || f.now().Before(f.retryAt) {
		return false
	}
	f.probing = true
	return true
}

// record notes the outcome of a call to the shared counter and reports
// whether it succeeded.
func (f *Failover) record(ctx context.Context, err error) bool {
	f.mu.Lock()
	f.probing = false
	switch {
	case err == nil:
		recovered := f.down
		f.down = false
		f.mu.Unlock()
		if recovered {
			f.logger.Info("rate limits: Redis answers again; counting across instances in Redis")
		}
		return true
	case ctx.Err() != nil:
		// The request was cancelled or timed out by its caller: that says
		// nothing about Redis.
		f.mu.Unlock()
		return false
	}
	started := !f.down
	f.down, f.retryAt = true, f.now().Add(f.Backoff)
	f.mu.Unlock()
	if started {
		f.logger.Warn("rate limits: Redis is unreachable; counting in this instance's memory until it answers again",
			"err", err, "retry_every", f.Backoff.String())
	}
	return false
}
