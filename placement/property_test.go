package placement

import (
	"math"
	"math/rand"
	"reflect"
	"testing"

	"pgregory.net/rapid"
)

// genSnap draws a small random snapshot for property tests.
func genSnap(t *rapid.T) *Snapshot {
	n := rapid.IntRange(1, 6).Draw(t, "n")
	m := rapid.IntRange(1, 4).Draw(t, "m")
	seed := rapid.Int64().Draw(t, "seed")
	s := randomSnap(rand.New(rand.NewSource(seed)), n, m)
	if rapid.Bool().Draw(t, "withCurrentPaths") {
		// current paths from a previous round
		prev, err := Plan(s, Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range prev.Pairs {
			s.CurrentPaths[p.Pair] = p.Path
		}
	}
	return s
}

func TestPlanInvariants(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := genSnap(t)
		opt := Options{IgnoreBuffer: rapid.Bool().Draw(t, "ignoreBuffer")}
		checkPlan(t, s, opt)
	})
}

// checkPlan plans s with opt and checks the invariants every round keeps:
// well-formed loopless paths within the bound whenever one exists, capacity
// for the load, consistent counts, the load on the paths, determinism.
func checkPlan(t *rapid.T, s *Snapshot, opt Options) *Decision {
	dec, err := Plan(s, opt)
	if err != nil {
		t.Fatal(err)
	}
	m := len(s.Stages)
	for _, p := range dec.Pairs {
		if len(p.Path) != m+2 || p.Path[0] != p.Pair.Entry || p.Path[m+1] != p.Pair.Exit {
			t.Fatalf("pair %v: malformed path %v", p.Pair, p.Path)
		}
		if !p.Path.Loopless() {
			t.Fatalf("pair %v: path %v has a loop", p.Pair, p.Path)
		}
		if math.Abs(DelayOf(s.Delay, p.Path)-p.Delay) > 1e-9 && p.Pair.Entry != p.Pair.Exit {
			t.Fatalf("pair %v: reported delay %v, path delay %v", p.Pair, p.Delay, DelayOf(s.Delay, p.Path))
		}
		feasible := minDelay(s, p.Pair) <= s.DelayBound+1e-9
		if p.Pair.Entry != p.Pair.Exit {
			if feasible && (p.DelayViolated || p.Delay > s.DelayBound+1e-9) {
				t.Fatalf("pair %v: a path within %v ms exists but got %v (%v ms)", p.Pair, s.DelayBound, p.Path, p.Delay)
			}
			if !feasible && !p.DelayViolated {
				t.Fatalf("pair %v: no path can meet the bound, yet not flagged", p.Pair)
			}
		}
	}
	// capacity covers the predicted workload placed on every VNF
	for d := range dec.DP {
		for k, c := range dec.DP[d] {
			if float64(c.Working)*s.Stages[k].Capacity+1e-6 < c.Load {
				t.Fatalf("dc %d stage %d: %d instances for load %v", d, k, c.Working, c.Load)
			}
			if c.Working != c.Before+c.Reused+c.Created-c.ToBuffer || c.Reused > s.DP[d][k].Buffered || c.BufferedAfter < 0 {
				t.Fatalf("dc %d stage %d: inconsistent counts %+v (buffered %d)", d, k, c, s.DP[d][k].Buffered)
			}
			if c.ToBuffer > 0 && c.Created+c.Reused > 0 {
				t.Fatalf("dc %d stage %d: scales out and in at once %+v", d, k, c)
			}
		}
	}
	// every pair's workload is on its path
	load := make([][]float64, s.N)
	for d := range load {
		load[d] = make([]float64, m)
		for k := range load[d] {
			load[d][k] = s.DP[d][k].Reserved
		}
	}
	for _, p := range dec.Pairs {
		for k := 0; k < m; k++ {
			load[p.Path[k+1]][k] += p.Workload
		}
	}
	for d := range load {
		for k := range load[d] {
			if math.Abs(load[d][k]-dec.DP[d][k].Load) > 1e-6 {
				t.Fatalf("dc %d stage %d: load %v, decision says %v", d, k, load[d][k], dec.DP[d][k].Load)
			}
		}
	}
	// deterministic
	again, _ := Plan(s, opt)
	if !reflect.DeepEqual(dec, again) {
		t.Fatal("same snapshot, different decision")
	}
	return dec
}

// minDelay is the least delay any valid path of the pair can have, by brute
// force over the stage assignments.
func minDelay(s *Snapshot, pr Pair) float64 {
	m := len(s.Stages)
	best := math.Inf(1)
	p := make(Path, m+2)
	p[0], p[m+1] = pr.Entry, pr.Exit
	var rec func(k int)
	rec = func(k int) {
		if k == m {
			if p.Loopless() {
				best = math.Min(best, DelayOf(s.Delay, p))
			}
			return
		}
		for d := 0; d < s.N; d++ {
			p[k+1] = d
			rec(k + 1)
		}
	}
	rec(0)
	return best
}

// The exact solver is optimal: Alg. 2 never beats it, on any pair.
func TestExactIsALowerBound(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := genSnap(t)
		for pr, q := range s.DPWorkload {
			if pr.Entry == pr.Exit {
				continue
			}
			hp, _, hc, err := BestPath(s, pr, q, false, Options{})
			if err != nil {
				t.Fatal(err)
			}
			ep, _, ec, _ := BestPath(s, pr, q, true, Options{})
			hFeasible := DelayOf(s.Delay, hp) <= s.DelayBound+1e-9
			eFeasible := DelayOf(s.Delay, ep) <= s.DelayBound+1e-9
			if hFeasible != eFeasible {
				t.Fatalf("pair %v: feasibility differs: alg2 %v exact %v", pr, hp, ep)
			}
			if hFeasible && ec > hc {
				t.Fatalf("pair %v: exact %v creates %d > alg2 %v %d", pr, ep, ec, hp, hc)
			}
		}
	})
}

// The pruning in Alg. 2 (skipping a v whose lower bound already loses to the
// best candidate) must change no path.
func TestPruningChangesNoPath(t *testing.T) {
	r := rand.New(rand.NewSource(7))
	for i := 0; i < 400; i++ {
		s := randomSnap(r, 3+r.Intn(6), 1+r.Intn(4))
		for _, paper := range []bool{false, true} {
			a, b := newSearch(newState(s, false)), newSearch(newState(s, false))
			a.paperOnly, b.paperOnly = paper, paper
			b.noPrune = true
			for pr, q := range s.DPWorkload {
				if pr.Entry == pr.Exit {
					continue
				}
				ra, rb := a.alg2(pr, q), b.alg2(pr, q)
				if !ra.path.Equal(rb.path) || ra.cost != rb.cost {
					t.Fatalf("instance %d pair %v paper=%v: pruned %v %+v, unpruned %v %+v", i, pr, paper, ra.path, ra.cost, rb.path, rb.cost)
				}
			}
		}
	}
}

// Reusing the first generic v's scan for the other generic v (Alg. 2) gives
// exactly the full scan's result: path, cost, delay, method and counters.
func TestGenericVChangesNoPath(t *testing.T) {
	r := rand.New(rand.NewSource(11))
	compared := 0
	for i := 0; i < 60; i++ {
		n, m := 8+r.Intn(33), 2+r.Intn(4)
		s := randomSnap(r, n, m)
		for _, paper := range []bool{false, true} {
			a, b := newSearch(newState(s, false)), newSearch(newState(s, false))
			a.paperOnly, b.paperOnly = paper, paper
			b.noGeneric = true
			for e := 0; e < n; e++ {
				for x := 0; x < n; x++ {
					pr := Pair{e, x}
					q, ok := s.DPWorkload[pr]
					if !ok || e == x {
						continue
					}
					ra, rb := a.alg2(pr, q), b.alg2(pr, q)
					if !ra.path.Equal(rb.path) || ra.cost != rb.cost || ra.delay != rb.delay || ra.method != rb.method ||
						ra.candidates != rb.candidates || ra.loops != rb.loops || ra.merged != rb.merged {
						t.Fatalf("instance %d (n=%d m=%d) pair %v paper=%v:\n generic %v %+v %v %s cand %d loops %d/%d\n full    %v %+v %v %s cand %d loops %d/%d",
							i, n, m, pr, paper, ra.path, ra.cost, ra.delay, ra.method, ra.candidates, ra.loops, ra.merged,
							rb.path, rb.cost, rb.delay, rb.method, rb.candidates, rb.loops, rb.merged)
					}
					compared++
				}
			}
		}
	}
	t.Logf("%d pairs compared", compared)
}
