package dataplane

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/controller/local"
	"github.com/ims-orch/ims-orch/controller/routing"
	"github.com/ims-orch/ims-orch/placement/vnf"
)

// FallingScaleIn (controller/local/fallscale.go, the default for strategies
// with rounds) on the real data plane: three IDS instances (netns
// forwarders behind a real Open vSwitch) carry six calls of 50 packets/s,
// pinned to them by the plane's per-flow rules; the calls then end one per
// instance every 6 s, and none starts. The real local controller reads the
// forwarders' packet rates and the switch's flow counts through the
// agents' intake, in real time (its guards ask for 30 s of history: the
// packets, and so the controller, run on the wall clock, as every attached
// test here does).
//
// idsRun is what the real tests of the local controller's rules on the IDS
// share (these, and anticipation's in anticipate_test.go): the bed, the
// calls, and for these the instance the rule buffered.
type idsRun struct {
	b        *attachedBed
	ctx      context.Context
	caller   routing.IPv4
	callee   routing.IPv4
	rx       *receiver
	calls    map[int]*liveCall // by source port
	idsOf    map[int]uint8     // the IDS index each call is pinned to
	ended    map[int]int       // the ended calls' sent counts
	port     int
	buffered string // the IDS instance the rule buffered
	index    uint8  // its routing index
	loadAt   time.Time
}

// fallCapacity is the IDS's capacity in packets/s: two calls fill an
// instance, and the six calls' three instances carry 1.5 instances' worth
// once three have ended (≤ 0.95 × 2: the rule's bar, DefaultFallingScaleIn
// 0.98 capped at the CPU threshold 95 ÷ 100 with ReactiveUtilization 0).
const fallCapacity = 100

// newIDSRun starts a bed whose local controller is edited by edit, with
// reactive scaling on and no overload on any stage (thresholds out of
// reach; edit may set the IDS's), the IDS with pinned flows and capacity
// packets/s and n instances routable (the operator's scale-out to n,
// released: the test's load decides from there), a caller in dc0's users'
// namespace and a receiving callee in dc1's.
func newIDSRun(t *testing.T, n int, capacity float64, edit func(*local.Config)) *idsRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel) // should the set-up fail
	b := newAttachedBedWith(t, ctx, func(lc *local.Config) {
		lc.Reactive = true
		for i := range lc.VNFs { // no overload: only the rule under test acts
			lc.VNFs[i].Thresholds = vnf.Thresholds{CPU: 95, Mem: 95, PktRate: 1e6}
			if lc.VNFs[i].Name == "ids" {
				lc.VNFs[i].PinnedFlows, lc.VNFs[i].Capacity = true, capacity
			}
		}
		edit(lc)
	})
	r := &idsRun{b: b, ctx: ctx, caller: ip("10.100.0.1"), callee: ip("10.101.0.1"),
		calls: map[int]*liveCall{}, idsOf: map[int]uint8{}, ended: map[int]int{}, port: 34000}
	if err := b.p.AddUser(ctx, 0, r.caller); err != nil {
		t.Fatal(err)
	}
	if err := b.p.AddUser(ctx, 1, r.callee); err != nil {
		t.Fatal(err)
	}
	r.rx = listen(t, b.p.UsersNS(1), "10.101.0.1:6000")
	if n > 1 {
		if _, err := b.c.Scale("ids", n-1, fmt.Sprintf("%d IDS instances", n)); err != nil {
			t.Fatal(err)
		}
		if !waitFor(30*time.Second, func() bool { return routable(b.c, "ids") == n }) {
			t.Fatalf("IDS instances not routable: %+v", b.c.Instances())
		}
		// the operator's scale-out holds a floor of n; the rules honour it
		if _, err := b.c.Release("ids", "the test's load decides"); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, l := range r.calls {
			select {
			case <-l.stop:
			default:
				l.end()
			}
		}
	})
	t.Cleanup(cancel) // first of the clean-ups: the statistics sampling ends before the bed closes
	return r
}

// fallBuffered is the start of both FallingScaleIn tests (in parallel:
// each has its own switch, namespaces and controller, and waits ≈ 35 s of
// wall clock for the rule's history): three IDS instances, the calls,
// their fall, the rule's buffering (fallToBuffer); it returns the run, its
// controller and the calls pinned to the buffered instance.
func fallBuffered(t *testing.T) (*idsRun, *local.Controller, []int) {
	t.Parallel()
	r := newIDSRun(t, 3, fallCapacity, func(lc *local.Config) { lc.FallingScaleIn = local.DefaultFallingScaleIn })
	c := r.fallToBuffer(t)
	return r, c, r.onIndex(r.index)
}

// start starts a call of 50 packets/s and returns its source port.
func (r *idsRun) start(t *testing.T) int {
	t.Helper()
	r.port++
	port := r.port
	p := r.b.p
	call := routing.Call{CallerDC: 0, CalleeDC: 1, CallerIP: r.caller, CalleeIP: r.callee,
		CallerSendPort: uint16(port), CallerRecvPort: 6001, CalleeSendPort: uint16(port), CalleeRecvPort: 6000,
		CallerEntryIP: EntryIP(0), CalleeEntryIP: EntryIP(1)}
	ds, err := p.StartCall(r.ctx, call, FlowStart{DC: 0, Packet: routing.Packet{Proto: 17, SrcIP: r.caller, SrcPort: uint16(port), DstIP: EntryIP(0), DstPort: 6000}})
	if err != nil || ds[0].Verdict != routing.Forward {
		t.Fatalf("call %d: %v %v", port, ds, err)
	}
	r.calls[port] = startLive(call, port, r.rx, dial(t, p.UsersNS(0), fmt.Sprintf("%s:%d", r.caller, port)), fmt.Sprintf("%s:6000", EntryIP(0)))
	r.idsOf[port] = ds[0].Instances[1]
	return port
}

// end ends a call: its sender stops, its last packets arrive (bounded),
// then the plane removes its rules.
func (r *idsRun) end(t *testing.T, port int) {
	t.Helper()
	l := r.calls[port]
	sent := l.end()
	waitFor(10*time.Second, func() bool { return r.rx.count(port) >= sent })
	if err := r.b.p.EndCall(r.ctx, l.call); err != nil {
		t.Fatal(err)
	}
	r.ended[port] = sent
	delete(r.calls, port)
}

// onIndex lists the running calls pinned to IDS index x.
func (r *idsRun) onIndex(x uint8) []int {
	var ps []int
	for port := range r.calls {
		if r.idsOf[port] == x {
			ps = append(ps, port)
		}
	}
	return ps
}

// indexOf is the IDS routing index of instance id.
func (r *idsRun) indexOf(id string) (uint8, bool) {
	var x uint8
	ok := false
	r.b.routers[0].View(func(_ *routing.Table, name func(int, uint8) string) {
		for i := 0; i < 256; i++ {
			if name(2, uint8(i)) == id {
				x, ok = uint8(i), true
			}
		}
	})
	return x, ok
}

// fallingBuffers returns the rule's buffer actions on the IDS.
func fallingBuffers(c *local.Controller) []local.Action {
	var out []local.Action
	for _, a := range c.Actions() {
		if a.VNF == "ids" && a.Kind == local.KindBuffer && strings.Contains(a.Detail, "falling load") {
			out = append(out, a)
		}
	}
	return out
}

// fallToBuffer runs the load up to the rule's buffering: six calls, two on
// each IDS instance, then one call per instance ended every 6 s from 16 s
// on (the rule's guards need the load to have fallen over the last 10 and
// 30 s, and to fit at 0.95 on two instances for 5 s: ≈ 33 s after the
// calls started). It returns once the rule buffered an instance, having
// checked that instance still carries a running call, with the controller.
func (r *idsRun) fallToBuffer(t *testing.T) *local.Controller {
	t.Helper()
	c := r.b.c
	for range 6 {
		r.start(t)
	}
	r.loadAt = time.Now()
	per := map[uint8][]int{}
	for port, x := range r.idsOf {
		per[x] = append(per[x], port)
	}
	if len(per) != 3 {
		t.Fatalf("six calls over IDS indexes %v, want two on each of 3", per)
	}
	if !waitFor(20*time.Second, func() bool {
		n := 0
		for _, in := range c.Instances() {
			if in.VNF == "ids" && in.State == local.StateNormal && in.Last.Flows == 2 && in.Last.PktRate > 0 {
				n++
			}
		}
		return n == 3
	}) {
		t.Fatalf("the IDS instances did not report 2 flows each: %+v", c.Instances())
	}
	if as := fallingBuffers(c); len(as) > 0 {
		t.Fatalf("buffered on a steady load: %+v", as)
	}
	var xs []uint8
	for x := range per {
		xs = append(xs, x)
	}
	for k, x := range xs { // the offered load falls: one call per instance ends
		time.Sleep(time.Until(r.loadAt.Add(time.Duration(16+6*k) * time.Second)))
		r.end(t, r.onIndex(x)[0])
	}
	if !waitFor(20*time.Second, func() bool { return len(fallingBuffers(c)) > 0 }) {
		t.Fatalf("no falling-load buffering %v after the calls started; IDS %v", time.Since(r.loadAt).Round(time.Second), r.idsSummary())
	}
	a := fallingBuffers(c)[0]
	r.buffered = a.InstanceID
	x, ok := r.indexOf(r.buffered)
	if !ok {
		t.Fatalf("buffered %s has no routing index", r.buffered)
	}
	r.index = x
	if st := stateOf(c, r.buffered); st != local.StateBuffered {
		t.Fatalf("%s is %q right after the falling scale-in, want buffered", r.buffered, st)
	}
	if len(r.onIndex(x)) == 0 {
		t.Fatalf("the buffered %s carries no running call: the test proves nothing (calls %v)", r.buffered, r.idsOf)
	}
	t.Logf("buffered %s (index %d, %d pinned calls) %v after the calls started: %s", r.buffered, x, len(r.onIndex(x)),
		time.Since(r.loadAt).Round(100*time.Millisecond), a.Detail)
	return c
}

// idsSummary is the IDS instances' state and last sample, for a failure
// message.
func (r *idsRun) idsSummary() []string {
	var last []string
	for _, in := range r.b.c.Instances() {
		if in.VNF == "ids" {
			last = append(last, fmt.Sprintf("%s %s flows %d pkt/s %.0f cpu %.2f", in.ID, in.State, in.Last.Flows, in.Last.PktRate, in.Last.CPU))
		}
	}
	return last
}

// working counts the IDS's working instances.
func (r *idsRun) working() int {
	n := 0
	for _, in := range r.b.c.Instances() {
		if in.VNF == "ids" && (in.State == local.StateNormal || in.State == local.StateOverload) {
			n++
		}
	}
	return n
}

// startOffBuffer starts a call and checks it did not land on the buffered
// instance.
func (r *idsRun) startOffBuffer(t *testing.T) int {
	t.Helper()
	port := r.start(t)
	if r.idsOf[port] == r.index {
		t.Errorf("new call %d landed on the buffered %s (index %d)", port, r.buffered, r.index)
	}
	return port
}

// checkPackets stops every running call's sender (their rules stay until
// the bed closes: nothing is checked after) and checks that the receiving
// endpoint got every packet of every call.
func (r *idsRun) checkPackets(t *testing.T) {
	t.Helper()
	for port, l := range r.calls {
		r.ended[port] = l.end()
		delete(r.calls, port)
	}
	waitFor(10*time.Second, func() bool { // their last packets through the forwarders
		for port, n := range r.ended {
			if r.rx.count(port) < n {
				return false
			}
		}
		return true
	})
	sent, got := 0, 0
	for port, n := range r.ended {
		g := r.rx.count(port)
		sent += n
		got += g
		if g < n {
			t.Errorf("call %d (IDS index %d): %d of %d packets at the receiver", port, r.idsOf[port], g, n)
		}
	}
	t.Logf("%d calls: %d of %d packets at the receiver", len(r.ended), got, sent)
}

// The rule buffers one instance on the real plane; the buffered instance's
// pinned call keeps every packet until it ends, no new call lands on it, it
// is destroyed once its call ended while the load still falls, and two
// instances stay. Before the fall was read in the bar's unit (carried), the
// rule read Σ CPU: the forwarders' few percent never fell by the 9 points
// its rate guard asks of three instances, and nothing was buffered (the
// wait in fallToBuffer fails).
func TestFallingScaleInOnTheRealPlane(t *testing.T) {
	r, c, pinned := fallBuffered(t)
	r.startOffBuffer(t) // fewer start: one
	// the buffered instance keeps forwarding its pinned call (its
	// forwarder's packet rate, then every packet at the receiver below)
	if !waitFor(10*time.Second, func() bool {
		for _, in := range c.Instances() {
			if in.ID == r.buffered && in.State == local.StateBuffered && in.Last.PktRate > 20 && in.Last.Flows == len(pinned) {
				return true
			}
		}
		return false
	}) {
		t.Fatalf("the buffered %s does not report its pinned call's packets: %+v", r.buffered, c.Instances())
	}
	if st := stateOf(c, r.buffered); st != local.StateBuffered {
		t.Fatalf("%s is %q with %d calls pinned, want buffered", r.buffered, st, len(pinned))
	}
	// its calls end, and one more: the load still falls
	for _, port := range pinned {
		r.end(t, port)
	}
	for port := range r.calls {
		if r.idsOf[port] != r.index {
			r.end(t, port)
			break
		}
	}
	if !waitFor(15*time.Second, func() bool { return stateOf(c, r.buffered) == "" }) {
		t.Fatalf("%s not destroyed after its calls ended on a falling load: %+v", r.buffered, c.Instances())
	}
	var destroy local.Action
	for _, a := range c.Actions() {
		if a.Kind == local.KindDestroy && a.InstanceID == r.buffered {
			destroy = a
		}
	}
	if !strings.Contains(destroy.Detail, "on a falling load") {
		t.Errorf("%s destroyed by %+v, want the falling rule's trim", r.buffered, destroy)
	}
	t.Logf("%s destroyed %v after the calls started: %s", r.buffered, time.Since(r.loadAt).Round(100*time.Millisecond), destroy.Detail)
	r.checkPackets(t)
	if w := r.working(); w != 2 {
		t.Errorf("%d working IDS instances at the end, want 2 (FallingScaleInLeave)", w)
	}
	if as := fallingBuffers(c); len(as) != 1 {
		t.Errorf("falling-load buffer actions %+v, want one", as)
	}
}

// A real flap: the load falls, the rule buffers an instance, then the load
// rises again (four calls start) and the buffered instance's pinned call
// ends. The instance is not destroyed (the load no longer falls), no new
// call lands on it, and no packet of any call is lost.
func TestFallingScaleInFlapOnTheRealPlane(t *testing.T) {
	r, c, pinned := fallBuffered(t)
	for range 4 { // the rise
		r.startOffBuffer(t)
	}
	for _, port := range pinned {
		r.end(t, port)
	}
	// five samples of the emptied instance after its calls ended: enough
	// for the trim (2 s grace) had the load still been falling
	var since time.Time
	if !waitFor(15*time.Second, func() bool {
		for _, in := range c.Instances() {
			if in.ID != r.buffered || in.Last.Flows != 0 || in.Last.FlowsUnknown {
				continue
			}
			if since.IsZero() {
				since = in.Last.At
			}
			return in.Last.At.Sub(since) >= 5*time.Second
		}
		return stateOf(c, r.buffered) == ""
	}) {
		t.Fatalf("no 0-flow samples of %s for 5 s: %+v", r.buffered, c.Instances())
	}
	if st := stateOf(c, r.buffered); st != local.StateBuffered {
		t.Errorf("%s is %q on a rising load, want kept in the buffer", r.buffered, st)
	}
	for _, a := range c.Actions() {
		if a.Kind == local.KindDestroy && a.VNF == "ids" {
			t.Errorf("an IDS instance destroyed on a rising load: %+v", a)
		}
	}
	r.checkPackets(t)
	if w := r.working(); w != 2 {
		t.Errorf("%d working IDS instances, want 2", w)
	}
}
