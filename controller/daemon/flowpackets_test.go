package daemon

import (
	"math"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/system"
)

// policy.flowPackets reaches the DP routing tables: it turns packFlows into
// flows per instance (⌊packFlows × capacity / flowPackets⌋); absent, a flow
// is system.DefaultFlowPackets packets/s.
func TestFlowPacketsSetsThePackLimits(t *testing.T) {
	for _, fp := range []float64{0, 100} {
		cfg := DefaultConfig()
		if fp > 0 {
			cfg.Policy.FlowPackets = &fp
		}
		if err := cfg.Normalize(); err != nil {
			t.Fatal(err)
		}
		d, err := New(cfg, Options{Clock: clock.NewVirtual(time.Unix(1_800_000_000, 0)), Logger: discard()})
		if err != nil {
			t.Fatal(err)
		}
		per := fp
		if per == 0 {
			per = system.DefaultFlowPackets
		}
		for _, v := range cfg.Topology.Chain {
			want := math.Floor(system.Defaults.PackFlows * v.Capacity / per)
			for dc, r := range d.System().Routers {
				if got := r.PackLimit(v.Name); got != want {
					t.Errorf("flowPackets %g: %s %s pack limit %g flows, want %g", fp, dc, v.Name, got, want)
				}
			}
		}
		d.close()
	}
}
