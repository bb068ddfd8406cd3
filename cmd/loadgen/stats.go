package main

import (
	"math"
	"slices"
	"time"
)

// median returns the median of xs, ignoring NaNs (ratios with nothing to
// divide by); NaN when nothing is left.
func median(xs []float64) float64 {
	var v []float64
	for _, x := range xs {
		if !math.IsNaN(x) {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return math.NaN()
	}
	slices.Sort(v)
	mid := len(v) / 2
	if len(v)%2 == 1 {
		return v[mid]
	}
	return (v[mid-1] + v[mid]) / 2
}

// minMax returns the smallest and largest of xs; NaNs when xs is empty.
func minMax(xs []float64) (lo, hi float64) {
	if len(xs) == 0 {
		return math.NaN(), math.NaN()
	}
	return slices.Min(xs), slices.Max(xs)
}

// ratio is a / b, or NaN when b is not positive: a rate compared with
// nothing is not 0, it is unknown.
func ratio(a, b float64) float64 {
	if b <= 0 || math.IsNaN(b) || math.IsNaN(a) {
		return math.NaN()
	}
	return a / b
}

// ms converts a duration to milliseconds for the report.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// opt turns NaN (unknown) into nil, which JSON can carry and the report
// prints as a dash.
func opt(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

// round is what one counted round measured.
type round struct {
	runs  map[string]runResult // by row
	hash  runResult            // password-hash ceiling
	hs256 runResult            // HS256 ceiling
}

// ceilingRate is the rate of the ceiling a row is compared with, in r.
func (r round) ceilingRate(name string) float64 {
	switch name {
	case ceilingHash:
		return r.hash.rps()
	case ceilingHS256:
		return r.hs256.rps()
	}
	return math.NaN()
}

// summarizeRow folds one row's results over the counted rounds: rates per
// round (median, min, max), latencies over all rounds together, counts
// summed, and the median over rounds of the row's rate divided by the
// yardstick's and by its ceiling's in the same round.
func summarizeRow(name string, rounds []round) rowSummary {
	s := rowSummary{Name: name}
	hist := &histogram{}
	var vsYard, vsCeil []float64
	for _, r := range rounds {
		res, ok := r.runs[name]
		if !ok {
			continue
		}
		s.Conns, s.Ceiling = res.conns, res.ceiling
		s.RPS = append(s.RPS, res.rps())
		s.OK += res.ok
		s.Errors += res.errors
		s.Timeouts += res.timeouts
		s.Shed += res.shed
		hist.merge(res.hist)
		vsYard = append(vsYard, ratio(res.rps(), r.runs[rowYardstick].rps()))
		vsCeil = append(vsCeil, ratio(res.rps(), r.ceilingRate(res.ceiling)))
	}
	lo, hi := minMax(s.RPS)
	s.RPSMedian, s.RPSMin, s.RPSMax = median(s.RPS), lo, hi
	s.P50, s.P99 = ms(hist.percentile(0.50)), ms(hist.percentile(0.99))
	s.VsYardstick, s.VsYardstickRounds = opt(median(vsYard)), vsYard
	if s.Ceiling != "" {
		s.VsCeiling = opt(median(vsCeil))
	}
	return s
}

// summarizeCeiling folds one ceiling over the counted rounds.
func summarizeCeiling(name string, runs []runResult) ceilingSummary {
	c := ceilingSummary{Name: name, Workers: ceilingWorkers}
	hist := &histogram{}
	for _, r := range runs {
		c.PerSecond = append(c.PerSecond, r.rps())
		hist.merge(r.hist)
	}
	lo, hi := minMax(c.PerSecond)
	c.Median, c.Min, c.Max = median(c.PerSecond), lo, hi
	c.P50 = ms(hist.percentile(0.50))
	return c
}

// isolationRatios is, per round, me's rate under the login storm divided by
// me's rate alone.
func isolationRatios(rounds []round) []float64 {
	var out []float64
	for _, r := range rounds {
		loaded, ok1 := r.runs[rowIsolationMe]
		alone, ok2 := r.runs[scMe]
		if ok1 && ok2 {
			out = append(out, ratio(loaded.rps(), alone.rps()))
		}
	}
	return out
}
