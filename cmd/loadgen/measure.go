package main

import (
	"context"
	"net/http"
	"sync"
	"time"
)

// failurePause keeps a worker whose requests fail at once (server down,
// chain cannot restart) from spinning: the errors are counted all the same.
const failurePause = 10 * time.Millisecond

// runResult is one load's outcome in one run.
type runResult struct {
	row      string
	conns    int
	ceiling  string
	elapsed  time.Duration
	ok       uint64 // expected answers; only these count towards the rate and the latencies
	errors   uint64
	timeouts uint64
	shed     uint64
	hist     *histogram
}

// rps is the rate of expected answers. elapsed runs until the load's last
// worker has finished its last request, so the requests still in flight at
// the deadline are both counted and paid for.
func (r runResult) rps() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.ok) / r.elapsed.Seconds()
}

// tally is one worker's counts, merged after the run so workers never share
// memory while measuring.
type tally struct {
	ok, errors, timeouts, shed uint64
	hist                       histogram
	end                        time.Time // when the worker's last request finished
}

// measure runs every load of a step side by side for d and returns their
// results in the same order.
func measure(ctx context.Context, client *http.Client, s step, d time.Duration, errs *errorLog) []runResult {
	tallies := make([][]tally, len(s.loads))
	deadline := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for li, l := range s.loads {
		tallies[li] = make([]tally, len(l.workers))
		for wi, w := range l.workers {
			t := &tallies[li][wi]
			wg.Go(func() {
				drive(ctx, client, l, w, deadline, t, errs)
				t.end = time.Now()
			})
		}
	}
	wg.Wait()
	// Each load is timed on its own: the logins of isolation finish up to
	// a hash after the deadline, while me is long done.
	out := make([]runResult, len(s.loads))
	for li, l := range s.loads {
		r := runResult{row: l.row, conns: len(l.workers), ceiling: l.ceiling, hist: &histogram{}}
		for i := range tallies[li] {
			t := &tallies[li][i]
			r.elapsed = max(r.elapsed, t.end.Sub(start))
			r.ok += t.ok
			r.errors += t.errors
			r.timeouts += t.timeouts
			r.shed += t.shed
			r.hist.merge(&t.hist)
		}
		out[li] = r
	}
	return out
}

// drive is one connection's loop: request after request until the deadline.
func drive(ctx context.Context, client *http.Client, l load, w worker, deadline time.Time, t *tally, errs *errorLog) {
	for ctx.Err() == nil && time.Now().Before(deadline) {
		req, err := w.request(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			t.errors++
			errs.add(l.row, err.Error())
			time.Sleep(failurePause)
			continue
		}
		start := time.Now()
		r, err := exchange(client, req)
		latency := time.Since(start)
		switch {
		case ctx.Err() != nil:
			return // interrupted: neither a success nor a failure of the server
		case err != nil && isTimeout(err):
			t.timeouts++
		case err != nil:
			t.errors++
			errs.add(l.row, err.Error())
			time.Sleep(failurePause)
		case l.shedOK && (r.status == http.StatusServiceUnavailable || r.status == http.StatusTooManyRequests):
			t.shed++
		default:
			if err := w.check(r); err != nil {
				t.errors++
				errs.add(l.row, err.Error())
				continue
			}
			t.ok++
			t.hist.record(latency)
		}
	}
}

// maxDistinctErrors bounds how many different error messages are kept:
// enough to show what went wrong, not a copy of every failure.
const maxDistinctErrors = 20

// errorLog keeps the first distinct error messages of each row with how
// often each occurred.
type errorLog struct {
	mu      sync.Mutex
	counts  map[string]int
	samples []errorSample
	dropped int // errors whose message came after the log was full
}

// errorSample is one distinct error message.
type errorSample struct {
	Row     string `json:"row"`
	Message string `json:"message"`
	Count   int    `json:"count"`
}

func newErrorLog() *errorLog { return &errorLog{counts: map[string]int{}} }

func (l *errorLog) add(row, msg string) {
	msg = shorten(msg)
	key := row + "\x00" + msg
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, seen := l.counts[key]; !seen {
		if len(l.samples) >= maxDistinctErrors {
			l.dropped++
			return
		}
		l.samples = append(l.samples, errorSample{Row: row, Message: msg})
	}
	l.counts[key]++
}

// list returns the distinct errors in order of first occurrence.
func (l *errorLog) list() []errorSample {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]errorSample, len(l.samples))
	for i, s := range l.samples {
		s.Count = l.counts[s.Row+"\x00"+s.Message]
		out[i] = s
	}
	if l.dropped > 0 {
		out = append(out, errorSample{Row: "*", Message: "further errors with other messages", Count: l.dropped})
	}
	return out
}
