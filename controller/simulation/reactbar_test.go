package simulation

import (
	"testing"

	"github.com/ims-orch/ims-orch/controller/local"
	"github.com/ims-orch/ims-orch/controller/system"
)

// TestReactiveBar99Default: session 11's defaults, ReactiveUtilization
// 0.99 (was 0.95) and FallingScaleIn 0.98 (was 0.94), take hybrid on
// simultaneous 30 s, seed 1, at least 150 VM-s under the old pair (the
// trim's hold kept in both; 28 483 against 28 721, 3 000 packets lost
// either way, when measured) without losing more packets; reactive-only
// does not move (docs/reproduction.md "Session 11: reactive bar 0.99 and
// the held trim"). It checks the margin, not issue 16's 1.15 × floor line
// (scripts/issue16-criteria.py counts that): seed 2 passes that line by
// 2 VM-s, which unrelated changes move.
func TestReactiveBar99Default(t *testing.T) {
	if testing.Short() {
		t.Skip("four whole simultaneous-30s runs")
	}
	if system.Defaults.ReactiveUtilization != 0.99 || system.Defaults.FallingScaleIn != 0.98 || local.DefaultFallingScaleIn != 0.98 {
		t.Fatalf("defaults reactiveUtilization %v, fallingScaleIn %v (local %v): want 0.99, 0.98",
			system.Defaults.ReactiveUtilization, system.Defaults.FallingScaleIn, local.DefaultFallingScaleIn)
	}
	e := load(t, "simultaneous-start-30s.yaml")
	if e.ReactiveUtilization != 0.99 || e.FallingScaleIn != 0.98 {
		t.Fatalf("experiment reactiveUtilization %v, fallingScaleIn %v: want the defaults", e.ReactiveUtilization, e.FallingScaleIn)
	}
	old := e.clone()
	old.ReactiveUtilization, old.FallingScaleIn = 0.95, 0.94
	h, h0, _ := withAndWithout(t, e, old, "the bars (without: 0.95/0.94)")
	savesVMSeconds(t, h, h0, "the bars (without: 0.95/0.94)", "0.99/0.98", 150)
}
