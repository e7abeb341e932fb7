package local

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/drivers/fake"
	"github.com/ims-orch/ims-orch/placement/vnf"
)

// A DP stage's load rules (the scale-in guard, ScaleIn's bar, TrimEmpty's
// busy rule) compare its carried share, in percent of an instance's
// capacity, with VNFConfig.LoadThreshold, not with the CPU threshold the
// overload detector reads: on the real data plane a forwarder's CPU stays
// at a few percent, so the CPU threshold that lets the overload fire (5 %
// here, 0.5 % in controller/dataplane's tests) is no share of its capacity.
// Read against it, 4 instances at 30 % of their capacity "needed" ⌈120 / 5⌉
// = 24, 10 % of the capacity was busy, and nothing scaled in.

// realPlaneConfig is pinnedConfig(min) with a CPU threshold a real
// forwarder reaches (5 %) and the LoadThreshold given (0: the default).
func realPlaneConfig(min int, load float64) Config {
	cfg := pinnedConfig(min)
	cfg.VNFs[0].Thresholds = vnf.Thresholds{CPU: 5, Mem: 50, PktRate: 35000}
	cfg.VNFs[0].LoadThreshold = load
	return cfg
}

func TestLoadThresholdDefaultAndErrors(t *testing.T) {
	c, err := fwConfig(0).withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if got := c.VNFs[0].LoadThreshold; got != DefaultLoadThreshold {
		t.Fatalf("loadThreshold %v, want the default %v", got, DefaultLoadThreshold)
	}
	for _, bad := range []float64{-1, 100.5, math.NaN(), math.Inf(1)} {
		cfg := fwConfig(0)
		cfg.VNFs[0].LoadThreshold = bad
		if _, err := cfg.withDefaults(); err == nil || !strings.Contains(err.Error(), "vnfs[0].loadThreshold") {
			t.Errorf("loadThreshold %v: error %v, want one naming vnfs[0].loadThreshold", bad, err)
		}
	}
}

// The scale-in guard: 4 instances at 30 % of their capacity (CPU 2 %, over
// the 5 % CPU threshold never) need ⌈120 / 90⌉ = 2 at the default, ⌈120 /
// 50⌉ = 3 at a LoadThreshold of 50.
func TestScaleInGuardReadsTheLoadThreshold(t *testing.T) {
	for _, tc := range []struct {
		load float64
		want int
	}{{0, 2}, {50, 3}} {
		if w := guardRound(t, realPlaneConfig(4, tc.load), shareStats(0.3, 30)); w != tc.want {
			t.Errorf("loadThreshold %v: working %d after a round asking 1, want %d (4 × 30 %% of the capacity)", tc.load, w, tc.want)
		}
	}
}

// TrimEmpty's busy rule: at 85 % of the capacity (over 0.9 × 90) the
// emptied buffered instance stays, at 50 % it goes, whatever the CPU
// threshold (5 %: 50 % was "busy" against it).
func TestTrimEmptyBusyReadsTheLoadThreshold(t *testing.T) {
	trimBusy(t, realPlaneConfig(1, 0), shareStats(0.85, 85), shareStats(0.5, 50))
}

// ScaleIn: 4 instances at 50 % of their capacity fit on 3 at 80 % of the
// LoadThreshold (200 ≤ 216), with a CPU threshold of 5 % (against which
// the bar was 12).
func TestScaleInReadsTheLoadThreshold(t *testing.T) {
	e := scaleInFour(t, realPlaneConfig(1, 0))
	for i, id := range e.ids(StateNormal) {
		e.load[id] = shareStats(0.5, 5-i)
	}
	e.seconds(11)
	if w := e.working("firewall"); w != 3 {
		t.Fatalf("working %d with 4 × 50 %% of the capacity after the window, want 3", w)
	}
}

// A CSCF keeps reading CPU against its CPU threshold: its PktRate counts
// SIP messages (two per transaction of its capacity), twice its capacity
// here, and its LoadThreshold (the default 90) is a DP stage's. 4
// instances at 20 % CPU need ⌈80 / 50⌉ = 2 (read as the carried share:
// 4; against the LoadThreshold: 1).
func TestScaleInGuardReadsACSCFsCPU(t *testing.T) {
	cfg := Config{DC: "dc0", VNFs: []VNFConfig{{Name: "pcscf", Capacity: 100, Image: "p", Flavor: "m1", Min: 4,
		Thresholds: vnf.Thresholds{CPU: 50, Mem: 50, PktRate: 1000}}}}
	if w := guardRound(t, cfg, Stats{CPU: 20, Mem: 30, PktRate: 200, Flows: 10}); w != 2 {
		t.Fatalf("working %d after a round asking 1, want 2 (4 × 20 %% CPU, threshold 50)", w)
	}
}

// The cap in a rule: an instance offered 1.5 × its capacity, or whose
// sample says 250 % CPU (a real forwarder's is not capped: a second
// thread), carries one instance's capacity: with two at 30 % and 10 % the
// guard keeps ⌈140 / 90⌉ = 2, not ⌈190 / 90⌉ or ⌈290 / 90⌉ = 3.
func TestScaleInGuardCapsAnInstancePastItsCapacity(t *testing.T) {
	for _, over := range []Stats{shareStats(1.5, 50), {CPU: 250, Mem: 20, PktRate: 0.5 * 35000, Flows: 50}} {
		if w := guardRound(t, pinnedConfig(3), over, shareStats(0.3, 30), shareStats(0.1, 10)); w != 2 {
			t.Errorf("%+v beside 30 %% and 10 %%: working %d after a round asking 1, want 2", over, w)
		}
	}
}

// An instance's first sample raises the history by its load in the load's
// unit (TestAnticipateIgnoresAFirstInstanceGoingActiveWithLoad on the
// packet share): the firewall's first instance goes active at 80 % of its
// capacity, CPU 2 %. Raised by its CPU, the step read as a rise of 78 % in
// a tick and anticipated an instance on a flat load.
func TestAnticipateIgnoresAFirstInstanceGoingActiveWithPackets(t *testing.T) {
	e := newEnv(t, anticipateConfig(1), fake.Options{BootDelay: 10 * time.Second})
	booting := e.ids(StateBooting)
	if len(booting) != 1 {
		t.Fatalf("booting %v, want the Min instance", booting)
	}
	e.load[booting[0]] = shareStats(0.8, 100)
	e.seconds(11 + LoadTrendTicks + 2)
	if e.state(booting[0]) != StateNormal {
		t.Fatalf("%s is %s, want normal", booting[0], e.state(booting[0]))
	}
	if so := e.scaleOuts(); len(so) != 0 {
		t.Fatalf("scale-outs on a steady 80 %% of the capacity: %+v", so)
	}
}

// No scale-in beside an instance offered more than its capacity: carried
// counts it as one full instance, and with one metric of three over (its
// load past its LoadThreshold; CPU 2 %, Mem under its threshold, and a
// packet-rate threshold above what it is offered: pastCapacityConfig) it is
// not overloaded. ScaleIn: 4 instances, one offered 1.3 × its capacity,
// three at 10 %: 130 ≤ 0.8 × 90 × 3, but none goes; once it is back to
// 50 %, one does.
func TestScaleInNotBesideAnInstancePastItsCapacity(t *testing.T) {
	e := scaleInFour(t, pastCapacityConfig())
	ids := e.ids(StateNormal)
	set := func(hot float64) {
		e.load[ids[0]] = shareStats(hot, 50)
		for i, id := range ids[1:] {
			e.load[id] = shareStats(0.1, 5-i)
		}
	}
	set(1.3)
	e.seconds(30)
	if w := e.working("firewall"); w != 4 || e.state(ids[0]) != StateNormal {
		t.Fatalf("working %d (%s %s) beside an instance offered 1.3 × its capacity, want 4 (normal)", w, ids[0], e.state(ids[0]))
	}
	set(0.5)
	e.seconds(11)
	if w := e.working("firewall"); w != 3 {
		t.Fatalf("working %d once it carries 50 %%, want 3", w)
	}
}

// FallingScaleIn likewise: three instances, one offered 1.4 × its
// capacity, two falling from 80 % to 20 % (1.0 + 0.4 fit on 2 at 0.9):
// none goes; once the hot one is back to 60 %, one does.
func TestFallingScaleInNotBesideAnInstancePastItsCapacity(t *testing.T) {
	cfg := pastCapacityConfig()
	cfg.Reactive, cfg.FallingScaleIn = true, 0.94
	e := newEnv(t, cfg, fake.Options{BootDelay: 30 * time.Second})
	e.seconds(31)
	e.round(1, map[string]int{"firewall": 3})
	e.seconds(31)
	ids := e.ids(StateNormal)
	set := func(hot, s float64) {
		e.load[ids[0]] = shareStats(hot, 50)
		e.load[ids[1]], e.load[ids[2]] = shareStats(s, 5), shareStats(s, 4)
	}
	set(1.4, 0.8)
	e.seconds(40)
	s := 0.8
	for range 60 {
		s = max(0.2, s-0.01)
		set(1.4, s)
		e.seconds(1)
	}
	if w := e.working("firewall"); w != 3 || e.state(ids[0]) != StateNormal {
		t.Fatalf("working %d (%s %s) beside an instance offered 1.4 × its capacity, the others at %.2f, want 3 (normal)", w, ids[0], e.state(ids[0]), s)
	}
	for hot := 1.4; hot > 0.6; hot -= 0.02 { // a fall of the hot one too
		set(hot, s)
		e.seconds(1)
	}
	if w := e.working("firewall"); w != 2 {
		t.Fatalf("working %d once it carries 60 %%, want 2", w)
	}
}

// pastCapacityConfig is pinnedConfig(1) with a packet-rate threshold no
// test load reaches: an instance offered past its capacity has one metric
// over (its load), not two, and stays normal (an overloaded one stops
// ScaleIn and FallingScaleIn by itself).
func pastCapacityConfig() Config {
	cfg := pinnedConfig(1)
	cfg.VNFs[0].Thresholds = vnf.Thresholds{CPU: 90, Mem: 50, PktRate: 1e9}
	return cfg
}
