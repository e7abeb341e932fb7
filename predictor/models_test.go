package predictor

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"pgregory.net/rapid"
)

func errorsIs(err, target error) bool { return errors.Is(err, target) }

func TestLast(t *testing.T) {
	m, _ := New("last")
	if m.Predict() != 0 {
		t.Error("empty Last predicts non-zero")
	}
	observeAll(t, m, []float64{4, 9})
	if m.Predict() != 9 {
		t.Errorf("Predict = %v, want 9", m.Predict())
	}
}

func TestHoltHandComputed(t *testing.T) {
	tests := []struct {
		name string
		spec string
		xs   []float64
		want float64
	}{
		{name: "empty", spec: "holt", want: 0},
		{name: "one value", spec: "holt", xs: []float64{10}, want: 10},
		{name: "two values set the trend", spec: "holt", xs: []float64{10, 12}, want: 14},
		// ℓ = 0.5·13 + 0.5·(12+2) = 13.5, b = 0.3·1.5 + 0.7·2 = 1.85, û = 15.35.
		{name: "three values", spec: "holt", xs: []float64{10, 12, 13}, want: 15.35},
		// damp 0.5: t0 = 1, ℓ = 0.5·13 + 0.5·13 = 13, b = 0.3·1 + 0.7·1 = 1, û = 13.5.
		{name: "damped", spec: "holt:damp=0.5", xs: []float64{10, 12, 13}, want: 13.5},
		{name: "clamped at zero", spec: "holt", xs: []float64{10, 2}, want: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := New(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			observeAll(t, m, tc.xs)
			if got := m.Predict(); !near(got, tc.want) {
				t.Errorf("Predict = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestHoltFitFollowsLine: a refitted Holt predicts a noise-free line exactly
// and reports α, β from the grid.
func TestHoltFitFollowsLine(t *testing.T) {
	m, _ := New("holt:fit=20")
	for i := range 30 {
		observeAll(t, m, []float64{5 + 2*float64(i)})
	}
	if got := m.Predict(); !near(got, 65) {
		t.Errorf("Predict = %v, want 65", got)
	}
	_, trend, a, b := m.(*Holt).Components()
	if !near(trend, 2) || a < 0.1 || a > 0.9 || b < 0 || b > 0.5 {
		t.Errorf("trend %v alpha %v beta %v", trend, a, b)
	}
}

func TestHoltWintersHandComputed(t *testing.T) {
	m, _ := New("holt-winters:season=2")
	observeAll(t, m, []float64{1, 3}) // ℓ = 2, b = 0, s = [−1, 1]
	if got := m.Predict(); !near(got, 1) {
		t.Fatalf("after one season: Predict = %v, want 1", got)
	}
	observeAll(t, m, []float64{1}) // ℓ = 0.3·2 + 0.7·2 = 2, b = 0, s0 = 0.3·(−1) + 0.7·(−1) = −1
	if got := m.Predict(); !near(got, 3) {
		t.Fatalf("Predict = %v, want 3", got)
	}
}

// TestHoltWintersPeriodic: on an exactly periodic series every prediction
// after the first season is exact.
func TestHoltWintersPeriodic(t *testing.T) {
	season := []float64{5, 9, 14, 9, 5, 2}
	m, _ := New("holt-winters:season=6")
	for i := range 60 {
		x := season[i%6]
		if i >= 6 {
			if got := m.Predict(); !near(got, x) {
				t.Fatalf("step %d: Predict = %v, want %v", i, got, x)
			}
		}
		observeAll(t, m, []float64{x})
	}
}

func TestARpLineAndConstant(t *testing.T) {
	m, _ := New("arp")
	if m.Predict() != 0 {
		t.Error("empty ARp predicts non-zero")
	}
	observeAll(t, m, []float64{4})
	if m.Predict() != 4 {
		t.Errorf("one value: Predict = %v, want 4", m.Predict())
	}
	for i := 1; i < 40; i++ {
		observeAll(t, m, []float64{4 + 3*float64(i)})
	}
	if got := m.Predict(); math.Abs(got-124) > 1e-6 {
		t.Errorf("line: Predict = %v, want 124", got)
	}
	if m.(*ARp).Order() < 1 {
		t.Errorf("line: order %d, want a fitted order", m.(*ARp).Order())
	}
	c, _ := New("arp")
	observeAll(t, c, []float64{2.5, 2.5, 2.5, 2.5, 2.5, 2.5, 2.5, 2.5})
	if c.Predict() != 2.5 {
		t.Errorf("constant: Predict = %v, want 2.5", c.Predict())
	}
}

// TestARpRecoversOrder: on a long AR(2) series BIC picks p = 2 and the
// prediction is close to the true conditional mean.
func TestARpRecoversOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const c, a1, a2 = 20.0, 0.6, 0.3 // mean c/(1−a1−a2) = 200
	m, _ := New("arp:maxp=6,win=800,ic=bic")
	x1, x2 := 200.0, 200.0
	for range 800 {
		x := c + a1*x1 + a2*x2 + r.NormFloat64()
		observeAll(t, m, []float64{x})
		x1, x2 = x, x1
	}
	if got := m.(*ARp).Order(); got != 2 {
		t.Errorf("order = %d, want 2", got)
	}
	want := c + a1*x1 + a2*x2
	if got := m.Predict(); math.Abs(got-want) > 0.3 {
		t.Errorf("Predict = %v, true conditional mean %v", got, want)
	}
}

func TestQuantile7(t *testing.T) {
	s := []float64{1, 2, 3, 4, 5}
	for _, tc := range []struct{ q, want float64 }{{0, 1}, {0.5, 3}, {0.9, 4.6}, {1, 5}, {0.1, 1.4}} {
		if got := quantile7(s, tc.q); !near(got, tc.want) {
			t.Errorf("quantile7(%v) = %v, want %v", tc.q, got, tc.want)
		}
	}
}

// TestMarginCoverage: on i.i.d. noise a q90 margin is under-predicted about
// 10% of the time, the bare model about half the time, and the margin never
// lowers the base prediction.
func TestMarginCoverage(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	xs := make([]float64, 3000)
	for i := range xs {
		xs[i] = 100 + 10*r.NormFloat64()
	}
	bare, err := Backtest("ar1", xs, 100)
	if err != nil {
		t.Fatal(err)
	}
	q, err := Backtest("ar1+q90", xs, 100)
	if err != nil {
		t.Fatal(err)
	}
	if q.UnderRate < 6 || q.UnderRate > 15 {
		t.Errorf("q90 under-prediction rate %.1f%%, want about 10%%", q.UnderRate)
	}
	if bare.UnderRate < 40 {
		t.Errorf("bare under-prediction rate %.1f%%, want about 50%%", bare.UnderRate)
	}
	m, _ := New("holt+q90:win=20")
	base, _ := New("holt")
	for _, x := range xs[:200] {
		observeAll(t, m, []float64{x})
		observeAll(t, base, []float64{x})
		if m.Predict() < base.Predict() {
			t.Fatalf("margin lowered the prediction: %v < %v", m.Predict(), base.Predict())
		}
	}
	if m.(*Margin).Offset() <= 0 {
		t.Error("no margin on noisy data")
	}
}

// TestModelsProperties: for every kind and any valid input, predictions are
// finite and non-negative, and Predict does not change the state.
func TestModelsProperties(t *testing.T) {
	specs := []string{"last", "ar1", "ar1:w=3", "arp", "arp:maxp=2,win=8", "holt", "holt:damp=0.8",
		"holt:fit=10", "holt-winters:season=4", "ar1+q90", "holt+q50:win=5",
		"analog", "analog:m=1,k=1,win=2", "analog:m=3,k=2,win=9+q90", "kalman", "kalman:count=0", "kalman:count=1,forget=0.5"}
	rapid.Check(t, func(t *rapid.T) {
		spec := rapid.SampledFrom(specs).Draw(t, "spec")
		xs := rapid.SliceOfN(rapid.OneOf(rapid.Float64Range(0, 1e6), rapid.Float64Range(0, MaxValue),
			rapid.SampledFrom([]float64{0, MaxValue, 5e-324, 1e-300})), 0, 60).Draw(t, "xs")
		m, err := New(spec)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range xs {
			if err := m.Observe(x); err != nil {
				t.Fatal(err)
			}
			p1, p2 := m.Predict(), m.Predict()
			if p1 != p2 {
				t.Fatalf("Predict not idempotent: %v then %v", p1, p2)
			}
			if math.IsNaN(p1) || math.IsInf(p1, 0) || p1 < 0 {
				t.Fatalf("prediction %v", p1)
			}
		}
	})
}
