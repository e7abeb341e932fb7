package system

import (
	"context"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/controller/fsm"
	"github.com/ims-orch/ims-orch/controller/local"
	"github.com/ims-orch/ims-orch/controller/strategy"
	"github.com/ims-orch/ims-orch/drivers"
)

// An instance the cloud reports gone gives its routing index back (the
// system passes the driver's gone events to the DC's router): before, a
// destroyed DP instance kept its index parked for ever.
func TestGoneInstanceFreesItsRoutingIndex(t *testing.T) {
	s, drv, clk, err := newTwoDCSystem(t, []fsm.VNF{{Name: "firewall", Capacity: 35000}}, func(c *Config) {
		c.Policy, c.Strategy = fsm.Policy{DelayBoundMs: 250}, strategy.Hybrid
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	r := s.Routers["a"]
	index := func(id string) int {
		for i := range 256 {
			if r.InstanceID(1, uint8(i)) == id {
				return i
			}
		}
		return -1
	}
	// an instance of the firewall stage, routable and then buffered
	// (parked with its index)
	in, err := drv.Launch(ctx, drivers.Spec{ID: "fw-x", DC: "a", VNF: "firewall"})
	if err != nil {
		t.Fatal(err)
	}
	id := in.ID
	r.SetInstances("firewall", []local.RoutableInstance{{ID: id}})
	if index(id) < 0 {
		t.Fatalf("%s got no routing index", id)
	}
	r.SetInstances("firewall", nil)
	if index(id) < 0 {
		t.Fatalf("%s lost its index when buffered", id)
	}
	idx := index(id)
	if err := drv.Terminate(ctx, "a", id); err != nil {
		t.Fatal(err)
	}
	for range 100 {
		clk.Advance(100 * time.Millisecond)
	}
	if got := r.InstanceID(1, uint8(idx)); got != "" {
		t.Errorf("index %d of gone instance %s still names %q", idx, id, got)
	}
}
