package local

import (
	"math"
	"time"
)

// The VNF's measured load over the last ticks (Σ CPU of its active working
// instances, workingCPULocked), kept for two rules: TrimEmpty's rise rule
// (scalein.go) and the scale-in guard's trend (Config.ScaleInGuard).
//
// Why the guard needs the trend (docs/reproduction.md "Session 7: daily
// traffic"): on the daily experiments the first periodic round comes 15 s
// into the traffic, while the 60 s calls are still building up (the
// measured load of a DP stage rises ≈ 3.7 % CPU a second); its forecast
// and the measured load of that instant both fit on one instance, so it
// buffered the instances the warm start had launched. The remaining one
// crossed the CPU threshold 10 s later; reactive scale-out reused a
// buffered instance only after the 5 s overload window, and the flows
// that the overloaded instance took meanwhile stayed pinned to it for
// their 60 s: 88 % of hybrid's lost packets on daily-audio (404 882 of
// 459 078), where reactive-only, which never scales in, lost none.

// LoadTrendTicks is how many ticks back the rise of the measured load is
// taken (its history holds LoadTrendTicks+1 samples).
const LoadTrendTicks = TrimEmptyRiseTicks

// recordLoadLocked appends the VNF's measured load of this tick to its
// history (called once per tick, before the rules that read it).
func (c *Controller) recordLoadLocked(vs *vnfState) {
	if len(vs.loadHist) > LoadTrendTicks {
		vs.loadHist = append(vs.loadHist[:0], vs.loadHist[1:]...)
	}
	vs.loadHist = append(vs.loadHist, c.workingCPULocked(vs))
}

// riseLocked is how fast the VNF's measured load has risen over its
// history, in CPU percent per second (0 when it fell, stayed or there is
// less than two ticks of history).
func (c *Controller) riseLocked(vs *vnfState) float64 {
	n := len(vs.loadHist)
	if n < 2 {
		return 0
	}
	return max(0, (vs.loadHist[n-1]-vs.loadHist[0])/(float64(n-1)*TickPeriod.Seconds()))
}

// guardNeedLocked is how many working instances the scale-in guard keeps:
// the VNF's measured load now, plus its rise (riseLocked) extrapolated over
// horizon (the time to the next round), at the CPU threshold. It returns
// the need and the load it planned for.
func (c *Controller) guardNeedLocked(vs *vnfState, horizon time.Duration) (int, float64) {
	load := c.workingCPULocked(vs) + c.riseLocked(vs)*max(0, horizon.Seconds())
	if load <= 0 {
		return 0, 0
	}
	return int(math.Ceil(load/vs.cfg.Thresholds.CPU - 1e-9)), load
}
