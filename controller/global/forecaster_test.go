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
