package ovs

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/clock"
)

// On the real switch, a UDP flow from a namespace that still sends while
// its call ends (no wait for the receiver, nor for the revalidator) is
// credited wholly to its pair: the pair count equals the packets the
// sender sent (every one reached the entry switch: the rule or its
// count-then-drop successor matched it), the receiver got those sent
// before the end and none after it, and the delayed delete (the Switch's
// clock, advanced by the test once the flow stopped) then removes the
// rule. Before (session 15) the end deleted the rule: the packets of the
// last revalidator period before it, and all after it, went to the
// table's miss, so the pair counted fewer than the sender sent (revC H1's
// real failure: 227 of 240).
func TestAFlowStillSendingAtItsEndCountsOnItsPair(t *testing.T) {
	flowThroughItsEnd(t, false)
}

// The same on the real clock (opt-in: IMS_OVS_REAL_HOLD=1; a measurement
// of the hold on this host, not a unit test): the delayed delete runs
// EndHold after the end by itself, the flow stops 100 ms after the end's
// bundle returned (within EndHold less a revalidator period), and once
// the rule is gone the datapath's flows are purged (their last stats
// pushed: ovs-appctl revalidator/purge), so the pair count is final: it
// must equal the packets sent. It fails when the revalidator credited the
// flow's last packets later than the delete (a host too loaded for
// EndHold).
func TestAFlowStillSendingAtItsEndCountsOnItsPairOnTheRealClock(t *testing.T) {
	if os.Getenv("IMS_OVS_REAL_HOLD") == "" {
		t.Skip("a measurement of the 300 ms hold on the real clock: set IMS_OVS_REAL_HOLD=1")
	}
	flowThroughItsEnd(t, true)
}

// firedClock is the real clock, telling fired after each AfterFunc call
// ran (the test waits for the delayed delete by that event, not a sleep).
type firedClock struct {
	clock.Real
	fired chan struct{}
}

func (c firedClock) AfterFunc(d time.Duration, f func()) clock.Timer {
	return c.Real.AfterFunc(d, func() {
		f()
		c.fired <- struct{}{}
	})
}

// flowThroughItsEnd is the test of a flow sending through its call's end,
// on a virtual clock advanced by the test or on the real clock.
func flowThroughItsEnd(t *testing.T, realClock bool) {
	ctx := context.Background()
	d, sw := realSwitch(t)
	clk := clock.NewVirtual(time.Now())
	fired := make(chan struct{}, 16)
	if realClock {
		sw.clk = firedClock{fired: fired}
	} else {
		sw.clk = clk
	}
	from, to := tempNetns(t), tempNetns(t)
	br := sw.Bridge()
	for _, v := range []struct {
		port  string
		no    int
		ns    string
		mac   string
		ip    string
		other string
		omac  string
	}{
		{d.Prefix() + "pa", 1, from, "02:13:00:00:77:01", "10.77.0.1/24", "10.77.0.2", "02:13:00:00:77:02"},
		{d.Prefix() + "pb", 2, to, "02:13:00:00:77:02", "10.77.0.2/24", "10.77.0.1", "02:13:00:00:77:01"},
	} {
		if err := d.AddVeth(ctx, br, v.port, v.no, v.ns, "eth0", v.mac); err != nil {
			t.Fatal(err)
		}
		for _, c := range [][]string{
			{"ip", "addr", "add", v.ip, "dev", "eth0"},
			{"ip", "neigh", "replace", v.other, "lladdr", v.omac, "dev", "eth0", "nud", "permanent"},
		} {
			if _, err := InNetns(ctx, v.ns, c[0], c[1:]...); err != nil {
				t.Fatal(err)
			}
		}
	}
	a := Pair{0, 1}
	entry := Flow{Table: 0, Priority: 200, Cookie: EntryCookie(a, 1), Match: "udp,in_port=1,nw_src=10.77.0.1,tp_src=6000", Actions: CountPair(a, "output:2")}
	if _, err := sw.Apply(ctx, []Flow{PairCounter(a), entry}); err != nil {
		t.Fatal(err)
	}
	rx := udpIn(t, to, "10.77.0.2:7000")
	tx := udpIn(t, from, "10.77.0.1:6000")
	var got atomic.Int64
	recvDone := make(chan struct{})
	go func() {
		defer close(recvDone)
		buf := make([]byte, 2048)
		for {
			if _, _, err := rx.ReadFromUDP(buf); err != nil {
				return // closed
			}
			got.Add(1)
		}
	}()
	// one packet a millisecond (a media flow's pace is 20 ms; this one is
	// denser so the end's revalidator period holds many); the call ends
	// after the 200th, while the flow keeps sending: 200 more once the
	// end's bundle is done (however long it took: a loaded switch), so
	// the end falls inside the flow
	endAt, after := 200, 200
	if realClock {
		after = int(EndHold-2*MaxRevalidator) / int(time.Millisecond) // 100
	}
	dst := &net.UDPAddr{IP: net.IPv4(10, 77, 0, 2), Port: 7000}
	ended := make(chan error, 1)
	sent, stop := 0, -1
	tick := time.NewTicker(time.Millisecond) // the flow's pace, not a wait
	for stop < 0 || sent < stop {
		<-tick.C
		if _, err := tx.WriteToUDP(make([]byte, 172), dst); err != nil {
			t.Fatal(err)
		}
		sent++
		if sent == endAt {
			go func() {
				_, err := sw.Apply(ctx, []Flow{PairCounter(a)})
				ended <- err
			}()
		}
		select {
		case err := <-ended:
			if err != nil {
				t.Fatalf("the call's end: %v", err)
			}
			stop = sent + after
		default:
		}
	}
	tick.Stop()
	total := uint64(sent)
	if realClock {
		// the delayed delete, EndHold after the end on the real clock
		for sw.Tombstones() != 0 {
			<-fired
		}
		if _, err := run(ctx, d.cfg.Dir, nil, "ovs-appctl", "-t", d.path("vswitchd.ctl"), "revalidator/purge"); err != nil {
			t.Fatal(err)
		}
		rx.Close()
		<-recvDone
		ps, err := sw.PairPackets()
		fmt.Fprintf(os.Stderr, "countdrop-realclock: sent %d received %d pair %d (%v)\n", total, got.Load(), ps[a], err)
		if err != nil || ps[a] != total {
			t.Fatalf("real clock: pair 0→1 counted %d packets (%v), the sender sent %d (receiver %d): the revalidator credited later than EndHold", ps[a], err, total, got.Load())
		}
		return
	}
	// the revalidator credits the last packets within its period: read
	// the counts again until they cover what was sent (each read is an
	// ovs-ofctl run; a deadline fails it)
	var pair uint64
	for deadline := time.Now().Add(10 * time.Second); ; {
		ps, err := sw.PairPackets()
		if err != nil {
			t.Fatal(err)
		}
		if pair = ps[a]; pair >= total || time.Now().After(deadline) {
			break
		}
	}
	rx.Close()
	<-recvDone
	miss, _ := sw.Ofctl(ctx, "dump-flows", "table=0")
	fmt.Fprintf(os.Stderr, "countdrop-real: sent %d received %d pair %d\n", total, got.Load(), pair)
	if pair != total {
		t.Fatalf("pair 0→1 counted %d packets, the sender sent %d (receiver %d)\n%s", pair, total, got.Load(), miss)
	}
	if r := got.Load(); r == 0 || r >= int64(total) {
		t.Fatalf("the receiver got %d of %d: want the call's end to fall inside the flow", r, total)
	}
	clk.Advance(EndHold)
	out, err := sw.Ofctl(ctx, "dump-flows", "table=0")
	if err != nil || strings.Contains(out, fmt.Sprintf("cookie=%#x", entry.Cookie)) || sw.Tombstones() != 0 {
		t.Fatalf("after the delayed delete (%v, %d tombstones):\n%s\nwant no entry rule", err, sw.Tombstones(), out)
	}
	if ps, err := sw.PairPackets(); err != nil || ps[a] != total {
		t.Fatalf("after the delayed delete PairPackets %v (%v), want 0→1: %d", ps, err, total)
	}
}
