package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/gatehouse-dev/gatehouse/internal/apperr"
	"github.com/gatehouse-dev/gatehouse/internal/metrics"
)

type ctxKey int

const (
	keyRequestID ctxKey = iota
	keyClientIP
	keyActor
)

func requestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(keyRequestID).(string)
	return id
}

// ClientIP returns the client address computed by the trusted-proxy rule.
func ClientIP(ctx context.Context) string {
	ip, _ := ctx.Value(keyClientIP).(string)
	return ip
}

// requestID takes a well-formed X-Request-ID from the client or makes one,
// and echoes it in the response.
func requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-ID")
		if !validRequestID(id) {
			b := make([]byte, 12)
			_, _ = rand.Read(b)
			id = hex.EncodeToString(b)
		}
		w.Header().Set("X-Request-ID", id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), keyRequestID, id)))
	})
}

func validRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// statusWriter records the status and size of a response. Unwrap lets
// http.ResponseController reach the real writer (flushing for streams).
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += n
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// accessLog writes one line per request: id, method, route pattern (never
// the raw query, which may carry tokens), status, duration; and counts the
// request in m (nil: metrics are off) under its route pattern, except
// scrapes of /metrics itself.
func accessLog(logger *slog.Logger, m *metrics.Metrics) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			sw := &statusWriter{ResponseWriter: w}
			next.ServeHTTP(sw, r)
			elapsed := time.Since(start)
			var pattern string
			if rc := chi.RouteContext(r.Context()); rc != nil {
				pattern = rc.RoutePattern()
			}
			status := sw.status
			if status == 0 {
				status = http.StatusOK
			}
			if pattern != metricsPath {
				m.Request(r.Method, routeLabel(pattern), status, elapsed)
			}
			route := pattern
			if route == "" {
				route = r.URL.Path
			}
			logger.LogAttrs(r.Context(), slog.LevelInfo, "request",
				slog.String("request_id", requestIDFrom(r.Context())),
				slog.String("method", r.Method),
				slog.String("route", route),
				slog.Int("status", status),
				slog.Int("bytes", sw.bytes),
				slog.Duration("duration", elapsed),
				slog.String("client_ip", ClientIP(r.Context())),
			)
		})
	}
}

// recoverPanic turns a panic into a 500 envelope and logs the stack.
func (s *server) recoverPanic(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.logger.ErrorContext(r.Context(), "panic serving request", "panic", v,
				"request_id", requestIDFrom(r.Context()), "stack", string(debug.Stack()))
			writeEnvelope(w, newEnvelope(http.StatusInternalServerError, apperr.CodeInternal,
				"An internal error occurred. Please try again later.", ""))
		}()
		next.ServeHTTP(w, r)
	})
}

// The Content-Security-Policy values of reference §7.1.
const (
	cspDocs    = "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; font-src 'self' https://fonts.gstatic.com; img-src 'self' data: https://fastapi.tiangolo.com; frame-ancestors 'none'"
	cspStrict  = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
	cspRelaxed = "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval' https://cdn.jsdelivr.net https://unpkg.com https://cdnjs.cloudflare.com https://www.googletagmanager.com https://www.google-analytics.com; style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://unpkg.com https://cdnjs.cloudflare.com https://fonts.googleapis.com; font-src 'self' data: https://fonts.gstatic.com https://cdn.jsdelivr.net; img-src 'self' data: blob: https:; connect-src 'self' https://www.google-analytics.com https://analytics.google.com; media-src 'self' data: blob:; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)

// securityHeaders adds the headers of reference §7.1 to every response.
func securityHeaders(cspMode string, production bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h.Set("X-Frame-Options", "DENY")
			h.Set("X-Content-Type-Options", "nosniff")
			h.Set("X-XSS-Protection", "1; mode=block")
			h.Set("Permissions-Policy", "geolocation=(), microphone=(), camera=()")
			h.Set("Referrer-Policy", "strict-origin-when-cross-origin")
			if production {
				h.Set("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
			}
			if csp := cspFor(cspMode, r.URL.Path); csp != "" {
				h.Set("Content-Security-Policy", csp)
			}
			next.ServeHTTP(w, r)
		})
	}
}

func cspFor(mode, path string) string {
	switch {
	case mode == "disabled":
		return ""
	case path == "/docs" || path == "/redoc" || strings.HasPrefix(path, "/docs/") || strings.HasPrefix(path, "/redoc/"):
		return cspDocs
	case mode == "strict":
		return cspStrict
	}
	return cspRelaxed
}

// CORS settings of reference §7.2.
var (
	corsMethods = []string{"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
	corsHeaders = []string{"content-type", "authorization", "accept", "origin", "user-agent", "dnt",
		"cache-control", "x-requested-with", "x-device-id"}
)

// cors answers preflights and adds CORS headers for allowed origins.
func cors(origins []string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// Responses differ by Origin: caches must keep them apart.
			w.Header().Add("Vary", "Origin")
			origin := r.Header.Get("Origin")
			if origin == "" {
				next.ServeHTTP(w, r)
				return
			}
			if openCORS(r.URL.Path) {
				publicCORS(w, r, next)
				return
			}
			allowed := slices.Contains(origins, origin) || slices.Contains(origins, "*")
			reqMethod := r.Header.Get("Access-Control-Request-Method")
			if r.Method == http.MethodOptions && reqMethod != "" {
				preflight(w, r, origin, allowed, reqMethod)
				return
			}
			if allowed {
				h := w.Header()
				h.Set("Access-Control-Allow-Origin", origin)
				h.Set("Access-Control-Allow-Credentials", "true")
				h.Set("Access-Control-Expose-Headers", "Content-Length")
			}
			next.ServeHTTP(w, r)
		})
	}
}

func preflight(w http.ResponseWriter, r *http.Request, origin string, allowed bool, method string) {
	var failures []string
	if !allowed {
		failures = append(failures, "origin")
	}
	if !slices.Contains(corsMethods, strings.ToUpper(method)) {
		failures = append(failures, "method")
	}
	for _, hd := range strings.Split(r.Header.Get("Access-Control-Request-Headers"), ",") {
		hd = strings.ToLower(strings.TrimSpace(hd))
		if hd != "" && !slices.Contains(corsHeaders, hd) {
			failures = append(failures, "headers")
			break
		}
	}
	h := w.Header()
	if len(failures) > 0 {
		h.Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte("Disallowed CORS " + strings.Join(failures, ", ")))
		return
	}
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Credentials", "true")
	h.Set("Access-Control-Allow-Methods", strings.Join(corsMethods, ", "))
	h.Set("Access-Control-Allow-Headers", "Content-Type, Authorization, Accept, Origin, User-Agent, DNT, Cache-Control, X-Requested-With, X-Device-Id")
	h.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusOK)
}

// openCORS names the endpoints any web origin may call without
// credentials (RFC 9700 §2.6: metadata, JWKS, token, revocation,
// introspection, userinfo, registration), never the authorization endpoint.
// The MCP endpoint is one of them: it takes a bearer token on every request
// and no cookie, so browser-based MCP clients may call it from anywhere.
func openCORS(path string) bool {
	if strings.HasPrefix(path, "/.well-known/") || path == "/mcp" {
		return true
	}
	switch path {
	case "/token", "/register": // 2025-03-26 MCP default paths
		return true
	}
	switch strings.TrimPrefix(path, "/api/v1/oauth/provider") {
	case "/token", "/revoke", "/introspect", "/userinfo", "/register":
		return strings.HasPrefix(path, "/api/v1/oauth/provider/")
	}
	return false
}

// publicCORS allows any origin, without cookies.
func publicCORS(w http.ResponseWriter, r *http.Request, next http.Handler) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
		h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Accept, MCP-Protocol-Version, Mcp-Method, Mcp-Name")
		h.Set("Access-Control-Max-Age", "600")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	h.Set("Access-Control-Expose-Headers", "WWW-Authenticate")
	next.ServeHTTP(w, r)
}

// deadline bounds each request's context by d (DB_POOL_TIMEOUT): a request
// that waits that long for a database connection (or SQLite's write lock)
// gets 503 SYS_006 instead of queueing without end, and the database work
// of a request whose answer nobody can use any more stops. The MCP event
// stream (GET /mcp) is long-lived by design and is not bounded.
func deadline(d time.Duration) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if d <= 0 || (r.Method == http.MethodGet && r.URL.Path == mcpPath) {
				next.ServeHTTP(w, r)
				return
			}
			ctx, cancel := context.WithTimeout(r.Context(), d)
			defer cancel()
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}

// limitBody refuses bodies over max: early by Content-Length, and while
// reading for chunked or lying clients (fix 24). A malformed Content-Length
// is a 400, not a crash. A malformed query string is read as the reference
// reads it (literalQuery).
func limitBody(max int64) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, err := url.ParseQuery(r.URL.RawQuery); err != nil {
				r.URL.RawQuery = literalQuery(r.URL.RawQuery)
			}
			if cl := r.Header.Get("Content-Length"); cl != "" {
				n, err := strconv.ParseInt(strings.TrimSpace(cl), 10, 64)
				if err != nil || n < 0 {
					writeEnvelope(w, newEnvelope(http.StatusBadRequest, apperr.CodeInvalidInput, "Invalid Content-Length header", ""))
					return
				}
				if n > max {
					writeEnvelope(w, tooLarge(max))
					return
				}
			}
			if r.Body != nil && r.Body != http.NoBody {
				r.Body = http.MaxBytesReader(w, r.Body, max)
			}
			next.ServeHTTP(w, r)
		})
	}
}

// clientIP computes the client address once per request (first in the
// chain, so the access log and every later step see it): the TCP peer,
// unless the peer is a trusted proxy, in which case X-Forwarded-For is read
// from the right, skipping trusted proxies (fix 14). Rate limits and
// session records use the same value.
func clientIP(trusted []netip.Prefix) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ip := resolveClientIP(r, trusted)
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), keyClientIP, ip)))
		})
	}
}

func resolveClientIP(r *http.Request, trusted []netip.Prefix) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	peer = peer.Unmap()
	isTrusted := func(a netip.Addr) bool {
		return slices.ContainsFunc(trusted, func(p netip.Prefix) bool { return p.Contains(a) })
	}
	if !isTrusted(peer) {
		return peer.String()
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		client = a.Unmap()
		if !isTrusted(client) {
			return client.String()
		}
	}
	if len(hops) == 0 {
		if a, err := netip.ParseAddr(strings.TrimSpace(r.Header.Get("X-Real-IP"))); err == nil {
			return a.Unmap().String()
		}
	}
	return client.String()
}

// literalQuery rewrites a query string Go cannot parse so that every pair
// survives with its text taken literally, as the reference reads it: a "%"
// that does not start an escape stands for itself, and so does ";". Go
// would drop such a pair (page=%zz) and answer as if it were absent; this
// way a declared parameter gets its 422 and an undeclared one is ignored.
func literalQuery(raw string) string {
	var b strings.Builder
	b.Grow(len(raw) + 8)
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; {
		case c == '%' && !(i+2 < len(raw) && isHex(raw[i+1]) && isHex(raw[i+2])):
			b.WriteString("%25")
		case c == ';':
			b.WriteString("%3B")
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
