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

// overloadWindow and overloadCooldown are the local controller's
// OverloadWindow and ReactiveCooldown in
// TestReactiveScaleOutPastCapacityOnTheRealPlane (its defaults, stated:
// the test observes the controller past the cool-down).
const (
	overloadWindow   = 5 * time.Second
	overloadCooldown = 5 * time.Second
)

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
// reaches the receiving endpoint. While the nine calls pinned to the first
// instance still run, the controller is observed past the launch's
// cool-down: the first instance is overloaded again there and, 1 of 2
// being no majority, no second instance is launched. Anticipation is off
// (set so, as with the reactive-only strategy, system.New): the load
// reaches the capacity by a rise, and anticipation would act on that
// rise; the launch here is the reactive rule's alone. Before session 12
// the detector read the
// forwarder's CPU (≈ 1 % at these rates) against 90 %: one metric over of
// three, the instance was never overloaded and no instance was launched
// (the wait below fails).
func TestReactiveScaleOutPastCapacityOnTheRealPlane(t *testing.T) {
	r := newIDSRun(t, 1, overloadCapacity, idsThresholds(vnf.Thresholds{CPU: 90, Mem: 50, PktRate: overloadCapacity},
		func(lc *local.Config) {
			lc.Anticipate = false
			lc.OverloadWindow, lc.ReactiveCooldown = overloadWindow, overloadCooldown
		}))
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
	r.oneLaunchPastCooldown(t, a)
	r.checkPackets(t)
}

// oneLaunchPastCooldown observes the controller while the calls run,
// polled every 10 ms (waitFor) until the reactive launch a's cool-down
// and an overload window after it have passed (and 3 s more: three
// samples), when a second launch of a rule taking 1 of 2 for a majority
// would have come: an IDS instance other than a's must be seen overloaded
// after the cool-down (else the observation shows nothing), and a must
// stay the only launch.
func (r *idsRun) oneLaunchPastCooldown(t *testing.T, a local.Action) {
	t.Helper()
	c := r.b.c
	cooled := a.At.Add(overloadCooldown)
	var overloaded time.Time
	second := waitFor(time.Until(cooled.Add(overloadWindow+3*time.Second)), func() bool {
		now := time.Now()
		for _, in := range c.Instances() {
			if in.VNF == "ids" && in.ID != a.InstanceID && in.State == local.StateOverload && now.After(cooled) && overloaded.IsZero() {
				overloaded = now
			}
		}
		for _, b := range c.Actions() {
			if b.VNF == "ids" && b.Kind == local.KindCreate && b.Reason == local.ReasonReactive && b.InstanceID != a.InstanceID {
				return true
			}
		}
		return false
	})
	if overloaded.IsZero() {
		t.Errorf("no IDS instance but the launched %s seen overloaded after the cool-down (%v after it): IDS %v",
			a.InstanceID, overloadCooldown, r.idsSummary())
	} else {
		t.Logf("the first IDS instance overloaded %v after the launch (cool-down %v); observed until %v after it",
			overloaded.Sub(a.At).Round(100*time.Millisecond), overloadCooldown, time.Since(a.At).Round(100*time.Millisecond))
	}
	if second {
		t.Logf("a second IDS launch %v after the first", time.Since(a.At).Round(100*time.Millisecond))
	}
	r.noSecondLaunch(t, a)
}
