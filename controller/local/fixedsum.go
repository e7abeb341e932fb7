package local

import "slices"

// fixedSum is Σ xs added in ascending order (it sorts xs in place). The
// registry is a map, and a float sum in its iteration order, which Go
// randomises on every range, differs in the last bits from one range to the
// next: two sums of the same samples then compare unequal, and a rule such
// as TrimEmpty's "the load is higher than LoadTrendTicks ago" fired on a
// flat load in some runs and not in others (the simulator was not
// byte-deterministic). The sum of the sorted values depends only on the
// values.
func fixedSum(xs []float64) float64 {
	slices.Sort(xs)
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s
}
