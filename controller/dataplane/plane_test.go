package dataplane

import (
	"bytes"
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/controller/dcroute"
	"github.com/ims-orch/ims-orch/controller/routing"
	"github.com/ims-orch/ims-orch/drivers/netns"
	"github.com/ims-orch/ims-orch/drivers/netns/netnstest"
	"github.com/ims-orch/ims-orch/drivers/ovs"
	"github.com/ims-orch/ims-orch/drivers/ovs/ovstest"
	"github.com/ims-orch/ims-orch/placement"
)

// One call DC0 → DC1 through firewall, IDS and transcoder instances in DC0:
// every packet arrives at the callee, the IDS drops a signature packet and
// counts the flow, the entry switch counts the pair.
func TestChainForwardsRealPackets(t *testing.T) {
	ctx := context.Background()
	paths := map[placement.Pair]placement.Path{{Entry: 0, Exit: 1}: {0, 0, 0, 0, 1}}
	p := newPlane(t, 2, 3, paths, false)
	for s := 1; s <= 3; s++ {
		if _, err := p.AddInstance(ctx, 0, s, uint8(10*s), kinds[s-1]); err != nil {
			t.Fatal(err)
		}
	}
	caller, callee := ip("10.100.0.1"), ip("10.101.0.1")
	for k, u := range []routing.IPv4{caller, callee} {
		if err := p.AddUser(ctx, k, u); err != nil {
			t.Fatal(err)
		}
	}
	call := routing.Call{CallerDC: 0, CalleeDC: 1, CallerIP: caller, CalleeIP: callee,
		CallerSendPort: 4000, CallerRecvPort: 4002, CalleeSendPort: 5000, CalleeRecvPort: 5002,
		CallerEntryIP: EntryIP(0), CalleeEntryIP: EntryIP(1)}
	if err := p.AddCall(ctx, call); err != nil {
		t.Fatal(err)
	}
	d, err := p.StartFlow(ctx, 0, routing.Packet{Proto: 17, SrcIP: caller, SrcPort: 4000, DstIP: EntryIP(0), DstPort: 5002})
	if err != nil || d.Verdict != routing.Forward {
		t.Fatalf("start flow: %v %v", d, err)
	}
	rx := listen(t, p.UsersNS(1), "10.101.0.1:5002")
	tx := dial(t, p.UsersNS(0), "10.100.0.1:4000")
	const n = 100
	sent := tx.send(fmt.Sprintf("%s:5002", EntryIP(0)), n, 2*time.Millisecond, nil)
	sent += tx.send(fmt.Sprintf("%s:5002", EntryIP(0)), 1, 0, append([]byte("ATCK"), bytes.Repeat([]byte{0}, 168)...))
	if !waitFor(20*time.Second, func() bool { return rx.count(4000) >= n }) { // packets in flight through the forwarders: generous on a loaded host
		out, _ := p.Switch(0).Ofctl(ctx, "dump-flows")
		out1, _ := p.Switch(1).Ofctl(ctx, "dump-flows")
		t.Fatalf("callee got %d of %d packets\ndc0:\n%s\ndc1:\n%s", rx.count(4000), n, out, out1)
	}
	time.Sleep(50 * time.Millisecond) // the signature packet had its chance
	if got := rx.count(4000); got != n {
		t.Fatalf("callee got %d packets, want the %d clean ones (the IDS drops the signature packet); sent %d", got, n, sent)
	}
	p.mu.Lock()
	ids := p.dcs[0].insts[1][20]
	p.mu.Unlock()
	st, err := ids.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Counters["signature"] != 1 || st.Flows != 1 || st.Received < n+1 {
		t.Fatalf("IDS stats %+v: want 1 signature drop, 1 flow, ≥ %d received", st, n+1)
	}
	// the bridge's rule counters follow the datapath's with a lag (the
	// revalidator pulls them about once a second)
	var pairs map[ovs.Pair]uint64
	waitFor(20*time.Second, func() bool {
		pairs, err = p.Switch(0).PairPackets()
		return err == nil && pairs[ovs.Pair{Entry: 0, Exit: 1}] == n+1
	})
	if err != nil || pairs[ovs.Pair{Entry: 0, Exit: 1}] != n+1 {
		t.Fatalf("pair counters %v %v, want %d for 0→1", pairs, err, n+1)
	}
}

// A cluster node runs the data plane of its own datacenters only: a nil
// router is another node's DC, which gets no bridge and no link here; a call
// to it opens its local side only.
func TestPlaneOfThisNodesDatacentersOnly(t *testing.T) {
	ctx := context.Background()
	d := ovstest.Start(t)
	names := []string{"dc0", "dc1", "dc2"}
	r0, err := dcroute.New("dc0", names, []string{"firewall", "ids", "transcoder"}, 0, func(err error) { t.Errorf("router: %v", err) })
	if err != nil {
		t.Fatal(err)
	}
	if err := d.EnsureBridge(ctx, BridgeName(d.Prefix(), 0), 0); err != nil {
		t.Fatal(err)
	}
	drv, err := netns.NewDriver(netns.DriverConfig{Daemon: d, Bridges: map[string]string{"dc0": BridgeName(d.Prefix(), 0)}, Forwarder: netnstest.Forwarder(t)})
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(ctx, Config{Daemon: d, Routers: []*dcroute.Router{r0, nil, nil}, Names: names, Driver: drv})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	brs, err := d.OurBridges(ctx)
	if err != nil || len(brs) != 1 || brs[0] != BridgeName(d.Prefix(), 0) {
		t.Fatalf("bridges %v %v, want only dc0's", brs, err)
	}
	if p.Switch(1) != nil || p.Sync(ctx, 2) == nil {
		t.Fatal("another node's DC has a switch here")
	}
	c := routing.Call{CallerDC: 0, CalleeDC: 1, CallerIP: ip("10.100.0.1"), CalleeIP: ip("10.101.0.1"),
		CallerSendPort: 4000, CallerRecvPort: 4000, CalleeSendPort: 5000, CalleeRecvPort: 5000,
		CallerEntryIP: EntryIP(0), CalleeEntryIP: EntryIP(1)}
	if err := p.OpenCall(ctx, c); err != nil {
		t.Fatal(err)
	}
	if len(p.Calls(0)) != 1 || p.Calls(1) != nil {
		t.Fatalf("calls dc0 %v dc1 %v", p.Calls(0), p.Calls(1))
	}
	if err := p.EndCall(ctx, c); err != nil || len(p.Calls(0)) != 0 {
		t.Fatalf("end: %v, calls %v", err, p.Calls(0))
	}
	// Close stops the DC's learned-rule monitor: its process is gone
	mon := p.dcs[0].mon.(*ovs.LearnedMonitor)
	if !waitFor(10*time.Second, func() bool { return mon.Pid() > 0 }) {
		t.Fatal("no learned-rule monitor process within 10 s")
	}
	pid := mon.Pid()
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-mon.Done():
	default: // its process exits with the bridge, but it would start another every second
		t.Fatal("the learned-rule monitor still runs after the plane's Close")
	}
	if err := syscall.Kill(pid, 0); err != syscall.ESRCH {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		t.Fatalf("the monitor process %d is still there after the plane's Close (kill 0: %v)", pid, err)
	}
}
