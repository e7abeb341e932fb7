package local

import (
	"fmt"
	"math"
	"slices"
	"testing"
)

// orderSensitiveCPU are CPU samples whose float sum depends on the order of
// the additions (0.2 + … + 0.8 is 3.5, 3.4999999999999996,
// 3.5000000000000004, … depending on it).
var orderSensitiveCPU = []float64{0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.25, 0.35, 0.45, 0.55}

// fixedSum gives the same bits in whatever order the values come; the
// plain sum of the test's values does not (the premise of the test).
func TestFixedSumIgnoresOrder(t *testing.T) {
	xs := slices.Clone(orderSensitiveCPU)
	want := fixedSum(slices.Clone(xs))
	plain := map[float64]bool{}
	for r := range xs { // every rotation, both directions
		for _, rev := range []bool{false, true} {
			p := append(slices.Clone(xs[r:]), xs[:r]...)
			if rev {
				slices.Reverse(p)
			}
			s := 0.0
			for _, x := range p {
				s += x
			}
			plain[s] = true
			if got := fixedSum(p); math.Float64bits(got) != math.Float64bits(want) {
				t.Fatalf("fixedSum of rotation %d (reversed %v) = %v, want %v", r, rev, got, want)
			}
		}
	}
	if len(plain) < 2 {
		t.Fatalf("the plain sums of the rotations all agree (%v): the values do not test the order", plain)
	}
}

// orderEnv runs one firewall per orderSensitiveCPU value (plus an extra
// one for round 2 to buffer), each reporting its value.
func orderEnv(t *testing.T) *env {
	t.Helper()
	e := trimEmptyEnvN(t, len(orderSensitiveCPU)+1)
	ids := e.ids(StateNormal)
	if len(ids) != len(orderSensitiveCPU)+1 {
		t.Fatalf("%d normal instances, want %d", len(ids), len(orderSensitiveCPU)+1)
	}
	for i, id := range ids[:len(orderSensitiveCPU)] {
		e.load[id] = Stats{CPU: orderSensitiveCPU[i], Mem: 20, PktRate: 100, Flows: 3}
	}
	// the least loaded (by flows, then packets, then CPU): round 2 buffers it
	e.load[ids[len(ids)-1]] = Stats{CPU: 0.1, Mem: 20, PktRate: 50, Flows: 1}
	return e
}

// The measured load of a VNF (workingLoadLocked, which TrimEmpty's rise
// rule, the scale-in guard and loadNeed read) is the same number every
// time it is computed from the same samples, though the registry is a map
// whose iteration order changes on every range.
func TestWorkingLoadIgnoresRegistryOrder(t *testing.T) {
	e := orderEnv(t)
	e.seconds(1)
	e.c.mu.Lock()
	defer e.c.mu.Unlock()
	vs := e.c.vnfs["firewall"]
	want := fixedSum(append(slices.Clone(orderSensitiveCPU), 0.1))
	for i := 0; i < 200; i++ {
		if got := e.c.workingLoadLocked(vs); math.Float64bits(got) != math.Float64bits(want) {
			t.Fatalf("call %d: Σ CPU = %v, want %v (the same samples in a fixed order)", i, got, want)
		}
	}
}

// On a flat load TrimEmpty's rise rule ("the load is higher than
// LoadTrendTicks ago") must not fire: an emptied buffered instance goes
// at the first tick that sees it empty, in every run. With Σ CPU added in
// the registry map's order the same samples compared higher than
// themselves in about one run in four, and the instance went a second
// later (simultaneous-start-40s differed by 1 VM-second between runs).
func TestTrimEmptyFlatLoadIsNoRise(t *testing.T) {
	for run := 0; run < 20; run++ {
		t.Run(fmt.Sprint(run), func(t *testing.T) {
			e := orderEnv(t)
			e.seconds(LoadTrendTicks + 2)
			e.round(2, map[string]int{"firewall": len(orderSensitiveCPU)})
			buf := e.ids(StateBuffered)
			if len(buf) != 1 {
				t.Fatalf("buffered %v, want 1", buf)
			}
			// its calls run on for longer than the rise window: the
			// working instances' load is flat all along
			e.seconds(LoadTrendTicks + 2)
			if b := len(e.c.Buffer("firewall")); b != 1 {
				t.Fatalf("buffered %d while its flows run, want 1", b)
			}
			e.load[buf[0]] = Stats{CPU: 0.1, Mem: 20}
			e.seconds(2) // one sample says empty, the next tick trims
			if b := len(e.c.Buffer("firewall")); b != 0 {
				t.Fatalf("buffered %d two seconds after its flows ended on a flat load, want 0", b)
			}
		})
	}
}
