package placement_test

import (
	"context"
	"math"
	"math/rand"
	"os"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/placement"
	"github.com/ims-orch/ims-orch/solver/exactround"
)

// cbcOrSkip returns the CBC solver, skipping when it is absent (failing under
// CI=true, where scripts/ci-cbc.sh installs it).
func cbcOrSkip(t testing.TB) *exactround.CBC {
	c, err := exactround.Find()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and %v", err)
		}
		t.Skip(err)
	}
	c.TimeLimit = 300 * time.Second
	c.MaxNodes = 3000
	if n, err := strconv.Atoi(os.Getenv("ROUNDGAP_NODES")); err == nil {
		c.MaxNodes = n
	}
	return c
}

func dpAdded(d *placement.Decision) int {
	n := 0
	for _, row := range d.DP {
		for _, c := range row {
			n += c.Created + c.Reused
		}
	}
	return n
}

// TestRoundGap: on random rounds (4-6 DCs, 3 stages) the joint improvement
// phase adds at most 5 % more instances than the whole-round optimum on
// average, never more than Alg. 1.
func TestRoundGap(t *testing.T) {
	cbc := cbcOrSkip(t)
	r := rand.New(rand.NewSource(17))
	rounds := 6
	if testing.Verbose() && os.Getenv("ROUNDGAP_ROUNDS") != "" {
		rounds, _ = strconv.Atoi(os.Getenv("ROUNDGAP_ROUNDS"))
	}
	var alg1, joint, opt, solved int
	var excess []float64
	for i := 0; i < rounds; i++ {
		n := 4 + r.Intn(3)
		s := placement.RandomSnap(r, n, 3)
		o := placement.Options{IgnoreBuffer: true}
		d1, err := placement.Plan(s, o)
		if err != nil {
			t.Fatal(err)
		}
		o.Improve.Budget = 2000
		dj, err := placement.Plan(s, o)
		if err != nil {
			t.Fatal(err)
		}
		res, err := exactround.Plan(context.Background(), s, placement.Options{IgnoreBuffer: true}, cbc)
		if err != nil {
			t.Fatal(err)
		}
		// the reference: the optimum, or the solver's proven lower bound
		// when it stopped first (the excess is then over-estimated)
		a, j, e := dpAdded(d1), dpAdded(dj), int(math.Ceil(res.Bound-1e-6))
		if res.Optimal {
			solved++
			if got := dpAdded(res.Decision); got != e {
				t.Fatalf("round %d: the solver's objective %g, its paths add %d", i, res.Objective, got)
			}
		}
		t.Logf("round %d (n=%d): Alg. 1 %d, phase %d, optimum %d (proved: %v; phase work %d)", i, n, a, j, e, res.Optimal, dj.Improvement.Work)
		if j > a {
			t.Fatalf("round %d: the phase added %d instances, Alg. 1 %d", i, j, a)
		}
		if e > j {
			t.Fatalf("round %d: the exact round (%d) is worse than the phase (%d)", i, e, j)
		}
		alg1 += a
		joint += j
		opt += e
		if e > 0 {
			excess = append(excess, float64(j-e)/float64(e))
		}
	}
	sort.Float64s(excess)
	t.Logf("%d rounds (%d solved to optimality, the others against the proven bound): Alg. 1 %d, joint %d, optimum %d: Alg. 1 +%.1f%%, joint +%.1f%%", rounds, solved, alg1, joint, opt,
		100*float64(alg1-opt)/float64(opt), 100*float64(joint-opt)/float64(opt))
	mean := 0.0
	for _, x := range excess {
		mean += x
	}
	mean /= float64(len(excess))
	t.Logf("mean per-round excess of the phase %.2f%%", 100*mean)
	if float64(joint-opt) > 0.05*float64(opt) {
		t.Errorf("the phase adds %d instances, the optimum %d: more than 5%% over", joint, opt)
	}
	t.Logf("per-round excess of the phase: median %.1f%%, p90 %.1f%%, max %.1f%%", 100*excess[len(excess)/2], 100*excess[len(excess)*9/10], 100*excess[len(excess)-1])
}

// (the mean excess goal of issue 17 is checked here so a regression fails)
