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
// in packets is not scaled out with the bar at 0.95; at 96 % it is, on the
// tick after the sample (the tick reads the last samples), and the action
// says how many carried the bar. Without the bar
// (0) the same overload adds one after the overload window.
func TestReactiveUtilizationWaitsForTheBar(t *testing.T) {
	at := func(rho float64) Stats { return Stats{CPU: 95, Mem: 60, PktRate: rho * 35000} }
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

// TestReactiveUtilizationMajority: the majority is taken over the
// overloaded instances that carry the bar: 2 of 3 overloaded, one of them
// at the bar, adds nothing; both at the bar add one.
func TestReactiveUtilizationMajority(t *testing.T) {
	e := newEnv(t, utilCfg(3, 0.95), fake.Options{})
	ids := e.ids(StateNormal)
	e.load[ids[0]] = Stats{CPU: 95, Mem: 60, PktRate: 0.99 * 35000}
	e.load[ids[1]] = Stats{CPU: 95, Mem: 60, PktRate: 0.91 * 35000}
	e.seconds(20)
	if as := e.actions(KindCreate, ReasonReactive); len(as) != 0 {
		t.Fatalf("2 of 3 overloaded, 1 at the bar: scaled out %+v", as)
	}
	e.load[ids[1]] = Stats{CPU: 95, Mem: 60, PktRate: 0.95 * 35000}
	e.seconds(2)
	if as := e.actions(KindCreate, ReasonReactive); len(as) != 1 {
		t.Fatalf("2 of 3 at the bar: %d reactive creates, want 1", len(as))
	}
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
