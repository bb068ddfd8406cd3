package metrics

import (
	"context"
	"database/sql"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestNilMetricsDoNothing(t *testing.T) {
	var m *Metrics
	m.Request("GET", "/", 200, time.Millisecond)
	m.Login(LoginPassword, OutcomeSuccess)
	m.TokensIssued(FirstParty, GrantPassword)
	m.RateLimited(LimiterIP, "login")
	m.HashWait(time.Millisecond, nil)
}

func TestRequestLabels(t *testing.T) {
	m := New(Options{})
	m.Request("GET", "/api/v1/users/{user_id}", 200, 10*time.Millisecond)
	m.Request("GET", "/api/v1/users/{user_id}", 200, 30*time.Millisecond)
	m.Request("GET", "/api/v1/users/{user_id}", 404, time.Millisecond)
	for _, method := range []string{"BREW", "PROPFIND", "get"} {
		m.Request(method, RouteUnmatched, 405, time.Millisecond)
	}
	for _, c := range []struct {
		labels []string
		want   float64
	}{
		{[]string{"GET", "/api/v1/users/{user_id}", "200"}, 2},
		{[]string{"GET", "/api/v1/users/{user_id}", "404"}, 1},
		{[]string{MethodOther, RouteUnmatched, "405"}, 3},
	} {
		if got := testutil.ToFloat64(m.requests.WithLabelValues(c.labels...)); got != c.want {
			t.Errorf("requests%v = %v, want %v", c.labels, got, c.want)
		}
	}
	if n := testutil.CollectAndCount(m.requests); n != 3 {
		t.Errorf("%d request series, want 3 (non-standard methods share OTHER)", n)
	}
	cached := 0
	m.series.Range(func(any, any) bool { cached++; return true })
	if cached != 3 {
		t.Errorf("%d cached series, want 3: the cache must be keyed by labels, not by raw methods", cached)
	}
	const want = `
		# HELP gatehouse_http_request_duration_seconds Time from receiving a request's headers to the end of its handler, by method, route pattern and status code.
		# TYPE gatehouse_http_request_duration_seconds histogram
		gatehouse_http_request_duration_seconds_bucket{method="GET",route="/api/v1/users/{user_id}",status="200",le="0.005"} 0
		gatehouse_http_request_duration_seconds_bucket{method="GET",route="/api/v1/users/{user_id}",status="200",le="0.01"} 1
		gatehouse_http_request_duration_seconds_bucket{method="GET",route="/api/v1/users/{user_id}",status="200",le="0.025"} 1
		gatehouse_http_request_duration_seconds_bucket{method="GET",route="/api/v1/users/{user_id}",status="200",le="0.05"} 2
		gatehouse_http_request_duration_seconds_bucket{method="GET",route="/api/v1/users/{user_id}",status="200",le="0.1"} 2
		gatehouse_http_request_duration_seconds_bucket{method="GET",route="/api/v1/users/{user_id}",status="200",le="0.25"} 2
		gatehouse_http_request_duration_seconds_bucket{method="GET",route="/api/v1/users/{user_id}",status="200",le="0.5"} 2
		gatehouse_http_request_duration_seconds_bucket{method="GET",route="/api/v1/users/{user_id}",status="200",le="1"} 2
		gatehouse_http_request_duration_seconds_bucket{method="GET",route="/api/v1/users/{user_id}",status="200",le="2.5"} 2
		gatehouse_http_request_duration_seconds_bucket{method="GET",route="/api/v1/users/{user_id}",status="200",le="5"} 2
		gatehouse_http_request_duration_seconds_bucket{method="GET",route="/api/v1/users/{user_id}",status="200",le="10"} 2
		gatehouse_http_request_duration_seconds_bucket{method="GET",route="/api/v1/users/{user_id}",status="200",le="+Inf"} 2
		gatehouse_http_request_duration_seconds_sum{method="GET",route="/api/v1/users/{user_id}",status="200"} 0.04
		gatehouse_http_request_duration_seconds_count{method="GET",route="/api/v1/users/{user_id}",status="200"} 2
	`
	m2 := New(Options{})
	m2.Request("GET", "/api/v1/users/{user_id}", 200, 10*time.Millisecond)
	m2.Request("GET", "/api/v1/users/{user_id}", 200, 30*time.Millisecond)
	if err := testutil.CollectAndCompare(m2.latency, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}

// A request to a route seen before costs no allocation.
func TestRequestDoesNotAllocate(t *testing.T) {
	m := New(Options{})
	m.Request("GET", "/api/v1/users/me", 200, time.Millisecond)
	if n := testing.AllocsPerRun(100, func() { m.Request("GET", "/api/v1/users/me", 200, time.Millisecond) }); n != 0 {
		t.Errorf("Request allocates %v times per call, want 0", n)
	}
}

func BenchmarkRequest(b *testing.B) {
	m := New(Options{})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.Request("GET", "/api/v1/users/{user_id}", 200, time.Millisecond)
		}
	})
}

func TestSeriesExistFromTheStart(t *testing.T) {
	m := New(Options{})
	// 3 methods × 7 outcomes, 5 grants, 3 queue outcomes, all at 0.
	for name, want := range map[string]int{
		"gatehouse_logins_total":                     21,
		"gatehouse_tokens_issued_total":              5,
		"gatehouse_password_hash_queue_wait_seconds": 3,
	} {
		if n, err := testutil.GatherAndCount(m.Registry(), name); err != nil || n != want {
			t.Errorf("%s: %d series (%v), want %d", name, n, err, want)
		}
	}
}

func TestHashWaitOutcomes(t *testing.T) {
	m := New(Options{})
	m.HashWait(0, nil)
	m.HashWait(2*time.Millisecond, nil)
	m.HashWait(5*time.Second, errors.New("the queue is full"))
	m.HashWait(time.Second, context.Canceled)
	m.HashWait(time.Second, context.DeadlineExceeded)
	counts := map[string]uint64{}
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != "gatehouse_password_hash_queue_wait_seconds" {
			continue
		}
		for _, s := range f.Metric {
			counts[s.Label[0].GetValue()] = s.Histogram.GetSampleCount()
		}
	}
	if counts["acquired"] != 2 || counts["busy"] != 1 || counts["cancelled"] != 2 {
		t.Errorf("queue waits by outcome = %v, want acquired 2, busy 1, cancelled 2", counts)
	}
}

func TestDBCollector(t *testing.T) {
	stats := sql.DBStats{MaxOpenConnections: 20, OpenConnections: 5, InUse: 3, Idle: 2, WaitCount: 7,
		WaitDuration: 1500 * time.Millisecond, MaxIdleClosed: 1, MaxIdleTimeClosed: 2, MaxLifetimeClosed: 4}
	m := New(Options{DBStats: func() sql.DBStats { return stats }, Engine: "postgres"})
	const want = `
		# HELP gatehouse_db_connections_in_use Connections in use by a query or transaction.
		# TYPE gatehouse_db_connections_in_use gauge
		gatehouse_db_connections_in_use{engine="postgres"} 3
		# HELP gatehouse_db_connections_max Maximum number of open connections the pool allows (0: unlimited).
		# TYPE gatehouse_db_connections_max gauge
		gatehouse_db_connections_max{engine="postgres"} 20
		# HELP gatehouse_db_connection_wait_seconds_total Total time spent waiting for a connection.
		# TYPE gatehouse_db_connection_wait_seconds_total counter
		gatehouse_db_connection_wait_seconds_total{engine="postgres"} 1.5
		# HELP gatehouse_db_connection_waits_total Times a query waited for a connection because the pool was at its maximum.
		# TYPE gatehouse_db_connection_waits_total counter
		gatehouse_db_connection_waits_total{engine="postgres"} 7
		# HELP gatehouse_db_connections_closed_max_lifetime_total Connections closed because they reached their maximum lifetime (db_pool_recycle).
		# TYPE gatehouse_db_connections_closed_max_lifetime_total counter
		gatehouse_db_connections_closed_max_lifetime_total{engine="postgres"} 4
	`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want),
		"gatehouse_db_connections_in_use", "gatehouse_db_connections_max", "gatehouse_db_connection_wait_seconds_total",
		"gatehouse_db_connection_waits_total", "gatehouse_db_connections_closed_max_lifetime_total"); err != nil {
		t.Error(err)
	}
	// Read at scrape time: a later change shows in the next scrape.
	stats.InUse = 9
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(`
		# HELP gatehouse_db_connections_in_use Connections in use by a query or transaction.
		# TYPE gatehouse_db_connections_in_use gauge
		gatehouse_db_connections_in_use{engine="postgres"} 9
	`), "gatehouse_db_connections_in_use"); err != nil {
		t.Error(err)
	}
}

func TestHandlerServesTheTextFormat(t *testing.T) {
	m := New(Options{Version: "9.9.9", Environment: "test", HashSlots: func() (int, int) { return 1, 4 }})
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain") {
		t.Fatalf("status %d Content-Type %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	for _, line := range []string{
		`gatehouse_build_info{environment="test",version="9.9.9"} 1`,
		"gatehouse_password_hash_slots 4",
		"gatehouse_password_hash_slots_in_use 1",
		"go_goroutines ",
	} {
		if !strings.Contains(body, "\n"+line) {
			t.Errorf("the scrape lacks %q", line)
		}
	}
}
