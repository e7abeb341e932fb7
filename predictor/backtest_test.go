package predictor

import (
	"math"
	"strings"
	"testing"
)

func TestBacktestHandComputed(t *testing.T) {
	// "last" on 1 2 4 0 5, warm-up 1: predictions 1 2 4 0 for 2 4 0 5.
	// errors 1 2 −4 5; APE over u > 0: 0.5 0.5 1 → MAPE 66.67 (3 points);
	// RMSE = sqrt((1+4+16+25)/4); under: 3 of 4; shortfall (1+2+5)/11.
	r, err := Backtest("last", []float64{1, 2, 4, 0, 5}, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := Result{Model: "last", Points: 4, MAPE: 200.0 / 3, MAPEPoints: 3, RMSE: math.Sqrt(46.0 / 4), UnderRate: 75, Shortfall: 800.0 / 11}
	if r.Model != want.Model || r.Points != want.Points || r.MAPEPoints != want.MAPEPoints || !near(r.MAPE, want.MAPE) ||
		!near(r.RMSE, want.RMSE) || !near(r.UnderRate, want.UnderRate) || !near(r.Shortfall, want.Shortfall) {
		t.Errorf("got %+v\nwant %+v", r, want)
	}
	z, err := Backtest("last", []float64{0, 0, 0}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !math.IsNaN(z.MAPE) || z.MAPEPoints != 0 || z.RMSE != 0 || z.Shortfall != 0 {
		t.Errorf("all zeros: %+v", z)
	}
}

func TestBacktestErrors(t *testing.T) {
	for _, tc := range []struct {
		name, spec string
		xs         []float64
		warmup     int
		err        string
	}{
		{"bad spec", "nope", []float64{1, 2}, 0, "unknown model kind"},
		{"negative warm-up", "ar1", []float64{1, 2}, -1, "warm-up -1"},
		{"nothing scored", "ar1", []float64{1, 2}, 2, "nothing to score"},
		{"bad value", "ar1", []float64{1, 2, -3}, 0, "value 2: invalid value: -3 is negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Backtest(tc.spec, tc.xs, tc.warmup)
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("error = %v, want %q", err, tc.err)
			}
		})
	}
	if _, err := Compare([]string{"ar1", "bad"}, []float64{1, 2, 3}, 0); err == nil {
		t.Error("Compare accepted a bad spec")
	}
	res, err := Compare([]string{"ar1", "last"}, []float64{1, 2, 3}, 0)
	if err != nil || len(res) != 2 || res[1].Model != "last" {
		t.Errorf("Compare = %v, %v", res, err)
	}
}
