package simulation

import (
	"reflect"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/controller/fsm"
	"github.com/ims-orch/ims-orch/controller/system"
	"github.com/ims-orch/ims-orch/placement/vnf"
)

// TestDPTargetDefault: the default plans every DP stage closer to its
// capacity than TargetUtilization, the CSCFs' (docs/reproduction.md
// "Session 7: DP target": the firewall and the IDS; since "Session 8:
// routing during overload", with the spread limit, the transcoder too),
// and on async start (delay 0, 900 s, seed 1) hybrid with it pays fewer
// VM-seconds than with one target for every VNF while it still loses at
// most 0.5 × reactive-only's packets; reactive-only runs the same with
// either setting (system.PolicyFor: the yardstick does not move).
func TestDPTargetDefault(t *testing.T) {
	if testing.Short() {
		t.Skip("four 900 s runs")
	}
	d := system.Defaults
	p := fsm.Policy{TargetUtilization: d.TargetUtilization, DPTargetUtilization: d.DPTargetUtilization, Targets: d.Targets}
	for _, st := range []struct {
		name  string
		above bool
	}{{vnf.Firewall, true}, {vnf.IDS, true}, {vnf.Transcoder, true}} {
		if u := p.StageUtilization(st.name); (u > d.TargetUtilization) != st.above {
			t.Fatalf("default target of %s %v against the target %v: want above it %v", st.name, u, d.TargetUtilization, st.above)
		}
	}
	e, err := load(t, "async-start.yaml").WithStartDelay(0)
	if err != nil {
		t.Fatal(err)
	}
	e = short(e, 900*time.Second)
	if e.DPTargetUtilization != d.DPTargetUtilization || !reflect.DeepEqual(e.Targets, d.Targets) {
		t.Fatalf("experiment DP targets %v %v, defaults %v %v", e.DPTargetUtilization, e.Targets, d.DPTargetUtilization, d.Targets)
	}
	one := e.clone()
	one.DPTargetUtilization, one.Targets = 0, nil // one target for every VNF: the session-6 default
	hr, h1r, r := withAndWithout(t, e, one, "the DP target")
	h, h1 := hr.Summarize(), h1r.Summarize()
	t.Logf("hybrid: DP target %v, stage targets %v: VM-s %.0f (floor %.0f) loss %.4f; one target VM-s %.0f (floor %.0f) loss %.4f; reactive VM-s %.0f loss %.4f",
		d.DPTargetUtilization, d.Targets, h.VMSeconds, h.FloorVMSeconds, h.DPLoss, h1.VMSeconds, h1.FloorVMSeconds, h1.DPLoss, r.VMSeconds, r.DPLoss)
	if h.VMSeconds > 0.995*h1.VMSeconds || h.DPLoss > 0.5*r.DPLoss {
		t.Fatalf("hybrid with the DP target: VM-s %.0f (%.3f × one target's), loss %.4f (%.3f × reactive-only's): want ≤ 0.995, ≤ 0.5",
			h.VMSeconds, h.VMSeconds/h1.VMSeconds, h.DPLoss, h.DPLoss/r.DPLoss)
	}
}
