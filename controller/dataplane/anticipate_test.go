package dataplane

import (
	"strings"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/controller/local"
	"github.com/ims-orch/ims-orch/placement/vnf"
)

// anticipateCapacity is the IDS's capacity in packets/s in
// TestAnticipatedScaleOutOnTheRealPlane: eight calls of 50 packets/s.
const anticipateCapacity = 400

// Anticipated scale-out (local.Config.Anticipate, trend.go; the default for
// strategies with rounds) on the real data plane: one IDS instance (a netns
// forwarder behind a real Open vSwitch) takes a sustained rise of real
// packets, one call of 50 packets/s a second up to eight (its capacity,
// 400 packets/s). The overload trigger is the packet rate over the
// capacity (and the load over the loadThreshold, 90 % of it: the detector's
// first metric for a DP stage with a capacity since session 12; it read
// CPU, and the test set a CPU threshold of 0.5 %, which a forwarder passes
// at these rates) for the overload window (5 s). The
// real local controller launches a second IDS instance on the rise before
// any IDS instance is overloaded (the anticipated create's detail names
// the load it read, in percent of the capacity); the calls started after
// it is routable go through it, and every packet of every call reaches the
// receiving endpoint. Before anticipation read the carried share
// (session 11), it read Σ CPU, ≈ 1 % at these rates: no anticipated
// launch came (the wait below fails; with the ramp held at the capacity the
// overload trigger may fire, and then only a reactive launch follows).
func TestAnticipatedScaleOutOnTheRealPlane(t *testing.T) {
	r := newIDSRun(t, 1, anticipateCapacity, idsThresholds(vnf.Thresholds{CPU: 90, Mem: 95, PktRate: anticipateCapacity},
		func(lc *local.Config) { lc.Anticipate = true }))
	c := r.b.c
	t.Logf("set up: one IDS instance routable")
	w := &idsLaunch{r: r}
	start := time.Now()
	for k := 1; k <= anticipateCapacity/50; k++ { // the rise: a call a second
		waitFor(time.Until(start.Add(time.Duration(k-1)*time.Second)), func() bool { w.observe(); return false })
		r.start(t)
	}
	if !waitFor(20*time.Second, w.observe) {
		t.Fatalf("no IDS launch %v after the rise started (8 calls, %d packets/s); IDS %v; actions %+v",
			time.Since(start).Round(time.Second), anticipateCapacity, r.idsSummary(), c.Actions())
	}
	ov, a := w.overloaded, w.create
	if !strings.Contains(a.Detail, "anticipated") {
		t.Fatalf("the IDS launch %s: %q, want an anticipated one", a.InstanceID, a.Detail)
	}
	if !ov.IsZero() && ov.Before(a.At) {
		t.Fatalf("an IDS instance overloaded %v before the anticipated launch", a.At.Sub(ov))
	}
	t.Logf("anticipated launch of %s %v after the rise started: %s", a.InstanceID, a.At.Sub(start).Round(100*time.Millisecond), a.Detail)
	r.launchedTakesCalls(t, a)
	r.checkPackets(t)
	if w.observe(); !w.overloaded.IsZero() {
		t.Logf("an IDS instance overloaded %v after the anticipated launch", w.overloaded.Sub(a.At).Round(100*time.Millisecond))
	}
	r.noSecondLaunch(t, a)
}

// idsThresholds edits newIDSRun's controller: the IDS's thresholds th,
// then more (nil: nothing).
func idsThresholds(th vnf.Thresholds, more func(*local.Config)) func(*local.Config) {
	return func(lc *local.Config) {
		for i := range lc.VNFs {
			if lc.VNFs[i].Name == "ids" {
				lc.VNFs[i].Thresholds = th
			}
		}
		if more != nil {
			more(lc)
		}
	}
}

// idsLaunch is the controller's view a real launch test polls (every 10
// ms while it waits: an overload state lasts at least a sample): the first
// IDS overload, the IDS forwarders' highest CPU and the first IDS launch
// (reactive or anticipated: both have reason reactive).
type idsLaunch struct {
	r          *idsRun
	overloaded time.Time
	peakCPU    float64
	create     local.Action
}

// observe looks once; it reports whether the IDS was launched.
func (w *idsLaunch) observe() bool {
	c := w.r.b.c
	for _, in := range c.Instances() {
		if in.VNF != "ids" {
			continue
		}
		if in.State == local.StateOverload && w.overloaded.IsZero() {
			w.overloaded = time.Now()
		}
		w.peakCPU = max(w.peakCPU, in.Last.CPU)
	}
	for _, a := range c.Actions() {
		if a.VNF == "ids" && a.Kind == local.KindCreate && a.Reason == local.ReasonReactive && w.create.At.IsZero() {
			w.create = a
		}
	}
	return !w.create.At.IsZero()
}

// launchedTakesCalls checks that the launched IDS instance (a) becomes
// routable and takes the next two calls (least loaded), and that its
// forwarder carries them (its packet rate and flows in the controller's
// samples); the calls keep running (checkPackets ends them).
func (r *idsRun) launchedTakesCalls(t *testing.T, a local.Action) {
	t.Helper()
	c := r.b.c
	if !waitFor(20*time.Second, func() bool { return routable(c, "ids") == 2 }) {
		t.Fatalf("the launched %s never became routable: %+v", a.InstanceID, c.Instances())
	}
	x, ok := r.indexOf(a.InstanceID)
	if !ok {
		t.Fatalf("launched %s has no routing index", a.InstanceID)
	}
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
}

// noSecondLaunch checks that a is the only IDS launch by the reactive or
// anticipation rule so far.
func (r *idsRun) noSecondLaunch(t *testing.T, a local.Action) {
	t.Helper()
	for _, b := range r.b.c.Actions() {
		if b.VNF == "ids" && b.Kind == local.KindCreate && b.Reason == local.ReasonReactive && b.InstanceID != a.InstanceID {
			t.Errorf("a second IDS launch %s: %q", b.InstanceID, b.Detail)
		}
	}
}
