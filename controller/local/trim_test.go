package local

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/drivers/fake"
)

// TrimBuffer: buffered instances beyond BufferSpare leave the buffer once
// they have spent a whole interval in it (oldest first), without waiting
// for τ; without TrimBuffer they stay τ intervals.
func TestTrimBuffer(t *testing.T) {
	for _, tc := range []struct {
		name      string
		trim      bool
		spare     int
		afterNext int // buffered after the round that buffered them (interval 2 entered)
		afterTwo  int // buffered after one more round (interval 3 entered)
	}{
		{"paper: τ only", false, 0, 3, 3},
		{"trim to 0", true, 0, 3, 0},
		{"trim to 1 spare", true, 1, 3, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := fwConfig(1)
			cfg.TrimBuffer, cfg.BufferSpare = tc.trim, tc.spare
			e := newEnv(t, cfg, fake.Options{})
			e.seconds(1)
			e.round(1, map[string]int{"firewall": 4})
			e.seconds(2)
			e.round(2, map[string]int{"firewall": 1})
			if b := len(e.c.Buffer("firewall")); b != tc.afterNext {
				t.Fatalf("buffered %d right after the round, want %d (a whole interval of grace)", b, tc.afterNext)
			}
			e.seconds(2)
			e.round(3, map[string]int{"firewall": 1})
			e.seconds(1)
			if b := len(e.c.Buffer("firewall")); b != tc.afterTwo {
				t.Fatalf("buffered %d one interval later, want %d", b, tc.afterTwo)
			}
			trimmed := 0
			for _, a := range e.c.Actions() {
				if a.Kind == KindDestroy && strings.Contains(a.Detail, "buffer trimmed") {
					trimmed++
				}
			}
			if want := 3 - tc.afterTwo; trimmed != want {
				t.Fatalf("%d destroy actions say the buffer was trimmed, want %d", trimmed, want)
			}
		})
	}
	if _, err := New(Config{DC: "dc0", BufferSpare: -1, VNFs: fwConfig(1).VNFs}, nil, nil, nil); err == nil || !strings.Contains(err.Error(), "bufferSpare") {
		t.Fatalf("negative bufferSpare: %v", err)
	}
}

// TrimEmpty: a buffered instance beyond BufferSpare goes as soon as its
// flows have ended, without waiting for the next interval; one still
// carrying flows stays (it drains in the buffer), and so do the spare ones.
func TestTrimEmpty(t *testing.T) {
	for _, tc := range []struct {
		name  string
		on    bool
		spare int
		left  int // buffered after the flows of all 3 ended
	}{
		{"off: until the next interval's trim", false, 0, 3},
		{"on", true, 0, 0},
		{"on, 1 spare", true, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := fwConfig(1)
			cfg.TrimBuffer, cfg.TrimEmpty, cfg.BufferSpare = true, tc.on, tc.spare
			e := newEnv(t, cfg, fake.Options{})
			e.round(1, map[string]int{"firewall": 4})
			for _, id := range e.ids(StateNormal) {
				e.load[id] = Stats{CPU: 10, Mem: 20, PktRate: 100, Flows: 3}
			}
			// a steady load for longer than LoadTrendTicks: not rising
			e.seconds(LoadTrendTicks + 2)
			e.round(2, map[string]int{"firewall": 1})
			e.seconds(5)
			if b := len(e.c.Buffer("firewall")); b != 3 {
				t.Fatalf("buffered %d with their flows running, want 3", b)
			}
			for _, id := range e.ids(StateBuffered) {
				e.load[id] = Stats{CPU: 1, Mem: 20, PktRate: 0, Flows: 0}
			}
			e.seconds(2)
			if b := len(e.c.Buffer("firewall")); b != tc.left {
				t.Fatalf("buffered %d after their flows ended, want %d", b, tc.left)
			}
			n := 0
			for _, a := range e.c.Actions() {
				if a.Kind == KindDestroy && strings.Contains(a.Detail, "trimmed when empty") {
					n++
				}
			}
			if n != 3-tc.left {
				t.Fatalf("%d destroy actions say the buffer was trimmed when empty, want %d", n, 3-tc.left)
			}
		})
	}
}

// TrimEmpty waits trimEmptyGrace (2 s) after the buffering for a sample
// saying the instance is empty, even one that carried nothing: a DNS answer
// that still names it may bring one more request.
func TestTrimEmptyGrace(t *testing.T) {
	e := trimEmptyEnv(t)
	e.seconds(LoadTrendTicks + 2) // a steady load (LoadTrendTicks)
	e.round(2, map[string]int{"firewall": 1})
	if b := len(e.c.Buffer("firewall")); b != 1 {
		t.Fatalf("buffered %d, want 1", b)
	}
	e.seconds(1)
	if b := len(e.c.Buffer("firewall")); b != 1 {
		t.Fatalf("buffered %d 1 s after the round, want 1 (grace 2 s)", b)
	}
	e.seconds(2)
	if b := len(e.c.Buffer("firewall")); b != 0 {
		t.Fatalf("buffered %d 3 s after the round, want 0", b)
	}
}

// An instance whose reporter cannot count flows (the real data plane's
// forwarders: Stats.FlowsUnknown) is not "empty" at Flows 0: TrimEmpty
// leaves it to the interval's trim instead of destroying it with calls
// still pinned to it.
func TestTrimEmptyLeavesUncountedFlows(t *testing.T) {
	e := trimEmptyEnv(t)
	e.seconds(2)
	for _, id := range e.ids(StateNormal) {
		e.load[id] = Stats{CPU: 10, Mem: 20, PktRate: 100, FlowsUnknown: true}
	}
	e.round(2, map[string]int{"firewall": 1})
	e.seconds(5)
	if b := len(e.c.Buffer("firewall")); b != 1 {
		t.Fatalf("buffered %d 5 s after the round, want 1 (its flows are not counted)", b)
	}
	e.round(3, map[string]int{"firewall": 1})
	e.seconds(1)
	if b := len(e.c.Buffer("firewall")); b != 0 {
		t.Fatalf("buffered %d after a whole interval, want 0 (the interval's trim)", b)
	}
}

// A sample that arrives right after the buffering may have been measured
// before it (a call routed meanwhile is not in it): TrimEmpty decides on a
// sample that arrived at least a statistics period after the buffering.
func TestTrimEmptyWaitsForASampleAfterTheBuffering(t *testing.T) {
	e := trimEmptyEnv(t)
	e.seconds(LoadTrendTicks + 2) // a steady load (LoadTrendTicks)
	e.round(2, map[string]int{"firewall": 1})
	buf := e.c.Buffer("firewall")
	if len(buf) != 1 {
		t.Fatalf("buffered %v, want 1", buf)
	}
	id := buf[0].ID
	// the agent stalls: one late sample 1 ms after the buffering, then none
	e.clk.Advance(time.Millisecond)
	if err := e.c.ReportStats(id, Stats{At: e.clk.Now(), CPU: 10}); err != nil {
		t.Fatal(err)
	}
	e.silent[id] = true
	e.seconds(2)
	if b := len(e.c.Buffer("firewall")); b != 1 {
		t.Fatalf("buffered %d with only a sample from the buffering's moment, want 1", b)
	}
	e.silent[id] = false
	e.seconds(1)
	if b := len(e.c.Buffer("firewall")); b != 0 {
		t.Fatalf("buffered %d after a sample a period later, want 0", b)
	}
}

// TrimEmpty keeps an emptied buffered instance while the VNF's measured
// load rises (it is compared with LoadTrendTicks ticks before): the
// reactive scale-out that a rising load soon needs reuses it without a
// boot. Once the load has stopped rising for the window, it goes. Without
// the rule the instance is destroyed 2 s after the round and the overload
// below launches a new one.
func TestTrimEmptyKeepsReserveWhileLoadRises(t *testing.T) {
	e, work := trimRiseEnv(t, fwConfig(1))
	// the working instance's load rises 4 % CPU a second; the buffered one is empty
	cpu := 40.0
	for i := 0; i < 12; i++ {
		cpu += 4
		e.load[work[0]] = Stats{CPU: cpu, Mem: 20, PktRate: 100 * cpu, Flows: int(cpu)}
		e.second()
		if b := len(e.c.Buffer("firewall")); b != 1 {
			t.Fatalf("%d s into the rise the emptied buffered instance is gone (buffered %d)", i+1, b)
		}
	}
	// overload (CPU and memory over the thresholds for the window): reused, no launch
	launched := len(e.actions(KindCreate, ReasonReactive))
	e.load[work[0]] = Stats{CPU: 99, Mem: 90, PktRate: 40000, Flows: 99}
	e.seconds(7)
	if r := e.actions(KindReuse, ReasonReactive); len(r) != 1 {
		t.Fatalf("reactive reuses %d, want 1 (the kept buffered instance); actions %v", len(r), e.c.Actions())
	}
	if n := len(e.actions(KindCreate, ReasonReactive)); n != launched {
		t.Fatalf("reactive launches %d, want none", n-launched)
	}
	// a second round buffers one again; the load then holds steady: it goes
	// once the window no longer sees a rise
	e.load = map[string]Stats{}
	e.seconds(LoadTrendTicks + 1)
	e.round(3, map[string]int{"firewall": 1})
	e.seconds(LoadTrendTicks + 2)
	if b := len(e.c.Buffer("firewall")); b != 0 {
		t.Fatalf("buffered %d after a steady load, want 0", b)
	}
}

// TrimEmpty keeps an emptied buffered instance, on a steady load, while the
// working instances average more than TrimEmptyBusy of the CPU threshold
// (a small rise would overload them); below it the instance goes. Without
// the rule it is destroyed 2 s after the round.
func TestTrimEmptyKeepsReserveWhileWorkingBusy(t *testing.T) {
	// 85 > 0.9 × 90 = 81, under the overload thresholds
	trimBusy(t, fwConfig(1), Stats{CPU: 85, Mem: 20, PktRate: 100, Flows: 85}, Stats{CPU: 50, Mem: 20, PktRate: 100, Flows: 50})
}

// With one working instance TrimEmpty's busy bar is TrimEmptySingleBusy
// (0.95 × 90 = 85.5 % here): at 87 % the emptied buffered instance stays,
// at 84 % (busy against TrimEmptyBusy's 81 %) it goes; two working
// instances at 84 % keep it. Without TrimEmptySingleBusy the one at 84 %
// stays; with it applied to any count the two at 84 % lose theirs.
func TestTrimEmptySingleBusy(t *testing.T) {
	at := func(cpu float64) Stats { return Stats{CPU: cpu, Mem: 20, PktRate: 100, Flows: int(cpu)} }
	t.Run("one working", func(t *testing.T) { trimBusyN(t, fwConfig(1), 1, at(87), at(84)) })
	t.Run("two working", func(t *testing.T) { trimBusyN(t, fwConfig(1), 2, at(84), at(50)) })
}

// The single bar on a DP stage (PinnedFlows and a capacity) reads the
// carried packet share against LoadThreshold (90 % of the capacity: bar
// 85.5 %), the CPU at 2 %: one working instance carrying 87 % keeps the
// emptied buffered one, at 84 % (busy against TrimEmptyBusy's 81 %) it
// goes. Without the single bar on this path the one at 84 % keeps it; on
// the CPU the instance at 2 % would never be busy.
func TestTrimEmptySingleBusyReadsThePacketShare(t *testing.T) {
	trimBusyN(t, pinnedConfig(1), 1, shareStats(0.87, 87), shareStats(0.84, 84))
}

// Config.TrimEmptyBusy and TrimEmptySingleBusy set the two bars (the
// constants are their defaults): a single bar of 0.9 keeps the emptied
// instance beside one working at 83 % (81 % < 83 %; the default 85.5 % lets
// it go), a bar of 0.95 lets it go beside two at 84 % (the default 81 %
// keeps it). Out of (0, 1] New refuses either, naming it.
func TestTrimEmptyBusyBarsAreOptions(t *testing.T) {
	at := func(cpu float64) Stats { return Stats{CPU: cpu, Mem: 20, PktRate: 100, Flows: int(cpu)} }
	t.Run("single 0.9", func(t *testing.T) {
		cfg := fwConfig(1)
		cfg.TrimEmptySingleBusy = 0.9
		trimBusyN(t, cfg, 1, at(83), at(80))
	})
	t.Run("multi 0.95", func(t *testing.T) {
		cfg := fwConfig(1)
		cfg.TrimEmptyBusy = 0.95
		trimBusyN(t, cfg, 2, at(87), at(84))
	})
	for _, field := range []string{"trimEmptyBusy", "trimEmptySingleBusy"} {
		for _, bad := range []float64{-0.1, 1.5, math.NaN()} {
			cfg := fwConfig(1)
			if field == "trimEmptyBusy" {
				cfg.TrimEmptyBusy = bad
			} else {
				cfg.TrimEmptySingleBusy = bad
			}
			if _, err := New(cfg, nil, nil, nil); err == nil || !strings.Contains(err.Error(), "local: config "+field+" ") {
				t.Errorf("%s %v: error %v, want one naming %s", field, bad, err, field)
			}
		}
	}
}

// trimBusy runs TestTrimEmptyKeepsReserveWhileWorkingBusy on cfg (one
// firewall, Min 1) with two working instances (TrimEmptyBusy's count; one
// is TrimEmptySingleBusy's): trimBusyN.
func trimBusy(t *testing.T, cfg Config, busy, calm Stats) {
	t.Helper()
	trimBusyN(t, cfg, 2, busy, calm)
}

// trimBusyN: a round scales the firewall to work+1, the next one back to
// work; the working instances report busy (the emptied buffered one must
// stay on the steady load), then calm (it must go).
func trimBusyN(t *testing.T, cfg Config, work int, busy, calm Stats) {
	t.Helper()
	cfg.TrimBuffer, cfg.TrimEmpty = true, true
	e := newEnv(t, cfg, fake.Options{})
	e.round(1, map[string]int{"firewall": work + 1})
	for _, id := range e.ids(StateNormal) {
		e.load[id] = busy
	}
	e.seconds(LoadTrendTicks + 2)
	e.round(2, map[string]int{"firewall": work})
	for _, id := range e.ids(StateBuffered) {
		e.load[id] = Stats{CPU: 1, Mem: 20}
	}
	e.seconds(LoadTrendTicks + 3) // steady, not rising
	if w, b := len(e.ids(StateNormal)), len(e.c.Buffer("firewall")); w != work || b != 1 {
		t.Fatalf("working %d, buffered %d while the working instances report %+v, want %d and 1", w, b, busy, work)
	}
	for _, id := range e.ids(StateNormal) {
		e.load[id] = calm
	}
	e.seconds(3)
	if b := len(e.c.Buffer("firewall")); b != 0 {
		t.Fatalf("buffered %d at %+v, want 0", b, calm)
	}
}

// trimRiseEnv is a controller on cfg (one firewall) with TrimBuffer,
// TrimEmpty and reactive scaling on, scaled to 2 by round 1 and back to 1
// by round 2, LoadTrendTicks + 2 s later: it returns it and the working
// instance (the other one is buffered, idle).
func trimRiseEnv(t *testing.T, cfg Config) (*env, []string) {
	t.Helper()
	cfg.TrimBuffer, cfg.TrimEmpty, cfg.Reactive = true, true, true
	e := newEnv(t, cfg, fake.Options{})
	e.round(1, map[string]int{"firewall": 2})
	e.seconds(LoadTrendTicks + 2)
	e.round(2, map[string]int{"firewall": 1})
	work := e.ids(StateNormal)
	if len(work) != 1 || len(e.c.Buffer("firewall")) != 1 {
		t.Fatalf("working %v, buffered %d: want 1 and 1", work, len(e.c.Buffer("firewall")))
	}
	return e, work
}

// trimEmptyEnv: one firewall (Min 1) with TrimBuffer and TrimEmpty on,
// scaled to 2 by round 1.
func trimEmptyEnv(t *testing.T) *env {
	t.Helper()
	return trimEmptyEnvN(t, 2)
}

// trimEmptyEnvN is trimEmptyEnv scaled to n by round 1.
func trimEmptyEnvN(t *testing.T, n int) *env {
	t.Helper()
	cfg := fwConfig(1)
	cfg.TrimBuffer, cfg.TrimEmpty = true, true
	e := newEnv(t, cfg, fake.Options{})
	e.round(1, map[string]int{"firewall": n})
	return e
}

// TrimBuffer leaves the buffer alone at an enter while a DP stage's total
// load rises onto busy working instances (trimHeldLocked): the buffered
// instance stays reusable without a boot. A rise the working instances
// have room for, a busy flat load, or a rise onto a busy CP VNF (no
// PinnedFlows) trims as before; on a flat load the next enter trims the
// one held. Without the hold it drains at the enter on the rise.
func TestTrimBufferHeldOnARiseOntoBusyInstances(t *testing.T) {
	for _, tc := range []struct {
		name     string
		pinned   bool
		from, by float64 // the working instance's CPU before the rise and its rise per second
		held     bool
	}{
		{"a rise onto a busy instance", true, 75, 1, true}, // 87 % at the enter: over 0.9 × 90
		{"a rise with room", true, 30, 1, false},
		{"busy, flat", true, 85, 0, false},
		{"a rise onto a busy CP VNF", false, 75, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := fwConfig(1)
			cfg.VNFs[0].PinnedFlows = tc.pinned
			e, work, buf := trimHeldEnv(t, cfg)
			heldRise(e, work, tc.from, tc.by)
			e.round(3, map[string]int{"firewall": 1})
			if held := e.state(buf) == StateBuffered; held != tc.held {
				t.Fatalf("%s buffered at the enter after a whole interval: %v, want %v (state %s)", buf, held, tc.held, e.state(buf))
			}
			if !tc.held {
				return
			}
			e.seconds(LoadTrendTicks + 1) // flat
			e.round(4, map[string]int{"firewall": 1})
			if s := e.state(buf); s != StateDraining {
				t.Fatalf("%s %s at the next enter on a flat load, want draining (trimmed)", buf, s)
			}
		})
	}
}

// The hold is no τ: a buffered instance held at one enter on a rise onto
// busy working instances leaves the buffer at the enter where it reaches
// τ, though the load still rises onto them (the hold gates the trim, not
// the expiry: without that a steady rise would keep it for good).
func TestTrimBufferHoldKeepsNoInstancePastTau(t *testing.T) {
	cfg := fwConfig(1)
	cfg.VNFs[0].PinnedFlows = true
	cfg.Tau = 3 // tagged at round 2's enter, two intervals old at round 3's
	e, work, buf := trimHeldEnv(t, cfg)
	cpu := heldRise(e, work, 78, 0.4) // 82.8 % at the enter: over 0.9 × 90
	e.round(3, map[string]int{"firewall": 1})
	if s := e.state(buf); s != StateBuffered {
		t.Fatalf("%s %s at the enter on the rise, before τ: want buffered (held)", buf, s)
	}
	heldRise(e, work, cpu, 0.4) // 87.6 %: still rising, still busy
	e.round(4, map[string]int{"firewall": 1})
	if s := e.state(buf); s != StateDraining {
		t.Fatalf("%s %s at the enter where it reaches τ=3 on a rise onto a busy instance, want draining (τ reached)", buf, s)
	}
}

// trimHeldEnv is a controller on cfg (one firewall) with TrimBuffer on,
// scaled to 2 by round 1 and back to 1 by round 2: it returns it, the
// working instance and the buffered one, whose pinned calls run on.
func trimHeldEnv(t *testing.T, cfg Config) (e *env, work, buf string) {
	t.Helper()
	cfg.TrimBuffer = true
	e = newEnv(t, cfg, fake.Options{})
	e.round(1, map[string]int{"firewall": 2})
	e.seconds(2)
	e.round(2, map[string]int{"firewall": 1})
	w, b := e.ids(StateNormal), e.ids(StateBuffered)
	if len(w) != 1 || len(b) != 1 {
		t.Fatalf("working %v, buffered %v: want one each", w, b)
	}
	e.load[b[0]] = Stats{CPU: 5, Mem: 20, PktRate: 100, Flows: 5}
	return e, w[0], b[0]
}

// heldRise runs LoadTrendTicks + 2 seconds in which the working instance's
// CPU rises by `by` a second from `from`, and returns where it ends.
func heldRise(e *env, work string, from, by float64) float64 {
	e.t.Helper()
	cpu := from
	for i := 0; i < LoadTrendTicks+2; i++ {
		cpu += by
		e.load[work] = Stats{CPU: cpu, Mem: 20, PktRate: 100 * cpu, Flows: int(cpu)}
		e.second()
	}
	return cpu
}
