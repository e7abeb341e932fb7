package predictor

import (
	"fmt"
	"testing"
)

// BenchmarkBankRound is one prediction round (what a global controller would run) over
// 10^6 series (≈ every ordered pair of 1000 datacenters): Observe the values
// of the interval that ended, then Predict the next one. Target: < 1 s.
func BenchmarkBankRound(b *testing.B) {
	const n = 1_000_000
	for _, spec := range []string{"ar1", "holt", "last", "kalman", "analog", "analog:win=60", "auto", "ar1+q90", "holt+q90", "kalman+q90", "auto+q90"} {
		b.Run(fmt.Sprintf("%s/n=%d", spec, n), func(b *testing.B) {
			bank, err := NewBank(spec, n)
			if err != nil {
				b.Fatal(err)
			}
			// Distinct, noisy rounds (no exact repeats, so the analog model's
			// distance scan cannot stop early on identical patterns).
			value := func(i, r int) float64 {
				h := uint64(i)*0x9E3779B97F4A7C15 ^ uint64(r)*0xBF58476D1CE4E5B9
				h ^= h >> 31
				return float64((i*7+r*13)%97) + 0.5 + float64(h%1000)/1000
			}
			history := 10 // a full window of history
			if s, _ := ParseSpec(spec); s.Kind == KindAnalog {
				history = int(s.get("win"))
			}
			vals := make([]float64, n)
			for r := range history {
				for i := range vals {
					vals[i] = value(i, r)
				}
				_ = bank.Observe(vals)
			}
			rounds := make([][]float64, 16)
			for r := range rounds {
				rounds[r] = make([]float64, n)
				for i := range rounds[r] {
					rounds[r][i] = value(i, history+r)
				}
			}
			out := make([]float64, n)
			b.ReportMetric(float64(bank.BytesPerSeries()), "state-B/series")
			b.ResetTimer()
			for k := 0; b.Loop(); k++ {
				if err := bank.Observe(rounds[k%len(rounds)]); err != nil {
					b.Fatal(err)
				}
				if err := bank.Predict(out); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkModelStep is one Observe + Predict of a single-series model with
// a full history (the per-series cost of the richer models).
func BenchmarkModelStep(b *testing.B) {
	for _, spec := range []string{"last", "ar1", "arp", "holt", "holt:fit=120", "holt-winters:season=1728", "holt+q90", "kalman", "analog"} {
		b.Run(spec, func(b *testing.B) {
			m, err := New(spec)
			if err != nil {
				b.Fatal(err)
			}
			for i := range 2000 {
				_ = m.Observe(float64(100 + i%37))
			}
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				_ = m.Observe(float64(100 + i%37))
				_ = m.Predict()
			}
		})
	}
}
