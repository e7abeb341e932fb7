package dataplane

import (
	"cmp"
	"fmt"
	"math"
	"math/bits"
	"slices"

	"github.com/ims-orch/ims-orch/controller/routing"
)

// A tag rule decides in the switch, for every flow of a (pair, interval)
// that arrives through the tunnel, which instances of the stages this DC
// hosts carry it. It splits those flows over the stages' instances by
// bits 1..splitBits of the UDP source port (bit 0 is skipped: RTP sends
// from even ports), into splitBuckets buckets, each writing its own
// instances; the buckets of an instance are its share of splitBuckets
// (routing.Table.Shares: where Route would place the next splitBatch
// flows), rounded by the largest remainder. The learned per-flow rule then
// pins each flow to the instances its bucket named, whatever the split is
// later.
const (
	splitBits    = 4
	splitBuckets = 1 << splitBits
	splitShift   = 1 // the bucket's bits start at bit 1 of the source port
	// splitBatch is how many new transit flows a stage's split is made
	// for: the flows expected before the DC's rules are compiled again.
	// Every EndCall recompiles each DC of the plane, and calls start about
	// as often as they end, so about one call, its two media flows, arrives
	// between two compiles. The split is Route's placement of those two:
	// under packing the most-loaded instance with room takes them (both
	// halves of the buckets when it has room for 2, one half when for 1),
	// without packing the least-loaded. A larger batch would spread them by
	// room, which sends most transit flows to the instances packing is
	// emptying for trimming.
	splitBatch = 2
)

// splitter holds every stage's bucket assignment for one Compile. Buckets
// are laid out by position p = the bucket's bits reversed: an instance's
// buckets are a run of positions, and an aligned run of 2^k positions is
// the buckets that share their low splitBits−k bits, one masked match.
type splitter struct {
	// at[s-1][p] is the instance of stage s at position p; nil when the
	// stage has no live instance to route to
	at [routing.MaxStages][]uint8
	// done[first-1][last-1]: blocks(first, last) was computed, into
	// memo[first-1][last-1] (the same for every tag rule of a Compile)
	done [routing.MaxStages][routing.MaxStages]bool
	memo [routing.MaxStages][routing.MaxStages][]block
}

// block is an aligned run of positions whose instances agree on every
// stage of a tag rule: one rule.
type block struct {
	inst  [routing.MaxStages]uint8
	match string // ",tp_src=v/mask", "" for all buckets
}

func newSplitter(t *routing.Table, live *[routing.MaxStages]map[uint8]Ports) *splitter {
	sp := &splitter{}
	for s := 1; s <= t.Stages(); s++ {
		shares := t.Shares(s, splitBatch, func(idx uint8) bool {
			_, ok := live[s-1][idx]
			return ok // no port: nothing to send to
		})
		slices.SortFunc(shares, func(a, b routing.Share) int { return cmp.Compare(a.Index, b.Index) })
		n := apportion(shares, splitBuckets)
		if n == nil {
			continue
		}
		at := make([]uint8, 0, splitBuckets)
		for i, x := range shares {
			for range n[i] {
				at = append(at, x.Index)
			}
		}
		sp.at[s-1] = at
	}
	return sp
}

// apportion divides buckets among shares in proportion to their weights by
// the largest remainder (ties: the earlier share); nil when no share has a
// positive weight.
func apportion(shares []routing.Share, buckets int) []int {
	var sum float64
	for _, x := range shares {
		sum += max(x.Weight, 0)
	}
	if !(sum > 0) || math.IsInf(sum, 0) {
		return nil
	}
	n := make([]int, len(shares))
	rem := make([]float64, len(shares))
	left := buckets
	for i, x := range shares {
		q := float64(buckets) * max(x.Weight, 0) / sum
		n[i] = int(q)
		rem[i] = q - float64(n[i])
		left -= n[i]
	}
	order := make([]int, len(shares))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(rem[b], rem[a]) })
	for _, i := range order[:left] {
		n[i]++
	}
	return n
}

// blocks returns the rules' buckets for a tag rule covering stages
// first..last: the fewest aligned runs of positions with one instance per
// stage each, in position order; none when a stage has no instance.
func (sp *splitter) blocks(first, last int) []block {
	if !sp.done[first-1][last-1] {
		sp.memo[first-1][last-1] = sp.split(first, last)
		sp.done[first-1][last-1] = true
	}
	return sp.memo[first-1][last-1]
}

// split computes blocks(first, last).
func (sp *splitter) split(first, last int) []block {
	for s := first; s <= last; s++ {
		if sp.at[s-1] == nil {
			return nil
		}
	}
	var out []block
	var run func(start, k int) // positions start .. start+2^(splitBits-k)-1
	run = func(start, k int) {
		size := splitBuckets >> k
		same := true
		for s := first; s <= last && same; s++ {
			for _, x := range sp.at[s-1][start : start+size] {
				if x != sp.at[s-1][start] {
					same = false
					break
				}
			}
		}
		if !same {
			run(start, k+1)
			run(start+size/2, k+1)
			return
		}
		b := block{}
		for s := first; s <= last; s++ {
			b.inst[s-1] = sp.at[s-1][start]
		}
		if k > 0 {
			// the positions' top k bits are the buckets' low k bits, reversed
			v := bits.Reverse16(uint16(start>>(splitBits-k))) >> (16 - k)
			b.match = fmt.Sprintf(",tp_src=%#x/%#x", v<<splitShift, (1<<k-1)<<splitShift)
		}
		out = append(out, b)
	}
	run(0, 0)
	return out
}
