package simulation

import (
	"math"
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
	c := computeCost(e, cat, rows, []int{1, 2}, nil)
	if c.VMSeconds != 4+3+1 || c.FloorVMSeconds != 3+4 || c.BufferedVMSeconds != 3 {
		t.Fatalf("cost %+v, want VM-s 8, floor 7, buffered 3", c)
	}
	if len(c.PerSecond) != 2 || c.PerSecond[0] != [2]float64{4, 3} || c.PerSecond[1] != [2]float64{4, 4} {
		t.Fatalf("per second %v", c.PerSecond)
	}
}

// The fixed-routing floor puts every DP stage of a flow in its entry DC:
// second t's DP loads by entry DC replace the rows' offered load of the DP
// VNFs (a DC with no entry load keeps its minimum), the CP VNFs keep
// theirs; reports before the start (the warm start's hint) are not
// traffic.
func TestFixedFloorByHand(t *testing.T) {
	e := &Experiment{SCSCFDC: 0, Min: map[string]int{"firewall": 1, "ids": 1, "S-CSCF": 1}}
	cat := sim.DefaultCatalog()
	fw, _ := cat.Lookup("firewall")
	ids, _ := cat.Lookup("ids")
	start := time.Unix(100, 0)
	f := &fixedRouting{start: start, n: 2}
	f.record(start, []traffic.PairLoad{{Entry: 0, Exit: 0, Rate: 1e9}}) // the hint: skipped
	// second 1: DC 0 is the entry of 1.5 firewalls' load (to both exits),
	// DC 1 of none; the run routed it all through DC 1
	f.record(start.Add(time.Second), []traffic.PairLoad{{Entry: 0, Exit: 0, Rate: fw.Capacity}, {Entry: 0, Exit: 1, Rate: fw.Capacity / 2}})
	row := func(dc int, vnf string, act int, off float64) traffic.InstanceRow {
		return traffic.InstanceRow{T: 1, Totals: sim.Totals{DC: dc, VNF: vnf, Active: act, Offered: off}}
	}
	rows := []traffic.InstanceRow{
		row(0, "firewall", 1, 0),
		row(0, "ids", 1, 0),
		row(0, "S-CSCF", 1, 250), // CP: its own offered load, 2 × 200 tx/s
		row(1, "firewall", 2, 1.5*fw.Capacity),
		row(1, "ids", 3, 1.5*fw.Capacity),
	}
	c := computeCost(e, cat, rows, nil, f)
	// per-run: fw 1 + ids 1 + S-CSCF 2 + fw 2 + ids ⌈52500/20000⌉ = 3
	if c.FloorVMSeconds != 1+1+2+2+3 {
		t.Fatalf("floor %v, want 9", c.FloorVMSeconds)
	}
	// fixed: DC 0 fw 2, ids ⌈52500/20000⌉ = 3, S-CSCF 2; DC 1 fw 1, ids 1 (minimums)
	wantIDS := int(math.Ceil(1.5 * fw.Capacity / ids.Capacity))
	if want := float64(2 + wantIDS + 2 + 1 + 1); c.FixedFloorVMSeconds != want {
		t.Fatalf("fixed floor %v, want %v", c.FixedFloorVMSeconds, want)
	}
	if len(f.entry) != 1 {
		t.Fatalf("%d seconds recorded, want 1 (the hint before the start is not traffic)", len(f.entry))
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
	// the same traffic: the same fixed floor for both strategies, at most
	// VM-seconds for reactive-only
	if h.Cost.FixedFloorVMSeconds != r.Cost.FixedFloorVMSeconds || r.Cost.FixedFloorVMSeconds <= 0 || r.Cost.FixedFloorVMSeconds > r.Cost.VMSeconds {
		t.Fatalf("fixed floors: hybrid %v, reactive %v (VM-s %v)", h.Cost.FixedFloorVMSeconds, r.Cost.FixedFloorVMSeconds, r.Cost.VMSeconds)
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
