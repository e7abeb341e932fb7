package dataplane

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/controller/local"
	"github.com/ims-orch/ims-orch/controller/protocol"
	"github.com/ims-orch/ims-orch/controller/routing"
)

// liveCall is a call whose one media flow a goroutine sends at 50 packets/s
// until stop; sent is what it sent.
type liveCall struct {
	call routing.Call
	port int // the sender's source port (the receiver counts by it)
	rx   *receiver
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex
	sent int
}

func (l *liveCall) end() int {
	close(l.stop)
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sent
}

// startLive starts sending call's media flow from s to dst at 50
// packets/s until its end; port is the sender's source port.
func startLive(call routing.Call, port int, rx *receiver, s *sender, dst string) *liveCall {
	l := &liveCall{call: call, port: port, rx: rx, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for {
			select {
			case <-l.stop:
				return
			default:
			}
			n := s.send(dst, 5, 20*time.Millisecond, nil)
			l.mu.Lock()
			l.sent += n
			l.mu.Unlock()
		}
	}()
	return l
}

// Calls pinned to a DP instance that is buffered and then trimmed from the
// buffer (local.Config.TrimBuffer: the interval's trim) keep getting every
// packet at the receiving endpoint until they end, and the instance is
// destroyed once the flows its switch pins to it are gone. The instance
// carries one flow that entered the chain in its own DC (the plane's
// per-flow rule) and one that arrived through the tunnel (a rule the switch
// learned), so both kinds of count are exercised. Before the flow counts,
// the DP samples said FlowsUnknown (or 0 flows) and the trim destroyed the
// instance at once: the wait for the counts below fails, and the two calls
// lose their packets after the trim.
func TestTrimmedInstanceKeepsItsCallsUntilTheyEnd(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b := newAttachedBedOpts(t, ctx, bedOpts{edit: func(lc *local.Config) { lc.TrimBuffer, lc.BufferSpare = true, 0 }, learnIdle: 2})
	p, c := b.p, b.c
	// interval 2 adds the pair dc1→dc0, served by dc0's stages
	entries := []protocol.PathEntry{
		{Entry: "dc0", Exit: "dc1", Hops: []string{"dc0", "dc0", "dc0", "dc0", "dc1"}},
		{Entry: "dc1", Exit: "dc0", Hops: []string{"dc1", "dc0", "dc0", "dc0", "dc0"}},
	}
	hooks := make([]Hooks, 2)
	for k := range hooks {
		h, err := p.Hooks(k)
		if err != nil {
			t.Fatal(err)
		}
		hooks[k] = h
		h.StoreNext(2, entries)
		h.Enter(2)
	}
	if err := b.routers[0].SetPackLimit("ids", 3); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Scale("ids", 1, "second IDS"); err != nil {
		t.Fatal(err)
	}
	if !waitFor(30*time.Second, func() bool { return routable(c, "ids") == 2 }) {
		t.Fatalf("second IDS instance not routable: %+v", c.Instances())
	}
	caller0, callee1 := ip("10.100.0.1"), ip("10.101.0.1")
	caller1, callee0 := ip("10.101.0.2"), ip("10.100.0.2")
	for _, u := range []struct {
		dc int
		ip routing.IPv4
	}{{0, caller0}, {1, callee1}, {1, caller1}, {0, callee0}} {
		if err := p.AddUser(ctx, u.dc, u.ip); err != nil {
			t.Fatal(err)
		}
	}
	rx1 := listen(t, p.UsersNS(1), "10.101.0.1:6000")
	rx0 := listen(t, p.UsersNS(0), "10.100.0.2:6002")
	start := func(fromDC int, port int) *liveCall {
		var call routing.Call
		var f FlowStart
		var ns, src, dst string
		var rx *receiver
		if fromDC == 0 {
			call = routing.Call{CallerDC: 0, CalleeDC: 1, CallerIP: caller0, CalleeIP: callee1,
				CallerSendPort: uint16(port), CallerRecvPort: 6001, CalleeSendPort: uint16(port), CalleeRecvPort: 6000,
				CallerEntryIP: EntryIP(0), CalleeEntryIP: EntryIP(1)}
			f = FlowStart{DC: 0, Packet: routing.Packet{Proto: 17, SrcIP: caller0, SrcPort: uint16(port), DstIP: EntryIP(0), DstPort: 6000}}
			ns, src, dst, rx = p.UsersNS(0), fmt.Sprintf("%s:%d", caller0, port), fmt.Sprintf("%s:6000", EntryIP(0)), rx1
		} else {
			call = routing.Call{CallerDC: 1, CalleeDC: 0, CallerIP: caller1, CalleeIP: callee0,
				CallerSendPort: uint16(port), CallerRecvPort: 6003, CalleeSendPort: uint16(port), CalleeRecvPort: 6002,
				CallerEntryIP: EntryIP(1), CalleeEntryIP: EntryIP(0)}
			f = FlowStart{DC: 1, Packet: routing.Packet{Proto: 17, SrcIP: caller1, SrcPort: uint16(port), DstIP: EntryIP(1), DstPort: 6002}}
			ns, src, dst, rx = p.UsersNS(1), fmt.Sprintf("%s:%d", caller1, port), fmt.Sprintf("%s:6002", EntryIP(1)), rx0
		}
		if _, err := p.StartCall(ctx, call, f); err != nil {
			t.Fatalf("call from dc%d port %d: %v", fromDC, port, err)
		}
		return startLive(call, port, rx, dial(t, ns, src), dst)
	}
	// pack limit 3: A, B, C fill the first IDS instance, E goes to the
	// second, and the tag rule for dc1→dc0 names the second (the first has
	// no room), so D is learned towards it
	a, bb, cc := start(0, 31001), start(0, 31002), start(0, 31003)
	e := start(0, 31004)
	d := start(1, 32001)
	var first, second string
	if !waitFor(20*time.Second, func() bool {
		first, second = "", ""
		for _, in := range c.Instances() {
			if in.VNF != "ids" || in.State != local.StateNormal {
				continue
			}
			switch in.Last.Flows {
			case 3:
				first = in.ID
			case 2:
				second = in.ID
			}
		}
		return first != "" && second != "" && d.rx.count(d.port) > 0
	}) {
		t.Fatalf("the IDS instances did not report 3 and 2 flows (D got %d packets): %+v", d.rx.count(d.port), c.Instances())
	}
	// the counts are the routing loads too: the learned call D counts on
	// the second instance, where Route alone saw only E
	loads := map[string]float64{}
	b.routers[0].View(func(tb *routing.Table, id func(int, uint8) string) {
		for _, x := range tb.Instances(2) {
			loads[id(2, x.Index)] = x.Load
		}
	})
	if loads[first] != 3 || loads[second] != 2 {
		t.Fatalf("IDS routing loads %v, want %s 3 and %s 2 (the flows its switch carries)", loads, first, second)
	}
	if _, err := c.Scale("ids", -1, "to the buffer"); err != nil {
		t.Fatal(err)
	}
	if st := stateOf(c, second); st != local.StateBuffered {
		t.Fatalf("%s (2 flows) is %q after the scale-in, want buffered (the fewest flows)", second, st)
	}
	// the next round's enter: a whole interval in the buffer, beyond the
	// 0 spare ones: the trim takes it out of the buffer
	for k := range hooks {
		hooks[k].StoreNext(3, entries)
	}
	hooks[1].Enter(3)
	if r := c.Handle(protocol.Request{Header: protocol.Header{Round: 2, Step: protocol.StepEnter, Seq: 1, DC: "dc0"}}); r.Error != "" {
		t.Fatal(r.Error)
	}
	if st := stateOf(c, second); st != local.StateDraining {
		t.Fatalf("%s is %q right after the trim, want draining (2 flows pinned)", second, st)
	}
	trimmed := time.Now()
	time.Sleep(3 * time.Second) // the pinned calls go on through the draining instance
	if st := stateOf(c, second); st != local.StateDraining {
		t.Fatalf("%s is %q 3 s after the trim with 2 calls pinned, want draining", second, st)
	}
	// the calls end one by one: every packet sent must have arrived first
	endCall := func(l *liveCall) (int, int) {
		sent := l.end()
		waitFor(10*time.Second, func() bool { return l.rx.count(l.port) >= sent })
		got := l.rx.count(l.port)
		if err := p.EndCall(ctx, l.call); err != nil {
			t.Fatal(err)
		}
		return sent, got
	}
	sentE, gotE := endCall(e)
	if st := stateOf(c, second); st != local.StateDraining {
		t.Fatalf("%s is %q with the learned call still running, want draining", second, st)
	}
	time.Sleep(2 * time.Second) // D alone on it now
	sentD, gotD := endCall(d)
	gone := waitFor(30*time.Second, func() bool { return stateOf(c, second) == "" })
	t.Logf("through the trim: entry call %d/%d packets, learned call %d/%d; instance %s destroyed %v after the trim (gone %v)",
		gotE, sentE, gotD, sentD, second, time.Since(trimmed).Round(100*time.Millisecond), gone)
	for _, x := range []struct {
		name      string
		sent, got int
	}{{"entry call E", sentE, gotE}, {"learned call D", sentD, gotD}} {
		if x.got < x.sent || x.sent < 150 {
			t.Errorf("%s through the trimmed instance: %d of %d packets", x.name, x.got, x.sent)
		}
	}
	if !gone {
		t.Errorf("%s not destroyed after its flows ended: %+v", second, c.Instances())
	}
	for _, l := range []*liveCall{a, bb, cc} {
		sent := l.end()
		waitFor(10*time.Second, func() bool { return l.rx.count(l.port) >= sent })
		if got := l.rx.count(l.port); got < sent {
			t.Errorf("call %d on the working instance: %d of %d packets", l.port, got, sent)
		}
	}
	if st := stateOf(c, first); st != local.StateNormal {
		t.Errorf("the working instance %s is %q", first, st)
	}
}

func stateOf(c *local.Controller, id string) local.State {
	for _, in := range c.Instances() {
		if in.ID == id {
			return in.State
		}
	}
	return ""
}

// An instance destroyed while a call is still pinned to it (a draining
// instance at its drain timeout) changes no routable set, so nothing asked
// the plane to resync: the call's entry rule kept sending to the vanished
// port until the DC's next rule update. Its gone event now brings the rules
// in line (the local controller's sink: Hooks.Forget → departed): the call
// goes on through the other instance. No Watch runs, so no Check can do it
// instead (before, Check polled the driver's active set for this: the test
// then fails with 0 packets after the destroy).
func TestDestroyedInstancesPinnedCallMovesOn(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b := newAttachedBedOpts(t, ctx, bedOpts{edit: func(lc *local.Config) {
		lc.TrimBuffer, lc.BufferSpare, lc.DrainTimeout = true, 0, time.Second
	}, noWatch: true})
	p, c := b.p, b.c
	entries := []protocol.PathEntry{{Entry: "dc0", Exit: "dc1", Hops: []string{"dc0", "dc0", "dc0", "dc0", "dc1"}}}
	hooks := make([]Hooks, 2)
	for k := range hooks {
		h, err := p.Hooks(k)
		if err != nil {
			t.Fatal(err)
		}
		hooks[k] = h
	}
	if _, err := c.Scale("ids", 1, "second IDS"); err != nil {
		t.Fatal(err)
	}
	if !waitFor(30*time.Second, func() bool { return routable(c, "ids") == 2 }) {
		t.Fatalf("second IDS instance not routable: %+v", c.Instances())
	}
	caller, callee := ip("10.100.0.1"), ip("10.101.0.1")
	if err := p.AddUser(ctx, 0, caller); err != nil {
		t.Fatal(err)
	}
	if err := p.AddUser(ctx, 1, callee); err != nil {
		t.Fatal(err)
	}
	rx := listen(t, p.UsersNS(1), "10.101.0.1:6000")
	var calls []*liveCall
	idsOf := map[int]uint8{}
	for _, port := range []int{33001, 33002} { // least-loaded: one on each IDS instance
		call := routing.Call{CallerDC: 0, CalleeDC: 1, CallerIP: caller, CalleeIP: callee,
			CallerSendPort: uint16(port), CallerRecvPort: 6001, CalleeSendPort: uint16(port), CalleeRecvPort: 6000,
			CallerEntryIP: EntryIP(0), CalleeEntryIP: EntryIP(1)}
		ds, err := p.StartCall(ctx, call, FlowStart{DC: 0, Packet: routing.Packet{Proto: 17, SrcIP: caller, SrcPort: uint16(port), DstIP: EntryIP(0), DstPort: 6000}})
		if err != nil || ds[0].Verdict != routing.Forward {
			t.Fatalf("call %d: %v %v", port, ds, err)
		}
		idsOf[port] = ds[0].Instances[1]
		calls = append(calls, startLive(call, port, rx, dial(t, p.UsersNS(0), fmt.Sprintf("%s:%d", caller, port)), fmt.Sprintf("%s:6000", EntryIP(0))))
	}
	defer func() {
		for _, l := range calls {
			select {
			case <-l.stop:
			default:
				l.end()
			}
		}
	}()
	if idsOf[33001] == idsOf[33002] {
		t.Fatalf("both calls on IDS index %d", idsOf[33001])
	}
	if !waitFor(20*time.Second, func() bool {
		n := 0
		for _, in := range c.Instances() {
			if in.VNF == "ids" && in.Last.Flows == 1 {
				n++
			}
		}
		return n == 2
	}) {
		t.Fatalf("IDS flows not counted: %+v", c.Instances())
	}
	if _, err := c.Scale("ids", -1, "to the buffer"); err != nil {
		t.Fatal(err)
	}
	var gone string
	for _, in := range c.Instances() {
		if in.VNF == "ids" && in.State == local.StateBuffered {
			gone = in.ID
		}
	}
	var pinned *liveCall
	b.routers[0].View(func(_ *routing.Table, id func(int, uint8) string) {
		for _, l := range calls {
			if id(2, idsOf[l.port]) == gone {
				pinned = l
			}
		}
	})
	if gone == "" || pinned == nil {
		t.Fatalf("buffered %q, pinned call %v: %+v", gone, pinned, c.Instances())
	}
	for k := range hooks {
		hooks[k].StoreNext(2, entries)
	}
	hooks[1].Enter(2)
	if r := c.Handle(protocol.Request{Header: protocol.Header{Round: 1, Step: protocol.StepEnter, Seq: 1, DC: "dc0"}}); r.Error != "" {
		t.Fatal(r.Error)
	}
	if !waitFor(20*time.Second, func() bool { return stateOf(c, gone) == "" }) {
		t.Fatalf("%s not destroyed at its drain timeout: %+v", gone, c.Instances())
	}
	at := rx.count(pinned.port)
	if !waitFor(10*time.Second, func() bool { return rx.count(pinned.port) >= at+50 }) {
		t.Fatalf("call %d pinned to the destroyed %s: %d packets after the destroy, want ≥ 50 (black-holed)", pinned.port, gone, rx.count(pinned.port)-at)
	}
	t.Logf("call %d went on after %s was destroyed with it pinned: +%d packets", pinned.port, gone, rx.count(pinned.port)-at)
}
