package daemon

import (
	"context"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/drivers"
	"github.com/ims-orch/ims-orch/drivers/ovs"
)

// checkDataPlane: with Open vSwitch installed and root, serve --driver
// local runs every DP stage as a network namespace instance on its DC's
// bridge; it returns a check that, after shutdown, nothing of it is left.
func checkDataPlane(t *testing.T, d *Daemon) (after func()) {
	t.Helper()
	if ovs.Available() != nil {
		if d.dp != nil {
			t.Fatal("no Open vSwitch, yet a real data plane")
		}
		t.Log("Open vSwitch absent: the data plane stays simulated")
		return func() {}
	}
	if d.dp == nil || d.dp.plane == nil {
		t.Fatal("Open vSwitch installed and root, but serve --driver local did not start the real data plane")
	}
	// the DP workload comes from each DC's switch, not from the fluid model
	if len(d.sys.Meters) != len(d.cfg.dcNames()) || d.pump != nil {
		t.Fatalf("real data plane: %d DP meters for %d DCs, simulated pump %v", len(d.sys.Meters), len(d.cfg.dcNames()), d.pump != nil)
	}
	prefix := d.dp.ovs.Prefix()
	stages := d.cfg.Topology.Chain
	eventually(t, 60*time.Second, "an active DP instance of every stage in every DC", func() bool {
		ins, _ := d.dp.drv.List(context.Background(), "")
		have := map[string]bool{}
		for _, in := range ins {
			if in.State == drivers.StateActive {
				have[in.DC+"/"+in.VNF] = true
			}
		}
		for _, dc := range d.cfg.dcNames() {
			for _, s := range stages {
				if !have[dc+"/"+s.Name] {
					return false
				}
			}
		}
		return true
	})
	brs, err := d.dp.ovs.OurBridges(context.Background())
	if err != nil || len(brs) != len(d.cfg.dcNames()) {
		t.Fatalf("bridges %v %v, want one per DC", brs, err)
	}
	return func() {
		if ns, _ := ovs.Netns(context.Background(), prefix); len(ns) != 0 {
			t.Fatalf("namespaces left after shutdown: %v", ns)
		}
		if d.dp.ovs.VswitchdAlive() {
			t.Fatal("ovs-vswitchd still runs after shutdown")
		}
	}
}
