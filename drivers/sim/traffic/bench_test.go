package traffic

import (
	"testing"
	"time"
)

// BenchmarkExperiment8DC30min is the speed target: a 30-minute,
// 8-DC experiment at 15 users/s per DC (peak reached through the paper's
// 1 → 15 ramp in 20 s steps, then held), every stage in the entry DC
// (LocalRouter) on a fixed fleet sized for the peak.
func BenchmarkExperiment8DC30min(b *testing.B) {
	rates, err := Ramp(1, 15, 15, 1)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		w := newWorld(b, 8, fleet15, 4)
		e := w.engine(b, Config{Schedule: Uniform(8, 20*time.Second, rates), Seed: uint64(i + 1), Duration: 30 * time.Minute, SCSCFDC: 4})
		w.run(e, 30*time.Minute)
		if !e.Done() {
			b.Fatal("not done")
		}
		r := e.Recorder()
		b.ReportMetric(float64(r.FlowsTotal), "flows")
		b.ReportMetric(r.DPLost/r.DPOffered, "dp-loss")
	}
}
