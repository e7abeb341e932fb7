package predictor

import (
	"math"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// TestBankMatchesModels: a bank gives exactly the predictions of one model
// per series, for the flat forms and the per-series fallback.
func TestBankMatchesModels(t *testing.T) {
	specs := []string{"ar1", "ar1:w=3,phimax=0.5", "holt", "holt:alpha=0.2,beta=0.1,damp=0.9", "last",
		"arp:maxp=2,win=10", "holt+q90:win=5", "holt-winters:season=3", "holt:fit=8",
		"analog", "analog:m=1,k=2,win=3", "analog:m=2,k=3,win=7", "kalman", "kalman:count=0,forget=0.7", "kalman+q90:win=5", "ar1+q90:win=5", "last+q90:win=5", "ar1:w=3+q75:win=6"}
	rapid.Check(t, func(t *rapid.T) {
		spec := rapid.SampledFrom(specs).Draw(t, "spec")
		n := rapid.IntRange(0, 6).Draw(t, "n")
		rounds := rapid.IntRange(0, 25).Draw(t, "rounds")
		b, err := NewBank(spec, n)
		if err != nil {
			t.Fatal(err)
		}
		models := make([]Model, n)
		for i := range models {
			models[i], _ = New(spec)
		}
		out := make([]float64, n)
		for r := range rounds {
			vals := rapid.SliceOfN(rapid.SampledFrom([]float64{0, 1, 2.5, 7, 100, 1e-3, 33.3}), n, n).Draw(t, "vals")
			if err := b.Observe(vals); err != nil {
				t.Fatal(err)
			}
			for i, m := range models {
				_ = m.Observe(vals[i])
			}
			if err := b.Predict(out); err != nil {
				t.Fatal(err)
			}
			for i, m := range models {
				if want := m.Predict(); out[i] != want && !(math.Abs(out[i]-want) <= 1e-12*max(1, want)) {
					t.Fatalf("round %d series %d: bank %v, model %v", r, i, out[i], want)
				}
			}
		}
		if b.Rounds() != rounds || b.Len() != n || b.Name() != models0Name(spec) {
			t.Fatalf("Rounds %d Len %d Name %q", b.Rounds(), b.Len(), b.Name())
		}
	})
}

func models0Name(spec string) string {
	m, _ := New(spec)
	return m.Name()
}

func TestBankFlatForms(t *testing.T) {
	for spec, bytes := range map[string]int{"ar1": 80, "ar1:w=4": 32, "holt": 16, "last": 8, "arp": 0, "holt+q90": 16 + 8*50,
		"analog": 1200, "analog:win=20": 160, "kalman": 304, "kalman+q90": 304 + 8*50, "ar1+q90:win=20": 80 + 8*20, "holt:fit=5+q90": 0} {
		b, err := NewBank(spec, 3)
		if err != nil {
			t.Fatal(err)
		}
		if b.BytesPerSeries() != bytes {
			t.Errorf("%s: BytesPerSeries %d, want %d", spec, b.BytesPerSeries(), bytes)
		}
		if (b.Model(0) == nil) != (bytes != 0) {
			t.Errorf("%s: Model(0) = %v", spec, b.Model(0))
		}
	}
}

// TestBankRejectsRound: a bad value or a wrong length rejects the whole round
// and names the series.
func TestBankRejectsRound(t *testing.T) {
	for _, spec := range []string{"ar1", "holt", "last", "arp", "analog", "kalman"} {
		t.Run(spec, func(t *testing.T) {
			b, _ := NewBank(spec, 3)
			if err := b.Observe([]float64{1, 2, 3}); err != nil {
				t.Fatal(err)
			}
			before := make([]float64, 3)
			_ = b.Predict(before)
			for _, tc := range []struct {
				vals []float64
				err  string
			}{
				{[]float64{1, math.NaN(), 3}, "series 1: invalid value: NaN"},
				{[]float64{5, 5, -2}, "series 2: invalid value: -2 is negative"},
				{[]float64{math.Inf(1), 5, 5}, "series 0: invalid value: +Inf is not finite"},
				{[]float64{1, 2}, "got 2 values for 3 series"},
			} {
				err := b.Observe(tc.vals)
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("Observe(%v) = %v, want %q", tc.vals, err, tc.err)
				}
			}
			after := make([]float64, 3)
			_ = b.Predict(after)
			for i := range after {
				if after[i] != before[i] {
					t.Fatalf("state changed by a rejected round: %v → %v", before, after)
				}
			}
			if b.Rounds() != 1 {
				t.Errorf("Rounds = %d, want 1", b.Rounds())
			}
			if err := b.Predict(make([]float64, 4)); err == nil {
				t.Error("Predict with a wrong length accepted")
			}
		})
	}
	if _, err := NewBank("ar1", -1); err == nil {
		t.Error("negative size accepted")
	}
	if _, err := NewBank("nope", 1); err == nil {
		t.Error("bad spec accepted")
	}
	b, _ := NewBank("ar1", 2)
	out := []float64{9, 9}
	_ = b.Predict(out)
	if out[0] != 0 || out[1] != 0 {
		t.Errorf("empty bank predicts %v", out)
	}
}

func TestExplain(t *testing.T) {
	for _, spec := range []string{"ar1", "holt", "last", "arp", "holt-winters:season=2", "holt+q90",
		"analog:m=2,k=2,win=5", "kalman", "kalman:count=0"} {
		b, _ := NewBank(spec, 2)
		m, _ := New(spec)
		if b.BytesPerSeries() > 0 && !strings.Contains(b.Explain(0), "no history") {
			t.Errorf("%s: empty bank explains %q", spec, b.Explain(0))
		}
		for _, v := range []float64{1, 2, 4, 3, 5, 6} {
			_ = b.Observe([]float64{v, 10 * v})
			_ = m.Observe(10 * v)
		}
		if got, want := b.Explain(1), m.(Explainer).Explain(); got != want {
			t.Errorf("%s: bank explains %q, model %q", spec, got, want)
		}
		if !strings.Contains(b.Explain(1), g(m.Predict())) {
			t.Errorf("%s: %q does not name the prediction %v", spec, b.Explain(1), m.Predict())
		}
		if !strings.Contains(b.Explain(5), "no series 5") {
			t.Errorf("%s: Explain(5) = %q", spec, b.Explain(5))
		}
	}
}
