package ovs

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/clock"
)

// udpFrame is an Ethernet/IPv4/UDP frame from 10.0.0.1:6000 to
// 10.0.0.2:7000 (checksums 0: the switch does not check them), in hex.
func udpFrame() string {
	f := make([]byte, 14+20+8+4)
	copy(f[0:6], []byte{2, 0, 0, 0, 0, 2})
	copy(f[6:12], []byte{2, 0, 0, 0, 0, 1})
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	ip := f[14:]
	ip[0], ip[8], ip[9] = 0x45, 64, 17
	binary.BigEndian.PutUint16(ip[2:], 20+8+4)
	copy(ip[12:16], []byte{10, 0, 0, 1})
	copy(ip[16:20], []byte{10, 0, 0, 2})
	udp := ip[20:]
	binary.BigEndian.PutUint16(udp[0:], 6000)
	binary.BigEndian.PutUint16(udp[2:], 7000)
	binary.BigEndian.PutUint16(udp[4:], 8+4)
	return hex.EncodeToString(f)
}

// inject sends n copies of frame through the bridge's rules (packet-out to
// the flow table): each is counted by the rule it matches.
func inject(t *testing.T, sw *Switch, frame string, n int) {
	t.Helper()
	for range n {
		if _, err := sw.Ofctl(context.Background(), "packet-out", "in_port=controller packet="+frame+" actions=table"); err != nil {
			t.Fatal(err)
		}
	}
}

// The read of the pair counters before a rule update that ends a pair
// counter rule (its pair left the rule set) is best effort: when it fails
// the rules are applied all the same (Changes.CountsUnread says why the
// counts are lost), and the next PairPackets answers the counts with
// ErrCountsLost (once), so the interval they cover is a missing
// measurement rather than one short of the deleted rule's packets; the
// counter rule added again counts from 0. Reset reads first (its failed
// read is a loss too), and a restart of ovs-vswitchd is reported by the
// first read after it. Before, the failed read failed the whole update.
func TestPairCountReadFailureDoesNotStopTheUpdate(t *testing.T) {
	ctx := context.Background()
	d, sw := realSwitch(t)
	frame := udpFrame()
	pr := Pair{0, 1}
	e1 := Flow{Table: 0, Priority: 200, Cookie: EntryCookie(pr, 1), Match: "udp,nw_src=10.0.0.1,tp_src=6000", Actions: CountPair(pr, "drop")}
	if _, err := sw.Apply(ctx, []Flow{PairCounter(pr), e1}); err != nil {
		t.Fatal(err)
	}
	pairs := func(want uint64, wantErr error) {
		t.Helper()
		got, err := sw.PairPackets()
		if !errors.Is(err, wantErr) || (err != nil && wantErr == nil) {
			t.Fatalf("PairPackets: error %v, want %v", err, wantErr)
		}
		if got[pr] != want {
			t.Fatalf("PairPackets %v (error %v), want 0→1: %d", got, err, want)
		}
	}
	inject(t, sw, frame, 3)
	pairs(3, nil)

	inject(t, sw, frame, 2) // counted by the counter rule, never read
	sw.readCounts = func(context.Context, uint64) ([]FlowCount, error) {
		return nil, errors.New("ovs-ofctl: timed out")
	}
	c, err := sw.Apply(ctx, []Flow{e1})
	sw.readCounts = nil
	if err != nil {
		t.Fatalf("Apply with a failed counter read: %v, want the rules applied", err)
	}
	if c.CountsUnread == nil || !strings.Contains(c.CountsUnread.Error(), "timed out") || c.Deleted != 1 {
		t.Fatalf("changes %+v, want 1 deleted and CountsUnread naming the read's error", c)
	}
	out, err := sw.Ofctl(ctx, "dump-flows")
	if err != nil || strings.Contains(out, fmt.Sprintf("cookie=%#x", PairCookie(pr))) {
		t.Fatalf("after the update the switch has (%v):\n%s\nwant no counter rule", err, out)
	}
	// the counter's 2 packets are lost: the counts come marked, once
	pairs(3, ErrCountsLost)
	if _, err := sw.Apply(ctx, []Flow{PairCounter(pr), e1}); err != nil {
		t.Fatal(err)
	}
	inject(t, sw, frame, 4) // on the counter added again, from 0
	pairs(7, nil)

	// Reset reads first: with a good read nothing is lost, with a failed
	// one the counts since the last read are
	rules := []Flow{PairCounter(pr), e1}
	inject(t, sw, frame, 1)
	if err := sw.Reset(ctx, rules); err != nil {
		t.Fatal(err)
	}
	pairs(8, nil)
	inject(t, sw, frame, 1)
	sw.readCounts = func(context.Context, uint64) ([]FlowCount, error) {
		return nil, errors.New("ovs-ofctl: timed out")
	}
	err = sw.Reset(ctx, rules)
	sw.readCounts = nil
	if err != nil {
		t.Fatal(err)
	}
	pairs(8, ErrCountsLost)
	inject(t, sw, frame, 1)
	pairs(9, nil)

	// ovs-vswitchd dies with 2 packets on the counter unread: the first
	// read after its restart reports the loss (its span is the missing
	// one), the Reset that installs the rules again loses nothing more,
	// and the next span is counted whole (revO M1: before, the read after
	// the restart answered a low count as good and the Reset marked the
	// next, complete span lost)
	inject(t, sw, frame, 2)
	if err := syscall.Kill(d.VswitchdPID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for d.VswitchdAlive() {
		time.Sleep(10 * time.Millisecond)
	}
	if err := d.RestartVswitchd(ctx); err != nil {
		t.Fatal(err)
	}
	// the bridge's management socket comes back once vswitchd has read
	// the database
	deadline := time.Now().Add(20 * time.Second)
	for _, err := sw.Ofctl(ctx, "show"); err != nil; _, err = sw.Ofctl(ctx, "show") {
		if time.Now().After(deadline) {
			t.Fatalf("the bridge does not answer after the restart: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	pairs(9, ErrCountsLost)
	if err := sw.Reset(ctx, rules); err != nil {
		t.Fatal(err)
	}
	inject(t, sw, frame, 4)
	pairs(13, nil)
}

// On the real switch, entry rules that end (a call's end deletes its
// rule; a newer call takes the 5-tuple over with a new cookie and another
// pair) cost no counter read: each such rule update is one ovs-ofctl run,
// the bundle (counted at the Switch's ovs-ofctl seam, which runs the real
// one), and every packet the entry rules matched is on its pair's counter,
// including the ones sent just before their rule went and, while the
// ended rule waits for its delayed delete (count-then-drop), after it.
// Before (session 14), every such update ran ovs-ofctl dump-flows first.
func TestEntryRulesEndWithoutACounterRead(t *testing.T) {
	ctx := context.Background()
	d, sw := realSwitch(t)
	clk := clock.NewVirtual(time.Now())
	sw.clk = clk
	var runs [][]string
	sw.ofctl = func(ctx context.Context, stdin io.Reader, args ...string) (string, error) {
		runs = append(runs, args)
		return run(ctx, d.cfg.Dir, stdin, "ovs-ofctl", args...)
	}
	frame := udpFrame()
	a, b := Pair{0, 1}, Pair{0, 2}
	counters := []Flow{PairCounter(a), PairCounter(b)}
	match := "udp,nw_src=10.0.0.1,tp_src=6000"
	entry := func(p Pair, serial uint32) Flow {
		return Flow{Table: 0, Priority: 200, Cookie: EntryCookie(p, serial), Match: match, Actions: CountPair(p, "drop")}
	}
	update := func(what string, want ...Flow) {
		t.Helper()
		before := len(runs)
		if _, err := sw.Apply(ctx, append(slices.Clone(counters), want...)); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		// an end whose rule already drops (this test's) is no change:
		// its count-then-drop successor is the same rule
		if n := len(runs) - before; n > 1 || n == 1 && !slices.Contains(runs[before], "--bundle") || n == 0 && want != nil {
			t.Fatalf("%s: %d ovs-ofctl runs %v, want 1, the bundle", what, n, runs[before:])
		}
	}
	update("the first call", entry(a, 1))
	inject(t, sw, frame, 3)
	update("a newer call takes the 5-tuple over", entry(b, 2))
	inject(t, sw, frame, 4)
	update("the newer call ends")
	inject(t, sw, frame, 2) // the ended rule counts them, then drops them
	got, err := sw.PairPackets()
	if err != nil || got[a] != 3 || got[b] != 6 {
		out, _ := sw.Ofctl(ctx, "dump-flows")
		t.Fatalf("PairPackets %v (%v), want 0→1: 3, 0→2: 6\n%s", got, err, out)
	}
	before := len(runs)
	clk.Advance(EndHold) // the delayed delete: one bundle
	if n := len(runs) - before; n != 1 || !slices.Contains(runs[before], "--bundle") {
		t.Fatalf("the delayed delete: ovs-ofctl runs %v, want the bundle", runs[before:])
	}
	inject(t, sw, frame, 2) // no entry rule: the table's miss, no pair's
	if got, err := sw.PairPackets(); err != nil || got[a] != 3 || got[b] != 6 {
		t.Fatalf("after the delayed delete PairPackets %v (%v), want 0→1: 3, 0→2: 6", got, err)
	}
}
