package simulation

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/controller/local"
	"github.com/ims-orch/ims-orch/controller/strategy"
)

// The falling scale-in's step to one working instance
// (Experiment.FallingScaleInSingle, system.Defaults 0.75 since session 14):
// on daily-mobile-zoom's first 400 s (Houston's evening fall, seed 3) hybrid
// buffers some DP stage from two working instances to one between rounds
// with the defaults, and never with the option at 0 (two stay); fewer
// VM-seconds with it. docs/reproduction.md "Session 14: zoom floor margin".
func TestFallingScaleInSingleRun(t *testing.T) {
	e, err := LoadExperiment(expDir + "daily-mobile-zoom.yaml")
	if err != nil {
		t.Fatal(err)
	}
	run := func(single float64) (steps int, vm float64) {
		c := short(e, 400*time.Second)
		c.FallingScaleInSingle = single
		r, err := Run(context.Background(), c, Options{Strategy: strategy.Hybrid, Seed: 3})
		if err != nil {
			t.Fatal(err)
		}
		for _, dc := range r.DCs {
			for _, a := range r.sys.Locals[dc].Actions() {
				if a.Kind == local.KindBuffer && a.Reason == local.ReasonUnderload && strings.Contains(a.Detail, "fits on 1 ") {
					steps++
				}
			}
		}
		return steps, r.Cost.VMSeconds
	}
	if e.FallingScaleInSingle != local.DefaultFallingScaleInSingle {
		t.Fatalf("daily-mobile-zoom's FallingScaleInSingle %v, want the default %v", e.FallingScaleInSingle, local.DefaultFallingScaleInSingle)
	}
	on, vmOn := run(e.FallingScaleInSingle)
	off, vmOff := run(0)
	if on == 0 || off != 0 {
		t.Fatalf("steps to one working instance: %d with the default, %d with 0; want some, then none", on, off)
	}
	if vmOn >= vmOff {
		t.Fatalf("VM-seconds %v with the step, %v without: want fewer with it", vmOn, vmOff)
	}
}
