package ovs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"
	"time"
)

// killedAfterCommit returns a context whose bundle on model m commits,
// and then ends (its caller gave up while ovs-ofctl waited for the
// answer): the bundle fails with the context's error, as a killed
// ovs-ofctl's does.
func killedAfterCommit(m *modelBridge, sw *Switch) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	sw.ofctl = func(c context.Context, stdin io.Reader, args ...string) (string, error) {
		out, err := m.ofctl(c, stdin, args...)
		if c == ctx && err == nil && slices.Contains(args, "--bundle") {
			cancel()
			return out, fmt.Errorf("model: ovs-ofctl killed after the commit: %w", ctx.Err())
		}
		return out, err
	}
	return ctx
}

// A call's rule update commits on the switch but its caller gets an error
// (its context ended while ovs-ofctl waited for the answer: killed). The call
// ends before the caller's retry, so the next update's set lacks its
// rule: the Switch, no longer sure of the rules the failed bundle
// changed, deletes it all the same, and the switch holds what the record
// says. Before, the record (the rule set before the failed bundle) did
// not have the rule, so no update deleted it: the ended call's media was
// forwarded until a Reset.
func TestAnUpdateKilledAfterItsCommitIsUndoneByTheNext(t *testing.T) {
	ctx := context.Background()
	m := newModelBridge()
	sw, _ := modelSwitch(t, m)
	a := Pair{0, 1}
	e1, e2 := modelEntry(a, 1, 6000), modelEntry(a, 2, 6001)
	if _, err := sw.Apply(ctx, []Flow{PairCounter(a), e1}); err != nil {
		t.Fatal(err)
	}
	if _, err := sw.Apply(killedAfterCommit(m, sw), []Flow{PairCounter(a), e1, e2}); err == nil {
		t.Fatal("the update's answer was lost: no error")
	}
	if _, err := sw.Apply(ctx, []Flow{PairCounter(a), e1}); err != nil {
		t.Fatal(err)
	}
	if r, ok := m.rules[e2.Key()]; ok {
		t.Fatalf("after the next update the ended call's rule is on the switch: %v", r.f)
	}
	if len(m.rules) != sw.Installed() || m.rules[e1.Key()].f != e1 {
		t.Fatalf("the switch holds %d rules (e1 %+v), the record %d", len(m.rules), m.rules[e1.Key()], sw.Installed())
	}
}

// The delayed delete's bundle (the ended call's rule and the counter rule
// its pair kept for it) commits, and then a caller's rule update stops its
// ovs-ofctl (the delayed delete gives way). The caller's set has the pair
// again (a new call): its counter rule is on the switch again and counts
// the new call's packets, and the read before the update finds the old
// counter rule gone, not lost. Before, the record still had the counter
// rule, so the caller's update did not add it again: the new call's
// packets counted nowhere, for as long as the pair stayed (PairPackets
// said ErrCountsLost once, then nothing).
func TestADelayedDeleteStoppedAfterItsCommitLeavesNoStaleRecord(t *testing.T) {
	ctx := context.Background()
	m := newModelBridge()
	sw, clk := modelSwitch(t, m)
	a, b := Pair{0, 1}, Pair{0, 2}
	e1 := modelEntry(a, 1, 6000)
	for _, want := range [][]Flow{{PairCounter(a), PairCounter(b), e1}, {PairCounter(b)}} { // e1 ends, pair a leaves
		if _, err := sw.Apply(ctx, want); err != nil {
			t.Fatal(err)
		}
	}
	m.send(e1.Key(), 4)
	m.flush()
	entered := make(chan struct{})
	hang := true
	sw.ofctl = func(ctx context.Context, stdin io.Reader, args ...string) (string, error) {
		out, err := m.ofctl(ctx, stdin, args...)
		if hang && slices.Contains(args, "--bundle") {
			hang = false // committed; its answer waits until it is stopped
			close(entered)
			<-ctx.Done()
			return out, ctx.Err()
		}
		return out, err
	}
	swept := make(chan struct{})
	go func() {
		defer close(swept)
		clk.Advance(EndHold)
	}()
	<-entered
	if _, ok := m.rules[PairCounter(a).Key()]; ok {
		t.Fatal("the delayed delete's bundle did not delete the ended pair's counter rule")
	}
	e3 := modelEntry(a, 3, 6002)
	if _, err := sw.Apply(ctx, []Flow{PairCounter(a), PairCounter(b), e3}); err != nil {
		t.Fatal(err)
	}
	<-swept
	m.send(e3.Key(), 5)
	m.flush()
	got, err := sw.PairPackets()
	if err != nil || got[a] != 4+5 {
		t.Fatalf("PairPackets %v (%v); want 0→1: 9 (4 of the ended call, 5 of the new one), no loss", got, err)
	}
	if len(m.rules) != sw.Installed() || sw.Tombstones() != 0 {
		t.Fatalf("the switch holds %d rules, the record %d, %d tombstones; want 3, 3, 0", len(m.rules), sw.Installed(), sw.Tombstones())
	}
}

// A Reset whose bundle committed but whose ovs-ofctl was killed before
// the answer leaves its rules dirty too: the next update deletes a rule the Reset installed that the
// update's set lacks. Before, the record kept the rules from before the
// Reset, so that rule stayed.
func TestAResetKilledAfterItsCommitIsUndoneByTheNext(t *testing.T) {
	ctx := context.Background()
	m, sw, _, a, _ := oneCall(t, false)
	e2 := modelEntry(a, 2, 6001)
	if err := sw.Reset(killedAfterCommit(m, sw), []Flow{PairCounter(a), e2}); err == nil {
		t.Fatal("the Reset's answer was lost: no error")
	}
	if _, err := sw.Apply(ctx, []Flow{PairCounter(a)}); err != nil {
		t.Fatal(err)
	}
	if r, ok := m.rules[e2.Key()]; ok {
		t.Fatalf("after the next update the Reset's rule is on the switch: %v", r.f)
	}
}

// hangingDelayedDelete lets the delayed delete of oneCall's ended rule
// enter its bundle, which hangs (changing nothing) until its context
// ends; it returns the context's error once the delayed delete is done.
func hangingDelayedDelete(m *modelBridge, sw *Switch, clk interface{ Advance(time.Duration) }) <-chan error {
	entered, done := make(chan struct{}), make(chan error, 1)
	var why error
	hang := true
	sw.ofctl = func(ctx context.Context, stdin io.Reader, args ...string) (string, error) {
		if hang && slices.Contains(args, "--bundle") {
			hang = false
			close(entered)
			<-ctx.Done()
			why = ctx.Err()
			return "", why
		}
		return m.ofctl(ctx, stdin, args...)
	}
	go func() {
		clk.Advance(EndHold)
		done <- why
	}()
	<-entered
	return done
}

// Reset and Close stop a delayed delete's bundle in flight, as Apply does,
// instead of waiting for its 2 s bound (sweepBound).
func TestResetAndCloseDoNotWaitForADelayedDelete(t *testing.T) {
	for _, step := range []struct {
		name string
		run  func(*Switch, Pair) error
	}{
		{"Reset", func(sw *Switch, a Pair) error { return sw.Reset(context.Background(), []Flow{PairCounter(a)}) }},
		{"Close", func(sw *Switch, _ Pair) error { sw.Close(); return nil }},
	} {
		t.Run(step.name, func(t *testing.T) {
			m, sw, clk, a, _ := oneCall(t, true)
			done := hangingDelayedDelete(m, sw, clk)
			if err := step.run(sw, a); err != nil {
				t.Fatal(err)
			}
			if why := <-done; !errors.Is(why, context.Canceled) {
				t.Fatalf("the delayed delete's bundle ended by %v; want stopped by %s", why, step.name)
			}
		})
	}
}

// A delayed delete that found the switch held and set itself again does
// not fire after Close. Before, Close stopped only the timer that had
// already fired: the one set again stayed pending.
func TestCloseStopsADelayedDeleteSetAgain(t *testing.T) {
	_, sw, clk, _, _ := oneCall(t, true)
	sw.mu.Lock()
	clk.Advance(EndHold) // the switch is held: it sets itself again
	sw.mu.Unlock()
	sw.Close()
	if n := clk.Pending(); n != 0 {
		t.Fatalf("after Close %d timers pending; want none", n)
	}
}

// A delayed delete stopped during its counter read (before its bundle)
// changed nothing: the caller's update that stopped it rewrites nothing
// and reads no counters (its bundle alone). Without the check before the
// bundle, the stopped delayed delete's bundle failed at once and left the
// ended rule and the pair's counter rule dirty: the caller's update read
// the counters and rewrote both.
func TestADelayedDeleteStoppedBeforeItsBundleLeavesNothingDirty(t *testing.T) {
	ctx := context.Background()
	m := newModelBridge()
	sw, clk := modelSwitch(t, m)
	a, b := Pair{0, 1}, Pair{0, 2}
	for _, want := range [][]Flow{{PairCounter(a), PairCounter(b), modelEntry(a, 1, 6000)}, {PairCounter(b)}} { // the call ends, pair a leaves
		if _, err := sw.Apply(ctx, want); err != nil {
			t.Fatal(err)
		}
	}
	entered := make(chan struct{})
	hang := true
	sw.readCounts = func(ctx context.Context, kind uint64) ([]FlowCount, error) {
		if hang {
			hang = false // the delayed delete's read hangs until it is stopped
			close(entered)
			<-ctx.Done()
			return nil, ctx.Err()
		}
		return sw.Counts(ctx, kind)
	}
	swept := make(chan struct{})
	go func() {
		defer close(swept)
		clk.Advance(EndHold)
	}()
	<-entered
	runs, dumps := m.runs, m.dumps
	if _, err := sw.Apply(ctx, []Flow{PairCounter(b), modelEntry(b, 2, 6001)}); err != nil {
		t.Fatal(err)
	}
	<-swept
	if m.runs-runs != 1 || m.dumps != dumps {
		t.Fatalf("the caller's update ran %d ovs-ofctl (%d dumps); want its bundle alone", m.runs-runs, m.dumps-dumps)
	}
}

// A delayed delete whose bundle succeeded and was then stopped by a
// caller (the stop came after the answer) is a success: the run of
// failures before it ends. Before, any stop made it no outcome at all,
// and the run went on (the next one waited as after a failure).
func TestADelayedDeleteStoppedAfterItsSuccessEndsTheFailures(t *testing.T) {
	m, sw, clk, _, e := oneCall(t, true)
	fail := failingBundles(m, sw)
	*fail = true
	clk.Advance(EndHold) // fails
	if sw.DelayedDeleteFailures() != 1 {
		t.Fatalf("%d failures in a row, want 1", sw.DelayedDeleteFailures())
	}
	sw.ofctl = func(ctx context.Context, stdin io.Reader, args ...string) (string, error) {
		out, err := m.ofctl(ctx, stdin, args...)
		if slices.Contains(args, "--bundle") {
			defer sw.callerIn()() // a caller comes just after the answer
		}
		return out, err
	}
	clk.Advance(2 * EndHold) // the retry succeeds
	if _, ok := m.rules[e.Key()]; ok || sw.Tombstones() != 0 || sw.DelayedDeleteFailures() != 0 {
		t.Fatalf("after the retry: rule there %v, %d tombstones, %d failures in a row; want none", ok, sw.Tombstones(), sw.DelayedDeleteFailures())
	}
}

// A bundle the switch refused (its ovs-ofctl failed by itself: atomic,
// nothing changed) leaves nothing dirty: the next update with the set from
// before is no change at all (no ovs-ofctl run). Only a killed ovs-ofctl's
// outcome is unknown.
func TestARefusedBundleLeavesNothingDirty(t *testing.T) {
	m, sw, _, a, e1 := oneCall(t, false)
	fail := failingBundles(m, sw)
	*fail = true
	if _, err := sw.Apply(context.Background(), []Flow{PairCounter(a), e1, modelEntry(a, 2, 6001)}); err == nil {
		t.Fatal("the refused bundle: no error")
	}
	*fail = false
	runs := m.runs
	if c, err := sw.Apply(context.Background(), []Flow{PairCounter(a), e1}); err != nil || c.Unchanged != 2 || m.runs != runs {
		t.Fatalf("the set from before after a refused bundle: %+v (%v), %d ovs-ofctl runs; want no change, none", c, err, m.runs-runs)
	}
}

// A call whose entry rule already drops (a decision to drop its media)
// ends with no change on the switch (its count-then-drop successor is the
// same rule), and the delayed delete still deletes it EndHold later: the
// set it applies is the one of that end. With the set of an update that
// changed nothing left unrecorded, the delayed delete applied the set
// from before the end, which still had the rule: it stayed (the real
// TestEntryRulesEndWithoutACounterRead failed so).
func TestAnEndThatChangesNothingIsStillDeleted(t *testing.T) {
	m := newModelBridge()
	sw, clk := modelSwitch(t, m)
	a := Pair{0, 1}
	e := Flow{Table: 1, Priority: 200, Cookie: EntryCookie(a, 1), Match: "udp,tp_src=6000", Actions: CountPair(a, "drop")}
	for _, want := range [][]Flow{{PairCounter(a), e}, {PairCounter(a)}} {
		if _, err := sw.Apply(context.Background(), want); err != nil {
			t.Fatal(err)
		}
	}
	runs := m.runs
	clk.Advance(EndHold)
	if _, ok := m.rules[e.Key()]; ok || sw.Tombstones() != 0 || m.runs-runs != 1 {
		t.Fatalf("at EndHold: rule there %v, %d tombstones, %d ovs-ofctl runs; want it deleted in one bundle", ok, sw.Tombstones(), m.runs-runs)
	}
}

// A Reset after a restart of ovs-vswitchd (the bridge lost every rule)
// whose bundle fails by itself (refused, or ovs-ofctl could not reach the
// switch yet) leaves every rule dirty: the retry by Apply with the same
// set rewrites all of them and the bridge holds the set. Before (final
// MED-1), a Reset that failed by itself changed nothing in the record,
// which still listed the rules from before the restart: the retry found
// them unchanged, sent nothing, and the bridge stayed empty.
func TestAResetThatFailsByItselfIsRedoneByTheNextUpdate(t *testing.T) {
	ctx := context.Background()
	m, sw, _, a, e := oneCall(t, false)
	clear(m.rules) // ovs-vswitchd restarted
	want := []Flow{PairCounter(a), e}
	fail := failingBundles(m, sw)
	*fail = true
	if err := sw.Reset(ctx, want); err == nil {
		t.Fatal("the refused Reset: no error")
	}
	*fail = false
	if _, err := sw.Apply(ctx, want); err != nil {
		t.Fatal(err)
	}
	if len(m.rules) != 2 || m.rules[e.Key()] == nil || m.rules[PairCounter(a).Key()] == nil {
		t.Fatalf("after the retry %d of 2 rules on the bridge", len(m.rules))
	}
	if sw.Installed() != 2 {
		t.Fatalf("the record has %d rules, want 2", sw.Installed())
	}
}
