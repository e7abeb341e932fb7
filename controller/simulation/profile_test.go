package simulation

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/global"
	"github.com/ims-orch/ims-orch/controller/strategy"
	"github.com/ims-orch/ims-orch/drivers/sim/traffic"
)

// fixedForecaster plans every series at value.
type fixedForecaster struct{ value float64 }

func (f fixedForecaster) Observe(map[string]float64) error { return nil }
func (f fixedForecaster) Predict(keys []string) map[string]global.Forecast {
	out := map[string]global.Forecast{}
	for _, k := range keys {
		out[k] = global.Forecast{Value: f.value, Mean: f.value, Model: "fixed", Rule: global.RuleHorizon}
	}
	return out
}

// profileAt returns a one-DC profile forecaster over rates (100 s each,
// step) whose clock is now after the start, the inner forecaster planning
// 120 and the interval just observed averaging 100.
func profileAt(t *testing.T, rates []float64, now time.Duration) *profileForecaster {
	return profilePlanning(t, rates, now, 120)
}

// profilePlanning is profileAt with the inner forecaster planning plan.
func profilePlanning(t *testing.T, rates []float64, now time.Duration, plan float64) *profileForecaster {
	t.Helper()
	start := time.Unix(1000, 0)
	clk := clock.NewVirtual(start)
	clk.Advance(now)
	s := &traffic.Schedule{ChangeInterval: 100 * time.Second, Shape: traffic.Step, DCs: []traffic.DCSchedule{{DC: 0, Rates: rates}}}
	f := newProfileForecaster(fixedForecaster{plan}, ProfilePrior{Profile: s, CallDuration: 60 * time.Second, Window: 80 * time.Second, Interval: 50 * time.Second}, clk, start, []string{"a"})
	if err := f.Observe(map[string]float64{"dp/a/a": 100, "cp/a/a": 100, "delay/a/a": 100}); err != nil {
		t.Fatal(err)
	}
	return f
}

// A rise of the profile in the planning window raises the plan a quarter
// of the way to the observed average × the profile's rise; by hand, at 150 s with
// rates 10, 10, 20: the loads over (100, 150] are 60 s × 10 = 600 calls
// (×2: the pair's two directions), at 230 s 29 s × 10 + 31 s × 20 = 910,
// ratio 910 / 600; plan 120 + ¼ (100 · 910/600 − 120).
func TestProfilePriorByHand(t *testing.T) {
	f := profileAt(t, []float64{10, 10, 20}, 150*time.Second)
	got := f.Predict([]string{"dp/a/a", "cp/a/a", "delay/a/a"})
	want := 120 + 0.25*(100*910.0/600-120) // ProfileWeight ¼
	for _, k := range []string{"dp/a/a", "cp/a/a"} {
		if fc := got[k]; abs(fc.Value-want) > 1e-9 || fc.Rule != global.RuleProfile || fc.Mean != 120 {
			t.Fatalf("%s: %+v, want value %v by rule %q", k, fc, want, global.RuleProfile)
		}
	}
	if fc := got["delay/a/a"]; fc.Value != 120 || fc.Rule != global.RuleHorizon {
		t.Fatalf("delay series changed: %+v", fc)
	}
}

// A flat or falling profile, or a rise the forecast already plans for,
// leaves the forecast.
func TestProfilePriorLeaves(t *testing.T) {
	for name, c := range map[string]struct {
		rates []float64
		now   time.Duration
	}{
		"flat":            {[]float64{10, 10, 10}, 150 * time.Second},
		"falling":         {[]float64{10, 10, 5}, 150 * time.Second},
		"rise beyond":     {[]float64{10, 10, 10, 20}, 150 * time.Second},
		"small rise":      {[]float64{10, 10, 11}, 150 * time.Second},
		"no profile load": {[]float64{0, 0, 10}, 100 * time.Second},
	} {
		f := profileAt(t, c.rates, c.now)
		if fc := f.Predict([]string{"dp/a/a"})["dp/a/a"]; fc.Value != 120 || fc.Rule != global.RuleHorizon {
			t.Errorf("%s: %+v, want the forecast's 120", name, fc)
		}
	}
}

// A falling profile never raises a plan, even one below the observed
// average × its fall (10 → 9: ratio 0.95, 95 > a plan of 80).
func TestProfilePriorNeverRaisesOnAFall(t *testing.T) {
	f := profilePlanning(t, []float64{10, 10, 9}, 150*time.Second, 80)
	if fc := f.Predict([]string{"dp/a/a"})["dp/a/a"]; fc.Value != 80 || fc.Rule != global.RuleHorizon {
		t.Fatalf("%+v, want the forecast's 80", fc)
	}
}

func abs(x float64) float64 { return max(x, -x) }

// A run whose experiment declares profilePrior (an analysis option, off in
// the bundled daily experiments: the rule lives only in the simulator)
// plans some round with the profile's rule; without it none.
func TestProfilePriorRun(t *testing.T) {
	e := short(load(t, "daily-audio.yaml"), 600*time.Second)
	if e.ProfilePrior {
		t.Fatal("daily-audio.yaml declares profilePrior: the bundled experiments run without it")
	}
	data, err := os.ReadFile(expDir + "daily-audio.yaml")
	if err != nil {
		t.Fatal(err)
	}
	on, err := ParseExperiment(append(data, []byte("\nprofilePrior: true\n")...))
	if err != nil {
		t.Fatal(err)
	}
	if !on.ProfilePrior {
		t.Fatal("profilePrior: true not read")
	}
	e.ProfilePrior = true
	count := func(e *Experiment) int {
		r, err := Run(context.Background(), e, Options{Strategy: strategy.Hybrid, Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, rec := range r.sys.Engine.Records() {
			for _, fc := range rec.Forecasts {
				if fc.Rule == global.RuleProfile {
					n++
				}
			}
		}
		return n
	}
	if n := count(e); n == 0 {
		t.Fatal("no round planned by the profile")
	}
	off := *e
	off.ProfilePrior = false
	if n := count(&off); n != 0 {
		t.Fatalf("%d series planned by the profile without profilePrior", n)
	}
}
