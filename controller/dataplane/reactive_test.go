package dataplane

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/controller/local"
	"github.com/ims-orch/ims-orch/controller/routing"
	"github.com/ims-orch/ims-orch/placement/vnf"
)

// Reactive scale-out of a DP stage on real numbers: the IDS's thresholds are
// set so that the packets of this test drive its one instance over two of
// three (its forwarder's CPU, measured from /proc, and its input packet
// rate, from the interface counter); the real local controller sees the
// overload through the agents' intake and launches a second IDS instance
// (counted from its decisions: a launch with reason reactive), and flows
// started after it is active go through it (counted from the packets the
// new instance's forwarder took in and the receiving socket got).
func TestReactiveScaleOutOfADPStage(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const cpuThr, rateThr = 0.5, 400 // percent of a core, packets/s
	b := newAttachedBedWith(t, ctx, func(lc *local.Config) {
		lc.Reactive = true
		lc.OverloadWindow = 2 * time.Second
		lc.ReactiveCooldown = 30 * time.Second // one reactive launch in this test
		for i := range lc.VNFs {
			lc.VNFs[i].Thresholds = vnf.Thresholds{CPU: 95, Mem: 95, PktRate: 1e6}
			if lc.VNFs[i].Name == "ids" {
				lc.VNFs[i].Thresholds = vnf.Thresholds{CPU: cpuThr, Mem: 95, PktRate: rateThr}
			}
		}
	})
	p, c := b.p, b.c
	caller, callee := ip("10.100.0.1"), ip("10.101.0.1")
	p.AddUser(ctx, 0, caller)
	p.AddUser(ctx, 1, callee)
	rx := listen(t, p.UsersNS(1), "10.101.0.1:6000")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	sent := map[int]int{}
	var mu sync.Mutex
	idsOf := map[int]uint8{}
	flow := func(port int, perTick int) {
		call := routing.Call{CallerDC: 0, CalleeDC: 1, CallerIP: caller, CalleeIP: callee,
			CallerSendPort: uint16(port), CallerRecvPort: 6001, CalleeSendPort: uint16(port), CalleeRecvPort: 6000,
			CallerEntryIP: EntryIP(0), CalleeEntryIP: EntryIP(1)}
		ds, err := p.StartCall(ctx, call, FlowStart{DC: 0, Packet: routing.Packet{Proto: 17, SrcIP: caller, SrcPort: uint16(port), DstIP: EntryIP(0), DstPort: 6000}})
		if err != nil || ds[0].Verdict != routing.Forward {
			t.Fatalf("flow %d: %v %v", port, ds, err)
		}
		mu.Lock()
		idsOf[port] = ds[0].Instances[1]
		mu.Unlock()
		s := dial(t, p.UsersNS(0), fmt.Sprintf("%s:%d", caller, port))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				n := s.send(fmt.Sprintf("%s:6000", EntryIP(0)), perTick, 0, nil)
				mu.Lock()
				sent[port] += n
				mu.Unlock()
				time.Sleep(10 * time.Millisecond)
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()
	// ≈ 8 flows × 100 packets/s through the one IDS instance
	for port := 31000; port < 31008; port++ {
		flow(port, 1)
	}
	var launched local.Action
	peak := map[string][2]float64{}
	ok := waitFor(60*time.Second, func() bool {
		for _, in := range c.Instances() {
			if in.VNF == "ids" && !in.Last.At.IsZero() {
				pk := peak[in.ID]
				peak[in.ID] = [2]float64{max(pk[0], in.Last.CPU), max(pk[1], in.Last.PktRate)}
			}
		}
		for _, a := range c.Actions() {
			if a.VNF == "ids" && a.Kind == local.KindCreate && a.Reason == local.ReasonReactive {
				launched = a
				return true
			}
		}
		return false
	})
	t.Logf("IDS samples (peak CPU %%, pkt/s) before the decision: %v", peak)
	if !ok {
		t.Fatalf("no reactive launch of the IDS within 60 s; instances %+v", c.Instances())
	}
	t.Logf("decision: %s %s %s (%s)", a2s(launched), launched.InstanceID, launched.Reason, launched.Detail)
	if !waitFor(60*time.Second, func() bool { return routable(c, "ids") == 2 }) {
		t.Fatalf("the reactively launched IDS never became routable: %+v", c.Instances())
	}
	pid := b.drv.Pid(launched.InstanceID)
	in := b.drv.Instance(launched.InstanceID)
	if pid == 0 || in == nil {
		t.Fatalf("no forwarder for %s", launched.InstanceID)
	}
	before, err := in.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// new flows go to the least-loaded IDS instance: the new one
	for port := 31100; port < 31104; port++ {
		flow(port, 1)
	}
	var after uint64
	if !waitFor(20*time.Second, func() bool {
		st, err := in.Stats(ctx)
		after = st.Forwarded
		return err == nil && st.Forwarded >= before.Forwarded+100
	}) {
		t.Fatalf("the new IDS instance forwarded %d packets", after-before.Forwarded)
	}
	mu.Lock()
	var onNew []int
	for port, x := range idsOf {
		if port >= 31100 && x != idsOf[31000] {
			onNew = append(onNew, port)
		}
	}
	mu.Unlock()
	got := 0
	for _, port := range onNew {
		got += rx.count(port)
	}
	t.Logf("new IDS instance %s (forwarder pid %d): %d flows routed to it, it forwarded %d packets, the receiver got %d of theirs",
		launched.InstanceID, pid, len(onNew), after-before.Forwarded, got)
	if len(onNew) == 0 || got == 0 {
		t.Fatalf("no flow through the new instance reached the receiver (flows %v)", idsOf)
	}
}

func a2s(a local.Action) string {
	return fmt.Sprintf("%s %s/%s", a.At.Format("15:04:05.000"), a.Kind, a.VNF)
}
