package global

import (
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/controller/fsm"
	"github.com/ims-orch/ims-orch/controller/protocol"
	"github.com/ims-orch/ims-orch/placement"
)

// riseCase is two DCs, one DP stage of capacity 100 per instance, and two
// pairs a→a (2000) and b→a (1000) through a's stage: a flat stage after a
// steep rise. hist is the measured stage load of the rounds before this
// one (oldest first): a rise of 40 (0.4 capacities) 5 rounds ago, then
// flat at 3000, so the stage gets NoRise (flat over 3 rounds, a rise ≥
// 0.35 capacities within 12) and not Fast (no rise ≥ 0.5 within 3).
func riseCase() (*fsm.Topology, *placement.Decision, map[string]float64, [][][]float64) {
	t := &fsm.Topology{DCs: []string{"a", "b"}, Stages: []fsm.VNF{{Name: "fw", Capacity: 100}}}
	d := &placement.Decision{Pairs: []placement.PairPlan{
		{Pair: placement.Pair{Entry: 0, Exit: 0}, Path: placement.Path{0, 0, 0}, Workload: 2000},
		{Pair: placement.Pair{Entry: 1, Exit: 0}, Path: placement.Path{1, 0, 0}, Workload: 1000},
	}}
	actual := map[string]float64{"dp/a/a": 2000, "dp/b/a": 1000}
	var hist [][][]float64
	for _, l := range []float64{2900, 2940, 3000, 3000, 3000, 3000} {
		hist = append(hist, [][]float64{{l}, {0}})
	}
	return t, d, actual, hist
}

// flagsOf runs the round's flags of riseCase with the declared rises rise
// and this round's planned workload of a→a scaled by planX.
func flagsOf(t *testing.T, rise map[string]float64, planX float64, last float64) stageFlags {
	t.Helper()
	topo, d, actual, hist := riseCase()
	d.Pairs[0].Workload *= planX
	p, err := RisePolicy{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	s := sumStages(topo, d, actual, rise, p)
	hist[len(hist)-2][0][0] = last // the round before this one
	hist = append(hist, thisRound(topo, d, actual))
	return riseFlags(s, hist, []fsm.VNF{{Capacity: 100}}, p)[0][0]
}

// thisRound is the stage loads of a round measured as actual, summed along
// d (stageHistory of that round alone).
func thisRound(topo *fsm.Topology, d *placement.Decision, actual map[string]float64) [][]float64 {
	return stageHistory(topo, d, nil, &fsm.Prediction{Round: 1, Actual: actual}, DefaultRisePolicy)[0]
}

// The declared profile gates the flags: a stage carrying a pair whose
// declared rise passes 1.05 gets no NoRise, at 1.05 it does; a rise past
// 1.3 clears Fast, 1.3 keeps it; a series without a profile (0) does not
// gate, and a profile that foresees no load over the interval
// (RiseNoBase) gates both. Fast needs a rise ≥ 0.5 capacities within 3
// rounds: the round before rises 2950 → 3000.
func TestRiseFlagsProfileGate(t *testing.T) {
	for _, tc := range []struct {
		name string
		rise map[string]float64
		want stageFlags
	}{
		{"no profile", nil, stageFlags{noRise: true, fast: true}},
		{"rise 1.05 on one pair", map[string]float64{"dp/a/a": 1.05}, stageFlags{noRise: true, fast: true}},
		{"rise 1.06 on one pair", map[string]float64{"dp/b/a": 1.06}, stageFlags{noRise: false, fast: true}},
		{"rise 1.3", map[string]float64{"dp/a/a": 1.3}, stageFlags{noRise: false, fast: true}},
		{"rise 1.31", map[string]float64{"dp/a/a": 1.0, "dp/b/a": 1.31}, stageFlags{noRise: false, fast: false}},
		{"a fall", map[string]float64{"dp/a/a": 0.5, "dp/b/a": 0.9}, stageFlags{noRise: true, fast: true}},
		{"no base", map[string]float64{"dp/a/a": RiseNoBase}, stageFlags{}},
		{"another stage's pair", map[string]float64{"dp/b/b": 9}, stageFlags{noRise: true, fast: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := flagsOf(t, tc.rise, 1, 2950); got != tc.want {
				t.Fatalf("flags %+v, want %+v", got, tc.want)
			}
		})
	}
}

// Without a declared profile the flags are session 16's candidate G's:
// NoRise on a load flat within ε = 0.1 over 3 rounds (the plan too) after
// a rise ≥ 0.35 capacities within 12 rounds; Fast on a rise ≥ 0.5
// capacities within 3 rounds.
func TestRiseFlagsWithoutProfile(t *testing.T) {
	for _, tc := range []struct {
		name  string
		planX float64
		last  float64 // the round before's load (this round's: 3000)
		want  stageFlags
	}{
		{"flat after a steep rise", 1, 3000, stageFlags{noRise: true}},
		{"plan 10 % over the load", 1.15, 3000, stageFlags{noRise: true}}, // 3000 × 1.1 = 3300 = 2300 + 1000
		{"plan more than 10 % over", 1.16, 3000, stageFlags{}},
		{"rose 0.5 capacities the round before", 1, 2950, stageFlags{noRise: true, fast: true}},
		{"rose 0.49 capacities", 1, 2951, stageFlags{noRise: true}},
		{"not flat: the round before was 10 % lower (a steep rise: Fast)", 1, 2700, stageFlags{fast: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := flagsOf(t, nil, tc.planX, tc.last); got != tc.want {
				t.Fatalf("flags %+v, want %+v", got, tc.want)
			}
		})
	}
	// no steep rise within 12 rounds: no NoRise
	topo, d, actual, _ := riseCase()
	p, _ := RisePolicy{}.withDefaults()
	s := sumStages(topo, d, actual, nil, p)
	var hist [][][]float64
	for range 14 {
		hist = append(hist, [][]float64{{3000}, {0}})
	}
	hist[0][0][0] = 2900 // 13 rounds ago
	if got := riseFlags(s, hist, []fsm.VNF{{Capacity: 100}}, p)[0][0]; got != (stageFlags{}) {
		t.Fatalf("a steep rise 13 rounds ago: %+v, want no flag", got)
	}
	// a pair not measured this round: no NoRise
	delete(actual, "dp/b/a")
	s = sumStages(topo, d, actual, nil, p)
	_, _, _, hist = riseCase()
	hist = append(hist, thisRound(topo, d, actual))
	if got := riseFlags(s, hist, []fsm.VNF{{Capacity: 100}}, p)[0][0]; got.noRise {
		t.Fatalf("a pair without a measurement: %+v, want no NoRise", got)
	}
	// a pair through the stage without a measurement, its plan 0 (the
	// sums stay flat): no NoRise either (the known gate alone)
	topo, d, actual, hist = riseCase()
	d.Pairs = append(d.Pairs, placement.PairPlan{Pair: placement.Pair{Entry: 1, Exit: 1}, Path: placement.Path{1, 0, 1}})
	s = sumStages(topo, d, actual, nil, p)
	hist = append(hist, thisRound(topo, d, actual))
	if got := riseFlags(s, hist, []fsm.VNF{{Capacity: 100}}, p)[0][0]; got != (stageFlags{}) {
		t.Fatalf("an unmeasured pair (plan 0) through the flat stage: %+v, want no flag", got)
	}
}

// Only a DC whose step-2 report advertises noRise gets the flags; an
// older local controller (or a proactive-only one, which does not
// advertise it) gets the decision main sends, byte for byte.
func TestMarkRiseOnlyAdvertised(t *testing.T) {
	topo := &fsm.Topology{DCs: []string{"a", "b"}, Stages: []fsm.VNF{{Name: "fw", Capacity: 100}}}
	mk := func() []protocol.DCDecision {
		return []protocol.DCDecision{
			{DC: "a", Targets: []protocol.VNFTarget{{VNF: "pcscf", Working: 1, Reason: "plan"}, {VNF: "fw", Working: 3, Reason: "plan"}}},
			{DC: "b", Targets: []protocol.VNFTarget{{VNF: "fw", Working: 2, Reason: "plan"}}},
		}
	}
	flags := [][]stageFlags{{{noRise: true, fast: true}}, {{noRise: true, fast: true}}}
	prov := map[string]protocol.ProvisionReport{
		"a": {DC: "a", Features: []string{protocol.FeatureKeepBuffered, protocol.FeatureNoRise}},
		"b": {DC: "b", Features: []string{protocol.FeatureKeepBuffered}},
	}
	dcs := mk()
	markRise(topo, flags, dcs, prov)
	if tg := dcs[0].Targets[1]; !tg.NoRise || !tg.Fast || !strings.Contains(tg.Reason, "no rise") {
		t.Fatalf("advertising DC: %+v, want both flags and the reason", tg)
	}
	if tg := dcs[0].Targets[0]; tg != mk()[0].Targets[0] {
		t.Fatalf("a CP target changed: %+v", tg)
	}
	if !reflect.DeepEqual(dcs[1], mk()[1]) {
		t.Fatalf("older DC's decision %+v, want main's %+v", dcs[1], mk()[1])
	}
	if err := oldStrictTarget(dcs[1].Targets[0]); err != nil {
		t.Fatalf("an older local controller refuses the decision: %v", err)
	}
	if err := oldStrictTarget(dcs[0].Targets[1]); err == nil {
		t.Fatal("an old-style strict decoder accepted a target with noRise")
	}
}

// rerouteCase is the reviewer's probe (revH MED-0): two DCs, one stage of
// capacity 100, pairs a→a (200) and b→a (300) measured flat in rounds 1
// to 6; this round (6) routes b→a through a's stage, where the rounds
// before (their own plans) ran it in b's.
func rerouteCase() (*fsm.Topology, *placement.Decision, []fsm.Prediction) {
	topo := &fsm.Topology{DCs: []string{"a", "b"}, Stages: []fsm.VNF{{Name: "fw", Capacity: 100}}}
	d := &placement.Decision{Pairs: []placement.PairPlan{
		{Pair: placement.Pair{Entry: 0, Exit: 0}, Path: placement.Path{0, 0, 0}, Workload: 200},
		{Pair: placement.Pair{Entry: 1, Exit: 0}, Path: placement.Path{1, 0, 0}, Workload: 300},
	}}
	var hist []fsm.Prediction
	for r := range uint64(7) {
		hist = append(hist, fsm.Prediction{Round: r, Actual: map[string]float64{"dp/a/a": 200, "dp/b/a": 300}})
	}
	return topo, d, hist
}

// A re-route alone is no rise: every round's measured pair loads are
// summed along this round's paths, so a's stage was 500 all along and
// gets no Fast (nor b's a fall); a measured rise of b→a by 100 (one
// capacity) on the same paths does get Fast.
func TestStageHistoryRerouteIsNoRise(t *testing.T) {
	p, _ := RisePolicy{}.withDefaults()
	topo, d, hist := rerouteCase()
	cur := hist[len(hist)-1]
	got := stageHistory(topo, d, hist, &cur, p)
	want := [][][]float64{{{500}, {0}}, {{500}, {0}}, {{500}, {0}}, {{500}, {0}}, {{500}, {0}}, {{500}, {0}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("history %v, want %v (rounds 1–6 along this round's paths)", got, want)
	}
	s := sumStages(topo, d, cur.Actual, nil, p)
	if f := riseFlags(s, got, topo.Stages, p); f[0][0].fast || f[1][0].fast {
		t.Fatalf("a re-route alone flags %+v", f)
	}
	cur.Actual = map[string]float64{"dp/a/a": 200, "dp/b/a": 400}
	hist[len(hist)-1] = cur
	if f := riseFlags(s, stageHistory(topo, d, hist, &cur, p), topo.Stages, p); !f[0][0].fast {
		t.Fatalf("a measured rise of one capacity: %+v, want Fast in a", f)
	}
}

// The history is the look-back's rounds of the replicated history, this
// round last, none before round 1; a round missing from it is missing
// (NaN) for every stage; a pair without a measurement in a round, though
// measured before (held: its DC was silent), makes its stages missing that
// round; a pair measured in no earlier round counts 0; the prediction of
// this round (cur) is read even before the history holds it.
func TestStageHistoryRoundsAndGaps(t *testing.T) {
	p, _ := RisePolicy{}.withDefaults()
	topo, d, _ := rerouteCase()
	d.Pairs = append(d.Pairs, placement.PairPlan{Pair: placement.Pair{Entry: 1, Exit: 1}, Path: placement.Path{1, 1, 1}})
	var hist []fsm.Prediction
	for r := range uint64(21) {
		hist = append(hist, fsm.Prediction{Round: r, Actual: map[string]float64{"dp/a/a": float64(r), "dp/b/a": 0, "dp/b/b": 1}})
	}
	cur := fsm.Prediction{Round: 21, Actual: map[string]float64{"dp/a/a": 21, "dp/b/a": 0, "dp/b/b": 1}}
	got := stageHistory(topo, d, hist, &cur, p)
	if len(got) != 13 || got[0][0][0] != 9 || got[12][0][0] != 21 || got[12][1][0] != 1 {
		t.Fatalf("round 21: %d rounds from %v to %v, want 13 from round 9 (9) to 21 (21, b 1)", len(got), got[0], got[len(got)-1])
	}
	cur = hist[4]
	if got := stageHistory(topo, d, hist[:4], &cur, p); len(got) != 4 || got[0][0][0] != 1 || got[3][0][0] != 4 {
		t.Fatalf("round 4: %v, want rounds 1–4 (not round 0)", got)
	}

	// rounds 1–5: round 3 missing, b→a held in round 4 (measured in round
	// 1), b→b measured first in round 5
	hist = nil
	for r := range uint64(6) {
		a := map[string]float64{"dp/a/a": 100, "dp/b/a": 50}
		switch r {
		case 3:
			continue
		case 4:
			delete(a, "dp/b/a")
		case 5:
			a["dp/b/b"] = 70
		}
		hist = append(hist, fsm.Prediction{Round: r, Actual: a})
	}
	cur = hist[len(hist)-1]
	got = stageHistory(topo, d, hist, &cur, p)
	nan := math.NaN()
	want := [][][]float64{{{150}, {0}}, {{150}, {0}}, {{nan}, {nan}}, {{nan}, {0}}, {{150}, {70}}}
	if len(got) != len(want) {
		t.Fatalf("history %v, want %v", got, want)
	}
	for j := range want {
		for i := range want[j] {
			if g, w := got[j][i][0], want[j][i][0]; g != w && !(math.IsNaN(g) && math.IsNaN(w)) {
				t.Fatalf("round %d, DC %d: %v, want %v (history %v)", j+1, i, g, w, got)
			}
		}
	}
}

// A missing point rises to nothing and from nothing: no steep rise across
// it, none flat over it.
func TestSteepRiseSkipsMissingPoints(t *testing.T) {
	h := func(ls ...float64) [][][]float64 {
		var out [][][]float64
		for _, l := range ls {
			out = append(out, [][]float64{{l}})
		}
		return out
	}
	if !steepRise(h(100, 200), 0, 0, 50, 3) {
		t.Fatal("100 → 200: no steep rise")
	}
	if steepRise(h(100, math.NaN(), 200), 0, 0, 50, 3) || steepRise(h(math.NaN(), 200), 0, 0, 50, 3) || steepRise(h(100, math.NaN()), 0, 0, 50, 3) {
		t.Fatal("a steep rise across a missing point")
	}
	s := stageLoads{plan: [][]float64{{300}}, unknown: [][]bool{{false}}, gateNo: [][]bool{{false}}, gateFast: [][]bool{{false}}}
	p, _ := RisePolicy{}.withDefaults()
	if f := riseFlags(s, h(100, 300, math.NaN(), 300), []fsm.VNF{{Capacity: 100}}, p)[0][0]; f.noRise {
		t.Fatalf("flat over a missing round: %+v", f)
	}
	if f := riseFlags(s, h(100, 300, 300, 300), []fsm.VNF{{Capacity: 100}}, p)[0][0]; !f.noRise {
		t.Fatalf("flat after a steep rise: %+v, want NoRise", f)
	}
}

// Every field defaults to candidate H's value; a bad one is an error
// naming it.
func TestRisePolicyDefaultsAndErrors(t *testing.T) {
	p, err := RisePolicy{}.withDefaults()
	if err != nil || p != DefaultRisePolicy {
		t.Fatalf("defaults %+v, %v", p, err)
	}
	if DefaultRisePolicy != (RisePolicy{Epsilon: 0.1, Rounds: 3, StepRise: 0.35, StepRounds: 12, FastRise: 0.5, FastRounds: 3, ProfileRise: 1.05, FastProfileRise: 1.3}) {
		t.Fatalf("defaults %+v are not candidate H's", DefaultRisePolicy)
	}
	for _, tc := range []struct {
		name string // the field the error names
		bad  RisePolicy
	}{
		{"Epsilon", RisePolicy{Epsilon: -0.1}},
		{"StepRise", RisePolicy{StepRise: math.Inf(1)}},
		{"FastRise", RisePolicy{FastRise: math.NaN()}},
		{"ProfileRise", RisePolicy{ProfileRise: 0.9}},
		{"FastProfileRise", RisePolicy{FastProfileRise: 1}},
		{"Rounds", RisePolicy{Rounds: -1}},
		{"StepRounds", RisePolicy{StepRounds: -3}},
		{"FastRounds", RisePolicy{FastRounds: -1}},
		// the upper bounds: the look-back fits the replicated history
		{"Rounds", RisePolicy{Rounds: fsm.MaxHistory + 1}},
		{"StepRounds", RisePolicy{StepRounds: fsm.MaxHistory}},
		{"FastRounds", RisePolicy{FastRounds: fsm.MaxHistory}},
	} {
		name, bad := tc.name, tc.bad
		if _, err := bad.withDefaults(); err == nil || !strings.Contains(err.Error(), "global.Config.Rise."+name+":") {
			t.Errorf("%s: error %v, want one naming the field", name, err)
		}
		if _, err := New(Config{Rise: bad}, Deps{}); err == nil || !strings.Contains(err.Error(), "Rise."+name) {
			t.Errorf("New with a bad Rise.%s: %v", name, err)
		}
	}
	// and the bounds themselves are accepted
	if _, err := (RisePolicy{Rounds: fsm.MaxHistory, StepRounds: fsm.MaxHistory - 1, FastRounds: fsm.MaxHistory - 1}).withDefaults(); err != nil {
		t.Errorf("the largest look-back: %v", err)
	}
}

// The profile forecaster reports a DP series' declared rise (the ratio its
// prior plans with, here 910/600: TestProfilePriorStageFloorPeak), a CP
// series none; riseBeyond reads 0 as no profile and RiseNoBase as beyond
// any bar.
func TestProfileForecastRise(t *testing.T) {
	fc := floorPredict(t, 150*time.Second, 120, ProfilePrior{})
	if got := fc["dp/a/a"].Rise; math.Abs(got-910.0/600) > 1e-9 {
		t.Fatalf("dp rise %v, want %v", got, 910.0/600)
	}
	if got := fc["cp/a/a"].Rise; got != 0 {
		t.Fatalf("cp rise %v, want 0", got)
	}
	if riseBeyond(0, 1.05) || !riseBeyond(RiseNoBase, 1.05) || riseBeyond(1.05, 1.05) || !riseBeyond(1.0501, 1.05) {
		t.Fatal("riseBeyond")
	}
}

// riseForecaster is f with every DP series' Forecast.Rise set to rise.
type riseForecaster struct {
	Forecaster
	rise float64
}

func (r riseForecaster) Predict(keys []string) map[string]Forecast {
	out := r.Forecaster.Predict(keys)
	for k, fc := range out {
		if kind, _, _, ok := ParseSeriesKey(k); ok && kind == KindDP {
			fc.Rise = r.rise
			out[k] = fc
		}
	}
	return out
}

// A whole run of rounds: the DP load of every pair steps ×10 in round 2,
// then stays flat. The flags reach the targets through the round's
// prediction (fsm.Prediction.Rise, also for a resumed round) and the
// step-2 reports: without a declared profile the DCs that advertise
// noRise get Fast at the step and NoRise once flat; a declared rise of 1.2
// keeps Fast and clears NoRise; 1.4 clears both; a DC that does not
// advertise the feature gets neither, nor does any DC with Rise.Off.
func TestEngineSendsRiseFlags(t *testing.T) {
	for _, tc := range []struct {
		name           string
		rise           float64
		advertise, off bool
		noRise, fast   bool // some target of some round carried it
	}{
		{"no profile", 0, true, false, true, true},
		{"declared rise 1.2", 1.2, true, false, false, true},
		{"declared rise 1.4", 1.4, true, false, false, false},
		{"older locals", 0, false, false, false, false},
		{"off", 0, true, true, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := stepHarness(t)
			if tc.advertise {
				advertiseNoRise(h)
			}
			h.cfg.Rise.Off = tc.off
			var err error
			if h.eng, err = New(h.cfg, Deps{Clock: h.clk, Transport: h.mem, Forecaster: riseForecaster{newAR1(), tc.rise}, Store: h.store}); err != nil {
				t.Fatal(err)
			}
			if err := h.eng.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(h.eng.Stop)
			h.runRounds(t, 8)
			var noRise, fast bool
			for _, r := range h.eng.Records() {
				for _, d := range r.Decision {
					for _, tg := range d.Targets {
						noRise, fast = noRise || tg.NoRise, fast || tg.Fast
					}
				}
			}
			if noRise != tc.noRise || fast != tc.fast {
				t.Fatalf("some target flagged noRise %v, fast %v; want %v, %v", noRise, fast, tc.noRise, tc.fast)
			}
		})
	}
}
