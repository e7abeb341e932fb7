package local

import (
	"strings"
	"testing"

	"github.com/ims-orch/ims-orch/drivers/fake"
)

// A round whose forecast lags the load asks for fewer instances than the
// measured load needs. With ScaleInGuard the controller keeps ⌈Σ CPU / CPU
// threshold⌉ of them; without it the round buffers them.
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

// The guard plans for the load at the next round: on a rising load it
// keeps what the measured load plus its rise over the last LoadTrendTicks
// ticks, extrapolated over the last round period, needs (the daily
// experiments' first round, 15 s into the calls' build-up, buffered the
// warm start's instances; docs/reproduction.md "Session 7: daily
// traffic"). On a falling load it keeps what the measured load needs.
func TestScaleInGuardPlansForTheRise(t *testing.T) {
	for _, tc := range []struct {
		name     string
		from, to float64 // each of the 4 instances' CPU over the last 12 s before round 2
		working  int
	}{
		// Σ 160 % rising 1.67 %/s, 50 s to the next round: 243 % needs 3
		{"rising: keeps what the load needs by the next round", 35, 40, 3},
		// Σ 160 % needs 2 at 90 %
		{"falling: the measured load alone", 45, 40, 2},
		{"steady", 40, 40, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := fwConfig(4)
			cfg.ScaleInGuard = true
			e := newEnv(t, cfg, fake.Options{})
			e.c.cfg.VNFs[0].Min, e.c.vnfs["firewall"].cfg.Min, e.c.vnfs["firewall"].base.Min = 0, 0, 0
			set := func(cpu float64) {
				for _, in := range e.c.Instances() {
					e.load[in.ID] = Stats{CPU: cpu, Mem: 30, PktRate: 100, Flows: 10}
				}
			}
			set(tc.from)
			e.seconds(2)
			e.round(1, map[string]int{"firewall": 4}) // the round period starts
			e.seconds(38)
			for i := 1; i <= 12; i++ {
				set(tc.from + (tc.to-tc.from)*float64(i)/12)
				e.second()
			}
			e.round(2, map[string]int{"firewall": 1}) // 50 s after round 1
			if got := e.working("firewall"); got != tc.working {
				t.Fatalf("working %d after round 2, want %d", got, tc.working)
			}
			if tc.working == 3 {
				b := e.actions(KindBuffer, ReasonProactive)
				if len(b) != 1 || !strings.Contains(b[0].Detail, "rising") || !strings.Contains(b[0].Detail, "in 50s") {
					t.Fatalf("buffer actions %+v: want one saying the guard planned for the rise over 50s", b)
				}
			}
		})
	}
}
