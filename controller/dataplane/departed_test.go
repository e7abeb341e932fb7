package dataplane

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/ims-orch/ims-orch/controller/dcroute"
	"github.com/ims-orch/ims-orch/controller/local"
	"github.com/ims-orch/ims-orch/controller/routing"
	"github.com/ims-orch/ims-orch/drivers/netns"
	"github.com/ims-orch/ims-orch/drivers/ovs"
)

// attachedFake is an attached plane of one DC ("dc0", one stage "ids") on a
// recording switch, with a netns driver that has no active instance: every
// port the rules were made for has departed.
func attachedFake(t *testing.T) (*Plane, *dcState, *fakeSwitch, *dcroute.Router) {
	t.Helper()
	r, err := dcroute.New("dc0", []string{"dc0"}, []string{"ids"}, 0, func(err error) { t.Errorf("router: %v", err) })
	if err != nil {
		t.Fatal(err)
	}
	drv, err := netns.NewDriver(netns.DriverConfig{Daemon: &ovs.Daemon{}, Bridges: map[string]string{"dc0": "x"}, Forwarder: []string{"true"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = drv.Close(context.Background()) })
	sw := &fakeSwitch{}
	st := &dcState{router: r, name: "dc0", sw: sw, flows: map[uint32]Flow{}, byCall: map[routing.Call][]uint32{}}
	return &Plane{cfg: Config{Driver: drv}, dcs: []*dcState{st}}, st, sw, r
}

// A working instance that crashed: the driver drops it before its gone
// event, the controller's Forget comes first and the SetInstances that
// fails it follows. The Forget must not sync (the table still routes the
// instance: repairFlows could pin the moved flows onto it, and the rules
// would be applied twice); the SetInstances syncs once. Before, departed
// saw the port missing and ran a full sync and Apply on the stale table.
func TestDepartedLeavesARoutedInstanceToSetInstances(t *testing.T) {
	p, st, sw, r := attachedFake(t)
	h := Hooks{p: p, dc: 0}
	h.SetInstances("ids", []local.RoutableInstance{{ID: "a"}})
	st.ports = map[int]bool{InstancePorts(1, 2).In: true} // a's port, now gone from the driver
	sw.forget = nil
	h.Forget("ids", "a")
	if !r.Routed("ids", "a") {
		t.Fatal("the router stopped routing a on Forget alone")
	}
	if len(sw.forget) != 0 {
		t.Fatalf("Forget of a still-routed instance applied the rules %d times, want 0 (its SetInstances syncs)", len(sw.forget))
	}
	h.SetInstances("ids", nil)
	if len(sw.forget) != 1 {
		t.Fatalf("the SetInstances that removes it applied the rules %d times, want 1", len(sw.forget))
	}
}

// An instance destroyed out of routing (draining, at its drain timeout):
// no SetInstances follows, so Forget syncs when its port is still in the
// rules, once.
func TestDepartedSyncsAnInstanceOutOfRouting(t *testing.T) {
	p, st, sw, r := attachedFake(t)
	h := Hooks{p: p, dc: 0}
	h.SetInstances("ids", []local.RoutableInstance{{ID: "b"}})
	h.SetInstances("ids", nil) // b drains: parked
	st.ports = map[int]bool{InstancePorts(1, 2).In: true}
	sw.forget = nil
	h.Forget("ids", "b")
	if r.Routed("ids", "b") {
		t.Fatal("b is routed after leaving routing")
	}
	if len(sw.forget) != 1 {
		t.Fatalf("Forget of a parked instance whose port is in the rules applied them %d times, want 1", len(sw.forget))
	}
	h.Forget("ids", "b") // its port is out of the rules now: nothing to do
	if len(sw.forget) != 1 {
		t.Fatalf("a second Forget applied the rules again (%d updates)", len(sw.forget))
	}
}

// An instance that left routing (buffered) before the plane first looked
// at the router is live while the driver has it active: it gets its rules
// (its packets taken back from its port) and a FlowCounts entry. Since 1f2b845 liveness is
// derived from the router's indices (dcroute keeps a buffered instance's
// index parked) and the driver's active set; before, the plane counted a
// parked instance live only if an earlier view had seen it working
// (`sticky`), so such an instance (buffered before Lazy.Set) had neither
// and the flows pinned to it were moved off it.
func TestInstanceParkedBeforeThePlaneIsLive(t *testing.T) {
	p, _, sw, r := attachedFake(t)
	r.SetInstances("ids", []local.RoutableInstance{{ID: "a"}, {ID: "b"}})
	r.SetInstances("ids", []local.RoutableInstance{{ID: "a"}}) // b buffered: its index parked
	if r.Routed("ids", "b") {
		t.Fatal("b still routed")
	}
	ports := map[string]netns.Ports{"a": {In: 2000, Out: 2001}, "b": {In: 2002, Out: 2003}}
	p.active = func(dc string) map[string]netns.Ports {
		if dc != "dc0" {
			t.Errorf("active set of %q asked for", dc)
		}
		return ports
	}
	if err := p.sync(context.Background(), 0); err != nil { // the plane's first look at the router
		t.Fatal(err)
	}
	matches := map[string]bool{}
	for _, f := range sw.want {
		matches[f.Match] = true
	}
	for id, pp := range ports {
		if !matches[fmt.Sprintf("in_port=%d", pp.Out)] {
			t.Errorf("no rule takes %s's packets back from its port %d; rules %v", id, pp.Out, sw.want)
		}
	}
	fs, err := p.FlowCounts(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, f := range fs {
		ids = append(ids, f.ID)
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"a", "b"}) {
		t.Errorf("FlowCounts entries %v, want a (working) and b (buffered)", ids)
	}
}
