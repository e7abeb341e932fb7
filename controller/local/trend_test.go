package local

import (
	"strings"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/drivers/fake"
)

// anticipateConfig is one firewall (Min min) with pinned flows, reactive
// and anticipated scale-out on.
func anticipateConfig(min int) Config {
	cfg := fwConfig(min)
	cfg.Reactive, cfg.Anticipate = true, true
	cfg.VNFs[0].PinnedFlows = true
	return cfg
}

// anticipateEnv is a controller on anticipateConfig(min), changed by tweak
// (if not nil), whose Min instances took boot to boot (that boot is seen).
func anticipateEnv(t *testing.T, min int, boot time.Duration, tweak func(*Config)) *env {
	t.Helper()
	cfg := anticipateConfig(min)
	if tweak != nil {
		tweak(&cfg)
	}
	e := newEnv(t, cfg, fake.Options{BootDelay: boot})
	e.seconds(int(boot/time.Second) + 1)
	return e
}

// rampEnv is a controller with reactive scale-out on, one firewall
// (Anticipate and PinnedFlows as given) whose Min instance took 10 s to boot.
func rampEnv(t *testing.T, anticipate, pinned bool, min int) *env {
	t.Helper()
	return anticipateEnv(t, min, 10*time.Second, func(c *Config) {
		c.Anticipate, c.VNFs[0].PinnedFlows = anticipate, pinned
	})
}

// ramp raises the CPU of the normal instances 2 % a second from 40 % (Mem
// over its threshold, so CPU over 90 % for the overload window is an
// overload) for n seconds, and returns the CPU of each second.
func (e *env) ramp(ids []string, n int, each func(sec int, cpu float64)) {
	e.t.Helper()
	for _, id := range ids { // steady at 40 % first: the rise is the ramp's
		e.load[id] = Stats{CPU: 40, Mem: 60, PktRate: 100, Flows: 100}
	}
	e.seconds(LoadTrendTicks + 1)
	for i := 0; i < n; i++ {
		cpu := min(100, 40+2*float64(i))
		for _, id := range ids {
			e.load[id] = Stats{CPU: cpu, Mem: 60, PktRate: 100, Flows: 100}
		}
		e.second()
		each(i, cpu)
	}
}

// Anticipate: on a rising load a VNF with pinned flows scales out when the
// measured load plus its rise over the last boot (10 s) would pass 100 %
// CPU, 97 % on a sustained rise like this ramp from a steady 40 %
// (AnticipateSustainedCapacity) — here at 80 % (78 % + 2 %/s × 10 s; the
// tick reads the samples of the second before), before the CPU threshold
// (90 %) is even crossed;
// without it (or for a VNF whose flows are not pinned) reactive scale-out
// waits for the overload: 5 s over 90 %, by then at 100 %.
func TestAnticipateScalesOutBeforeTheOverload(t *testing.T) {
	for _, tc := range []struct {
		name               string
		anticipate, pinned bool
		wantCPU            float64 // CPU of the second the scale-out came
	}{
		{"anticipate", true, true, 80},
		{"off: after the overload", false, true, 100},
		{"flows not pinned: after the overload", true, false, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := rampEnv(t, tc.anticipate, tc.pinned, 1)
			ids := e.ids(StateNormal)
			gotCPU, overloaded := -1.0, false
			e.ramp(ids, 45, func(_ int, cpu float64) {
				overloaded = overloaded || e.state(ids[0]) == StateOverload
				if gotCPU < 0 && len(e.actions(KindCreate, ReasonReactive)) > 0 {
					gotCPU = cpu
					if tc.anticipate && tc.pinned && overloaded {
						t.Fatalf("anticipated scale-out after the overload")
					}
				}
			})
			if gotCPU != tc.wantCPU {
				t.Fatalf("scale-out at %v %% CPU, want %v %%", gotCPU, tc.wantCPU)
			}
			cr := e.actions(KindCreate, ReasonReactive)
			if strings.Contains(cr[0].Detail, "anticipated") != (tc.wantCPU < 90) {
				t.Fatalf("create detail %q", cr[0].Detail)
			}
			if tc.wantCPU < 90 {
				// the booting instance counts: 100 % + 2 %/s × 10 s fits on 2
				if len(cr) != 1 {
					t.Fatalf("%d reactive creates on a rise 2 working instances carry, want 1: %+v", len(cr), cr)
				}
				if !strings.Contains(cr[0].Detail, "in 10s") {
					t.Fatalf("create detail %q does not name the boot seen (10s)", cr[0].Detail)
				}
			}
		})
	}
}

// Anticipated scale-out reuses a buffered instance (no boot) before it
// launches one; a steady load never anticipates. An active buffered
// instance takes flows at once, so the reuse waits until the projection
// over the cool-down (5 s), not over a boot, passes the bar (97 %: the ramp
// is a sustained rise): at 90 % (88 % + 2 %/s × 5 s; the tick reads the
// samples of the second before), still before the overload (5 s over
// 90 %), where a launch on the same ramp came at 80 %
// (TestAnticipateScalesOutBeforeTheOverload).
func TestAnticipateReusesTheBufferFirst(t *testing.T) {
	e := rampEnv(t, true, true, 1)
	first := e.ids(StateNormal)[0]
	e.load[first] = Stats{CPU: 85, Mem: 60, PktRate: 100, Flows: 100}
	e.round(1, map[string]int{"firewall": 2})
	e.seconds(11)
	e.round(2, map[string]int{"firewall": 1})
	if n := len(e.ids(StateBuffered)); n != 1 {
		t.Fatalf("%d buffered, want 1", n)
	}
	if ids := e.ids(StateNormal); len(ids) != 1 || ids[0] != first {
		t.Fatalf("working %v, want %s (the loaded one)", ids, first)
	}
	e.seconds(30) // steady at 85 %: under the threshold, not rising
	if n := len(e.actions(KindReuse, ReasonReactive)) + len(e.actions(KindCreate, ReasonReactive)); n != 0 {
		t.Fatalf("%d reactive actions on a steady load, want 0", n)
	}
	gotCPU := -1.0
	e.ramp([]string{first}, 35, func(_ int, cpu float64) {
		if gotCPU < 0 && len(e.actions(KindReuse, ReasonReactive)) > 0 {
			gotCPU = cpu
			if e.state(first) == StateOverload {
				t.Fatalf("anticipated reuse after the overload")
			}
		}
	})
	re := e.actions(KindReuse, ReasonReactive)
	if len(re) != 1 || !strings.Contains(re[0].Detail, "anticipated") || !strings.Contains(re[0].Detail, "in 5s") {
		t.Fatalf("reactive reuses %+v: want the buffered instance reused, anticipated over the cool-down (5s)", re)
	}
	if gotCPU != 90 {
		t.Fatalf("reused at %v %% CPU, want 90 %%", gotCPU)
	}
	if cr := e.actions(KindCreate, ReasonReactive); len(cr) != 0 {
		t.Fatalf("launched %d while a buffered instance was there: %+v", len(cr), cr)
	}
}

// A first sample is no rise: the VNF's first instance goes active with
// load already on it (80 %, steady, under the CPU threshold). Its total
// load steps from nothing to 80 % in one tick; read as a 10-tick rise
// (8 %/s over the 10 s boot: 160 %) it anticipated an instance on a flat
// load. The history is raised by what an instance brings with its first
// sample instead.
func TestAnticipateIgnoresAFirstInstanceGoingActiveWithLoad(t *testing.T) {
	e := newEnv(t, anticipateConfig(1), fake.Options{BootDelay: 10 * time.Second})
	booting := e.ids(StateBooting)
	if len(booting) != 1 {
		t.Fatalf("booting %v, want the Min instance", booting)
	}
	e.load[booting[0]] = Stats{CPU: 80, Mem: 10, PktRate: 100, Flows: 100}
	e.seconds(11 + LoadTrendTicks + 2) // it goes active at 10 s (a 10 s boot seen), then steady
	if e.state(booting[0]) != StateNormal {
		t.Fatalf("%s is %s, want normal", booting[0], e.state(booting[0]))
	}
	if so := e.scaleOuts(); len(so) != 0 {
		t.Fatalf("scale-outs on a steady 80 %%: %+v", so)
	}
	// a real rise of the same instance is still one (Mem under its
	// threshold: no overload, only the anticipation can add one)
	for cpu := 82.0; len(e.scaleOuts()) == 0 && cpu <= 100; cpu += 2 {
		e.load[booting[0]] = Stats{CPU: cpu, Mem: 10, PktRate: 100, Flows: 100}
		e.second()
	}
	if so := e.scaleOuts(); len(so) != 1 || !strings.Contains(so[0].Detail, "anticipated") {
		t.Fatalf("scale-outs %+v on a rise of 2 %%/s from 80 %%, want one anticipated", so)
	}
}

// A short burst is no sustained rise: after a steady 70 % the load jumps
// 8 % in 4 s and stays. The 10-tick rise (0.8 %/s) × a 30 s boot reads
// 102 %; the rise over AnticipateRiseTicks (8 % in 15 s) reads 94 %, and
// anticipation takes the lesser: nothing is added. A ramp that goes on
// (TestAnticipateScalesOutBeforeTheOverload) reads the same over both.
func TestAnticipateIgnoresAShortBurst(t *testing.T) {
	e := newEnv(t, anticipateConfig(1), fake.Options{BootDelay: 30 * time.Second})
	id := e.ids(StateBooting)[0]
	set := func(cpu float64) { e.load[id] = Stats{CPU: cpu, Mem: 10, PktRate: 100, Flows: 100} }
	set(70)                                 // from its first sample (no rise)
	e.seconds(31 + AnticipateRiseTicks + 2) // a 30 s boot seen, then steady
	for cpu := 72.0; cpu <= 78; cpu += 2 {
		set(cpu)
		e.second()
	}
	e.seconds(AnticipateRiseTicks + 2)
	if so := e.scaleOuts(); len(so) != 0 {
		t.Fatalf("scale-outs on a 4 s burst of 8 %%: %+v", so)
	}
}

// Over the reuse horizon (the cool-down: the buffer tail is active) a
// booting working instance is no capacity: it takes no flows within 5 s
// of a 30 s boot (review C of session 8). Y and Z are buffered while
// booting (Z at the tail, launched 25 s after Y); Y goes active in the
// buffer; the normal instance rises 2 %/s from 70 %. Anticipation reuses
// Z first (still booting: over a boot), and then, with Y active at the
// tail, the working set is the normal instance and booting Z. Counting Z,
// the bar was 200 %: no reuse was anticipated and the normal instance
// overloaded (only the reactive rule reused Y, after the overload).
func TestAnticipateReuseHorizonCountsNoBootingInstance(t *testing.T) {
	e := newEnv(t, anticipateConfig(1), fake.Options{BootDelay: 30 * time.Second})
	a := e.ids(StateBooting)[0]
	// it goes active with its load (a first sample: no rise), then steady
	e.load[a] = Stats{CPU: 70, Mem: 60, PktRate: 100, Flows: 100}
	e.seconds(31 + AnticipateRiseTicks)
	e.round(1, map[string]int{"firewall": 2}) // Y launched
	e.seconds(25)
	e.round(2, map[string]int{"firewall": 3}) // Z launched, 25 s later
	e.round(3, map[string]int{"firewall": 1}) // both buffered while booting: Y, then Z at the tail
	buf := e.ids(StateBuffered)
	if len(buf) != 2 {
		t.Fatalf("buffered %v, want 2", buf)
	}
	y, z := buf[0], buf[1] // IDs in launch order
	e.seconds(6)           // Y active (in the buffer), Z booting for 19 s more
	var reused []string    // anticipated over the cool-down
	overloaded := false
	for cpu := 72.0; cpu <= 100 && len(reused) == 0; cpu += 2 {
		e.load[a] = Stats{CPU: cpu, Mem: 60, PktRate: 100, Flows: 100}
		e.second()
		overloaded = overloaded || e.state(a) == StateOverload
		for _, r := range e.actions(KindReuse, ReasonReactive) {
			if strings.Contains(r.Detail, "in 5s") {
				if overloaded {
					t.Fatalf("anticipated reuse over the cool-down after the overload: %+v", r)
				}
				if e.state(z) != StateBooting {
					t.Fatalf("%s is %s at the reuse, want booting (working)", z, e.state(z))
				}
				reused = append(reused, r.InstanceID)
			}
		}
	}
	if len(reused) != 1 || reused[0] != y {
		t.Fatalf("reused %v over the cool-down before the overload (overloaded: %v), want %s; reuses %+v",
			reused, overloaded, y, e.actions(KindReuse, ReasonReactive))
	}
}

// On a sustained rise anticipation's bar is AnticipateSustainedCapacity
// (97 %), not the capacity: a rise of 0.5 %/s from a steady 60 % launches
// once the projection over the 10 s boot passes 97 % (read at 92 %; the
// tick reads the samples of the second before, so the load set is 93 %),
// where the capacity's bar waited for 96 %. A load that only recovers the
// level it had 30 s before (94 %, a dip to 84 % for 3 s, then the same
// 0.5 %/s) is no sustained rise: the bar stays at the capacity (with it
// at 97 % it launched at 93 % too).
func TestAnticipateMarginOnASustainedRiseOnly(t *testing.T) {
	for _, tc := range []struct {
		name      string
		plateau   float64 // the steady load before
		dip       float64 // held 3 s before the rise (= plateau: none)
		wantCPU   float64 // the load of the tick that launched
		sustained bool
	}{
		{"sustained rise", 60, 60, 93, true},
		{"recovering after a dip", 94, 84, 96, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, anticipateConfig(1), fake.Options{BootDelay: 10 * time.Second})
			id := e.ids(StateBooting)[0]
			set := func(cpu float64) { e.load[id] = Stats{CPU: cpu, Mem: 10, PktRate: 100, Flows: 100} } // Mem low: no overload
			set(tc.plateau)                                                                              // from its first sample (no rise)
			e.seconds(11 + AnticipateSustainTicks + 5)                                                   // a 10 s boot seen, then steady
			set(tc.dip)
			e.seconds(3)
			gotCPU := -1.0
			for cpu := tc.dip; gotCPU < 0 && cpu <= 100; cpu += 0.5 {
				set(cpu)
				e.second()
				if len(e.scaleOuts()) > 0 {
					gotCPU = cpu
				}
			}
			so := e.scaleOuts()
			if len(so) != 1 || !strings.Contains(so[0].Detail, "anticipated") {
				t.Fatalf("scale-outs %+v, want one anticipated", so)
			}
			if strings.Contains(so[0].Detail, "sustained") != tc.sustained {
				t.Fatalf("detail %q: sustained rise %v, want %v", so[0].Detail, !tc.sustained, tc.sustained)
			}
			if gotCPU != tc.wantCPU {
				t.Fatalf("launched at %v %% CPU, want %v %% (%s)", gotCPU, tc.wantCPU, so[0].Detail)
			}
		})
	}
}
