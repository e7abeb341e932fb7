package placement

import (
	"fmt"
	"math/rand"
	"testing"
)

// benchSnap builds an n-DC round with every pair predicted: DCs in groups of 8
// (5 ms inside a group, 10–60 ms between groups), Table 2-like capacities,
// 0–3 working and 0–1 buffered instances per VNF per DC, 0–20000 pkt/s per pair.
func benchSnap(n, m int) *Snapshot {
	r := rand.New(rand.NewSource(int64(n*10 + m)))
	caps := []float64{35000, 20000, 15000, 25000, 30000}[:m]
	s := snap(n, 0, 250, caps...)
	groups := (n + 7) / 8
	gd := make([][]float64, groups)
	for i := range gd {
		gd[i] = make([]float64, groups)
		for j := 0; j < i; j++ {
			gd[i][j] = float64(10 + r.Intn(51))
			gd[j][i] = gd[i][j]
		}
	}
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			switch {
			case i == j:
			case i/8 == j/8:
				s.Delay[i][j] = 5
			default:
				s.Delay[i][j] = gd[i/8][j/8]
			}
		}
		for k := 0; k < m; k++ {
			s.DP[i][k] = Provision{Working: r.Intn(4), Buffered: r.Intn(2)}
		}
	}
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			s.DPWorkload[Pair{i, j}] = float64(r.Intn(20000))
			s.CPWorkload[Pair{i, j}] = float64(r.Intn(50))
		}
	}
	return s
}

// BenchmarkPlan: one full round over all n² pairs (issue 2 goal: 100 DCs × 3
// stages < 50 ms, 500 DCs < 5 s on the 2-core machine).
func BenchmarkPlan(b *testing.B) {
	for _, n := range []int{10, 100, 500} {
		for _, m := range []int{3, 5} {
			for _, mode := range []struct {
				name string
				opt  Options
			}{{"default", Options{}}, {"paper", Options{PaperOnly: true}}} {
				if n == 500 && mode.name == "paper" {
					continue
				}
				b.Run(fmt.Sprintf("dcs=%d/stages=%d/%s", n, m, mode.name), func(b *testing.B) {
					s := benchSnap(n, m)
					b.ReportAllocs()
					b.ResetTimer()
					for i := 0; i < b.N; i++ {
						if _, err := Plan(s, mode.opt); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		}
	}
}

// BenchmarkPlanDrained: the 100×3 and 100×5 rounds of BenchmarkPlan with one
// DC in ten drained (DCs 5, 15, …, 95; the S-CSCF DC 0 stays).
func BenchmarkPlanDrained(b *testing.B) {
	for _, m := range []int{3, 5} {
		b.Run(fmt.Sprintf("dcs=100/stages=%d", m), func(b *testing.B) {
			s := benchSnap(100, m)
			s.Excluded = make([]bool, s.N)
			for d := 5; d < s.N; d += 10 {
				s.Excluded[d] = true
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := Plan(s, Options{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
