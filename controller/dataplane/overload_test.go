package dataplane

import (
	"strings"
	"testing"
	"time"

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
	r := newIDSRun(t, 1, overloadCapacity, idsThresholds(vnf.Thresholds{CPU: 90, Mem: 50, PktRate: overloadCapacity}, nil))
	c := r.b.c
	w := &idsLaunch{r: r}
	start := time.Now()
	for range overloadCapacity/50 + 1 {
		r.start(t)
	}
	if !waitFor(30*time.Second, w.observe) {
		t.Fatalf("no IDS launch %v after 9 calls (450 packets/s, capacity %d) started; IDS %v; actions %+v",
			time.Since(start).Round(time.Second), overloadCapacity, r.idsSummary(), c.Actions())
	}
	a := w.create
	if !strings.Contains(a.Detail, "1 of 1 working instances overloaded") {
		t.Fatalf("the IDS launch %s: %q, want the reactive rule's (1 of 1 overloaded)", a.InstanceID, a.Detail)
	}
	if w.overloaded.IsZero() {
		t.Fatalf("launched %s with no IDS instance seen overloaded", a.InstanceID)
	}
	t.Logf("IDS overloaded %v after the calls started (forwarder CPU ≤ %.2f %%); reactive launch of %s %v after: %s",
		w.overloaded.Sub(start).Round(100*time.Millisecond), w.peakCPU, a.InstanceID, a.At.Sub(start).Round(100*time.Millisecond), a.Detail)
	// the overloaded instance is avoided: the launched one takes the next calls
	r.launchedTakesCalls(t, a)
	// the first instance stays overloaded (its calls are pinned to it): 1
	// of 2 is no majority, no further launch
	r.noSecondLaunch(t, a)
}
