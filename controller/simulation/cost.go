package simulation

import (
	"math"

	"github.com/ims-orch/ims-orch/controller/system"
	"github.com/ims-orch/ims-orch/drivers/sim"
	"github.com/ims-orch/ims-orch/drivers/sim/traffic"
	catalog "github.com/ims-orch/ims-orch/placement/vnf"
)

// Cost is what a run paid in VM time and what it could at best have paid.
//
//   - VMSeconds: Σ over the traffic's seconds and every (DC, VNF) of the
//     instances that exist as VMs (booting + active; buffered and draining
//     instances are active VMs and cost like working ones).
//   - BufferedVMSeconds: the part of VMSeconds spent by instances the local
//     controllers held in their buffer (sampled once per second).
//   - FloorVMSeconds: Σ over the same seconds and (DC, VNF) of
//     max(minimum, ⌈offered load / capacity⌉) — the VMs the load routed to
//     that DC needed at 100 % utilisation with instant, free scaling. No
//     strategy with the same routing can pay less.
type Cost struct {
	VMSeconds, BufferedVMSeconds, FloorVMSeconds float64
	// PerSecond[t] = (VMs, floor VMs) summed over (DC, VNF) at second t+1.
	PerSecond [][2]float64
}

// minimum returns the minimum working instances of vnf in DC dc: the
// experiment's Min for the VNFs every DC hosts, the S-CSCF only in its DC.
func (e *Experiment) minimum(dc int, vnf string) int {
	if catalog.Same(vnf, catalog.SCSCF) && dc != e.SCSCFDC {
		return 0
	}
	return e.Min[vnf]
}

// floorVMs is ⌈offered / capacity⌉, at least min (a rounding slack of 1e-9
// keeps an exactly full instance from counting twice).
func floorVMs(offered, capacity float64, minimum int) int {
	n := 0
	if offered > 0 && capacity > 0 {
		n = int(math.Ceil(offered/capacity - 1e-9))
	}
	return max(n, minimum)
}

// computeCost sums a run's per-second instance rows and buffered samples.
func computeCost(e *Experiment, cat *sim.Catalog, rows []traffic.InstanceRow, buffered []int) Cost {
	var c Cost
	for j := 0; j < len(rows); {
		t := rows[j].T
		vms, floor := 0.0, 0.0
		for ; j < len(rows) && rows[j].T == t; j++ {
			r := rows[j]
			vms += float64(r.Booting + r.Active)
			typ, ok := cat.Lookup(r.VNF)
			if !ok {
				continue
			}
			floor += float64(floorVMs(r.Offered, typ.Capacity, e.minimum(r.DC, r.VNF)))
		}
		c.VMSeconds += vms
		c.FloorVMSeconds += floor
		c.PerSecond = append(c.PerSecond, [2]float64{vms, floor})
	}
	for _, b := range buffered {
		c.BufferedVMSeconds += float64(b)
	}
	return c
}

// bufferedNow counts the instances the local controllers hold in their
// buffers right now.
func bufferedNow(sys *system.System, dcs []string) int {
	n := 0
	for _, dc := range dcs {
		for _, c := range sys.Locals[dc].Counts() {
			n += c.Buffered
		}
	}
	return n
}

// planHorizon is the forecaster's horizon (system.Config.PlanHorizon) for
// PlanHorizon: ½ interval to the interval's end plus the boot delay.
func (e *Experiment) planHorizon() float64 {
	return system.PlanHorizonFor(e.PlanHorizon, e.Interval, e.BootDelay)
}
