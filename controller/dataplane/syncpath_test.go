package dataplane

import (
	"context"
	"errors"
	"reflect"
	"runtime"
	"slices"
	"sync"
	"testing"

	"github.com/ims-orch/ims-orch/controller/routing"
	"github.com/ims-orch/ims-orch/placement"
)

// The sync-path updates (interval steps, instance changes, departures,
// retries) compile under the plane's lock and apply without it, like a
// call's commit (commit.go, session 16). Before, each held the lock across
// its own ovs-ofctl run, and the media hook's /start queued behind every
// one of them, of any DC (TestChaosMedia at load ≈ 20+).

// twoDCPaths: every pair of DCs 0 and 1, the one stage in the entry DC.
var twoDCPaths = map[placement.Pair]placement.Path{
	{Entry: 0, Exit: 0}: {0, 0, 0}, {Entry: 1, Exit: 1}: {1, 1, 1},
	{Entry: 0, Exit: 1}: {0, 0, 1}, {Entry: 1, Exit: 0}: {1, 1, 0},
}

// newTwoDCBed is the takeover bed with a second DC (its own table, one
// firewall instance 3, its own fake switch): b.sw is DC 0's, the second
// result DC 1's.
func newTwoDCBed(t *testing.T) (*takeoverBed, *fakeSwitch) {
	t.Helper()
	b := &takeoverBed{sw: &fakeSwitch{}}
	sw1 := &fakeSwitch{}
	var dcs []*dcState
	for k, sw := range []*fakeSwitch{b.sw, sw1} {
		tb, err := routing.NewTable(routing.Config{DC: k, N: 2, Stages: 1, Paths: twoDCPaths})
		if err != nil {
			t.Fatal(err)
		}
		if err := tb.SetInstances(1, []routing.InstanceLoad{{Index: 3}}); err != nil {
			t.Fatal(err)
		}
		st := &dcState{t: tb, sw: sw, flows: map[uint32]Flow{}, byCall: map[routing.Call][]uint32{}}
		st.live[0] = map[uint8]Ports{3: InstancePorts(1, 3)}
		dcs = append(dcs, st)
	}
	b.t = dcs[0].t
	b.p = &Plane{dcs: dcs, cfg: Config{OnError: func(err error) { b.errs = append(b.errs, err) }}}
	return b, sw1
}

// gate puts a gatedSwitch, gate set, on DC k of the bed; the test's end
// releases whatever still waits on it.
func (b *takeoverBed) gate(t *testing.T, k int, sw *fakeSwitch) (*gatedSwitch, func()) {
	g := &gatedSwitch{fakeSwitch: sw, gate: true, entered: make(chan struct{}), release: make(chan struct{})}
	b.p.dcs[k].sw = g
	var once sync.Once
	release := func() { once.Do(func() { close(g.release) }) }
	t.Cleanup(release)
	return g, release
}

// lockFree fails the test when the plane's lock is held (by an update
// whose ovs-ofctl run is in flight: what follows would wait for it).
func (b *takeoverBed) lockFree(t *testing.T, what string) {
	t.Helper()
	if !b.p.mu.TryLock() {
		t.Fatalf("the plane's lock is held while %s's rule update runs on the switch: a /start waits for that ovs-ofctl run", what)
	}
	b.p.mu.Unlock()
}

// startWhileHeld runs update (DC 1's) until its bundle is in flight on
// DC 1's switch, and meanwhile a /start (OpenCall) of a call whose both
// sides enter at DC 0: it must answer with the call's rules on DC 0's
// switch. Then the bundle ends; update's error is returned.
func (b *takeoverBed) startWhileHeld(t *testing.T, what string, sw1 *fakeSwitch, update func() error) error {
	t.Helper()
	g, release := b.gate(t, 1, sw1)
	done := make(chan error, 1)
	go func() { done <- update() }()
	<-g.entered // its bundle in flight on DC 1
	b.lockFree(t, what)
	if err := b.p.OpenCall(context.Background(), sipCall("127.0.0.101", "127.0.0.91")); err != nil {
		t.Fatal(err)
	}
	if arr := b.arrivals(); len(arr) != 2 {
		t.Fatalf("after /start the DC 0 switch has %d arrival rules, want the call's 2 (both sides enter at DC 0)", len(arr))
	}
	release()
	return <-done
}

// untilCompiled runs f in the background and returns once DC 0's newest
// compiled set changed (f compiled and waits for the switch); f's error
// comes on the channel.
func (b *takeoverBed) untilCompiled(f func() error) <-chan error {
	st := b.p.dcs[0]
	s0 := seqOf(st)
	done := make(chan error, 1)
	go func() { done <- f() }()
	for seqOf(st) == s0 {
		runtime.Gosched()
	}
	return done
}

// A /start in DC 0 answers, its rules on DC 0's switch, while DC 1's
// interval step (step 4, StoreNext) runs on DC 1's switch. Before, the
// step held the plane's lock across its run, and the call waited for it
// (fails at the lock check on session 15's code).
func TestAStartDoesNotWaitForAnIntervalStepsRun(t *testing.T) {
	b, sw1 := newTwoDCBed(t)
	err := b.startWhileHeld(t, "an interval step", sw1, func() error {
		return b.p.StoreNext(context.Background(), 1, 1, twoDCPaths)
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(sw1.forget); n != 1 {
		t.Errorf("%d updates of DC 1, want the step's 1", n)
	}
}

// The same within one DC: calls started while an interval step's bundle
// runs on their DC's switch change the state and compile at once (the
// lock is free), and share the next update (2 updates for the step and
// two calls); the step returns once its set is on the switch.
func TestCallsDuringAnIntervalStepsRunShareTheNextUpdate(t *testing.T) {
	ctx := context.Background()
	b := newTakeoverBed(t)
	st := b.p.dcs[0]
	g, release := b.gate(t, 0, b.sw)
	step := make(chan error, 1)
	go func() { step <- b.p.StoreNext(ctx, 0, 1, takeoverPaths) }()
	<-g.entered
	b.lockFree(t, "an interval step")
	g1 := b.startState(t, sipCall("127.0.0.102", "127.0.0.92"))
	g2 := b.startState(t, sipCall("127.0.0.103", "127.0.0.93"))
	done := make(chan error, 2)
	for _, gens := range []map[int]uint64{g1, g2} {
		go func() { done <- b.p.commit(ctx, gens) }()
	}
	for st.newestCovers() < g2[0] { // a commit compiled both calls
		runtime.Gosched()
	}
	release()
	for _, ch := range []chan error{step, done, done} {
		if err := <-ch; err != nil {
			t.Fatal(err)
		}
	}
	if n := len(b.sw.forget); n != 2 {
		t.Errorf("%d rule updates for an interval step and two calls started during its run, want 2", n)
	}
	if arr := b.arrivals(); len(arr) != 2 {
		t.Errorf("the switch has arrival rules for %d 5-tuples, want the two calls' 2", len(arr))
	}
}

// An instance change's bundle in flight (a removal: RemoveInstance) holds
// up no /start either.
func TestAStartDoesNotWaitForAnInstanceChangesRun(t *testing.T) {
	ctx := context.Background()
	b, sw1 := newTwoDCBed(t)
	if err := b.p.dcs[1].t.SetInstances(1, []routing.InstanceLoad{{Index: 3}, {Index: 4}}); err != nil {
		t.Fatal(err)
	}
	b.p.dcs[1].live[0][4] = InstancePorts(1, 4)
	if err := b.p.Sync(ctx, 1); err != nil { // DC 1's rules made for instance 4 too
		t.Fatal(err)
	}
	err := b.startWhileHeld(t, "an instance change", sw1, func() error { return b.p.RemoveInstance(ctx, 1, 1, 4) })
	if err != nil {
		t.Fatal(err)
	}
	if last := sw1.forget[len(sw1.forget)-1]; !slices.Contains(last, InstancePorts(1, 4).In) {
		t.Errorf("the removal's update forgets %v, want the removed instance's port", last)
	}
}

// An interval step compiled while a call's set is in flight, and a call
// compiled after the step, both waiting for the switch: the newest set
// (the second call's, which includes the step) lands last, in one update
// after the one in flight, whichever of the two gets the switch first;
// the step returns only once a set that includes it is on the switch.
func TestAnIntervalStepDuringACallsApplyLandsLastAndShares(t *testing.T) {
	ctx := context.Background()
	b := newTakeoverBed(t)
	g, doneA := b.callInFlight() // a's set on its way to the switch
	step := b.untilCompiled(func() error { return b.p.StoreNext(ctx, 0, 1, takeoverPaths) })
	gc := b.startState(t, sipCall("127.0.0.102", "127.0.0.92"))
	doneC := b.untilCompiled(func() error { return b.p.commit(ctx, gc) }) // c compiled after the step
	close(g.release)
	if err := errors.Join((<-doneA).err, <-step, <-doneC); err != nil {
		t.Fatal(err)
	}
	b.newestLanded(t)
	if n := len(b.sw.forget); n != 2 {
		t.Errorf("%d updates, want a's and one carrying the step and c", n)
	}
	if _, ok := b.t.Path(1, placement.Pair{}); !ok || b.t.Interval() != 0 {
		t.Errorf("interval 1 stored: %v, current %d; want stored, current 0", ok, b.t.Interval())
	}
}

// secondInstance adds firewall instance 4 to the bed's DC 0.
func (b *takeoverBed) secondInstance(t *testing.T) {
	t.Helper()
	if err := b.t.SetInstances(1, []routing.InstanceLoad{{Index: 3}, {Index: 4}}); err != nil {
		t.Fatal(err)
	}
	b.p.dcs[0].live[0][4] = InstancePorts(1, 4)
}

// newestLanded fails the test unless DC 0's switch has the newest
// compiled set (an older set landed last otherwise).
func (b *takeoverBed) newestLanded(t *testing.T) {
	t.Helper()
	st := b.p.dcs[0]
	st.applyMu.Lock()
	applied := st.appliedSeq
	st.applyMu.Unlock()
	st.slotMu.Lock()
	newest := st.newest
	st.slotMu.Unlock()
	if applied != newest.seq || !reflect.DeepEqual(b.sw.want, newest.want) {
		t.Fatalf("the switch has set %d (%d rules), want the newest compiled %d (%d rules): an older set landed last", applied, len(b.sw.want), newest.seq, len(newest.want))
	}
}

// A departed instance's learned rules are forgotten when the set that
// reaches the switch is a call's, compiled after the removal's and
// carrying it (the removal's own wait finds it on the switch, or applies
// it: the newest).
func TestARemovalCarriedByACallsUpdateForgetsThePort(t *testing.T) {
	ctx := context.Background()
	b := newTakeoverBed(t)
	st := b.p.dcs[0]
	b.secondInstance(t)
	g, doneA := b.callInFlight()
	removed := b.untilCompiled(func() error { return b.p.RemoveInstance(ctx, 0, 1, 4) })
	gc := b.startState(t, sipCall("127.0.0.102", "127.0.0.92"))
	b.p.mu.Lock()
	if err := b.p.compileRules(0, st); err != nil { // c's commit compiles before the removal's apply
		t.Fatal(err)
	}
	b.p.mu.Unlock()
	close(g.release) // whichever gets the switch next applies the newest set: c's
	if err := errors.Join((<-doneA).err, <-removed, b.p.commit(ctx, gc)); err != nil {
		t.Fatal(err)
	}
	if n := len(b.sw.forget); n != 2 {
		t.Fatalf("%d updates, want a's and c's (the removal's carried by c's)", n)
	}
	if last := b.sw.forget[1]; !slices.Contains(last, InstancePorts(1, 4).In) {
		t.Fatalf("the update carrying the removal forgets %v, want the removed instance's port %d", last, InstancePorts(1, 4).In)
	}
}

// A sync-path update that compiled and waits for the switch when Close
// stops the rule updates fails with "dataplane: closed" and runs nothing.
func TestASyncWaitingWhenClosedRunsNothing(t *testing.T) {
	ctx := context.Background()
	b := newTakeoverBed(t)
	st := b.p.dcs[0]
	st.applyMu.Lock()                                                 // an apply in flight
	done := b.untilCompiled(func() error { return b.p.Sync(ctx, 0) }) // waits for the switch
	st.closed = true                                                  // Close's stopApplies, after the apply in flight
	st.applyMu.Unlock()
	if err := <-done; !errors.Is(err, errClosed) {
		t.Fatalf("a sync waiting when the plane closed: %v, want %v", err, errClosed)
	}
	if n := len(b.sw.forget); n != 0 {
		t.Fatalf("%d rule updates ran after Close", n)
	}
}
