package global

import (
	"testing"

	"github.com/ims-orch/ims-orch/controller/fsm"
	"github.com/ims-orch/ims-orch/placement"
)

// The policy's target utilisation scales every planned capacity, so the same
// predicted load needs more instances.
func TestTargetUtilizationScalesCapacities(t *testing.T) {
	top := &fsm.Topology{DCs: []string{"a", "b"}, SCSCFDC: "a",
		PCSCF: fsm.VNF{Name: "pcscf", Capacity: 500}, SCSCF: fsm.VNF{Name: "scscf", Capacity: 200},
		Stages: []fsm.VNF{{Name: "fw", Capacity: 100}}, DelayMs: [][]float64{{0, 10}, {10, 0}}}
	plan := func(u float64) *placement.Decision {
		st := &fsm.State{Topology: top, Policy: fsm.Policy{DelayBoundMs: 100, TargetUtilization: u},
			Round: &fsm.Round{Prediction: &fsm.Prediction{Predicted: map[string]float64{
				SeriesKey(KindDP, "a", "b"): 360, SeriesKey(KindCP, "a", "b"): 180}}}}
		s, err := buildSnapshot(st)
		if err != nil {
			t.Fatal(err)
		}
		if s.Stages[0].Capacity != 100*st.Policy.Utilization() {
			t.Fatalf("stage capacity %v", s.Stages[0].Capacity)
		}
		d, err := placement.Plan(s, placement.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	full, eighty := plan(0), plan(0.8)
	fw := func(d *placement.Decision) int { return d.DP[0][0].Working + d.DP[1][0].Working }
	if fw(full) != 4 || fw(eighty) != 5 { // 360/100 → 4; 360/80 → 5
		t.Fatalf("firewalls: %d at full capacity, %d at 80%%", fw(full), fw(eighty))
	}
	if full.SCSCF.Working != 1 || eighty.SCSCF.Working != 2 { // 180/200 → 1; 180/160 → 2
		t.Fatalf("S-CSCF %d / %d", full.SCSCF.Working, eighty.SCSCF.Working)
	}
	for _, bad := range []float64{-0.1, 1.5} {
		p := fsm.Policy{DelayBoundMs: 100, TargetUtilization: bad}
		if err := p.Validate(); err == nil {
			t.Fatalf("utilisation %v accepted", bad)
		}
	}
}
