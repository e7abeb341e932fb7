package global

import (
	"fmt"
	"math"
	"slices"

	"github.com/ims-orch/ims-orch/controller/fsm"
	"github.com/ims-orch/ims-orch/controller/protocol"
	"github.com/ims-orch/ims-orch/placement"
)

// RisePolicy sets when a round flags a DP stage in a DC with
// protocol.VNFTarget.NoRise (the round foresees no rise: the local
// controller holds its reactive rules back) and Fast (the load has just
// risen steeply: the local controller launches the round's raise just in
// time). Zero fields get DefaultRisePolicy's: issue #16's candidate H
// (docs/reproduction.md "Session 16" rise16, rise16b and "Session 17:
// candidate H as the default").
type RisePolicy struct {
	// Off sends neither flag (session 16's behaviour).
	Off bool
	// Epsilon: NoRise needs the stage's planned load at most (1 + Epsilon)
	// × its measured load, and the larger of both at most (1 + Epsilon) ×
	// its measured load of each of the Rounds − 1 rounds before (default
	// 0.1).
	Epsilon float64
	// Rounds is how many rounds, this one included, the load must have
	// stayed flat for NoRise (default 3).
	Rounds int
	// StepRise: NoRise needs the stage's measured load to have risen by at
	// least StepRise × one instance's capacity from one round to the next
	// within the last StepRounds rounds: a flat load after a steep rise,
	// not a slow ramp (default 0.35).
	StepRise float64
	// StepRounds is StepRise's look-back in rounds (default 12).
	StepRounds int
	// FastRise: Fast needs the stage's measured load to have risen by at
	// least FastRise × one instance's capacity from one round to the next
	// within the last FastRounds rounds (default 0.5).
	FastRise float64
	// FastRounds is FastRise's look-back in rounds (default 3).
	FastRounds int
	// ProfileRise: no NoRise on a stage that carries a pair whose declared
	// profile foresees a rise above this ratio (Forecast.Rise; default
	// 1.05). Series without a declared profile do not gate.
	ProfileRise float64
	// FastProfileRise is ProfileRise for Fast (default 1.3).
	FastProfileRise float64
}

// DefaultRisePolicy is candidate H (session 16's measurement env
// HACK_EPS=0.1 HACK_K=3 HACK_FASTX=0.35 HACK_FASTG=12 HACK_JITX=0.5
// HACK_JITG=3 HACK_PROFX=1.05 HACK_PROFJX=1.3).
var DefaultRisePolicy = RisePolicy{Epsilon: 0.1, Rounds: 3, StepRise: 0.35, StepRounds: 12, FastRise: 0.5, FastRounds: 3,
	ProfileRise: 1.05, FastProfileRise: 1.3}

// withDefaults validates p and fills its zero fields; errors name the
// field under global.Config.Rise.
func (p RisePolicy) withDefaults() (RisePolicy, error) {
	return p.WithDefaults(func(f string) string { return "global.Config.Rise." + f })
}

// WithDefaults validates p and fills its zero fields (DefaultRisePolicy's);
// an error names the bad field as name(its Go name, e.g. "Epsilon"), so a
// configuration file can name its own key (the daemon's policy.rise).
// They are the checks New applies to Config.Rise; the fields need no
// order among them.
func (p RisePolicy) WithDefaults(name func(field string) string) (RisePolicy, error) {
	d := DefaultRisePolicy
	fs := []struct {
		n   string
		p   *float64
		def float64
		min float64 // exclusive lower bound
	}{{"Epsilon", &p.Epsilon, d.Epsilon, 0}, {"StepRise", &p.StepRise, d.StepRise, 0}, {"FastRise", &p.FastRise, d.FastRise, 0},
		{"ProfileRise", &p.ProfileRise, d.ProfileRise, 1}, {"FastProfileRise", &p.FastProfileRise, d.FastProfileRise, 1}}
	for _, f := range fs {
		if *f.p == 0 {
			*f.p = f.def
		}
		if !(*f.p > f.min) || math.IsInf(*f.p, 0) {
			return p, fmt.Errorf("%s: %v must be a finite number above %g", name(f.n), *f.p, f.min)
		}
	}
	// the look-back (lookBack) reads the replicated history, which keeps
	// fsm.MaxHistory rounds
	is := []struct {
		n        string
		p        *int
		def, max int
	}{{"Rounds", &p.Rounds, d.Rounds, fsm.MaxHistory}, {"StepRounds", &p.StepRounds, d.StepRounds, fsm.MaxHistory - 1},
		{"FastRounds", &p.FastRounds, d.FastRounds, fsm.MaxHistory - 1}}
	for _, f := range is {
		if *f.p == 0 {
			*f.p = f.def
		}
		if *f.p < 1 || *f.p > f.max {
			return p, fmt.Errorf("%s: %d must be from 1 to %d (rounds; the replicated history keeps %d)", name(f.n), *f.p, f.max, fsm.MaxHistory)
		}
	}
	return p, nil
}

// RiseNoBase is Forecast.Rise when a declared profile covers the series
// but foresees no load over the interval just closed, so that no ratio
// exists: a rise without bound for the flags' gates.
const RiseNoBase = -1.0

// riseBeyond reports whether a declared rise r (Forecast.Rise; 0: no
// profile) gates a flag whose bar is x.
func riseBeyond(r, x float64) bool {
	return r != 0 && (r < 0 || r > x)
}

// stageLoads are a round's per-DC, per-DP-stage sums over the pairs
// routed through each (index [dc][stage]).
type stageLoads struct {
	plan     [][]float64 // planned workload
	unknown  [][]bool    // a pair through it was not measured this round
	gateNo   [][]bool    // a pair's declared rise is beyond RisePolicy.ProfileRise
	gateFast [][]bool    // ... beyond RisePolicy.FastProfileRise
}

// forStages calls f for every DP stage k of every pair of d, with the
// DC dc that runs it on the pair's path and the pair's DP series key;
// pairs whose path or DCs do not fit t are left out (plan.go's
// decisionShapeOK refuses them before; the stage floor runs on any
// decision).
func forStages(t *fsm.Topology, d *placement.Decision, f func(pp *placement.PairPlan, key string, dc, k int)) {
	n, m := len(t.DCs), len(t.Stages)
	for i := range d.Pairs {
		pp := &d.Pairs[i]
		if len(pp.Path) != m+2 || pp.Pair.Entry < 0 || pp.Pair.Entry >= n || pp.Pair.Exit < 0 || pp.Pair.Exit >= n {
			continue
		}
		key := SeriesKey(KindDP, t.DCs[pp.Pair.Entry], t.DCs[pp.Pair.Exit])
		for k := range m {
			if dc := pp.Path[k+1]; dc >= 0 && dc < n {
				f(pp, key, dc, k)
			}
		}
	}
}

// sumStages sums the plan's pairs over the DP stages they cross: planned
// workload, whether every pair was measured this round (actual, by
// series key), and whether a pair's declared rise (rise, by series key)
// gates the flags.
func sumStages(t *fsm.Topology, d *placement.Decision, actual, rise map[string]float64, p RisePolicy) stageLoads {
	n, m := len(t.DCs), len(t.Stages)
	s := stageLoads{plan: grid[float64](n, m), unknown: grid[bool](n, m), gateNo: grid[bool](n, m), gateFast: grid[bool](n, m)}
	forStages(t, d, func(pp *placement.PairPlan, key string, dc, k int) {
		_, ok := actual[key]
		r := rise[key]
		s.plan[dc][k] += pp.Workload
		s.unknown[dc][k] = s.unknown[dc][k] || !ok
		s.gateNo[dc][k] = s.gateNo[dc][k] || riseBeyond(r, p.ProfileRise)
		s.gateFast[dc][k] = s.gateFast[dc][k] || riseBeyond(r, p.FastProfileRise)
	})
	return s
}

func grid[T any](n, m int) [][]T {
	g := make([][]T, n)
	for i := range g {
		g[i] = make([]T, m)
	}
	return g
}

// lookBack is how many rounds, this one included, the flags read
// (riseFlags: the flat rounds, and each look-back's rounds plus the
// round before them).
func (p RisePolicy) lookBack() int {
	return max(p.Rounds, p.StepRounds+1, p.FastRounds+1)
}

// stageHistory is the measured load of every DP stage in every DC
// ([round][dc][stage], oldest first, this round last) of round and the
// rounds before it, at most p.lookBack() of them and none before round 1
// (round 0's averages are the initial round's, measured over no
// interval). It reads the replicated prediction history hist
// (fsm.State.History: one entry a round with its measured pair loads,
// Actual; cur is this round's prediction, the last entry of hist once
// committed) and sums every round's pair loads along this round's plan d,
// so that:
//   - a re-route (a drain, a failover, a new placement) is no rise: only
//     the loads measured on the pairs move the sums (issue #16, review
//     revH MED-0);
//   - the flags are a function of the committed state: a new leader, a
//     round redone or the round after a failed plan reads what the
//     engine before would have (MED-1).
//
// A missing point is NaN, so that every comparison with it fails (no
// rise from or to it, not flat): a round absent from hist, and a stage
// one of whose pairs has no measurement that round although it was
// measured in an earlier one (a series held while its DC is silent:
// silent.go). A pair measured in no earlier round counts 0 (it carried no
// traffic yet); a series a round's Actual names counts its measured value
// (0 included).
func stageHistory(t *fsm.Topology, d *placement.Decision, hist []fsm.Prediction, cur *fsm.Prediction, p RisePolicy) [][][]float64 {
	n, m := len(t.DCs), len(t.Stages)
	byRound := make(map[uint64]map[string]float64, len(hist)+1)
	for _, h := range append(slices.Clip(hist), *cur) {
		byRound[h.Round] = h.Actual
	}
	// firstMeasured: the first round with a measurement of key
	// (math.MaxUint64: none), worked out only for a pair absent from a
	// round, a held series: rare, so no index of every series' first
	// round is built (review revHH L1), and once per such pair
	firstMeasured := func(key string) uint64 {
		first := uint64(math.MaxUint64)
		for q, a := range byRound {
			if _, ok := a[key]; ok {
				first = min(first, q)
			}
		}
		return first
	}
	rounds := min(uint64(p.lookBack()), cur.Round)
	out := make([][][]float64, rounds)
	actuals := make([]map[string]float64, rounds)
	present := make([]bool, rounds) // a round in hist (its Actual may be nil)
	for j := range out {
		r := cur.Round - rounds + 1 + uint64(j)
		g := grid[float64](n, m)
		out[j] = g
		actual, ok := byRound[r]
		if !ok {
			for i := range g {
				for k := range g[i] {
					g[i][k] = math.NaN()
				}
			}
			continue
		}
		actuals[j], present[j] = actual, true
	}
	// one pass over the plan: a pair's measured load of every round is
	// looked up once (its series key built once) and added to each stage
	// it crosses; each sum still adds the pairs in d.Pairs' order
	vals := make([]float64, rounds)
	var last *placement.PairPlan
	forStages(t, d, func(pp *placement.PairPlan, key string, dc, k int) {
		if pp != last {
			last = pp
			first, firstKnown := uint64(0), false
			for j, actual := range actuals {
				if !present[j] {
					continue
				}
				a, ok := actual[key]
				if !ok && !firstKnown {
					first, firstKnown = firstMeasured(key), true
				}
				if !ok && first < cur.Round-rounds+1+uint64(j) {
					a = math.NaN() // measured in a round before this one
				}
				vals[j] = a
			}
		}
		for j := range actuals {
			if present[j] {
				out[j][dc][k] += vals[j]
			}
		}
	})
	return out
}

// stageFlags are one DP stage's flags in one DC.
type stageFlags struct{ noRise, fast bool }

// riseFlags decides the round's flags of every DP stage in every DC
// ([dc][stage]) from its sums s and the measured stage loads hist
// (stageHistory: oldest first, this round's last; a missing point is
// NaN), with stages the DP stages (their capacities per instance).
func riseFlags(s stageLoads, hist [][][]float64, stages []fsm.VNF, p RisePolicy) [][]stageFlags {
	out := grid[stageFlags](len(s.plan), len(stages))
	if len(hist) == 0 {
		return out
	}
	for i := range out {
		for k := range out[i] {
			plan, seen := s.plan[i][k], hist[len(hist)-1][i][k]
			flat := !s.unknown[i][k] && seen > 0 && plan <= seen*(1+p.Epsilon)
			for j := 2; j <= p.Rounds && flat; j++ {
				flat = len(hist) >= j && max(plan, seen) <= hist[len(hist)-j][i][k]*(1+p.Epsilon)
			}
			out[i][k] = stageFlags{
				noRise: flat && steepRise(hist, i, k, p.StepRise*stages[k].Capacity, p.StepRounds) && !s.gateNo[i][k],
				fast:   steepRise(hist, i, k, p.FastRise*stages[k].Capacity, p.FastRounds) && !s.gateFast[i][k],
			}
		}
	}
	return out
}

// steepRise reports whether the measured load of stage k in DC i rose by
// at least by from one round to the next within the last rounds rounds
// of hist (a NaN point, missing, rises to or from nothing).
func steepRise(hist [][][]float64, i, k int, by float64, rounds int) bool {
	for j := len(hist) - 1; j >= 1 && j >= len(hist)-rounds; j-- {
		if hist[j][i][k]-hist[j-1][i][k] >= by {
			return true
		}
	}
	return false
}

// anyAdvertises reports whether some DC's step-2 report (prov, by DC)
// advertises feature f: without one, the round's flags go nowhere
// (markRise) and are not worked out (the proactive strategy's locals do
// not advertise protocol.FeatureNoRise).
func anyAdvertises(prov map[string]protocol.ProvisionReport, f string) bool {
	for _, r := range prov {
		if r.Has(f) {
			return true
		}
	}
	return false
}

// markRise sets the flags on the DP stages' targets of the DCs whose
// step-2 report (prov, by DC) advertises protocol.FeatureNoRise: an
// older local controller refuses a decision carrying them (strict
// decoding), and one that does not scale reactively does not advertise
// it (so only the hybrid strategy gets them).
func markRise(t *fsm.Topology, flags [][]stageFlags, dcs []protocol.DCDecision, prov map[string]protocol.ProvisionReport) {
	for i := range dcs {
		if !prov[t.DCs[i]].Has(protocol.FeatureNoRise) {
			continue
		}
		for j := range dcs[i].Targets {
			tg := &dcs[i].Targets[j]
			k := slices.IndexFunc(t.Stages, func(s fsm.VNF) bool { return s.Name == tg.VNF })
			if k < 0 {
				continue // not a DP stage
			}
			f := flags[i][k]
			tg.NoRise, tg.Fast = f.noRise, f.fast
			if f.noRise {
				tg.Reason += "; no rise foreseen"
			}
			if f.fast {
				tg.Reason += "; fast rise: launched just in time"
			}
		}
	}
}
