package scheduler

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestUntilNext(t *testing.T) {
	plus2 := time.FixedZone("UTC+2", 2*60*60)
	tests := []struct {
		name string
		hour int
		now  time.Time
		want time.Duration
	}{
		{"before the hour", 3, time.Date(2025, 1, 10, 1, 30, 0, 0, time.UTC), 90 * time.Minute},
		{"just before the hour", 3, time.Date(2025, 1, 10, 2, 59, 59, 0, time.UTC), time.Second},
		{"at the hour: tomorrow", 3, time.Date(2025, 1, 10, 3, 0, 0, 0, time.UTC), 24 * time.Hour},
		{"just after the hour", 3, time.Date(2025, 1, 10, 3, 0, 0, 1, time.UTC), 24*time.Hour - time.Nanosecond},
		{"after the hour", 3, time.Date(2025, 1, 10, 23, 0, 0, 0, time.UTC), 4 * time.Hour},
		{"midnight run, before", 0, time.Date(2025, 1, 10, 23, 59, 59, 0, time.UTC), time.Second},
		{"midnight run, at", 0, time.Date(2025, 1, 10, 0, 0, 0, 0, time.UTC), 24 * time.Hour},
		{"across a month end", 3, time.Date(2025, 1, 31, 12, 0, 0, 0, time.UTC), 15 * time.Hour},
		{"across a year end", 3, time.Date(2025, 12, 31, 12, 0, 0, 0, time.UTC), 15 * time.Hour},
		// 04:00 at UTC+2 is 02:00 UTC: the hour is a UTC hour.
		{"local time is converted to UTC", 3, time.Date(2025, 1, 10, 4, 0, 0, 0, plus2), time.Hour},
		{"local time after the UTC hour", 3, time.Date(2025, 1, 10, 6, 0, 0, 0, plus2), 23 * time.Hour},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New(slog.New(slog.DiscardHandler), tc.hour, nil)
			if got := s.untilNext(tc.now); got != tc.want {
				t.Errorf("untilNext(%v) with hour %d = %v, want %v", tc.now, tc.hour, got, tc.want)
			}
		})
	}
}

// recorder is a job that records its calls.
type recorder struct {
	mu    sync.Mutex
	calls []time.Time
}

func (r *recorder) job(name string, affected int, err error) Job {
	return Job{Name: name, Run: func(_ context.Context, now time.Time) (int, error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.calls = append(r.calls, now)
		return affected, err
	}}
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.calls)
}

func newLogger() (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	return slog.New(slog.NewTextHandler(&buf, nil)), &buf
}

func TestRunNowRunsEveryJobOnce(t *testing.T) {
	errSessions := errors.New("database is locked")
	var a, b, c recorder
	logger, logs := newLogger()
	s := New(logger, 3, nil,
		a.job("purge-a", 4, nil),
		b.job("purge-sessions", 0, errSessions),
		c.job("purge-c", 7, nil),
	)
	fixed := time.Date(2025, 1, 10, 5, 0, 0, 0, time.FixedZone("UTC+2", 2*60*60))
	s.Now = func() time.Time { return fixed }

	err := s.RunNow(context.Background())
	if !errors.Is(err, errSessions) {
		t.Fatalf("RunNow = %v, want it to wrap the failed job's error", err)
	}
	if !strings.Contains(err.Error(), "purge-sessions") {
		t.Errorf("error %q does not name the failed job", err)
	}
	if strings.Contains(err.Error(), "purge-a") || strings.Contains(err.Error(), "purge-c") {
		t.Errorf("error %q names jobs that succeeded", err)
	}
	for name, r := range map[string]*recorder{"purge-a": &a, "purge-sessions": &b, "purge-c": &c} {
		if r.count() != 1 {
			t.Errorf("%s ran %d times, want 1", name, r.count())
			continue
		}
		if got := r.calls[0]; !got.Equal(fixed) || got.Location() != time.UTC {
			t.Errorf("%s got now = %v, want %v in UTC", name, got, fixed.UTC())
		}
	}
	out := logs.String()
	for _, want := range []string{"job=purge-a affected=4", "job=purge-c affected=7"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "job=purge-sessions") {
		t.Errorf("failed job logged as done:\n%s", out)
	}
}

func TestRunNowJoinsEveryFailure(t *testing.T) {
	errA, errB := errors.New("a broke"), errors.New("b broke")
	var r recorder
	s := New(slog.New(slog.DiscardHandler), 3, nil, r.job("first", 0, errA), r.job("second", 0, errB), r.job("third", 1, nil))
	err := s.RunNow(context.Background())
	if !errors.Is(err, errA) || !errors.Is(err, errB) {
		t.Fatalf("RunNow = %v, want both failures", err)
	}
	if !strings.Contains(err.Error(), "first") || !strings.Contains(err.Error(), "second") {
		t.Errorf("error %q does not name both failed jobs", err)
	}
	if r.count() != 3 {
		t.Errorf("%d jobs ran, want 3", r.count())
	}
}

func TestRunNowSuccess(t *testing.T) {
	var r recorder
	s := New(slog.New(slog.DiscardHandler), 3, nil, r.job("a", 0, nil), r.job("b", 0, nil))
	if err := s.RunNow(context.Background()); err != nil {
		t.Fatalf("RunNow = %v, want nil", err)
	}
	if r.count() != 2 {
		t.Errorf("%d jobs ran, want 2", r.count())
	}
	if err := New(slog.New(slog.DiscardHandler), 3, nil).RunNow(context.Background()); err != nil {
		t.Errorf("RunNow without jobs = %v", err)
	}
}

// runAsync starts s.Run and returns a channel closed when it returns.
func runAsync(s *Scheduler, ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		s.Run(ctx)
		close(done)
	}()
	return done
}

func waitDone(t *testing.T, done <-chan struct{}) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(10 * time.Second): // a guard against hanging, not an assertion
		t.Fatal("Run did not return after its context was cancelled")
	}
}

func TestRunReturnsOnCancelledContext(t *testing.T) {
	var r recorder
	s := New(slog.New(slog.DiscardHandler), 3, nil, r.job("a", 0, nil))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	waitDone(t, runAsync(s, ctx))
	if r.count() != 0 {
		t.Errorf("a job ran %d times although the context was cancelled before the hour", r.count())
	}
}

func TestRunReturnsWhenCancelledWhileWaiting(t *testing.T) {
	var r recorder
	s := New(slog.New(slog.DiscardHandler), 3, nil, r.job("a", 0, nil))
	// One minute after the run hour: the next run is a day away.
	s.Now = func() time.Time { return time.Date(2025, 1, 10, 3, 1, 0, 0, time.UTC) }
	ctx, cancel := context.WithCancel(context.Background())
	done := runAsync(s, ctx)
	cancel()
	waitDone(t, done)
	if r.count() != 0 {
		t.Errorf("a job ran %d times", r.count())
	}
}

func TestRunRunsJobsAtTheHour(t *testing.T) {
	ran := make(chan time.Time, 10)
	boom := errors.New("boom")
	var buf syncBuffer
	s := New(slog.New(slog.NewTextHandler(&buf, nil)), 3, nil,
		Job{Name: "failing", Run: func(context.Context, time.Time) (int, error) { return 0, boom }},
		Job{Name: "tick", Run: func(_ context.Context, now time.Time) (int, error) { ran <- now; return 1, nil }},
	)
	// The first reading is a millisecond before the hour; later readings
	// are just after it, so the next run is a day away.
	var calls atomic.Int32
	before := time.Date(2025, 1, 10, 2, 59, 59, 999_000_000, time.UTC)
	after := time.Date(2025, 1, 10, 3, 0, 0, 1_000_000, time.UTC)
	s.Now = func() time.Time {
		if calls.Add(1) == 1 {
			return before
		}
		return after
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := runAsync(s, ctx)
	select {
	case now := <-ran:
		if !now.Equal(after) {
			t.Errorf("job got now = %v, want %v", now, after)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the job did not run at the hour")
	}
	cancel()
	waitDone(t, done)
	if n := len(ran); n != 0 {
		t.Errorf("the job ran %d more times, want once a day", n)
	}
	if out := buf.String(); !strings.Contains(out, "scheduled maintenance failed") || !strings.Contains(out, "failing: boom") {
		t.Errorf("failed scheduled run not logged:\n%s", out)
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// cutoffs records the cutoffs the cleanup jobs pass to the store.
type cutoffs struct {
	grants, consents, consentsNow time.Time
	consentCalls                  int
}

func (c *cutoffs) PurgeSessions(context.Context, time.Time) (int, error)    { return 0, nil }
func (c *cutoffs) PurgeResetTokens(context.Context, time.Time) (int, error) { return 0, nil }
func (c *cutoffs) PurgeInvitations(context.Context, time.Time) (int, error) { return 0, nil }
func (c *cutoffs) PurgeOAuthStates(context.Context, time.Time) (int, error) { return 0, nil }
func (c *cutoffs) PurgePATs(context.Context, time.Time) (int, error)        { return 0, nil }
func (c *cutoffs) PurgeProviderGrants(_ context.Context, cutoff time.Time) (int, error) {
	c.grants = cutoff
	return 2, nil
}
func (c *cutoffs) PurgeConsents(_ context.Context, cutoff, now time.Time) (int, error) {
	c.consents, c.consentsNow = cutoff, now
	c.consentCalls++
	return 3, nil
}

// The provider-grants job purges grants over a day past their end and
// consents last granted more than the consent lifetime ago; a lifetime of 0
// keeps every consent.
func TestProviderGrantsJobPurgesExpiredConsents(t *testing.T) {
	now := time.Date(2026, 5, 6, 2, 0, 0, 0, time.UTC)
	run := func(ttl time.Duration) (*cutoffs, int) {
		t.Helper()
		st := &cutoffs{}
		for _, j := range CleanupJobs(st, ttl) {
			if j.Name == "purge-provider-grants" {
				n, err := j.Run(context.Background(), now)
				if err != nil {
					t.Fatal(err)
				}
				return st, n
			}
		}
		t.Fatal("no purge-provider-grants job")
		return nil, 0
	}
	st, n := run(30 * 24 * time.Hour)
	if !st.grants.Equal(now.Add(-24*time.Hour)) || !st.consents.Equal(now.Add(-30*24*time.Hour)) || !st.consentsNow.Equal(now) || n != 5 {
		t.Fatalf("grants cutoff %v, consents cutoff %v at %v, affected %d", st.grants, st.consents, st.consentsNow, n)
	}
	if st, n := run(0); st.consentCalls != 0 || n != 2 {
		t.Fatalf("OAUTH_CONSENT_TTL_DAYS=0 purged consents (%d calls, affected %d)", st.consentCalls, n)
	}
}
