package system

import (
	"math"
	"strings"
	"testing"

	"github.com/ims-orch/ims-orch/controller/fsm"
	"github.com/ims-orch/ims-orch/controller/strategy"
)

// TestNewRefusesABadReactiveUtilization: system.New checks
// Config.Local.ReactiveUtilization itself, naming the field as the
// system's configuration calls it (revC #6: only local.New's check was
// tested), for every strategy (reactive-only zeroes it after the check).
func TestNewRefusesABadReactiveUtilization(t *testing.T) {
	for _, st := range []strategy.Strategy{strategy.Hybrid, strategy.Reactive} {
		for _, bad := range []float64{1.5, -0.1, math.NaN()} {
			_, _, _, err := newTwoDCSystem(t, []fsm.VNF{{Name: "firewall", Capacity: 35000}}, func(c *Config) {
				c.Policy, c.Strategy, c.Local.ReactiveUtilization = fsm.Policy{DelayBoundMs: 250}, st, bad
			})
			if err == nil || !strings.Contains(err.Error(), "local.reactiveUtilization") {
				t.Fatalf("%s, local.reactiveUtilization %v: error %v, want one naming local.reactiveUtilization", st, bad, err)
			}
		}
	}
}

// TestNewRefusesABadFallingScaleInSingle: system.New checks
// Config.Local.FallingScaleInSingle itself, naming the field as the
// system's configuration calls it (revZ M3), after FallingScaleIn.
func TestNewRefusesABadFallingScaleInSingle(t *testing.T) {
	for _, bad := range []float64{1.5, -0.1, math.NaN()} {
		_, _, _, err := newTwoDCSystem(t, []fsm.VNF{{Name: "firewall", Capacity: 35000}}, func(c *Config) {
			c.Policy, c.Strategy, c.Local.FallingScaleInSingle = fsm.Policy{DelayBoundMs: 250}, strategy.Hybrid, bad
		})
		if err == nil || !strings.Contains(err.Error(), "local.fallingScaleInSingle") {
			t.Fatalf("local.fallingScaleInSingle %v: error %v, want one naming local.fallingScaleInSingle", bad, err)
		}
	}
	_, _, _, err := newTwoDCSystem(t, []fsm.VNF{{Name: "firewall", Capacity: 35000}}, func(c *Config) {
		c.Policy, c.Strategy = fsm.Policy{DelayBoundMs: 250}, strategy.Hybrid
		c.Local.FallingScaleIn, c.Local.FallingScaleInSingle = 2, 2
	})
	if err == nil || !strings.Contains(err.Error(), "local.fallingScaleIn:") {
		t.Fatalf("both out of range: error %v, want FallingScaleIn's first", err)
	}
}

// TestNewRefusesABadTrimEmptyBusy: system.New checks Config.Local's
// TrimEmpty busy bars, naming each as the system's configuration calls it;
// 0 is local.Config's default and passes.
func TestNewRefusesABadTrimEmptyBusy(t *testing.T) {
	for _, field := range []string{"local.trimEmptyBusy", "local.trimEmptySingleBusy"} {
		for _, bar := range []float64{1.5, -0.1, math.NaN(), 0} {
			_, _, _, err := newTwoDCSystem(t, []fsm.VNF{{Name: "firewall", Capacity: 35000}}, func(c *Config) {
				c.Policy, c.Strategy = fsm.Policy{DelayBoundMs: 250}, strategy.Hybrid
				if field == "local.trimEmptyBusy" {
					c.Local.TrimEmptyBusy = bar
				} else {
					c.Local.TrimEmptySingleBusy = bar
				}
			})
			if bar == 0 {
				if err != nil {
					t.Fatalf("%s 0 (the default): %v", field, err)
				}
				continue
			}
			if err == nil || !strings.Contains(err.Error(), field+": must be in (0, 1]") {
				t.Fatalf("%s %v: error %v, want one naming %s", field, bar, err, field)
			}
		}
	}
}
