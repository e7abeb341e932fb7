package ovs

import (
	"context"
	"io"
	"testing"
)

// BenchmarkApplyCallChurn is the Switch's own work for one call's rule
// update (no ovs-ofctl: a run that only drains its input): 500 calls'
// entry rules of three pairs, each update ends one call and starts
// another, which takes the previous update's tombstone over (one
// tombstone lives at a time), so every Apply diffs 503 rules and writes a
// bundle of a few lines.
//
//	nice go test -run '^$' -bench BenchmarkApplyCallChurn -benchmem ./drivers/ovs
func BenchmarkApplyCallChurn(b *testing.B) {
	sw, _ := modelSwitch(b, newModelBridge())
	sw.ofctl = func(_ context.Context, stdin io.Reader, _ ...string) (string, error) {
		if stdin != nil {
			_, _ = io.Copy(io.Discard, stdin)
		}
		return "", nil
	}
	wants := churnSets(500, func(p Pair, c int) Flow { return modelEntry(p, uint32(c), 6000+c) })
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := sw.Apply(ctx, wants[i%2]); err != nil {
			b.Fatal(err)
		}
	}
}

// churnSets are the two rule sets a call-churn benchmark alternates: the
// counter rules of 3 pairs and calls entry rules (entry of call c, pair
// c mod 3), the second set one call on (its first call ended, a new one
// started).
func churnSets(calls int, entry func(p Pair, c int) Flow) [][]Flow {
	pairs := []Pair{{0, 0}, {0, 1}, {0, 2}}
	wants := make([][]Flow, 2)
	for i := range wants {
		for _, p := range pairs {
			wants[i] = append(wants[i], PairCounter(p))
		}
		for c := i; c < calls+i; c++ {
			wants[i] = append(wants[i], entry(pairs[c%3], c))
		}
	}
	return wants
}
