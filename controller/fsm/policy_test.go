package fsm

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
)

// TestDPUtilization: the DP stages plan at DPTargetUtilization, or at
// TargetUtilization (1 when that is unset too) while it is 0.
func TestDPUtilization(t *testing.T) {
	for _, tc := range []struct {
		u, dp      float64
		cp, wantDP float64
	}{
		{0, 0, 1, 1},
		{0.9, 0, 0.9, 0.9},
		{0.9, 0.95, 0.9, 0.95},
		{0, 0.97, 1, 0.97},
		{0.8, 1, 0.8, 1},
	} {
		p := Policy{DelayBoundMs: 100, TargetUtilization: tc.u, DPTargetUtilization: tc.dp}
		if got := p.Utilization(); got != tc.cp {
			t.Errorf("target %v, DP %v: Utilization %v, want %v", tc.u, tc.dp, got, tc.cp)
		}
		if got := p.DPUtilization(); got != tc.wantDP {
			t.Errorf("target %v, DP %v: DPUtilization %v, want %v", tc.u, tc.dp, got, tc.wantDP)
		}
		if err := p.Validate(); err != nil {
			t.Errorf("target %v, DP %v: %v", tc.u, tc.dp, err)
		}
	}
}

// TestSetPolicyRefusesABadDPTarget: a DP target outside [0, 1] is refused
// by the command, naming the field, and the committed policy stays.
func TestSetPolicyRefusesABadDPTarget(t *testing.T) {
	for _, bad := range []float64{-0.1, 1.01, math.NaN(), math.Inf(1)} {
		p := Policy{DelayBoundMs: 100, TargetUtilization: 0.9, DPTargetUtilization: bad}
		err := p.Validate()
		if err == nil || !strings.Contains(err.Error(), "policy.dpTargetUtilization") {
			t.Fatalf("DP target %v: error %v, want one naming policy.dpTargetUtilization", bad, err)
		}
		st := &State{Policy: Policy{DelayBoundMs: 50, DPTargetUtilization: 0.95}}
		if err := applySetPolicy(st, SetPolicy{Policy: p}); err == nil {
			t.Fatalf("DP target %v: SetPolicy accepted it", bad)
		}
		if st.Policy.DelayBoundMs != 50 || st.Policy.DPTargetUtilization != 0.95 {
			t.Fatalf("DP target %v: the committed policy changed to %+v", bad, st.Policy)
		}
	}
	// the field travels in the replicated state's JSON and is left out when 0
	b, err := json.Marshal(Policy{DelayBoundMs: 100, DPTargetUtilization: 0.95})
	if err != nil || !strings.Contains(string(b), `"dpTargetUtilization":0.95`) {
		t.Fatalf("policy JSON %s (%v)", b, err)
	}
	if b, _ := json.Marshal(Policy{DelayBoundMs: 100}); strings.Contains(string(b), "dpTarget") {
		t.Fatalf("unset DP target in the policy JSON: %s", b)
	}
}

// TestStageUtilization: a Targets entry plans its stage (any spelling
// vnf.Same accepts) at its own utilisation; the other stages plan at
// DPUtilization. Bad entries are refused naming the entry and field.
func TestStageUtilization(t *testing.T) {
	p := Policy{DelayBoundMs: 100, TargetUtilization: 0.9, DPTargetUtilization: 0.93,
		Targets: []Target{{VNF: "firewall", Utilization: 0.95}, {VNF: "IDS", Utilization: 0.97}}}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]float64{"firewall": 0.95, "fw": 0.95, "ids": 0.97, "transcoder": 0.93, "dpi": 0.93} {
		if got := p.StageUtilization(name); got != want {
			t.Errorf("%s: %v, want %v", name, got, want)
		}
	}
	if got := (Policy{TargetUtilization: 0.9}).StageUtilization("ids"); got != 0.9 {
		t.Errorf("no DP targets: ids at %v, want the target 0.9", got)
	}
	for _, tc := range []struct {
		targets []Target
		want    string
	}{
		{[]Target{{VNF: " ", Utilization: 0.9}}, "policy.targets[0].vnf"},
		{[]Target{{VNF: "ids", Utilization: 0}}, "policy.targets[0].utilization"},
		{[]Target{{VNF: "ids", Utilization: 0.9}, {VNF: "fw", Utilization: 1.5}}, "policy.targets[1].utilization"},
		{[]Target{{VNF: "ids", Utilization: math.NaN()}}, "policy.targets[0].utilization"},
		{[]Target{{VNF: "firewall", Utilization: 0.9}, {VNF: "fw", Utilization: 0.95}}, "policy.targets[1].vnf"},
	} {
		p := Policy{DelayBoundMs: 100, Targets: tc.targets}
		if err := p.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("targets %+v: error %v, want one naming %s", tc.targets, err, tc.want)
		}
	}
}

// TestCheckersNameTheCallersField: the exported checkers the daemon's
// config, the experiment file and the simulate command share take the
// field as the user wrote it, and hold the rule Validate applies.
func TestCheckersNameTheCallersField(t *testing.T) {
	for _, tc := range []struct {
		u    float64
		zero string
		ok   bool
	}{
		{0.9, "", true}, {1, "", true}, {0, "", false}, {0, "1", true}, {-0.1, "1", false}, {1.01, "1", false},
		{math.NaN(), "1", false}, {math.Inf(1), "1", false}, {math.Inf(-1), "", false},
	} {
		err := CheckUtilization("--target-util", tc.u, tc.zero)
		if (err == nil) != tc.ok || err != nil && !strings.HasPrefix(err.Error(), "--target-util: ") {
			t.Errorf("CheckUtilization(%v, zero %q) = %v, want ok %v or an error naming --target-util", tc.u, tc.zero, err, tc.ok)
		}
	}
	if err := CheckUtilization("x", 0, "targetUtilization"); err != nil {
		t.Errorf("0 with a meaning refused: %v", err)
	}
	if err := CheckUtilization("x", 2, "targetUtilization"); err == nil || !strings.Contains(err.Error(), "0: targetUtilization") {
		t.Errorf("the error %v does not say what 0 means", err)
	}
	err := CheckTargets("targets", []Target{{VNF: "ids", Utilization: 0.9}, {VNF: "IDS", Utilization: 0.9}})
	if err == nil || !strings.HasPrefix(err.Error(), `targets[1].vnf "IDS": repeated`) {
		t.Errorf("repeated target: %v, want an error naming targets[1].vnf", err)
	}
	if err := CheckTargets("targets", []Target{{VNF: "ids", Utilization: 0.9}, {VNF: "fw", Utilization: 0.95}}); err != nil {
		t.Errorf("good targets: %v", err)
	}
}
