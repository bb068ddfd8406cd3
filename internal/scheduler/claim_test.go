// Claiming the daily run in a real database, on every engine. An external
// test package: sqlstore imports scheduler (for the Runs interface).
package scheduler_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/dbtest"
	"github.com/gatehouse-dev/gatehouse/internal/scheduler"
	"github.com/gatehouse-dev/gatehouse/internal/sqlstore"
)

// lockedBuffer is a log buffer safe for concurrent writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Several instances (each with its own connection pool to one database)
// fire the same daily run at once: exactly one runs the jobs. A late
// instance does not run it again, the next day runs once more, and RunNow
// (operators, tests) still runs whenever asked.
func TestRunPeriodOncePerDayAcrossInstances(t *testing.T) {
	for _, engine := range dbtest.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			url := dbtest.URL(t, engine)
			var runs atomic.Int32
			job := scheduler.Job{Name: "count", Run: func(context.Context, time.Time) (int, error) {
				runs.Add(1)
				return 1, nil
			}}
			const instances = 4
			scheds := make([]*scheduler.Scheduler, instances)
			logs := make([]*lockedBuffer, instances)
			for i := range scheds {
				st, err := sqlstore.Open(context.Background(), config.DB{URL: url, PoolSize: 4, PoolRecycle: time.Hour})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { st.Close() })
				if err := st.Migrate(context.Background()); err != nil {
					t.Fatal(err)
				}
				logs[i] = &lockedBuffer{}
				scheds[i] = scheduler.New(slog.New(slog.NewTextHandler(logs[i], nil)), 2, st, job)
			}
			day := time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)

			fire := func(slot time.Time) int {
				t.Helper()
				var (
					wg  sync.WaitGroup
					ran atomic.Int32
				)
				start := make(chan struct{})
				for _, s := range scheds {
					wg.Go(func() {
						<-start
						ok, err := s.RunPeriod(context.Background(), slot)
						if err != nil {
							t.Error(err)
						}
						if ok {
							ran.Add(1)
						}
					})
				}
				close(start)
				wg.Wait()
				return int(ran.Load())
			}

			// Fired again and again (restarts, retries): still one run.
			for round := range 5 {
				want := 0
				if round == 0 {
					want = 1
				}
				if n := fire(day); n != want || runs.Load() != 1 {
					t.Fatalf("round %d: %d instances ran the day's run (jobs ran %d times in all), want %d and one in all",
						round, n, runs.Load(), want)
				}
			}
			// The day names the run, not the hour (an instance configured
			// with another hour), and an instance whose clock is a day
			// behind does not redo an older day.
			if ok, err := scheds[0].RunPeriod(context.Background(), day.Add(21*time.Hour+59*time.Minute)); ok || err != nil {
				t.Fatalf("a slot later the same day ran again: %v %v", ok, err)
			}
			if ok, err := scheds[1].RunPeriod(context.Background(), day.Add(-24*time.Hour)); ok || err != nil {
				t.Fatalf("the previous day's slot ran after this one: %v %v", ok, err)
			}
			if n := fire(day.Add(24 * time.Hour)); n != 1 || runs.Load() != 2 {
				t.Fatalf("next day: %d instances ran, jobs ran %d times in all; want one more run", n, runs.Load())
			}
			if err := scheds[2].RunNow(context.Background()); err != nil || runs.Load() != 3 {
				t.Fatalf("RunNow: %v, jobs ran %d times; want it to run regardless of claims", err, runs.Load())
			}
			var all strings.Builder
			for _, l := range logs {
				all.WriteString(l.String())
			}
			if got := strings.Count(all.String(), "running scheduled maintenance"); got != 2 {
				t.Errorf("%d instances logged running a day's run, want 2 (one per day)", got)
			}
			if !strings.Contains(all.String(), "already run by another instance") {
				t.Errorf("skipped runs are not logged:\n%s", all.String())
			}
		})
	}
}
