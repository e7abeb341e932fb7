package placement

import (
	"fmt"
	"math/rand"
	"syscall"
	"testing"
	"time"
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
					cpu := cpuTime()
					for i := 0; i < b.N; i++ {
						if _, err := Plan(s, mode.opt); err != nil {
							b.Fatal(err)
						}
					}
					reportCPU(b, cpu)
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

// steadySnap is the round after benchSnap(n, m)'s: the provisioning and paths
// its decision left (working, buffered after, paths as current paths), with
// the workload of a tenth of the pairs changed by −20..+20 % (the others'
// inputs are unchanged).
func steadySnap(n, m int) *Snapshot {
	s := benchSnap(n, m)
	d, err := Plan(s, Options{})
	if err != nil {
		panic(err)
	}
	next := *s
	next.DP = make([][]Provision, n)
	for i := range next.DP {
		next.DP[i] = make([]Provision, m)
		for k := range next.DP[i] {
			c := d.DP[i][k]
			next.DP[i][k] = Provision{Working: c.Working, Buffered: c.BufferedAfter}
		}
	}
	next.CurrentPaths = make(map[Pair]Path, len(d.Pairs))
	next.DPWorkload = make(map[Pair]float64, len(s.DPWorkload))
	r := rand.New(rand.NewSource(int64(n)))
	for _, p := range d.Pairs {
		next.CurrentPaths[p.Pair] = p.Path
	}
	for e := 0; e < n; e++ {
		for x := 0; x < n; x++ {
			pr := Pair{e, x}
			q := s.DPWorkload[pr]
			if r.Intn(10) == 0 {
				q *= 0.8 + 0.4*r.Float64()
			}
			next.DPWorkload[pr] = q
		}
	}
	return &next
}

// BenchmarkPlanSteady: a steady-state round (issue 17 goal: 500 DCs × 5
// stages < 1 s) with the improvement phase off and on.
func BenchmarkPlanSteady(b *testing.B) {
	for _, n := range []int{10, 100, 500} {
		for _, budget := range []int{0, 1000} {
			b.Run(fmt.Sprintf("dcs=%d/stages=5/improve=%d", n, budget), func(b *testing.B) {
				s := steadySnap(n, 5)
				b.ReportAllocs()
				b.ResetTimer()
				cpu := cpuTime()
				var rep *ImproveReport
				for i := 0; i < b.N; i++ {
					d, err := Plan(s, Options{Improve: ImproveOptions{Budget: budget}})
					if err != nil {
						b.Fatal(err)
					}
					rep = d.Improvement
				}
				reportCPU(b, cpu)
				reportImprovement(b, rep)
			})
		}
	}
}

// BenchmarkPlanImprove: a full round (BenchmarkPlan's) with the improvement
// phase at several budgets (pair searches).
func BenchmarkPlanImprove(b *testing.B) {
	for _, n := range []int{10, 100, 500} {
		for _, budget := range []int{0, 300, 1000, 3000} {
			if n == 500 && budget != 0 && budget != 1000 {
				continue
			}
			b.Run(fmt.Sprintf("dcs=%d/stages=3/improve=%d", n, budget), func(b *testing.B) {
				s := benchSnap(n, 3)
				b.ReportAllocs()
				b.ResetTimer()
				cpu := cpuTime()
				var rep *ImproveReport
				for i := 0; i < b.N; i++ {
					d, err := Plan(s, Options{Improve: ImproveOptions{Budget: budget}})
					if err != nil {
						b.Fatal(err)
					}
					rep = d.Improvement
				}
				reportCPU(b, cpu)
				reportImprovement(b, rep)
			})
		}
	}
}

// cpuTime is the process's CPU time so far (user + system, every thread:
// the round's own work and its GC).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU adds the CPU milliseconds per round since start: on the shared
// machine wall time is inflated by the other processes' load, CPU time much
// less.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime()-start)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
}

// reportImprovement adds the improvement phase's outcome to a benchmark's
// line: instances created saved, pairs re-routed, pair searches done.
func reportImprovement(b *testing.B, rep *ImproveReport) {
	if rep == nil {
		return
	}
	b.ReportMetric(float64(rep.CreatedBefore-rep.CreatedAfter), "saved-created")
	b.ReportMetric(float64(rep.Rerouted), "rerouted")
	b.ReportMetric(float64(rep.Work), "searches")
}
