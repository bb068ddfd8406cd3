package main

import (
	"math"
	"testing"
	"time"
)

func TestMedian(t *testing.T) {
	nan := math.NaN()
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{[]float64{3}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{nan, 7, 1, nan, 4}, 4}, // unknown ratios are left out
	} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
	if got := median(nil); !math.IsNaN(got) {
		t.Errorf("median(nil) = %v, want NaN", got)
	}
	if got := median([]float64{nan}); !math.IsNaN(got) {
		t.Errorf("median(NaN) = %v, want NaN", got)
	}
	in := []float64{3, 1, 2}
	median(in)
	if in[0] != 3 || in[1] != 1 || in[2] != 2 {
		t.Errorf("median reordered its argument: %v", in)
	}
}

func TestMinMax(t *testing.T) {
	if lo, hi := minMax([]float64{4, 9, 2, 7}); lo != 2 || hi != 9 {
		t.Errorf("minMax = %v, %v, want 2, 9", lo, hi)
	}
	if lo, hi := minMax(nil); !math.IsNaN(lo) || !math.IsNaN(hi) {
		t.Errorf("minMax(nil) = %v, %v, want NaNs", lo, hi)
	}
}

func TestRatio(t *testing.T) {
	if got := ratio(3, 4); got != 0.75 {
		t.Errorf("ratio(3, 4) = %v", got)
	}
	for _, b := range []float64{0, -1, math.NaN()} {
		if got := ratio(1, b); !math.IsNaN(got) {
			t.Errorf("ratio(1, %v) = %v, want NaN", b, got)
		}
	}
	if opt(math.NaN()) != nil || opt(math.Inf(1)) != nil || *opt(2) != 2 {
		t.Error("opt does not map unknown values to nil and others to themselves")
	}
}

// near reports whether got is within the histogram's precision of want.
func near(got, want time.Duration) bool {
	return math.Abs(float64(got-want)) <= 0.006*float64(want)
}

func TestHistogramPercentiles(t *testing.T) {
	h := &histogram{}
	// 1 ms … 100 ms, one each: p50 is the 50th value, p99 the 99th.
	for i := 1; i <= 100; i++ {
		h.record(time.Duration(i) * time.Millisecond)
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{
		{0.50, 50 * time.Millisecond},
		{0.99, 99 * time.Millisecond},
		{1, 100 * time.Millisecond},
		{0.001, time.Millisecond},
	} {
		if got := h.percentile(tc.q); !near(got, tc.want) {
			t.Errorf("p%v = %v, want %v within 0.6%%", tc.q*100, got, tc.want)
		}
	}
	if h.total != 100 {
		t.Errorf("total %d, want 100", h.total)
	}
}

func TestHistogramSkewedAndMerged(t *testing.T) {
	// 990 fast answers and 10 slow ones, recorded by two workers: p50 is
	// fast, p99 still fast (the 990th value), p99.9 slow.
	a, b := &histogram{}, &histogram{}
	for i := range 990 {
		[]*histogram{a, b}[i%2].record(200 * time.Microsecond)
	}
	for range 10 {
		b.record(2 * time.Second)
	}
	a.merge(b)
	if a.total != 1000 {
		t.Fatalf("merged total %d, want 1000", a.total)
	}
	if got := a.percentile(0.5); !near(got, 200*time.Microsecond) {
		t.Errorf("p50 = %v, want 200µs", got)
	}
	if got := a.percentile(0.99); !near(got, 200*time.Microsecond) {
		t.Errorf("p99 = %v, want 200µs", got)
	}
	if got := a.percentile(0.999); !near(got, 2*time.Second) {
		t.Errorf("p99.9 = %v, want 2s", got)
	}
}

func TestHistogramEdges(t *testing.T) {
	h := &histogram{}
	if h.percentile(0.5) != 0 {
		t.Error("an empty histogram has a p50")
	}
	h.record(0)
	h.record(-time.Second)
	h.record(time.Hour) // beyond the last bucket: clamped, not lost
	if h.total != 3 || h.counts[0] != 2 || h.counts[histBuckets-1] != 1 {
		t.Errorf("edge values not clamped: total %d, first %d, last %d", h.total, h.counts[0], h.counts[histBuckets-1])
	}
	for _, d := range []time.Duration{time.Microsecond, 37 * time.Millisecond, 5 * time.Second} {
		if got := bucketValue(bucketOf(d)); !near(got, d) {
			t.Errorf("bucket of %v reports %v", d, got)
		}
	}
}

// result makes a runResult with ok answers over one second, all of the
// given latency.
func result(row string, ok uint64, latency time.Duration, ceiling string) runResult {
	r := runResult{row: row, conns: 4, ceiling: ceiling, elapsed: time.Second, ok: ok, hist: &histogram{}}
	for range ok {
		r.hist.record(latency)
	}
	return r
}

func TestSummarizeRow(t *testing.T) {
	hash := func(rate uint64) runResult { return result("hash", rate, time.Millisecond, "") }
	rounds := []round{
		{runs: map[string]runResult{rowYardstick: result(rowYardstick, 1000, time.Millisecond, ""),
			scLogin: result(scLogin, 10, 100*time.Millisecond, ceilingHash)}, hash: hash(20)},
		{runs: map[string]runResult{rowYardstick: result(rowYardstick, 2000, time.Millisecond, ""),
			scLogin: result(scLogin, 30, 300*time.Millisecond, ceilingHash)}, hash: hash(20)},
		{runs: map[string]runResult{rowYardstick: result(rowYardstick, 500, time.Millisecond, ""),
			scLogin: result(scLogin, 20, 200*time.Millisecond, ceilingHash)}, hash: hash(10)},
	}
	rounds[1].runs[scLogin] = func(r runResult) runResult { r.errors, r.timeouts, r.shed = 2, 1, 5; return r }(rounds[1].runs[scLogin])
	s := summarizeRow(scLogin, rounds)
	if s.RPSMedian != 20 || s.RPSMin != 10 || s.RPSMax != 30 || len(s.RPS) != 3 {
		t.Errorf("rates: median %v min %v max %v per round %v", s.RPSMedian, s.RPSMin, s.RPSMax, s.RPS)
	}
	// Per-round ratios to the yardstick are 0.01, 0.015 and 0.04: median 0.015.
	if s.VsYardstick == nil || math.Abs(*s.VsYardstick-0.015) > 1e-12 {
		t.Errorf("vs yardstick %v, want 0.015", s.VsYardstick)
	}
	if r := s.VsYardstickRounds; len(r) != 3 || math.Abs(r[0]-0.01) > 1e-12 || math.Abs(r[1]-0.015) > 1e-12 || math.Abs(r[2]-0.04) > 1e-12 {
		t.Errorf("vs yardstick per round %v, want [0.01 0.015 0.04] in round order", r)
	}
	// Per-round ratios to the hash ceiling are 0.5, 1.5 and 2: median 1.5.
	if s.VsCeiling == nil || *s.VsCeiling != 1.5 || s.Ceiling != ceilingHash {
		t.Errorf("vs ceiling %v (%s), want 1.5 (hash)", s.VsCeiling, s.Ceiling)
	}
	// Latencies of all rounds together: 10 at 100 ms, 30 at 300 ms, 20 at
	// 200 ms; the 30th of 60 is 200 ms, the 60th 300 ms.
	if math.Abs(s.P50-200) > 1.2 || math.Abs(s.P99-300) > 1.8 {
		t.Errorf("p50 %v ms, p99 %v ms, want 200 and 300", s.P50, s.P99)
	}
	if s.OK != 60 || s.Errors != 2 || s.Timeouts != 1 || s.Shed != 5 || s.Conns != 4 {
		t.Errorf("counts %+v", s)
	}
	if y := summarizeRow(rowYardstick, rounds); y.VsCeiling != nil || *y.VsYardstick != 1 {
		t.Errorf("yardstick row: vs ceiling %v, vs itself %v", y.VsCeiling, *y.VsYardstick)
	}
}

func TestRPSUsesElapsed(t *testing.T) {
	r := runResult{ok: 50, elapsed: 2 * time.Second}
	if r.rps() != 25 {
		t.Errorf("rps %v, want 25", r.rps())
	}
	if (runResult{ok: 5}).rps() != 0 {
		t.Error("a run of no time has a rate")
	}
}

func TestIsolationRatios(t *testing.T) {
	rounds := []round{
		{runs: map[string]runResult{scMe: result(scMe, 1000, time.Millisecond, ""), rowIsolationMe: result(rowIsolationMe, 400, time.Millisecond, "")}},
		{runs: map[string]runResult{scMe: result(scMe, 1000, time.Millisecond, "")}}, // isolation did not run
	}
	got := isolationRatios(rounds)
	if len(got) != 1 || got[0] != 0.4 {
		t.Errorf("isolation ratios %v, want [0.4]", got)
	}
}
