package local

import (
	"strings"
	"testing"

	"github.com/ims-orch/ims-orch/drivers/fake"
)

// A round whose forecast lags the load asks for fewer instances than the
// measured load needs. With ScaleInGuard the controller keeps ⌈Σ load /
// threshold⌉ of them (here CPU and the CPU threshold: the firewall has no
// pinned flows; a DP stage's carried share and LoadThreshold:
// TestScaleInGuardReadsTheLoadThreshold); without it the round buffers them.
func TestScaleInGuardKeepsWhatMeasuredLoadNeeds(t *testing.T) {
	for _, tc := range []struct {
		name    string
		guard   bool
		cpu     float64 // each of the 4 instances (threshold 90)
		target  int
		working int
	}{
		{"no guard: round buffers 3", false, 80, 1, 1},
		{"guard: 4×80% needs 4", true, 80, 1, 4},
		{"guard: 4×60% needs 3", true, 60, 1, 3},
		{"guard: idle load lets the round scale in", true, 10, 1, 1},
		{"guard never raises a target above the working count", true, 100, 2, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := fwConfig(4)
			cfg.ScaleInGuard = tc.guard
			e := newEnv(t, cfg, fake.Options{})
			for _, in := range e.c.Instances() {
				e.load[in.ID] = Stats{CPU: tc.cpu, Mem: 30, PktRate: 100}
			}
			e.seconds(2)
			// the 4 instances came from Min; let the round go below it
			e.c.cfg.VNFs[0].Min, e.c.vnfs["firewall"].cfg.Min, e.c.vnfs["firewall"].base.Min = 0, 0, 0
			e.round(1, map[string]int{"firewall": tc.target})
			if got := e.working("firewall"); got != tc.working {
				t.Fatalf("working %d after the round, want %d", got, tc.working)
			}
			buffered := e.actions(KindBuffer, ReasonProactive)
			if len(buffered) != 4-tc.working {
				t.Fatalf("%d instances buffered, want %d", len(buffered), 4-tc.working)
			}
			if tc.guard && tc.working > tc.target && len(buffered) > 0 && !strings.Contains(buffered[0].Detail, "scale-in guard") {
				t.Fatalf("buffer action does not say the guard kept instances: %q", buffered[0].Detail)
			}
		})
	}
}

// An instance reused from the buffer within ChurnIntervals intervals of
// being buffered counts as churn; one reused later does not.
func TestChurnCounted(t *testing.T) {
	cfg := fwConfig(0)
	e := newEnv(t, cfg, fake.Options{})
	e.round(1, map[string]int{"firewall": 3})
	e.seconds(2)
	e.round(2, map[string]int{"firewall": 1}) // 2 buffered in interval 2
	e.round(4, map[string]int{"firewall": 3}) // reused in interval 4: churn
	if got := e.c.Counts()["firewall"].Churn; got != 2 {
		t.Fatalf("churn %d after reusing 2 instances buffered 2 intervals before, want 2", got)
	}
	if as := e.actions(KindReuse, ReasonProactive); len(as) != 2 || !strings.Contains(as[0].Detail, "churn") {
		t.Fatalf("reuse actions %+v", as)
	}
	e.round(5, map[string]int{"firewall": 1}) // 2 buffered in interval 5
	e.round(8, map[string]int{"firewall": 3}) // reused 3 intervals later: not churn
	if got := e.c.Counts()["firewall"].Churn; got != 2 {
		t.Fatalf("churn %d, want still 2", got)
	}
	if n := len(e.actions(KindReuse, ReasonProactive)); n != 4 {
		t.Fatalf("%d reuses, want 4", n)
	}
}
