package global

import (
	"reflect"
	"testing"

	"github.com/ims-orch/ims-orch/controller/fsm"
	"github.com/ims-orch/ims-orch/controller/protocol"
	"github.com/ims-orch/ims-orch/placement"
)

func TestControlsReachSnapshotAndDecisions(t *testing.T) {
	topo := testTopology(4)
	st := &fsm.State{Topology: &topo, Round: &fsm.Round{Round: 3},
		Policy: fsm.Policy{DelayBoundMs: 50, Limits: []fsm.Limit{
			{VNF: "firewall", Min: 1, Max: 8},
			{DC: "dc2", VNF: "firewall", Min: 2, Max: 3},
			{DC: "dc2", VNF: "ids", Max: 5},
			{DC: "dc1", VNF: "transcoder", Min: 4},
		}},
		Drained: []string{"dc2"}}
	s, err := buildSnapshot(st)
	if err != nil {
		t.Fatal(err)
	}
	if want := []bool{false, false, true, false}; !reflect.DeepEqual(s.Excluded, want) {
		t.Fatalf("snapshot excluded %v, want %v", s.Excluded, want)
	}
	st.Drained = nil
	if s, _ := buildSnapshot(st); s.Excluded != nil {
		t.Fatalf("excluded %v with nothing drained, want nil", s.Excluded)
	}
	st.Drained = []string{"dc2"}

	dcs := []protocol.DCDecision{{DC: "dc0"}, {DC: "dc1"}, {DC: "dc2"}, {DC: "dc3"}}
	addControls(st, dcs)
	want := map[string][]protocol.VNFLimit{
		"dc0": {{VNF: "firewall", Min: 1, Max: 8}},
		"dc1": {{VNF: "firewall", Min: 1, Max: 8}, {VNF: "transcoder", Min: 4}},
		"dc2": {{VNF: "firewall", Min: 2, Max: 3}, {VNF: "ids", Max: 5}},
		"dc3": {{VNF: "firewall", Min: 1, Max: 8}},
	}
	for _, d := range dcs {
		if d.Drain != (d.DC == "dc2") {
			t.Errorf("%s drain %v", d.DC, d.Drain)
		}
		if !reflect.DeepEqual(d.Limits, want[d.DC]) {
			t.Errorf("%s limits %+v, want %+v (a per-DC limit wins)", d.DC, d.Limits, want[d.DC])
		}
	}
	st.Policy.Limits, st.Drained = nil, nil
	addControls(st, dcs)
	for _, d := range dcs {
		if d.Drain || d.Limits != nil {
			t.Errorf("%s: drain %v limits %v after both were removed", d.DC, d.Drain, d.Limits)
		}
	}
}

// A dry run plans from the last reports and the given forecasts under the
// same policy as a round: drained DCs excluded, target utilisation applied.
func TestNextSnapshot(t *testing.T) {
	topo := testTopology(3)
	st := fsm.State{Topology: &topo, Interval: 7, Drained: []string{"dc1"},
		Policy: fsm.Policy{DelayBoundMs: 80, TargetUtilization: 0.5},
		LastProvision: map[string]protocol.ProvisionReport{"dc2": {DC: "dc2", VNFs: []protocol.VNFProvision{
			{VNF: "firewall", Working: 2, Booting: 1, Buffered: 3}}}}}
	s, err := NextSnapshot(st, map[string]float64{"dp/dc0/dc2": 1234})
	if err != nil {
		t.Fatal(err)
	}
	if st.Round != nil {
		t.Fatal("NextSnapshot changed the caller's state")
	}
	if got := s.DP[2][0]; got.Working != 3 || got.Buffered != 3 {
		t.Fatalf("dc2 firewall provision %+v, want 3 working (booting included) and 3 buffered", got)
	}
	if got := s.DPWorkload[placement.Pair{Entry: 0, Exit: 2}]; got != 1234 {
		t.Fatalf("dc0→dc2 workload %g, want the forecast 1234", got)
	}
	if s.Stages[0].Capacity != 0.5*35000 || !s.Excluded[1] || s.Excluded[0] {
		t.Fatalf("capacity %g excluded %v; want the policy's utilisation and dc1 drained", s.Stages[0].Capacity, s.Excluded)
	}
}
