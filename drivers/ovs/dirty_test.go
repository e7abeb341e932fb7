package ovs

import (
	"context"
	"errors"
	"io"
	"slices"
	"testing"
)

// A caller's update (Apply, or Reset) commits but its ovs-ofctl is killed
// before the answer, and a tombstone becomes due before the caller tries
// again: the delayed delete keeps the caller's committed rules (it applies
// the caller's newest set, the one the Plane tries again). Before, it
// rewrote the rules the killed bundle changed towards the caller's set
// from before: the new call's committed rule was deleted (its media went
// to the miss rule until the Plane's next apply), and after a Reset the
// rule the Reset had removed forwarded again.
func TestADelayedDeleteKeepsAKilledCallersCommittedRules(t *testing.T) {
	a := Pair{0, 1}
	e0, e1, e2 := modelEntry(a, 9, 5999), modelEntry(a, 1, 6000), modelEntry(a, 2, 6001)
	for _, step := range []struct {
		name string
		// the caller's set, applied with ctx (it commits, then ctx ends)
		set []Flow
		run func(sw *Switch, ctx context.Context, set []Flow) error
	}{
		{"Apply", []Flow{PairCounter(a), e1, e2}, func(sw *Switch, ctx context.Context, set []Flow) error {
			_, err := sw.Apply(ctx, set)
			return err
		}},
		{"Reset", []Flow{PairCounter(a)}, func(sw *Switch, ctx context.Context, set []Flow) error {
			return sw.Reset(ctx, set)
		}},
	} {
		t.Run(step.name, func(t *testing.T) {
			ctx := context.Background()
			m := newModelBridge()
			sw, clk := modelSwitch(t, m)
			for _, want := range [][]Flow{{PairCounter(a), e0, e1}, {PairCounter(a), e1}} { // call 0 ends: a tombstone
				if _, err := sw.Apply(ctx, want); err != nil {
					t.Fatal(err)
				}
			}
			if err := step.run(sw, killedAfterCommit(m, sw), step.set); err == nil {
				t.Fatal("the killed bundle: no error")
			}
			sw.ofctl = m.ofctl
			clk.Advance(EndHold) // the delayed delete, before the caller's retry
			for _, f := range step.set {
				if r, ok := m.rules[f.Key()]; !ok || r.f != f {
					t.Fatalf("after the delayed delete the caller's committed rule %v is %+v (there %v)", f, r, ok)
				}
			}
			for k, r := range m.rules {
				if !slices.ContainsFunc(step.set, func(f Flow) bool { return f.Key() == k }) && r.f.Actions != CountPair(a, "drop") {
					t.Fatalf("after the delayed delete a rule the caller's set lacks forwards: %v", r.f)
				}
			}
			clk.Advance(EndHold) // any rule ended by that set is deleted in turn
			if len(m.rules) != len(step.set) || sw.Installed() != len(step.set) || sw.Tombstones() != 0 {
				t.Fatalf("in the end the switch holds %d rules, the record %d, %d tombstones; want the caller's %d, none", len(m.rules), sw.Installed(), sw.Tombstones(), len(step.set))
			}
		})
	}
}

// A pair counter rule that a killed bundle changed (a caller's update
// added it and committed; a delayed delete was to delete it, kept for a
// tombstone alone, and did not commit) and that the next update keeps is
// not deleted and added again: the read before that update tells whether
// it is on the switch, and the packets the switch credits to it while the
// update's bundle runs still count on the pair. Before, the update
// rewrote it (delete_strict, add): those packets went with the old rule,
// and PairPackets answered a low count with no error (7 of 12).
func TestADirtyCounterRuleKeptByTheNextUpdateKeepsItsPackets(t *testing.T) {
	a, b := Pair{0, 1}, Pair{0, 2}
	e1, e2, e3 := modelEntry(a, 1, 6000), modelEntry(b, 2, 6001), modelEntry(b, 3, 6002)
	full := []Flow{PairCounter(a), e1, PairCounter(b), e2}
	// next runs the update with full, 5 packets of flow sends credited
	// while its bundle runs, and checks pair b counts them
	next := func(t *testing.T, m *modelBridge, sw *Switch, full []Flow, sends Flow) {
		t.Helper()
		sw.ofctl = func(ctx context.Context, stdin io.Reader, args ...string) (string, error) {
			if slices.Contains(args, "--bundle") {
				m.send(sends.Key(), 5) // pulled while ovs-ofctl runs
				m.flush()
			}
			return m.ofctl(ctx, stdin, args...)
		}
		if _, err := sw.Apply(context.Background(), full); err != nil {
			t.Fatal(err)
		}
		sw.ofctl = m.ofctl
		got, err := sw.PairPackets()
		if err != nil || got[b] != 12 {
			t.Fatalf("PairPackets %v (%v); want 0→2: 12 (7 before the update, 5 while its bundle ran), no loss", got, err)
		}
		if len(m.rules) != len(full) || sw.Installed() != len(full) {
			t.Fatalf("the switch holds %d rules, the record %d; want %d", len(m.rules), sw.Installed(), len(full))
		}
	}
	t.Run("added and committed", func(t *testing.T) {
		m := newModelBridge()
		sw, _ := modelSwitch(t, m)
		if _, err := sw.Apply(context.Background(), []Flow{PairCounter(a), e1}); err != nil {
			t.Fatal(err)
		}
		if _, err := sw.Apply(killedAfterCommit(m, sw), full); err == nil {
			t.Fatal("the killed bundle: no error")
		}
		m.send(e2.Key(), 7) // pair b's rules are on the switch
		m.flush()
		next(t, m, sw, full, e2)
	})
	t.Run("deleted but not committed", func(t *testing.T) {
		ctx := context.Background()
		m := newModelBridge()
		sw, clk := modelSwitch(t, m)
		for _, want := range [][]Flow{full, {PairCounter(a), e1}} { // call 2 ends, pair b leaves
			if _, err := sw.Apply(ctx, want); err != nil {
				t.Fatal(err)
			}
		}
		m.send(e2.Key(), 7) // counted on pair b, then dropped
		m.flush()
		entered := make(chan struct{})
		sw.ofctl = func(ctx context.Context, stdin io.Reader, args ...string) (string, error) {
			if slices.Contains(args, "--bundle") {
				close(entered) // the delayed delete's bundle hangs, uncommitted, until stopped
				<-ctx.Done()
				return "", ctx.Err()
			}
			return m.ofctl(ctx, stdin, args...)
		}
		swept := make(chan struct{})
		go func() {
			defer close(swept)
			clk.Advance(EndHold)
		}()
		<-entered
		next(t, m, sw, []Flow{PairCounter(a), e1, PairCounter(b), e3}, e2) // a new call of pair b stops it
		<-swept
	})
}

// A Reset killed after its bundle committed made every counter rule again
// at 0: the counts since the read before it are unknown, so the next
// PairPackets says ErrCountsLost and takes the counts as its new base (the
// one after counts from there). Before, only the rules whose content the
// Reset changed were dirty: the next read added the recreated counter's
// count less the old one (15 − 10), a low count with no error.
func TestAResetOfUnknownOutcomeLosesTheCountsSinceItsRead(t *testing.T) {
	m, sw, _, a, e := oneCall(t, false)
	m.send(e.Key(), 10)
	m.flush()
	if err := sw.Reset(killedAfterCommit(m, sw), []Flow{PairCounter(a), e}); err == nil {
		t.Fatal("the killed Reset: no error")
	}
	sw.ofctl = m.ofctl
	m.send(e.Key(), 15)
	m.flush()
	got, err := sw.PairPackets()
	if !errors.Is(err, ErrCountsLost) {
		t.Fatalf("PairPackets after the killed Reset %v (%v); want ErrCountsLost", got, err)
	}
	m.send(e.Key(), 5)
	m.flush()
	next, err := sw.PairPackets()
	if err != nil || next[a] != got[a]+5 {
		t.Fatalf("PairPackets then %v (%v); want 0→1: %d, no error", next, err, got[a]+5)
	}
}

// An update whose read before the bundle failed and whose bundle, ending a
// pair counter rule (its pair left the rule set), was killed after it
// committed: the rule's packets since the last read are gone, and the next
// PairPackets says so. Before, the read after found the dirty counter rule
// missing and took it as gone (as if its count had been read before the
// bundle, which it had not): 4 packets lost with no error.
func TestAKilledUpdateAfterAFailedReadSaysTheCountsLost(t *testing.T) {
	ctx := context.Background()
	m := newModelBridge()
	sw, clk := modelSwitch(t, m)
	a, b := Pair{0, 1}, Pair{0, 2}
	e1, e2 := modelEntry(a, 1, 6000), modelEntry(b, 2, 6001)
	if _, err := sw.Apply(ctx, []Flow{PairCounter(a), e1, PairCounter(b), e2}); err != nil {
		t.Fatal(err)
	}
	m.send(e2.Key(), 4)
	m.flush()
	if _, err := sw.Apply(ctx, []Flow{PairCounter(a), e1, PairCounter(b)}); err != nil { // call 2 ends
		t.Fatal(err)
	}
	clk.Advance(EndHold) // its rule is deleted; 0→2's counter rule stays, unread
	sw.readCounts = func(context.Context, uint64) ([]FlowCount, error) { return nil, errors.New("model: read failed") }
	if _, err := sw.Apply(killedAfterCommit(m, sw), []Flow{PairCounter(a), e1}); err == nil { // pair b leaves
		t.Fatal("the killed bundle: no error")
	}
	sw.readCounts, sw.ofctl = nil, m.ofctl
	if _, ok := m.rules[PairCounter(b).Key()]; ok {
		t.Fatal("the killed bundle did not delete 0→2's counter rule")
	}
	if got, err := sw.PairPackets(); !errors.Is(err, ErrCountsLost) {
		t.Fatalf("PairPackets %v (%v); want ErrCountsLost (0→2's 4 packets went unread)", got, err)
	}
}
