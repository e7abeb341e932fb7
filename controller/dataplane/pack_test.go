package dataplane

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/controller/routing"
	"github.com/ims-orch/ims-orch/drivers/netns"
	"github.com/ims-orch/ims-orch/placement"
)

// Packing on the real plane counts the flows an instance carries now: a
// call that ended gives its load back (EndCall releases its flows), so with
// a pack limit of 2 flows, calls that follow one another all go to the
// first instance, and every packet of each reaches the callee through it.
// Before, the plane never released a flow's load: the first instance
// counted every flow it ever had and was "full" after 2 calls, and the
// third went to the second instance although the first carried nothing.
// FlowCounts reads the same from the switch: 1 flow on the first instance
// while a call runs, 0 after it ended.
func TestPackingCountsOnlyRunningCalls(t *testing.T) {
	ctx := context.Background()
	paths := map[placement.Pair]placement.Path{{Entry: 0, Exit: 1}: {0, 0, 1}}
	p := newPlane(t, 2, 1, paths, false)
	for _, idx := range []uint8{10, 11} {
		if _, err := p.AddInstance(ctx, 0, 1, idx, netns.Firewall); err != nil {
			t.Fatal(err)
		}
	}
	p.mu.Lock()
	err := p.dcs[0].t.SetPackLimit(1, 2)
	p.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	caller, callee := ip("10.100.0.1"), ip("10.101.0.1")
	for k, u := range []routing.IPv4{caller, callee} {
		if err := p.AddUser(ctx, k, u); err != nil {
			t.Fatal(err)
		}
	}
	rx := listen(t, p.UsersNS(1), "10.101.0.1:5002")
	flowsOn := func(idx uint8) int {
		fs, err := p.FlowCounts(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fs {
			if f.Stage == 1 && f.Index == idx {
				return f.Flows
			}
		}
		t.Fatalf("instance %d not live: %+v", idx, fs)
		return 0
	}
	const n = 20
	for i := 0; i < 4; i++ {
		port := uint16(4000 + i)
		call := routing.Call{CallerDC: 0, CalleeDC: 1, CallerIP: caller, CalleeIP: callee,
			CallerSendPort: port, CallerRecvPort: 4100, CalleeSendPort: 5000, CalleeRecvPort: 5002,
			CallerEntryIP: EntryIP(0), CalleeEntryIP: EntryIP(1)}
		ds, err := p.StartCall(ctx, call, FlowStart{DC: 0, Packet: routing.Packet{Proto: 17, SrcIP: caller, SrcPort: port, DstIP: EntryIP(0), DstPort: 5002}})
		if err != nil || len(ds) != 1 || ds[0].Verdict != routing.Forward {
			t.Fatalf("call %d: %v %v", i, ds, err)
		}
		if ds[0].Instances[0] != 10 {
			t.Fatalf("call %d (the earlier ones ended) went to instance %d, want 10: the first instance has room", i, ds[0].Instances[0])
		}
		tx := dial(t, p.UsersNS(0), fmt.Sprintf("10.100.0.1:%d", port))
		sent := tx.send(fmt.Sprintf("%s:5002", EntryIP(0)), n, 5*time.Millisecond, nil)
		if !waitFor(20*time.Second, func() bool { return rx.count(int(port)) >= sent }) || sent != n {
			t.Fatalf("call %d: callee got %d of %d packets", i, rx.count(int(port)), sent)
		}
		if i == 3 { // the switch's count (FlowCounts also sets the loads: only once, at the end)
			if on10, on11 := flowsOn(10), flowsOn(11); on10 != 1 || on11 != 0 {
				t.Fatalf("flows while call %d runs: instance 10 %d, 11 %d; want 1, 0", i, on10, on11)
			}
		}
		if err := p.EndCall(ctx, call); err != nil {
			t.Fatal(err)
		}
	}
	if on10 := flowsOn(10); on10 != 0 {
		t.Fatalf("instance 10 carries %d flows after every call ended", on10)
	}
	// dc0 continues no chain from the tunnel (no tag rule): its switch can
	// hold no learned rule, and the counts run no process
	p.mu.Lock()
	learning, tags := p.dcs[0].learning, p.dcs[0].hasTags
	p.mu.Unlock()
	if learning || tags {
		t.Fatalf("dc0 without tag rules: learning %v, tag rules %v; want no switch read", learning, tags)
	}
}
