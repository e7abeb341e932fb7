package system

import (
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/fsm"
	"github.com/ims-orch/ims-orch/controller/local"
	"github.com/ims-orch/ims-orch/controller/strategy"
	"github.com/ims-orch/ims-orch/placement"
)

// An operator drains DC c while every pair carries traffic: from the next
// round no path places a stage in c, c's pairs are served through a and b,
// every instance in c goes to the buffer (no minimum, no reactive scale-out)
// and expires after τ; undrained, c gets its minimum instances back.
func TestDrainMovesEverythingOut(t *testing.T) {
	const tau = 2
	w := newWorld(t, strategy.Hybrid, 0, tau)
	w.load = func(time.Duration, placement.Pair) float64 { return 60 }
	w.run(300 * time.Second)
	c := w.sys.Locals["c"]
	if n := c.Counts()["firewall"].Working(); n == 0 {
		t.Fatal("c has no working firewall before the drain; the test needs load there")
	}
	reactive0 := count(c.Actions(), local.KindCreate, local.ReasonReactive, "")
	if err := w.sys.Store.Apply(fsm.SetDrain{DC: "c", Drain: true}); err != nil {
		t.Fatal(err)
	}
	w.run(110 * time.Second) // the next round plans without c
	st := w.sys.Store.State()
	if len(st.Paths) != 9 {
		t.Fatalf("%d paths in force, want all 9 pairs", len(st.Paths))
	}
	for _, p := range st.Paths {
		for _, h := range p.Hops[1 : len(p.Hops)-1] {
			if h == "c" {
				t.Fatalf("path %v places a stage in the drained DC", p)
			}
		}
	}
	if !c.Draining() {
		t.Fatal("c's local controller does not know it is drained")
	}
	for vnf, n := range c.Counts() {
		if n.Working() != 0 {
			t.Fatalf("c: %s has %d working instances while drained, want 0", vnf, n.Working())
		}
	}
	if errs := w.sys.RouterErrors(); len(errs) > 0 {
		t.Fatalf("routing errors: %v", errs)
	}
	if n := count(c.Actions(), local.KindCreate, local.ReasonReactive, "") - reactive0; n != 0 {
		t.Fatalf("%d reactive creates in c while drained", n)
	}
	w.run(time.Duration(tau+2) * 50 * time.Second) // τ intervals: the buffered ones expire
	for _, in := range c.Instances() {
		if in.State == local.StateBuffered || in.State == local.StateNormal || in.State == local.StateOverload || in.State == local.StateBooting {
			t.Fatalf("c still holds %s in state %s after τ intervals of drain", in.ID, in.State)
		}
	}
	if count(c.Actions(), local.KindDestroy, local.ReasonExpiry, "") == 0 {
		t.Fatal("no instance of c expired")
	}
	if err := w.sys.Store.Apply(fsm.SetDrain{DC: "c", Drain: false}); err != nil {
		t.Fatal(err)
	}
	w.run(110 * time.Second)
	if c.Draining() {
		t.Fatal("c still draining after undrain")
	}
	for _, vnf := range []string{"pcscf", "firewall", "ids"} {
		if n := c.Counts()[vnf].Working(); n < 1 {
			t.Fatalf("c: %s has %d working after undrain, want at least the minimum 1", vnf, n)
		}
	}
}

// A drain re-routes the drained DC's pairs onto the others; the load they
// carry stays flat. Session 17's rise history (summed along each round's
// own paths) read that as a steep rise and gave the receiving DCs Fast
// (revH MED-0), which cost only boot lead: the receiving DCs need no more
// reactive creates with the rise flags than without (revH's probe: 11
// either way). TestDrainIsNoRise checks the flags themselves.
func TestDrainRiseFlagsCostNoReactiveCreates(t *testing.T) {
	creates := map[bool]int{}
	for _, off := range []bool{false, true} {
		w := newWorldWith(t, strategy.Hybrid, 0, 2, func(c *Config, _ *clock.Virtual) {
			c.Global.Rise.Off, c.Local.NoRise.Off = off, off
		})
		w.load = func(time.Duration, placement.Pair) float64 { return 60 }
		w.run(300 * time.Second)
		if err := w.sys.Store.Apply(fsm.SetDrain{DC: "c", Drain: true}); err != nil {
			t.Fatal(err)
		}
		w.run(160 * time.Second)
		for _, dc := range []string{"a", "b"} {
			creates[off] += count(w.sys.Locals[dc].Actions(), local.KindCreate, local.ReasonReactive, "")
		}
	}
	if creates[false] > creates[true] || creates[true] == 0 {
		t.Fatalf("reactive creates in a and b after c's drain: %d with the rise flags, %d without; want no more with them (and some: the drain moves load in)", creates[false], creates[true])
	}
	t.Logf("reactive creates after the drain: %d with the rise flags, %d without", creates[false], creates[true])
}

// The rounds after c's drain re-route c's pairs onto a and b under a flat
// load: the rise history sums every round's measured pair loads along the
// current round's paths (global stageHistory), so a and b get no Fast (review
// revH MED-0; session 17 flagged both in the drain round). The flags do
// reach the locals: the load steps from 30 to 60 pkt/s a pair at 60 s, a
// steep rise (Fast), and NoRise stands on the flat load after it.
func TestDrainIsNoRise(t *testing.T) {
	w := newWorldWith(t, strategy.Hybrid, 0, 2, nil)
	w.load = func(at time.Duration, _ placement.Pair) float64 {
		if at < 60*time.Second {
			return 30
		}
		return 60
	}
	w.run(300 * time.Second)
	before := len(w.sys.Engine.Records())
	if err := w.sys.Store.Apply(fsm.SetDrain{DC: "c", Drain: true}); err != nil {
		t.Fatal(err)
	}
	w.run(160 * time.Second)
	recs := w.sys.Engine.Records()
	noRise, fast := false, false
	for i, r := range recs {
		for _, d := range r.Decision {
			for _, tg := range d.Targets {
				noRise, fast = noRise || tg.NoRise, fast || tg.Fast
				if i >= before && tg.Fast {
					t.Errorf("round %d after c's drain: %s/%s flagged Fast (%s)", r.Round, d.DC, tg.VNF, tg.Reason)
				}
			}
		}
	}
	if len(recs) < before+3 || !noRise || !fast {
		t.Fatalf("%d rounds before the drain, %d in all, NoRise in some: %v, Fast: %v; the test needs both flags sent and three rounds after the drain", before, len(recs), noRise, fast)
	}
}
