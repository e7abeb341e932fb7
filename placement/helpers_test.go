package placement

import "math/rand"

// snap builds a snapshot with n DCs, uniform delay between different DCs,
// the given stage capacities and no instances.
func snap(n int, delay, bound float64, caps ...float64) *Snapshot {
	s := &Snapshot{N: n, DelayBound: bound, PCSCF: CPVNF{Name: "pcscf", Capacity: 500}, SCSCF: CPVNF{Name: "scscf", Capacity: 200},
		DPWorkload: map[Pair]float64{}, CPWorkload: map[Pair]float64{}, CurrentPaths: map[Pair]Path{}}
	for i, c := range caps {
		s.Stages = append(s.Stages, Stage{Name: string(rune('a' + i)), Capacity: c})
	}
	s.Delay = make([][]float64, n)
	s.DP = make([][]Provision, n)
	s.PCSCFProv = make([]Provision, n)
	for i := range s.Delay {
		s.Delay[i] = make([]float64, n)
		for j := range s.Delay[i] {
			if i != j {
				s.Delay[i][j] = delay
			}
		}
		s.DP[i] = make([]Provision, len(caps))
	}
	return s
}

// randomSnap makes a random small instance: delays 1..60 ms, bound 40..200,
// capacities, working and buffered instances, reserved capacity, workloads.
func randomSnap(r *rand.Rand, n, m int) *Snapshot {
	caps := make([]float64, m)
	for k := range caps {
		caps[k] = float64(5+r.Intn(20)) * 1000
	}
	s := snap(n, 0, float64(40+r.Intn(160)), caps...)
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			if i != j {
				s.Delay[i][j] = float64(1 + r.Intn(60))
			}
		}
		for k := 0; k < m; k++ {
			p := Provision{Working: r.Intn(4), Buffered: r.Intn(3)}
			if p.Working > 0 && r.Intn(3) == 0 {
				p.Reserved = r.Float64() * float64(p.Working) * caps[k] * 0.8
			}
			s.DP[i][k] = p
		}
	}
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			if r.Intn(3) > 0 {
				s.DPWorkload[Pair{i, j}] = float64(r.Intn(40000))
				s.CPWorkload[Pair{i, j}] = float64(r.Intn(300))
			}
		}
	}
	return s
}
