package dataplane

import (
	"context"
	"testing"

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

// While one call's rule update runs on the switch (its ovs-ofctl: ≈ 0.5 s
// at load 20), the plane's state lock is free: other calls start and end,
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
	if err := b.p.resetLocked(ctx, 0, st); err != nil {
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
