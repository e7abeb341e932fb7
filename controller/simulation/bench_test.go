package simulation

import (
	"context"
	"testing"
)

// BenchmarkRun8DC15 is the issue-5 speed target: a 30-minute 8-DC
// experiment at 15 users/s per DC (target: < 30 s wall, < 1 GiB).
//
//	go test ./controller/simulation -run '^$' -bench Run8DC15 -benchtime 1x -benchmem
func BenchmarkRun8DC15(b *testing.B) {
	e, err := LoadExperiment(expDir + "bench-8dc-15.yaml")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		r, err := Run(context.Background(), e, Options{Seed: 1})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(r.Recorder.FlowsTotal), "flows")
	}
}
