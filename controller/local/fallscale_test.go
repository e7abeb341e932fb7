package local

import (
	"strings"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/controller/protocol"
	"github.com/ims-orch/ims-orch/drivers/fake"
)

// fallEnv: n pinned-flow firewall instances from a round, reactive scaling
// and TrimEmpty on, FallingScaleIn u, every instance at 80 % CPU for 40 s.
func fallEnv(t *testing.T, u float64, n int) *env {
	t.Helper()
	return fallEnvCfg(t, u, n, func(*Config) {})
}

// fallEnvCfg is fallEnv with the configuration changed by set first.
func fallEnvCfg(t *testing.T, u float64, n int, set func(*Config)) *env {
	t.Helper()
	cfg := fwConfig(1)
	cfg.VNFs[0].PinnedFlows = true
	cfg.Reactive, cfg.TrimEmpty, cfg.FallingScaleIn = true, true, u
	cfg.ReactiveUtilization = 0.95 // sessions 9–10's default (0.99 since session 11): a cap above these cases' bars
	set(&cfg)
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
// Also what its guards leave (each case fails when its guard is removed):
// a manual hold floor; a VNF without PinnedFlows (a CP VNF); an overloaded
// instance; a stale sample (a silent instance, kept by a long
// StatsTimeout); a reactive scale-out less than FallingScaleInWindow ago;
// paused (between a round's acquire and broadcast); draining; a booting
// instance (its guard and the fresh-sample one both hold: a booting
// instance counts in w, not in the fresh active ones).
func TestFallingScaleInLeaves(t *testing.T) {
	cp := func(c *Config) { c.VNFs[0].PinnedFlows = false }
	longTimeout := func(c *Config) { c.StatsTimeout = time.Hour }
	for _, tc := range []struct {
		name string
		u    float64
		n    int
		set  func(*Config)
		run  func(e *env)
	}{
		{"off", 0, 4, nil, func(e *env) { e.fall(80, 0.5, 60) }},
		{"a flat load under the bar", 0.94, 4, nil, func(e *env) {
			e.setLoad(65)
			e.seconds(5)
			e.setLoad(70)
			e.seconds(60)
		}},
		{"a slow fall (0.05 %/s per instance)", 0.94, 4, nil, func(e *env) {
			e.setLoad(71)
			e.seconds(40)
			e.fall(71, 0.05, 60)
		}},
		{"two working instances", 0.94, 2, nil, func(e *env) { e.fall(80, 0.5, 80) }},
		{"a manual hold floor", 0.94, 4, nil, func(e *env) {
			if _, err := e.c.Scale("firewall", 0, "hold 4"); err != nil {
				e.t.Fatalf("%v", err)
			}
			e.fall(80, 0.5, 50)
		}},
		{"a VNF without PinnedFlows", 0.94, 4, cp, func(e *env) { e.fall(80, 0.5, 50) }},
		{"an overloaded instance", 0.94, 4, nil, func(e *env) {
			hot := e.ids(StateNormal)[0]
			for cpu := 80.0; cpu > 55; cpu -= 0.5 { // 3 × 0.55 + 0.92 ≤ 0.94·3
				e.setLoad(cpu)
				e.load[hot] = Stats{CPU: 92, Mem: 95, PktRate: 100, Flows: 5}
				e.seconds(1)
			}
			if e.state(hot) != StateOverload {
				e.t.Fatalf("%s is %s, want overloaded", hot, e.state(hot))
			}
		}},
		{"a stale sample", 0.94, 4, longTimeout, func(e *env) {
			e.silent[e.ids(StateNormal)[0]] = true // its last sample: 80 %
			e.fall(80, 0.5, 50)
		}},
		{"a reactive scale-out within the window", 0.94, 4, nil, func(e *env) {
			cpu := e.fall(80, 0.5, 23) // the rule buffers at 26 s (TestFallingScaleIn)
			e.c.mu.Lock()
			e.c.vnfs["firewall"].lastReactive = e.clk.Now()
			e.c.mu.Unlock()
			e.fall(cpu, 0.5, 4)
		}},
		{"paused", 0.94, 4, func(c *Config) { c.MaxPause = time.Hour }, func(e *env) {
			e.req(2, protocol.StepAcquire, nil) // paused until the broadcast
			e.fall(80, 0.5, 50)
		}},
		{"draining", 0.94, 4, nil, func(e *env) {
			e.c.mu.Lock()
			e.c.draining = true
			e.c.mu.Unlock()
			e.fall(80, 0.5, 50)
		}},
		{"a booting instance", 0.94, 5, nil, func(e *env) {
			e.fall(80, 0.5, 4)
			e.drv.Fail(e.ids(StateNormal)[0]) // replaced at once: boots 30 s
			e.clk.Advance(0)
			e.fall(76, 0.5, 28)
			if n := e.c.Counts()["firewall"]; n.Booting != 1 {
				e.t.Fatalf("counts %+v, want one booting", n)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set := tc.set
			if set == nil {
				set = func(*Config) {}
			}
			e := fallEnvCfg(t, tc.u, tc.n, set)
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

// The rule's buffer entry carries the next interval, ahead of a
// round-buffered instance behind it tagged this one: that instance, which
// spent a whole interval unused, is still trimmed at the enter it is due
// (the enter used to stop at the falling entry at the head), while
// the falling entry stays one more interval.
func TestFallingScaleInEntryDoesNotHoldBackTrimBuffer(t *testing.T) {
	e := fallEnvCfg(t, 0.94, 4, func(c *Config) { c.TrimBuffer = true })
	e.fall(80, 0.5, 26)
	if w := e.working("firewall"); w != 3 {
		t.Fatalf("working %d, want 3 (falling scale-in)", w)
	}
	a := e.c.vnfs["firewall"].buf.Entries()[0].ID
	keep := func() { // flat, every instance keeps flows: TrimEmpty leaves them
		for id := range e.load {
			e.load[id] = Stats{CPU: 67, Mem: 20, PktRate: 100, Flows: 3}
		}
	}
	keep()
	e.seconds(10)
	e.round(2, map[string]int{"firewall": 2}) // buffers B, tag 2
	keep()
	es := e.c.vnfs["firewall"].buf.Entries()
	if len(es) != 2 || es[0].ID != a || es[0].Interval != 3 || es[1].Interval != 2 {
		t.Fatalf("buffer %+v, want %s (next interval, 3) then the round's (2)", es, a)
	}
	b := es[1].ID
	e.seconds(10)
	e.round(3, map[string]int{"firewall": 2}) // enter 4: B (tag 2) spent interval 3 unused
	keep()
	e.seconds(1)
	if e.state(b) == StateBuffered || e.state(a) != StateBuffered {
		t.Fatalf("after enter(4): round-buffered %s %s, falling %s %s; want it trimmed, the falling one kept (buffer %+v)",
			b, e.state(b), a, e.state(a), e.c.vnfs["firewall"].buf.Entries())
	}
}

// A reuse in the interval the rule buffered it (its entry tagged the next)
// reads "0 interval(s) ago", not a uint64 underflow.

func TestFallingScaleInReuseChurnDetail(t *testing.T) {
	e := fallEnv(t, 0.94, 4)
	e.fall(80, 0.5, 26)
	a := e.c.vnfs["firewall"].buf.Entries()
	if len(a) != 1 {
		t.Fatalf("buffer %+v, want the falling scale-in's one", a)
	}
	// every working instance overloaded: the reactive rule reuses it in
	// the interval it was buffered
	for _, id := range e.ids(StateNormal) {
		e.load[id] = Stats{CPU: 99, Mem: 90, PktRate: 100, Flows: 5}
	}
	e.seconds(8)
	var d string
	for _, ac := range e.c.Actions() {
		if ac.InstanceID == a[0].ID && ac.Kind == KindReuse {
			d = ac.Detail
		}
	}
	if !strings.Contains(d, "churn: buffered 0 interval(s) ago") {
		t.Fatalf("reuse detail %q, want churn 0 interval(s) ago", d)
	}
}

// fallingTrimLocked keeps BufferSpare buffered instances, like TrimEmpty
// and TrimBuffer: with a spare of 1 the only buffered one stays although
// it is empty on a falling load with room; with a spare of 0 it goes.
func TestFallingTrimKeepsBufferSpare(t *testing.T) {
	for _, spare := range []int{0, 1} {
		e := fallEnvCfg(t, 0.94, 4, func(c *Config) { c.BufferSpare = spare })
		e.fall(80, 0.5, 26)
		if w := e.working("firewall"); w != 3 {
			t.Fatalf("spare %d: working %d, want 3", spare, w)
		}
		a := e.c.vnfs["firewall"].buf.Entries()[0].ID
		fallingRoom(e, a, e.ids(StateNormal), Stats{CPU: 0, Mem: 20, Flows: 0}, 6)
		ds := e.actions(KindDestroy, ReasonExpiry)
		if spare == 1 && len(ds) > 0 {
			t.Fatalf("bufferSpare 1, one buffered instance: destroyed %+v", ds)
		}
		if spare == 0 && (len(ds) != 1 || ds[0].InstanceID != a) {
			t.Fatalf("bufferSpare 0: destroy actions %+v, want %s's", ds, a)
		}
	}
}

// With ReactiveUtilization 0 (the paper's rule: an overload report
// suffices) the bar is capped at the CPU threshold (90 %): 0.94 would leave
// the working instances over the overload trigger, and the reactive rule
// would take the instance back at once (and boot more) while the load
// falls. 4 × 0.675 = 2.7 = 0.9·3: the fit comes 25 s into the fall, not 19.
func TestFallingScaleInBarCappedAtTheOverloadTrigger(t *testing.T) {
	e := fallEnvCfg(t, 0.94, 4, func(c *Config) { c.ReactiveUtilization = 0 })
	cpu := e.fall(80, 0.5, 26)
	if w := e.working("firewall"); w != 4 {
		t.Fatalf("working %d at %.1f %% each (fits at 0.94, not at 0.90), want 4", w, cpu)
	}
	e.fall(cpu, 0.5, 8)
	if w := e.working("firewall"); w != 3 {
		t.Fatalf("working %d, want 3 once it fits at 0.90", w)
	}
	if as := e.actions(KindBuffer, ReasonUnderload); len(as) != 1 || !strings.Contains(as[0].Detail, "at 90%") {
		t.Fatalf("buffer actions %+v, want one at the 90%% bar", as)
	}
}

// The flap revC found with ReactiveUtilization 0 and the bar at 0.94: the
// total load falls 0.5 %/s and spreads over the working instances (the
// buffered one's calls end or move), so at the rule's bar the ones left
// are over the overload trigger; the reactive rule took the instance back
// and the rule buffered it again. Capped at the trigger: one scale-in.
func TestFallingScaleInNoFlapWithoutReactiveBar(t *testing.T) {
	e := fallEnvCfg(t, 0.94, 4, func(c *Config) { c.ReactiveUtilization = 0 })
	T := 4 * 80.0
	for range 130 {
		ws := append(e.ids(StateNormal), e.ids(StateOverload)...)
		for _, id := range ws {
			cpu, mem := T/float64(len(ws)), 20.0
			if cpu > 90 {
				mem = 60 // the simulator's model: cpu and mem over their thresholds at ρ > 0.9
			}
			e.load[id] = Stats{CPU: cpu, Mem: mem, PktRate: 100, Flows: 10}
		}
		for _, id := range e.ids(StateBuffered) {
			e.load[id] = Stats{CPU: 0, Mem: 20, Flows: 1}
		}
		T -= 0.5
		e.seconds(1)
	}
	if bufs := e.actions(KindBuffer, ReasonUnderload); len(bufs) != 1 {
		t.Fatalf("falling buffer actions %+v, want 1", bufs)
	}
	if rs := e.actions(KindReuse, ReasonReactive); len(rs) > 0 {
		t.Fatalf("reactive reuses %+v on a falling load", rs)
	}
}

// While a crash loop holds a failed instance's replacement back (owed, not
// booting) the rule leaves the VNF alone: the failed instance's load
// leaving the total reads as a fall, and one fewer target would drop the
// owed replacement. Here the load falls during the hold; the replacement
// launches when the hold ends, nothing is buffered.
func TestFallingScaleInLeavesAHeldReplacement(t *testing.T) {
	e := fallEnvCfg(t, 0.94, 5, func(c *Config) {
		c.CrashBackoff = CrashBackoff{Initial: 20 * time.Second, Max: 40 * time.Second, Reset: 10 * time.Minute}
	})
	e.setLoad(60)
	e.seconds(5)
	e.drv.SetFailNext(1)
	victim := e.ids(StateNormal)[0]
	e.drv.Fail(victim) // replaced at once; the replacement fails at the end of its boot (30 s)
	delete(e.load, victim)
	e.clk.Advance(0)
	launches := len(e.drv.Launches())
	cpu := e.fall(60, 0.2, 31)
	if h := e.c.Backoffs(); len(h) != 1 || h[0].Owed != 1 || !h[0].Holding(e.clk.Now()) {
		t.Fatalf("backoffs %+v: want the second replacement held back", h)
	}
	e.fall(cpu, 0.5, 18) // in the hold (20 s): fits on 3 at 0.94, falling
	if as := e.actions(KindBuffer, ReasonUnderload); len(as) > 0 {
		t.Fatalf("falling scale-in %+v while a replacement is held back", as)
	}
	e.seconds(3)
	if n := len(e.drv.Launches()); n != launches+1 {
		t.Fatalf("%d launches after the hold, want %d (the held replacement)", n, launches+1)
	}
}

// What the falling trim leaves (each case fails when its guard is
// removed): the rule's buffered instance, emptied, stays while the load no
// longer falls (flat for longer than LoadTrendTicks; TrimEmpty's busy bar
// keeps it too), while its flow count is unknown, while no sample has come
// since it was buffered, and for trimEmptyGrace after buffering. A control
// case (falling, room, empty, sampled) is destroyed.
func TestFallingTrimLeaves(t *testing.T) {
	for _, tc := range []struct {
		name    string
		set     func(*Config)
		destroy bool
		run     func(e *env, a string, working []string)
	}{
		{"control: falling, room, empty", nil, true, func(e *env, a string, working []string) {
			fallingRoom(e, a, working, Stats{CPU: 0, Mem: 20}, 6)
		}},
		{"a flat load", nil, false, func(e *env, a string, working []string) {
			for i := range 20 { // its last call ends once the load is flat
				for _, id := range working {
					e.load[id] = Stats{CPU: 84, Mem: 20, PktRate: 100, Flows: 4}
				}
				e.load[a] = Stats{CPU: 0, Mem: 20, Flows: max(0, 1-i/12)}
				e.seconds(1)
			}
		}},
		{"flows unknown", nil, false, func(e *env, a string, working []string) {
			fallingRoom(e, a, working, Stats{CPU: 0, Mem: 20, FlowsUnknown: true}, 6)
		}},
		{"no sample since buffering", func(c *Config) { c.StatsTimeout = time.Hour }, false, func(e *env, a string, working []string) {
			// its last sample (≈ 67 % CPU) stays in the total: the working
			// ones fall from 66 % so that the total still falls
			e.silent[a] = true
			for hot := 66.0; hot > 60; hot -= 0.5 {
				for _, id := range working {
					e.load[id] = Stats{CPU: hot, Mem: 20, PktRate: 100, Flows: 4}
				}
				e.seconds(1)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set := tc.set
			if set == nil {
				set = func(*Config) {}
			}
			e, a := fallBuffered(t, set)
			tc.run(e, a, e.ids(StateNormal))
			ds := e.actions(KindDestroy, ReasonExpiry)
			if tc.destroy && (len(ds) != 1 || ds[0].InstanceID != a || !strings.Contains(ds[0].Detail, "on a falling load")) {
				t.Fatalf("destroy actions %+v, want %s's on a falling load", ds, a)
			}
			if !tc.destroy && len(ds) > 0 {
				t.Fatalf("destroy actions %+v, want none", ds)
			}
		})
	}
}

// fallBuffered is fallEnv(0.94, 4) after the fall that buffers the
// instance with the fewest flows, which reports no flows from the tick
// before it is buffered on; it returns that instance.
func fallBuffered(t *testing.T, set func(*Config)) (*env, string) {
	t.Helper()
	e := fallEnvCfg(t, 0.94, 4, set)
	a := e.ids(StateNormal)[3]
	cpu := 80.0
	for i := 0; e.working("firewall") == 4; i++ {
		if i == 60 {
			t.Fatalf("no falling scale-in in 60 s")
		}
		cpu -= 0.5
		e.setLoad(cpu)
		if i >= 20 {
			e.load[a] = Stats{CPU: cpu, Mem: 20, PktRate: 100}
		}
		e.seconds(1)
	}
	if e.state(a) != StateBuffered || e.c.insts[a].Last.Flows != 0 {
		t.Fatalf("%s is %s with %+v, want buffered with no flows", a, e.state(a), e.c.insts[a].Last)
	}
	return e, a
}

// fallingRoom: for n seconds the working instances fall from 84 % (room:
// ≤ FallingTrimBusy) by 0.5 % a second, and a reports s.
func fallingRoom(e *env, a string, working []string, s Stats, n int) {
	hot := 84.0
	for range n {
		hot -= 0.5
		for _, id := range working {
			e.load[id] = Stats{CPU: hot, Mem: 20, PktRate: 100, Flows: 4}
		}
		e.load[a] = s
		e.seconds(1)
	}
}

// The falling trim waits trimEmptyGrace (2 statistics periods: 4 s here)
// after buffering, even with an empty sample taken a statistics period
// after it (the instances report every second).
func TestFallingTrimGrace(t *testing.T) {
	e, a := fallBuffered(t, func(c *Config) { c.StatsPeriod = 2 * time.Second })
	working := e.ids(StateNormal)
	at := e.c.insts[a].bufferedAt
	fallingRoom(e, a, working, Stats{CPU: 0, Mem: 20}, 1)
	for e.clk.Now().Sub(at) < trimEmptyGrace(e.c.cfg) {
		if ds := e.actions(KindDestroy, ReasonExpiry); len(ds) > 0 {
			t.Fatalf("destroyed %v after buffering (grace %v): %+v", e.clk.Now().Sub(at), trimEmptyGrace(e.c.cfg), ds)
		}
		fallingRoom(e, a, working, Stats{CPU: 0, Mem: 20}, 1)
	}
	fallingRoom(e, a, working, Stats{CPU: 0, Mem: 20}, 2)
	if ds := e.actions(KindDestroy, ReasonExpiry); len(ds) != 1 {
		t.Fatalf("destroy actions %+v after the grace, want %s's", ds, a)
	}
}

// The fall is read in the unit of the bar (carried: the larger of the
// packet and the CPU share), not in CPU alone. On the real data plane a
// forwarder's CPU is a few percent at the packet rate its capacity names
// (controller/dataplane TestFallingScaleInOnTheRealPlane): here the packet
// rate falls from 80 % to 50 % of the capacity per instance while the CPU
// stays at 2 %. Before, the rule read Σ CPU, flat, and never buffered.
func TestFallingScaleInReadsThePacketShare(t *testing.T) {
	fallShare(t, pinnedConfig(1))
}

// With ReactiveUtilization 0 the bar is capped at the LoadThreshold ÷ 100
// (0.9), not at the CPU threshold ÷ 100: 0.05 with the CPU threshold of
// 5 % a real forwarder reaches, under which nothing was buffered.
func TestFallingScaleInBarReadsTheLoadThreshold(t *testing.T) {
	fallShare(t, realPlaneConfig(1, 0))
}

// fallShare runs TestFallingScaleInReadsThePacketShare on cfg (one pinned
// firewall, Min 1).
func fallShare(t *testing.T, cfg Config) {
	t.Helper()
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

// With two instances the rule buffered, emptied in the same tick, a spare
// of 1 keeps one: the trim stops once no more than BufferSpare are
// buffered.
func TestFallingTrimKeepsBufferSpareOfTwo(t *testing.T) {
	e := fallEnvCfg(t, 0.94, 5, func(c *Config) { c.BufferSpare, c.TrimEmpty = 1, false }) // TrimEmpty would trim first
	cpu := 80.0
	for i := range 60 {
		cpu -= 0.5
		e.setLoad(cpu)
		for _, id := range e.ids(StateBuffered) {
			// their last calls end together, after both were buffered
			e.load[id] = Stats{CPU: 0, Mem: 20, Flows: max(0, 1-i/50)}
		}
		e.seconds(1)
	}
	if as := e.actions(KindBuffer, ReasonUnderload); len(as) < 2 {
		t.Fatalf("falling buffer actions %+v, want at least 2", as)
	}
	ds := e.actions(KindDestroy, ReasonExpiry)
	if len(ds) == 0 || e.c.vnfs["firewall"].buf.Len() != 1 {
		t.Fatalf("destroy actions %+v, buffer %+v: want the trim down to the spare of 1", ds, e.c.vnfs["firewall"].buf.Entries())
	}
}

// FallingScaleInSingle: the rule also steps two working instances down to
// one, but only once that one would carry at most FallingScaleInSingle of
// its capacity (0.85 here): at 2 × 0.45 = 0.90 (under FallingScaleIn's 0.98)
// both stay; at 2 × 0.40 = 0.80, after the window, one goes to the buffer.
// Without the option two stay ("two working instances" in
// TestFallingScaleInLeaves).
func TestFallingScaleInSingle(t *testing.T) {
	e := fallEnvCfg(t, 0.98, 2, func(c *Config) { c.FallingScaleInSingle = 0.85 })
	e.round(2, map[string]int{"firewall": 2}) // round 1's raise (the launch) was for interval 2
	cpu := e.fall(80, 0.5, 70)                // 45 %
	if w := e.working("firewall"); w != 2 {
		t.Fatalf("working %d at %.1f %% each (one would carry %.2f > 0.85), want 2", w, cpu, 2*cpu/100)
	}
	cpu = e.fall(cpu, 0.5, 10) // 40 %
	if w := e.working("firewall"); w != 1 {
		t.Fatalf("working %d at %.1f %% each (one would carry %.2f ≤ 0.85), want 1", w, cpu, 2*cpu/100)
	}
	if as := e.actions(KindBuffer, ReasonUnderload); len(as) != 1 || !strings.Contains(as[0].Detail, "fits on 1 at 85% (the step to one)") {
		t.Fatalf("buffer actions %+v, want one falling scale-in to 1", as)
	}
	e = fallEnvCfg(t, 0.98, 2, func(c *Config) { c.FallingScaleInSingle = 0 })
	e.fall(80, 0.5, 80)
	if w := e.working("firewall"); w != 2 {
		t.Fatalf("working %d without FallingScaleInSingle, want 2 (FallingScaleInLeave)", w)
	}
}

// A FallingScaleInSingle outside [0, 1] is refused, naming the field.
func TestFallingScaleInSingleInvalid(t *testing.T) {
	cfg := fwConfig(1)
	cfg.FallingScaleInSingle = 1.5
	if _, err := cfg.withDefaults(); err == nil || !strings.Contains(err.Error(), "fallingScaleInSingle") {
		t.Fatalf("err %v, want one naming fallingScaleInSingle", err)
	}
}

// The step to one does not undo the same interval's round raise (review
// revZ H1): round 2 raises the firewall from one working instance to two
// for interval 3 (the stage floor's launch or reuse on a coming rise);
// on a load falling under FallingScaleInSingle through interval 3 both
// stay. Round 3 keeps the target at 2 without a raise: in interval 4 the
// rule steps to one.
func TestFallingScaleInSingleKeepsTheRoundsRaise(t *testing.T) {
	e := fallEnvCfg(t, 0.98, 1, func(c *Config) { c.FallingScaleInSingle = 0.85 })
	e.round(2, map[string]int{"firewall": 2}) // a raise for interval 3
	cpu := e.fallKeepsTwo()
	e.round(3, map[string]int{"firewall": 2}) // no raise: two are working
	cpu = e.fall(cpu, 0.5, 10)
	if w := e.working("firewall"); w != 1 {
		t.Fatalf("working %d at %.1f %% each in the next interval, want 1; actions %v", w, cpu, e.c.Actions())
	}
}

// The VNF's Min bounds the step to one (review revZ M1: operators keep two
// working instances per DC with topology.chain[].min or policy.limits
// min 2): with Min 2 two stay on a load one instance would carry at 0.80;
// with Min 1 the rule steps to one.
func TestFallingScaleInSingleMinTwo(t *testing.T) {
	for _, m := range []int{2, 1} {
		e := fallEnvCfg(t, 0.98, 2, func(c *Config) { c.FallingScaleInSingle, c.VNFs[0].Min = 0.85, m })
		e.round(2, map[string]int{"firewall": 2})
		e.fall(80, 0.5, 80) // 40 % each
		if w, want := e.working("firewall"), m; w != want {
			t.Fatalf("min %d: working %d, want %d; actions %v", m, w, want, e.c.Actions())
		}
	}
}

// A round whose enter never comes (reactive scaling resumes after
// MaxPause) drops its recorded raise with its keep: the step to one is not
// blocked for good. Round 2 raises the firewall to two for interval 3 and
// no enter follows; once resumed, a load falling to 0.80 of one instance
// steps to one.
func TestFallingScaleInSingleRaiseEndsAtMaxPause(t *testing.T) {
	e := fallEnvCfg(t, 0.98, 1, func(c *Config) { c.FallingScaleInSingle, c.MaxPause = 0.85, 30*time.Second })
	e.req(2, protocol.StepAcquire, nil)
	if resp := e.req(2, protocol.StepBroadcast, decision(2, map[string]int{"firewall": 2})); resp.Error != "" {
		t.Fatal(resp.Error)
	}
	e.seconds(31) // the second boots; MaxPause passes
	if e.c.Paused() {
		t.Fatal("still paused after MaxPause")
	}
	e.setLoad(80)
	e.seconds(40)
	cpu := e.fall(80, 0.5, 80)
	if w := e.working("firewall"); w != 1 {
		t.Fatalf("working %d at %.1f %% each after the resume, want 1; actions %v", w, cpu, e.c.Actions())
	}
}

// A Fast round's raise released later by the tick is the round's raise
// too (review revH L7): round 2 raises the firewall from one to two for
// interval 3 under Fast; on a flat 80 % one instance carries it, so the
// raise is deferred, and a rise releases it. On a load then falling under
// FallingScaleInSingle through interval 3 both stay, as for a raise
// launched at once (TestFallingScaleInSingleKeepsTheRoundsRaise).
func TestFallingScaleInSingleKeepsAReleasedFastRaise(t *testing.T) {
	e := fallEnvCfg(t, 0.98, 1, func(c *Config) { c.FallingScaleInSingle = 0.85 })
	e.flagRound(2, 2, false, true)
	if w := e.working("firewall"); w != 1 {
		t.Fatalf("working %d after the Fast round on a flat 80 %%, want 1 (the raise deferred)", w)
	}
	for pct := 81.0; pct <= 100 && e.working("firewall") < 2; pct++ {
		e.setLoad(pct)
		e.seconds(1)
	}
	if w := e.working("firewall"); w != 2 {
		t.Fatalf("working %d after the rise, want 2 (the deferred raise released); actions %v", w, e.c.Actions())
	}
	e.fallKeepsTwo()
}

// fallKeepsTwo lets the second firewall boot, holds 80 % each for 40 s,
// then lets the load fall to 40 % each (one would carry 0.80 ≤ 0.85):
// the test fails unless both stay, and the last level is returned.
func (e *env) fallKeepsTwo() float64 {
	e.t.Helper()
	e.seconds(31) // the second boots
	e.setLoad(80)
	e.seconds(40)
	cpu := e.fall(80, 0.5, 80)
	if w := e.working("firewall"); w != 2 {
		e.t.Fatalf("working %d at %.1f %% each in the raised interval, want 2; actions %v", w, cpu, e.c.Actions())
	}
	return cpu
}
