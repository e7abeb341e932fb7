package simulation

import (
	"testing"

	"github.com/ims-orch/ims-orch/controller/system"
)

// TestReactiveUtilizationDefault: at 6 users/s (simultaneous start's
// steady state) each DC's IDS sits at ρ ≈ 0.90, where the simulator's
// default model reports its overload; every round buffered the second IDS
// and reactive scale-out launched it again 5–20 s later. With the default
// bar (a majority carrying ≥ 0.99 of the capacity; 0.95 until session
// 11: docs/reproduction.md "Session 11: reactive bar 0.99 and the held
// trim", 21 726 against 21 889 there) hybrid runs fewer
// VM-seconds on simultaneous 20 s (seed 1, with the anticipation bar of
// session 9's loss rule and revC's fix: 21 827 against 21 963, the same
// 56 450 packets lost) and loses no more packets (docs/reproduction.md
// "Session 9: reactive scale-out utilisation"). The 100 VM-s asked for is
// of the effect's order (136 here; 161 before the anticipation bar): a
// change elsewhere that shrinks it below 100 should be looked at; the run
// is deterministic. Reactive-only runs the same with or without
// it: the yardstick keeps the paper's rule.
func TestReactiveUtilizationDefault(t *testing.T) {
	if testing.Short() {
		t.Skip("four whole simultaneous-20s runs")
	}
	if system.Defaults.ReactiveUtilization != 0.99 {
		t.Fatalf("default reactiveUtilization %v, want 0.99", system.Defaults.ReactiveUtilization)
	}
	e := load(t, "simultaneous-start-20s.yaml")
	if e.ReactiveUtilization != system.Defaults.ReactiveUtilization {
		t.Fatalf("experiment reactiveUtilization %v, default %v", e.ReactiveUtilization, system.Defaults.ReactiveUtilization)
	}
	off := e.clone()
	off.ReactiveUtilization = 0
	h, h0, _ := withAndWithout(t, e, off, "the bar")
	savesVMSeconds(t, h, h0, "the bar", e.ReactiveUtilization, 100)
}
