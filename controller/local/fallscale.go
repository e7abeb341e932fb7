package local

import (
	"fmt"
	"time"

	"github.com/ims-orch/ims-orch/drivers"
)

// Scale-in on a falling load (Config.FallingScaleIn). On the down ramp of
// the simultaneous experiments a round plans each (DC, VNF) once an
// interval for the interval's largest need, which on a falling load is its
// start; the load then falls through the interval, and the instance it
// stopped needing keeps taking new flows until the next round buffers it,
// then drains its pinned calls (docs/reproduction.md "Session 10:
// simultaneous 20/30 s floor"). Here, when the VNF's total load in this
// datacenter is falling (below its level LoadTrendTicks ticks ago, which is
// below its level AnticipateSustainTicks ticks ago) and its active working
// instances' load fits on one instance fewer at FallingScaleIn of their
// capacity for FallingScaleInWindow, the least-loaded working instance
// (fewest flows: packing leaves it the emptiest) moves to the buffer tail.
// Unlike Config.ScaleIn's underload instances it does not wait for the
// next round: fallingTrimLocked destroys it once its pinned flows have
// ended; until then a reactive scale-out reuses it without a boot. The
// default bar, 0.94, stays under ReactiveUtilization's 0.95, so the
// reactive rule does not take back what this rule just did on the load it
// measured.

// DefaultFallingScaleIn is system.Defaults.FallingScaleIn: the share of
// their capacity the working instances left after the scale-in may carry.
const DefaultFallingScaleIn = 0.94

// FallingScaleInWindow is how long the load must stay under the bar (and
// falling) before one instance is buffered, and so the least time between
// two such scale-ins of a VNF.
const FallingScaleInWindow = 5 * time.Second

// fallingLocked: the VNF's total load (trend.go) is below its value
// LoadTrendTicks ticks ago, which is below its value AnticipateSustainTicks
// ticks ago (the history must cover them).
func (c *Controller) fallingLocked(vs *vnfState) bool {
	n := len(vs.loadHist)
	if n <= AnticipateSustainTicks {
		return false
	}
	now, mid, old := vs.loadHist[n-1], vs.loadHist[n-1-LoadTrendTicks], vs.loadHist[n-1-AnticipateSustainTicks]
	return now < mid && mid < old
}

// fallingScaleInLocked is the tick's scale-in on a falling load of one VNF
// with PinnedFlows and a capacity (Config.FallingScaleIn). The load is the
// Σ of what the active working instances' last samples carried (carried:
// the larger of the packet and the CPU share, as ReactiveUtilization reads
// it), every sample fresh.
func (c *Controller) fallingScaleInLocked(vs *vnfState) {
	u := c.cfg.FallingScaleIn
	if u <= 0 || !c.cfg.Reactive || !vs.cfg.PinnedFlows || vs.cfg.Capacity <= 0 || c.paused || c.draining {
		vs.fallTicks = 0
		return
	}
	now := c.clk.Now()
	n := c.countsLocked(vs.cfg.Name)
	w := n.Working()
	if n.Booting > 0 || n.Overload > 0 || w-1 < c.scaleInFloorLocked(vs) || !c.fallingLocked(vs) ||
		(!vs.lastReactive.IsZero() && now.Sub(vs.lastReactive) < FallingScaleInWindow) {
		vs.fallTicks = 0
		return
	}
	fresh, sum := 0, 0.0
	for _, in := range c.insts {
		if in.VNF != vs.cfg.Name || !isWorkingActive(in) {
			continue
		}
		sum += carried(in.Last, vs.cfg.Capacity)
		if now.Sub(in.lastSeen) <= 2*c.cfg.StatsPeriod { // a fresh sample (controller time)
			fresh++
		}
	}
	if fresh < w || sum > u*float64(w-1) {
		vs.fallTicks = 0
		return
	}
	if vs.fallTicks++; vs.fallTicks < int((FallingScaleInWindow+TickPeriod-1)/TickPeriod) {
		return
	}
	vs.fallTicks = 0
	vs.target = w - 1
	c.bufferLocked(vs, 1, ReasonUnderload, fmt.Sprintf("falling load: %.2f instances' capacity fits on %d at %.0f%% for %v",
		sum, w-1, 100*u, FallingScaleInWindow))
	if es := vs.buf.Entries(); len(es) > 0 {
		if in := c.insts[es[len(es)-1].ID]; in != nil {
			// not an underload instance kept for the interval: fallingTrimLocked
			// destroys it once empty
			in.underload, in.fallingAt = false, in.bufferedAt
		}
	}
}

// fallingTrimLocked destroys the instances fallingScaleInLocked buffered
// (and nothing moved since) once a sample taken at least a statistics
// period after they left routing, and trimEmptyGrace after it, counts no
// flows, while the VNF's total load is not rising. It is TrimEmpty without
// its busy rule and its spare: the load that emptied them is falling.
func (c *Controller) fallingTrimLocked(vs *vnfState) []op {
	if c.cfg.FallingScaleIn <= 0 || vs.buf.Len() == 0 || c.risingLocked(vs) {
		return nil
	}
	now := c.clk.Now()
	var ops []op
	for _, e := range vs.buf.Entries() {
		in := c.insts[e.ID]
		if in == nil || in.fallingAt.IsZero() || !in.fallingAt.Equal(in.bufferedAt) || in.Last.Flows > 0 || in.Last.FlowsUnknown ||
			in.CloudState != drivers.StateActive || now.Sub(in.bufferedAt) < trimEmptyGrace(c.cfg) || in.lastSeen.Sub(in.bufferedAt) < c.cfg.StatsPeriod {
			continue
		}
		vs.buf.Remove(e.ID)
		in.State, in.drainSince = StateDraining, now
		ops = append(ops, c.destroyLocked(in, fmt.Sprintf("buffered in interval %d on a falling load, no flows left after %v",
			e.Interval, now.Sub(in.bufferedAt)))...)
	}
	return ops
}
