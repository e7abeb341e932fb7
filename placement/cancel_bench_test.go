package placement

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"
)

// BenchmarkStopDuringPlan: how long a caller that stops a 500-DC × 3 plan
// (the round engine's Stop at a shutdown or a lost leadership) waits for the
// plan to return. The plan runs on its own goroutine with the daemon's
// default improvement budget (1000); `after` into it the caller cancels and
// measures the time until the plan returns. Plan takes no context (the wait
// before PlanContext: the rest of the plan); PlanContext returns at its
// next path search.
func BenchmarkStopDuringPlan(b *testing.B) {
	s := benchSnap(500, 3)
	opt := Options{Improve: ImproveOptions{Budget: 1000}}
	for _, tc := range []struct {
		mode  string
		after time.Duration
	}{{"Plan", time.Second}, {"PlanContext", 50 * time.Millisecond}, {"PlanContext", time.Second}, {"PlanContext", 3 * time.Second}} {
		b.Run(fmt.Sprintf("%s/after=%v", tc.mode, tc.after), func(b *testing.B) {
			var waits []time.Duration
			for i := 0; i < b.N; i++ {
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan time.Time, 1)
				go func() {
					if tc.mode == "Plan" {
						_, _ = Plan(s, opt)
					} else {
						_, _ = PlanContext(ctx, s, opt)
					}
					done <- time.Now()
				}()
				time.Sleep(tc.after) // the plan runs for a while: the benchmark's set-up, not a wait for an effect
				stop := time.Now()
				cancel()
				waits = append(waits, (<-done).Sub(stop))
			}
			slices.Sort(waits)
			b.ReportMetric(float64(waits[len(waits)/2].Microseconds())/1000, "wait-p50-ms")
			b.ReportMetric(float64(waits[len(waits)-1].Microseconds())/1000, "wait-max-ms")
		})
	}
}
