package dataplane

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/controller/routing"
	"github.com/ims-orch/ims-orch/drivers/ovs"
	"github.com/ims-orch/ims-orch/drivers/ovs/ovstest"
)

// Calls with a media endpoint of their own each (every real UA; sipmedia's
// TestChaosMedia), one after another on the real plane (DC 0 → DC 1
// through a firewall in DC 0): no call's open or end runs ovs-ofctl
// dump-flows (counted at a logging ovs-ofctl on the test's PATH; the
// /start of the P-CSCF's media hook waits for its open, which shares the
// rule update with the ends). Each call ends only after its callee got its
// packets and the pair's counter caught up with them: Open vSwitch credits
// a datapath flow's packets since its last stats pull to the rules of its
// translation after the bundle (table 1's miss rule once the entry rule is
// gone), so packets the switch had not credited when the call ended are
// not on the pair (docs/dataplane.md "Pair counters"); ending a still
// sending call is not what this test counts. The pair's counter then ends
// equal to the packets the callee's socket got. Before (session 14), every
// call's end read the entry rules' counters first (dump-flows on the rule
// update's path: Kamailio's 1 s timeout on /start under load).
func TestPerCallMediaEndsWithoutACounterRead(t *testing.T) {
	ctx := context.Background()
	runs := ovstest.OfctlRuns(t)
	p, _, caller, callee := newFirewallPlane(t)
	rx := listen(t, p.UsersNS(1), "10.101.0.1:7000")
	to := fmt.Sprintf("%s:7000", EntryIP(0))
	// a counter read: dump-flows of the entry rules, the counter rules or
	// every rule (not the learned or the miss rules': the plane's and this
	// test's)
	reads := func(lines []string) []string {
		var out []string
		for _, l := range lines {
			if strings.Contains(l, "dump-flows") && (!strings.Contains(l, "cookie=") ||
				strings.Contains(l, fmt.Sprintf("cookie=%#x/", ovs.CookieEntry)) || strings.Contains(l, fmt.Sprintf("cookie=%#x/", ovs.CookiePair))) {
				out = append(out, l)
			}
		}
		return out
	}
	const calls, n = 6, 40
	got := 0
	for i := range calls {
		port := 6000 + 2*i
		call := routing.Call{CallerDC: 0, CalleeDC: 1, CallerIP: caller, CalleeIP: callee,
			CallerSendPort: uint16(port), CallerRecvPort: uint16(port), CalleeSendPort: 7000, CalleeRecvPort: 7000,
			CallerEntryIP: EntryIP(0), CalleeEntryIP: EntryIP(1)}
		tx := dial(t, p.UsersNS(0), fmt.Sprintf("10.100.0.1:%d", port))
		before := len(runs())
		if err := p.OpenCall(ctx, call); err != nil {
			t.Fatal(err)
		}
		opened := len(runs())
		missBefore := missed(t, p, 0)
		sent := tx.send(to, n, 2*time.Millisecond, nil)
		// every packet sent is accounted for: the callee's socket got it,
		// or dc0's miss rule dropped it
		if !waitFor(20*time.Second, func() bool { return uint64(rx.count(port))+missed(t, p, 0)-missBefore >= uint64(sent) }) {
			t.Fatalf("call %d: the callee got %d of %d packets, dc0 dropped %d", i, rx.count(port), sent, missed(t, p, 0)-missBefore)
		}
		// the switch credited every packet the callee got to the pair
		// before the call ends (no sleep: the count is read until it
		// has; PairPackets is cumulative)
		var caught map[ovs.Pair]uint64
		want := uint64(got + rx.count(port))
		if !waitFor(20*time.Second, func() bool {
			var err error
			caught, err = p.Switch(0).PairPackets()
			return err == nil && caught[ovs.Pair{Entry: 0, Exit: 1}] >= want
		}) {
			t.Fatalf("call %d: pair 0→1 counted %d packets before the end, the callee got %d", i, caught[ovs.Pair{Entry: 0, Exit: 1}], want)
		}
		mid := len(runs())
		if err := p.CloseCall(ctx, call); err != nil {
			t.Fatal(err)
		}
		all := runs()
		if r := reads(all[before:opened]); len(r) > 0 {
			t.Fatalf("call %d's open ran %d counter read(s) %q", i, len(r), r)
		}
		if r := reads(all[mid:]); len(r) > 0 {
			t.Fatalf("call %d's end ran %d counter read(s) %q", i, len(r), r)
		}
		got += rx.count(port)
	}
	if got == 0 {
		t.Fatal("the callee got no packet")
	}
	// the bridge's counters follow the datapath's (the revalidator)
	pair := ovs.Pair{Entry: 0, Exit: 1}
	var counted map[ovs.Pair]uint64
	var err error
	waitFor(20*time.Second, func() bool {
		counted, err = p.Switch(0).PairPackets()
		return err == nil && counted[pair] >= uint64(got)
	})
	if err != nil || counted[pair] != uint64(got) {
		out, _ := p.Switch(0).Ofctl(ctx, "dump-flows")
		t.Fatalf("pair 0→1 counted %d packets (%v), the callee got %d\ndc0:\n%s", counted[pair], err, got, out)
	}
	t.Logf("%d calls: the callee got %d packets, the pair counted %d; %d ovs-ofctl runs in all", calls, got, counted[pair], len(runs()))
}
