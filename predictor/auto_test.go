package predictor_test

import (
	"math"
	"testing"

	"github.com/ims-orch/ims-orch/predictor"
)

// Auto is never worse than AR(1) by more than 2 % MAPE over a day
// (1728 intervals of 50 s, or the whole trace when shorter) of any shipped
// trace, and it beats AR(1) by at least 15 % where a trend or level model
// is clearly better (ramps, steps, bursts).
func TestAutoNeverMuchWorseThanAR1(t *testing.T) {
	for _, tc := range []struct {
		file    string
		minGain float64 // % MAPE gain over ar1 (negative: the allowed loss)
	}{
		{"ramp.csv", 15}, {"ramp-x100.csv", 40}, {"step.csv", 15}, {"burst.csv", 15},
		{"diurnal.csv", -2}, {"diurnal-x100.csv", 25}, {"sine.csv", -2},
	} {
		xs := loadTrace(t, tc.file)
		// every day of the trace
		for start := 0; start < len(xs); start += 1728 {
			day := xs[start:min(len(xs), start+1728)]
			if len(day) < 100 {
				continue
			}
			res, err := predictor.Compare([]string{"ar1", "auto"}, day, predictor.DefaultWindow)
			if err != nil {
				t.Fatal(err)
			}
			gain := 100 * (res[0].MAPE - res[1].MAPE) / res[0].MAPE
			if gain < tc.minGain {
				t.Errorf("%s day from %d: auto MAPE %.3f vs ar1 %.3f (gain %.1f %%, want ≥ %g %%)", tc.file, start, res[1].MAPE, res[0].MAPE, gain, tc.minGain)
			}
		}
	}
}

// After a spike ends, a trend model extrapolates the fall and forecasts 0
// (a planner would scale everything in); Auto's collapse guard keeps at
// least half the last value. A real outage (last value 0) still gives 0.
func TestAutoCollapseGuard(t *testing.T) {
	xs := []float64{}
	for i := 0; i < 40; i++ {
		xs = append(xs, 100)
	}
	xs = append(xs, 500, 1000, 1500, 0, 100) // a spike, a dropout, back to the level
	k, _ := predictor.New("kalman")
	a, _ := predictor.New("auto")
	a0, _ := predictor.New("auto:guard=0")
	for _, x := range xs {
		for _, m := range []predictor.Model{k, a, a0} {
			if err := m.Observe(x); err != nil {
				t.Fatal(err)
			}
		}
	}
	if p := k.Predict(); p > 1 {
		t.Fatalf("kalman after the spike: %.1f; this test wants the collapse case (0)", p)
	}
	if p := a0.Predict(); p > 1 {
		t.Fatalf("auto without the guard: %.1f, want the candidate's collapse 0", p)
	}
	if p := a.Predict(); p < 50 {
		t.Fatalf("auto after the spike: %.1f, want ≥ 0.5 × the last value 100", p)
	}
	if e := a.(predictor.Explainer).Explain(); e == "" {
		t.Fatal("no explanation")
	}
	// outage: the series drops to 0 and stays there
	for i := 0; i < 5; i++ {
		if err := a.Observe(0); err != nil {
			t.Fatal(err)
		}
	}
	if p := a.Predict(); p > 5 {
		t.Fatalf("auto during an outage: %.3f, want ≈ 0", p)
	}
	if a0.Name() != "auto:guard=0" {
		t.Fatalf("name %q", a0.Name())
	}
	if _, err := predictor.New("auto:guard=2"); err == nil {
		t.Fatal("guard=2 accepted")
	}
}

// Auto switches to the candidate that forecasts best: on a straight line
// the trend models are exact and AR(1) is not.
func TestAutoSelectsByRollingBacktest(t *testing.T) {
	m, _ := predictor.New("auto")
	a := m.(*predictor.Auto)
	if a.Chosen() != "ar1" {
		t.Fatalf("chosen %s before any history, want ar1", a.Chosen())
	}
	for i := 0; i < 30; i++ {
		if err := a.Observe(float64(10 + 5*i)); err != nil {
			t.Fatal(err)
		}
	}
	if c := a.Chosen(); c == "ar1" || c == "last" {
		t.Fatalf("chosen %s on a straight line, want a trend model", c)
	}
	if p := a.Predict(); math.Abs(p-160) > 1 {
		t.Fatalf("prediction %.3f on the line 10+5t at t=30, want 160", p)
	}
}

// A +q90 forecast covers 88–92 % of the steps of every shipped trace
// (split-conformal margin; `predict backtest` reports the coverage).
func TestQuantileCoverageCalibrated(t *testing.T) {
	for _, f := range []string{"ramp.csv", "ramp-x100.csv", "diurnal.csv", "diurnal-x100.csv", "sine.csv", "step.csv", "burst.csv"} {
		xs := loadTrace(t, f)
		res, err := predictor.Compare([]string{"ar1+q90", "holt+q90", "kalman+q90", "auto+q90"}, xs, predictor.DefaultWindow)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			if r.Nominal != 90 || r.Coverage < 88 || r.Coverage > 92 {
				t.Errorf("%s %s: coverage %.1f %% (nominal %g), want 88–92", f, r.Model, r.Coverage, r.Nominal)
			}
		}
	}
}
