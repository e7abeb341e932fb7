package local

import (
	"strings"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/drivers/fake"
)

// fallEnv: 4 pinned-flow firewall instances from a round, reactive scaling
// and TrimEmpty on, FallingScaleIn u, every instance at 80 % CPU.
func fallEnv(t *testing.T, u float64) *env {
	t.Helper()
	cfg := fwConfig(1)
	cfg.VNFs[0].PinnedFlows = true
	cfg.Reactive, cfg.TrimEmpty, cfg.FallingScaleIn = true, true, u
	e := newEnv(t, cfg, fake.Options{BootDelay: 30 * time.Second})
	e.seconds(31)
	e.round(1, map[string]int{"firewall": 4})
	e.seconds(31)
	e.setLoad(80)
	e.seconds(40) // a flat history
	return e
}

// fall lowers every working instance's CPU by step per second for n
// seconds, keeping their flows.
func (e *env) fall(from, step float64, n int) float64 {
	for range n {
		from -= step
		e.setLoad(from)
		e.seconds(1)
	}
	return from
}

// A load that falls between rounds: once it has fallen over the last 10 and
// 30 ticks and the working load fits on one instance fewer at
// FallingScaleIn × the CPU threshold for FallingScaleInWindow, the
// least-loaded instance goes to the buffer, and it is destroyed as soon as
// its flows have ended although the working instances are busier than
// TrimEmpty's busy rule allows (TrimEmpty alone keeps it until the next
// round). Without the rule (0) nothing leaves between rounds; a flat load
// at the same level buffers nothing either.
func TestFallingScaleIn(t *testing.T) {
	// 4 × 0.71 = 2.84 > 0.94·3 = 2.82; 4 × 0.705 fits: the bar is crossed
	// 19 s into a fall of 0.5 %/s, and the window is 5 s
	e := fallEnv(t, 0.94)
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
	if len(as) != 1 || as[0].InstanceID != fewest || !strings.Contains(as[0].Detail, "falling load:") {
		t.Fatalf("buffer actions %+v, want one of %s on a falling load", as, fewest)
	}
	// its flows end: destroyed, although the 3 working ones average > 81 %
	// (TrimEmpty's busy rule) once they carry the load
	for _, id := range e.ids(StateNormal) {
		e.load[id] = Stats{CPU: 90, Mem: 20, PktRate: 100, Flows: 4}
	}
	e.load[fewest] = Stats{CPU: 0, Mem: 20, Flows: 0}
	e.seconds(5)
	if st := e.state(fewest); st == StateBuffered {
		t.Fatalf("%s still buffered with no flows on a falling load", fewest)
	}
	if ds := e.actions(KindDestroy, ReasonExpiry); len(ds) != 1 || ds[0].InstanceID != fewest || !strings.Contains(ds[0].Detail, "on a falling load") {
		t.Fatalf("destroy actions %+v, want %s's", ds, fewest)
	}

	off := fallEnv(t, 0)
	off.fall(80, 0.5, 60)
	if w := off.working("firewall"); w != 4 {
		t.Fatalf("FallingScaleIn 0: working %d after a 60 s fall, want 4", w)
	}
	flat := fallEnv(t, 0.94)
	flat.setLoad(65)
	flat.seconds(5)
	flat.setLoad(70) // under the bar, but flat after a rise
	flat.seconds(60)
	if w := flat.working("firewall"); w != 4 {
		t.Fatalf("a flat load: working %d, want 4", w)
	}
}
