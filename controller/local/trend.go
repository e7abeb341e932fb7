package local

import (
	"fmt"
	"time"

	"github.com/ims-orch/ims-orch/drivers"
)

// The VNF's total load in this datacenter over the last ticks (Σ load of
// all its active instances, totalLoadLocked), kept for the rise read by
// TrimEmpty's rise rule (scalein.go) and by anticipated scale-out
// (Config.Anticipate), and for the fall read by FallingScaleIn
// (fallingLocked).
//
// The load (vnfState.load) is in percent of one instance's capacity: for
// a DP stage (PinnedFlows and a capacity) what its samples say it carries
// (carried: the larger of CPU and 100 × the packet share, capped at one
// instance's capacity), for the others their CPU. On the real data plane a
// forwarder's CPU is ≈ 1 % at the packet rate its capacity names: a
// history of Σ CPU never rose (nor fell) by what the rules ask, and
// anticipation and FallingScaleIn never acted there (controller/dataplane
// TestAnticipatedScaleOutOnTheRealPlane, TestFallingScaleInOnTheRealPlane;
// docs/reproduction.md "Session 10: FallingScaleIn on the real data
// plane", "Session 11: the load's unit on the real data plane"). In the
// simulator's default model a DP instance's CPU is min(100, 100·ρ) and its
// packet share ρ: the same number to the bit.
//
// Why the total and not the working instances' Σ (workingLoadLocked): the
// rise must be a rise of the load, not of the working set. A buffered or
// draining instance keeps its pinned flows; after a round's scale-in they
// end there and their replacements land on the working instances (the
// working Σ rises while the total is flat), and a reuse of a buffered
// instance that still carries flows adds its load to the working Σ in one
// tick (read as a 10-tick rise and projected over a boot: 3× the step).
// Both made anticipate scale out on a flat load (review A of session 7).
// The working Σ is still what a projection is compared against the
// working capacity with (anticipateLocked, TrimEmpty's busy rule).
//
// Why anticipate (docs/reproduction.md "Session 7: daily traffic"): a DP
// flow stays on the instance that took it for its whole life (60 s calls).
// Reactive scale-out acts once a majority of the working instances has
// been over the CPU threshold for the overload window (5 s), and a launched
// instance takes new flows only after its boot (30 s); meanwhile every new
// flow goes to the overloaded instances, and those past their capacity lose
// packets until the calls end. On the daily experiments (hourly rises of up
// to 3.7× within 100 s) that was 80–100 % of hybrid's loss: a round had
// scaled in on a falling or flat stretch (TrimEmpty then destroyed the
// emptied instances), and the next rise found one working instance and no
// buffered one. Reactive-only never scales in and met the same rises with
// the peak's instances.

// LoadTrendTicks is how many ticks back the rise of the VNF's total load
// is taken: by anticipated scale-out (riseLocked) and by TrimEmpty's rise
// rule (scalein.go).
const LoadTrendTicks = 10

// AnticipateRiseTicks is the longer window anticipated scale-out also
// reads the rise over, once the history covers it: it takes the lesser of
// the two rises (riseLocked). The total load is driven by Poisson arrivals
// (≈ 3 users/s per DC in the section-6 experiments): the 10-tick rise has
// a standard error of 0.2–0.7 %/s, as large as the rises it acts on, and a
// rise after a step of the arrival rate is front-loaded; × a 30 s boot
// either read 100–107 % where the load peaked at 0.78–0.97 of the working
// capacity (40 of 48 anticipations on simultaneous 80 s). A sustained rise
// (the daily experiments' hourly ramps) reads the same over both windows.
// docs/reproduction.md "Session 8: anticipation".
const AnticipateRiseTicks = 15

// AnticipateSustainTicks is the window that tells a sustained rise from a
// recovery: a rise read over the anticipation's windows (riseLocked) is
// sustained when the load also rose at least half as fast over this many
// ticks (sustainedLocked). When the 15-tick rise is the one read, that is:
// the load 15 ticks ago was not below its level 30 ticks ago. A ramp, or
// the 60 s build-up after a step of the arrival rate, passes; a load that
// fell and comes back to where it was (Poisson noise around a steady load:
// the IDS held at the overload trigger, ρ ≈ 0.9, of the simultaneous
// experiments) does not (docs/reproduction.md "Session 9: loss misses").
const AnticipateSustainTicks = 30

// AnticipateSustainedCapacity is the bar, in percent of an instance's
// capacity per working instance (vnfState.load), anticipated scale-out compares its projection with on a
// sustained rise (AnticipateCapacity otherwise). At the full capacity the
// added instance arrives when the load reaches it: an accelerating ramp,
// or the seconds the overloaded instance's pinned flows need to end, lose
// packets (every daily-audio loss episode of session 9's seeds 1–3).
const AnticipateSustainedCapacity = 97.0

// loadHistLen is how many samples the load history keeps.
const loadHistLen = max(LoadTrendTicks, AnticipateRiseTicks, AnticipateSustainTicks) + 1

// load is what an instance's sample says it carries, in percent of one
// instance's capacity: carried for a VNF with PinnedFlows and a capacity
// (a DP stage: Capacity in packets/s, PktRate's unit), its CPU otherwise
// (a CP VNF's PktRate counts SIP messages, two per transaction of its
// Capacity, and its rules read CPU against its CPU threshold).
func (vs *vnfState) load(s Stats) float64 {
	if !vs.byShare() {
		return s.CPU
	}
	_, pct := carried(s, vs.cfg.Capacity)
	return pct
}

// byShare: the VNF is a DP stage (PinnedFlows) with a capacity, whose
// load the rules read as the carried share of that capacity (load,
// loadThreshold, the reactive bar, FallingScaleIn, pastCapacityLocked).
func (vs *vnfState) byShare() bool {
	return vs.cfg.PinnedFlows && vs.cfg.Capacity > 0
}

// loadThreshold is the trigger in load's unit (vnfState.load) that the
// rules sizing the working instances by the measured load compare it
// with: a DP stage's VNFConfig.LoadThreshold (percent of an instance's
// capacity), the CPU threshold otherwise.
func (vs *vnfState) loadThreshold() float64 {
	if !vs.byShare() {
		return vs.cfg.Thresholds.CPU
	}
	return vs.cfg.LoadThreshold
}

// recordLoadLocked appends the VNF's total load of this tick
// (totalLoadLocked) to its history (called once per tick, before the rules
// that read it; the total does not depend on which instances are working,
// so the order against scaleInLocked does not matter).
//
// An instance's first sample is no rise: the history is raised by the load
// an instance brings when it first counts with a sample (an instance
// adopted at start, or one that went active with load on it, whose
// samples the controller had not seen; a launched one reports its new
// flows from ~0). Without that, such a step from nothing was read as a
// LoadTrendTicks rise and projected over a boot (idle → 95 % on the first
// instance: an instance anticipated on a flat load).
func (c *Controller) recordLoadLocked(vs *vnfState) {
	total, joined := c.totalLoadLocked(vs)
	if len(vs.loadHist) >= loadHistLen {
		vs.loadHist = append(vs.loadHist[:0], vs.loadHist[1:]...)
	}
	if joined > 0 {
		for i := range vs.loadHist {
			vs.loadHist[i] += joined
		}
	}
	vs.loadHist = append(vs.loadHist, total)
}

// riseOverLocked is how fast the VNF's total load has risen over its last
// k ticks (fewer early on, down to one), in percent of an instance's
// capacity per second (0 when
// it fell or stayed, or with less than two samples).
func (c *Controller) riseOverLocked(vs *vnfState, k int) float64 {
	n := len(vs.loadHist)
	if n < 2 {
		return 0
	}
	from := max(0, n-1-k)
	return max(0, (vs.loadHist[n-1]-vs.loadHist[from])/(float64(n-1-from)*TickPeriod.Seconds()))
}

// risingLocked: the VNF's total load is above its value LoadTrendTicks
// ticks ago (the oldest it has, early on); TrimEmpty's rise rule.
func (c *Controller) risingLocked(vs *vnfState) bool {
	n := len(vs.loadHist)
	return n > 0 && vs.loadHist[n-1] > vs.loadHist[max(0, n-1-LoadTrendTicks)]
}

// riseLocked is anticipated scale-out's rise of the VNF's total load: over
// LoadTrendTicks, or over AnticipateRiseTicks when that is less and the
// history covers it.
func (c *Controller) riseLocked(vs *vnfState) float64 {
	r := c.riseOverLocked(vs, LoadTrendTicks)
	if len(vs.loadHist) > AnticipateRiseTicks {
		r = min(r, c.riseOverLocked(vs, AnticipateRiseTicks))
	}
	return r
}

// sustainedLocked: the VNF's total load rose over the last
// AnticipateSustainTicks ticks by at least half of rise (the history must
// cover them).
func (c *Controller) sustainedLocked(vs *vnfState, rise float64) bool {
	return len(vs.loadHist) > AnticipateSustainTicks && c.riseOverLocked(vs, AnticipateSustainTicks) >= rise/2
}

// AnticipateCapacity is the load (vnfState.load: percent of an instance's
// capacity) at which an instance reaches its capacity (the simulator's
// default model: CPU = 100·ρ; the overload trigger is the CPU threshold,
// 90). Anticipated scale-out acts when the
// projected load would pass it on every working instance: before a loss,
// not before an overload, so a rise the round's plan covers up to the
// trigger does not add an instance.
const AnticipateCapacity = 100.0

// anticipateLocked is Config.Anticipate for one VNF with PinnedFlows: when
// the working instances' load (workingLoadLocked), extrapolated at the
// total load's rise (riseLocked) over the time an added instance needs to
// take flows (the VNF's last boot, bootLocked; ReactiveCooldown when the
// buffer tail is active: reuseHorizonLocked), would pass
// AnticipateCapacity on every working instance (booting ones included:
// they will take flows by then; over the cool-down, when it is shorter
// than the boot, only the active ones: a booting one takes none within
// it, unless none is active), one instance is added now, from the
// buffer tail first (fillLocked), at most once per ReactiveCooldown
// (shared with reactive scale-out, so the two do not add one each for the
// same rise).
func (c *Controller) anticipateLocked(vs *vnfState) []op {
	boot := c.bootLocked(vs)
	if !c.cfg.Anticipate || !c.cfg.Reactive || !vs.cfg.PinnedFlows || c.paused || c.draining || boot <= 0 {
		return nil
	}
	rise := c.riseLocked(vs)
	if rise <= 0 {
		return nil
	}
	if c.coolingLocked(vs, c.clk.Now()) {
		return nil // before the registry scan: a scale-out this tick set it
	}
	n := c.countsLocked(vs.cfg.Name)
	w := n.Working()
	if w == 0 {
		return nil
	}
	if c.noRiseSkipsAnticipation(vs, w) {
		return nil // the round foresees no rise
	}
	horizon, what, capN := boot, "a boot", w
	if h, ok := c.reuseHorizonLocked(vs); ok {
		horizon, what = h, "the cool-down; the buffer tail is active"
		// a booting instance takes no flows within a horizon shorter than
		// a boot: only the active working ones are capacity by then
		// (review C of session 8). None active (all booting): as before.
		if a := n.Normal + n.Overload; h < boot && a > 0 {
			capN = a
		}
	}
	cur := c.workingLoadLocked(vs)
	proj := cur + rise*horizon.Seconds()
	bar, sustained := AnticipateCapacity, ""
	if c.sustainedLocked(vs, rise) {
		bar, sustained = AnticipateSustainedCapacity, fmt.Sprintf(" (a sustained rise: %.0f%% each)", AnticipateSustainedCapacity)
	}
	if proj <= bar*float64(capN) {
		return nil
	}
	ops, _ := c.scaleOutLocked(vs, w, fmt.Sprintf("anticipated: measured load %.0f%% of an instance's capacity rising %.2f%%/s reaches %.0f%% in %v (%s), past the capacity of %d working instances%s",
		cur, rise, proj, horizon, what, capN, sustained))
	return ops // at Max or the ceiling: nothing, and the cool-down not started
}

// reuseHorizonLocked is anticipated scale-out's horizon when the buffer
// tail (what fillLocked takes first) is an active instance: it takes flows
// at once, so waiting costs nothing until the next scale-out may come
// (ReactiveCooldown, at least a tick). A reuse projected over a boot came
// up to a boot early, and on a rise that stopped (simultaneous start: the
// 60 s build-up after a step of the arrival rate; Poisson noise on a 10 s
// rise) it brought back an instance the next round buffered again
// (docs/reproduction.md "Session 8: anticipation").
func (c *Controller) reuseHorizonLocked(vs *vnfState) (time.Duration, bool) {
	es := vs.buf.Entries()
	for i := len(es) - 1; i >= 0; i-- {
		in := c.insts[es[i].ID]
		if in == nil {
			continue // a stale entry: fillLocked skips it too
		}
		if in.CloudState != drivers.StateActive {
			return 0, false
		}
		return max(c.cfg.ReactiveCooldown, TickPeriod), true
	}
	return 0, false
}

// bootLocked is Config.Anticipate's horizon for the VNF: how long its last
// launched instance took from launch to active, or, before one of its own
// became active, the last boot of any VNF this controller saw (0: none).
func (c *Controller) bootLocked(vs *vnfState) time.Duration {
	if vs.bootSeen > 0 {
		return vs.bootSeen
	}
	return c.bootSeen
}
