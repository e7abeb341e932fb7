package dataplane

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/dpmeter"
	"github.com/ims-orch/ims-orch/controller/routing"
	"github.com/ims-orch/ims-orch/drivers/ovs"
	"github.com/ims-orch/ims-orch/placement"
)

// fakeSwitch records Apply's forgotten output ports and last rules and fails while err is
// set; Learned returns learned.
type fakeSwitch struct {
	err     error
	unread  error // Changes.CountsUnread of a successful Apply
	read    bool  // Changes.CountsRead of a successful Apply
	forget  [][]int
	want    []ovs.Flow // the last update's rules
	learned ovs.LearnedRules
	// resetErr: Reset's error; resets counts the Reset calls
	resetErr error
	resets   int
	// showErr: Ofctl's error (the management socket not back); shows
	// counts the Ofctl calls
	showErr error
	shows   int
}

func (f *fakeSwitch) Apply(ctx context.Context, want []ovs.Flow, forget ...int) (ovs.Changes, error) {
	if err := ctx.Err(); err != nil {
		return ovs.Changes{}, err // ovs-ofctl does not run
	}
	f.forget = append(f.forget, slices.Clone(forget))
	f.want = want
	if f.err != nil {
		return ovs.Changes{}, f.err
	}
	return ovs.Changes{CountsUnread: f.unread, CountsRead: f.read}, nil
}
func (f *fakeSwitch) Learned(context.Context) (ovs.LearnedRules, error) { return f.learned, nil }
func (f *fakeSwitch) Ofctl(context.Context, string, ...string) (string, error) {
	f.shows++
	return "", f.showErr
}
func (f *fakeSwitch) Reset(context.Context, []ovs.Flow) error {
	f.resets++
	return f.resetErr
}
func (f *fakeSwitch) ForgetLearned(context.Context) error { return nil }
func (f *fakeSwitch) Close()                              {}

// A sync whose rule update fails keeps the port set the switch's rules were
// made for (the departed instance's port stays in it) and marks the DC
// failed: the next Check's retryFailed syncs it again, and the retry
// forgets the learned rules towards that port again; once an update
// succeeds, nothing is retried. Before, the retry depended on a poll of the
// driver's active set on every Check (syncDeparted), and only a departed
// port was retried.
func TestFailedSyncIsRetried(t *testing.T) {
	tb, err := routing.NewTable(routing.Config{DC: 0, N: 2, Stages: 1, Paths: map[placement.Pair]placement.Path{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := tb.SetInstances(1, []routing.InstanceLoad{{Index: 3}}); err != nil {
		t.Fatal(err)
	}
	gone, kept := InstancePorts(1, 2), InstancePorts(1, 3)
	sw := &fakeSwitch{err: errors.New("ovs-ofctl: timeout")}
	st := &dcState{t: tb, sw: sw, flows: map[uint32]Flow{}, byCall: map[routing.Call][]uint32{},
		ports: map[int]bool{gone.In: true, kept.In: true}}
	st.live[0] = map[uint8]Ports{3: kept} // instance 2 departed
	p := &Plane{dcs: []*dcState{nil, st}} // DC 0 is another node's
	ctx := context.Background()
	if err := p.sync(ctx, 1); err == nil {
		t.Fatal("a failed rule update: no error")
	}
	if !st.ports[gone.In] {
		t.Fatalf("after the failed update the port set %v lacks the departed port %d", st.ports, gone.In)
	}
	if err := p.retryFailed(ctx); err == nil {
		t.Fatal("a retry that failed again: no error")
	}
	sw.err = nil
	if err := p.retryFailed(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.retryFailed(ctx); err != nil {
		t.Fatal(err)
	}
	if want := [][]int{{gone.In}, {gone.In}, {gone.In}}; !slices.EqualFunc(sw.forget, want, slices.Equal) {
		t.Errorf("forgotten ports per update %v, want %v (each retry forgets the departed port's learned rules; none after a success)", sw.forget, want)
	}
	if st.ports[gone.In] || !st.ports[kept.In] {
		t.Errorf("after the successful update the port set is %v, want only %d", st.ports, kept.In)
	}
}

// A sync that fails before Apply (Compile: a flow whose rule cannot be
// written) marks the DC failed too, and retryFailed updates it again once
// the rules compile; before, only an Apply failure set the mark, so such a
// DC was never retried.
func TestSyncFailingToCompileIsRetried(t *testing.T) {
	tb, err := routing.NewTable(routing.Config{DC: 0, N: 1, Stages: 1, Paths: map[placement.Pair]placement.Path{}})
	if err != nil {
		t.Fatal(err)
	}
	sw := &fakeSwitch{}
	bad := Flow{Serial: 1, Decision: routing.Decision{Verdict: routing.Drop, Packet: routing.Packet{Proto: 1}}} // ICMP with ports
	st := &dcState{t: tb, sw: sw, flows: map[uint32]Flow{1: bad}, byCall: map[routing.Call][]uint32{}}
	p := &Plane{dcs: []*dcState{st}}
	ctx := context.Background()
	if err := p.sync(ctx, 0); err == nil {
		t.Fatal("a flow whose rule cannot be written: no error")
	}
	if !st.failed || len(sw.forget) != 0 {
		t.Fatalf("after a failed Compile: failed=%v, %d updates applied; want failed, none", st.failed, len(sw.forget))
	}
	delete(st.flows, 1)
	if err := p.retryFailed(ctx); err != nil {
		t.Fatal(err)
	}
	if st.failed || len(sw.forget) != 1 {
		t.Fatalf("after the retry: failed=%v, %d updates applied; want not failed, 1", st.failed, len(sw.forget))
	}
}

// A compile that failed after an older set's apply, noted only after it
// (a call's commit notes its outcome only when mu is free), is retried:
// the noted success clears the failed mark of the apply, not the compile's
// (revML LOW-3).
func TestACompileFailureOutlivesAnOlderSetsNotedSuccess(t *testing.T) {
	ctx := context.Background()
	b := newTakeoverBed(t)
	st := b.p.dcs[0]
	b.startState(t, sipCall("127.0.0.101", "127.0.0.91"))
	b.p.mu.Lock()
	defer b.p.mu.Unlock()
	if err := b.p.compileRules(0, st); err != nil { // a commit's set
		t.Fatal(err)
	}
	st.flows[99] = Flow{Serial: 99, Decision: routing.Decision{Verdict: routing.Drop, Packet: routing.Packet{Proto: 1}}} // ICMP with ports: no rule
	if err := b.p.sync(ctx, 0); err == nil {                                                                             // while the set is in flight
		t.Fatal("a flow whose rule cannot be written: no error")
	}
	delete(st.flows, 99)
	b.p.mu.Unlock()
	st.applyMu.Lock() // the set's apply (outside mu) ends after the failed compile
	err := st.applyNewest(ctx, 0)
	st.applyMu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	err = b.p.retryFailed(ctx) // notes the older apply's success first
	b.p.mu.Lock()
	if err != nil || len(b.sw.forget) != 2 {
		t.Fatalf("retry after a failed compile: %v, %d updates; want the retry's (2)", err, len(b.sw.forget))
	}
}

// The rules reinstalled after ovs-vswitchd's restart (resetLocked) leave
// the DC as a successful sync does: not failed, its port set the live
// instances', so the next Check does not update it again for nothing
// (before, the mark of an update that failed while vswitchd was down
// stayed, and so did the stale port set).
func TestResetAfterRestartClearsTheFailedMark(t *testing.T) {
	tb, err := routing.NewTable(routing.Config{DC: 0, N: 1, Stages: 1, Paths: map[placement.Pair]placement.Path{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := tb.SetInstances(1, []routing.InstanceLoad{{Index: 3}}); err != nil {
		t.Fatal(err)
	}
	gone, kept := InstancePorts(1, 2), InstancePorts(1, 3)
	sw := &fakeSwitch{}
	st := &dcState{t: tb, sw: sw, flows: map[uint32]Flow{}, byCall: map[routing.Call][]uint32{},
		ports: map[int]bool{gone.In: true, kept.In: true}, failed: true}
	st.live[0] = map[uint8]Ports{3: kept}
	p := &Plane{dcs: []*dcState{st}}
	ctx := context.Background()
	if err := p.resetLocked(ctx, 0, st, time.Now().Add(socketWait)); err != nil {
		t.Fatal(err)
	}
	if st.failed || len(st.ports) != 1 || !st.ports[kept.In] {
		t.Fatalf("after the reset: failed=%v, ports %v; want not failed, only %d", st.failed, st.ports, kept.In)
	}
	if err := p.retryFailed(ctx); err != nil {
		t.Fatal(err)
	}
	if len(sw.forget) != 0 {
		t.Fatalf("the Check after a successful reset applied %d updates, want none", len(sw.forget))
	}
}

// After ovs-vswitchd's restart every DC is reset even when an earlier
// DC's Reset failed: the failed DC is marked failed (retryFailed applies
// its set again), the next one is reset and not failed, and the error
// names the failed DC. Before (final MED-1), the first failure ended the
// loop: DC 1 was never reset nor marked failed, so its empty bridge was
// never filled again.
func TestEveryDCIsResetAfterRestartWhenOneFails(t *testing.T) {
	ctx := context.Background()
	p := &Plane{}
	var sws []*fakeSwitch
	for k := range 2 {
		tb, err := routing.NewTable(routing.Config{DC: k, N: 2, Stages: 1, Paths: map[placement.Pair]placement.Path{}})
		if err != nil {
			t.Fatal(err)
		}
		if err := tb.SetInstances(1, []routing.InstanceLoad{{Index: 3}}); err != nil {
			t.Fatal(err)
		}
		sw := &fakeSwitch{}
		st := &dcState{t: tb, sw: sw, flows: map[uint32]Flow{}, byCall: map[routing.Call][]uint32{}}
		st.live[0] = map[uint8]Ports{3: InstancePorts(1, 3)}
		p.dcs = append(p.dcs, st)
		sws = append(sws, sw)
	}
	sws[0].resetErr = errors.New("ovs-ofctl: connection refused")
	err := p.resetAllLocked(ctx)
	if err == nil || !strings.Contains(err.Error(), "dc0") {
		t.Fatalf("the reset with DC 0's failing: %v; want an error naming dc0", err)
	}
	if sws[1].resets != 1 || p.dcs[1].failed {
		t.Fatalf("DC 1: %d resets, failed=%v; want reset once, not failed", sws[1].resets, p.dcs[1].failed)
	}
	if !p.dcs[0].failed {
		t.Fatal("DC 0's Reset failed but it is not marked failed")
	}
	if err := p.retryFailed(ctx); err != nil {
		t.Fatal(err)
	}
	if len(sws[0].forget) != 1 || len(sws[1].forget) != 0 || p.dcs[0].failed {
		t.Fatalf("the retry: %d updates of DC 0, %d of DC 1, DC 0 failed=%v; want 1, 0, false", len(sws[0].forget), len(sws[1].forget), p.dcs[0].failed)
	}
}

// A DC whose management socket did not come back after the restart still
// runs its Reset (which fails too): ovs.Switch.Reset's failure leaves every
// rule dirty, so retryFailed's update rewrites them all. Before, resetLocked
// returned before the Reset: the Switch's record kept the rules from before
// the restart and the retry's update sent nothing to the empty bridge.
func TestResetRunsWhenTheSocketIsNotBack(t *testing.T) {
	tb, err := routing.NewTable(routing.Config{DC: 0, N: 1, Stages: 1, Paths: map[placement.Pair]placement.Path{}})
	if err != nil {
		t.Fatal(err)
	}
	sw := &fakeSwitch{showErr: errors.New("ovs-ofctl: connection refused"), resetErr: errors.New("ovs-ofctl: connection refused")}
	st := &dcState{t: tb, sw: sw, flows: map[uint32]Flow{}, byCall: map[routing.Call][]uint32{}}
	clk := clock.NewVirtual(time.Unix(0, 0))
	p := &Plane{dcs: []*dcState{st}, socketClock: clk}
	if err := p.resetLocked(context.Background(), 0, st, clk.Now()); err == nil || !strings.Contains(err.Error(), "management socket") { // the wait is over
		t.Fatalf("the reset with no socket: %v; want an error naming the management socket", err)
	}
	if sw.resets != 1 || !st.failed {
		t.Fatalf("%d Resets, failed=%v; want 1, failed", sw.resets, st.failed)
	}
}

// selfAdvancing is a virtual clock whose timers fire at once: a wait on
// it moves its time on by the wait (no real time passes).
type selfAdvancing struct{ *clock.Virtual }

func (c selfAdvancing) AfterFunc(d time.Duration, f func()) clock.Timer {
	t := c.Virtual.AfterFunc(d, f)
	c.Advance(d)
	return t
}

// socketlessPlane is a plane of n DCs whose management sockets do not
// answer (nor does Reset).
func socketlessPlane(t *testing.T, n int) (*Plane, []*fakeSwitch) {
	t.Helper()
	p := &Plane{}
	var sws []*fakeSwitch
	for k := range n {
		tb, err := routing.NewTable(routing.Config{DC: k, N: n, Stages: 1, Paths: map[placement.Pair]placement.Path{}})
		if err != nil {
			t.Fatal(err)
		}
		sw := &fakeSwitch{showErr: errors.New("ovs-ofctl: connection refused"), resetErr: errors.New("ovs-ofctl: connection refused")}
		p.dcs = append(p.dcs, &dcState{t: tb, sw: sw, flows: map[uint32]Flow{}, byCall: map[routing.Call][]uint32{}})
		sws = append(sws, sw)
	}
	return p, sws
}

// After a restart, the DCs share one wait for their management sockets
// (socketWait in all, not per DC): the first DC looks until it passed,
// the others look once; every DC is still reset. Before (revRR LOW-5),
// each DC waited its own 2 s: 6 s for 3 DCs under the plane's lock.
func TestTheSocketWaitAfterARestartIsShared(t *testing.T) {
	p, sws := socketlessPlane(t, 3)
	start := time.Unix(0, 0)
	clk := selfAdvancing{clock.NewVirtual(start)}
	p.socketClock = clk
	if err := p.resetAllLocked(context.Background()); err == nil || !strings.Contains(err.Error(), "management socket") {
		t.Fatalf("the reset with no sockets: %v; want an error naming the management socket", err)
	}
	if waited := clk.Now().Sub(start); waited != socketWait {
		t.Errorf("waited %v for the sockets of 3 DCs, want %v in all", waited, socketWait)
	}
	for k, sw := range sws {
		want := 1
		if k == 0 {
			want = int(socketWait/socketPoll) + 1
		}
		if sw.shows != want || sw.resets != 1 {
			t.Errorf("DC %d: %d socket looks, %d Resets; want %d, 1", k, sw.shows, sw.resets, want)
		}
	}
}

// A cancelled ctx ends the wait for the management sockets at once: one
// look per DC, no wait (the plain virtual clock would block any), every
// DC still reset and marked failed. Before (revRR LOW-5), the wait did
// not look at ctx: 200 looks and 2 s per DC.
func TestTheSocketWaitEndsWithTheContext(t *testing.T) {
	p, sws := socketlessPlane(t, 3)
	clk := clock.NewVirtual(time.Unix(0, 0))
	p.socketClock = clk
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.resetAllLocked(ctx); err == nil || !strings.Contains(err.Error(), context.Canceled.Error()) {
		t.Fatalf("the reset with a cancelled ctx: %v; want an error saying so", err)
	}
	for k, sw := range sws {
		if sw.shows != 1 || sw.resets != 1 || !p.dcs[k].failed {
			t.Errorf("DC %d: %d socket looks, %d Resets, failed=%v; want 1, 1, failed", k, sw.shows, sw.resets, p.dcs[k].failed)
		}
	}
	if n := clk.Pending(); n != 0 {
		t.Errorf("%d waits left pending", n)
	}
}

// A rule update whose pair-counter read failed (ovs.Changes.CountsUnread)
// is a successful update: the DC is not marked failed; it is counted
// (PairCountsLostByDC, the metric) and reported to OnError thinned (the
// 1st, 2nd, 4th… of a run), and an update whose read succeeded ends the
// run. Before, the failed read failed the update (and the DC).
func TestUnreadPairCountsAreCountedNotFailed(t *testing.T) {
	tb, err := routing.NewTable(routing.Config{DC: 0, N: 1, Stages: 1, Paths: map[placement.Pair]placement.Path{}})
	if err != nil {
		t.Fatal(err)
	}
	sw := &fakeSwitch{unread: errors.New("ovs-ofctl dump-flows: timed out")}
	st := &dcState{t: tb, sw: sw, flows: map[uint32]Flow{}, byCall: map[routing.Call][]uint32{}}
	var logged []error
	p := &Plane{dcs: []*dcState{st}, cfg: Config{OnError: func(err error) { logged = append(logged, err) }}}
	ctx := context.Background()
	for range 5 {
		if err := p.sync(ctx, 0); err != nil || st.failed {
			t.Fatalf("an update with unread counters: %v (failed %v), want success", err, st.failed)
		}
		// an update that reads nothing (a call's start) between them
		// does not end the run (revO L1)
		sw.unread = nil
		if err := p.sync(ctx, 0); err != nil {
			t.Fatal(err)
		}
		sw.unread = errors.New("ovs-ofctl dump-flows: timed out")
	}
	if got := p.PairCountsLostByDC(); got["dc0"] != 5 {
		t.Fatalf("PairCountsLostByDC %v, want dc0: 5", got)
	}
	if len(logged) != 3 || !strings.Contains(logged[2].Error(), "4 rule update(s) in a row (4 in all)") ||
		!strings.Contains(logged[0].Error(), "timed out") {
		t.Fatalf("logged %v, want the 1st, 2nd and 4th of the run, naming the read's error", logged)
	}
	sw.unread, sw.read = nil, true
	if err := p.sync(ctx, 0); err != nil {
		t.Fatal(err)
	}
	sw.unread, sw.read = errors.New("again"), false
	if err := p.sync(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if len(logged) != 4 || !strings.Contains(logged[3].Error(), "1 rule update(s) in a row (6 in all)") {
		t.Fatalf("after a good read the next loss starts a new run: logged %v", logged)
	}
}

// The DP meter's view of a switch passes lost counts on as counts with
// dpmeter.ErrCountsLost (the meter starts over from them), and a failed
// read as an error without counts.
func TestPairCountsPassLostCountsOn(t *testing.T) {
	c := map[ovs.Pair]uint64{{Entry: 0, Exit: 1}: 7}
	got, err := pairCounts(0, func() (map[ovs.Pair]uint64, error) { return c, fmt.Errorf("x: %w", ovs.ErrCountsLost) })
	if !errors.Is(err, dpmeter.ErrCountsLost) || got[dpmeter.Pair{Entry: 0, Exit: 1}] != 7 {
		t.Fatalf("lost counts: %v %v, want the counts with dpmeter.ErrCountsLost", got, err)
	}
	got, err = pairCounts(0, func() (map[ovs.Pair]uint64, error) { return nil, errors.New("refused") })
	if err == nil || errors.Is(err, dpmeter.ErrCountsLost) || got != nil {
		t.Fatalf("a failed read: %v %v, want an error and no counts", got, err)
	}
	if got, err = pairCounts(0, func() (map[ovs.Pair]uint64, error) { return c, nil }); err != nil || len(got) != 1 {
		t.Fatalf("a good read: %v %v", got, err)
	}
}
