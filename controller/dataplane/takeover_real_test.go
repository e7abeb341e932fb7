package dataplane

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
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
	p, paths, caller, callee := newFirewallPlane(t)
	call := routing.Call{CallerDC: 0, CalleeDC: 1, CallerIP: caller, CalleeIP: callee,
		CallerSendPort: 6000, CallerRecvPort: 6000, CalleeSendPort: 6000, CalleeRecvPort: 6000,
		CallerEntryIP: EntryIP(0), CalleeEntryIP: EntryIP(1)}
	rx := listen(t, p.UsersNS(1), "10.101.0.1:6000")
	tx := dial(t, p.UsersNS(0), "10.100.0.1:6000")
	to := fmt.Sprintf("%s:6000", EntryIP(0))
	const n = 50
	expect := func(when string, want int) {
		t.Helper()
		before, missBefore := rx.count(6000), missed(t, p, 0)
		sent := tx.send(to, n, 2*time.Millisecond, nil)
		// every packet sent is accounted for: the callee's socket got it,
		// or dc0's miss rule dropped it (no sleep for "none arrived")
		if !waitFor(20*time.Second, func() bool {
			return uint64(rx.count(6000)-before)+missed(t, p, 0)-missBefore >= uint64(sent)
		}) {
			out, _ := p.Switch(0).Ofctl(ctx, "dump-flows")
			t.Fatalf("%s: the callee got %d of %d packets (sent %d), dc0 dropped %d, want %d\ndc0:\n%s", when, rx.count(6000)-before, n, sent, missed(t, p, 0)-missBefore, want, out)
		}
		if got := rx.count(6000) - before; got != want {
			t.Fatalf("%s: the callee got %d of %d packets (sent %d), want %d", when, got, n, sent, want)
		}
		t.Logf("%s: the callee got %d of %d packets", when, want, sent)
	}
	pair := ovs.Pair{Entry: 0, Exit: 1}
	// the pair counter rules' counters, as the DP meter reads them (the bridge's
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
	afterDelayedDelete(t, p)
	expect("both calls ended", 0)
	if got := p.FlowTakeoversByDC(); got["dc0"].Takeovers != 1 || got["dc0"].Conflicts != 0 {
		t.Fatalf("takeovers %v, want 1 in dc0 (the caller's flow; the callee's enters dc1), no conflict", got)
	}
}

// newFirewallPlane is the real plane of 2 DCs whose paths go through a
// firewall instance (index 10) in DC 0, a caller in DC 0 and a callee in
// DC 1; it returns the plane, its paths and the two users' addresses.
func newFirewallPlane(t *testing.T) (*Plane, map[placement.Pair]placement.Path, routing.IPv4, routing.IPv4) {
	t.Helper()
	paths := map[placement.Pair]placement.Path{{Entry: 0, Exit: 1}: {0, 0, 1}, {Entry: 1, Exit: 0}: {1, 0, 0}}
	p := newPlane(t, 2, 1, paths, false)
	if _, err := p.AddInstance(context.Background(), 0, 1, 10, netns.Firewall); err != nil {
		t.Fatal(err)
	}
	caller, callee := ip("10.100.0.1"), ip("10.101.0.1")
	addUsers(t, p, caller, callee)
	return p, paths, caller, callee
}

// missed is how many packets dc's miss rules dropped (nothing matched), as
// the bridge counts them.
func missed(t *testing.T, p *Plane, dc int) uint64 {
	t.Helper()
	fs, err := p.Switch(dc).Counts(context.Background(), ovs.CookieMiss)
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, f := range fs {
		n += f.Packets
	}
	return n
}

// sendAccounted sends n packets from tx to `to` (an entry address of dc0)
// and waits until each is accounted for: one of rxs' sockets got it (port
// 6000) or dc0's miss rule dropped it (no sleep for "none arrived"). It
// returns how many tx sent and how many each of rxs got.
func sendAccounted(t *testing.T, p *Plane, tx *sender, to string, n int, rxs ...*receiver) (int, []int) {
	t.Helper()
	got := func(before []int) ([]int, int) {
		out, sum := make([]int, len(rxs)), 0
		for i, rx := range rxs {
			out[i] = rx.count(6000) - before[i]
			sum += out[i]
		}
		return out, sum
	}
	before, _ := got(make([]int, len(rxs)))
	bm := missed(t, p, 0)
	sent := tx.send(to, n, 2*time.Millisecond, nil)
	if !waitFor(20*time.Second, func() bool {
		_, sum := got(before)
		return uint64(sum)+missed(t, p, 0)-bm >= uint64(sent)
	}) {
		_, sum := got(before)
		out, _ := p.Switch(0).Ofctl(context.Background(), "dump-flows")
		t.Fatalf("%d of %d packets accounted for (%d dropped by dc0's miss rule)\ndc0:\n%s", sum, sent, missed(t, p, 0)-bm, out)
	}
	g, _ := got(before)
	return sent, g
}

// twoCallees is a 3-DC plane (a firewall in dc0) where one caller endpoint
// (dc0, port 6000) calls a callee in dc1 (older) and one in dc2 (newer)
// from the same media port: the two calls' caller flows share a 5-tuple.
// rx1 and rx2 are the callees' sockets, tx the caller's, to the address it
// sends to.
type twoCallees struct {
	p            *Plane
	older, newer routing.Call
	rx1, rx2     *receiver
	tx           *sender
	to           string
}

func newTwoCallees(t *testing.T, cfg ovs.Config) twoCallees {
	t.Helper()
	paths := map[placement.Pair]placement.Path{
		{Entry: 0, Exit: 1}: {0, 0, 1}, {Entry: 1, Exit: 0}: {1, 0, 0},
		{Entry: 0, Exit: 2}: {0, 0, 2}, {Entry: 2, Exit: 0}: {2, 0, 0},
	}
	p := newPlaneWith(t, cfg, 3, 1, paths, false)
	if _, err := p.AddInstance(context.Background(), 0, 1, 10, netns.Firewall); err != nil {
		t.Fatal(err)
	}
	caller, callee1, callee2 := ip("10.100.0.1"), ip("10.101.0.1"), ip("10.102.0.1")
	addUsers(t, p, caller, callee1, callee2)
	mk := func(callee routing.IPv4, dc int) routing.Call {
		return routing.Call{CallerDC: 0, CalleeDC: dc, CallerIP: caller, CalleeIP: callee,
			CallerSendPort: 6000, CallerRecvPort: 6000, CalleeSendPort: 6000, CalleeRecvPort: 6000,
			CallerEntryIP: EntryIP(0), CalleeEntryIP: EntryIP(dc)}
	}
	return twoCallees{p: p, older: mk(callee1, 1), newer: mk(callee2, 2),
		rx1: listen(t, p.UsersNS(1), "10.101.0.1:6000"), rx2: listen(t, p.UsersNS(2), "10.102.0.1:6000"),
		tx: dial(t, p.UsersNS(0), "10.100.0.1:6000"), to: fmt.Sprintf("%s:6000", EntryIP(0))}
}

// One caller endpoint calls a callee in DC 1, then (the first call still
// up) a callee in DC 2 from the same media port: the newer call takes the
// caller's 5-tuple over with another exit DC, so its arrival rule gets
// another pair, hence another cookie, and is replaced (delete+add: Open
// vSwitch modifies actions, never the cookie). The packets the callees'
// sockets get are counted after each step, and the pair counters (the DP
// meter's) count each packet once on the pair it took (each step waits
// for the counters before the next rule update, so no packet is in the
// revalidator's window at a takeover: docs/dataplane.md "Pair counters"). When the newer call ends, the older one, still open, gets the
// 5-tuple back (review F2). Review F3: with equal calls only, the pair and
// cookie stay, and the replace path ran in no real test.
func TestTakeoverToAnotherExitOnTheRealPlane(t *testing.T) {
	ctx := context.Background()
	b := newTwoCallees(t, ovs.Config{})
	p, older, newer, rx1, rx2, tx, to := b.p, b.older, b.newer, b.rx1, b.rx2, b.tx, b.to
	const n = 50
	// expect sends n packets and checks what each callee got (every
	// packet accounted for: a callee's socket or dc0's miss rule) and the
	// pair counters of 0→1 and 0→2 (which follow the datapath's within
	// ≈ 100 ms)
	expect := func(when string, want1, want2 int, pair1, pair2 uint64) {
		t.Helper()
		sent, rcvd := sendAccounted(t, p, tx, to, n, rx1, rx2)
		if rcvd[0] != want1 || rcvd[1] != want2 {
			t.Fatalf("%s: callees got %d and %d of %d packets, want %d and %d", when, rcvd[0], rcvd[1], sent, want1, want2)
		}
		var got map[ovs.Pair]uint64
		var err error
		waitFor(20*time.Second, func() bool {
			got, err = p.Switch(0).PairPackets()
			return err == nil && got[ovs.Pair{Entry: 0, Exit: 1}] >= pair1 && got[ovs.Pair{Entry: 0, Exit: 2}] >= pair2
		})
		if g1, g2 := got[ovs.Pair{Entry: 0, Exit: 1}], got[ovs.Pair{Entry: 0, Exit: 2}]; err != nil || g1 != pair1 || g2 != pair2 {
			out, _ := p.Switch(0).Ofctl(ctx, "dump-flows")
			t.Fatalf("%s: pairs 0→1 %d, 0→2 %d (%v), want %d, %d\ndc0:\n%s", when, g1, g2, err, pair1, pair2, out)
		}
		t.Logf("%s: callees got %d and %d of %d packets; pairs 0→1 %d, 0→2 %d", when, want1, want2, sent, pair1, pair2)
	}
	if err := p.OpenCall(ctx, older); err != nil {
		t.Fatal(err)
	}
	expect("the older call up", n, 0, n, 0)
	if err := p.OpenCall(ctx, newer); err != nil {
		t.Fatal(err)
	}
	expect("the newer call took the caller's 5-tuple over", 0, n, n, n)
	if err := p.CloseCall(ctx, newer); err != nil {
		t.Fatal(err)
	}
	expect("the newer call ended: the 5-tuple back to the older one", n, 0, 2*n, n)
	if err := p.CloseCall(ctx, older); err != nil {
		t.Fatal(err)
	}
	afterDelayedDelete(t, p)
	expect("both ended", 0, 0, 2*n, n)
	if got := p.FlowTakeoversByDC(); got["dc0"].Takeovers != 1 || got["dc0"].Conflicts != 0 {
		t.Fatalf("takeovers %v, want 1 in dc0, no conflict", got)
	}
}

// The give-back of a failed open on the real plane (review F2's undo,
// mediatagfix): one caller endpoint calls a callee in DC 1, then (that call
// still up) a callee in DC 2 from the same media port, and the newer call's
// open fails after dc0's rules took the caller's 5-tuple over: dc2's rule
// update fails (its OpenFlow socket is moved away, a real failure of that
// switch only). The failed open leaves nothing of the newer call, and the
// older call gets its 5-tuple back at once: every packet the caller sends
// reaches the older call's callee, counted at its socket. Without the
// give-back (giveBack a no-op) the undo deletes the newer call's rule and
// leaves the 5-tuple unrouted: dc0's miss rule drops every packet.
//
// The switches run every bundle through ovs-ofctl, set here
// (ovs.Config.RulePath, which wins over the default and the caller's
// IMS_OVS_OPENFLOW_BUNDLES): ovs-ofctl finds the moved socket missing, but
// an OpenFlow connection opened before the move does not see it, and dc2's
// update would succeed (the test would fail, testing nothing of the
// give-back).
func TestFailedOpenGivesTheTupleBackOnTheRealPlane(t *testing.T) {
	ctx := context.Background()
	b := newTwoCallees(t, ovs.Config{RulePath: ovs.RulePathOfctl})
	p, older, newer, rx1, rx2, tx, to := b.p, b.older, b.newer, b.rx1, b.rx2, b.tx, b.to
	const n = 50
	expect := func(when string, want1 int) {
		t.Helper()
		sent, got := sendAccounted(t, p, tx, to, n, rx1, rx2)
		if got[0] != want1 || got[1] != 0 {
			t.Fatalf("%s: the older call's callee got %d of %d packets, the newer one's %d; want %d and 0", when, got[0], sent, got[1], want1)
		}
		t.Logf("%s: the older call's callee got %d of %d packets", when, got[0], sent)
	}
	if err := p.OpenCall(ctx, older); err != nil {
		t.Fatal(err)
	}
	expect("the older call up", n)

	// dc2's switch refuses the newer call's rule update: commit updates
	// dc0 first (the takeover is on the switch), then fails at dc2, and
	// the undo updates dc0 again
	if bp := p.Switch(2).BundlePaths(); bp.Conn != 0 || bp.Ofctl == 0 {
		t.Fatalf("dc2's bundles %+v, want every one through ovs-ofctl (the fault below is a moved management socket)", bp)
	}
	sock := filepath.Join(p.d.Dir(), p.Bridge(2)+".mgmt")
	if err := os.Rename(sock, sock+".away"); err != nil {
		t.Fatal(err)
	}
	restored := false
	restore := func() {
		if !restored {
			restored = true
			if err := os.Rename(sock+".away", sock); err != nil {
				t.Error(err)
			}
		}
	}
	t.Cleanup(restore)
	if err := p.OpenCall(ctx, newer); err == nil {
		t.Fatal("the newer call opened with dc2's switch unreachable")
	}
	if got := p.FlowTakeoversByDC(); got["dc0"].Takeovers < 1 {
		t.Fatalf("takeovers %v: the newer call never took the 5-tuple over in dc0", got)
	}
	if calls := p.Calls(0); len(calls) != 1 || calls[0] != older {
		t.Fatalf("dc0 holds the calls %v after the failed open, want the older one only", calls)
	}
	expect("the newer call's open failed", n)
	restore()
	if err := p.Sync(ctx, 2); err != nil {
		t.Fatalf("dc2 once its switch is reachable: %v", err)
	}
	if err := p.CloseCall(ctx, older); err != nil {
		t.Fatal(err)
	}
	afterDelayedDelete(t, p)
	expect("the older call ended", 0)
}

// afterDelayedDelete waits until dc0's ended entry rules are deleted
// (ovs.EndHold after their call's end; until then they count the caller's
// packets on their pair and drop them), so the packets sent next are dc0's
// miss rule's, as these tests account them.
func afterDelayedDelete(t *testing.T, p *Plane) {
	t.Helper()
	if !waitFor(20*time.Second, func() bool { return p.Switch(0).Tombstones() == 0 }) {
		t.Fatalf("dc0 keeps %d ended entry rules", p.Switch(0).Tombstones())
	}
}
