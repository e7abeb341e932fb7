package global

import (
	"math"
	"testing"
)

func TestModelForecaster(t *testing.T) {
	if _, err := NewModelForecaster("no-such-model"); err == nil {
		t.Fatal("bad spec accepted")
	}
	f, err := NewModelForecaster("ar1")
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range []float64{100, 100, 100, 100} {
		if err := f.Observe("dp/a/b", x); err != nil {
			t.Fatal(err)
		}
	}
	if p := f.Predict("dp/a/b"); math.Abs(p-100) > 1e-9 {
		t.Fatalf("constant series predicted %g", p)
	}
	if p := f.Predict("dp/x/y"); p != 0 {
		t.Fatalf("unknown series predicted %g", p)
	}
	if err := f.Observe("dp/a/b", math.NaN()); err == nil {
		t.Fatal("NaN accepted")
	}
}

// SetHorizon: on a line rising 10 per interval, "last" forecasts the last
// value u (Δ = 0, nothing changes); Holt with β = 1 continues the line (û =
// u + 10, Δ = 10) and the planning load is û + h·Δ; on a falling line the
// interval's start, û − Δ/2, is the larger. Delay series are untouched.
func TestForecasterHorizon(t *testing.T) {
	f, err := NewModelForecaster("holt:alpha=1,beta=1")
	if err != nil {
		t.Fatal(err)
	}
	f.SetHorizon(1.1)
	up, down, delay := SeriesKey(KindDP, "a", "b"), SeriesKey(KindCP, "a", "b"), SeriesKey(KindDelay, "a", "b")
	for i := 0; i < 5; i++ {
		for k, x := range map[string]float64{up: float64(100 + 10*i), down: float64(100 - 10*i), delay: float64(100 + 10*i)} {
			if err := f.Observe(k, x); err != nil {
				t.Fatal(err)
			}
		}
	}
	// last values: up 140 (û 150), down 60 (û 50), delay 140 (û 150)
	if p := f.Predict(up); math.Abs(p-(150+1.1*10)) > 1e-9 {
		t.Fatalf("rising: %g, want 161", p)
	}
	if p := f.Predict(down); math.Abs(p-(50+5)) > 1e-9 {
		t.Fatalf("falling: %g, want 55 (the interval's start)", p)
	}
	if p := f.Predict(delay); math.Abs(p-150) > 1e-9 {
		t.Fatalf("delay: %g, want the model's 150", p)
	}
	f.SetHorizon(0)
	if p := f.Predict(up); math.Abs(p-150) > 1e-9 {
		t.Fatalf("no horizon: %g, want 150", p)
	}
}
