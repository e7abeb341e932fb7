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
