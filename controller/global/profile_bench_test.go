package global

import (
	"fmt"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/clock"
)

// BenchmarkProfilePredict is one round's declared-profile prior (every
// pair of 4 DCs, dp and cp series, interval 50 s, window 80 s, 1 h
// profile hours) by call duration: its cost grew with window × call
// duration before the pair rates were evaluated once per round
// (docs/benchmarks.md).
func BenchmarkProfilePredict(b *testing.B) {
	dcs := []string{"tokyo", "hong-kong", "london", "houston"}
	r := make([]float64, 24)
	for h := range r {
		r[h] = 1 + float64(h%7)
	}
	prof := &DailyProfile{Hour: time.Hour}
	for i := range dcs {
		prof.DCs = append(prof.DCs, DCProfile{Rates: r, UTCOffset: float64(3 * i)})
	}
	var keys []string
	avg := map[string]float64{}
	for _, a := range dcs {
		for _, c := range dcs {
			for _, kind := range []string{"dp", "cp"} {
				k := kind + "/" + a + "/" + c
				keys = append(keys, k)
				avg[k] = 10
			}
		}
	}
	for _, call := range []time.Duration{time.Minute, 10 * time.Minute, time.Hour} {
		b.Run(fmt.Sprintf("call=%v", call), func(b *testing.B) {
			clk := clock.NewVirtual(time.Unix(1_800_000_000, 0))
			p := ProfilePrior{Profile: prof, Origin: time.Unix(0, 0), CallDuration: call, Window: 80 * time.Second, Interval: 50 * time.Second}
			f := NewProfileForecaster(fixedForecaster{1}, p, clk, dcs)
			if err := f.Observe(avg); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				f.Predict(keys)
			}
		})
	}
}
