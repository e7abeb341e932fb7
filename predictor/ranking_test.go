package predictor_test

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/ims-orch/ims-orch/predictor"
	"github.com/ims-orch/ims-orch/predictor/trace"
)

// pointModels are the models ranked by MAPE (the +q margins trade MAPE for a
// lower under-prediction rate and are not in the ranking).
var pointModels = []string{"last", "ar1", "arp", "holt", "holt:fit=120", "holt-winters:season=1728", "analog", "kalman"}

// bestVsAR1 backtests pointModels on xs and returns the best model by MAPE and
// its MAPE gain over AR(1) in percent (positive = better than AR(1)).
func bestVsAR1(t *testing.T, xs []float64) (string, float64) {
	t.Helper()
	res, err := predictor.Compare(pointModels, xs, predictor.DefaultWindow)
	if err != nil {
		t.Fatal(err)
	}
	best, ar1 := res[0], math.NaN()
	for _, r := range res {
		if r.MAPE < best.MAPE {
			best = r
		}
		if r.Model == "ar1" {
			ar1 = r.MAPE
		}
	}
	return best.Model, 100 * (ar1 - best.MAPE) / ar1
}

func loadTrace(t *testing.T, name string) []float64 {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "testdata", "traces", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr, err := trace.Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	return tr.Values
}

// TestRankingOnShippedTraces asserts the ranking recorded in docs/predictor.md.
// minGain is the least MAPE gain of the best model over AR(1) the docs claim;
// a model change that loses the claim fails here.
func TestRankingOnShippedTraces(t *testing.T) {
	tests := []struct {
		file    string
		best    string
		minGain float64
	}{
		// Production-size pairs (scale 100): the goal, ≥ 30 %.
		{file: "ramp-x100.csv", best: "analog", minGain: 30},
		{file: "diurnal-x100.csv", best: "kalman", minGain: 33},
		// Paper-size ramps: Poisson noise is large, but the ramps recur and the
		// analog model learns where they turn: ≥ 30 % too.
		{file: "ramp.csv", best: "analog", minGain: 30},
		// Paper-size diurnal traffic: the noise floor (TestNoiseFloor) leaves
		// at most 14 %; the Kalman filter with the Poisson noise variance
		// takes a part of it.
		{file: "diurnal.csv", best: "kalman", minGain: 3},
		{file: "step.csv", best: "last", minGain: 20},
		{file: "burst.csv", best: "last", minGain: 20},
		{file: "sine.csv", best: "kalman", minGain: 0},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			best, gain := bestVsAR1(t, loadTrace(t, tc.file))
			t.Logf("best %s, %.1f%% better than ar1", best, gain)
			if best != tc.best {
				t.Errorf("best model %s, docs say %s", best, tc.best)
			}
			if gain < tc.minGain {
				t.Errorf("best model gains %.1f%% over ar1, docs claim ≥ %.0f%%", gain, tc.minGain)
			}
		})
	}
}

// TestRankingCanFail is the negative control of the ranking check: on a
// trace with no structure (i.i.d. noise around a constant) nothing beats
// AR(1) by 30 %, so the check above is not vacuous.
func TestRankingCanFail(t *testing.T) {
	xs := make([]float64, 600)
	state := uint64(42)
	for i := range xs { // uniform noise in [90, 110] from an LCG
		state = state*6364136223846793005 + 1442695040888963407
		xs[i] = 90 + 20*float64(state>>11)/(1<<53)
	}
	if _, gain := bestVsAR1(t, xs); gain >= 30 {
		t.Errorf("a model beat ar1 by %.1f%% on structureless noise: the ranking check cannot fail", gain)
	}
}

// TestNoiseFloor measures how much better than AR(1) any model could be on
// each paper-size trace: the oracle predicts the true expected rate of every
// interval (known to the generator), so no model can beat its MAPE on
// average. On the diurnal and sine traces the room left is below 30 %.
func TestNoiseFloor(t *testing.T) {
	tests := []struct {
		kind    string
		scale   float64
		maxRoom float64 // the oracle's gain over AR(1) is below this
		minRoom float64 // and above this
	}{
		{kind: trace.KindDiurnal, scale: 1, minRoom: 5, maxRoom: 30},
		{kind: trace.KindSine, scale: 1, minRoom: 5, maxRoom: 30},
		{kind: trace.KindRamp, scale: 1, minRoom: 30, maxRoom: 100},
		{kind: trace.KindDiurnal, scale: 100, minRoom: 30, maxRoom: 100},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s-x%g", tc.kind, tc.scale), func(t *testing.T) {
			tr, truth, err := trace.GenerateWithTruth(trace.Config{Kind: tc.kind, Seed: 1, Scale: tc.scale})
			if err != nil {
				t.Fatal(err)
			}
			ape, n := 0.0, 0
			for i := predictor.DefaultWindow; i < len(truth); i++ {
				if u := tr.Values[i]; u > 0 {
					ape += math.Abs(u-truth[i]) / u
					n++
				}
			}
			oracle := 100 * ape / float64(n)
			r, err := predictor.Backtest("ar1", tr.Values, predictor.DefaultWindow)
			if err != nil {
				t.Fatal(err)
			}
			room := 100 * (r.MAPE - oracle) / r.MAPE
			t.Logf("oracle MAPE %.2f%%, ar1 %.2f%%: at most %.1f%% better than ar1", oracle, r.MAPE, room)
			if room < tc.minRoom || room > tc.maxRoom {
				t.Errorf("room over ar1 %.1f%%, want in [%g, %g]", room, tc.minRoom, tc.maxRoom)
			}
		})
	}
}

// TestAnalogRampSeeds checks that the analog model's gain on the paper-size
// ramp is not a property of the one shipped seed: on freshly generated ramps
// (seeds 2–7) it beats AR(p), the previous best, on every seed, and gains
// ≥ 25 % over AR(1) on each and ≥ 30 % on average.
func TestAnalogRampSeeds(t *testing.T) {
	sum := 0.0
	const seeds = 6
	for seed := uint64(2); seed < 2+seeds; seed++ {
		tr, err := trace.Generate(trace.Config{Kind: trace.KindRamp, Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		res, err := predictor.Compare([]string{"ar1", "arp", "analog"}, tr.Values, predictor.DefaultWindow)
		if err != nil {
			t.Fatal(err)
		}
		gain := 100 * (res[0].MAPE - res[2].MAPE) / res[0].MAPE
		t.Logf("seed %d: ar1 %.2f%%, arp %.2f%%, analog %.2f%% (%.1f%% better than ar1)", seed, res[0].MAPE, res[1].MAPE, res[2].MAPE, gain)
		if res[2].MAPE >= res[1].MAPE {
			t.Errorf("seed %d: analog %.2f%% does not beat arp %.2f%%", seed, res[2].MAPE, res[1].MAPE)
		}
		if gain < 25 {
			t.Errorf("seed %d: analog gains %.1f%% over ar1, want ≥ 25%%", seed, gain)
		}
		sum += gain
	}
	if sum/seeds < 30 {
		t.Errorf("mean gain %.1f%% over ar1, want ≥ 30%%", sum/seeds)
	}
}
