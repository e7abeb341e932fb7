package dataplane

import (
	"context"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/dcroute"
	"github.com/ims-orch/ims-orch/controller/fsm"
	"github.com/ims-orch/ims-orch/controller/global"
	"github.com/ims-orch/ims-orch/controller/local"
	"github.com/ims-orch/ims-orch/controller/routing"
	"github.com/ims-orch/ims-orch/controller/system"
	"github.com/ims-orch/ims-orch/drivers/fake"
	"github.com/ims-orch/ims-orch/drivers/netns"
	"github.com/ims-orch/ims-orch/drivers/ovs"
	"github.com/ims-orch/ims-orch/drivers/split"
	"github.com/ims-orch/ims-orch/placement/vnf"
)

// stampedReceiver keeps the arrival time of every packet a users'
// namespace socket gets.
type stampedReceiver struct {
	mu sync.Mutex
	at []time.Time
}

func (r *stampedReceiver) between(a, b time.Time) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, t := range r.at {
		if !t.Before(a) && t.Before(b) {
			n++
		}
	}
	return n
}

func listenStamped(t *testing.T, ns, addr string) *stampedReceiver {
	t.Helper()
	c, err := ListenUDP(ns, addr)
	if err != nil {
		t.Fatal(err)
	}
	r := &stampedReceiver{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			if _, _, err := c.ReadFromUDP(buf); err != nil {
				return
			}
			now := time.Now()
			r.mu.Lock()
			r.at = append(r.at, now)
			r.mu.Unlock()
		}
	}()
	t.Cleanup(func() { c.Close(); <-done })
	return r
}

// DP workload per pair from the real switch (issue 14): the controllers are
// composed by system.New as the daemon composes them with a real data plane
// (paths and instances through Lazy, DP stages as netns instances on Open
// vSwitch, the CP VNFs on the fake cloud), with the DP meters reading each
// DC's switch (Lazy.Counters). Real UDP packets go from dc0's users to
// dc1's at a steady rate; the global engine's measured DP workload of
// dc0→dc1 over each interval the traffic covers is within 5 % of what the
// receiving socket counted over the same interval, its prediction is not
// zero, and the pair dc1→dc0 (no traffic) measures nothing.
func TestDPWorkloadFromTheRealSwitch(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const prefix = "it14m"
	d := ovs.StartForTest(t, prefix)
	names := []string{"dc0", "dc1"}
	stages := []string{"firewall", "ids", "transcoder"}
	drv, err := netns.NewDriver(netns.DriverConfig{Daemon: d, Bridges: map[string]string{"dc0": BridgeName(prefix, 0), "dc1": BridgeName(prefix, 1)},
		Forwarder: netns.ForwarderForTest(t)})
	if err != nil {
		t.Fatal(err)
	}
	cp, err := fake.New(clock.Real{}, fake.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sd, err := split.NewDriver(split.DriverConfig{CP: cp, CPVNFs: []string{"pcscf", "scscf"}, Other: drv})
	if err != nil {
		t.Fatal(err)
	}
	top := fsm.Topology{DCs: names, SCSCFDC: "dc0", PCSCF: fsm.VNF{Name: "pcscf", Capacity: 500}, SCSCF: fsm.VNF{Name: "scscf", Capacity: 200},
		DelayMs: [][]float64{{0, 10}, {10, 0}}}
	vnfs := map[string]local.VNFConfig{}
	for _, s := range append([]string{"pcscf", "scscf"}, stages...) {
		vnfs[s] = local.VNFConfig{Min: 1, Thresholds: vnf.Thresholds{CPU: 90, Mem: 50, PktRate: 1e6}}
	}
	for _, s := range stages {
		top.Stages = append(top.Stages, fsm.VNF{Name: s, Capacity: 10000})
	}
	const interval = 4 * time.Second
	lazy := NewLazy(names)
	sys, err := system.New(system.Config{Topology: top, Policy: fsm.Policy{DelayBoundMs: 250},
		Global: global.Config{Interval: interval, StepDeadline: interval / 2}, Local: local.Config{StatsTimeout: -1}, VNFs: vnfs, InitialRound: true,
		WrapSink: lazy.Sink, WrapPaths: lazy.Paths, DPMeters: &system.DPMeters{Counters: lazy.Counters}}, sd, clock.Real{})
	if err != nil {
		t.Fatal(err)
	}
	if len(sys.Meters) != 2 {
		t.Fatalf("%d DP meters, want one per DC", len(sys.Meters))
	}
	rs := []*dcroute.Router{sys.Routers["dc0"], sys.Routers["dc1"]}
	p, err := New(ctx, Config{Daemon: d, Routers: rs, Names: names, Driver: drv, OnError: func(err error) { t.Logf("plane: %v", err) }})
	if err != nil {
		t.Fatal(err)
	}
	lazy.Set(p)
	t.Cleanup(func() {
		drv.Close(context.Background())
		p.Close(context.Background())
	})
	if err := sys.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sys.Stop)
	if !waitFor(60*time.Second, func() bool {
		for _, dc := range names {
			for _, s := range stages {
				if len(sys.Locals[dc].Routable(s)) == 0 {
					return false
				}
			}
		}
		r := sys.Routers["dc0"]
		return r.Interval() >= 1
	}) {
		t.Fatalf("no routable DP instance of every stage, or no interval entered: %+v", sys.Locals["dc0"].Instances())
	}

	caller, callee := ip("10.100.0.1"), ip("10.101.0.1")
	if err := p.AddUser(ctx, 0, caller); err != nil {
		t.Fatal(err)
	}
	if err := p.AddUser(ctx, 1, callee); err != nil {
		t.Fatal(err)
	}
	rx := listenStamped(t, p.UsersNS(1), "10.101.0.1:6000")
	const port = 31000
	call := routing.Call{CallerDC: 0, CalleeDC: 1, CallerIP: caller, CalleeIP: callee,
		CallerSendPort: port, CallerRecvPort: 6001, CalleeSendPort: port, CalleeRecvPort: 6000,
		CallerEntryIP: EntryIP(0), CalleeEntryIP: EntryIP(1)}
	ds, err := p.StartCall(ctx, call, FlowStart{DC: 0, Packet: routing.Packet{Proto: 17, SrcIP: caller, SrcPort: port, DstIP: EntryIP(0), DstPort: 6000}})
	if err != nil || ds[0].Verdict != routing.Forward {
		t.Fatalf("call: %v %v", ds, err)
	}
	s := dial(t, p.UsersNS(0), fmt.Sprintf("%s:%d", caller, port))
	// 200 packets/s for 4.5 intervals, paced on an absolute schedule
	const rate, seconds = 200, 18
	start := time.Now()
	sent := s.send(fmt.Sprintf("%s:6000", EntryIP(0)), rate*seconds, time.Second/rate, nil)
	end := time.Now()
	waitFor(2*time.Second, func() bool { return rx.between(start, end.Add(time.Hour)) >= sent })
	got := rx.between(start, end.Add(time.Hour))
	t.Logf("sent %d packets in %v, received %d", sent, end.Sub(start).Round(time.Millisecond), got)

	// the rounds whose interval the traffic covered whole
	if !waitFor(2*interval, func() bool {
		return len(sys.Engine.Records()) > 0 && sys.Engine.Records()[len(sys.Engine.Records())-1].Started.After(end)
	}) {
		t.Fatal("no round after the traffic")
	}
	recs := sys.Engine.Records()
	hist := sys.Store.History()
	actual := map[uint64]map[string]float64{}
	for _, h := range hist {
		actual[h.Round] = h.Actual
	}
	checked := 0
	for i := 1; i < len(recs); i++ {
		from, to := recs[i-1].Started, recs[i].Started
		if from.Before(start.Add(time.Second)) || to.After(end) {
			continue // the meter reports the second before; the interval must be inside the traffic
		}
		a, ok := actual[recs[i].Round]
		if !ok {
			t.Fatalf("round %d: no measured workload in the history", recs[i].Round)
		}
		want := float64(rx.between(from, to)) / to.Sub(from).Seconds()
		gotRate := a["dp/dc0/dc1"]
		t.Logf("round %d (interval %v–%v): engine measured dc0→dc1 %.1f pkt/s, receiver counted %.1f pkt/s (%+.1f %%), dc1→dc0 %.1f",
			recs[i].Round, from.Format("15:04:05.000"), to.Format("15:04:05.000"), gotRate, want, 100*(gotRate-want)/want, a["dp/dc1/dc0"])
		if want < 0.9*rate {
			t.Fatalf("the receiver counted %.1f pkt/s of %d sent: the data plane lost packets, the comparison proves nothing", want, rate)
		}
		if math.Abs(gotRate-want) > 0.05*want {
			t.Errorf("round %d: measured %.1f pkt/s, receiver %.1f: more than 5 %% apart", recs[i].Round, gotRate, want)
		}
		if a["dp/dc1/dc0"] != 0 {
			t.Errorf("round %d: dc1→dc0 carried nothing, measured %.1f", recs[i].Round, a["dp/dc1/dc0"])
		}
		checked++
	}
	if checked < 2 {
		t.Fatalf("%d intervals inside the traffic, want at least 2 (rounds %+v)", checked, recs)
	}
	last := hist[len(hist)-1]
	if last.Predicted["dp/dc0/dc1"] <= 0 {
		t.Fatalf("prediction of dc0→dc1 %v, want > 0", last.Predicted["dp/dc0/dc1"])
	}
	t.Logf("last prediction of dc0→dc1: %.1f pkt/s", last.Predicted["dp/dc0/dc1"])
}
