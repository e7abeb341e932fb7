package local

import (
	"strings"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/drivers/fake"
)

// scaleInEnv: 4 firewall instances from a round (Min min), ScaleIn as
// given, reactive scaling on, every instance at cpu % (threshold 90) with
// its index+1 flows.
func scaleInEnv(t *testing.T, min int, on bool, cpu float64) *env {
	t.Helper()
	cfg := fwConfig(min)
	cfg.Reactive, cfg.ScaleIn = true, ScaleIn{On: on, Util: 0.8}
	e := newEnv(t, cfg, fake.Options{BootDelay: 30 * time.Second})
	e.seconds(31) // the Min instances boot
	e.round(1, map[string]int{"firewall": 4})
	e.seconds(31)
	e.setLoad(85) // over the bar: the window starts with cpu
	e.seconds(1)
	e.setLoad(cpu)
	return e
}

func (e *env) setLoad(cpu float64) {
	for i, id := range append(e.ids(StateNormal), e.ids(StateOverload)...) {
		e.load[id] = Stats{CPU: cpu, Mem: 20, PktRate: 100, Flows: 5 - i}
	}
}

// A load falling between rounds: after ScaleIn.Window under the bar (what
// one instance fewer carries at 80 % of the CPU threshold), one instance —
// the one with the fewest flows — goes to the buffer; an overload reuses it
// at once from the buffer tail (no boot); it never goes below Min.
func TestScaleInBetweenRounds(t *testing.T) {
	// 4 × 50 % = 200 ≤ 0.8·90·3 = 216: fits on 3; 3 × 50 = 150 > 144: not on 2
	e := scaleInEnv(t, 1, true, 50)
	fewest := e.ids(StateNormal)[3] // 2 flows
	// the tick of second s sees the samples of second s−1
	e.seconds(10)
	if w := e.working("firewall"); w != 4 {
		t.Fatalf("working %d after 9 samples under the bar, want 4 (window 10 s)", w)
	}
	e.seconds(1)
	if w := e.working("firewall"); w != 3 {
		t.Fatalf("working %d after the 10 s window, want 3", w)
	}
	as := e.actions(KindBuffer, ReasonUnderload)
	if len(as) != 1 || as[0].InstanceID != fewest || e.state(fewest) != StateBuffered {
		t.Fatalf("underload buffer actions %+v, want one of %s (fewest flows)", as, fewest)
	}
	if e.c.Counts()["firewall"].Target != 3 {
		t.Fatalf("target %d, want 3 (the tick must not refill it)", e.c.Counts()["firewall"].Target)
	}
	e.seconds(30)
	if w := e.working("firewall"); w != 3 {
		t.Fatalf("working %d with 3 × 50 %% (not on 2 at 80 %%), want 3", w)
	}
	// overload: the buffered instance comes back without a launch
	launches := e.cloudCount(t)
	for _, id := range e.ids(StateNormal) {
		e.load[id] = hot2
	}
	e.seconds(6)
	if e.state(fewest) != StateNormal || e.working("firewall") != 4 || e.cloudCount(t) != launches {
		t.Fatalf("after an overload: %s is %s, working %d, cloud instances %d (was %d): want it reused, no launch",
			fewest, e.state(fewest), e.working("firewall"), e.cloudCount(t), launches)
	}
	if as := e.actions(KindReuse, ReasonReactive); len(as) != 1 || as[0].InstanceID != fewest {
		t.Fatalf("reactive reuses %+v", as)
	}
	// idle: down one per window, never below Min 1
	e.setLoad(5)
	e.seconds(120)
	if w := e.working("firewall"); w != 1 {
		t.Fatalf("working %d after 2 min idle, want Min 1", w)
	}
	if n := len(e.actions(KindBuffer, ReasonUnderload)); n != 4 {
		t.Fatalf("%d underload scale-ins, want 4 (1 + 3 down to Min)", n)
	}
}

// Min, the operator's hold floor and a round's pause bound it; without
// ScaleIn (or without reactive scaling) only rounds scale in.
func TestScaleInBounds(t *testing.T) {
	for _, tc := range []struct {
		name string
		min  int
		on   bool
		prep func(e *env)
		want int
	}{
		{"off: only rounds scale in", 1, false, nil, 4},
		{"never below Min", 3, true, nil, 3},
		{"never below one", 0, true, nil, 1},
		{"never below a hold floor", 1, true, func(e *env) {
			if _, err := e.c.Scale("firewall", 0, "test"); err != nil {
				t.Fatal(err)
			}
		}, 4},
		{"not while a round pauses", 1, true, func(e *env) { e.req(2, 2, nil) }, 4},
		{"not while reactive scaling is off", 1, true, func(e *env) { e.c.cfg.Reactive = false }, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := scaleInEnv(t, tc.min, tc.on, 5)
			if tc.prep != nil {
				tc.prep(e)
			}
			e.seconds(60)
			if w := e.working("firewall"); w != tc.want {
				t.Fatalf("working %d after 60 s idle, want %d", w, tc.want)
			}
		})
	}
	if _, err := New(Config{DC: "dc0", VNFs: fwConfig(1).VNFs, ScaleIn: ScaleIn{On: true, Util: 1.5}}, nil, nil, nil); err == nil || !strings.Contains(err.Error(), "scaleIn.util") {
		t.Fatalf("util 1.5: %v", err)
	}
	if _, err := New(Config{DC: "dc0", VNFs: fwConfig(1).VNFs, ScaleIn: ScaleIn{Window: -time.Second}}, nil, nil, nil); err == nil || !strings.Contains(err.Error(), "scaleIn.window") {
		t.Fatalf("negative window: %v", err)
	}
}

func (e *env) cloudCount(t *testing.T) int {
	l, err := e.drv.List(t.Context(), "dc0")
	if err != nil {
		t.Fatal(err)
	}
	return len(l)
}

// With TrimEmpty on (the default), an instance a between-round scale-in
// buffered stays reusable without a boot until the next round, although
// it carries no flows: the scale-in is the reversible step the reactive
// path undoes; the round's trim decides after that.
func TestScaleInStaysReusableWithTrimEmpty(t *testing.T) {
	cfg := fwConfig(1)
	cfg.Reactive, cfg.ScaleIn, cfg.TrimBuffer, cfg.TrimEmpty = true, ScaleIn{On: true, Util: 0.8}, true, true
	e := newEnv(t, cfg, fake.Options{BootDelay: 30 * time.Second})
	e.seconds(31)
	e.round(1, map[string]int{"firewall": 4})
	e.seconds(31)
	for _, id := range e.ids(StateNormal) {
		e.load[id] = Stats{CPU: 50, Mem: 20, PktRate: 100} // no flows: empty when buffered
	}
	e.seconds(12)
	as := e.actions(KindBuffer, ReasonUnderload)
	if len(as) != 1 {
		t.Fatalf("underload buffer actions %+v, want 1", as)
	}
	e.seconds(5)
	if e.state(as[0].InstanceID) != StateBuffered {
		t.Fatalf("%s is %s 5 s after its scale-in, want buffered (reusable until the next round)", as[0].InstanceID, e.state(as[0].InstanceID))
	}
	e.round(2, map[string]int{"firewall": 3})
	e.seconds(3)
	if st := e.state(as[0].InstanceID); st == StateBuffered {
		t.Fatalf("%s still buffered after the next round with TrimEmpty on", as[0].InstanceID)
	}
}
