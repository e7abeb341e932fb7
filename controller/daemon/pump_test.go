package daemon

import (
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/protocol"
	"github.com/ims-orch/ims-orch/drivers/sim"
)

// With a real control plane (driver local) the simulated load only drives
// the simulated DP stages: it reports DP workload and never CP workload,
// which comes from the S-CSCFs' counters alone.
func TestPumpReportsNoCPWithRealControlPlane(t *testing.T) {
	cfg := DefaultConfig()
	if err := cfg.Normalize(); err != nil {
		t.Fatal(err)
	}
	for _, realCP := range []bool{false, true} {
		clk := clock.NewVirtual(time.Unix(1_700_000_000, 0))
		cat, err := cfg.simCatalog()
		if err != nil {
			t.Fatal(err)
		}
		c, err := sim.New(clk, sim.Options{DCs: cfg.dcNames(), Catalog: cat, BootDelay: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		kinds := map[string]int{}
		p := newPump(clk, *cfg.Traffic, cfg.Topology, c, nil, nil, realCP, func(r protocol.WorkloadReport) error {
			kinds[r.Kind]++
			return nil
		}, nil)
		p.Start()
		clk.Advance(5 * time.Second)
		p.Stop()
		if kinds["dp"] == 0 {
			t.Fatalf("realCP=%v: no DP reports (%v)", realCP, kinds)
		}
		if got := kinds["cp"]; (got > 0) == realCP {
			t.Fatalf("realCP=%v: %d CP reports", realCP, got)
		}
	}
}
