package main

import (
	"math"
	"time"
)

// Latencies go into a fixed histogram of logarithmic buckets rather than a
// slice, so memory stays bounded however many requests a run sends, and
// histograms of workers and rounds merge by adding counts. Each bucket is 1%
// wider than the one below it, so a percentile read from it is within 0.5%
// of the true value.
const (
	histGrowth  = 1.01
	histBuckets = 2600 // 1.01^2600 ns ≈ 170 s, far beyond any request timeout
)

// histogram counts durations in logarithmic buckets.
type histogram struct {
	counts [histBuckets]uint64
	total  uint64
}

// bucketOf returns the bucket holding d; durations below 1 ns go to the
// first bucket and beyond the last to the last one.
func bucketOf(d time.Duration) int {
	if d <= 1 {
		return 0
	}
	i := int(math.Log(float64(d)) / math.Log(histGrowth))
	return min(max(i, 0), histBuckets-1)
}

// bucketValue is the geometric middle of bucket i: the value a percentile
// falling in that bucket is reported as.
func bucketValue(i int) time.Duration {
	return time.Duration(math.Pow(histGrowth, float64(i)+0.5))
}

func (h *histogram) record(d time.Duration) {
	h.counts[bucketOf(d)]++
	h.total++
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
}

// percentile returns the duration below which a fraction q (0 < q ≤ 1) of
// the recorded durations fall, using the nearest-rank definition; 0 when
// nothing was recorded.
func (h *histogram) percentile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.total)))
	rank = min(max(rank, 1), h.total)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return bucketValue(i)
		}
	}
	return bucketValue(histBuckets - 1)
}
