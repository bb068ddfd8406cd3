package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a Counter shared by every instance using the same Redis server
// and key prefix. It keeps Memory's algorithm: one key per counted key,
// window size and window index (computed from this instance's clock, so
// instances agree as far as their clocks do), which expires after its
// window.
type Redis struct {
	client     *redis.Client
	prefix     string
	incr, decr *redis.Script
	now        func() time.Time
}

// expiryMargin keeps a window's key a little past the window's end, so a
// Redis clock slightly ahead of this instance's cannot expire a count that
// is still being read; past windows are never read again anyway.
const expiryMargin = 5 * time.Second

// NewRedis connects (lazily: nothing is dialled before the first command)
// to the server named by rawURL, a redis://, rediss:// or unix:// URL as
// go-redis parses it, and counts under keys starting with prefix.
func NewRedis(rawURL, prefix string) (*Redis, error) {
	opts, err := redis.ParseURL(rawURL)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // url.Error repeats the URL, password included
		}
		return nil, fmt.Errorf("REDIS_URL: %w", err)
	}
	// The caller's deadline must bound every command, dialling included:
	// Failover gives Redis a fraction of a second before counting locally.
	// One attempt per command, one dial per attempt: Failover's back-off
	// replaces the client's retries, which would only spend that fraction
	// waiting (and log each failed dial).
	opts.ContextTimeoutEnabled = true
	opts.MaxRetries = -1
	opts.DialerRetries = 1
	return &Redis{client: redis.NewClient(opts), prefix: prefix,
		incr: redis.NewScript(incrScript), decr: redis.NewScript(decrScript), now: time.Now}, nil
}

// Close closes the connections to Redis.
func (r *Redis) Close() error { return r.client.Close() }

// Ping checks that the server answers (the readiness probe); the caller's
// deadline bounds it, dialling included.
func (r *Redis) Ping(ctx context.Context) error {
	if err := r.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis ping: %w", err)
	}
	return nil
}

// key names the count of key in the window containing now.
func (r *Redis) key(key string, window time.Duration) (string, time.Time) {
	idx, end := windowOf(r.now(), window)
	return r.prefix + "rl:" + strconv.FormatInt(window.Milliseconds(), 10) + ":" + strconv.FormatInt(idx, 10) + ":" + key, end
}

// incrScript adds one and (re)sets the expiry in one atomic step, so a
// count can never be left without one.
const incrScript = `
local n = redis.call('INCR', KEYS[1])
redis.call('PEXPIREAT', KEYS[1], ARGV[1])
return n`

// decrScript takes one back, never below zero: the last one deletes the key.
const decrScript = `
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n > 1 then return redis.call('DECR', KEYS[1]) end
if n == 1 then redis.call('DEL', KEYS[1]) end
return 0`

// Incr implements Counter.
func (r *Redis) Incr(ctx context.Context, key string, window time.Duration) (int, time.Time, error) {
	k, end := r.key(key, window)
	n, err := r.incr.Run(ctx, r.client, []string{k}, end.Add(expiryMargin).UnixMilli()).Int()
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("redis incr: %w", err)
	}
	return n, end, nil
}

// Count implements Counter.
func (r *Redis) Count(ctx context.Context, key string, window time.Duration) (int, time.Time, error) {
	k, end := r.key(key, window)
	n, err := r.client.Get(ctx, k).Int()
	if errors.Is(err, redis.Nil) {
		return 0, end, nil
	}
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("redis count: %w", err)
	}
	return n, end, nil
}

// Decr implements Counter.
func (r *Redis) Decr(ctx context.Context, key string, window time.Duration) error {
	k, _ := r.key(key, window)
	if err := r.decr.Run(ctx, r.client, []string{k}).Err(); err != nil {
		return fmt.Errorf("redis decr: %w", err)
	}
	return nil
}

// Reset implements Counter.
func (r *Redis) Reset(ctx context.Context, key string, window time.Duration) error {
	k, _ := r.key(key, window)
	if err := r.client.Del(ctx, k).Err(); err != nil {
		return fmt.Errorf("redis reset: %w", err)
	}
	return nil
}
