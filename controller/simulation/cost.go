package simulation

import (
	"math"
	"time"

	"github.com/ims-orch/ims-orch/controller/system"
	"github.com/ims-orch/ims-orch/drivers/sim"
	"github.com/ims-orch/ims-orch/drivers/sim/traffic"
	"github.com/ims-orch/ims-orch/placement/vnf"
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
//     strategy with the same routing can pay less. It moves with the run's
//     own routing (which DC carries which pair's stages).
//   - FixedFloorVMSeconds: the same floor on a fixed routing that no
//     strategy changes (fixedRouting): every DP stage of a flow in its
//     entry DC. The CP VNFs keep the run's own offered load (their load
//     per DC is the DC's users' SIP traffic, not a routing choice). The
//     same traffic gives every strategy the same fixed floor.
type Cost struct {
	VMSeconds, BufferedVMSeconds, FloorVMSeconds float64
	FixedFloorVMSeconds                          float64
	// PerSecond[t] = (VMs, floor VMs) summed over (DC, VNF) at second t+1.
	PerSecond [][2]float64
}

// minimum returns the minimum working instances of VNF name in DC dc: the
// experiment's Min for the VNFs every DC hosts, the S-CSCF only in its DC.
func (e *Experiment) minimum(dc int, name string) int {
	if vnf.Same(name, vnf.SCSCF) && dc != e.SCSCFDC {
		return 0
	}
	return e.Min[name]
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

// fixedRouting records, second by second, the DP load every DC is the
// entry of (the traffic engine's per-pair DP workload, Σ over exits): on
// the fixed routing of Cost.FixedFloorVMSeconds each DP stage of a flow
// runs in its entry DC, so that is every DP stage's offered load there.
type fixedRouting struct {
	start time.Time
	n     int
	entry [][]float64 // entry[t-1][dc]: pkt/s at second t since the start
}

// record adds one second's DP pair loads (reports before the start, the
// warm start's hint, are not traffic and are skipped).
func (f *fixedRouting) record(at time.Time, loads []traffic.PairLoad) {
	if f == nil || !at.After(f.start) {
		return
	}
	t := int((at.Sub(f.start) + time.Second/2) / time.Second) // 1 at the first second
	for len(f.entry) < t {
		f.entry = append(f.entry, make([]float64, f.n))
	}
	row := f.entry[t-1]
	clear(row) // one report per second; a repeated one replaces it
	for _, l := range loads {
		if l.Entry >= 0 && l.Entry < f.n && validLoad(l.Rate) {
			row[l.Entry] += l.Rate
		}
	}
}

func validLoad(x float64) bool { return x > 0 && !math.IsInf(x, 0) }

// at returns second t's entry loads (nil when none was recorded).
func (f *fixedRouting) at(t int) []float64 {
	if f == nil || t < 1 || t > len(f.entry) {
		return nil
	}
	return f.entry[t-1]
}

// computeCost sums a run's per-second instance rows and buffered samples;
// fixed (may be nil: no fixed floor) gives the DP loads of the fixed
// routing.
func computeCost(e *Experiment, cat *sim.Catalog, rows []traffic.InstanceRow, buffered []int, fixed *fixedRouting) Cost {
	var c Cost
	for j := 0; j < len(rows); {
		t := rows[j].T
		vms, floor, ff := 0.0, 0.0, 0.0
		entry := fixed.at(t)
		for ; j < len(rows) && rows[j].T == t; j++ {
			r := rows[j]
			vms += float64(r.Booting + r.Active)
			typ, ok := cat.Lookup(r.VNF)
			if !ok {
				continue
			}
			m := e.minimum(r.DC, r.VNF)
			floor += float64(floorVMs(r.Offered, typ.Capacity, m))
			off := r.Offered
			if typ.Plane == vnf.DataPlane {
				off = 0
				if r.DC < len(entry) {
					off = entry[r.DC]
				}
			}
			ff += float64(floorVMs(off, typ.Capacity, m))
		}
		c.VMSeconds += vms
		c.FloorVMSeconds += floor
		c.FixedFloorVMSeconds += ff
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
