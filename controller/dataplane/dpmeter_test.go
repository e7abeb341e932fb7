package dataplane

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/dcroute"
	"github.com/ims-orch/ims-orch/controller/dpmeter"
	"github.com/ims-orch/ims-orch/controller/fsm"
	"github.com/ims-orch/ims-orch/controller/global"
	"github.com/ims-orch/ims-orch/controller/local"
	"github.com/ims-orch/ims-orch/controller/protocol"
	"github.com/ims-orch/ims-orch/controller/routing"
	"github.com/ims-orch/ims-orch/controller/system"
	"github.com/ims-orch/ims-orch/drivers/fake"
	"github.com/ims-orch/ims-orch/drivers/netns"
	"github.com/ims-orch/ims-orch/drivers/netns/netnstest"
	"github.com/ims-orch/ims-orch/drivers/ovs/ovstest"
	"github.com/ims-orch/ims-orch/drivers/split"
	"github.com/ims-orch/ims-orch/placement/vnf"
)

// stampedReceiver keeps, for every packet a users' namespace socket gets,
// its arrival time and the send time the sender wrote into it
// (sendStamped).
type stampedReceiver struct {
	mu     sync.Mutex
	at     []time.Time
	sentAt []time.Time
}

// between counts the packets that arrived in [a, b).
func (r *stampedReceiver) between(a, b time.Time) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return countIn(r.at, a, b)
}

// sentBetween counts the received packets that were sent in [a, b).
func (r *stampedReceiver) sentBetween(a, b time.Time) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return countIn(r.sentAt, a, b)
}

func countIn(ts []time.Time, a, b time.Time) int {
	n := 0
	for _, t := range ts {
		if !t.Before(a) && t.Before(b) {
			n++
		}
	}
	return n
}

// stampEpoch is what sendStamped's time stamps count from: the time since
// it (monotonic in this process) goes into the packet, so the receiver of
// this process gets back the send time on the same monotonic clock.
var stampEpoch = time.Now()

// sendStamped sends like send, with the send time in each packet's first 8
// bytes, and returns the send times of the packets whose write succeeded.
func (s *sender) sendStamped(dst string, count int, gap time.Duration) []time.Time {
	buf := make([]byte, 172)
	var stamp time.Time
	var sent []time.Time
	s.sendEach(dst, count, gap, func() []byte {
		stamp = time.Now()
		binary.BigEndian.PutUint64(buf, uint64(stamp.Sub(stampEpoch)))
		return buf
	}, func() { sent = append(sent, stamp) })
	return sent
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
			n, _, err := c.ReadFromUDP(buf)
			if err != nil {
				return
			}
			now := time.Now()
			if n < 8 {
				continue
			}
			sent := stampEpoch.Add(time.Duration(binary.BigEndian.Uint64(buf)))
			r.mu.Lock()
			r.at = append(r.at, now)
			r.sentAt = append(r.sentAt, sent)
			r.mu.Unlock()
		}
	}()
	t.Cleanup(func() { c.Close(); <-done })
	return r
}

// arrivedReport is a DP report of the meters with when it was handed to
// the engine: the call began at before and returned at after.
type arrivedReport struct {
	rep           protocol.WorkloadReport
	before, after time.Time
	err           error
}

// reportLog sits between the DP meters and the engine and keeps every
// report with its arrival.
type reportLog struct {
	next dpmeter.Reporter // set before the system starts
	mu   sync.Mutex
	reps []arrivedReport
}

func (l *reportLog) ReportWorkload(r protocol.WorkloadReport) error {
	before := time.Now()
	err := l.next.ReportWorkload(r)
	after := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reps = append(l.reps, arrivedReport{rep: r, before: before, after: after, err: err})
	return err
}

func (l *reportLog) of(dc string) []arrivedReport {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []arrivedReport
	for _, a := range l.reps {
		if a.rep.DC == dc {
			out = append(out, a)
		}
	}
	return out
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
//
// "The same interval" is what the engine averaged: the meter's reports
// that reached it during the interval, each the rate over its own read
// window [previous read, read). The receiver counts the packets that were
// sent in each of those windows (the send time travels in the packet), so
// neither a report window's offset from the round start nor the time a
// packet spends in the userspace DP forwarders moves packets between the
// measured and the counted interval.
func TestDPWorkloadFromTheRealSwitch(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d := ovstest.Start(t)
	prefix := d.Prefix()
	names := []string{"dc0", "dc1"}
	stages := []string{"firewall", "ids", "transcoder"}
	drv, err := netns.NewDriver(netns.DriverConfig{Daemon: d, Bridges: map[string]string{"dc0": BridgeName(prefix, 0), "dc1": BridgeName(prefix, 1)},
		Forwarder: netnstest.Forwarder(t)})
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
	// The counters a read returns are those of shortly before it returned:
	// measured under load 24–40, 29–157 ms (reads took 41 ms–1.4 s). That
	// lag's spread at an interval's two ends is the meter's error over the
	// interval: about ±3 % of a 4 s interval, ±1.6 % of 8 s (the daemon's
	// default interval is 50 s).
	const interval = 8 * time.Second
	lazy := NewLazy(names)
	reports := &reportLog{}
	sys, err := system.New(system.Config{Topology: top, Policy: fsm.Policy{DelayBoundMs: 250},
		Global: global.Config{Interval: interval, StepDeadline: interval / 2}, Local: local.Config{StatsTimeout: -1}, VNFs: vnfs, InitialRound: true,
		WrapSink: lazy.Sink, WrapPaths: lazy.Paths, DPMeters: &system.DPMeters{Counters: lazy.Counters, Report: reports}}, sd, clock.Real{})
	if err != nil {
		t.Fatal(err)
	}
	reports.next = sys
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
		for _, dc := range names {
			for _, s := range stages {
				t.Logf("%s %s: routable %v", dc, s, sys.Locals[dc].Routable(s))
			}
			t.Logf("%s: router in interval %d, instances %+v", dc, sys.Routers[dc].Interval(), sys.Locals[dc].Instances())
		}
		t.Fatal("no routable DP instance of every stage, or no interval entered")
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
	// 200 packets/s for 3.5 intervals, paced on an absolute schedule
	const rate, seconds = 200, 28
	start := time.Now()
	sentAt := s.sendStamped(fmt.Sprintf("%s:6000", EntryIP(0)), rate*seconds, time.Second/rate)
	sent := len(sentAt)
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
	dc0 := reports.of("dc0")
	checked := 0
rounds:
	for i := 1; i < len(recs); i++ {
		from, to := recs[i-1].Started, recs[i].Started
		// the dc0 reports the engine took in this interval: the intake is
		// swapped under the engine's lock right after Started is taken, so
		// a report handed over wholly between two Started times is in
		// that interval
		var in []int
		for k, a := range dc0 {
			switch {
			case a.after.Before(from) || a.before.After(to):
			case a.before.After(from) && a.after.Before(to):
				in = append(in, k)
			default:
				t.Logf("round %d: a report was handed over while the round started (%v–%v): interval not compared", recs[i].Round,
					a.before.Format("15:04:05.000000"), a.after.Format("15:04:05.000000"))
				continue rounds
			}
		}
		if len(in) == 0 || in[0] == 0 || dc0[in[0]-1].rep.At.Before(start) || dc0[in[len(in)-1]].rep.At.After(end) {
			continue // the read windows of the interval's reports must lie inside the traffic
		}
		a, ok := actual[recs[i].Round]
		if !ok {
			t.Fatalf("round %d: no measured workload in the history", recs[i].Round)
		}
		// what the engine averaged, counted by the sender: per report, the
		// packets sent in its read window over the window's length. The
		// meter counts packets entering dc0's chain (the entry rules), so
		// the sender's count is its truth; the receiver's misses what the
		// forwarders after the entry dropped (a CI rehearsal at load 15–30
		// lost 3 %: the engine's 207.9 pkt/s against 194.7 received, 200
		// sent) and is shown for comparison only
		var want, received float64
		n := 0
		for _, k := range in {
			if dc0[k].err != nil {
				t.Logf("round %d: the engine refused a report: %v", recs[i].Round, dc0[k].err)
				continue
			}
			w0, w1 := dc0[k-1].rep.At, dc0[k].rep.At
			want += float64(countIn(sentAt, w0, w1)) / w1.Sub(w0).Seconds()
			received += float64(rx.sentBetween(w0, w1)) / w1.Sub(w0).Seconds()
			n++
		}
		if n == 0 {
			t.Fatalf("round %d: the engine refused every report of the interval", recs[i].Round)
		}
		want /= float64(n)
		received /= float64(n)
		// for comparison only: arrivals at the receiver over the round's interval
		byArrival := float64(rx.between(from, to)) / to.Sub(from).Seconds()
		gotRate := a["dp/dc0/dc1"]
		t.Logf("round %d (interval %v–%v, %d reports): engine measured dc0→dc1 %.1f pkt/s, the sender sent %.1f pkt/s in the reports' windows (%+.2f %%; the receiver got %.1f of them, arrivals over the interval %.1f, %+.2f %%), dc1→dc0 %.1f",
			recs[i].Round, from.Format("15:04:05.000"), to.Format("15:04:05.000"), n, gotRate, want, 100*(gotRate-want)/want,
			received, byArrival, 100*(gotRate-byArrival)/byArrival, a["dp/dc1/dc0"])
		if received < 0.9*rate {
			t.Fatalf("the receiver got %.1f pkt/s of %d sent: the data plane lost packets, the chain does not carry the call", received, rate)
		}
		if math.Abs(gotRate-want) > 0.05*want {
			t.Errorf("round %d: measured %.1f pkt/s, sent %.1f: more than 5 %% apart", recs[i].Round, gotRate, want)
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
