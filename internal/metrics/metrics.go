// Package metrics keeps Gatehouse's Prometheus metrics in a registry of its
// own (never the client library's global one) and serves them in the text
// format. It is the only package that imports the Prometheus client: the
// HTTP edge reports requests, logins, issued tokens and rate-limit
// rejections through the methods below, the wiring connects the password
// hasher's queue hook to HashWait, and the database pool and the hashing
// queue are read when Prometheus scrapes. Domain packages know nothing of it.
//
// Every method may be called on a nil *Metrics and then does nothing, so the
// callers need no "is it enabled" checks (METRICS_ENABLED=false builds none).
// docs/METRICS.md lists every metric.
package metrics

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Label values with a fixed meaning.
const (
	// RouteUnmatched is the route label of requests that matched no route,
	// so that scanners probing random paths add one series, not one each.
	RouteUnmatched = "unmatched"
	// MethodOther is the method label of methods outside the standard ones.
	MethodOther = "OTHER"
)

// Login methods (the method label of gatehouse_logins_total).
const (
	LoginPassword = "password" // POST /api/v1/auth/login and /login/oauth
	LoginBrowser  = "browser"  // the built-in login page
	LoginSocial   = "social"   // a social login completed, API or page
)

// Login outcomes (the outcome label of gatehouse_logins_total).
const (
	OutcomeSuccess        = "success"
	OutcomeBadCredentials = "bad_credentials" // unknown email, wrong password, account without a password
	OutcomeInactive       = "inactive"        // right password (or provider identity), inactive account
	OutcomeThrottled      = "throttled"       // the per-account failed-login throttle refused the attempt
	OutcomeBusy           = "busy"            // the password hashing queue was full (503)
	OutcomeRejected       = "rejected"        // social: invalid state, the provider refused, linking conflicts
	OutcomeError          = "error"           // anything else: database down, cancelled request, bug
)

// Token kinds and grants (the labels of gatehouse_tokens_issued_total).
const (
	FirstParty = "first_party" // Gatehouse's own access and refresh tokens
	Provider   = "provider"    // tokens of the OAuth 2.1 authorization server

	GrantPassword          = "password"           // first-party: email and password
	GrantSocial            = "social"             // first-party: social login
	GrantRefresh           = "refresh"            // first-party: refresh-token rotation
	GrantAuthorizationCode = "authorization_code" // provider
	GrantRefreshToken      = "refresh_token"      // provider
)

// Rate limiters (the limiter label of gatehouse_rate_limit_rejections_total).
const (
	LimiterIP      = "ip"      // per client IP per endpoint
	LimiterAccount = "account" // failed logins per account
)

// Options are what New reads at scrape time.
type Options struct {
	// Version and Environment label gatehouse_build_info.
	Version, Environment string
	// DBStats returns the statistics of the database pool (sql.DB.Stats);
	// nil: no database metrics. Engine labels them.
	DBStats func() sql.DBStats
	Engine  string
	// HashSlots returns how many password hashing slots are in use and how
	// many there are; nil: no such gauges.
	HashSlots func() (busy, total int)
}

// Metrics is the registry and the metrics Gatehouse updates.
type Metrics struct {
	reg *prometheus.Registry

	requests   *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	logins     *prometheus.CounterVec
	tokens     *prometheus.CounterVec
	rejections *prometheus.CounterVec
	// The queue-wait histogram by outcome.
	hashAcquired, hashBusy, hashCancelled prometheus.Observer

	// series caches the request counter and histogram of each label
	// combination, so a request costs one map read instead of two label
	// lookups (each hashing and validating three strings).
	series sync.Map // requestKey → requestSeries
	status [600]string
}

type requestKey struct {
	method, route string
	status        int
}

type requestSeries struct {
	count   prometheus.Counter
	latency prometheus.Observer
}

// New builds the registry with every Gatehouse metric, the Go runtime and
// process collectors, and the scrape-time collectors named by o.
func New(o Options) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{reg: reg}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_http_requests_total",
		Help: "HTTP requests answered, by method, route pattern (\"unmatched\" for unknown paths) and status code. Scrapes of /metrics are not counted.",
	}, []string{"method", "route", "status"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "gatehouse_http_request_duration_seconds",
		Help:    "Time from receiving a request's headers to the end of its handler, by method, route pattern and status code.",
		Buckets: prometheus.DefBuckets,
	}, []string{"method", "route", "status"})
	m.logins = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_logins_total",
		Help: "Login attempts that reached the authentication service, by method (password, browser, social) and outcome.",
	}, []string{"method", "outcome"})
	m.tokens = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_tokens_issued_total",
		Help: "Token responses issued, by kind (first_party, provider) and grant.",
	}, []string{"kind", "grant"})
	m.rejections = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_rate_limit_rejections_total",
		Help: "Requests refused by a rate limit (429), by limiter (ip, account) and endpoint.",
	}, []string{"limiter", "endpoint"})
	wait := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "gatehouse_password_hash_queue_wait_seconds",
		Help:    "Time a password hash or verification waited for a free hashing slot, by whether it got one (acquired) or not (busy: the queue was full for PASSWORD_HASH_MAX_WAIT_MS; cancelled: the caller left).",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"outcome"})
	m.hashAcquired, m.hashBusy, m.hashCancelled = wait.WithLabelValues("acquired"), wait.WithLabelValues("busy"), wait.WithLabelValues("cancelled")
	reg.MustRegister(m.requests, m.latency, m.logins, m.tokens, m.rejections, wait,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	// Series that exist from the start read 0 instead of being absent, so
	// rates and alerts work before the first event.
	for _, method := range []string{LoginPassword, LoginBrowser, LoginSocial} {
		for _, outcome := range []string{OutcomeSuccess, OutcomeBadCredentials, OutcomeInactive, OutcomeThrottled, OutcomeBusy, OutcomeRejected, OutcomeError} {
			m.logins.WithLabelValues(method, outcome)
		}
	}
	for _, g := range []string{GrantPassword, GrantSocial, GrantRefresh} {
		m.tokens.WithLabelValues(FirstParty, g)
	}
	for _, g := range []string{GrantAuthorizationCode, GrantRefreshToken} {
		m.tokens.WithLabelValues(Provider, g)
	}

	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "gatehouse_build_info",
		Help:        "Always 1; the labels name the running version (VERSION) and ENVIRONMENT.",
		ConstLabels: prometheus.Labels{"version": o.Version, "environment": o.Environment},
	}, func() float64 { return 1 }))
	if o.DBStats != nil {
		reg.MustRegister(newDBCollector(o.DBStats, o.Engine))
	}
	if o.HashSlots != nil {
		reg.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "gatehouse_password_hash_slots_in_use",
				Help: "Password hashes and verifications running now.",
			}, func() float64 { busy, _ := o.HashSlots(); return float64(busy) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "gatehouse_password_hash_slots",
				Help: "Password hashes and verifications that may run at once (PASSWORD_HASH_CONCURRENCY).",
			}, func() float64 { _, total := o.HashSlots(); return float64(total) }),
		)
	}
	for code := range m.status {
		m.status[code] = strconv.Itoa(code)
	}
	return m
}

// Handler serves the registry in the Prometheus text format (or
// OpenMetrics, gzip-compressed, when the scraper asks for it).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Registry returns the registry, for tests that gather it directly.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Request counts one answered request and its duration. route must be a
// route pattern (never a raw path) or RouteUnmatched.
func (m *Metrics) Request(method, route string, status int, elapsed time.Duration) {
	if m == nil {
		return
	}
	// The key holds labels, not raw input: any non-standard method is OTHER,
	// so the cache is as bounded as the series.
	k := requestKey{method: methodLabel(method), route: route, status: status}
	v, ok := m.series.Load(k)
	if !ok {
		label := strconv.Itoa(status)
		if status >= 0 && status < len(m.status) {
			label = m.status[status]
		}
		v, _ = m.series.LoadOrStore(k, requestSeries{
			count:   m.requests.WithLabelValues(k.method, route, label),
			latency: m.latency.WithLabelValues(k.method, route, label),
		})
	}
	s := v.(requestSeries)
	s.count.Inc()
	s.latency.Observe(elapsed.Seconds())
}

// methodLabel bounds the method label to the standard methods.
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return method
	}
	return MethodOther
}

// Login counts one login attempt (Login* method, Outcome* outcome).
func (m *Metrics) Login(method, outcome string) {
	if m == nil {
		return
	}
	m.logins.WithLabelValues(method, outcome).Inc()
}

// TokensIssued counts one token response of kind (FirstParty, Provider)
// and grant (Grant*).
func (m *Metrics) TokensIssued(kind, grant string) {
	if m == nil {
		return
	}
	m.tokens.WithLabelValues(kind, grant).Inc()
}

// RateLimited counts one request refused by limiter (LimiterIP,
// LimiterAccount) at endpoint (an operation or page name, never a path).
func (m *Metrics) RateLimited(limiter, endpoint string) {
	if m == nil {
		return
	}
	m.rejections.WithLabelValues(limiter, endpoint).Inc()
}

// HashWait records how long a password hash or verification waited for a
// slot: err is nil when it got one, the context's error when the caller
// left, and the queue's refusal otherwise (the signature of
// password.Hasher's OnWait hook).
func (m *Metrics) HashWait(wait time.Duration, err error) {
	if m == nil {
		return
	}
	o := m.hashAcquired
	switch {
	case err == nil:
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		o = m.hashCancelled
	default:
		o = m.hashBusy
	}
	o.Observe(wait.Seconds())
}
