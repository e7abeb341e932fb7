package placement

import (
	"math/rand"
	"testing"

	"pgregory.net/rapid"
)

// The improvement phase keeps every invariant of a round, is deterministic
// for a fixed budget, and never adds more instances than Alg. 1 (created,
// then added).
func TestImproveInvariants(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := genSnap(t)
		opt := Options{IgnoreBuffer: rapid.Bool().Draw(t, "ignoreBuffer"), LocalFirst: rapid.Bool().Draw(t, "localFirst")}
		base, err := Plan(s, opt)
		if err != nil {
			t.Fatal(err)
		}
		opt.Improve.Budget = rapid.IntRange(1, 400).Draw(t, "budget")
		dec := checkPlan(t, s, opt)
		bc, ba := dpAdded(base)
		c, a := dpAdded(dec)
		if (cost{bc, ba}).less(cost{c, a}) {
			t.Fatalf("the phase made the round worse: created/added %d/%d, Alg. 1 %d/%d", c, a, bc, ba)
		}
		r := dec.Improvement
		if r == nil || r.Work > opt.Improve.Budget || r.CreatedAfter != c || r.AddedAfter != a || r.CreatedBefore != bc || r.AddedBefore != ba {
			t.Fatalf("report %+v, budget %d, result %d/%d, Alg. 1 %d/%d", r, opt.Improve.Budget, c, a, bc, ba)
		}
		moved := 0
		for i, p := range dec.Pairs {
			if p.Rerouted != !p.Path.Equal(base.Pairs[i].Path) {
				// Rerouted marks exactly the pairs whose path differs from Alg. 1's
				moved = -1 << 30
			}
			if !p.Path.Equal(base.Pairs[i].Path) {
				moved++
			}
		}
		if moved != r.Rerouted {
			t.Fatalf("report says %d pairs re-routed, %d paths differ from Alg. 1 (or Rerouted flags are wrong)", r.Rerouted, moved)
		}
		// the CP sizing does not depend on DP paths
		for d := range dec.PCSCF {
			if dec.PCSCF[d] != base.PCSCF[d] {
				t.Fatalf("dc %d: P-CSCF %+v, Alg. 1 %+v", d, dec.PCSCF[d], base.PCSCF[d])
			}
		}
	})
}

// The phase pays off on whole random rounds and reports the pairs it moved.
func TestImproveSavesInstances(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	var before, after, rerouted int
	for i := 0; i < 60; i++ {
		s := randomSnap(r, 4+r.Intn(3), 3)
		d, err := Plan(s, Options{IgnoreBuffer: true, Improve: ImproveOptions{Budget: 2000}})
		if err != nil {
			t.Fatal(err)
		}
		before += d.Improvement.AddedBefore
		after += d.Improvement.AddedAfter
		rerouted += d.Improvement.Rerouted
	}
	t.Logf("60 rounds: Alg. 1 adds %d instances, with the phase %d (%.1f%% fewer); %d pairs re-routed", before, after, 100*float64(before-after)/float64(before), rerouted)
	if after >= before || rerouted == 0 {
		t.Fatalf("the phase saved nothing: %d → %d, %d re-routed", before, after, rerouted)
	}
}

// With the phase on, a pair whose current path costs as much as any other
// stays on it.
func TestImprovePrefersCurrentPath(t *testing.T) {
	// 3 DCs, 1 stage, no instances: pair 0→2 needs one instance wherever it
	// goes; its current path (0,1,2) costs the same as Alg. 2's choice.
	s := snap(3, 1, 100, 1000)
	s.DPWorkload[Pair{0, 2}] = 500
	s.CurrentPaths[Pair{0, 2}] = Path{0, 1, 2}
	base, _ := Plan(s, Options{})
	if base.Pairs[0].Path.Equal(Path{0, 1, 2}) {
		t.Skipf("Alg. 1 already picks the current path %v", base.Pairs[0].Path)
	}
	d, err := Plan(s, Options{Improve: ImproveOptions{Budget: 10}})
	if err != nil {
		t.Fatal(err)
	}
	if p := d.Pairs[0]; !p.Path.Equal(Path{0, 1, 2}) || p.Method != MethodKept || !p.Rerouted || d.Improvement.BackToCurrent != 1 {
		t.Fatalf("got %v (%s, rerouted %v), report %+v; want the current path (0,1,2)", p.Path, p.Method, p.Rerouted, d.Improvement)
	}
}

// Limits: the planner routes around a DC that cannot grow, and flags a pair
// no path inside the limits can serve.
func TestHeadroomRoutesAround(t *testing.T) {
	s := snap(3, 1, 100, 1000)
	s.DPWorkload[Pair{0, 2}] = 500
	base, _ := Plan(s, Options{})
	at := base.Pairs[0].Path[1]
	s.Headroom = [][]int{{-1}, {-1}, {-1}}
	s.Headroom[at][0] = 0
	d, err := Plan(s, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if p := d.Pairs[0]; p.Path[1] == at || p.OverLimit {
		t.Fatalf("stage in DC %d, which cannot grow: %v (over limit %v)", at, p.Path, p.OverLimit)
	}
	s.Headroom = [][]int{{0}, {0}, {0}}
	d, err = Plan(s, Options{Improve: ImproveOptions{Budget: 10}})
	if err != nil {
		t.Fatal(err)
	}
	if p := d.Pairs[0]; !p.OverLimit || d.Totals().OverLimit != 1 {
		t.Fatalf("no DC can grow, yet %v is not flagged over the limit", p.Path)
	}
	s.Headroom = [][]int{{1}}
	if err := s.Validate(); err == nil || err.Error() != "headroom: has 1 rows, want one per datacenter (3) or none" {
		t.Fatalf("bad headroom: %v", err)
	}
}

// Property: with limits, no pair adds instances past them unless flagged.
func TestHeadroomRespected(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := genSnap(t)
		m := len(s.Stages)
		s.Headroom = make([][]int, s.N)
		for d := range s.Headroom {
			s.Headroom[d] = make([]int, m)
			for k := range s.Headroom[d] {
				s.Headroom[d][k] = rapid.IntRange(-1, 3).Draw(t, "headroom")
			}
		}
		opt := Options{}
		if rapid.Bool().Draw(t, "improve") {
			opt.Improve.Budget = 200
		}
		dec := checkPlan(t, s, opt)
		if dec.Totals().OverLimit > 0 {
			return
		}
		for d := range dec.DP {
			for k, c := range dec.DP[d] {
				if h := s.Headroom[d][k]; h >= 0 && c.Created+c.Reused > h {
					t.Fatalf("dc %d stage %d adds %d instances, headroom %d, no pair flagged", d, k, c.Created+c.Reused, h)
				}
			}
		}
	})
}
