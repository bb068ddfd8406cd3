package httpapi_test

import (
	"bytes"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/gatehouse-dev/gatehouse/internal/apitest"
	"github.com/gatehouse-dev/gatehouse/internal/socialtest"
	"github.com/gatehouse-dev/gatehouse/internal/sqlstore"
)

// Prometheus metrics at /metrics (issue 8, docs/METRICS.md): off by
// default, behind METRICS_TOKEN when it is set, and counting what the
// service did, under route patterns.

const metricsToken = "scrape-token-0123456789abcdef"

// scrape is one parsed scrape of /metrics.
type scrape map[string]*dto.MetricFamily

// scrapeMetrics fetches /metrics with token (none when empty) and parses
// the text format.
func scrapeMetrics(t *testing.T, e *apitest.Env, token string) scrape {
	t.Helper()
	r := e.Get("/metrics", token).Expect(t, http.StatusOK, "")
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("/metrics Content-Type %q, want the text format", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(r.Body))
	if err != nil {
		t.Fatalf("/metrics is not the Prometheus text format: %v\n%s", err, r.Body)
	}
	return fams
}

// series returns the metric of family name whose labels include every
// name/value pair of labels.
func (s scrape) series(name string, labels ...string) (*dto.Metric, bool) {
	f, ok := s[name]
	if !ok {
		return nil, false
	}
next:
	for _, m := range f.Metric {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range m.Label {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		return m, true
	}
	return nil, false
}

// delta is how much a series moved between two scrapes.
type delta struct {
	name   string
	labels []string
	want   float64
}

// expectDeltas checks that every series moved between before and after by
// exactly its want.
func expectDeltas(t *testing.T, before, after scrape, deltas []delta) {
	t.Helper()
	for _, d := range deltas {
		if got := after.value(d.name, d.labels...) - before.value(d.name, d.labels...); got != d.want {
			t.Errorf("%s%v moved by %v, want %v", d.name, d.labels, got, d.want)
		}
	}
}

// value is a counter's or gauge's value, or a histogram's sample count; 0
// for a series that does not exist (yet).
func (s scrape) value(name string, labels ...string) float64 {
	m, ok := s.series(name, labels...)
	switch {
	case !ok:
		return 0
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	}
	return 0
}

// labelValues lists the values label takes across family name.
func (s scrape) labelValues(name, label string) []string {
	var out []string
	if f, ok := s[name]; ok {
		for _, m := range f.Metric {
			for _, lp := range m.Label {
				if lp.GetName() == label {
					out = append(out, lp.GetValue())
				}
			}
		}
	}
	return out
}

func TestMetricsOffByDefault(t *testing.T) {
	t.Parallel()
	for _, opts := range [][]apitest.Option{
		nil,
		{apitest.WithEnv("METRICS_ENABLED", "false"), apitest.WithEnv("METRICS_TOKEN", metricsToken)},
	} {
		e := apitest.New(t, sqlstore.SQLite, opts...)
		expectEnvelope(t, e.Get("/metrics", ""), http.StatusNotFound, "SYS_002")
		expectEnvelope(t, e.Get("/metrics", metricsToken), http.StatusNotFound, "SYS_002")
		if e.App.Metrics != nil {
			t.Error("metrics are collected while they are off")
		}
	}
}

// Without METRICS_TOKEN the endpoint is open; it is never rate limited
// (Prometheus scrapes every few seconds from one address) and never counted
// by the API's limits.
func TestMetricsOpenWithoutTokenAndNeverRateLimited(t *testing.T) {
	t.Parallel()
	e := apitest.New(t, sqlstore.SQLite, apitest.WithEnv("METRICS_ENABLED", "true"), rateLimited)
	for i := range 70 { // more than any per-minute limit of the API but MCP's
		r := e.Get("/metrics", "")
		if r.Status != http.StatusOK {
			t.Fatalf("scrape %d: %d %s", i+1, r.Status, r.Body)
		}
		if r.Header.Get("X-RateLimit-Limit") != "" {
			t.Fatalf("scrape %d carries rate-limit headers", i+1)
		}
	}
	s := scrapeMetrics(t, e, "")
	if got := s.labelValues("gatehouse_http_requests_total", "route"); len(got) != 0 {
		t.Errorf("scrapes are counted as requests: routes %q", got)
	}
}

func TestMetricsToken(t *testing.T) {
	t.Parallel()
	e := apitest.New(t, sqlstore.SQLite, apitest.WithEnv("METRICS_TOKEN", metricsToken))
	for _, tc := range []struct{ name, header string }{
		{"no Authorization", ""},
		{"wrong token", "Bearer " + strings.ToUpper(metricsToken)},
		{"token as prefix", "Bearer " + metricsToken + "x"},
		{"prefix of the token", "Bearer " + metricsToken[:len(metricsToken)-1]},
		{"not a bearer token", "Basic " + metricsToken},
		{"the API's tokens are not enough", "Bearer " + e.User("reader@example.com").Access},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.Do(apitest.Request{Method: "GET", Path: "/metrics", Headers: map[string]string{"Authorization": tc.header}})
			expectEnvelope(t, r, http.StatusUnauthorized, "AUTH_006")
			if !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("WWW-Authenticate %q, want a Bearer challenge", r.Header.Get("WWW-Authenticate"))
			}
			if strings.Contains(string(r.Body), "gatehouse_") {
				t.Errorf("a refused scrape shows metrics: %s", r.Body)
			}
		})
	}
	s := scrapeMetrics(t, e, metricsToken)
	if v := s.value("gatehouse_build_info", "version", "1.0.0", "environment", "development"); v != 1 {
		t.Errorf("gatehouse_build_info{version=1.0.0} = %v, want 1", v)
	}
	if _, ok := s["go_goroutines"]; !ok {
		t.Error("the Go runtime collector is missing")
	}
}

// Every series the issue asks for moves by exactly what the requests did:
// logins by outcome, tokens by grant, rate-limit rejections, requests by
// route pattern and status, the hashing queue, and the pool is reported.
func TestMetricsCountWhatHappened(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		s := oaStart(t, e)
		alice := s.alice
		e.Register("inactive@example.com")
		bobID := e.Login("inactive@example.com", apitest.Password).UserID
		e.Post("/api/v1/admin/users/"+bobID+"/deactivate", s.admin.Access, nil).Expect(t, http.StatusOK, "")

		before := scrapeMetrics(t, e, metricsToken)

		// Logins: 2 successes (JSON and form), 3 bad credentials, 1 inactive,
		// 1 refused by the per-account throttle (2 failures per account).
		again := e.Login("alice@example.com", apitest.Password)
		e.Post(pathLogin, "", map[string]any{"email": "alice@example.com", "password": "Wrong-Passw0rd!"}).Expect(t, http.StatusUnauthorized, "AUTH_001")
		apitest.FreshWindow(t, burstBudget, e.Config.Auth.LoginFailureWindow)
		for range 2 {
			e.Post(pathLogin, "", map[string]any{"email": "ghost@example.com", "password": apitest.Password}).Expect(t, http.StatusUnauthorized, "AUTH_001")
		}
		e.Post(pathLogin, "", map[string]any{"email": "ghost@example.com", "password": apitest.Password}).Expect(t, http.StatusTooManyRequests, "SYS_004")
		e.Post(pathLogin, "", map[string]any{"email": "inactive@example.com", "password": apitest.Password}).Expect(t, http.StatusUnauthorized, "AUTH_001")
		e.Do(apitest.Request{Method: "POST", Path: "/api/v1/auth/login/oauth",
			Body:    url.Values{"username": {"alice@example.com"}, "password": {apitest.Password}}.Encode(),
			Headers: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}).Expect(t, http.StatusOK, "")
		// First-party refresh.
		e.Post(pathRefresh, "", map[string]any{"refresh_token": again.Refresh}).Expect(t, http.StatusOK, "")
		// The authorization server: one code exchange, one refresh.
		provider := oaFlow(t, e, s.conf, alice.Access, nil)
		oaOK(t, oaRefresh(e, s.conf, provider.RefreshToken, nil))
		// API calls under a route with a parameter, and an unknown path.
		for range 2 {
			e.Get("/api/v1/users/"+alice.UserID, alice.Access).Expect(t, http.StatusOK, "")
		}
		e.Get("/api/v1/no-such-thing/"+alice.UserID, "").Expect(t, http.StatusNotFound, "SYS_002")
		// The per-IP limit: password-reset requests allow 3 a minute.
		apitest.FreshWindow(t, burstBudget, time.Minute)
		for range 3 {
			e.Post("/api/v1/auth/password-reset/request", "", map[string]any{"email": "nobody@example.com"}).Expect(t, http.StatusOK, "")
		}
		expectRateLimited(t, e.Post("/api/v1/auth/password-reset/request", "", map[string]any{"email": "nobody@example.com"}), 3)

		after := scrapeMetrics(t, e, metricsToken)
		expectDeltas(t, before, after, []delta{
			{"gatehouse_logins_total", []string{"method", "password", "outcome", "success"}, 2},
			{"gatehouse_logins_total", []string{"method", "password", "outcome", "bad_credentials"}, 3},
			{"gatehouse_logins_total", []string{"method", "password", "outcome", "inactive"}, 1},
			{"gatehouse_logins_total", []string{"method", "password", "outcome", "throttled"}, 1},
			{"gatehouse_logins_total", []string{"method", "password", "outcome", "error"}, 0},
			{"gatehouse_logins_total", []string{"method", "browser", "outcome", "success"}, 0},
			{"gatehouse_tokens_issued_total", []string{"kind", "first_party", "grant", "password"}, 2},
			{"gatehouse_tokens_issued_total", []string{"kind", "first_party", "grant", "refresh"}, 1},
			{"gatehouse_tokens_issued_total", []string{"kind", "provider", "grant", "authorization_code"}, 1},
			{"gatehouse_tokens_issued_total", []string{"kind", "provider", "grant", "refresh_token"}, 1},
			{"gatehouse_rate_limit_rejections_total", []string{"limiter", "ip", "endpoint", "passwordResetRequest"}, 1},
			{"gatehouse_rate_limit_rejections_total", []string{"limiter", "account", "endpoint", "login"}, 1},
			{"gatehouse_http_requests_total", []string{"method", "GET", "route", "/api/v1/users/{user_id}", "status", "200"}, 2},
			{"gatehouse_http_request_duration_seconds", []string{"method", "GET", "route", "/api/v1/users/{user_id}", "status", "200"}, 2},
			{"gatehouse_http_requests_total", []string{"method", "POST", "route", "/api/v1/auth/login", "status", "200"}, 1},
			{"gatehouse_http_requests_total", []string{"method", "POST", "route", "/api/v1/auth/login", "status", "401"}, 4},
			{"gatehouse_http_requests_total", []string{"method", "POST", "route", "/api/v1/auth/login", "status", "429"}, 1},
			{"gatehouse_http_requests_total", []string{"method", "POST", "route", "/api/v1/auth/password-reset/request", "status", "429"}, 1},
			{"gatehouse_http_requests_total", []string{"method", "POST", "route", "/api/v1/oauth/provider/token", "status", "200"}, 2},
			{"gatehouse_http_requests_total", []string{"method", "GET", "route", "unmatched", "status", "404"}, 1},
		})
		// Every password check waited for a hashing slot (6 verifications:
		// the throttled attempt never reaches the hasher).
		if got := after.value("gatehouse_password_hash_queue_wait_seconds", "outcome", "acquired") -
			before.value("gatehouse_password_hash_queue_wait_seconds", "outcome", "acquired"); got < 6 {
			t.Errorf("hash queue waits moved by %v, want at least 6", got)
		}
		if got := after.value("gatehouse_password_hash_slots"); got < 1 {
			t.Errorf("gatehouse_password_hash_slots = %v", got)
		}

		for _, route := range after.labelValues("gatehouse_http_requests_total", "route") {
			if strings.Contains(route, alice.UserID) || strings.Contains(route, "no-such-thing") || route == "/metrics" {
				t.Errorf("route label %q: raw paths and scrapes must not become labels", route)
			}
		}
		engine := string(e.Engine)
		if got := after.value("gatehouse_db_connections_open", "engine", engine); got < 1 {
			t.Errorf("gatehouse_db_connections_open{engine=%s} = %v, want at least 1", engine, got)
		}
		if got := after.value("gatehouse_db_connections_max", "engine", engine); got != float64(e.App.Store.DB().Stats().MaxOpenConnections) || got < 1 {
			t.Errorf("gatehouse_db_connections_max{engine=%s} = %v, want the pool's maximum %d", engine, got, e.App.Store.DB().Stats().MaxOpenConnections)
		}
		for _, name := range []string{"gatehouse_db_connections_in_use", "gatehouse_db_connections_idle",
			"gatehouse_db_connection_waits_total", "gatehouse_db_connection_wait_seconds_total"} {
			if _, ok := after.series(name, "engine", engine); !ok {
				t.Errorf("%s{engine=%s} is missing", name, engine)
			}
		}
	}, apitest.WithEnv("METRICS_TOKEN", metricsToken), rateLimited, oaOn(), apitest.WithEnv("LOGIN_THROTTLE_ATTEMPTS", "2"))
}

// The built-in login page counts as method browser, social logins (API)
// as method social, with their own outcomes.
func TestMetricsBrowserAndSocialLogins(t *testing.T) {
	socialEach(t, func(t *testing.T, e *apitest.Env, f *socFakes) {
		e.Register("alice@example.com")
		e.Register("idle@example.com")
		e.Exec(`UPDATE users SET is_active = FALSE WHERE email = $1`, "idle@example.com")
		f.Google.SetUser(socialtest.OIDCUser{Subject: "google-sub-1", Email: "nadia@example.com", EmailVerified: true, GivenName: "Nadia"})
		before := scrapeMetrics(t, e, metricsToken)

		pgNewBrowser(t, e).signIn("alice@example.com")
		for _, who := range []struct{ email, password string }{
			{"alice@example.com", "Wr0ng!Password"},
			{"nobody@example.com", apitest.Password},
			{"idle@example.com", apitest.Password},
		} {
			b := pgNewBrowser(t, e)
			b.login(b.get(pgLogin), who.email, who.password).expect(t, http.StatusBadRequest)
		}
		l := socialtest.Begin(t, e, "google", socRedirect).Approve(t)
		socOK(t, l.Finish())
		socErr(t, l.Finish(), http.StatusUnauthorized, "AUTH_006", socStateMsg) // the state is spent
		e.Exec(`UPDATE users SET is_active = FALSE WHERE email = $1`, "nadia@example.com")
		socErr(t, socialtest.Begin(t, e, "google", socRedirect).Approve(t).Finish(), http.StatusUnauthorized, "AUTH_006", "User account is inactive")

		after := scrapeMetrics(t, e, metricsToken)
		expectDeltas(t, before, after, []delta{
			{"gatehouse_logins_total", []string{"method", "browser", "outcome", "success"}, 1},
			{"gatehouse_logins_total", []string{"method", "browser", "outcome", "bad_credentials"}, 2},
			{"gatehouse_logins_total", []string{"method", "browser", "outcome", "inactive"}, 1},
			{"gatehouse_logins_total", []string{"method", "social", "outcome", "success"}, 1},
			{"gatehouse_logins_total", []string{"method", "social", "outcome", "rejected"}, 1},
			{"gatehouse_logins_total", []string{"method", "social", "outcome", "inactive"}, 1},
			{"gatehouse_logins_total", []string{"method", "password", "outcome", "success"}, 0},
			{"gatehouse_tokens_issued_total", []string{"kind", "first_party", "grant", "social"}, 1},
			{"gatehouse_tokens_issued_total", []string{"kind", "first_party", "grant", "password"}, 0},
		})
	}, apitest.WithEnv("METRICS_TOKEN", metricsToken), oaOn())
}
