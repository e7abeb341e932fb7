package global

import (
	"testing"

	"github.com/ims-orch/ims-orch/controller/fsm"
	"github.com/ims-orch/ims-orch/controller/protocol"
	"github.com/ims-orch/ims-orch/placement"
)

// TestDPTargetScalesTheStagesOnly: the policy's DP target sizes the DP
// stages (their planned capacity, and the capacity their provisioned
// instances offer) while the CSCFs stay at TargetUtilization; unset, every
// VNF plans at TargetUtilization as before.
func TestDPTargetScalesTheStagesOnly(t *testing.T) {
	top := &fsm.Topology{DCs: []string{"a", "b"}, SCSCFDC: "a",
		PCSCF: fsm.VNF{Name: "pcscf", Capacity: 500}, SCSCF: fsm.VNF{Name: "scscf", Capacity: 200},
		Stages: []fsm.VNF{{Name: "fw", Capacity: 100}}, DelayMs: [][]float64{{0, 10}, {10, 0}}}
	var targets []fsm.Target
	state := func(u, dp float64) *fsm.State {
		return &fsm.State{Topology: top, Policy: fsm.Policy{DelayBoundMs: 100, TargetUtilization: u, DPTargetUtilization: dp, Targets: targets},
			Round: &fsm.Round{Prediction: &fsm.Prediction{Predicted: map[string]float64{
				SeriesKey(KindDP, "a", "b"): 370, SeriesKey(KindCP, "a", "b"): 170}}}}
	}
	plan := func(u, dp float64) (*placement.Snapshot, *placement.Decision) {
		s, err := buildSnapshot(state(u, dp))
		if err != nil {
			t.Fatal(err)
		}
		d, err := placement.Plan(s, placement.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s, d
	}
	reserved := func(u, dp float64) float64 {
		st := state(u, dp)
		st.Round.Provisions = map[string]protocol.ProvisionReport{"a": {VNFs: []protocol.VNFProvision{
			{VNF: "fw", Working: 2, ReservedCapacity: 1000}}}}
		s, err := buildSnapshot(st)
		if err != nil {
			t.Fatal(err)
		}
		return s.DP[0][0].Reserved
	}
	fw := func(d *placement.Decision) int { return d.DP[0][0].Working + d.DP[1][0].Working }
	for _, tc := range []struct {
		name      string
		u, dp     float64
		stageCap  float64
		reserved  float64
		fws, scsc int
		targets   []fsm.Target
	}{
		// 370/90 → 5 firewalls, 170/180 → 1 S-CSCF
		{"one target", 0.9, 0, 90, 180, 5, 1, nil},
		// 370/97 → 4 firewalls; the S-CSCF still at 0.9
		{"DP at 0.97", 0.9, 0.97, 97, 194, 4, 1, nil},
		// the CSCFs' target alone moves: 170/160 → 2 S-CSCFs, firewalls at 0.97
		{"CP at 0.8, DP at 0.97", 0.8, 0.97, 97, 194, 4, 2, nil},
		// a stage target wins over the DP target: 370/95 → 4 firewalls
		{"firewall's own target", 0.9, 0.8, 95, 190, 4, 1, []fsm.Target{{VNF: "FW", Utilization: 0.95}}},
		// a target of a stage the topology lacks changes nothing
		{"another stage's target", 0.9, 0, 90, 180, 5, 1, []fsm.Target{{VNF: "transcoder", Utilization: 0.95}}},
	} {
		targets = tc.targets
		s, d := plan(tc.u, tc.dp)
		if s.Stages[0].Capacity != tc.stageCap || s.SCSCF.Capacity != tc.u*200 || s.PCSCF.Capacity != tc.u*500 {
			t.Fatalf("%s: stage capacity %v (want %v), S-CSCF %v, P-CSCF %v", tc.name, s.Stages[0].Capacity, tc.stageCap, s.SCSCF.Capacity, s.PCSCF.Capacity)
		}
		// a provisioned instance offers at most the DP target's capacity
		if r := reserved(tc.u, tc.dp); r != tc.reserved {
			t.Fatalf("%s: DC a's reserved firewall capacity %v, want %v (2 × the planned capacity)", tc.name, r, tc.reserved)
		}
		if fw(d) != tc.fws || d.SCSCF.Working != tc.scsc {
			t.Fatalf("%s: %d firewalls, %d S-CSCFs; want %d, %d", tc.name, fw(d), d.SCSCF.Working, tc.fws, tc.scsc)
		}
	}
}
