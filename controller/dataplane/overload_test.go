package dataplane

import (
	"strings"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/controller/local"
	"github.com/ims-orch/ims-orch/placement/vnf"
)

// overloadCapacity is the IDS's capacity in packets/s in
// TestReactiveScaleOutPastCapacityOnTheRealPlane: eight calls of 50
// packets/s; the test offers nine.
const overloadCapacity = 400

// Reactive scale-out of a DP stage past its capacity on the real data
// plane, with the thresholds a daemon gives a stage outside the catalog
// (CPU 90 %, Mem 50 %, PktRate its capacity; loadThreshold 90 %): one IDS
// instance (a netns forwarder behind a real Open vSwitch) of capacity 400
// packets/s is offered a flat 450 (nine calls of 50 packets/s, started
// together and held). The real local controller marks it overloaded by its
// load (the packet rate, 112 % of its capacity, over its loadThreshold)
// and its packet rate (over its threshold) for the overload window, and
// the reactive rule launches a second IDS instance; the calls started
// after it is routable go through it, and every packet of every call
// reaches the receiving endpoint. Anticipation is off (as with the
// reactive-only strategy, system.New): the load reaches the capacity by a
// rise, and anticipation would act on that rise; the launch here is the
// reactive rule's alone. Before session 12 the detector read the
// forwarder's CPU (≈ 1 % at these rates) against 90 %: one metric over of
// three, the instance was never overloaded and no instance was launched
// (the wait below fails).
func TestReactiveScaleOutPastCapacityOnTheRealPlane(t *testing.T) {
	r := newIDSRun(t, 1, overloadCapacity, func(lc *local.Config) {
		for i := range lc.VNFs {
			if lc.VNFs[i].Name == "ids" {
				lc.VNFs[i].Thresholds = vnf.Thresholds{CPU: 90, Mem: 50, PktRate: overloadCapacity}
			}
		}
	})
	c := r.b.c
	var (
		overloaded time.Time
		create     local.Action
		peakCPU    float64
	)
	observe := func() bool {
		for _, in := range c.Instances() {
			if in.VNF != "ids" {
				continue
			}
			if in.State == local.StateOverload && overloaded.IsZero() {
				overloaded = time.Now()
			}
			peakCPU = max(peakCPU, in.Last.CPU)
		}
		for _, a := range c.Actions() {
			if a.VNF == "ids" && a.Kind == local.KindCreate && a.Reason == local.ReasonReactive && create.At.IsZero() {
				create = a
			}
		}
		return !create.At.IsZero()
	}
	start := time.Now()
	for range overloadCapacity/50 + 1 {
		r.start(t)
	}
	if !waitFor(30*time.Second, observe) {
		t.Fatalf("no IDS launch %v after 9 calls (450 packets/s, capacity %d) started; IDS %v; actions %+v",
			time.Since(start).Round(time.Second), overloadCapacity, r.idsSummary(), c.Actions())
	}
	a := create
	if !strings.Contains(a.Detail, "1 of 1 working instances overloaded") {
		t.Fatalf("the IDS launch %s: %q, want the reactive rule's (1 of 1 overloaded)", a.InstanceID, a.Detail)
	}
	if overloaded.IsZero() {
		t.Fatalf("launched %s with no IDS instance seen overloaded", a.InstanceID)
	}
	t.Logf("IDS overloaded %v after the calls started (forwarder CPU ≤ %.2f %%); reactive launch of %s %v after: %s",
		overloaded.Sub(start).Round(100*time.Millisecond), peakCPU, a.InstanceID, a.At.Sub(start).Round(100*time.Millisecond), a.Detail)
	if !waitFor(20*time.Second, func() bool { return routable(c, "ids") == 2 }) {
		t.Fatalf("the launched %s never became routable: %+v", a.InstanceID, c.Instances())
	}
	x, ok := r.indexOf(a.InstanceID)
	if !ok {
		t.Fatalf("launched %s has no routing index", a.InstanceID)
	}
	// the launched instance takes the next calls (the overloaded one is
	// avoided; least loaded) and its forwarder carries them
	for range 2 {
		if port := r.start(t); r.idsOf[port] != x {
			t.Errorf("call %d went to IDS index %d, want the launched %s (index %d)", port, r.idsOf[port], a.InstanceID, x)
		}
	}
	if !waitFor(10*time.Second, func() bool {
		for _, in := range c.Instances() {
			if in.ID == a.InstanceID && in.Last.PktRate > 50 && in.Last.Flows == 2 {
				return true
			}
		}
		return false
	}) {
		t.Errorf("the launched %s does not report its 2 calls' packets: %+v", a.InstanceID, c.Instances())
	}
	r.checkPackets(t)
	n := 0
	for _, b := range c.Actions() {
		if b.VNF == "ids" && b.Kind == local.KindCreate && b.Reason == local.ReasonReactive {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d reactive IDS launches, want 1 (the first instance stays overloaded: 1 of 2 is no majority): %+v", n, c.Actions())
	}
}
