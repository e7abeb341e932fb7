package local

import (
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/drivers/fake"
)

// fallingScaleIn is the share of their capacity vnf's working instances
// left by a scale-in on a falling load may carry (Config.FallingScaleIn,
// capped as fallscale.go says), 0 when the rule does not act for vnf (off,
// no Reactive, no PinnedFlows or no capacity).
func (c *Controller) fallingScaleIn(vnf string) float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	vs, ok := c.vnfs[vnf]
	if !ok || !c.fallingOnLocked(vs) {
		return 0
	}
	return c.fallingBarLocked(vs)
}

// Where the falling scale-in acts and at which bar: a DP stage with a
// capacity (PinnedFlows), with reactive scaling on; capped at the reactive
// bar, or without one at the load threshold (the overload trigger).
func TestFallingScaleInBar(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(*Config)
		want float64
	}{
		{"on", func(*Config) {}, 0.94},
		{"capped at the reactive bar", func(c *Config) { c.ReactiveUtilization = 0.9 }, 0.9},
		{"no reactive bar: capped at the load threshold", func(c *Config) { c.ReactiveUtilization, c.VNFs[0].LoadThreshold = 0, 80 }, 0.8},
		{"off", func(c *Config) { c.FallingScaleIn = 0 }, 0},
		{"no reactive scaling", func(c *Config) { c.Reactive = false }, 0},
		{"no pinned flows (a CSCF)", func(c *Config) { c.VNFs[0].PinnedFlows = false }, 0},
	} {
		cfg := fwConfig(1)
		cfg.VNFs[0].PinnedFlows = true
		cfg.Reactive, cfg.FallingScaleIn, cfg.ReactiveUtilization = true, 0.94, 0.95
		tc.set(&cfg)
		clk := clock.NewVirtual(t0)
		drv, err := fake.New(clk, fake.Options{BootDelay: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Sink, cfg.Paths = &recSink{}, &recPaths{}
		c, err := New(cfg, drv, clk, nil)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := c.fallingScaleIn("firewall"); got != tc.want {
			t.Errorf("%s: bar %g, want %g", tc.name, got, tc.want)
		}
		if got := c.fallingScaleIn("nosuch"); got != 0 {
			t.Errorf("%s: an unknown VNF's bar %g, want 0", tc.name, got)
		}
	}
}
