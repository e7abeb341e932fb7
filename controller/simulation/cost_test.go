package simulation

import (
	"strings"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/controller/strategy"
	"github.com/ims-orch/ims-orch/drivers/sim"
	"github.com/ims-orch/ims-orch/drivers/sim/traffic"
)

// The cost sums booting + active VMs per second and the floor
// max(minimum, ⌈offered / capacity⌉) per (DC, VNF); the S-CSCF minimum
// counts only in its DC.
func TestComputeCostByHand(t *testing.T) {
	e := &Experiment{SCSCFDC: 0, Min: map[string]int{"firewall": 1, "S-CSCF": 1}}
	cat := sim.DefaultCatalog()
	fw, _ := cat.Lookup("firewall")
	row := func(tt, dc int, vnf string, boot, act int, off float64) traffic.InstanceRow {
		return traffic.InstanceRow{T: tt, Totals: sim.Totals{DC: dc, VNF: vnf, Booting: boot, Active: act, Offered: off}}
	}
	rows := []traffic.InstanceRow{
		row(1, 0, "firewall", 1, 2, 1.5*fw.Capacity), // floor 2
		row(1, 1, "firewall", 0, 1, 0),               // floor 1 (minimum)
		row(1, 1, "S-CSCF", 0, 0, 0),                 // floor 0: not its DC
		row(2, 0, "firewall", 0, 3, 3*fw.Capacity),   // floor 3 (exactly full: not 4)
		row(2, 0, "S-CSCF", 0, 1, 0),                 // floor 1
	}
	c := computeCost(e, cat, rows, []int{1, 2})
	if c.VMSeconds != 4+3+1 || c.FloorVMSeconds != 3+4 || c.BufferedVMSeconds != 3 {
		t.Fatalf("cost %+v, want VM-s 8, floor 7, buffered 3", c)
	}
	if len(c.PerSecond) != 2 || c.PerSecond[0] != [2]float64{4, 3} || c.PerSecond[1] != [2]float64{4, 4} {
		t.Fatalf("per second %v", c.PerSecond)
	}
}

// A real run: VM-seconds at least the floor for reactive-only (it never
// runs below what the load needs... except while instances boot, so the
// check is on the total), buffered VM-seconds 0 for reactive-only (it has
// no rounds that buffer) and > 0 for hybrid, and the ratio table names
// every strategy with the reactive-only ratios 1.
func TestCostOfRun(t *testing.T) {
	e := short(load(t, "async-start.yaml"), 300*time.Second)
	h := runExp(t, e, strategy.Hybrid, 1)
	r := runExp(t, e, strategy.Reactive, 1)
	if r.Cost.VMSeconds < r.Cost.FloorVMSeconds || r.Cost.FloorVMSeconds <= 0 {
		t.Fatalf("reactive cost %+v", r.Cost)
	}
	if r.Cost.BufferedVMSeconds != 0 {
		t.Fatalf("reactive-only buffered %v VM-s", r.Cost.BufferedVMSeconds)
	}
	if len(h.Cost.PerSecond) != 300 {
		t.Fatalf("%d per-second cost rows, want 300", len(h.Cost.PerSecond))
	}
	rs := Ratios([]*Result{h, r})
	if rs[1].VsReactive != 1 || rs[1].LossVsReactive != 1 || rs[0].VsFloor <= 0 {
		t.Fatalf("ratios %+v", rs)
	}
	var b strings.Builder
	if err := WriteRatioTable(&b, []*Result{h, r}); err != nil || !strings.Contains(b.String(), "hybrid") || !strings.Contains(b.String(), "reactive") {
		t.Fatalf("table %q, %v", b.String(), err)
	}
}
