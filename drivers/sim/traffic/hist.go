package traffic

import "math"

// Hist is a fixed log-bucket histogram of non-negative values (ms, or loss
// fractions): 100 buckets per decade from HistMin to HistMax, an underflow
// bucket for values ≤ HistMin (and zero) and an overflow bucket. Quantiles
// are exact to the bucket (≤ 2.4 % relative error); Mean is exact. It uses a
// fixed 10 KiB whatever the number of values.
type Hist struct {
	counts [histBuckets + 2]float64
	n      float64
	sum    float64
	max    float64
}

// Histogram range.
const (
	HistMin       = 1e-6
	HistMax       = 1e7
	histPerDecade = 100
	histBuckets   = 13 * histPerDecade // decades from 1e-6 to 1e7
)

func bucketOf(x float64) int {
	if !(x > HistMin) {
		return 0
	}
	if x >= HistMax {
		return histBuckets + 1
	}
	b := int(math.Floor((math.Log10(x) + 6) * histPerDecade))
	return 1 + min(max(b, 0), histBuckets-1)
}

// upper returns the upper edge of bucket b.
func upper(b int) float64 {
	switch {
	case b == 0:
		return HistMin
	case b > histBuckets:
		return math.Inf(1)
	}
	return math.Pow(10, float64(b)/histPerDecade-6)
}

// Add records x with weight w (w ≤ 0 or NaN values are ignored).
func (h *Hist) Add(x, w float64) {
	if !(w > 0) || math.IsNaN(x) {
		return
	}
	if x < 0 {
		x = 0
	}
	h.counts[bucketOf(x)] += w
	h.n += w
	h.sum += x * w
	if x > h.max {
		h.max = x
	}
}

// Count is the total weight.
func (h *Hist) Count() float64 { return h.n }

// Mean is the weighted mean (0 when empty).
func (h *Hist) Mean() float64 {
	if h.n == 0 {
		return 0
	}
	return h.sum / h.n
}

// Max is the largest value added.
func (h *Hist) Max() float64 { return h.max }

// Quantile returns the upper edge of the bucket holding the q-quantile,
// never above Max (0 when empty).
func (h *Hist) Quantile(q float64) float64 {
	if h.n == 0 {
		return 0
	}
	target := q * h.n
	acc := 0.0
	for b, c := range h.counts {
		acc += c
		if c > 0 && acc >= target-1e-9 {
			return math.Min(upper(b), h.max)
		}
	}
	return h.max
}

// Reset empties the histogram.
func (h *Hist) Reset() { *h = Hist{} }

// CDFPoint is one point of a cumulative distribution: the fraction of the
// weight at or below Le.
type CDFPoint struct {
	Le       float64
	Fraction float64
}

// CDF returns one point per non-empty bucket, in strictly increasing Le
// (the last point's Le is Max, its Fraction 1).
func (h *Hist) CDF() []CDFPoint {
	var out []CDFPoint
	acc := 0.0
	for b, c := range h.counts {
		if c == 0 {
			continue
		}
		acc += c
		p := CDFPoint{Le: math.Min(upper(b), h.max), Fraction: acc / h.n}
		if k := len(out) - 1; k >= 0 && out[k].Le >= p.Le {
			out[k].Fraction = p.Fraction // Max falls on a bucket's upper edge
			continue
		}
		out = append(out, p)
	}
	return out
}
