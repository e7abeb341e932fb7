package predictor

import (
	"math"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// TestBankMatchesModels: a bank gives exactly the predictions of one model
// per series, for the flat forms and the per-series fallback, also when
// series join later (Grow) and a round observes only some series
// (ObserveSome), each series with its own history length.
func TestBankMatchesModels(t *testing.T) {
	specs := []string{"ar1", "ar1:w=3,phimax=0.5", "holt", "holt:alpha=0.2,beta=0.1,damp=0.9", "last",
		"arp:maxp=2,win=10", "holt+q90:win=5", "holt-winters:season=3", "holt:fit=8",
		"analog", "analog:m=1,k=2,win=3", "analog:m=2,k=3,win=7", "kalman", "kalman:count=0,forget=0.7", "kalman+q90:win=5", "ar1+q90:win=5", "last+q90:win=5", "ar1:w=3+q75:win=6",
		"auto", "auto:win=3,guard=0", "auto+q90:win=5", "analog:m=1,k=2,win=3+q80:win=5", "holt:fit=5+q90:win=5"}
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
		for r := range rounds {
			if k := rapid.IntRange(0, 2).Draw(t, "grow"); k > 0 && rapid.IntRange(0, 3).Draw(t, "growNow") == 0 {
				if err := b.Grow(k); err != nil {
					t.Fatal(err)
				}
				for range k {
					m, _ := New(spec)
					models = append(models, m)
				}
			}
			n := len(models)
			vals := rapid.SliceOfN(rapid.SampledFrom([]float64{0, 1, 2.5, 7, 100, 1e-3, 33.3}), n, n).Draw(t, "vals")
			var seen []bool
			if rapid.Bool().Draw(t, "partial") {
				seen = rapid.SliceOfN(rapid.Bool(), n, n).Draw(t, "seen")
				for i := range vals {
					if !seen[i] {
						vals[i] = math.NaN() // not read
					}
				}
			}
			if err := b.ObserveSome(vals, seen); err != nil {
				t.Fatal(err)
			}
			for i, m := range models {
				if seen == nil || seen[i] {
					_ = m.Observe(vals[i])
				}
			}
			if rapid.IntRange(0, 4).Draw(t, "skipPredict") == 0 {
				continue // the next round scores forecasts the bank did not publish
			}
			out := make([]float64, n)
			if err := b.Predict(out); err != nil {
				t.Fatal(err)
			}
			for i, m := range models {
				if want := m.Predict(); out[i] != want && !(math.Abs(out[i]-want) <= 1e-12*max(1, want)) {
					t.Fatalf("round %d series %d: bank %v, model %v", r, i, out[i], want)
				}
				if e, ok := m.(Explainer); ok && b.Explain(i) != e.Explain() {
					t.Fatalf("round %d series %d: bank explains %q, model %q", r, i, b.Explain(i), e.Explain())
				}
				if d := b.Detail(i); d != modelDetail(m) {
					t.Fatalf("round %d series %d: bank detail %+v, model %+v", r, i, d, modelDetail(m))
				}
			}
		}
		if b.Rounds() != rounds || b.Len() != len(models) || b.Name() != models0Name(spec) {
			t.Fatalf("Rounds %d Len %d Name %q", b.Rounds(), b.Len(), b.Name())
		}
	})
}

// modelDetail is what Bank.Detail must say for a single-series model.
func modelDetail(m Model) Detail {
	d := Detail{Model: m.Name()}
	if mg, ok := m.(*Margin); ok {
		base, _, _ := strings.Cut(m.Name(), "+") // the base model carries the whole spec as its name
		d = Detail{Model: base, Margin: mg.Offset()}
		m = mg.Base()
	}
	if a, ok := m.(*Auto); ok {
		d.Model = a.Chosen()
	}
	return d
}

func models0Name(spec string) string {
	m, _ := New(spec)
	return m.Name()
}

func TestBankFlatForms(t *testing.T) {
	auto := (80 + 8 + 16 + 304 + 304) + 5*8 + 8*(5*20+5+1) + 1 // five candidate banks with their counts, error rings, sums, last value, choice
	for spec, bytes := range map[string]int{"ar1": 80, "ar1:w=4": 32, "holt": 16, "last": 8, "arp": 0, "holt+q90": 8 + 16 + 8 + 8*50 + 16,
		"analog": 1200, "analog:win=20": 160, "kalman": 304, "kalman+q90": 8 + 304 + 8 + 8*50 + 16, "ar1+q90:win=20": 8 + 80 + 8 + 8*20 + 16, "holt:fit=5+q90": 0,
		"auto": auto, "auto+q90": 8 + 8 + auto + 8*50 + 16} {
		if bytes > 0 && !strings.Contains(spec, "+") {
			bytes += 8 // the series' observation count
		}
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
		if got, want := b.Explain(0), m.(Explainer).Explain(); got != want {
			t.Errorf("%s: empty bank explains %q, model %q", spec, got, want)
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
