package system

import (
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/delayprobe"
	"github.com/ims-orch/ims-orch/controller/global"
	"github.com/ims-orch/ims-orch/controller/strategy"
	"github.com/ims-orch/ims-orch/placement"
)

// usesLink tells whether path p crosses link x↔y in either direction.
func usesLink(p placement.Path, x, y int) bool {
	for i := 1; i < len(p); i++ {
		if (p[i-1] == x && p[i] == y) || (p[i-1] == y && p[i] == x) {
			return true
		}
	}
	return false
}

func linkDelay(ds []global.LinkDelay, from, to string) global.LinkDelay {
	for _, d := range ds {
		if d.From == from && d.To == to {
			return d
		}
	}
	return global.LinkDelay{}
}

// The paper's large-delay experiment on measured numbers: the local
// controllers probe each other over a simulated network whose delays start
// as the static matrix; then link a↔b gets 300 ms each way (over the 250 ms
// bound). The measured delay of a→b rises, and the next rounds' paths of
// every pair avoid the link, although the static matrix still says 10 ms.
func TestMeasuredDelayMovesPaths(t *testing.T) {
	var net *delayprobe.Net
	w := newWorldWith(t, strategy.Hybrid, 0, 10, func(c *Config, clk *clock.Virtual) {
		var err error
		if net, err = delayprobe.NewNet(clk, c.Topology.DCs, c.Topology.DelayMs); err != nil {
			t.Fatal(err)
		}
		c.Probes = &Probes{Transport: net, Period: 5 * time.Second}
	})
	w.load = func(_ time.Duration, p placement.Pair) float64 {
		if p.Entry != p.Exit {
			return 30
		}
		return 5
	}
	ab := placement.Pair{Entry: 0, Exit: 1}
	w.run(160 * time.Second) // three rounds on measured delays
	r := w.sys.Routers["a"]
	before, ok := r.Path(r.Interval(), ab)
	if !ok {
		t.Fatal("no path a→b")
	}
	d := linkDelay(w.sys.Engine.Delays(), "a", "b")
	if d.Source != global.DelayMeasured || d.Ms < 9 || d.Ms > 11 {
		t.Fatalf("a→b before the change: %+v, want measured ≈ 10 ms", d)
	}
	if !usesLink(before, 0, 1) {
		t.Fatalf("path a→b %v does not use link a↔b even at 10 ms; the test proves nothing", before)
	}
	if err := net.Set("a", "b", 300); err != nil {
		t.Fatal(err)
	}
	if err := net.Set("b", "a", 300); err != nil {
		t.Fatal(err)
	}
	// the interval that sees the change closes, then its round's paths are entered
	w.run(110 * time.Second)
	d = linkDelay(w.sys.Engine.Delays(), "a", "b")
	if d.Source != global.DelayMeasured || d.LastSampleMs < 299 || d.Ms < 250 {
		t.Fatalf("a→b after the change: %+v, want measured ≥ 250 ms", d)
	}
	if d.ConfiguredMs != 10 {
		t.Fatalf("static a→b %v, want 10", d.ConfiguredMs)
	}
	for _, rec := range []string{"a", "b", "c"} {
		rt := w.sys.Routers[rec]
		for e := range 3 {
			for x := range 3 {
				pr := placement.Pair{Entry: e, Exit: x}
				p, ok := rt.Path(rt.Interval(), pr)
				if !ok {
					t.Fatalf("%s: no path for %v", rec, pr)
				}
				if usesLink(p, 0, 1) {
					t.Fatalf("%s: path %v of pair %v still crosses a↔b at 300 ms (delays %+v)", rec, p, pr, w.sys.Engine.Delays())
				}
			}
		}
	}
	// probes over a↔b now time out: after a whole interval without a fresh
	// sample the static 10 ms is the fallback again
	net.SetDown("a", "b", true)
	w.run(100 * time.Second)
	d = linkDelay(w.sys.Engine.Delays(), "a", "b")
	if d.Source != global.DelayFallback || d.Ms != 10 || d.Age < 50*time.Second {
		t.Fatalf("a→b without fresh samples: %+v, want fallback to 10 ms with an age over an interval", d)
	}
	if c := linkDelay(w.sys.Engine.Delays(), "a", "c"); c.Source != global.DelayMeasured {
		t.Fatalf("a→c %+v, want still measured", c)
	}
	if sent, failed := w.sys.Probers["a"].Counts(); failed == 0 || sent <= failed {
		t.Fatalf("prober a: sent %d, failed %d", sent, failed)
	}
	t.Logf("path a→b %v before, %v after; delay %+v", before, func() placement.Path { p, _ := r.Path(r.Interval(), ab); return p }(), d)
}
