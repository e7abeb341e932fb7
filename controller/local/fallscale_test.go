package local

import (
	"strings"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/drivers/fake"
)

// fallEnv: n pinned-flow firewall instances from a round, reactive scaling
// and TrimEmpty on, FallingScaleIn u, every instance at 80 % CPU for 40 s.
func fallEnv(t *testing.T, u float64, n int) *env {
	t.Helper()
	cfg := fwConfig(1)
	cfg.VNFs[0].PinnedFlows = true
	cfg.Reactive, cfg.TrimEmpty, cfg.FallingScaleIn = true, true, u
	e := newEnv(t, cfg, fake.Options{BootDelay: 30 * time.Second})
	e.seconds(31)
	e.round(1, map[string]int{"firewall": n})
	e.seconds(31)
	e.setLoad(80)
	e.seconds(40) // a flat history
	return e
}

// fall lowers every working instance's CPU by step per second for n
// seconds, keeping their flows, and returns the last level.
func (e *env) fall(from, step float64, n int) float64 {
	for range n {
		from -= step
		e.setLoad(from)
		e.seconds(1)
	}
	return from
}

// A load that falls between rounds: once it has fallen over the last 10 and
// 30 ticks (by at least FallingScaleInRate per working instance) and the
// working load fits on one instance fewer at FallingScaleIn of their
// capacity for FallingScaleInWindow, the least-loaded instance goes to the
// buffer tail, entered for the next interval. Once its flows have ended it
// is destroyed while the load still falls and the working instances have
// room (FallingTrimBusy), not before.
func TestFallingScaleIn(t *testing.T) {
	// 4 × 0.71 = 2.84 > 0.94·3 = 2.82; 4 × 0.705 fits: the bar is crossed
	// 19 s into a fall of 0.5 %/s per instance, and the window is 5 s
	e := fallEnv(t, 0.94, 4)
	fewest := e.ids(StateNormal)[3] // 2 flows
	cpu := e.fall(80, 0.5, 22)
	if w := e.working("firewall"); w != 4 {
		t.Fatalf("working %d after 22 s of fall at %.1f %% each, want 4 (the window)", w, cpu)
	}
	cpu = e.fall(cpu, 0.5, 4)
	if w := e.working("firewall"); w != 3 {
		t.Fatalf("working %d after 26 s of fall at %.1f %% each, want 3", w, cpu)
	}
	as := e.actions(KindBuffer, ReasonUnderload)
	if len(as) != 1 || as[0].InstanceID != fewest || !strings.Contains(as[0].Detail, "falling load") {
		t.Fatalf("buffer actions %+v, want one of %s on a falling load", as, fewest)
	}
	if es := e.c.vnfs["firewall"].buf.Entries(); len(es) != 1 || es[0].ID != fewest || es[0].Interval != e.c.interval+1 {
		t.Fatalf("buffer %+v in interval %d, want %s entered for the next interval", es, e.c.interval, fewest)
	}
	// its flows end; the 3 working ones carry 0.95 each, still falling:
	// no room, it stays
	working := e.ids(StateNormal)
	hot := 95.0
	for range 10 {
		hot -= 0.5
		for _, id := range working {
			e.load[id] = Stats{CPU: hot, Mem: 20, PktRate: 100, Flows: 4}
		}
		e.load[fewest] = Stats{CPU: 0, Mem: 20, Flows: 0}
		e.seconds(1)
	}
	if st := e.state(fewest); st != StateBuffered {
		t.Fatalf("%s is %s with the working instances at %.1f %%, want it kept buffered (no room)", fewest, st, hot)
	}
	// room: the working ones at 0.84 and falling: destroyed (TrimEmpty's
	// busy rule, 0.81, would keep it)
	for _, id := range working {
		e.load[id] = Stats{CPU: 84, Mem: 20, PktRate: 100, Flows: 4}
	}
	e.seconds(2)
	if ds := e.actions(KindDestroy, ReasonExpiry); len(ds) != 1 || ds[0].InstanceID != fewest || !strings.Contains(ds[0].Detail, "on a falling load") {
		t.Fatalf("destroy actions %+v, want %s's", ds, fewest)
	}
}

// What the rule leaves alone: off (0); a flat load under the bar; a fall
// slower than FallingScaleInRate per instance; two working instances
// (FallingScaleInLeave).
func TestFallingScaleInLeaves(t *testing.T) {
	for _, tc := range []struct {
		name string
		u    float64
		n    int
		run  func(e *env)
	}{
		{"off", 0, 4, func(e *env) { e.fall(80, 0.5, 60) }},
		{"a flat load under the bar", 0.94, 4, func(e *env) {
			e.setLoad(65)
			e.seconds(5)
			e.setLoad(70)
			e.seconds(60)
		}},
		{"a slow fall (0.05 %/s per instance)", 0.94, 4, func(e *env) {
			e.setLoad(71)
			e.seconds(40)
			e.fall(71, 0.05, 60)
		}},
		{"two working instances", 0.94, 2, func(e *env) { e.fall(80, 0.5, 80) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := fallEnv(t, tc.u, tc.n)
			tc.run(e)
			if w := e.working("firewall"); w != tc.n {
				t.Fatalf("working %d, want %d", w, tc.n)
			}
		})
	}
}

func TestFallingScaleInConfigErrors(t *testing.T) {
	for _, f := range []float64{-0.1, 1.5} {
		cfg := fwConfig(1)
		cfg.FallingScaleIn = f
		if _, err := New(cfg, nil, nil, nil); err == nil || !strings.Contains(err.Error(), "fallingScaleIn") {
			t.Fatalf("fallingScaleIn %v: %v, want an error naming the field", f, err)
		}
	}
}

// The fall is read in the unit of the bar (carried: the larger of the
// packet and the CPU share), not in CPU alone. On the real data plane a
// forwarder's CPU is a few percent at the packet rate its capacity names
// (controller/dataplane TestFallingScaleInOnTheRealPlane): here the packet
// rate falls from 80 % to 50 % of the capacity per instance while the CPU
// stays at 2 %. Before, the rule read Σ CPU, flat, and never buffered.
func TestFallingScaleInReadsThePacketShare(t *testing.T) {
	cfg := fwConfig(1)
	cfg.VNFs[0].PinnedFlows = true
	cfg.Reactive, cfg.FallingScaleIn = true, 0.94
	e := newEnv(t, cfg, fake.Options{BootDelay: 30 * time.Second})
	capacity := cfg.VNFs[0].Capacity
	e.seconds(31)
	e.round(1, map[string]int{"firewall": 3})
	e.seconds(31)
	share := func(s float64) {
		for i, id := range append(e.ids(StateNormal), e.ids(StateOverload)...) {
			e.load[id] = Stats{CPU: 2, Mem: 20, PktRate: s * capacity, Flows: 5 - i}
		}
	}
	share(0.8)
	e.seconds(40)
	s := 0.8
	for range 40 {
		if e.working("firewall") < 3 {
			break
		}
		s -= 0.01
		share(s)
		e.seconds(1)
	}
	if w := e.working("firewall"); w != 2 {
		t.Fatalf("working %d with the packet share down to %.2f of the capacity each (CPU 2 %%), want 2", w, s)
	}
	if as := e.actions(KindBuffer, ReasonUnderload); len(as) != 1 || !strings.Contains(as[0].Detail, "falling load") {
		t.Fatalf("buffer actions %+v, want one on a falling load", as)
	}
}
