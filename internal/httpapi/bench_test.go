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
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/apitest"
	"github.com/gatehouse-dev/gatehouse/internal/dbtest"
)

// benchOnEachEngine runs fn as one sub-benchmark per engine, each with its
// own service.
func benchOnEachEngine(b *testing.B, fn func(b *testing.B, e *apitest.Env)) {
	for _, engine := range dbtest.Engines(b) {
		b.Run(string(engine), func(b *testing.B) {
			fn(b, apitest.New(b, engine, apitest.WithEnv("BCRYPT_COST", "4")))
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
