package predictor

import (
	"math"
	"runtime"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// TestAnalogHandComputed checks the analog model against neighbours worked
// out by hand (y = window oldest first, q = last m values, candidate j has
// pattern y[j−m..j−1] and step y[j] − y[j−1]).
func TestAnalogHandComputed(t *testing.T) {
	tests := []struct {
		name string
		spec string
		xs   []float64
		want float64
		used int
	}{
		{name: "no history", spec: "analog", want: 0},
		{name: "one value", spec: "analog:m=2,k=1,win=4", xs: []float64{5}, want: 5},
		{name: "no complete pattern yet", spec: "analog:m=2,k=1,win=4", xs: []float64{5, 7}, want: 7},
		// q = (2); j=1: (1) D=1 step +2; j=2: (3) D=1 step −1. Tie → the more
		// recent j=2: 2 − 1 = 1.
		{name: "tie keeps the recent", spec: "analog:m=1,k=1,win=3", xs: []float64{1, 3, 2}, want: 1, used: 1},
		// Both neighbours: 2 + (2 − 1)/2 = 2.5.
		{name: "mean of k steps", spec: "analog:m=1,k=2,win=3", xs: []float64{1, 3, 2}, want: 2.5, used: 2},
		// win=5 sees y = 2 10 1 3 2.2, q = (2.2): j=1 (2) D=0.04 step +8 → 10.2.
		{name: "old pattern in window", spec: "analog:m=1,k=1,win=5", xs: []float64{2, 10, 1, 3, 2.2}, want: 10.2, used: 1},
		// win=3 keeps 1 3 2.2: j=1 (1) D=1.44 step +2; j=2 (3) D=0.64 step −0.8 → 1.4.
		{name: "old pattern dropped", spec: "analog:m=1,k=1,win=3", xs: []float64{2, 10, 1, 3, 2.2}, want: 1.4, used: 1},
		// q = (1, 2): j=2 (1, 2) D=0 step +1; j=3 (2, 3) D=2; j=4 (3, 2) D=4;
		// j=5 (2, 1) D=2 → 2 + 1 = 3: the pattern that rose before rises again.
		{name: "pattern learns the turn", spec: "analog:m=2,k=1,win=6", xs: []float64{1, 2, 3, 2, 1, 2}, want: 3, used: 1},
		// q = (0.4): j=1 (0.5) D=0.01 step −0.5 → −0.1, clamped to 0.
		{name: "clamped at zero", spec: "analog:m=1,k=1,win=3", xs: []float64{0.5, 0, 0.4}, want: 0, used: 1},
		{name: "constant", spec: "analog", xs: []float64{3, 3, 3, 3, 3, 3, 3}, want: 3, used: 3},
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
			if used, _ := m.(*Analog).Fit(); used != tc.used {
				t.Errorf("neighbours used %d, want %d", used, tc.used)
			}
		})
	}
}

// TestKalmanHandComputed follows the filter step by step (count = 50).
func TestKalmanHandComputed(t *testing.T) {
	m, err := New("kalman")
	if err != nil {
		t.Fatal(err)
	}
	k := m.(*Kalman)
	if m.Predict() != 0 {
		t.Fatal("empty filter predicts non-zero")
	}
	observeAll(t, m, []float64{10})
	if m.Predict() != 10 {
		t.Fatalf("one value: Predict = %v, want 10", m.Predict())
	}
	// u1 = 12: R = 10/50 = 0.2, ℓ = 12, b = 2, P = [[.2, .2], [.2, .4]];
	// prior ℓ̂ = 14, P11 = 1, P12 = 0.6, P22 = 0.4 + 0.2q.
	observeAll(t, m, []float64{12})
	if !near(m.Predict(), 14) {
		t.Fatalf("two values: Predict = %v, want 14", m.Predict())
	}
	// u2 = 13: R = 14/50 = 0.28, v = −1, S = 1.28, K = (1, 0.6)/1.28:
	// ℓ = 14 − 0.78125, b = 2 − 0.46875, ℓ̂ = 14.75 for every q, equal
	// likelihoods → the first filter.
	observeAll(t, m, []float64{13})
	if q, _, trend := k.Filter(); !near(m.Predict(), 14.75) || q != 1e-4 || !near(trend, 1.53125) {
		t.Fatalf("three values: Predict = %v (want 14.75), q %v (want 1e-4), trend %v (want 1.53125)", m.Predict(), q, trend)
	}
	// Posterior P = [[0.21875, 0.13125], [0.13125, 0.11875 + 0.2q]], prior
	// P11 = 0.6 + 0.2q, P12 = 0.25 + 0.2q. u3 = 13: R = 14.75/50 = 0.295,
	// v = −1.75, S = 0.895 + 0.2q; ½(v²/S + ln S) falls with S up to
	// S = v² = 3.0625, so the largest q = 10 wins: S = 2.895.
	observeAll(t, m, []float64{13})
	S := 2.895
	l := 14.75 + (2.6/S)*(-1.75)
	b := 1.53125 + (2.25/S)*(-1.75)
	if q, _, trend := k.Filter(); q != 10 || !near(trend, b) || !near(m.Predict(), l+b) {
		t.Fatalf("four values: q %v (want 10), trend %v (want %v), Predict %v (want %v)", q, trend, b, m.Predict(), l+b)
	}
}

// TestKalmanNoiseModes: with count = 0 the filter is scale-free up to the
// floor (a series and 1000 times it give predictions in the same ratio),
// with count = 50 it is not (the Poisson variance grows like the level, not
// its square).
func TestKalmanNoiseModes(t *testing.T) {
	xs := []float64{5, 6, 8, 7, 9, 12, 11, 13, 12, 10, 9, 9.5, 8}
	run := func(spec string, scale float64) float64 {
		m, _ := New(spec)
		for _, x := range xs {
			observeAll(t, m, []float64{x * scale})
		}
		return m.Predict()
	}
	if a, b := run("kalman:count=0", 1), run("kalman:count=0", 1000); !near(b, 1000*a) {
		t.Errorf("count=0: %v vs %v/1000: not scale-free", a, b)
	}
	if a, b := run("kalman", 1), run("kalman", 1e-3); near(b, 1e-3*a) {
		t.Errorf("count=50: %v vs %v·1000: the level-dependent noise has no effect", a, b)
	}
	c, _ := New("kalman:count=0")
	observeAll(t, c, []float64{0, 0, 0, 0, 0})
	if c.Predict() != 0 {
		t.Errorf("zeros: Predict = %v", c.Predict())
	}
}

// TestNewModelsFollowLines: both new models continue any straight line
// exactly once they have enough history (analog: m+1 values, kalman: 2).
func TestNewModelsFollowLines(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		spec := rapid.SampledFrom([]string{"analog", "analog:m=1,k=3,win=10", "kalman", "kalman:count=0,forget=0.5"}).Draw(t, "spec")
		a := rapid.Float64Range(0, 1e4).Draw(t, "a")
		slope := rapid.Float64Range(0, 100).Draw(t, "slope")
		n := rapid.IntRange(6, 80).Draw(t, "n")
		m, err := New(spec)
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			if err := m.Observe(a + slope*float64(i)); err != nil {
				t.Fatal(err)
			}
		}
		want := a + slope*float64(n)
		if got := m.Predict(); math.Abs(got-want) > 1e-9*max(1, want) {
			t.Fatalf("Predict = %v, want %v", got, want)
		}
	})
}

// TestNewModelsNoFuture: a prediction depends only on the values the model
// itself observed: two models fed interleaved, different series predict what
// each predicts alone (no state shared between instances, e.g. a package
// scratch), and the analog model forgets everything older than its window.
func TestNewModelsNoFuture(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		spec := rapid.SampledFrom([]string{"analog:m=2,k=2,win=8", "kalman", "kalman:count=0"}).Draw(t, "spec")
		xs := rapid.SliceOfN(rapid.Float64Range(0, 100), 12, 40).Draw(t, "xs")
		ys := rapid.SliceOfN(rapid.Float64Range(0, 100), len(xs), len(xs)).Draw(t, "ys")
		alone := func(vs []float64) []float64 {
			m, _ := New(spec)
			out := make([]float64, len(vs))
			for i, v := range vs {
				_ = m.Observe(v)
				out[i] = m.Predict()
			}
			return out
		}
		px, py := alone(xs), alone(ys)
		mx, _ := New(spec)
		my, _ := New(spec)
		for i := range xs {
			_ = mx.Observe(xs[i])
			_ = my.Observe(ys[i])
			if mx.Predict() != px[i] || my.Predict() != py[i] {
				t.Fatalf("step %d: interleaved %v, %v; alone %v, %v", i, mx.Predict(), my.Predict(), px[i], py[i])
			}
		}
		if spec == "analog:m=2,k=2,win=8" {
			// Only the last 8 values count: a different older past gives the same prediction.
			m3, _ := New(spec)
			for _, v := range append([]float64{77, 0, 3}, xs[len(xs)-8:]...) {
				_ = m3.Observe(v)
			}
			if m3.Predict() != px[len(xs)-1] {
				t.Fatalf("window of 8: %v vs %v", m3.Predict(), px[len(xs)-1])
			}
		}
	})
}

func TestAnalogKalmanExplain(t *testing.T) {
	a, _ := New("analog:m=1,k=2,win=3")
	k, _ := New("kalman")
	for _, m := range []Model{a, k} {
		if e := m.(Explainer).Explain(); !strings.Contains(e, "no history") {
			t.Errorf("empty %s explains %q", m.Name(), e)
		}
	}
	observeAll(t, a, []float64{1, 3, 2})
	if e := a.(Explainer).Explain(); !strings.Contains(e, "2 nearest of 2 patterns") || !strings.Contains(e, "→ 2.5") {
		t.Errorf("analog explains %q", e)
	}
	observeAll(t, k, []float64{10, 12, 13, 13})
	if e := k.(Explainer).Explain(); !strings.Contains(e, "q=10 ") || !strings.Contains(e, g(k.Predict())) {
		t.Errorf("kalman explains %q", e)
	}
}

// TestBankParallelRound: a bank large enough to split its round over
// goroutines (GOMAXPROCS forced to 3, uneven chunks) still gives exactly the
// predictions of one model per series.
func TestBankParallelRound(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(3))
	const n = 3*parallelMin + 5
	for _, spec := range []string{"analog:m=2,k=2,win=6", "kalman", "auto:win=4+q90:win=5"} {
		t.Run(spec, func(t *testing.T) {
			b, err := NewBank(spec, n)
			if err != nil {
				t.Fatal(err)
			}
			models := make([]Model, n)
			for i := range models {
				models[i], _ = New(spec)
			}
			vals, out := make([]float64, n), make([]float64, n)
			for r := range 9 {
				for i := range vals {
					vals[i] = float64((i*7+r*13)%31) + float64(i%5)/4
					_ = models[i].Observe(vals[i])
				}
				if err := b.Observe(vals); err != nil {
					t.Fatal(err)
				}
				if err := b.Predict(out); err != nil {
					t.Fatal(err)
				}
				for i, m := range models {
					if out[i] != m.Predict() {
						t.Fatalf("round %d series %d: bank %v, model %v", r, i, out[i], m.Predict())
					}
				}
			}
		})
	}
}
