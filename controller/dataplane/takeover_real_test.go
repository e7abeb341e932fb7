package dataplane

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/controller/routing"
	"github.com/ims-orch/ims-orch/drivers/netns"
	"github.com/ims-orch/ims-orch/drivers/ovs"
	"github.com/ims-orch/ims-orch/placement"
)

// Two calls of one UA and peer from one media endpoint each (SIPp's port
// 6000), the second answered in a later interval while the first is up, on
// the real plane (DC 0 → DC 1 through a firewall in DC 0): the packets the
// callee's socket gets are counted after each step. Both up: every packet
// arrives; the older call ended: every packet of the newer call still
// arrives (before, the older call's end removed the newer call's rules, and
// none arrived); the newer one ended too: none. The pair's packet counter
// (the DP meter's) counts each packet once across the takeover.
func TestNewerCallKeepsItsMediaOnTheRealPlane(t *testing.T) {
	ctx := context.Background()
	paths := map[placement.Pair]placement.Path{{Entry: 0, Exit: 1}: {0, 0, 1}, {Entry: 1, Exit: 0}: {1, 0, 0}}
	p := newPlane(t, 2, 1, paths, false)
	if _, err := p.AddInstance(ctx, 0, 1, 10, netns.Firewall); err != nil {
		t.Fatal(err)
	}
	caller, callee := ip("10.100.0.1"), ip("10.101.0.1")
	addUsers(t, p, caller, callee)
	call := routing.Call{CallerDC: 0, CalleeDC: 1, CallerIP: caller, CalleeIP: callee,
		CallerSendPort: 6000, CallerRecvPort: 6000, CalleeSendPort: 6000, CalleeRecvPort: 6000,
		CallerEntryIP: EntryIP(0), CalleeEntryIP: EntryIP(1)}
	rx := listen(t, p.UsersNS(1), "10.101.0.1:6000")
	tx := dial(t, p.UsersNS(0), "10.100.0.1:6000")
	to := fmt.Sprintf("%s:6000", EntryIP(0))
	const n = 50
	expect := func(when string, want int) {
		t.Helper()
		before := rx.count(6000)
		sent := tx.send(to, n, 2*time.Millisecond, nil)
		if want > 0 && !waitFor(20*time.Second, func() bool { return rx.count(6000)-before >= want }) {
			out, _ := p.Switch(0).Ofctl(ctx, "dump-flows")
			t.Fatalf("%s: the callee got %d of %d packets (sent %d), want %d\ndc0:\n%s", when, rx.count(6000)-before, n, sent, want, out)
		}
		time.Sleep(100 * time.Millisecond) // any packet the rules should have dropped had its chance
		if got := rx.count(6000) - before; got != want {
			t.Fatalf("%s: the callee got %d of %d packets (sent %d), want %d", when, got, n, sent, want)
		}
		t.Logf("%s: the callee got %d of %d packets", when, want, sent)
	}
	pair := ovs.Pair{Entry: 0, Exit: 1}
	// the entry rules' counters, as the DP meter reads them (the bridge's
	// counters follow the datapath's about once a second)
	pairPackets := func(want uint64) {
		t.Helper()
		var got map[ovs.Pair]uint64
		var err error
		waitFor(20*time.Second, func() bool {
			got, err = p.Switch(0).PairPackets()
			return err == nil && got[pair] >= want
		})
		if err != nil || got[pair] != want {
			out, _ := p.Switch(0).Ofctl(ctx, "dump-flows")
			t.Fatalf("pair 0→1 counted %d packets (%v), want %d\ndc0:\n%s", got[pair], err, want, out)
		}
	}
	if err := p.OpenCall(ctx, call); err != nil {
		t.Fatal(err)
	}
	expect("one call", n)
	pairPackets(n)
	for dc := 0; dc < 2; dc++ {
		if err := p.StoreNext(ctx, dc, 1, paths); err != nil {
			t.Fatal(err)
		}
	}
	for dc := 0; dc < 2; dc++ {
		if err := p.Enter(ctx, dc, 1); err != nil {
			t.Fatal(err)
		}
	}
	second := call // the same endpoints: an equal call
	if err := p.OpenCall(ctx, second); err != nil {
		t.Fatalf("the second call: %v", err)
	}
	expect("both calls up", n)
	if err := p.CloseCall(ctx, call); err != nil {
		t.Fatal(err)
	}
	expect("the older call ended", n)
	// the taken-over rule kept its counter under the newer flow's cookie:
	// each packet counts once
	pairPackets(3 * n)
	if err := p.CloseCall(ctx, second); err != nil {
		t.Fatal(err)
	}
	expect("both calls ended", 0)
	if got := p.FlowTakeoversByDC(); got["dc0"].Takeovers != 1 || got["dc0"].Conflicts != 0 {
		t.Fatalf("takeovers %v, want 1 in dc0 (the caller's flow; the callee's enters dc1), no conflict", got)
	}
}
