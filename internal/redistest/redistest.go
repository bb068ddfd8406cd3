// Package redistest gives tests a real Redis: the shared server named by
// TEST_REDIS_URL, with a key prefix private to the test, or a redis-server
// process owned by the test, which it can stop and start again.
//
// Like dbtest with PostgreSQL: without TEST_REDIS_URL the tests that need
// Redis are skipped; once it is set, a Redis that cannot be reached (or a
// missing redis-server binary) fails them, so CI cannot go green without it.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// EnvRedis names the URL of the test Redis server.
const EnvRedis = "TEST_REDIS_URL"

// Shared returns TEST_REDIS_URL and a key prefix private to the test. The
// keys under the prefix are deleted when the test ends (never the whole
// database: other test packages use it at the same time).
func Shared(t testing.TB) (url, prefix string) {
	t.Helper()
	url = os.Getenv(EnvRedis)
	if url == "" {
		t.Skipf("%s is not set", EnvRedis)
	}
	c := Client(t, url)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("%s is set but Redis does not answer: %v", EnvRedis, err)
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	prefix = "gatehouse-test:" + hex.EncodeToString(b) + ":"
	t.Cleanup(func() {
		ctx := context.Background()
		iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			c.Del(ctx, iter.Val())
		}
	})
	return url, prefix
}

// Client returns a client of the server at url, closed when the test ends.
func Client(t testing.TB, url string) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("Redis URL: %v", err)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	return c
}

// Keys returns the keys under prefix on c's server.
func Keys(t testing.TB, c *redis.Client, prefix string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var out []string
	iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		out = append(out, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatalf("scan %s*: %v", prefix, err)
	}
	return out
}

// Server is a redis-server process owned by one test, on a loopback port of
// its own, without persistence.
type Server struct {
	t    testing.TB
	port int
	dir  string

	mu  sync.Mutex
	cmd *exec.Cmd
}

// Start runs redis-server on a free loopback port; it is stopped when the
// test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv(EnvRedis) != "" {
			t.Fatalf("%s is set but redis-server is not installed: %v", EnvRedis, err)
		}
		t.Skip("redis-server is not installed")
	}
	s := &Server{t: t, port: FreePort(t), dir: t.TempDir()}
	t.Cleanup(s.Stop)
	s.Restart()
	return s
}

// URL is the server's redis:// URL.
func (s *Server) URL() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", s.port) }

// Stop kills the server (a crash, not a shutdown) and waits for it to exit.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Restart starts the server again on the same port (empty: it keeps
// nothing) and waits until it answers.
func (s *Server) Restart() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		s.t.Fatal("redis-server is already running")
	}
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir, "--loglevel", "warning")
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start redis-server: %v", err)
	}
	s.cmd = cmd
	opts, _ := redis.ParseURL(s.URL())
	opts.MaxRetries = -1
	c := redis.NewClient(opts)
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("redis-server on port %d does not answer: %v", s.port, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// FreePort returns a loopback TCP port that nothing listens on (a closed
// port: connections to it are refused).
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}
