package system

import (
	"math"
	"strings"
	"testing"

	"github.com/ims-orch/ims-orch/controller/fsm"
	"github.com/ims-orch/ims-orch/controller/strategy"
)

// TestSpreadOverloadSetsTheRoutingSpreadLimits: Config.SpreadOverload
// becomes every DC's per-stage spread limit in flows (⌊SpreadOverload ×
// capacity / FlowPackets⌋), for strategies with rounds only: reactive-only,
// the yardstick of issue 16, keeps the paper's rule (new flows avoid
// overloaded instances while a normal one exists); a value out of [0, 1]
// is refused naming the field. The default is on.
func TestSpreadOverloadSetsTheRoutingSpreadLimits(t *testing.T) {
	build := func(strat strategy.Strategy, spread, flowPkts float64) (*System, error) {
		s, _, _, err := newTwoDCSystem(t, []fsm.VNF{{Name: "firewall", Capacity: 35000}, {Name: "transcoder", Capacity: 15000}},
			func(c *Config) {
				c.Policy, c.Strategy, c.SpreadOverload, c.FlowPackets = fsm.Policy{DelayBoundMs: 250}, strat, spread, flowPkts
			})
		return s, err
	}
	for _, tc := range []struct {
		name       string
		strat      strategy.Strategy
		spread, fp float64
		fw, tc     float64
	}{
		{"hybrid, the default", strategy.Hybrid, Defaults.SpreadOverload, 0, 700, 300},
		{"proactive 0.9, 100 pkt/s flows", strategy.Proactive, 0.9, 100, 315, 135},
		{"off", strategy.Hybrid, 0, 0, 0, 0},
		{"reactive-only: never", strategy.Reactive, 1, 0, 0, 0},
		{"at least one flow", strategy.Hybrid, 1e-6, 0, 1, 1},
	} {
		s, err := build(tc.strat, tc.spread, tc.fp)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		for _, dc := range []string{"a", "b"} {
			if fw, tr := s.Routers[dc].SpreadLimit("firewall"), s.Routers[dc].SpreadLimit("transcoder"); fw != tc.fw || tr != tc.tc {
				t.Fatalf("%s: dc %s spread limits firewall %v transcoder %v, want %v %v", tc.name, dc, fw, tr, tc.fw, tc.tc)
			}
		}
	}
	// a spread limit below the pack limit would act as the pack limit
	// (packing comes first in routing's pick): refused naming both
	below := func(spread, pack float64) error {
		_, _, _, err := newTwoDCSystem(t, []fsm.VNF{{Name: "firewall", Capacity: 35000}},
			func(c *Config) {
				c.Policy, c.Strategy, c.SpreadOverload, c.PackFlows = fsm.Policy{DelayBoundMs: 250}, strategy.Hybrid, spread, pack
			})
		return err
	}
	if err := below(0.5, 0.85); err == nil || !strings.Contains(err.Error(), "spreadOverload") || !strings.Contains(err.Error(), "packFlows 0.85") {
		t.Fatalf("spreadOverload 0.5 below packFlows 0.85: error %v, want one naming both", err)
	}
	for _, ok := range [][2]float64{{0.85, 0.85}, {0, 0.85}, {1, 0.85}, {0.5, 0}} {
		if err := below(ok[0], ok[1]); err != nil {
			t.Fatalf("spreadOverload %v, packFlows %v: %v", ok[0], ok[1], err)
		}
	}
	for _, bad := range []float64{1.5, -0.1, math.NaN(), math.Inf(1)} {
		if _, err := build(strategy.Hybrid, bad, 0); err == nil || !strings.Contains(err.Error(), "spreadOverload") {
			t.Fatalf("spreadOverload %v: error %v, want one naming spreadOverload", bad, err)
		}
	}
}
