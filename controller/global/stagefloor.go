package global

import (
	"fmt"
	"math"

	"github.com/ims-orch/ims-orch/controller/fsm"
	"github.com/ims-orch/ims-orch/controller/protocol"
	"github.com/ims-orch/ims-orch/placement"
)

// stageFloor raises a plan's data-plane counts to its pairs' profile
// peaks (ProfilePrior.StageFloor, Forecast.Peak): each stage in each DC
// gets enough instances, at the stage's full capacity (not the DP
// target), for the sum over the pairs routed through it of each pair's
// peak, or its planned workload when it has none. A raise takes back the
// plan's moves to the buffer first, then reuses buffered instances, then
// creates; it stays within the DC's headroom (limits, quota) and leaves
// drained DCs alone. The mode (ProfilePrior.StageFloorMode) says how the
// missing instances come: StageFloorLaunch raises the counts as above;
// StageFloorHold (the default in session 13) leaves the counts and asks the DC to keep that many
// buffered instances this interval (VNFTarget.KeepBuffered: its trims and
// the buffer's expiry leave them, so a reactive scale-out on the rise
// reuses one without a boot); StageFloorHoldLaunch keeps the buffered ones
// the plan leaves and creates only the rest. It returns the stages it
// raised or held, [dc][stage] → the peak load they were sized for and the
// instances to keep buffered (nil: none), for the decision.
// Pure: d's counts are changed in place, nothing else.
func stageFloor(t *fsm.Topology, s *placement.Snapshot, d *placement.Decision, peak map[string]float64, mode string) map[[2]int]stageRaise {
	if len(peak) == 0 || t == nil || len(t.Stages) != len(s.Stages) {
		return nil
	}
	m := len(s.Stages)
	load := make([][]float64, s.N)
	anyPeak := make([][]bool, s.N)
	for i := range load {
		load[i], anyPeak[i] = make([]float64, m), make([]bool, m)
	}
	forStages(t, d, func(pp *placement.PairPlan, key string, dc, k int) {
		if dc >= s.N {
			return
		}
		q := pp.Workload
		pk, ok := peak[key]
		ok = ok && pk > q
		if ok {
			q = pk
		}
		load[dc][k] += q
		anyPeak[dc][k] = anyPeak[dc][k] || ok
	})
	var raised map[[2]int]stageRaise
	for i := 0; i < s.N; i++ {
		if i < len(s.Excluded) && s.Excluded[i] {
			continue
		}
		for k := 0; k < m; k++ {
			full := t.Stages[k].Capacity
			if !anyPeak[i][k] || !(full > 0) || i >= len(d.DP) || k >= len(d.DP[i]) {
				continue
			}
			c := &d.DP[i][k]
			prov := s.DP[i][k]
			need := int(math.Ceil(load[i][k]/full - 1e-9))
			if h := headroomAt(s, i, k); h >= 0 {
				need = min(need, prov.Working+h)
			}
			if need <= c.Working {
				continue
			}
			keep := floorCount(c, prov, need-c.Working, mode)
			if raised == nil {
				raised = map[[2]int]stageRaise{}
			}
			raised[[2]int{i, k}] = stageRaise{load: load[i][k], keep: keep}
		}
	}
	return raised
}

// Stage floor modes (ProfilePrior.StageFloorMode): how a stage gets the
// instances its pairs' peaks need beyond the plan's working count.
const (
	// StageFloorLaunch raises the working count: the plan's moves to the
	// buffer are taken back, then buffered instances reused, then new ones
	// created.
	StageFloorLaunch = "launch"
	// StageFloorHold leaves the counts and asks the DC to keep that many
	// buffered instances through the interval (VNFTarget.KeepBuffered;
	// the default in session 13).
	StageFloorHold = "hold"
	// StageFloorHoldLaunch keeps the instances the plan leaves buffered and
	// creates the rest as working ones.
	StageFloorHoldLaunch = "hold+launch"
)

// DefaultStageFloorMode is the stage floor's mode when none is given
// ("", DefaultStageFloor). Launch since session 14 (hold in session 13,
// docs/reproduction.md "Session 13: stage hold"): a launch costs a boot
// and a working instance per raise, which daily-mobile-zoom's ÷ floor
// margin could not pay until the falling scale-in's step to one working
// instance (system.Defaults.FallingScaleInSingle) freed it. The launch
// takes daily-audio's loss over seeds 1–20 from 1.21× reactive-only's to
// 0.46×; the step to one gives part of it back (0.50× together, 77 500
// packets, at its default bar 0.75) for zoom's margin: zoom's loss 0.123×
// reactive-only's and 0 of 20 seeds over 1.15 × floor (docs/reproduction.md
// "Session 14: zoom floor margin", "Lead, at the merge").
const DefaultStageFloorMode = StageFloorLaunch

// ValidStageFloorMode: "" or one of the StageFloor* modes.
func ValidStageFloorMode(m string) bool {
	switch m {
	case "", StageFloorLaunch, StageFloorHold, StageFloorHoldLaunch:
		return true
	}
	return false
}

// stageRaise is one stage's stage floor: the peak load it was sized for
// and the buffered instances the DC is asked to keep.
type stageRaise struct {
	load float64
	keep int
}

// floorCount gives a stage add more instances by mode (stageFloor): it
// changes c in place and returns how many buffered instances to keep.
func floorCount(c *placement.Count, prov placement.Provision, add int, mode string) (keep int) {
	if mode == "" {
		mode = DefaultStageFloorMode
	}
	switch mode {
	case StageFloorHold:
		return add
	case StageFloorHoldLaunch:
		keep = min(add, max(0, c.BufferedAfter))
		c.Created += add - keep
		c.Working += add - keep
		return keep
	}
	c.Working += add
	back := min(add, c.ToBuffer)
	c.ToBuffer -= back
	add -= back
	reuse := min(add, max(0, prov.Buffered-c.Reused))
	c.Reused += reuse
	c.Created += add - reuse
	c.BufferedAfter = prov.Buffered - c.Reused + c.ToBuffer
	return 0
}

// headroomAt is the planner's headroom of stage k in DC i (−1: no limit).
func headroomAt(s *placement.Snapshot, i, k int) int {
	if i < len(s.Headroom) && k < len(s.Headroom[i]) {
		return s.Headroom[i][k]
	}
	return -1
}

// noteStageFloor adds the stage floor's reason to the raised stages'
// targets and the buffered instances to keep (stageFloor's result). The
// keep is sent only to a DC whose step-2 report (prov, by DC) advertises
// protocol.FeatureKeepBuffered: an older local controller refuses a
// decision carrying the field.
func noteStageFloor(t *fsm.Topology, dcs []protocol.DCDecision, raised map[[2]int]stageRaise, prov map[string]protocol.ProvisionReport) {
	for ik, r := range raised {
		i, k := ik[0], ik[1]
		for j := range dcs[i].Targets {
			if tg := &dcs[i].Targets[j]; tg.VNF == t.Stages[k].Name {
				tg.Reason += fmt.Sprintf("; stage floor: the declared profile's rise takes the pairs through %s to %.1f pkt/s / %g pkt/s per instance at full capacity, %d working",
					t.DCs[i], r.load, t.Stages[k].Capacity, tg.Working)
				switch {
				case r.keep > 0 && prov[t.DCs[i]].Has(protocol.FeatureKeepBuffered):
					tg.KeepBuffered = r.keep
					tg.Reason += fmt.Sprintf("; asks to keep up to %d buffered", r.keep)
				case r.keep > 0:
					tg.Reason += fmt.Sprintf("; would ask to keep up to %d buffered, but the DC's local controller does not advertise %s (upgrade it)", r.keep, protocol.FeatureKeepBuffered)
				}
			}
		}
	}
}
