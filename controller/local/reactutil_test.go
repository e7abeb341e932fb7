package local

import (
	"math"
	"strings"
	"testing"

	"github.com/ims-orch/ims-orch/drivers/fake"
)

// utilCfg is a reactive controller of one DP stage (PinnedFlows, capacity
// 35 000 packets/s) with Config.ReactiveUtilization u.
func utilCfg(min int, u float64) Config {
	c := reactiveCfg(min)
	c.VNFs[0].PinnedFlows = true
	c.ReactiveUtilization = u
	return c
}

// TestReactiveUtilizationWaitsForTheBar: an instance that reports its
// overload (CPU and memory over their thresholds) at 92 % of its capacity
// in packets and CPU (the simulator's DP model: CPU % = 100·ρ) is not
// scaled out with the bar at 0.95; at 96 % it is, on the
// tick after the sample (the tick reads the last samples), and the action
// says how many carried the bar. Without the bar
// (0) the same overload adds one after the overload window.
func TestReactiveUtilizationWaitsForTheBar(t *testing.T) {
	at := func(rho float64) Stats { return Stats{CPU: 100 * rho, Mem: 60, PktRate: rho * 35000} }
	t.Run("bar 0.95", func(t *testing.T) {
		e := newEnv(t, utilCfg(1, 0.95), fake.Options{})
		id := e.ids(StateNormal)[0]
		e.load[id] = at(0.92)
		e.seconds(30)
		if e.state(id) != StateOverload {
			t.Fatalf("instance %s in state %s, want overloaded", id, e.state(id))
		}
		if as := e.actions(KindCreate, ReasonReactive); len(as) != 0 {
			t.Fatalf("scale-out of an instance overloaded at 92 %% of its capacity: %+v", as)
		}
		e.load[id] = at(0.96)
		e.seconds(2)
		as := e.actions(KindCreate, ReasonReactive)
		if len(as) != 1 || !strings.Contains(as[0].Detail, "1 of 1 working instances overloaded, 1 at ≥ 95% of capacity") {
			t.Fatalf("reactive creates at 96 %% %+v, want one, its detail naming the bar", as)
		}
	})
	t.Run("off", func(t *testing.T) {
		e := newEnv(t, utilCfg(1, 0), fake.Options{})
		id := e.ids(StateNormal)[0]
		e.load[id] = at(0.92)
		e.seconds(5)
		if as := e.actions(KindCreate, ReasonReactive); len(as) != 1 || !strings.HasSuffix(as[0].Detail, "1 of 1 working instances overloaded; launched") {
			t.Fatalf("reactive creates without the bar %+v, want one at the overload", as)
		}
	})
}

// TestReactiveUtilizationMajority: the majority is taken over the working
// instances, each overloaded and carrying the bar: 2 of 3 overloaded, one
// of them at the bar, adds nothing; 5 working, 3 overloaded, 2 of them at
// the bar adds nothing either (2 is a majority of the overloaded
// instances, not of the working ones); one more at the bar adds one.
func TestReactiveUtilizationMajority(t *testing.T) {
	at := func(rho float64) Stats { return Stats{CPU: 100 * rho, Mem: 60, PktRate: rho * 35000} }
	for _, tc := range []struct {
		name    string
		working int
		rhos    []float64 // of the overloaded instances
		raise   int       // the one then raised to the bar
	}{
		{"2 of 3 overloaded, 1 at the bar", 3, []float64{0.99, 0.91}, 1},
		{"5 working, 3 overloaded, 2 at the bar", 5, []float64{0.99, 0.99, 0.91}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, utilCfg(tc.working, 0.95), fake.Options{})
			ids := e.ids(StateNormal)
			if len(ids) != tc.working {
				t.Fatalf("%d working instances, want %d", len(ids), tc.working)
			}
			for i, rho := range tc.rhos {
				e.load[ids[i]] = at(rho)
			}
			e.seconds(20)
			if n := len(e.ids(StateOverload)); n != len(tc.rhos) {
				t.Fatalf("%d overloaded, want %d", n, len(tc.rhos))
			}
			if as := e.actions(KindCreate, ReasonReactive); len(as) != 0 {
				t.Fatalf("scaled out %+v", as)
			}
			e.load[ids[tc.raise]] = at(0.96)
			e.seconds(2)
			if as := e.actions(KindCreate, ReasonReactive); len(as) != 1 {
				t.Fatalf("a majority at the bar: %d reactive creates, want 1", len(as))
			}
		})
	}
}

// TestReactiveUtilizationRealOverload (revC #1): an overloaded DP instance
// whose agent reports no packet rate, or a real forwarder saturated on CPU
// at 60 % of the catalog's nominal capacity, carries the bar by its CPU
// share and is scaled out at the overload.
func TestReactiveUtilizationRealOverload(t *testing.T) {
	for _, tc := range []struct {
		name string
		pkt  float64
	}{{"no pktRate", 0}, {"saturated at 60% of nominal", 0.6 * 35000}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, utilCfg(1, 0.95), fake.Options{})
			id := e.ids(StateNormal)[0]
			e.load[id] = Stats{CPU: 100, Mem: 100, PktRate: tc.pkt}
			e.seconds(10)
			if e.state(id) != StateOverload {
				t.Fatalf("state %s", e.state(id))
			}
			as := e.actions(KindCreate, ReasonReactive)
			if len(as) != 1 || !strings.Contains(as[0].Detail, "1 at ≥ 95% of capacity") || strings.Contains(as[0].Detail, "held") {
				t.Fatalf("CPU 100 %%, pktRate %g: reactive creates %+v, want one at the overload", tc.pkt, as)
			}
		})
	}
}

// TestReactiveUtilizationHoldIsBounded: an instance overloaded on CPU and
// memory below the bar, its packet rate unknown, waits reactiveHoldMax
// and is then scaled out, the action saying it was held; an overload that
// clears in between restarts the wait.
func TestReactiveUtilizationHoldIsBounded(t *testing.T) {
	over := Stats{CPU: 92, Mem: 60} // PktRate 0; 0.92 < 0.95
	t.Run("released", func(t *testing.T) {
		e := newEnv(t, utilCfg(1, 0.95), fake.Options{})
		id := e.ids(StateNormal)[0]
		e.load[id] = over
		e.seconds(60)
		if e.state(id) != StateOverload {
			t.Fatalf("state %s", e.state(id))
		}
		if as := e.actions(KindCreate, ReasonReactive); len(as) != 0 {
			t.Fatalf("scaled out before the hold's bound: %+v", as)
		}
		e.seconds(10)
		as := e.actions(KindCreate, ReasonReactive)
		if len(as) != 1 || !strings.Contains(as[0].Detail, "0 at ≥ 95% of capacity (held below the bar for 1m") {
			t.Fatalf("reactive creates after the hold's bound %+v, want one naming the hold", as)
		}
	})
	t.Run("reset", func(t *testing.T) {
		e := newEnv(t, utilCfg(1, 0.95), fake.Options{})
		id := e.ids(StateNormal)[0]
		e.load[id] = over
		e.seconds(40)
		e.load[id] = Stats{CPU: 10, Mem: 10}
		e.seconds(10)
		if e.state(id) != StateNormal {
			t.Fatalf("state %s after the load fell, want normal", e.state(id))
		}
		e.load[id] = over
		e.seconds(55)
		if as := e.actions(KindCreate, ReasonReactive); len(as) != 0 {
			t.Fatalf("the hold did not restart when the overload cleared: %+v", as)
		}
		e.seconds(20)
		if as := e.actions(KindCreate, ReasonReactive); len(as) != 1 {
			t.Fatalf("%d reactive creates after the restarted hold's bound, want 1", len(as))
		}
	})
}

// TestReactiveUtilizationOnlyForPinnedFlows: a VNF without pinned flows
// (a CSCF) keeps the overload report as its bar.
func TestReactiveUtilizationOnlyForPinnedFlows(t *testing.T) {
	cfg := utilCfg(1, 0.95)
	cfg.VNFs[0].PinnedFlows = false
	e := newEnv(t, cfg, fake.Options{})
	e.load[e.ids(StateNormal)[0]] = Stats{CPU: 95, Mem: 60, PktRate: 100}
	e.seconds(5)
	if as := e.actions(KindCreate, ReasonReactive); len(as) != 1 {
		t.Fatalf("%d reactive creates of a VNF without pinned flows, want 1 at the overload", len(as))
	}
}

func TestReactiveUtilizationConfigErrors(t *testing.T) {
	for _, u := range []float64{-0.1, 1.01, math.NaN()} {
		_, err := New(utilCfg(1, u), nil, nil, nil)
		if err == nil || !strings.Contains(err.Error(), "reactiveUtilization") {
			t.Fatalf("reactiveUtilization %v: error %v, want one naming the field", u, err)
		}
	}
}
