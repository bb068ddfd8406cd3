package httpapi_test

// End-to-end benchmarks of the hot endpoints over real HTTP (httptest
// server, the real wiring from app.New, a private database per engine), and
// a yardstick: a bare net/http handler returning a small JSON body, called
// through the same client. The difference is what the service itself costs:
// routing, middleware, validation, the database and token work.
//
// BCRYPT_COST=4 is set for every service here so that BenchmarkLogin
// measures the service and not bcrypt; the cost of the production hash is
// measured by the benchmarks in internal/password.

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/apitest"
	"github.com/gatehouse-dev/gatehouse/internal/dbtest"
	"github.com/gatehouse-dev/gatehouse/internal/oauth"
)

// benchOnEachEngine runs fn as one sub-benchmark per engine, each with its
// own service.
func benchOnEachEngine(b *testing.B, fn func(b *testing.B, e *apitest.Env), opts ...apitest.Option) {
	for _, engine := range dbtest.Engines(b) {
		b.Run(string(engine), func(b *testing.B) {
			fn(b, apitest.New(b, engine, append([]apitest.Option{apitest.WithEnv("BCRYPT_COST", "4")}, opts...)...))
		})
	}
}

func benchWant(b *testing.B, r apitest.Response, status int, what string) {
	b.Helper()
	if r.Status != status {
		b.Fatalf("%s: status %d, want %d: %s", what, r.Status, status, r.Body)
	}
}

func BenchmarkLogin(b *testing.B) {
	benchOnEachEngine(b, func(b *testing.B, e *apitest.Env) {
		e.Register("bench-login@example.com")
		body := map[string]any{"email": "bench-login@example.com", "password": apitest.Password}
		b.ReportAllocs()
		for b.Loop() {
			benchWant(b, e.Post("/api/v1/auth/login", "", body), http.StatusOK, "login")
		}
	})
}

// BenchmarkRefresh rotates one session's refresh token: each iteration
// presents the token the previous one received.
func BenchmarkRefresh(b *testing.B) {
	benchOnEachEngine(b, func(b *testing.B, e *apitest.Env) {
		refresh := e.User("bench-refresh@example.com").Refresh
		b.ReportAllocs()
		for b.Loop() {
			r := e.Post("/api/v1/auth/refresh", "", map[string]any{"refresh_token": refresh})
			benchWant(b, r, http.StatusOK, "refresh")
			next, _ := r.JSON(b)["refresh_token"].(string)
			if next == "" || next == refresh {
				b.Fatalf("refresh returned no new refresh token: %s", r.Body)
			}
			refresh = next
		}
	})
}

func BenchmarkUsersMe(b *testing.B) {
	benchOnEachEngine(b, func(b *testing.B, e *apitest.Env) {
		access := e.User("bench-me@example.com").Access
		b.ReportAllocs()
		for b.Loop() {
			benchWant(b, e.Get("/api/v1/users/me", access), http.StatusOK, "users/me")
		}
	})
}

func BenchmarkSessionsMe(b *testing.B) {
	benchOnEachEngine(b, func(b *testing.B, e *apitest.Env) {
		e.Register("bench-sessions@example.com")
		// A few devices, so the listing has something to sort.
		var access string
		for range 3 {
			access = e.Login("bench-sessions@example.com", apitest.Password).Access
		}
		b.ReportAllocs()
		for b.Loop() {
			benchWant(b, e.Get("/api/v1/sessions/me", access), http.StatusOK, "sessions/me")
		}
	})
}

// BenchmarkYardstickJSON is a bare handler with a small JSON body behind its
// own httptest.Server, called through apitest's client exactly like the
// service above.
func BenchmarkYardstickJSON(b *testing.B) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"success":true,"message":"ok"}`)
	})
	srv := httptest.NewServer(h)
	b.Cleanup(srv.Close)
	e := &apitest.Env{T: b, Server: srv}
	b.ReportAllocs()
	for b.Loop() {
		benchWant(b, e.Get("/", ""), http.StatusOK, "yardstick")
	}
}

// benchProvider is a confidential client with one grant for a user, made
// through the real code flow with PKCE, with scope as asked for.
func benchProvider(b *testing.B, e *apitest.Env, scope string) (oaClient, oaTokens) {
	admin := e.Superuser(oaAdminEmail)
	alice := e.User("bench-provider@example.com")
	c := oaNewClient(b, e, admin.Access, oauth.Confidential, "openid profile email read:users")
	return c, oaFlow(b, e, c, alice.Access, url.Values{"scope": {scope}})
}

// BenchmarkProviderRefresh rotates one grant's refresh token at the
// authorization server's token endpoint, with a scope an MCP client asks
// for (no ID token) and with openid (an RS256 ID token on every refresh).
func BenchmarkProviderRefresh(b *testing.B) {
	for _, scope := range []string{"read:users", "openid"} {
		b.Run(strings.ReplaceAll(scope, ":", "-"), func(b *testing.B) {
			benchOnEachEngine(b, func(b *testing.B, e *apitest.Env) {
				c, tok := benchProvider(b, e, scope)
				refresh := tok.RefreshToken
				b.ReportAllocs()
				for b.Loop() {
					next := oaOK(b, oaRefresh(e, c, refresh, nil))
					if next.RefreshToken == refresh {
						b.Fatal("refresh token not rotated")
					}
					refresh = next.RefreshToken
				}
			}, oaOn())
		})
	}
}

// BenchmarkProviderIntrospect introspects a live provider access token as
// the confidential client that holds it.
func BenchmarkProviderIntrospect(b *testing.B) {
	benchOnEachEngine(b, func(b *testing.B, e *apitest.Env) {
		c, tok := benchProvider(b, e, "read:users")
		b.ReportAllocs()
		for b.Loop() {
			r := oaIntrospect(e, c, tok.AccessToken)
			benchWant(b, r, http.StatusOK, "introspect")
			if !bytes.Contains(r.Body, []byte(`"active":true`)) {
				b.Fatalf("token not active: %s", r.Body)
			}
		}
	}, oaOn())
}

// BenchmarkRefreshParallel rotates 16 sessions' refresh tokens at once (as
// many workers as loadgen's default connections): on SQLite the write
// transactions contend for the one write lock.
func BenchmarkRefreshParallel(b *testing.B) {
	benchOnEachEngine(b, func(b *testing.B, e *apitest.Env) {
		const workers = 16
		chains := make(chan string, workers)
		for i := range workers {
			chains <- e.User(fmt.Sprintf("bench-refresh-%d@example.com", i)).Refresh
		}
		b.SetParallelism((workers + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			refresh := <-chains
			for pb.Next() {
				r := e.Post("/api/v1/auth/refresh", "", map[string]any{"refresh_token": refresh})
				if r.Status != http.StatusOK {
					b.Errorf("refresh: status %d: %s", r.Status, r.Body)
					return
				}
				refresh, _ = r.JSON(b)["refresh_token"].(string)
			}
		})
	})
}
