package local

import (
	"testing"
	"time"
)

// after a round buffers an instance that still carries pinned
// flows, its calls end there and the new ones land on the working
// instance: the working Σ CPU rises while the VNF's total load is flat.
// Anticipate extrapolates that migration over a boot and scales out (here
// reusing the instance the round just buffered) although the total load
// (90 % of one instance) never passes the capacity.
func TestAnticipateIgnoresFlowMigrationAfterScaleIn(t *testing.T) {
	e := anticipateEnv(t, 1, 30*time.Second, nil) // a 30 s boot seen
	first := e.ids(StateNormal)[0]
	for s := 10; s <= 45; s++ { // calls arrive slowly: no step in the load
		e.load[first] = Stats{CPU: float64(s), Mem: 10, PktRate: 100, Flows: 100}
		e.second()
	}
	e.round(1, map[string]int{"firewall": 2})
	e.seconds(31)
	ids := e.ids(StateNormal)
	if len(ids) != 2 {
		t.Fatalf("normal %v", ids)
	}
	second := ids[0]
	if second == first {
		second = ids[1]
	}
	for s := 10; s <= 45; s++ { // the new instance fills up slowly
		e.load[second] = Stats{CPU: float64(s), Mem: 10, PktRate: 100, Flows: 100}
		e.second()
	}
	e.seconds(LoadTrendTicks + 2)
	if n := len(e.actions(KindReuse, ReasonReactive)) + len(e.actions(KindCreate, ReasonReactive)); n > 0 {
		for _, a := range e.c.Actions() {
			t.Logf("%+v", a)
		}
		t.Fatalf("set-up: %d reactive actions", n)
	}
	e.round(2, map[string]int{"firewall": 1})
	w, b := e.ids(StateNormal), e.ids(StateBuffered)
	if len(w) != 1 || len(b) != 1 {
		for _, a := range e.c.Actions() {
			t.Logf("%+v", a)
		}
		t.Fatalf("working %v buffered %v", w, b)
	}
	// 60 s calls: the buffered instance's flows end linearly, the working
	// instance takes their replacements: total 90 % CPU all along
	for s := 1; s <= 60; s++ {
		moved := 45 * float64(s) / 60
		e.load[w[0]] = Stats{CPU: 45 + moved, Mem: 10, PktRate: 100, Flows: 100}
		e.load[b[0]] = Stats{CPU: 45 - moved, Mem: 10, PktRate: 100, Flows: 100 - int(100*float64(s)/60)}
		e.second()
		if n := len(e.actions(KindReuse, ReasonReactive)) + len(e.actions(KindCreate, ReasonReactive)); n > 0 {
			t.Fatalf("second %d after the scale-in (working at %.1f %%, total 90 %%): %d anticipated scale-outs: %+v",
				s, 45+moved, n, append(e.actions(KindReuse, ReasonReactive), e.actions(KindCreate, ReasonReactive)...))
		}
	}
}

// a round that reuses a buffered instance still carrying pinned
// flows adds its CPU to the working Σ in one tick: anticipate reads that
// step as a 10-tick rise and extrapolates it over a boot, launching a
// third instance for a total load that is flat (90 % CPU over 2).
func TestAnticipateIgnoresRoundReuseOfLoadedBuffer(t *testing.T) {
	e := anticipateEnv(t, 1, 30*time.Second, nil)
	first := e.ids(StateNormal)[0]
	for s := 10; s <= 45; s++ {
		e.load[first] = Stats{CPU: float64(s), Mem: 10, PktRate: 100, Flows: 100}
		e.second()
	}
	e.round(1, map[string]int{"firewall": 2})
	e.seconds(31)
	ids := e.ids(StateNormal)
	second := ids[0]
	if second == first {
		second = ids[1]
	}
	for s := 10; s <= 45; s++ {
		e.load[second] = Stats{CPU: float64(s), Mem: 10, PktRate: 100, Flows: 100}
		e.second()
	}
	e.seconds(LoadTrendTicks + 2)
	e.round(2, map[string]int{"firewall": 1})
	w, b := e.ids(StateNormal), e.ids(StateBuffered)
	for s := 1; s <= 20; s++ { // 20 s of migration (total flat at 90)
		moved := 45 * float64(s) / 60
		e.load[w[0]] = Stats{CPU: 45 + moved, Mem: 10, PktRate: 100, Flows: 100}
		e.load[b[0]] = Stats{CPU: 45 - moved, Mem: 10, PktRate: 100, Flows: 50}
		e.second()
	}
	before := len(e.actions(KindReuse, ReasonReactive)) + len(e.actions(KindCreate, ReasonReactive))
	e.round(3, map[string]int{"firewall": 2}) // the round reuses b (30 % of pinned flows)
	e.seconds(LoadTrendTicks)
	if n := len(e.actions(KindReuse, ReasonReactive)) + len(e.actions(KindCreate, ReasonReactive)); n != before {
		t.Fatalf("%d anticipated scale-outs after the round's reuse on a flat 90 %% over 2 instances: %+v", n-before, e.actions(KindCreate, ReasonReactive))
	}
}
