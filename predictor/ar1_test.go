package predictor

import (
	"math"
	"testing"
)

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*max(1, math.Abs(b)) }

func observeAll(t *testing.T, m Model, xs []float64) {
	t.Helper()
	for i, x := range xs {
		if err := m.Observe(x); err != nil {
			t.Fatalf("observe %d (%v): %v", i, x, err)
		}
	}
}

// TestAR1HandComputed checks Eq. (1) against values worked out by hand.
func TestAR1HandComputed(t *testing.T) {
	tests := []struct {
		name    string
		spec    string
		xs      []float64
		mu, phi float64
		want    float64
	}{
		{name: "no history", spec: "ar1", xs: nil, want: 0},
		{name: "one value", spec: "ar1", xs: []float64{7}, mu: 7, want: 7},
		{name: "two values: phi 0, the mean", spec: "ar1", xs: []float64{2, 4}, mu: 3, want: 3},
		// μ = 2.5, deviations −1.5 −0.5 0.5 1.5: num = 0.75 − 0.25 + 0.75 = 1.25,
		// den = 2.25 + 0.25 + 0.25 = 2.75, φ = 5/11, û = 2.5 + 5/11·1.5 = 3.1818…
		{name: "short ramp", spec: "ar1", xs: []float64{1, 2, 3, 4}, mu: 2.5, phi: 5.0 / 11, want: 2.5 + 7.5/11},
		// Only the last W = 3 values (10, 0, 20) count: μ = 10, deviations 0 −10 10:
		// num = 0·(−10) + (−10)·10 = −100, den = 0 + 100 → φ = −1 → clamped to −0.99;
		// û = 10 − 0.99·10 = 0.1.
		{name: "window and clamp", spec: "ar1:w=3", xs: []float64{1000, 10, 0, 20}, mu: 10, phi: -0.99, want: 0.1},
		// 1 3 1 3: μ = 2, deviations −1 1 −1 1, num = −3, den = 3, φ = −1 → −0.99,
		// û = 2 − 0.99·1 = 1.01.
		{name: "alternating", spec: "ar1", xs: []float64{1, 3, 1, 3}, mu: 2, phi: -0.99, want: 1.01},
		// 1 2 4 8: μ = 3.75, deviations −2.75 −1.75 0.25 4.25: num = 4.8125 − 0.4375 + 1.0625 = 5.4375,
		// den = 7.5625 + 3.0625 + 0.0625 = 10.6875, φ = 0.508772; û = 3.75 + φ·4.25 = 5.912281.
		{name: "growth", spec: "ar1", xs: []float64{1, 2, 4, 8}, mu: 3.75, phi: 5.4375 / 10.6875, want: 3.75 + 4.25*5.4375/10.6875},
		// phimax bounds φ: 0 0 0 9 (W=4): μ = 2.25, devs −2.25 −2.25 −2.25 6.75:
		// num = 5.0625 + 5.0625 − 15.1875 = −5.0625, den = 15.1875, φ = −1/3;
		// with phimax 0.2: φ = −0.2, û = 2.25 − 0.2·6.75 = 0.9.
		{name: "phimax", spec: "ar1:phimax=0.2", xs: []float64{0, 0, 0, 9}, mu: 2.25, phi: -0.2, want: 0.9},
		{name: "constant", spec: "ar1", xs: []float64{0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1}, mu: 0.1, want: 0.1},
		{name: "zeros", spec: "ar1", xs: []float64{0, 0, 0, 0, 0}, want: 0},
		// Negative extrapolation is clamped: 30 0 0 0 30 0 (W=10): μ = 10, devs 20 −10 −10 −10 20 −10:
		// num = −200 + 100 + 100 − 200 − 200 = −400, den = 400+100+100+100+400 = 1100,
		// φ = −4/11, û = 10 − 4/11·(−10) = 13.64 (positive here); 0 0 0 0 0 0 0 0 0 40:
		// μ = 4, num = 8·16 + 4·(−36) = −16, den = 9·16 = 144, φ = −1/9, û = 4 − 36/9 = 0.
		{name: "alternating spikes", spec: "ar1", xs: []float64{30, 0, 0, 0, 30, 0}, mu: 10, phi: -4.0 / 11, want: 10 + 40.0/11},
		{name: "spike at the end", spec: "ar1", xs: []float64{0, 0, 0, 0, 0, 0, 0, 0, 0, 40}, mu: 4, phi: -1.0 / 9, want: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := New(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			observeAll(t, m, tc.xs)
			if got := m.Predict(); !near(got, tc.want) {
				t.Errorf("Predict = %.12g, want %.12g", got, tc.want)
			}
			mu, phi := m.(*AR1).Params()
			if !near(mu, tc.mu) || !near(phi, tc.phi) {
				t.Errorf("Params = (μ %.12g, φ %.12g), want (%.12g, %.12g)", mu, phi, tc.mu, tc.phi)
			}
		})
	}
}

func TestNewAR1(t *testing.T) {
	if _, err := NewAR1(1, 0.5); err == nil {
		t.Error("w=1 accepted")
	}
	if _, err := NewAR1(10, 1); err == nil {
		t.Error("phimax=1 accepted")
	}
	m, err := NewAR1(10, 0.99)
	if err != nil {
		t.Fatal(err)
	}
	if m.Name() != "ar1:phimax=0.99,w=10" {
		t.Errorf("Name = %q", m.Name())
	}
}

// TestObserveRejects checks every kind rejects NaN, ±Inf and negatives and
// keeps its state.
func TestObserveRejects(t *testing.T) {
	specs := []string{"last", "ar1", "arp", "holt", "holt:fit=20", "holt-winters:season=3", "holt+q90", "ar1+q75:win=10"}
	bad := []float64{math.NaN(), math.Inf(1), math.Inf(-1), -1, -1e-300, MaxValue * 1.0001, math.MaxFloat64}
	for _, spec := range specs {
		t.Run(spec, func(t *testing.T) {
			m, err := New(spec)
			if err != nil {
				t.Fatal(err)
			}
			observeAll(t, m, []float64{3, 5, 4, 6, 5, 7})
			before := m.Predict()
			for _, x := range bad {
				err := m.Observe(x)
				if err == nil || !errorsIs(err, ErrInvalidValue) {
					t.Errorf("Observe(%v) = %v, want ErrInvalidValue", x, err)
				}
			}
			if after := m.Predict(); after != before {
				t.Errorf("prediction changed after rejected values: %v → %v", before, after)
			}
		})
	}
}
