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
var pointModels = []string{"last", "ar1", "arp", "holt", "holt:fit=120", "holt-winters:season=1728"}

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
		{file: "ramp-x100.csv", best: "arp", minGain: 30},
		{file: "diurnal-x100.csv", best: "holt:fit=120", minGain: 30},
		// Paper-size pairs (scale 1): Poisson noise dominates. AR(p) still
		// gains > 20 % on the ramps; on the diurnal trace the noise floor
		// (TestNoiseFloor) leaves no room for 30 % and AR(1) stays best.
		{file: "ramp.csv", best: "arp", minGain: 20},
		{file: "diurnal.csv", best: "ar1", minGain: 0},
		{file: "step.csv", best: "last", minGain: 20},
		{file: "burst.csv", best: "last", minGain: 20},
		{file: "sine.csv", best: "ar1", minGain: 0},
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
