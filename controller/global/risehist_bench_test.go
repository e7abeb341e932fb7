package global

import (
	"fmt"
	"testing"

	"github.com/ims-orch/ims-orch/controller/fsm"
	"github.com/ims-orch/ims-orch/placement"
)

// BenchmarkRiseRound times a round's rise work under the engine lock
// (decide: sumStages, stageHistory and riseFlags) at n DCs with every
// pair planned through all its stages and a full replicated history
// (fsm.MaxHistory rounds, cp, dp and delay series of every pair); the
// "sumStagesOnly" variant is session 17's share (its history was engine
// memory). Review revHH L1; docs/benchmarks.md "Session 18: the rise
// history's round work".
func BenchmarkRiseRound(b *testing.B) {
	for _, n := range []int{10, 50, 100} {
		topo := testTopology(n)
		d := &placement.Decision{}
		for i := range n {
			for j := range n {
				d.Pairs = append(d.Pairs, placement.PairPlan{Pair: placement.Pair{Entry: i, Exit: j}, Workload: 100, Path: placement.Path{i, i, j, j, j}})
			}
		}
		var hist []fsm.Prediction
		for r := range uint64(fsm.MaxHistory) {
			a := map[string]float64{}
			for _, x := range topo.DCs {
				for _, y := range topo.DCs {
					a[SeriesKey(KindDP, x, y)] = float64(r)
					a[SeriesKey(KindCP, x, y)] = 1
					a["delay/"+x+"/"+y] = 5
				}
			}
			hist = append(hist, fsm.Prediction{Round: r + 100, Actual: a})
		}
		// one pair held (absent) this round: the path that asks for
		// earlier measurements
		delete(hist[len(hist)-1].Actual, SeriesKey(KindDP, topo.DCs[0], topo.DCs[0]))
		cur := hist[len(hist)-1]
		p, err := RisePolicy{}.withDefaults()
		if err != nil {
			b.Fatal(err)
		}
		if len(d.Pairs[0].Path) != len(topo.Stages)+2 {
			b.Fatalf("paths of %d DCs, want %d stages + 2", len(d.Pairs[0].Path), len(topo.Stages))
		}
		b.Run(fmt.Sprintf("sumStagesOnly/dcs=%d", n), func(b *testing.B) {
			for range b.N {
				_ = sumStages(&topo, d, cur.Actual, nil, p)
			}
		})
		b.Run(fmt.Sprintf("dcs=%d", n), func(b *testing.B) {
			for range b.N {
				s := sumStages(&topo, d, cur.Actual, nil, p)
				_ = riseFlags(s, stageHistory(&topo, d, hist, &cur, p), topo.Stages, p)
			}
		})
	}
}
