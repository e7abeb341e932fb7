package dataplane

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/controller/routing"
	"github.com/ims-orch/ims-orch/drivers/ovs"
)

// gatedSwitch is a fakeSwitch whose Apply, while gate is set, says it
// runs (entered) and waits for release: an ovs-ofctl run in flight.
type gatedSwitch struct {
	*fakeSwitch
	gate             bool
	entered, release chan struct{}
}

func (g *gatedSwitch) Apply(ctx context.Context, want []ovs.Flow, forget ...int) (ovs.Changes, error) {
	if g.gate {
		g.gate = false
		g.entered <- struct{}{}
		<-g.release
	}
	return g.fakeSwitch.Apply(ctx, want, forget...)
}

// While one call's rule update runs on the switch (its ovs-ofctl: 20–50
// ms idle, seconds at load 20+), the plane's state lock is free: other calls start and end,
// and the readers answer, without waiting for it; the calls changed
// meanwhile share the next update (two updates for three calls), and each
// commit answers once its call's rules are on the switch. Before, the lock
// was held across every update: each call's state change and its commit
// queued behind the running one, a commit covered only the changes made
// before it, and under load the media hook's /start outlasted the P-CSCF's
// 1 s (TestChaosMedia's late rules).
func TestCallChangesDoNotWaitForARunningRuleUpdate(t *testing.T) {
	ctx := context.Background()
	b := newTakeoverBed(t)
	g := &gatedSwitch{fakeSwitch: b.sw, entered: make(chan struct{}), release: make(chan struct{})}
	b.p.dcs[0].sw = g
	a := sipCall("127.0.0.101", "127.0.0.91")
	c1, c2 := sipCall("127.0.0.102", "127.0.0.92"), sipCall("127.0.0.103", "127.0.0.93")
	flow := func(c routing.Call) FlowStart {
		return FlowStart{DC: 0, Packet: routing.Packet{Proto: 17, SrcIP: c.CallerIP, SrcPort: 6000, DstIP: EntryIP(0), DstPort: 6000}}
	}
	g.gate = true
	doneA := make(chan error, 1)
	go func() {
		_, err := b.p.StartCall(ctx, a, flow(a))
		doneA <- err
	}()
	<-g.entered // a's update runs on the switch
	if !b.p.mu.TryLock() {
		t.Fatal("the plane's state lock is held while a rule update runs on the switch")
	}
	b.p.mu.Unlock()
	if n := len(b.p.Calls(0)); n != 1 {
		t.Fatalf("Calls during a's update: %d, want 1", n)
	}
	g1, g2 := b.startState(t, c1), b.startState(t, c2) // would wait for a's update before
	done := make(chan error, 2)
	for _, gens := range []map[int]uint64{g1, g2} {
		go func() { done <- b.p.commit(ctx, gens) }()
	}
	close(g.release)
	for i := 0; i < 3; i++ {
		var err error
		select {
		case err = <-doneA:
		case err = <-done:
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := len(b.sw.forget); n != 2 {
		t.Errorf("%d rule updates for a call and two calls changed during its update, want 2 (the two share one)", n)
	}
	if arr := b.arrivals(); len(arr) != 3 {
		t.Errorf("the switch has arrival rules for %d 5-tuples, want the three calls' 3", len(arr))
	}
	b.p.mu.Lock()
	defer b.p.mu.Unlock()
	b.p.noteApplied(0, b.p.dcs[0]) // a commit notes its outcome only if mu is free
	if st := b.p.dcs[0]; st.failed || st.okGen != st.gen {
		t.Errorf("after the commits: failed=%v, okGen %d of gen %d; want not failed, every change covered", st.failed, st.okGen, st.gen)
	}
}

// The rules reinstalled after ovs-vswitchd's restart are the newest set:
// a call's commit that compiled its set before the reset, and gets the
// switch after it, applies nothing (its older set would bring back a call
// that ended meanwhile).
func TestACommitCompiledBeforeAResetAppliesNothingAfterIt(t *testing.T) {
	ctx := context.Background()
	b := newTakeoverBed(t)
	st := b.p.dcs[0]
	a := sipCall("127.0.0.101", "127.0.0.91")
	b.startState(t, a)
	b.p.mu.Lock()
	if err := b.p.compileRules(0, st); err != nil { // a's commit compiled, waits for the switch
		t.Fatal(err)
	}
	b.p.endCallState(a) // a ends
	if err := b.p.resetLocked(ctx, 0, st, time.Now().Add(socketWait)); err != nil {
		t.Fatal(err)
	}
	b.p.mu.Unlock()
	st.applyMu.Lock() // a's commit gets the switch
	err := st.applyNewest(ctx, 0)
	st.applyMu.Unlock()
	if err != nil || len(b.sw.forget) != 0 {
		t.Fatalf("after the reset the older compiled set was applied (%d updates, %v): the ended call's rules came back", len(b.sw.forget), err)
	}
}

// gateApplies puts a gatedSwitch, gate set, on the bed's DC 0.
func (b *takeoverBed) gateApplies() *gatedSwitch {
	g := &gatedSwitch{fakeSwitch: b.sw, gate: true, entered: make(chan struct{}), release: make(chan struct{})}
	b.p.dcs[0].sw = g
	return g
}

// startCall runs StartCall of c (its caller's flow into DC 0) in the
// background: its decisions and error come on the channel.
func (b *takeoverBed) startCall(c routing.Call) <-chan startResult {
	done := make(chan startResult, 1)
	go func() {
		ds, err := b.p.StartCall(context.Background(), c, callerFlow(c))
		done <- startResult{ds, err}
	}()
	return done
}

// callInFlight starts call a (127.0.0.101 → .91) with the bed's applies
// gated and returns once its rule update runs on the switch.
func (b *takeoverBed) callInFlight() (*gatedSwitch, <-chan startResult) {
	g := b.gateApplies()
	done := b.startCall(sipCall("127.0.0.101", "127.0.0.91"))
	<-g.entered
	return g, done
}

type startResult struct {
	ds  []routing.Decision
	err error
}

func callerFlow(c routing.Call) FlowStart {
	return FlowStart{DC: 0, Packet: routing.Packet{Proto: 17, SrcIP: c.CallerIP, SrcPort: 6000, DstIP: EntryIP(0), DstPort: 6000}}
}

// duringSwitch is a fakeSwitch whose next Apply first runs during: what
// happens while that ovs-ofctl run is in flight.
type duringSwitch struct {
	*fakeSwitch
	during func()
}

func (d *duringSwitch) Apply(ctx context.Context, want []ovs.Flow, forget ...int) (ovs.Changes, error) {
	if f := d.during; f != nil {
		d.during = nil
		f()
	}
	return d.fakeSwitch.Apply(ctx, want, forget...)
}

// departTheOnlyInstance replaces instance 3, the bed's only one, by
// instance 4 (an instance change; the caller holds mu).
func (b *takeoverBed) departTheOnlyInstance(t *testing.T) {
	t.Helper()
	if err := b.t.SetInstances(1, []routing.InstanceLoad{{Index: 4}}); err != nil {
		t.Fatal(err)
	}
	b.p.dcs[0].live[0] = map[uint8]Ports{4: InstancePorts(1, 4)}
}

// A call's commit applied a set made for instance 3 (outside mu) and has
// not noted it yet when instance 3 departs (the sync that added instance
// 3 had failed, so the noted port set lacks it): the departure's update
// forgets the learned rules towards instance 3's port. Before, forget came
// from the noted port set only, which the noting then replaced: the rules
// of active flows kept sending to the dead port (revML MED-1).
func TestADepartedPortOfAnUnnotedApplyIsForgotten(t *testing.T) {
	ctx := context.Background()
	b := newTakeoverBed(t)
	st := b.p.dcs[0]
	st.ports = nil // the sync that added instance 3 failed
	a := sipCall("127.0.0.101", "127.0.0.91")
	b.startState(t, a)
	b.p.mu.Lock()
	if err := b.p.compileRules(0, st); err != nil { // a's commit compiles (instance 3 live)
		t.Fatal(err)
	}
	b.p.mu.Unlock()
	st.applyMu.Lock() // a's commit applies, outside mu
	if err := st.applyNewest(ctx, 0); err != nil {
		t.Fatal(err)
	}
	st.applyMu.Unlock()
	b.p.mu.Lock() // before a's commit notes it, instance 3 departs
	b.departTheOnlyInstance(t)
	err := b.p.sync(ctx, 0)
	b.p.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	gone := InstancePorts(1, 3).In
	if last := b.sw.forget[len(b.sw.forget)-1]; !slices.Contains(last, gone) {
		t.Fatalf("the update after instance 3 departed forgets %v, want its port %d: its learned rules stay on the switch", last, gone)
	}
	b.p.mu.Lock() // the update that forgot it succeeded: the next forgets nothing
	err = b.p.sync(ctx, 0)
	b.p.mu.Unlock()
	if last := b.sw.forget[len(b.sw.forget)-1]; err != nil || len(last) != 0 {
		t.Fatalf("the update after the one that forgot instance 3's port forgets %v (%v), want nothing", last, err)
	}
}

// The same with the set made for instance 3 still in flight while two
// newer sets are compiled: a call's commit compiles one after the
// departure (it is never applied: the next supersedes it), then the
// departure's sync compiles and waits for the switch. Its update, the next
// after the one in flight, forgets instance 3's port: neither the noted
// port set nor the newest compiled set has it, only the set in flight.
func TestADepartedPortOfAnApplyInFlightIsForgotten(t *testing.T) {
	ctx := context.Background()
	b := newTakeoverBed(t)
	st := b.p.dcs[0]
	st.ports = nil // the sync that added instance 3 failed
	d := &duringSwitch{fakeSwitch: b.sw}
	st.sw = d
	a, c := sipCall("127.0.0.101", "127.0.0.91"), sipCall("127.0.0.102", "127.0.0.92")
	b.startState(t, a)
	b.p.mu.Lock()
	if err := b.p.compileRules(0, st); err != nil { // a's commit compiles (instance 3 live)
		t.Fatal(err)
	}
	b.p.mu.Unlock()
	var errSync error
	syncDone := make(chan struct{})
	d.during = func() { // a's set is in flight
		b.p.mu.Lock()
		b.departTheOnlyInstance(t)
		if err := b.p.compileRules(0, st); err != nil { // a commit's compile
			t.Error(err)
		}
		b.p.mu.Unlock()
		b.startState(t, c)
		go func() { // the departure's sync: compiles, waits for the switch
			defer close(syncDone)
			b.p.mu.Lock()
			defer b.p.mu.Unlock()
			errSync = b.p.sync(ctx, 0)
		}()
		for seqOf(st) < 3 { // the sync has compiled
			runtime.Gosched()
		}
	}
	st.applyMu.Lock()
	if err := st.applyNewest(ctx, 0); err != nil { // a's set, in flight
		t.Fatal(err)
	}
	st.applyMu.Unlock()
	<-syncDone
	if errSync != nil {
		t.Fatal(errSync)
	}
	if len(b.sw.forget) != 2 {
		t.Fatalf("%d updates, want a's and the sync's", len(b.sw.forget))
	}
	if gone := InstancePorts(1, 3).In; !slices.Contains(b.sw.forget[1], gone) {
		t.Fatalf("the update after instance 3 departed forgets %v, want its port %d: the set in flight made rules towards it", b.sw.forget[1], gone)
	}
}

// A call whose rules are on the switch answers at once, even while a
// sync-path update's (interval step, instance change, Sync) ovs-ofctl run
// follows its own: its outcome is noted by the next holder of mu. Before,
// its commit took mu to note the outcome and waited for that run, which
// held mu until session 16 (revML MED-2). (The test hangs, and its
// -timeout names it, if the call waits for the sync's run.)
func TestACallWhoseRulesAreOnDoesNotWaitForASyncsRun(t *testing.T) {
	ctx := context.Background()
	b := newTakeoverBed(t)
	st := b.p.dcs[0]
	g, doneA := b.callInFlight() // a's set on its way to the switch
	s0 := seqOf(st)
	doneS := make(chan error, 1)
	go func() { doneS <- b.p.Sync(ctx, 0) }()
	for seqOf(st) == s0 { // the sync compiled under mu; it waits for the switch
		runtime.Gosched()
	}
	g.gate = true           // the sync's run waits too (read by Apply after release)
	g.release <- struct{}{} // a's run ends: a's rules are on the switch
	<-g.entered             // the sync's run
	if r := <-doneA; r.err != nil {
		t.Fatal(r.err)
	}
	close(g.release)
	if err := <-doneS; err != nil {
		t.Fatal(err)
	}
	b.p.mu.Lock()
	defer b.p.mu.Unlock()
	b.p.noteApplied(0, st)
	if st.failed || st.okGen != st.gen {
		t.Errorf("after both: failed=%v, okGen %d of gen %d; want every change noted", st.failed, st.okGen, st.gen)
	}
}

func seqOf(st *dcState) uint64 {
	st.slotMu.Lock()
	defer st.slotMu.Unlock()
	return st.seq
}

// An instance change (its sync under mu) that compiles while a call's
// commit applies an older set outside mu applies after it: the newest set
// lands last, the call's flow moved off the removed instance and its
// learned rules forgotten. A sync that applied without applyMu would run
// beside the call's apply, and the call's older set, towards the removed
// instance, would land last (revML MED-3).
func TestAnInstanceChangeDuringACallsApplyLandsLast(t *testing.T) {
	ctx := context.Background()
	b := newTakeoverBed(t)
	st := b.p.dcs[0]
	b.secondInstance(t)
	g, doneA := b.callInFlight() // a's set on its way to the switch
	b.p.mu.Lock()
	var from uint8
	for _, f := range st.flows {
		from = f.Decision.Instances[0]
	}
	b.p.mu.Unlock()
	doneR := b.untilCompiled(func() error { return b.p.RemoveInstance(ctx, 0, 1, from) })
	close(g.release)
	a := <-doneA
	if err := errors.Join(a.err, <-doneR); err != nil {
		t.Fatal(err)
	}
	if len(a.ds) != 1 || a.ds[0].Instances[0] != from {
		t.Fatalf("a's decision %+v, want instance %d", a.ds, from)
	}
	b.newestLanded(t)
	gone := fmt.Sprintf("output:%d", InstancePorts(1, from).In)
	for _, f := range b.sw.want {
		if strings.Contains(f.Actions, gone) {
			t.Fatalf("the switch's last set sends to the removed instance %d: %s %s", from, f.Match, f.Actions)
		}
	}
	if last := b.sw.forget[len(b.sw.forget)-1]; !slices.Contains(last, InstancePorts(1, from).In) {
		t.Fatalf("the last update forgets %v, want the removed instance's port", last)
	}
}

// Close waits for a call's apply in flight (outside mu) and stops every
// later one: nothing runs ovs-ofctl on the bridges Close deletes.
func TestCloseStopsTheRuleUpdates(t *testing.T) {
	ctx := context.Background()
	b := newTakeoverBed(t)
	st := b.p.dcs[0]
	g, doneA := b.callInFlight() // a's set on its way to the switch
	closed := make(chan struct{})
	go func() { // Close's part before the bridges go
		b.p.mu.Lock()
		b.p.stopApplies()
		b.p.mu.Unlock()
		close(closed)
	}()
	for b.p.mu.TryLock() { // until stopApplies holds mu, waiting for a's run
		b.p.mu.Unlock()
		select {
		case <-closed:
			t.Fatal("Close went on while a rule update still ran on the switch")
		default:
		}
		runtime.Gosched()
	}
	close(g.release)
	<-closed
	if r := <-doneA; r.err != nil {
		t.Fatal(r.err)
	}
	n := len(b.sw.forget)
	if _, err := b.p.StartCall(ctx, sipCall("127.0.0.102", "127.0.0.92"), callerFlow(sipCall("127.0.0.102", "127.0.0.92"))); !errors.Is(err, errClosed) {
		t.Errorf("a call started after Close: %v, want %v", err, errClosed)
	}
	b.p.mu.Lock()
	err := b.p.resetLocked(ctx, 0, st, time.Now().Add(socketWait))
	b.p.mu.Unlock()
	if !errors.Is(err, errClosed) {
		t.Errorf("a reset after Close: %v, want %v", err, errClosed)
	}
	if m := len(b.sw.forget); m != n {
		t.Errorf("%d rule updates ran after Close", m-n)
	}
}

// A compiled set without tag rules does not stop FlowCounts reading the
// switch while the set with tag rules is still on it (the new set not
// applied yet): rules learned from those tags meanwhile are counted. Once
// the set without them is applied, a read that finds no learned rule
// stops the reads. Before, the compile itself cleared the tag mark
// (revML LOW-2).
func TestLearningStaysWhileTagRulesMayBeOnTheSwitch(t *testing.T) {
	ctx := context.Background()
	b := newTakeoverBed(t)
	st := b.p.dcs[0]
	st.hasTags, st.learning = true, true // the set on the switch has tag rules
	b.p.mu.Lock()
	if err := b.p.compileRules(0, st); err != nil { // a set without (the bed's compiles have none)
		t.Fatal(err)
	}
	b.p.mu.Unlock()
	learning := func() bool {
		t.Helper()
		if _, err := b.p.FlowCounts(ctx, 0); err != nil {
			t.Fatal(err)
		}
		b.p.mu.Lock()
		defer b.p.mu.Unlock()
		return st.learning
	}
	if !learning() {
		t.Fatal("a read found no learned rule while the tag rules are still on the switch: FlowCounts stops reading it")
	}
	st.applyMu.Lock() // the set without tag rules is applied (noted by the next reader)
	err := st.applyNewest(ctx, 0)
	st.applyMu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if learning() {
		t.Fatal("after the set without tag rules was applied, a read that found none keeps FlowCounts reading")
	}
	b.p.mu.Lock() // a set with tag rules compiled (made by hand: the bed's have none), not applied yet
	st.compiledTags(st.publish(compiled{want: st.newest.want, ports: st.newest.ports, covers: st.gen, tags: true}))
	b.p.mu.Unlock()
	if !learning() {
		t.Fatal("a read found no learned rule while a set with tag rules is on its way to the switch: FlowCounts stops reading it")
	}
}
