package simulation

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/controller/local"
	"github.com/ims-orch/ims-orch/controller/strategy"
	"github.com/ims-orch/ims-orch/controller/system"
	"github.com/ims-orch/ims-orch/drivers/sim"
	"github.com/ims-orch/ims-orch/placement/vnf"
)

// overloadAtCapacity, scaleInGuard and localFirst parse; with overloadAtCapacity a
// simulated instance's CPU and memory reach the Table 2 thresholds at its
// capacity, not at ρ = 0.9 (DP) / 0.7 (CP).
func TestOverloadAtCapacityCatalog(t *testing.T) {
	for _, tc := range []struct {
		name      string
		edit      string
		atCap     bool
		overAt095 bool // firewall at ρ = 0.95: CPU over 90 % and memory over 50 %
		overAt075 bool // P-CSCF at ρ = 0.75: CPU over 70 % and memory over 50 %
	}{
		{"default (trigger 0.9 / 0.7)", "", false, true, true},
		{"overloadAtCapacity", "overloadAtCapacity: true\nscaleInGuard: true\nlocalFirst: true\n", true, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := ParseExperiment([]byte(minimal + tc.edit))
			if err != nil {
				t.Fatal(err)
			}
			// without the fields the experiment gets Defaults
			wantGuard, wantLocal := system.Defaults.ScaleInGuard, system.Defaults.LocalFirst
			if tc.atCap {
				wantGuard, wantLocal = true, true
			}
			if e.OverloadAtCapacity != tc.atCap || e.ScaleInGuard != wantGuard || e.LocalFirst != wantLocal {
				t.Fatalf("overloadAtCapacity %v scaleInGuard %v localFirst %v, want %v %v %v", e.OverloadAtCapacity, e.ScaleInGuard, e.LocalFirst, tc.atCap, wantGuard, wantLocal)
			}
			cat := e.Catalog()
			// the DP stages' load rules read the model's trigger share
			wantLoad := local.DefaultLoadThreshold
			if tc.atCap {
				wantLoad = 100
			}
			for name, vc := range localVNFs(cat, nil) {
				ty, _ := cat.Lookup(name)
				if want := map[bool]float64{true: wantLoad}[ty.Plane == vnf.DataPlane]; vc.LoadThreshold != want {
					t.Errorf("%s (%s): loadThreshold %v, want %v", name, ty.Plane, vc.LoadThreshold, want)
				}
			}
			for _, c := range []struct {
				vnf  string
				rho  float64
				want bool
			}{{"firewall", 0.95, tc.overAt095}, {"P-CSCF", 0.75, tc.overAt075}, {"transcoder", 1.01, true}} {
				ty, ok := cat.Lookup(c.vnf)
				if !ok {
					t.Fatalf("%s not in the catalog", c.vnf)
				}
				cpu, mem, _ := sim.Stats(ty, sim.Serve(ty, c.rho*ty.Capacity))
				if got := cpu > ty.Thresholds.CPU && mem > ty.Thresholds.Mem; got != c.want {
					t.Errorf("%s at ρ=%.2f: cpu %.1f mem %.1f over = %v, want %v", c.vnf, c.rho, cpu, mem, got, c.want)
				}
			}
		})
	}
}

// With overload at capacity (Table 2's reading) reactive-only loses packets
// during every boot, and hybrid with a trend forecast and planning headroom
// loses less than it (docs/reproduction.md, issue 5). With the trigger at
// ρ = 0.9 and the issue-5 options (no warm start, no scale-in guard, no plan
// horizon, no buffer trimming) reactive-only loses so little that this does
// not hold; the test pins those options, so it keeps measuring that claim
// whatever Defaults say.
func TestOverloadAtCapacityHybridLosesLess(t *testing.T) {
	if testing.Short() {
		t.Skip("four 500 s runs")
	}
	base := short(load(t, "async-start.yaml"), 500*time.Second)
	issue5Options(base)
	base.Predictor, base.TargetUtilization = "holt", 0.9
	atCap := base.clone()
	atCap.OverloadAtCapacity = true
	for _, tc := range []struct {
		name string
		e    *Experiment
		less bool // hybrid loss < 0.8 × reactive-only loss
	}{
		{"trigger at 0.9", base, false},
		{"overload at capacity", atCap, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := runExp(t, tc.e, strategy.Hybrid, 1).Summarize()
			r := runExp(t, tc.e, strategy.Reactive, 1).Summarize()
			t.Logf("DP loss hybrid %.4f reactive %.4f; created %d / %d", h.DPLoss, r.DPLoss, h.Created, r.Created)
			if got := h.DPLoss < 0.8*r.DPLoss; got != tc.less {
				t.Fatalf("hybrid loss %.4f < 0.8 × reactive-only %.4f is %v, want %v", h.DPLoss, r.DPLoss, got, tc.less)
			}
		})
	}
}

// issue5Options sets the scaling options that were the defaults before
// issue 16 (AR(1), no headroom, no warm start, no scale-in guard, no plan
// horizon, the paper's τ buffer).
func issue5Options(e *Experiment) {
	e.Predictor, e.TargetUtilization, e.WarmStart, e.ScaleInGuard, e.LocalFirst = "", 0, false, false, false
	e.PlanHorizon, e.TrimBuffer, e.BufferSpare, e.TrimEmpty, e.ScaleIn, e.PackFlows = false, false, 0, false, false, 0
	e.Anticipate, e.DPTargetUtilization, e.Targets, e.SpreadOverload, e.ReactiveUtilization = false, 0, nil, 0, 0
	e.FallingScaleIn, e.FallingScaleInSingle = 0, 0
	e.RiseFlags = false
}

// TestExperimentDefaults: an experiment file that sets no scaling option
// runs system.Defaults, the daemon's defaults too (one place).
func TestExperimentDefaults(t *testing.T) {
	e, err := ParseExperiment([]byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	got := system.Scaling{Predictor: e.Predictor, TargetUtilization: e.TargetUtilization, WarmStart: e.WarmStart, ScaleInGuard: e.ScaleInGuard,
		LocalFirst: e.LocalFirst, PlanHorizon: e.PlanHorizon, TrimBuffer: e.TrimBuffer, BufferSpare: e.BufferSpare, TrimEmpty: e.TrimEmpty, ScaleIn: e.ScaleIn,
		PackFlows: e.PackFlows, SpreadOverload: e.SpreadOverload, Anticipate: e.Anticipate, DPTargetUtilization: e.DPTargetUtilization, Targets: e.Targets,
		ReactiveUtilization: e.ReactiveUtilization, FallingScaleIn: e.FallingScaleIn, FallingScaleInSingle: e.FallingScaleInSingle, TrimEmptyBusy: e.TrimEmptyBusy, TrimEmptySingleBusy: e.TrimEmptySingleBusy,
		RiseFlags: e.RiseFlags}
	if !reflect.DeepEqual(got, system.Defaults) {
		t.Fatalf("experiment scaling %+v, system defaults %+v", got, system.Defaults)
	}
}

// The experiment keys anticipate and riseFlags override
// system.Defaults.Anticipate and RiseFlags (riseFlags on by default since
// session 17: candidate H).
func TestExperimentSwitchKeys(t *testing.T) {
	if !system.Defaults.RiseFlags {
		t.Fatal("system.Defaults.RiseFlags off, want on (session 17)")
	}
	for key, field := range map[string]func(*Experiment) bool{
		"anticipate": func(e *Experiment) bool { return e.Anticipate },
		"riseFlags":  func(e *Experiment) bool { return e.RiseFlags },
	} {
		for _, want := range []bool{true, false} {
			e, err := ParseExperiment([]byte(minimal + fmt.Sprintf("%s: %t\n", key, want)))
			if err != nil {
				t.Fatal(err)
			}
			if got := field(e); got != want {
				t.Fatalf("%s: %t parsed as %t", key, want, got)
			}
		}
	}
}

// The experiment keys reactiveUtilization, fallingScaleIn and
// fallingScaleInSingle override
// system.Defaults' values; a value outside [0, 1] is refused, naming the
// key.
func TestExperimentReactiveUtilizationKey(t *testing.T) {
	for key, get := range map[string]func(*Experiment) float64{
		"reactiveUtilization":  func(e *Experiment) float64 { return e.ReactiveUtilization },
		"fallingScaleIn":       func(e *Experiment) float64 { return e.FallingScaleIn },
		"fallingScaleInSingle": func(e *Experiment) float64 { return e.FallingScaleInSingle },
	} {
		for _, want := range []float64{0, 0.9, 1} {
			e, err := ParseExperiment([]byte(minimal + fmt.Sprintf("%s: %g\n", key, want)))
			if err != nil {
				t.Fatal(err)
			}
			if get(e) != want {
				t.Fatalf("%s: %g parsed as %g", key, want, get(e))
			}
		}
		for _, bad := range []string{"-0.1", "1.2", ".nan"} {
			_, err := ParseExperiment([]byte(minimal + key + ": " + bad + "\n"))
			if err == nil || !strings.Contains(err.Error(), key+": must be in [0, 1]") {
				t.Fatalf("%s: %s: error %v, want one naming the key", key, bad, err)
			}
		}
	}
}

// The experiment keys trimEmptyBusy and trimEmptySingleBusy override
// system.Defaults' bars; a value outside (0, 1] is refused, naming the key.
func TestExperimentTrimEmptyBusyKeys(t *testing.T) {
	for key, get := range map[string]func(*Experiment) float64{
		"trimEmptyBusy":       func(e *Experiment) float64 { return e.TrimEmptyBusy },
		"trimEmptySingleBusy": func(e *Experiment) float64 { return e.TrimEmptySingleBusy },
	} {
		for _, want := range []float64{0.5, 1} {
			e, err := ParseExperiment([]byte(minimal + fmt.Sprintf("%s: %g\n", key, want)))
			if err != nil {
				t.Fatal(err)
			}
			if get(e) != want {
				t.Fatalf("%s: %g parsed as %g", key, want, get(e))
			}
		}
		for _, bad := range []string{"0", "-0.1", "1.2", ".nan"} {
			_, err := ParseExperiment([]byte(minimal + key + ": " + bad + "\n"))
			if err == nil || !strings.Contains(err.Error(), key+": must be in (0, 1]") {
				t.Fatalf("%s: %s: error %v, want one naming the key", key, bad, err)
			}
		}
	}
}
