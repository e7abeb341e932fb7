package local

import (
	"strings"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/drivers/fake"
)

// The rules that read a VNF's measured load read a DP stage's (PinnedFlows
// and a capacity) as the share of its capacity it carries (carried,
// vnfState.load): on the real data plane a forwarder's CPU is ≈ 1 % at the
// packet rate its capacity names (trend.go). Each test here moves the
// packet share with the CPU at 2 %; before session 11 these rules read
// Σ CPU, flat at 2 % per instance, and each test failed (anticipation never
// scaled out, TrimEmpty destroyed the reserve on a rise and under a busy
// load, the scale-in guard and ScaleIn let the working instances go).

// shareStats is a sample carrying share of the firewall's capacity
// (fwConfig: 35 000 packets/s) at 2 % CPU, memory under its threshold.
func shareStats(share float64, flows int) Stats {
	return Stats{CPU: 2, Mem: 20, PktRate: share * 35000, Flows: flows}
}

// pinnedConfig is fwConfig(min) with pinned flows (a DP stage).
func pinnedConfig(min int) Config {
	cfg := fwConfig(min)
	cfg.VNFs[0].PinnedFlows = true
	return cfg
}

func TestCarriedIsCappedAtTheCapacity(t *testing.T) {
	for _, tc := range []struct {
		s    Stats
		want float64
	}{
		{Stats{CPU: 2, PktRate: 17500}, 50},
		{Stats{CPU: 70, PktRate: 17500}, 70},   // CPU-bound below the nominal rate
		{Stats{CPU: 2, PktRate: 45500}, 100},   // offered 1.3 × the capacity: carries one instance's
		{Stats{CPU: 100, PktRate: 70000}, 100}, // both at their caps
	} {
		if share, pct := carried(tc.s, 35000); share != tc.want/100 || pct != tc.want {
			t.Errorf("carried(%+v) = %v, %v %%, want %v %%", tc.s, share, pct, tc.want)
		}
	}
}

// Anticipation on the packet share (TestAnticipateScalesOutBeforeTheOverload
// with the CPU ramp moved to the packet rate): the share rises 2 % of the
// capacity a second from 40 %; the scale-out comes at 80 % (78 % + 2 %/s ×
// the 10 s boot passes 97 % on this sustained rise), no instance overloaded
// (one metric at most over its threshold).
func TestAnticipateReadsThePacketShare(t *testing.T) {
	e := rampEnv(t, true, true, 1)
	ids := e.ids(StateNormal)
	for _, id := range ids {
		e.load[id] = shareStats(0.4, 100)
	}
	e.seconds(LoadTrendTicks + 1)
	at := -1.0
	for i := 0; i < 45 && at < 0; i++ {
		s := 0.4 + 0.02*float64(i)
		for _, id := range ids {
			e.load[id] = shareStats(s, 100)
		}
		e.second()
		if e.state(ids[0]) == StateOverload {
			t.Fatalf("overloaded at share %.2f", s)
		}
		if len(e.actions(KindCreate, ReasonReactive)) > 0 {
			at = s
		}
	}
	if at < 0 {
		t.Fatalf("no scale-out with the packet share up to 1.28 of the capacity (CPU 2 %%): actions %+v", e.c.Actions())
	}
	cr := e.actions(KindCreate, ReasonReactive)
	if at < 0.795 || at > 0.805 || !strings.Contains(cr[0].Detail, "anticipated") || !strings.Contains(cr[0].Detail, "of an instance's capacity") {
		t.Fatalf("scale-out at share %.2f (%q), want anticipated at 0.80", at, cr[0].Detail)
	}
}

// TrimEmpty's rise rule on the packet share (TestTrimEmptyKeepsReserveWhileLoadRises):
// the working instance's share rises 4 % of the capacity a second, its CPU
// flat at 2 %; the emptied buffered instance stays.
func TestTrimEmptyRiseReadsThePacketShare(t *testing.T) {
	e, work := trimRiseEnv(t, pinnedConfig(1))
	s := 0.3
	for i := 0; i < 12; i++ { // up to 0.78: under the busy rule's 81 %
		s += 0.04
		e.load[work[0]] = shareStats(s, int(100*s))
		e.second()
		if b := len(e.c.Buffer("firewall")); b != 1 {
			t.Fatalf("%d s into the rise (share %.2f, CPU 2 %%) the emptied buffered instance is gone", i+1, s)
		}
	}
}

// TrimEmpty's busy rule on the packet share (TestTrimEmptyKeepsReserveWhileWorkingBusy):
// the working instance carries 85 % of its capacity at 2 % CPU (over
// TrimEmptyBusy × 90 = 81 %): the emptied buffered instance stays; at 50 %
// it goes.
func TestTrimEmptyBusyReadsThePacketShare(t *testing.T) {
	trimBusy(t, pinnedConfig(1), shareStats(0.85, 85), shareStats(0.5, 50))
}

// The scale-in guard on the packet share (TestScaleInGuardKeepsWhatMeasuredLoadNeeds):
// 4 instances at 80 % of their capacity (CPU 2 %) need ⌈320 / 90⌉ = 4.
func TestScaleInGuardReadsThePacketShare(t *testing.T) {
	if w := guardRound(t, pinnedConfig(4), shareStats(0.8, 80)); w != 4 {
		t.Fatalf("working %d after a round asking 1, want the 4 that 4 × 80 %% of the capacity needs", w)
	}
}

// guardRound is a controller on cfg (one VNF, its Min instances) with
// ScaleInGuard on, the i-th instance (in ID order) reporting loads[i], the
// last of loads the rest; it returns the working instances after a round
// asking 1 (Min lowered to 0).
func guardRound(t *testing.T, cfg Config, loads ...Stats) int {
	t.Helper()
	cfg.ScaleInGuard = true
	name := cfg.VNFs[0].Name
	e := newEnv(t, cfg, fake.Options{})
	for i, id := range e.ids(StateNormal) {
		e.load[id] = loads[min(i, len(loads)-1)]
	}
	e.seconds(2)
	e.c.cfg.VNFs[0].Min, e.c.vnfs[name].cfg.Min, e.c.vnfs[name].base.Min = 0, 0, 0
	e.round(1, map[string]int{name: 1})
	return e.working(name)
}

// scaleInFour is a controller on cfg (one firewall) with reactive scaling
// and ScaleIn (Util 0.8) on, scaled to 4 active instances by a round.
func scaleInFour(t *testing.T, cfg Config) *env {
	t.Helper()
	cfg.Reactive, cfg.ScaleIn = true, ScaleIn{On: true, Util: 0.8}
	e := newEnv(t, cfg, fake.Options{BootDelay: 30 * time.Second})
	e.seconds(31)
	e.round(1, map[string]int{"firewall": 4})
	e.seconds(31)
	return e
}

// ScaleIn on the packet share (TestScaleInBetweenRounds): 4 instances at
// 60 % of their capacity (CPU 2 %) do not fit on 3 at 80 % of the
// threshold (240 > 216): none is buffered; at 50 % (200) one is.
func TestScaleInReadsThePacketShare(t *testing.T) {
	e := scaleInFour(t, pinnedConfig(1))
	set := func(share float64) {
		for i, id := range e.ids(StateNormal) {
			e.load[id] = shareStats(share, 5-i)
		}
	}
	set(0.6)
	e.seconds(30)
	if w := e.working("firewall"); w != 4 {
		t.Fatalf("working %d with 4 × 60 %% of the capacity (CPU 2 %%), want 4", w)
	}
	set(0.5)
	e.seconds(11)
	if w := e.working("firewall"); w != 3 {
		t.Fatalf("working %d with 4 × 50 %% of the capacity after the window, want 3", w)
	}
}
