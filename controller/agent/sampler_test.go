package agent

import (
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/clock"
)

// The sampler keeps a fixed rate: a sample that takes long (its counters
// answered slowly) does not push the later ones back; one that ends after
// the next was due skips the missed ticks and the next comes at once. Before, each sample came an interval after the end of the
// one before, so on a loaded host slow samples stretched the period and
// two of them filled the local controller's 3 s statistics timeout.
func TestSamplerKeepsAFixedRate(t *testing.T) {
	for _, tc := range []struct {
		name string
		took time.Duration // how long the second sample takes
		want []time.Duration
	}{
		{"slow sample", 600 * time.Millisecond, []time.Duration{0, time.Second, 2 * time.Second, 3 * time.Second, 4 * time.Second}},
		{"sample past the next tick", 1700 * time.Millisecond, []time.Duration{0, time.Second, 2700 * time.Millisecond, 3700 * time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t0 := time.Unix(100, 0)
			clk := clock.NewVirtual(t0)
			var at []time.Duration
			s := &sampler{id: "x", clk: clk, interval: time.Second, measure: func() (Sample, bool, error) {
				at = append(at, clk.Now().Sub(t0))
				if len(at) == 2 {
					clk.Advance(tc.took)
				}
				return Sample{}, false, nil
			}}
			s.start()
			clk.RunUntil(t0.Add(4500 * time.Millisecond))
			s.stop()
			if len(at) != len(tc.want) {
				t.Fatalf("samples at %v, want %v", at, tc.want)
			}
			for i := range at {
				if at[i] != tc.want[i] {
					t.Fatalf("samples at %v, want %v", at, tc.want)
				}
			}
			if clk.Pending() != 0 {
				t.Errorf("%d timers left after stop", clk.Pending())
			}
		})
	}
}
