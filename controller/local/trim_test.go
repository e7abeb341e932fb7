package local

import (
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
			e.seconds(2)
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
	cfg := fwConfig(1)
	cfg.TrimBuffer, cfg.TrimEmpty = true, true
	e := newEnv(t, cfg, fake.Options{})
	e.round(1, map[string]int{"firewall": 2})
	e.seconds(2)
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
	cfg := fwConfig(1)
	cfg.TrimBuffer, cfg.TrimEmpty = true, true
	e := newEnv(t, cfg, fake.Options{})
	e.round(1, map[string]int{"firewall": 2})
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
	cfg := fwConfig(1)
	cfg.TrimBuffer, cfg.TrimEmpty = true, true
	e := newEnv(t, cfg, fake.Options{})
	e.round(1, map[string]int{"firewall": 2})
	e.seconds(2)
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
