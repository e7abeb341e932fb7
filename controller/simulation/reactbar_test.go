package simulation

import (
	"reflect"
	"testing"

	"github.com/ims-orch/ims-orch/controller/local"
	"github.com/ims-orch/ims-orch/controller/strategy"
	"github.com/ims-orch/ims-orch/controller/system"
)

// TestReactiveBar99Default: session 11's defaults, ReactiveUtilization
// 0.99 (was 0.95) and FallingScaleIn 0.98 (was 0.94), bring simultaneous
// 30 s, seed 2, under issue 16's 1.15 × the per-second floor (28 498 VM-s
// on a floor of 24 783, 1.1499, when measured; with 0.95 and 0.94, the
// trim's hold kept, 28 647, 1.1559) without losing more packets (1 050
// either way); reactive-only does not move (docs/reproduction.md
// "Session 11: reactive bar 0.99 and the held trim"). The run is
// deterministic; the line it checks is the criterion, 2 VM-s away.
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
	const seed = 2
	h, h0 := runExp(t, e, strategy.Hybrid, seed), runExp(t, old, strategy.Hybrid, seed)
	r, r0 := runExp(t, e, strategy.Reactive, seed).Summarize(), runExp(t, old, strategy.Reactive, seed).Summarize()
	if !reflect.DeepEqual(r, r0) {
		t.Fatalf("reactive-only moved with the bars: %+v against %+v", r, r0)
	}
	f, f0 := h.Cost.VMSeconds/h.Cost.FloorVMSeconds, h0.Cost.VMSeconds/h0.Cost.FloorVMSeconds
	t.Logf("hybrid: 0.99/0.98 VM-s %.0f (÷ floor %.4f) lost %.0f; 0.95/0.94 %.0f (÷ floor %.4f) lost %.0f",
		h.Cost.VMSeconds, f, h.Recorder.DPLost, h0.Cost.VMSeconds, f0, h0.Recorder.DPLost)
	if f > 1.15 || f0 <= 1.15 {
		t.Fatalf("hybrid ÷ floor %.4f with 0.99/0.98, %.4f with 0.95/0.94: want ≤ 1.15 and > 1.15", f, f0)
	}
	if h.Recorder.DPLost > h0.Recorder.DPLost {
		t.Fatalf("hybrid lost %.0f packets with 0.99/0.98, %.0f with 0.95/0.94: want no more", h.Recorder.DPLost, h0.Recorder.DPLost)
	}
}
