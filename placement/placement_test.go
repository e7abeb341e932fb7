package placement

import (
	"errors"
	"math"
	"reflect"
	"testing"
)

func TestPathHelpers(t *testing.T) {
	tests := []struct {
		name     string
		p        Path
		loopless bool
	}{
		{"paper example (0,0,1,1,2)", Path{0, 0, 1, 1, 2}, true},
		{"all local", Path{3, 3, 3, 3, 3}, true},
		{"paper loop (1,2,4,2,5)", Path{1, 2, 4, 2, 5}, false},
		{"back to entry", Path{0, 1, 0, 2}, false},
		{"exit in the middle", Path{0, 2, 1, 2}, false},
		{"interval experiment (0,2,2,2,1)", Path{0, 2, 2, 2, 1}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.p.Loopless(); got != tc.loopless {
				t.Fatalf("Loopless(%v) = %v, want %v", tc.p, got, tc.loopless)
			}
		})
	}
	d := [][]float64{{0, 10, 15}, {10, 0, 20}, {15, 20, 0}}
	if got := DelayOf(d, Path{0, 0, 1, 1, 2}); got != 30 {
		t.Fatalf("delay of (0,0,1,1,2) = %v, want 10+20", got)
	}
}

// The paper's 5.1 example: stage 1 in DC 0, stages 2 and 3 in DC 1, exit DC 2.
func TestAlg2FindsPaperExamplePath(t *testing.T) {
	s := snap(3, 10, 250, 35000, 20000, 15000)
	s.DP[0][0].Working = 1
	s.DP[1][1].Working = 1
	s.DP[1][2].Working = 1
	s.DPWorkload[Pair{0, 2}] = 10000
	dec, err := Plan(s, Options{})
	if err != nil {
		t.Fatal(err)
	}
	pp := dec.Pairs[0]
	if !pp.Path.Equal(Path{0, 0, 1, 1, 2}) || pp.NewInstances != 0 || pp.Method != MethodAlg2 {
		t.Fatalf("got %v new=%d method=%s, want (0,0,1,1,2) with no new instance", pp.Path, pp.NewInstances, pp.Method)
	}
}

// loopSnap sets up the paper's loop example: entry 1, exit 5; stage 2 has the
// most capacity in DC 4, stage 3 in DC 2 and then DC 3. With v = 2 the search
// builds (1,2,4,2): a loop.
func loopSnap(mergeWins bool) *Snapshot {
	s := snap(6, 10, 1000, 10, 10, 10)
	s.DP[2][0].Working = 1 // stage 1 fits in DC 2
	s.DP[4][1].Working = 5 // stage 2: DC 4 largest
	s.DP[2][2].Working = 5 // stage 3: DC 2 largest
	s.DP[3][2].Working = 3 // stage 3: DC 3 second
	if mergeWins {
		s.DP[2][1].Working = 1                                 // DC 2 can also take stage 2: (1,2,2,2) costs 0
		s.DP[3][2] = Provision{Working: 3, Reserved: 3*10 - 5} // DC 3 second but short: (1,2,4,3) costs 1
	}
	return s
}

func TestLoopEliminationBothApproaches(t *testing.T) {
	for _, tc := range []struct {
		name      string
		mergeWins bool
		want      Path // rec[0..3] after elimination
	}{
		{"approach 2 (re-choose DC 3) needs fewer instances", false, Path{1, 2, 4, 3}},
		{"approach 1 (merge into DC 2) needs fewer instances", true, Path{1, 2, 2, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := loopSnap(tc.mergeWins)
			st := newState(s, true)
			se := newSearch(st)
			se.prepare(1, 5, 10)
			rec := Path{1, 2, 4, 2, 5}
			if j := loopAt(rec, 3); j != 1 {
				t.Fatalf("loopAt = %d, want 1 (DC 2 at position 1)", j)
			}
			merged := se.eliminate(rec, 3, 1, 2, 10, 5)
			if !rec[:4].Equal(tc.want) || merged != tc.mergeWins {
				t.Fatalf("eliminate gave %v merged=%v, want %v merged=%v", rec[:4], merged, tc.want, tc.mergeWins)
			}
			// The whole of Alg. 2 finds a path with no new instance and reports the loop.
			r := se.alg2(Pair{1, 5}, 10)
			if r.cost.Added != 0 || !r.path.Loopless() || r.loops == 0 {
				t.Fatalf("alg2 = %v cost %+v loops %d", r.path, r.cost, r.loops)
			}
		})
	}
}

func TestStagePlacementRecurrences(t *testing.T) {
	inf := math.MaxInt32
	for _, tc := range []struct {
		name  string
		costs [][]int // [route position][stage]
		want  Path
		cost  int
	}{
		// N(1,1)=1 N(2,1)=0; N(1,2)=1 N(2,2)=2 N(3,2)=0; N(2,3)=2 N(3,3)=0 → trace N(3,3)←N(3,2)←N(2,1)
		{"answer N(k,m)", [][]int{{1, 0, 5}, {0, 2, 1}, {3, 0, 0}}, Path{0, 3, 5, 5, 5}, 0},
		// exit expensive: N(3,3)=11, N(2,3)=min(N(1,2)=1,N(2,2)=2)+0=1 → trace N(2,3)←N(1,2)←N(1,1)
		{"answer N(k-1,m)", [][]int{{1, 0, 5}, {0, 2, 0}, {9, 9, 9}}, Path{0, 0, 0, 3, 5}, 1},
		// stage 1 cannot be on the 3rd DC, and the middle DC must host a stage
		// ties: any placement that hosts a stage on DC 3 costs 5
		{"middle DC must host a stage", [][]int{{0, 0, 0}, {5, 5, 5}, {0, 0, 0}}, nil, 5},
		{"infeasible cells never chosen", [][]int{{0, 0, inf}, {inf, 0, inf}, {inf, inf, 0}}, Path{0, 0, 3, 5, 5}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			route := []int{0, 3, 5}
			pos := map[int]int{0: 0, 3: 1, 5: 2}
			p, c := stagePlacement(route, 3, func(d, k int) cost {
				v := tc.costs[pos[d]][k]
				if v == inf {
					return infCost
				}
				return cost{v, v}
			})
			hostsMiddle := p[1] == 3 || p[2] == 3 || p[3] == 3
			if (tc.want != nil && !p.Equal(tc.want)) || c.Added != tc.cost || !hostsMiddle || !p.Loopless() {
				t.Fatalf("got %v cost %d, want %v cost %d", p, c.Added, tc.want, tc.cost)
			}
		})
	}
}

func TestShortestFallbackWhenNoCandidateMeetsBound(t *testing.T) {
	// Direct 0→3 is 100 ms, via 1 and 2 it is 30 ms; bound 40: only routes
	// through 1 and 2 qualify, and Alg. 2's candidates with stages elsewhere
	// are too slow, so lines 18-20 run.
	s := snap(4, 100, 40, 10, 10, 10)
	s.Delay[0][1], s.Delay[1][2], s.Delay[2][3] = 10, 10, 10
	s.DPWorkload[Pair{0, 3}] = 5
	dec, err := Plan(s, Options{})
	if err != nil {
		t.Fatal(err)
	}
	pp := dec.Pairs[0]
	if pp.Delay > 40 || pp.DelayViolated || !pp.Path.Loopless() {
		t.Fatalf("path %v delay %v violated %v", pp.Path, pp.Delay, pp.DelayViolated)
	}
	if pp.Method != MethodShortest && pp.Method != MethodAlg2Extra {
		t.Fatalf("method %s", pp.Method)
	}
	// The paper's candidates alone all miss the bound: lines 18-20 run.
	dec, _ = Plan(s, Options{PaperOnly: true})
	if pp = dec.Pairs[0]; pp.Method != MethodShortest || pp.Delay != 30 || pp.DelayViolated {
		t.Fatalf("paper-only: %v delay %v method %s", pp.Path, pp.Delay, pp.Method)
	}
	// Bound below any route: shortest-delay path, flagged.
	s.DelayBound = 20
	dec, _ = Plan(s, Options{})
	pp = dec.Pairs[0]
	if !pp.DelayViolated || pp.Method != MethodShortest || pp.Delay != 30 {
		t.Fatalf("got %v delay %v method %s violated %v", pp.Path, pp.Delay, pp.Method, pp.DelayViolated)
	}
}

func TestAlg1KeepScaleOutReuseScaleIn(t *testing.T) {
	s := snap(3, 10, 250, 35000, 20000, 15000)
	cur := Path{0, 0, 1, 1, 2}
	s.CurrentPaths[Pair{0, 2}] = cur
	s.DP[0][0].Working = 1
	s.DP[1][1].Working = 1
	s.DP[1][2] = Provision{Working: 1, Buffered: 2}
	s.DP[2][0].Working = 3 // unused: goes to the buffer
	s.DPWorkload[Pair{0, 2}] = 10000

	dec, err := Plan(s, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if p := dec.Pairs[0]; p.Method != MethodKept || !p.Path.Equal(cur) {
		t.Fatalf("current path not kept: %+v", p)
	}
	if c := dec.DP[2][0]; c.ToBuffer != 3 || c.Working != 0 || c.BufferedAfter != 3 {
		t.Fatalf("scale-in of DC 2 firewall: %+v", c)
	}

	// Load grows past the path: Alg. 2 runs and scales out ⌈(Q−Q')/C⌉,
	// reusing DC 1's two buffered transcoders before creating.
	s.DPWorkload[Pair{0, 2}] = 50000
	dec, _ = Plan(s, Options{})
	p := dec.Pairs[0]
	if p.Method == MethodKept {
		t.Fatalf("path kept although short of capacity")
	}
	total := 0
	for d := range dec.DP {
		for k, c := range dec.DP[d] {
			total += c.Reused + c.Created
			if float64(c.Working)*s.Stages[k].Capacity+1e-6 < c.Load {
				t.Fatalf("dc %d stage %d: %d instances cannot carry %v", d, k, c.Working, c.Load)
			}
		}
	}
	if total != p.NewInstances {
		t.Fatalf("counts add %d instances, pair reports %d", total, p.NewInstances)
	}
	if p.Path[3] == 1 && dec.DP[1][2].Reused != 2 {
		t.Fatalf("transcoder in DC 1 should reuse the 2 buffered instances first: %+v", dec.DP[1][2])
	}
}

func TestEntryEqualsExitLast(t *testing.T) {
	s := snap(2, 10, 250, 100, 100)
	s.DP[0][0].Working, s.DP[0][1].Working = 1, 1
	s.DPWorkload[Pair{0, 0}] = 100
	s.DPWorkload[Pair{0, 1}] = 60 // placed first, takes DC 0's capacity if it wants it
	dec, _ := Plan(s, Options{})
	last := dec.Pairs[len(dec.Pairs)-1]
	if last.Pair != (Pair{0, 0}) || last.Method != MethodLocal || !last.Path.Equal(Path{0, 0, 0, 0}) {
		t.Fatalf("entry=exit pair must come last with a local path: %+v", last)
	}
}

func TestCPSizing(t *testing.T) {
	s := snap(3, 10, 250, 100)
	s.PCSCF.Min, s.SCSCF.Min = 1, 1
	s.SCSCFDC = 0
	s.CPWorkload[Pair{0, 1}] = 600
	s.CPWorkload[Pair{1, 1}] = 100
	s.CPWorkload[Pair{2, 0}] = 300
	s.PCSCFProv[1] = Provision{Working: 4, Buffered: 1}
	s.PCSCFProv[2] = Provision{Buffered: 1}
	dec, err := Plan(s, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []Count{
		{Before: 0, Working: 2, Created: 2, Load: 900},                    // 600+300 over 500/instance
		{Before: 4, Working: 2, ToBuffer: 2, BufferedAfter: 3, Load: 700}, // 600+100 (1→1 once)
		{Before: 0, Working: 1, Reused: 1, BufferedAfter: 0, Load: 300},   // min 1, from the buffer
	}
	if !reflect.DeepEqual(dec.PCSCF, want) {
		t.Fatalf("P-CSCF\n got %+v\nwant %+v", dec.PCSCF, want)
	}
	if dec.SCSCF.Working != 5 || dec.SCSCF.Created != 5 { // 1000 tx/s over 200
		t.Fatalf("S-CSCF %+v", dec.SCSCF)
	}
}

func TestValidateNamesField(t *testing.T) {
	for _, tc := range []struct {
		name, field string
		mut         func(*Snapshot)
	}{
		{"non-square", "delays[1]", func(s *Snapshot) { s.Delay[1] = s.Delay[1][:1] }},
		{"negative delay", "delays[0][1]", func(s *Snapshot) { s.Delay[0][1] = -1 }},
		{"zero capacity", "dataPlane.stages[0].capacity", func(s *Snapshot) { s.Stages[0].Capacity = 0 }},
		{"stage mismatch", "instances[dc 1]", func(s *Snapshot) { s.DP[1] = s.DP[1][:0] }},
		{"short path", "paths[0→1]", func(s *Snapshot) { s.CurrentPaths[Pair{0, 1}] = Path{0, 1} }},
		{"unknown dc in workload", "workload.dp[0→7]", func(s *Snapshot) { s.DPWorkload[Pair{0, 7}] = 1 }},
		{"NaN workload", "workload.cp[0→1]", func(s *Snapshot) { s.CPWorkload[Pair{0, 1}] = math.NaN() }},
		{"reserved above capacity", "instances[dc 0][a].reserved", func(s *Snapshot) { s.DP[0][0] = Provision{Working: 1, Reserved: 11} }},
		{"no bound", "delayBoundMs", func(s *Snapshot) { s.DelayBound = 0 }},
		{"huge workload", "workload.dp[0→1]", func(s *Snapshot) { s.DPWorkload[Pair{0, 1}] = 1e300 }},
		{"huge working count", "instances[dc 0][a].working", func(s *Snapshot) { s.DP[0][0].Working = 1 << 62 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := snap(2, 10, 250, 10)
			tc.mut(s)
			_, err := Plan(s, Options{})
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field {
				t.Fatalf("err = %v, want a FieldError on %q", err, tc.field)
			}
		})
	}
}

func TestExactRefusesLargeInstances(t *testing.T) {
	s := snap(200, 10, 250, 10, 10, 10)
	if _, err := Plan(s, Options{Exact: true}); err == nil {
		t.Fatal("exact solver on 200^3 paths should be refused")
	}
}

// CP loads are summed in pair order: map order must not change the last bits
// (and so, near a boundary, an instance count).
func TestCPSizingDeterministic(t *testing.T) {
	s := snap(8, 10, 250, 100)
	for i := 0; i < 8; i++ {
		for j := 0; j < 8; j++ {
			s.CPWorkload[Pair{i, j}] = 0.1 + float64(i*8+j)*1.01
		}
	}
	first, _ := Plan(s, Options{})
	for run := 0; run < 50; run++ {
		d, _ := Plan(s, Options{})
		if d.SCSCF.Load != first.SCSCF.Load || !reflect.DeepEqual(d.PCSCF, first.PCSCF) {
			t.Fatalf("run %d: S-CSCF load %v vs %v", run, d.SCSCF.Load, first.SCSCF.Load)
		}
	}
}
