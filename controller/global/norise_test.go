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
	hist = append(hist, s.seen)
	return riseFlags(s, hist, []fsm.VNF{{Capacity: 100}}, p)[0][0]
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
	hist = append(hist, s.seen)
	if got := riseFlags(s, hist, []fsm.VNF{{Capacity: 100}}, p)[0][0]; got.noRise {
		t.Fatalf("a pair without a measurement: %+v, want no NoRise", got)
	}
	// a pair through the stage without a measurement, its plan 0 (the
	// sums stay flat): no NoRise either (the known gate alone)
	topo, d, actual, hist = riseCase()
	d.Pairs = append(d.Pairs, placement.PairPlan{Pair: placement.Pair{Entry: 1, Exit: 1}, Path: placement.Path{1, 0, 1}})
	s = sumStages(topo, d, actual, nil, p)
	hist = append(hist, s.seen)
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

// The history keeps rounds in a row, starts again on a gap, a repeated
// round and rounds 0 and 1, and keeps only the look-back.
func TestRiseHistory(t *testing.T) {
	p, _ := RisePolicy{}.withDefaults()
	var h riseHistory
	l := func(x float64) [][]float64 { return [][]float64{{x}} }
	h.add(0, l(0), p)
	if got := h.add(1, l(1), p); len(got) != 1 || got[0][0][0] != 1 {
		t.Fatalf("round 1: %v, want round 1's only", got)
	}
	for r := uint64(2); r <= 20; r++ {
		h.add(r, l(float64(r)), p)
	}
	got := h.add(21, l(21), p)
	if len(got) != 13 || got[12][0][0] != 21 || got[0][0][0] != 9 {
		t.Fatalf("after round 21: %d entries from %v, want 13 from 9", len(got), got[0])
	}
	if got := h.add(23, l(23), p); len(got) != 1 {
		t.Fatalf("after a gap: %d entries, want 1", len(got))
	}
	if got := h.add(23, l(23), p); len(got) != 1 {
		t.Fatalf("a repeated round: %d entries, want 1", len(got))
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
	for name, bad := range map[string]RisePolicy{
		"Epsilon":         {Epsilon: -0.1},
		"StepRise":        {StepRise: math.Inf(1)},
		"FastRise":        {FastRise: math.NaN()},
		"ProfileRise":     {ProfileRise: 0.9},
		"FastProfileRise": {FastProfileRise: 1},
		"Rounds":          {Rounds: -1},
		"StepRounds":      {StepRounds: -3},
		"FastRounds":      {FastRounds: -1},
	} {
		if _, err := bad.withDefaults(); err == nil || !strings.Contains(err.Error(), "global.Config.Rise."+name+":") {
			t.Errorf("%s: error %v, want one naming the field", name, err)
		}
		if _, err := New(Config{Rise: bad}, Deps{}); err == nil || !strings.Contains(err.Error(), "Rise."+name) {
			t.Errorf("New with a bad Rise.%s: %v", name, err)
		}
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
			var h *harness
			h = newHarness(t, 2, transportCfgNone, Hooks{}, func(i, j int) float64 {
				if h.clk.Now().Sub(t0) < 110*time.Second {
					return 5000
				}
				return 50000
			})
			for _, p := range h.parts {
				if tc.advertise {
					p.features = []string{protocol.FeatureKeepBuffered, protocol.FeatureNoRise}
				}
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
