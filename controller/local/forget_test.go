package local

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/ims-orch/ims-orch/drivers"
	"github.com/ims-orch/ims-orch/drivers/fake"
)

// forgetSink logs SetInstances and Forget calls in order.
type forgetSink struct{ log []string }

func (s *forgetSink) SetInstances(vnf string, insts []RoutableInstance) {
	s.log = append(s.log, fmt.Sprintf("set %s %d", vnf, len(insts)))
}
func (s *forgetSink) Forget(vnf, id string) { s.log = append(s.log, "forget "+vnf+" "+id) }

// Every gone event of the controller's DC reaches an InstanceForgetter
// sink, before the instance leaves the routable set, also for an instance
// the controller does not know: the routing table frees the index of a
// destroyed instance through it (before, a second driver subscription in
// controller/system did that).
func TestGoneInstanceIsForgottenBySink(t *testing.T) {
	e := newEnv(t, fwConfig(1), fake.Options{})
	sink := &forgetSink{}
	e.c.cfg.Sink = sink // after Start: only the events below are logged
	id := e.ids(StateNormal)[0]
	if !e.drv.Kill(id) {
		t.Fatalf("kill %s", id)
	}
	e.clk.Advance(0)
	if len(sink.log) < 2 || sink.log[0] != "forget firewall "+id || sink.log[1] != "set firewall 0" {
		t.Fatalf("sink calls %v, want forget %s first, then the routable set without it", sink.log, id)
	}
	sink.log = nil
	ctx := context.Background()
	if _, err := e.drv.Launch(ctx, drivers.Spec{ID: "stray", DC: "dc0", VNF: "firewall"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.drv.Launch(ctx, drivers.Spec{ID: "other-dc", DC: "dc1", VNF: "firewall"}); err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(0)
	for _, x := range []string{"stray", "other-dc"} {
		if err := e.drv.Terminate(ctx, "", x); err != nil {
			t.Fatal(err)
		}
	}
	e.clk.Advance(0)
	if want := []string{"forget firewall stray"}; !slices.Equal(sink.log, want) {
		t.Fatalf("sink calls %v for an unknown instance of this DC and one of another DC, want %v", sink.log, want)
	}
}

// An instance the daemon's cloud reconciliation finds missing (Vanished, no
// gone event) reaches the sink's Forget too, before it leaves the routable
// set: the routing table frees its index instead of parking it. Before, only
// gone events did, although InstanceForgetter's doc says vanished ones are
// forgotten too.
func TestVanishedInstanceIsForgottenBySink(t *testing.T) {
	e := newEnv(t, fwConfig(1), fake.Options{})
	sink := &forgetSink{}
	e.c.cfg.Sink = sink
	id := e.ids(StateNormal)[0]
	if !e.c.Vanished(id, "vanished from the cloud") {
		t.Fatalf("Vanished refused working instance %s", id)
	}
	e.clk.Advance(0)
	if len(sink.log) < 2 || sink.log[0] != "forget firewall "+id || sink.log[1] != "set firewall 0" {
		t.Fatalf("sink calls %v, want forget %s first, then the routable set without it", sink.log, id)
	}
}
