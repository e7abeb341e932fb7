package system

import (
	"math"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/strategy"
	"github.com/ims-orch/ims-orch/placement"
	"github.com/ims-orch/ims-orch/predictor"
)

// TestGlobalControllerForecastsWithBank: the round engine the system builds
// forecasts through predictor.Bank with the policy's spec. With "auto+q90"
// every round's forecast of every series equals a single-series model fed
// the same interval averages, and the round record names what only the
// bank's online selection and conformal margin know: the candidate chosen
// per series and the q90 margin.
func TestGlobalControllerForecastsWithBank(t *testing.T) {
	const spec = "auto+q90:win=5"
	w := newWorldWith(t, strategy.Hybrid, 0, 4, func(c *Config, _ *clock.Virtual) { c.Predictor = spec })
	w.load = func(at time.Duration, p placement.Pair) float64 {
		s := at.Seconds()
		if p.Entry == 0 && p.Exit == 1 {
			return 20 + 0.2*s // a ramp: trend models win
		}
		return 10 + float64((int(s)/50*7+p.Entry*3+p.Exit)%11) // a jumpy level
	}
	w.run(900 * time.Second)
	if got := w.sys.Forecaster().Spec(); got != spec {
		t.Fatalf("forecaster spec %q, want %q", got, spec)
	}
	models := map[string]predictor.Model{}
	chosen, margins, checked := map[string]bool{}, 0, 0
	for _, rec := range w.sys.Engine.Records() {
		for k, x := range rec.Actual {
			if models[k] == nil {
				models[k], _ = predictor.New(spec)
			}
			if err := models[k].Observe(x); err != nil {
				t.Fatal(err)
			}
		}
		for k, v := range rec.Predicted {
			m := models[k].(*predictor.Margin)
			if math.Abs(v-m.Predict()) > 1e-9*max(1, v) {
				t.Fatalf("round %d %s: predicted %g, a single %s model %g", rec.Round, k, v, spec, m.Predict())
			}
			fc, ok := rec.Forecasts[k]
			want := m.Base().(*predictor.Auto).Chosen()
			if !ok || fc.Value != v || fc.Model != want || math.Abs(fc.Margin-m.Offset()) > 1e-9 {
				t.Fatalf("round %d %s: forecast %+v (recorded %v), want value %g model %s margin %g", rec.Round, k, fc, ok, v, want, m.Offset())
			}
			chosen[fc.Model] = true
			if fc.Margin > 0 {
				margins++
			}
			checked++
		}
	}
	if checked < 100 || margins == 0 || len(chosen) < 2 {
		t.Fatalf("checked %d forecasts, %d with a margin, candidates chosen %v", checked, margins, chosen)
	}
}
