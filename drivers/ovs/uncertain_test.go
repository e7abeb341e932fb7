package ovs

import (
	"context"
	"errors"
	"io"
	"slices"
	"testing"
)

// lostAnswers makes sw's next bundle on model m commit and then fail (its
// ovs-ofctl killed after sending the commit, or its answer lost).
func lostAnswers(m *modelBridge, sw *Switch) {
	lose := true
	sw.ofctl = func(ctx context.Context, stdin io.Reader, args ...string) (string, error) {
		out, err := m.ofctl(ctx, stdin, args...)
		if lose && err == nil && slices.Contains(args, "--bundle") {
			lose = false
			return out, errors.New("model: ovs-ofctl killed after the commit")
		}
		return out, err
	}
}

// A call's rule update commits on the switch but its caller gets an error
// (its context ended while ovs-ofctl waited for the answer). The call
// ends before the caller's retry, so the next update's set lacks its
// rule: the Switch, no longer sure of the rules the failed bundle
// changed, deletes it all the same, and the switch holds what the record
// says. Before, the record (the rule set before the failed bundle) did
// not have the rule, so no update deleted it: the ended call's media was
// forwarded until a Reset.
func TestAnUpdateWhoseAnswerWasLostIsUndoneByTheNext(t *testing.T) {
	ctx := context.Background()
	m := newModelBridge()
	sw, _ := modelSwitch(t, m)
	a := Pair{0, 1}
	e1, e2 := modelEntry(a, 1, 6000), modelEntry(a, 2, 6001)
	if _, err := sw.Apply(ctx, []Flow{PairCounter(a), e1}); err != nil {
		t.Fatal(err)
	}
	lostAnswers(m, sw)
	if _, err := sw.Apply(ctx, []Flow{PairCounter(a), e1, e2}); err == nil {
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
