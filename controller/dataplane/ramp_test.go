package dataplane

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/dcroute"
	"github.com/ims-orch/ims-orch/controller/local"
	"github.com/ims-orch/ims-orch/controller/protocol"
	"github.com/ims-orch/ims-orch/controller/routing"
	"github.com/ims-orch/ims-orch/drivers"
	"github.com/ims-orch/ims-orch/drivers/netns"
	"github.com/ims-orch/ims-orch/drivers/netns/netnstest"
	"github.com/ims-orch/ims-orch/drivers/ovs/ovstest"
)

func routable(c *local.Controller, vnf string) int { return len(c.Routable(vnf)) }

// A ramp on the IDS stage with the real local controller of DC0: its DP
// instances are netns instances launched through drivers.Driver (booting →
// active), their statistics come through the agents' intake, the IDS is
// scaled out twice under rising traffic and one instance is moved to the
// buffer while it carries flows. Every packet is counted at the receiver:
// loss stays below 0.1 % and no flow through the buffered instance is cut.
// attachedBed is a plane attached to the real local controller of DC0
// (firewall, IDS, transcoder, one instance each through the netns driver)
// with the path 0→1 through DC0 in interval 1.
type attachedBed struct {
	p       *Plane
	drv     *netns.Driver
	c       *local.Controller
	routers []*dcroute.Router
}

func newAttachedBed(t *testing.T, ctx context.Context) *attachedBed {
	return newAttachedBedWith(t, ctx, nil)
}

// newAttachedBedWith is newAttachedBed with the local controller's config
// edited by edit (nil: unchanged).
func newAttachedBedWith(t *testing.T, ctx context.Context, edit func(*local.Config)) *attachedBed {
	return newAttachedBedOpts(t, ctx, bedOpts{edit: edit})
}

// bedOpts are newAttachedBedOpts' options.
type bedOpts struct {
	edit      func(*local.Config) // edits the local controller's config (nil: unchanged)
	learnIdle int                 // the plane's LearnIdle
	noWatch   bool                // no Plane.Watch: only the driver's and the controller's events drive the rules
}

// newAttachedBedOpts is newAttachedBedWith with more options.
func newAttachedBedOpts(t *testing.T, ctx context.Context, o bedOpts) *attachedBed {
	edit, learnIdle := o.edit, o.learnIdle
	d := ovstest.Start(t)
	prefix := d.Prefix()
	names := []string{"dc0", "dc1"}
	stages := []string{"firewall", "ids", "transcoder"}
	var routers []*dcroute.Router
	for _, dc := range names {
		r, err := dcroute.New(dc, names, stages, 0, func(err error) { t.Errorf("router: %v", err) })
		if err != nil {
			t.Fatal(err)
		}
		routers = append(routers, r)
	}
	drv, err := netns.NewDriver(netns.DriverConfig{Daemon: d, Bridges: map[string]string{"dc0": BridgeName(prefix, 0), "dc1": BridgeName(prefix, 1)},
		Forwarder: netnstest.Forwarder(t)})
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(ctx, Config{Daemon: d, Routers: routers, Names: names, Driver: drv, LearnIdle: learnIdle,
		OnError: func(err error) { t.Logf("plane: %v", err) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		drv.Close(context.Background())
		p.Close(context.Background())
	})
	var vnfs []local.VNFConfig
	for _, s := range stages {
		vnfs = append(vnfs, local.VNFConfig{Name: s, Min: 1})
	}
	h, err := p.Hooks(0)
	if err != nil {
		t.Fatal(err)
	}
	// StatsTimeout: on this shared, loaded machine a statistics read can
	// stall for seconds; the default 3 s would fail healthy instances
	lc := local.Config{DC: "dc0", VNFs: vnfs, Paths: h, Sink: h, StatsTimeout: 15 * time.Second}
	if edit != nil {
		edit(&lc)
	}
	c, err := local.New(lc, drv, clock.Real{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		if err := p.SampleStats(ctx, 0, c, time.Second); err != nil {
			t.Errorf("stats: %v", err)
		}
	}()
	if !o.noWatch {
		watch(t, p, time.Hour) // events drive it (ovs-vswitchd's exit, link deletions)
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	// the path set of interval 1 (steps 4 and 5 as the protocol runs them)
	entries := []protocol.PathEntry{{Entry: "dc0", Exit: "dc1", Hops: []string{"dc0", "dc0", "dc0", "dc0", "dc1"}}}
	for k := range names {
		hk, err := p.Hooks(k)
		if err != nil {
			t.Fatal(err)
		}
		hk.StoreNext(1, entries)
		hk.Enter(1)
	}
	if !waitFor(30*time.Second, func() bool {
		return routable(c, "firewall") == 1 && routable(c, "ids") == 1 && routable(c, "transcoder") == 1
	}) {
		t.Fatalf("instances not active: %+v", c.Instances())
	}
	return &attachedBed{p: p, drv: drv, c: c, routers: routers}
}

func TestRampOnOneStageWithTheLocalController(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b := newAttachedBed(t, ctx)
	p, c, routers := b.p, b.c, b.routers
	caller, callee := ip("10.100.0.1"), ip("10.101.0.1")
	p.AddUser(ctx, 0, caller)
	p.AddUser(ctx, 1, callee)
	rx := listen(t, p.UsersNS(1), "10.101.0.1:6000")
	stopFlows := make(chan struct{})
	type flow struct {
		port, sent int
		ids        uint8
	}
	var (
		mu    sync.Mutex
		flows []*flow
		wg    sync.WaitGroup
	)
	start := func(port int) {
		call := routing.Call{CallerDC: 0, CalleeDC: 1, CallerIP: caller, CalleeIP: callee,
			CallerSendPort: uint16(port), CallerRecvPort: 6001, CalleeSendPort: uint16(port), CalleeRecvPort: 6000,
			CallerEntryIP: EntryIP(0), CalleeEntryIP: EntryIP(1)}
		ds, err := p.StartCall(ctx, call, FlowStart{DC: 0, Packet: routing.Packet{Proto: 17, SrcIP: caller, SrcPort: uint16(port), DstIP: EntryIP(0), DstPort: 6000}})
		if err != nil || ds[0].Verdict != routing.Forward {
			t.Errorf("call %d: %v %v", port, ds, err)
			return
		}
		f := &flow{port: port, ids: ds[0].Instances[1]}
		s := dial(t, p.UsersNS(0), fmt.Sprintf("%s:%d", caller, port))
		mu.Lock()
		flows = append(flows, f)
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := 0
			for { // 50 packets/s until the ramp ends
				select {
				case <-stopFlows:
					mu.Lock()
					f.sent = n
					mu.Unlock()
					return
				default:
				}
				n += s.send(fmt.Sprintf("%s:6000", EntryIP(0)), 10, 20*time.Millisecond, nil)
			}
		}()
	}
	port := 30000
	ramp := func(n int) {
		for i := 0; i < n; i++ {
			port++
			start(port)
			time.Sleep(100 * time.Millisecond)
		}
	}
	ramp(4)
	if _, err := c.Scale("ids", 1, "ramp"); err != nil {
		t.Fatal(err)
	}
	waitFor(10*time.Second, func() bool { return routable(c, "ids") == 2 })
	ramp(4)
	if _, err := c.Scale("ids", 1, "ramp"); err != nil {
		t.Fatal(err)
	}
	waitFor(10*time.Second, func() bool { return routable(c, "ids") == 3 })
	ramp(4)
	if routable(c, "ids") != 3 {
		t.Fatalf("ids routable %d, want 3 after two scale-outs: %+v", routable(c, "ids"), c.Instances())
	}
	// one IDS instance to the buffer while its flows run
	indexOf := map[string]uint8{}
	routers[0].View(func(_ *routing.Table, id func(int, uint8) string) {
		for i := 0; i < 256; i++ {
			if x := id(2, uint8(i)); x != "" {
				indexOf[x] = uint8(i)
			}
		}
	})
	if _, err := c.Scale("ids", -1, "ramp down"); err != nil {
		t.Fatal(err)
	}
	buffered := ""
	for _, in := range c.Instances() {
		if in.VNF == "ids" && in.State == local.StateBuffered {
			buffered = in.ID
		}
	}
	if buffered == "" {
		t.Fatalf("no buffered IDS instance: %+v", c.Instances())
	}
	var onBuffered []*flow // flows the buffered instance carries, still sending
	mu.Lock()
	for _, f := range flows {
		if f.ids == indexOf[buffered] {
			onBuffered = append(onBuffered, f)
		}
	}
	mu.Unlock()
	if len(onBuffered) == 0 {
		t.Fatalf("the buffered instance %s (index %d) carries no running flow: the test proves nothing", buffered, indexOf[buffered])
	}
	ramp(2)
	st := map[string]float64{} // the highest packet rate each IDS instance reported
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		for _, in := range c.Instances() { // the buffered instance keeps carrying its flows
			if in.VNF == "ids" {
				st[in.ID] = max(st[in.ID], in.Last.PktRate)
			}
		}
	}
	close(stopFlows)
	wg.Wait()
	waitFor(20*time.Second, func() bool { // the last packets through the forwarders: generous on a loaded host
		sent, got := 0, 0
		for _, f := range flows {
			sent += f.sent
			got += rx.count(f.port)
		}
		return got >= sent
	})
	sent, got, cut := 0, 0, 0
	for _, f := range flows {
		g := rx.count(f.port)
		sent += f.sent
		got += g
		if g < f.sent {
			cut++
		}
	}
	idsFlows := map[uint8]int{}
	for _, f := range flows {
		idsFlows[f.ids]++
	}
	t.Logf("ramp: %d flows over IDS instances %v; packets %d/%d (loss %.3f %%), %d flows missing packets; buffered %s; highest IDS pkt/s reported %v",
		len(flows), idsFlows, got, sent, 100*float64(sent-got)/float64(sent), cut, buffered, st)
	for _, f := range onBuffered {
		if g := rx.count(f.port); g < f.sent {
			t.Errorf("flow %d through the buffered instance: %d of %d packets", f.port, g, f.sent)
		}
	}
	t.Logf("%d flows ran through %s after it was buffered, none cut", len(onBuffered), buffered)
	if float64(sent-got) >= 0.001*float64(sent) {
		t.Errorf("lost %d of %d packets, want < 0.1 %%", sent-got, sent)
	}
	if len(idsFlows) < 3 {
		t.Errorf("flows used %d IDS instances, want the 3 the ramp launched", len(idsFlows))
	}
	reported := 0
	for _, v := range st {
		if v > 0 {
			reported++
		}
	}
	if reported == 0 {
		t.Errorf("no IDS instance reported a packet rate through the intake: %v", st)
	}
}

// ovs-vswitchd killed under the attached plane: the driver reports every DP
// instance failed, the local controller replaces them through the driver,
// the restarted switch gets its rules back and the call's packets arrive
// again.
func TestAttachedVswitchdKilledInstancesReplaced(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b := newAttachedBed(t, ctx)
	p := b.p
	caller, callee := ip("10.100.0.1"), ip("10.101.0.1")
	p.AddUser(ctx, 0, caller)
	p.AddUser(ctx, 1, callee)
	rx := listen(t, p.UsersNS(1), "10.101.0.1:6000")
	call := routing.Call{CallerDC: 0, CalleeDC: 1, CallerIP: caller, CalleeIP: callee,
		CallerSendPort: 4000, CallerRecvPort: 6001, CalleeSendPort: 4000, CalleeRecvPort: 6000,
		CallerEntryIP: EntryIP(0), CalleeEntryIP: EntryIP(1)}
	if _, err := p.StartCall(ctx, call, FlowStart{DC: 0, Packet: routing.Packet{Proto: 17, SrcIP: caller, SrcPort: 4000, DstIP: EntryIP(0), DstPort: 6000}}); err != nil {
		t.Fatal(err)
	}
	s := dial(t, p.UsersNS(0), fmt.Sprintf("%s:4000", caller))
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			s.send(fmt.Sprintf("%s:6000", EntryIP(0)), 5, 20*time.Millisecond, nil)
		}
	}()
	defer func() { close(stop); <-done }()
	if !waitFor(20*time.Second, func() bool { return rx.count(4000) > 20 }) {
		t.Fatalf("no traffic before the kill: %d", rx.count(4000))
	}
	before := map[string]bool{}
	for _, in := range b.c.Instances() {
		before[in.ID] = true
	}
	// the recovery's timeline: the driver's events and ovs-vswitchd's return
	var tmu sync.Mutex
	var events []string
	mark := func(at time.Time, what string) {
		tmu.Lock()
		events = append(events, fmt.Sprintf("%s@%s", what, at.Format("15:04:05.000")))
		tmu.Unlock()
	}
	unsub := b.drv.Subscribe(func(ev drivers.Event) { mark(ev.At, fmt.Sprintf("%s:%s", ev.ID, ev.State)) })
	defer unsub()
	oldPid := p.d.VswitchdPID()
	killed := time.Now()
	if err := killPid(oldPid); err != nil {
		t.Fatal(err)
	}
	mark(killed, "kill")
	go func() {
		for i := 0; i < 3000; i++ {
			if pid := p.d.VswitchdPID(); pid != 0 && pid != oldPid {
				mark(time.Now(), "vswitchd-back")
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	if !waitFor(30*time.Second, func() bool {
		failed, fresh := 0, 0
		for _, in := range b.c.Instances() {
			if before[in.ID] && in.State == local.StateFailed {
				failed++
			}
			if !before[in.ID] && in.State == local.StateNormal {
				fresh++
			}
		}
		return fresh == 3 || (failed == 3 && fresh == 3)
	}) {
		t.Fatalf("instances not replaced after ovs-vswitchd died: %+v", b.c.Instances())
	}
	n := rx.count(4000)
	if !waitFor(10*time.Second, func() bool { return rx.count(4000) > n+10 }) {
		t.Fatalf("packets did not resume after the replacement (%d)", rx.count(4000))
	}
	t.Logf("ovs-vswitchd killed: 3 DP instances replaced by the local controller, packets flowing again after %v", time.Since(killed))
	tmu.Lock()
	t.Logf("timeline: %v", events)
	tmu.Unlock()
}
