package system

import (
	"math"
	"strings"
	"testing"

	"github.com/ims-orch/ims-orch/controller/fsm"
	"github.com/ims-orch/ims-orch/controller/strategy"
)

// TestNewRefusesABadReactiveUtilization: system.New checks
// Config.Local.ReactiveUtilization itself, naming the field as the
// system's configuration calls it (revC #6: only local.New's check was
// tested), for every strategy (reactive-only zeroes it after the check).
func TestNewRefusesABadReactiveUtilization(t *testing.T) {
	for _, st := range []strategy.Strategy{strategy.Hybrid, strategy.Reactive} {
		for _, bad := range []float64{1.5, -0.1, math.NaN()} {
			_, _, _, err := newTwoDCSystem(t, []fsm.VNF{{Name: "firewall", Capacity: 35000}}, func(c *Config) {
				c.Policy, c.Strategy, c.Local.ReactiveUtilization = fsm.Policy{DelayBoundMs: 250}, st, bad
			})
			if err == nil || !strings.Contains(err.Error(), "local.reactiveUtilization") {
				t.Fatalf("%s, local.reactiveUtilization %v: error %v, want one naming local.reactiveUtilization", st, bad, err)
			}
		}
	}
}
