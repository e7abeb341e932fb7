package system

import (
	"time"

	"github.com/ims-orch/ims-orch/controller/fsm"
	"github.com/ims-orch/ims-orch/controller/local"
)

// Scaling are the scaling options an operator chooses (model, planning
// target, buffer trim, …). Defaults owns their values for every deployment
// the composition path builds: the simulator's experiments and the
// daemon's configuration both start from it, so the two cannot drift
// (TestDaemonDefaultsAreTheSystemDefaults, TestExperimentDefaults).
type Scaling struct {
	// Predictor is the model spec of every series (predictor.ParseSpec).
	Predictor string
	// TargetUtilization plans every VNF at this fraction of its capacity
	// (fsm.Policy.TargetUtilization).
	TargetUtilization float64
	// DPTargetUtilization plans the data-plane stages at this fraction of
	// their capacity (fsm.Policy.DPTargetUtilization; 0: TargetUtilization).
	// Strategies with periodic rounds only (PolicyFor).
	DPTargetUtilization float64
	// Targets plan the DP stages they name at their own utilisation
	// (fsm.Policy.Targets), overriding DPTargetUtilization for them.
	// Strategies with periodic rounds only (PolicyFor).
	Targets []fsm.Target
	// WarmStart reports the operator's expected starting load before the
	// initial round (the simulator: the schedule's first rates).
	WarmStart bool
	// ScaleInGuard: a round does not buffer what the measured load still
	// needs (local.Config.ScaleInGuard).
	ScaleInGuard bool
	// LocalFirst plans entry = exit pairs first (placement.Options.LocalFirst).
	LocalFirst bool
	// PlanHorizon plans for the largest load over the next interval and
	// the boot delay after it (PlanHorizonFor), not the interval's mean.
	PlanHorizon bool
	// TrimBuffer destroys buffered instances beyond BufferSpare per VNF
	// and DC at each new interval instead of after τ (local.Config).
	TrimBuffer  bool
	BufferSpare int
	// TrimEmpty destroys a buffered instance beyond BufferSpare once its
	// flows have ended (local.Config.TrimEmpty).
	TrimEmpty bool
	// ScaleIn: between rounds, a local controller buffers one instance
	// when the measured load has stayed under what one fewer carries
	// (local.Config.ScaleIn; hybrid only: it needs rounds and reactive
	// reuse).
	ScaleIn bool
	// PackFlows > 0 packs new DP flows onto the fewest instances, each up
	// to this fraction of its capacity (routing.Table.SetPackLimit; 0:
	// least-loaded routing, which spreads them). Strategies with rounds
	// only (Config.PackFlows).
	PackFlows float64
	// SpreadOverload > 0: a new DP flow whose least-loaded normal instance
	// would pass this fraction of its capacity goes to an overloaded
	// instance carrying less (routing.Table.SetSpreadLimit; 0: the paper's
	// rule, new flows avoid overloaded instances while a normal one exists).
	// Strategies with rounds only (Config.SpreadOverload).
	SpreadOverload float64
	// Anticipate: a local controller scales a DP stage out before the
	// overload when its measured load's rise would pass the working
	// instances' capacity within a boot (local.Config.Anticipate; hybrid
	// only: reactive-only keeps the paper's rule).
	Anticipate bool
	// ReactiveUtilization > 0: a local controller's reactive scale-out of
	// a DP stage waits until a majority of its working instances is
	// overloaded and carries at least this fraction of its capacity (the
	// larger of the packet and the CPU share; at most one minute)
	// (local.Config.ReactiveUtilization; strategies with rounds only:
	// reactive-only keeps the paper's rule).
	ReactiveUtilization float64
	// FallingScaleIn > 0: between rounds, a local controller buffers one
	// instance of a DP stage whose load in its DC is falling once the
	// working load fits on one instance fewer at this fraction of their
	// capacity, and destroys it when its pinned flows have ended
	// (local.Config.FallingScaleIn; strategies with rounds only).
	FallingScaleIn float64
	// FallingScaleInSingle > 0: FallingScaleIn also steps a DP stage from
	// two working instances to one when that one would carry at most this
	// fraction of its capacity (local.Config.FallingScaleInSingle; 0: it
	// leaves two).
	FallingScaleInSingle float64
	// TrimEmptyBusy, TrimEmptySingleBusy: with TrimEmpty, a local
	// controller keeps a VNF's emptied buffered instances while its working
	// instances average more than this fraction of their load threshold
	// (the single bar when there is one working instance; the held trim of
	// TrimBuffer reads TrimEmptyBusy) (local.Config.TrimEmptyBusy,
	// TrimEmptySingleBusy; in (0, 1]).
	TrimEmptyBusy, TrimEmptySingleBusy float64
	// RiseFlags: the rounds flag a DP stage NoRise (flat after a steep
	// rise: the local controller holds its reactive rules back) and Fast
	// (a steep rise: the round's raise is launched just in time), gated
	// by the declared profile's rise (global.Config.Rise,
	// local.Config.NoRise; hybrid only). False: neither flag is sent.
	RiseFlags bool
}

// Defaults are the scaling options of a deployment that does not set them,
// chosen on the section-6 and daily-traffic sweep (issue 16,
// docs/reproduction.md "Defaults", scripts/sweep.sh). Before issue 16:
// ar1, utilisation 1, no warm start, no guard, not local-first, no
// horizon, no trim. Session 6 (docs/reproduction.md "Between-round
// scale-in and TrimEmpty"): TrimEmpty on (was absent, i.e. off); ScaleIn
// measured and left off. "Session 6: flow packing": PackFlows 0.85 (was
// absent, i.e. 0: least-loaded routing). "Session 7: daily traffic":
// Anticipate on (was absent, i.e. off). "Session 7: DP target": Targets
// firewall 0.95 and IDS 0.95 (were absent: every VNF at
// TargetUtilization); the transcoder and the CSCFs stay at 0.9.
// "Session 8: routing during overload": SpreadOverload 1 (was absent,
// i.e. 0: new flows avoid overloaded instances while a normal one exists),
// and with it every DP stage at DPTargetUtilization 0.97 (was: Targets
// firewall 0.95, IDS 0.95, transcoder at TargetUtilization 0.9); the CSCFs
// stay at 0.9. "Session 9: reactive scale-out utilisation":
// ReactiveUtilization 0.95 (was absent, i.e. 0: the overload report, at
// ρ 0.9 in the simulator's default model, suffices). "Session 10: daily
// misses": PackFlows 0.88 (was 0.85; still below the ρ 0.9 trigger).
// "Session 10: simultaneous 20/30 s floor": FallingScaleIn 0.94 (was
// absent, i.e. 0: between rounds only anticipated and reactive scale-out).
// "Session 11: reactive bar 0.99 and the held trim": ReactiveUtilization
// 0.99 (was 0.95) and FallingScaleIn 0.98 (was 0.94), with TrimBuffer held
// on a rising load onto busy working instances (local.trimHeldLocked).
// "Session 12: TrimEmpty's busy bar for one working instance":
// TrimEmptySingleBusy 0.95 (was TrimEmptyBusy, 0.9, for every count).
// "Session 14: zoom floor margin": FallingScaleInSingle 0.75 (was absent,
// i.e. 0: the falling scale-in left two working instances), with the
// declared profile's stage floor launching (global.DefaultStageFloorMode).
// "Session 17: candidate H as the default": RiseFlags on (was absent, i.e.
// off: no round flagged a stage).
var Defaults = Scaling{
	Predictor: "kalman", TargetUtilization: 0.9, WarmStart: true, ScaleInGuard: true, LocalFirst: false,
	PlanHorizon: true, TrimBuffer: true, BufferSpare: 0, TrimEmpty: true, ScaleIn: false, PackFlows: 0.88,
	SpreadOverload: 1, Anticipate: true, DPTargetUtilization: 0.97, ReactiveUtilization: 0.99,
	FallingScaleIn: local.DefaultFallingScaleIn, FallingScaleInSingle: local.DefaultFallingScaleInSingle, TrimEmptyBusy: local.TrimEmptyBusy, TrimEmptySingleBusy: local.TrimEmptySingleBusy,
	RiseFlags: true,
}

// PlanHorizonFor is Config.PlanHorizon for a scaling interval and a boot
// delay: ½ (the interval's end) + the boot delay in intervals (the boot of
// the instances the next round adds), or 0 with on false or no interval.
func PlanHorizonFor(on bool, interval, boot time.Duration) float64 {
	if !on || interval <= 0 {
		return 0
	}
	return 0.5 + boot.Seconds()/interval.Seconds()
}
