package system

import (
	"strings"
	"testing"

	"github.com/ims-orch/ims-orch/controller/fsm"
	"github.com/ims-orch/ims-orch/controller/strategy"
)

// TestDPTargetOnlyWithRounds: the committed policy keeps the DP target
// for the strategies with periodic rounds and drops it for reactive-only,
// whose initial round (the yardstick's starting instances) plans every
// VNF at TargetUtilization as before; a bad DP target is refused naming
// the field.
func TestDPTargetOnlyWithRounds(t *testing.T) {
	build := func(strat strategy.Strategy, dp float64) (*System, error) {
		s, _, _, err := newTwoDCSystem(t, []fsm.VNF{{Name: "firewall", Capacity: 35000}}, func(c *Config) {
			c.Policy = fsm.Policy{DelayBoundMs: 250, TargetUtilization: 0.9, DPTargetUtilization: dp,
				Targets: []fsm.Target{{VNF: "firewall", Utilization: 0.97}}}
			c.Strategy = strat
		})
		return s, err
	}
	for _, tc := range []struct {
		strat    strategy.Strategy
		dp, want float64
	}{
		{strategy.Hybrid, 0.95, 0.95},
		{strategy.Proactive, 0.95, 0.95},
		{strategy.Reactive, 0.95, 0},
		{strategy.Hybrid, 0, 0},
		{nil, 0.97, 0.97}, // strategy.Default
	} {
		s, err := build(tc.strat, tc.dp)
		if err != nil {
			t.Fatalf("%v: %v", tc.strat, err)
		}
		p := s.Store.State().Policy
		if p.DPTargetUtilization != tc.want || p.TargetUtilization != 0.9 || (len(p.Targets) == 1) != (tc.strat != strategy.Reactive) {
			t.Fatalf("%v, DP target %v: committed policy %+v, want DP target %v", tc.strat, tc.dp, p, tc.want)
		}
		if got := PolicyFor(fsm.Policy{DPTargetUtilization: tc.dp}, tc.strat).DPTargetUtilization; got != tc.want {
			t.Fatalf("PolicyFor(%v, %v): DP target %v, want %v", tc.strat, tc.dp, got, tc.want)
		}
	}
	if _, err := build(strategy.Hybrid, 1.2); err == nil || !strings.Contains(err.Error(), "dpTargetUtilization") {
		t.Fatalf("DP target 1.2: error %v, want one naming dpTargetUtilization", err)
	}
}
