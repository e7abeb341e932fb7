package dataplane

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/controller/routing"
	"github.com/ims-orch/ims-orch/drivers/netns"
	"github.com/ims-orch/ims-orch/drivers/netns/netnstest"
	"github.com/ims-orch/ims-orch/drivers/ovs"
	"github.com/ims-orch/ims-orch/drivers/ovs/ovstest"
	"github.com/ims-orch/ims-orch/placement"
)

// faultBed: DC0 hosts the whole chain for 0→1 with two IDS instances; one
// call's flow runs at 200 packets/s.
type faultBed struct {
	p     *Plane
	rx    *receiver
	tx    *sender
	fails chan Failure
	d     routing.Decision
}

func newFaultBed(t *testing.T) *faultBed {
	ctx := context.Background()
	paths := map[placement.Pair]placement.Path{{Entry: 0, Exit: 1}: {0, 0, 0, 0, 1}}
	d := ovstest.Start(t)
	var tables []*routing.Table
	for k := 0; k < 2; k++ {
		tb, err := routing.NewTable(routing.Config{DC: k, N: 2, Stages: 3, Paths: paths})
		if err != nil {
			t.Fatal(err)
		}
		tables = append(tables, tb)
	}
	b := &faultBed{fails: make(chan Failure, 64)}
	p, err := New(ctx, Config{Daemon: d, Tables: tables, Forwarder: netnstest.Forwarder(t), OnFailure: func(f Failure) { b.fails <- f },
		OnError: func(err error) { t.Logf("watch: %v", err) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(context.Background()) })
	b.p = p
	for _, x := range []struct {
		s   int
		idx uint8
		k   netns.Kind
	}{{1, 10, netns.Firewall}, {2, 20, netns.IDS}, {2, 21, netns.IDS}, {3, 30, netns.Transcoder}} {
		if _, err := p.AddInstance(ctx, 0, x.s, x.idx, x.k); err != nil {
			t.Fatal(err)
		}
	}
	caller, callee := ip("10.100.0.1"), ip("10.101.0.1")
	p.AddUser(ctx, 0, caller)
	p.AddUser(ctx, 1, callee)
	c := routing.Call{CallerDC: 0, CalleeDC: 1, CallerIP: caller, CalleeIP: callee,
		CallerSendPort: 4000, CallerRecvPort: 4002, CalleeSendPort: 5000, CalleeRecvPort: 5002,
		CallerEntryIP: EntryIP(0), CalleeEntryIP: EntryIP(1)}
	ds, err := p.StartCall(ctx, c, FlowStart{DC: 0, Packet: routing.Packet{Proto: 17, SrcIP: caller, SrcPort: 4000, DstIP: EntryIP(0), DstPort: 5002}})
	if err != nil || ds[0].Verdict != routing.Forward {
		t.Fatalf("start call: %v %v", ds, err)
	}
	b.d = ds[0]
	b.rx = listen(t, p.UsersNS(1), "10.101.0.1:5002")
	b.tx = dial(t, p.UsersNS(0), "10.100.0.1:4000")
	return b
}

// stream sends at 200 packets/s until stop is closed; it returns a func
// that waits for the sender and gives the number sent.
func (b *faultBed) stream(stop chan struct{}) func() int {
	var wg sync.WaitGroup
	sent := 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		dst := fmt.Sprintf("%s:5002", EntryIP(0))
		for {
			select {
			case <-stop:
				return
			default:
			}
			sent += b.tx.send(dst, 1, 0, nil)
			time.Sleep(5 * time.Millisecond)
		}
	}()
	return func() int { wg.Wait(); return sent }
}

// A DP instance killed under traffic (its process, the forwarder, gets
// SIGKILL): the plane learns it from the process's exit — an event, no
// polling (Watch does not even run here) — reports the failure and moves its
// flows to the other instance of the stage in one bundle; the receiving
// endpoint gets packets again within 1 s of the kill.
func TestKilledInstanceFlowsMoveWithinOneSecond(t *testing.T) {
	ctx := context.Background()
	b := newFaultBed(t)
	used := b.d.Instances[1]
	other := uint8(41 - int(used)) // 20 ↔ 21
	b.p.mu.Lock()
	victim := b.p.dcs[0].insts[1][used]
	b.p.mu.Unlock()

	stop := make(chan struct{})
	wait := b.stream(stop)
	if !waitFor(20*time.Second, func() bool { return b.rx.count(4000) >= 50 }) {
		close(stop)
		wait()
		t.Fatalf("no traffic before the kill: %d packets", b.rx.count(4000))
	}
	killAt := time.Now()
	if err := killPid(victim.Pid); err != nil {
		t.Fatal(err)
	}
	var f Failure
	select {
	case f = <-b.fails:
	case <-time.After(10 * time.Second):
		t.Fatal("no failure reported within 10 s of the kill")
	}
	if f.Stage != 2 || f.Index != used || f.DC != 0 {
		t.Fatalf("failure %+v, want dc0 stage 2 index %d", f, used)
	}
	// the first packet through the other instance after the kill
	before := b.rx.count(4000)
	var resumed time.Time
	ok := waitFor(10*time.Second, func() bool {
		if b.rx.count(4000) > before {
			resumed = time.Now()
			return true
		}
		return false
	})
	close(stop)
	sent := wait()
	if !ok {
		t.Fatalf("traffic did not resume after the kill (sent %d, got %d)", sent, b.rx.count(4000))
	}
	moved := resumed.Sub(killAt)
	t.Logf("instance %d killed: failure seen after %v, rules moved after %v, flow on instance %d after %v (receiver side); %d of %d packets arrived",
		used, f.At.Sub(killAt), f.Moved.Sub(killAt), other, moved, b.rx.count(4000), sent)
	// scripts/dp-failover.sh reads this line
	t.Logf("failover-ms detect=%.1f moved=%.1f traffic=%.1f", ms(f.At.Sub(killAt)), ms(f.Moved.Sub(killAt)), ms(moved))
	// The target is 1 s (docs/benchmarks.md: the figure and the
	// command). Both ends are real events — the kill and the first packet
	// the receiving socket gets through the other instance — and detection
	// is the process's exit, so what remains is one rule bundle; still, on
	// this shared 2-core machine a single ovs-ofctl can stall for seconds at
	// load 40+, so the test keeps a loose bound and logs the measurement.
	if moved > 5*time.Second {
		t.Errorf("flows moved after %v, want well under 5 s (target 1 s)", moved)
	}
	b.p.mu.Lock()
	in := b.p.dcs[0].insts[1][other]
	b.p.mu.Unlock()
	st, err := in.Stats(ctx)
	if err != nil || st.Received == 0 {
		t.Fatalf("the other IDS instance got no packets: %+v %v", st, err)
	}
}

// ovs-vswitchd killed: every DP instance is reported failed, the daemon is
// restarted, the rules come back and packets flow again. Watch's safety
// period is an hour: the process's exit (its pidfd) is what drives it.
func TestKilledVswitchdRestartsAndFlowsResume(t *testing.T) {
	b := newFaultBed(t)
	watch(t, b.p, time.Hour)
	stop := make(chan struct{})
	wait := b.stream(stop)
	defer func() { close(stop); wait() }()
	if !waitFor(20*time.Second, func() bool { return b.rx.count(4000) >= 50 }) {
		t.Fatalf("no traffic before the kill: %d packets", b.rx.count(4000))
	}
	pid := b.p.d.VswitchdPID()
	killAt := time.Now()
	if err := killPid(pid); err != nil {
		t.Fatal(err)
	}
	seen := 0
	var detected time.Duration
	deadline := time.After(20 * time.Second) // a real process died: generous on a loaded host
	for seen < 4 {
		select {
		case f := <-b.fails:
			if f.Reason != "ovs-vswitchd died" {
				t.Fatalf("failure %+v", f)
			}
			detected = f.At.Sub(killAt)
			seen++
		case <-deadline:
			t.Fatalf("%d failure events of 4 instances", seen)
		}
	}
	before := b.rx.count(4000)
	if !waitFor(30*time.Second, func() bool { return b.rx.count(4000) > before+10 }) {
		t.Fatalf("no packets after the restart (got %d before)", before)
	}
	if b.p.d.VswitchdPID() == pid || !b.p.d.VswitchdAlive() {
		t.Fatal("ovs-vswitchd was not restarted")
	}
	t.Logf("ovs-vswitchd killed: its exit seen after %v, traffic back after %v", detected, time.Since(killAt))
}

// An instance's switch-side out port deleted: the link's deletion is an
// rtnetlink event that makes Watch check at once — its safety period is an
// hour — and the instance is reported failed and removed. Its forwarder is
// stopped (SIGSTOP) first: it would exit at its next write to the vanished
// port (a stray IPv6 solicitation is enough) and the plane would learn it
// from the exit instead; the instance's removal SIGKILLs it.
func TestVanishedPortSeenByItsLinkEvent(t *testing.T) {
	ctx := context.Background()
	b := newFaultBed(t)
	watch(t, b.p, time.Hour)
	b.p.mu.Lock()
	victim := b.p.dcs[0].insts[1][21]
	b.p.mu.Unlock()
	if err := syscall.Kill(victim.Pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	at := time.Now()
	if _, err := ovs.InNetns(ctx, b.p.d.SwitchNS(), "ip", "link", "del", victim.OutName); err != nil {
		t.Fatal(err)
	}
	select {
	case f := <-b.fails:
		if f.DC != 0 || f.Stage != 2 || f.Index != 21 || f.Reason != "instance ports vanished" {
			t.Fatalf("failure %+v, want dc0 stage 2 index 21, ports vanished", f)
		}
		t.Logf("vanished port seen after %v", f.At.Sub(at))
	case <-time.After(20 * time.Second): // a real kernel event; generous on a loaded host
		t.Fatal("no failure within 20 s of the port's deletion")
	}
	b.p.mu.Lock()
	_, still := b.p.dcs[0].insts[1][21]
	b.p.mu.Unlock()
	if still {
		t.Fatal("the instance whose port vanished is still in the plane")
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
