package ovs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/clock"
)

// modelEntry is an entry rule of pair p, flow serial, matching UDP source
// port port, that forwards.
func modelEntry(p Pair, serial uint32, port int) Flow {
	return Flow{Table: 1, Priority: 200, Cookie: EntryCookie(p, serial), Match: fmt.Sprintf("udp,tp_src=%d", port), Actions: CountPair(p, "output:10")}
}

// oneCall is a model switch with pair 0→1's counter and one call's entry
// rule (serial 1, UDP source port 6000) installed; ended: its call ended.
func oneCall(t *testing.T, ended bool) (*modelBridge, *Switch, *clock.Virtual, Pair, Flow) {
	t.Helper()
	m := newModelBridge()
	sw, clk := modelSwitch(t, m)
	a := Pair{0, 1}
	e := modelEntry(a, 1, 6000)
	if _, err := sw.Apply(context.Background(), []Flow{PairCounter(a), e}); err != nil {
		t.Fatal(err)
	}
	if ended {
		if _, err := sw.Apply(context.Background(), []Flow{PairCounter(a)}); err != nil {
			t.Fatal(err)
		}
	}
	return m, sw, clk, a, e
}

// A flow that still sends while its call ends (Open vSwitch credits the
// packets it had not pulled after the end's bundle, translated again) is
// credited wholly to its pair: the end rewrites its entry rule to
// count-then-drop (one ovs-ofctl run, the bundle, no read), the packets
// sent just before and after the end count on the pair (pair = sent),
// none goes to table 1's miss rule; the delayed delete, EndHold later on
// the switch's clock, removes the rule (one more bundle), and only packets
// sent after that are the miss rule's (pair + miss = sent). Before
// (session 15), the end deleted the rule: the 5 unpulled packets and the 3
// after the end went to the miss rule (pair 10 of 18).
func TestAFlowSendingThroughItsEndCountsOnItsPair(t *testing.T) {
	ctx := context.Background()
	m, sw, clk, a, e := oneCall(t, false)
	m.send(e.Key(), 10)
	m.flush()
	m.send(e.Key(), 5) // not pulled when the call ends
	runs, dumps := m.runs, m.dumps
	if _, err := sw.Apply(ctx, []Flow{PairCounter(a)}); err != nil {
		t.Fatal(err)
	}
	if m.runs-runs != 1 || m.dumps != dumps {
		t.Fatalf("the call's end ran %d ovs-ofctl, %d dump-flows; want the bundle alone", m.runs-runs, m.dumps-dumps)
	}
	r, ok := m.rules[e.Key()]
	if !ok || r.f.Cookie != e.Cookie || r.f.Actions != CountPair(a, "drop") {
		t.Fatalf("after the call's end the entry rule is %+v (%v), want cookie %#x, actions %s", r, ok, e.Cookie, CountPair(a, "drop"))
	}
	m.send(e.Key(), 3) // the flow still sends
	m.flush()
	clk.Advance(EndHold - time.Millisecond)
	if _, ok := m.rules[e.Key()]; !ok || sw.Tombstones() != 1 {
		t.Fatalf("the ended rule went before EndHold (%d tombstones)", sw.Tombstones())
	}
	got, err := sw.PairPackets()
	if err != nil || got[a] != 18 || m.missed != 0 {
		t.Fatalf("PairPackets %v (%v), miss rule %d; want 0→1: 18 (every packet the entry switch saw), miss 0", got, err, m.missed)
	}
	runs = m.runs
	clk.Advance(time.Millisecond)
	if _, ok := m.rules[e.Key()]; ok || sw.Tombstones() != 0 || m.runs-runs != 1 {
		t.Fatalf("at EndHold: rule there %v, %d tombstones, %d ovs-ofctl runs; want it deleted in one bundle", ok, sw.Tombstones(), m.runs-runs)
	}
	m.send(e.Key(), 2) // after the delete: the miss rule's
	m.flush()
	got, err = sw.PairPackets()
	if err != nil || got[a]+m.missed != 20 || got[a] != 18 {
		t.Fatalf("PairPackets %v (%v), miss %d; want 0→1: 18, miss 2", got, err, m.missed)
	}
	if _, err := sw.Apply(ctx, []Flow{PairCounter(a)}); err != nil || len(m.rules) != 1 {
		t.Fatalf("an update after the delete: %v, %d rules; want the counter alone", err, len(m.rules))
	}
}

// A newer call that reuses an ended call's 5-tuple before the delayed
// delete takes the rule over at once (its cookie, its pair, its actions),
// and the delayed delete then leaves it alone; the ended call's pair
// counter, kept while its tombstone lived although the pair left the rule
// set, goes with the delayed delete (read first: no count lost); the
// newer call's own end then keeps its rule as count-then-drop for a whole
// EndHold. Without the takeover check the ended call's record stayed: the
// newer call's end left its rule forwarding, and the old record's delayed
// delete removed it early.
func TestANewCallTakesAnEndedRuleOverBeforeItsDelete(t *testing.T) {
	ctx := context.Background()
	m := newModelBridge()
	sw, clk := modelSwitch(t, m)
	a, b := Pair{0, 1}, Pair{0, 2}
	old, newer := modelEntry(a, 1, 6000), modelEntry(b, 2, 6000)
	if _, err := sw.Apply(ctx, []Flow{PairCounter(a), PairCounter(b), old}); err != nil {
		t.Fatal(err)
	}
	m.send(old.Key(), 4)
	m.flush()
	// the call ends, and its pair leaves the rule set
	if _, err := sw.Apply(ctx, []Flow{PairCounter(b)}); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.rules[PairCounter(a).Key()]; !ok {
		t.Fatal("the ended call's pair counter went with the call: its tombstone counts on nothing")
	}
	m.send(old.Key(), 3)
	m.flush()
	clk.Advance(EndHold / 2)
	if _, err := sw.Apply(ctx, []Flow{PairCounter(b), newer}); err != nil {
		t.Fatal(err)
	}
	if r := m.rules[newer.Key()]; r == nil || r.f != newer || sw.Tombstones() != 0 {
		t.Fatalf("after the takeover the rule is %+v, %d tombstones; want %v, none", r, sw.Tombstones(), newer)
	}
	m.send(newer.Key(), 6)
	m.flush()
	clk.Advance(2 * EndHold)
	if r := m.rules[newer.Key()]; r == nil || r.f != newer {
		t.Fatalf("after the delayed delete the rule is %+v; want the newer call's %v", r, newer)
	}
	if _, ok := m.rules[PairCounter(a).Key()]; ok {
		t.Fatal("the ended pair's counter stays after the delayed delete")
	}
	got, err := sw.PairPackets()
	if err != nil || got[a] != 7 || got[b] != 6 || m.missed != 0 {
		t.Fatalf("PairPackets %v (%v), miss %d; want 0→1: 7, 0→2: 6, miss 0", got, err, m.missed)
	}
	if _, err := sw.Apply(ctx, []Flow{PairCounter(b)}); err != nil {
		t.Fatal(err)
	}
	if r := m.rules[newer.Key()]; r == nil || r.f.Actions != CountPair(b, "drop") || sw.Tombstones() != 1 {
		t.Fatalf("the newer call's end: rule %+v, %d tombstones; want count-then-drop, 1", r, sw.Tombstones())
	}
}

// ovs-vswitchd restarts while an ended rule waits for its delayed delete:
// Reset deletes every rule (the tombstone too) and forgets it, its packets
// counted once (read before the Reset); the delayed delete then runs no
// bundle and the switch keeps Reset's rules. Without the Reset forgetting
// them, the Switch kept a record of a rule the switch no longer had.
func TestAResetForgetsTheEndedRules(t *testing.T) {
	ctx := context.Background()
	m, sw, clk, a, e := oneCall(t, true)
	m.send(e.Key(), 5)
	m.flush()
	if err := sw.Reset(ctx, []Flow{PairCounter(a)}); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.rules[e.Key()]; ok || sw.Tombstones() != 0 {
		t.Fatalf("after Reset the ended rule is there: %v, %d tombstones", ok, sw.Tombstones())
	}
	runs := m.runs
	clk.Advance(2 * EndHold)
	if m.runs != runs || len(m.rules) != 1 {
		t.Fatalf("the delayed delete after Reset ran %d ovs-ofctl, %d rules left; want none, the counter", m.runs-runs, len(m.rules))
	}
	got, err := sw.PairPackets()
	if err != nil || got[a] != 5 {
		t.Fatalf("PairPackets %v (%v), want 0→1: 5", got, err)
	}
}

// Close stops the delayed delete: no ovs-ofctl runs after it.
func TestCloseStopsTheDelayedDelete(t *testing.T) {
	m, sw, clk, _, _ := oneCall(t, true)
	sw.Close()
	runs := m.runs
	clk.Advance(2 * EndHold)
	if m.runs != runs || clk.Pending() != 0 {
		t.Fatalf("after Close: %d ovs-ofctl runs, %d timers", m.runs-runs, clk.Pending())
	}
}

// A call's end whose bundle fails changes nothing, its tombstone record
// included: the next end (the caller's retry) makes the rule
// count-then-drop. A delayed delete whose bundle fails keeps the
// tombstone, and the next one deletes it. Without the record's restore,
// the retried end would find a record, keep the rule as the switch has it
// (still forwarding) and the ended call's media would be forwarded until
// the delayed delete (revCD MED-4).
func TestAFailedEndOrDelayedDeleteChangesNothing(t *testing.T) {
	ctx := context.Background()
	m, sw, clk, a, e := oneCall(t, false)
	fail := failingBundles(m, sw)
	*fail = true
	if _, err := sw.Apply(ctx, []Flow{PairCounter(a)}); err == nil {
		t.Fatal("the end's bundle failed: no error")
	}
	if sw.Tombstones() != 0 || m.rules[e.Key()].f.Actions != e.Actions {
		t.Fatalf("after the failed end: %d tombstones, rule %s; want none, the rule forwarding as before", sw.Tombstones(), m.rules[e.Key()].f.Actions)
	}
	*fail = false
	if _, err := sw.Apply(ctx, []Flow{PairCounter(a)}); err != nil {
		t.Fatal(err)
	}
	if r := m.rules[e.Key()]; r == nil || r.f.Actions != CountPair(a, "drop") || sw.Tombstones() != 1 {
		t.Fatalf("after the retried end the rule is %+v (%d tombstones), want %s: an ended call's rule forwards", r, sw.Tombstones(), CountPair(a, "drop"))
	}
	*fail = true
	clk.Advance(EndHold) // the delayed delete fails
	if _, ok := m.rules[e.Key()]; !ok || sw.Tombstones() != 1 {
		t.Fatalf("after a failed delayed delete: rule there %v, %d tombstones; want both kept", ok, sw.Tombstones())
	}
	*fail = false
	clk.Advance(EndHold)
	if _, ok := m.rules[e.Key()]; ok || sw.Tombstones() != 0 {
		t.Fatalf("after the next delayed delete: rule there %v, %d tombstones; want it deleted", ok, sw.Tombstones())
	}
}

// A caller's rule update deletes, in its own bundle, the tombstones that
// are due (EndHold old) and whose pair keeps its counter rule (no counter
// read): the delayed delete then has nothing left and runs no bundle of
// its own while callers update the switch (revCD MED-2). Before, the
// update left them and the sweep ran one more ovs-ofctl, holding the
// Switch's lock for it.
func TestARuleUpdateDeletesTheDueEndedRules(t *testing.T) {
	ctx := context.Background()
	m, sw, clk, a, e1 := oneCall(t, false)
	e2, e3 := modelEntry(a, 2, 6001), modelEntry(a, 3, 6002)
	for _, want := range [][]Flow{{PairCounter(a), e1, e2}, {PairCounter(a), e2}} { // e1 ends at 0
		if _, err := sw.Apply(ctx, want); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(150 * time.Millisecond)
	if _, err := sw.Apply(ctx, []Flow{PairCounter(a)}); err != nil { // e2 ends at 150 ms
		t.Fatal(err)
	}
	clk.Advance(EndHold - 150*time.Millisecond) // the delayed delete of e1
	if _, ok := m.rules[e1.Key()]; ok || sw.Tombstones() != 1 {
		t.Fatalf("at EndHold: e1 there %v, %d tombstones; want e1 deleted, e2 waiting", ok, sw.Tombstones())
	}
	clk.Advance(151 * time.Millisecond) // e2 is due
	runs, dumps := m.runs, m.dumps
	if _, err := sw.Apply(ctx, []Flow{PairCounter(a), e3}); err != nil { // a new call
		t.Fatal(err)
	}
	if _, ok := m.rules[e2.Key()]; ok || sw.Tombstones() != 0 || m.runs-runs != 1 || m.dumps != dumps {
		t.Fatalf("a rule update with e2 due: e2 there %v, %d tombstones, %d ovs-ofctl runs, %d dumps; want e2 deleted in its bundle, no read",
			ok, sw.Tombstones(), m.runs-runs, m.dumps-dumps)
	}
	runs = m.runs
	clk.Advance(EndHold)
	if m.runs != runs {
		t.Fatalf("the delayed delete ran %d ovs-ofctl with nothing left to delete", m.runs-runs)
	}
}

// A delayed delete whose bundle keeps failing retries later after each
// failure in a row (doubling from EndHold up to maxSweepRetry), reports
// the 1st, 2nd, 4th… failure of the run, and once a bundle succeeds the
// tombstone goes and the run ends. Before, it ran one ovs-ofctl every
// EndHold without end (33 in 10 s) and said nothing (revCD MED-3).
func TestAFailingDelayedDeleteBacksOffAndSaysSo(t *testing.T) {
	m, sw, clk, _, e := oneCall(t, true)
	var reports []error
	sw.ReportTo(func(err error) { reports = append(reports, err) })
	fail := failingBundles(m, sw)
	*fail = true
	runs := m.runs
	for range 100 {
		clk.Advance(100 * time.Millisecond) // 10 s
	}
	// at 0.3, 0.6, 1.2, 2.4, 4.8, 9.6 s: six tries in 10 s
	if n := m.runs - runs; n != 6 || sw.DelayedDeleteFailures() != 6 || len(reports) != 3 || sw.Tombstones() != 1 {
		t.Fatalf("10 s of failing delayed deletes: %d ovs-ofctl runs, %d failures, %d reports (%v), %d tombstones; want 6, 6, 3 (1st, 2nd, 4th), 1",
			n, sw.DelayedDeleteFailures(), len(reports), reports, sw.Tombstones())
	}
	*fail = false
	clk.Advance(maxSweepRetry)
	if _, ok := m.rules[e.Key()]; ok || sw.Tombstones() != 0 || sw.DelayedDeleteFailures() != 0 {
		t.Fatalf("after a delayed delete that succeeded: rule there %v, %d tombstones, %d failures in a row; want none", ok, sw.Tombstones(), sw.DelayedDeleteFailures())
	}
}

// The hold covers the revalidator's lag: a flow sends up to its call's
// end; Open vSwitch's revalidator starts a round every period (100 ms,
// max-revalidator) at a seeded phase and pulls the flow's packets a
// seeded lag (< one period, each round its own: a loaded round) after the
// round's start, so packets sent just before the end wait up to two
// periods for their credit. Every one of them counts on the pair and none on the miss rule
// when the delayed delete waits EndHold; a hold under two periods loses
// some on a slow round (revCD MED-1: before, the model flushed before
// every clock step, so any hold passed, 1 ms included).
func TestEndHoldCoversTheRevalidatorsLag(t *testing.T) {
	const period = 100 * time.Millisecond
	rng := rand.New(rand.NewPCG(15, 1))
	for trial := range 40 {
		m := newModelBridge()
		sw, clk := modelSwitch(t, m)
		a := Pair{0, 1}
		e := modelEntry(a, 1, 6000)
		ctx := context.Background()
		if _, err := sw.Apply(ctx, []Flow{PairCounter(a), e}); err != nil {
			t.Fatal(err)
		}
		// off the whole ms, so no pull falls on a send or the delete
		phase := time.Duration(rng.IntN(100))*time.Millisecond + 300*time.Microsecond
		var maxGap, lastPull time.Duration
		start := clk.Now()
		var round func()
		round = func() {
			lag := time.Duration(rng.IntN(100))*time.Millisecond + 600*time.Microsecond
			clk.AfterFunc(lag, func() {
				now := clk.Now().Sub(start)
				maxGap, lastPull = max(maxGap, now-lastPull), now
				m.flush()
			})
			clk.AfterFunc(period, round)
		}
		clk.AfterFunc(phase, round)
		const sent = 1000
		for range sent { // 1 packet a ms for 1 s
			m.send(e.Key(), 1)
			clk.Advance(time.Millisecond)
		}
		if _, err := sw.Apply(ctx, []Flow{PairCounter(a)}); err != nil { // the call ends
			t.Fatal(err)
		}
		clk.Advance(2 * EndHold)
		if r := m.rules[PairCounter(a).Key()]; m.missed != 0 || r.packets != sent || sw.Tombstones() != 0 {
			t.Fatalf("trial %d (phase %v, pulls up to %v apart): pair counter %d, miss rule %d of %d sent, %d tombstones; want all on the pair, the rule deleted",
				trial, phase, maxGap, r.packets, m.missed, sent, sw.Tombstones())
		}
	}
}

// failingBundles makes sw's bundles on model m fail while the returned
// flag is set (a run all the same).
func failingBundles(m *modelBridge, sw *Switch) *bool {
	fail := new(bool)
	sw.ofctl = func(ctx context.Context, stdin io.Reader, args ...string) (string, error) {
		if *fail && slices.Contains(args, "--bundle") {
			m.runs++
			return "", errors.New("model: bundle refused")
		}
		return m.ofctl(ctx, stdin, args...)
	}
	return fail
}

// A caller's rule update never waits for a delayed delete: while the
// delayed delete's bundle hangs (a slow or stuck ovs-ofctl), a call's
// Apply stops it (atomic: it changed nothing, the tombstone is kept and is
// no failure) and deletes the due tombstone in its own bundle; the stopped
// delayed delete then sets itself again and finds nothing left. Before
// (revF MED-1), the delayed delete held the switch across its bundle (up
// to 30 s) and the call's Apply waited for it whatever its context said.
func TestACallsUpdateDoesNotWaitForAHangingDelayedDelete(t *testing.T) {
	m, sw, clk, a, e := oneCall(t, true)
	var errs []error
	sw.ReportTo(func(err error) { errs = append(errs, err) })
	entered, release := make(chan struct{}), make(chan struct{})
	hang := true
	sw.ofctl = func(ctx context.Context, stdin io.Reader, args ...string) (string, error) {
		if hang && slices.Contains(args, "--bundle") {
			hang = false // the delayed delete's bundle alone hangs
			close(entered)
			select {
			case <-ctx.Done():
				return "", ctx.Err()
			case <-release:
				return "", errors.New("model: released by the test's watchdog")
			}
		}
		return m.ofctl(ctx, stdin, args...)
	}
	swept := make(chan struct{})
	go func() {
		defer close(swept)
		clk.Advance(EndHold) // the delayed delete enters its bundle and hangs
	}()
	<-entered
	b := Pair{2, 3}
	applied := make(chan error, 1)
	go func() {
		_, err := sw.Apply(context.Background(), []Flow{PairCounter(a), PairCounter(b), modelEntry(b, 2, 7000)})
		applied <- err
	}()
	var err error
	select {
	case err = <-applied:
	case <-time.After(30 * time.Second): // a watchdog, not a timing bound
		close(release)
		<-swept
		t.Fatal("the call's Apply waited for the hanging delayed delete's bundle")
	}
	<-swept
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m.rules[e.Key()]; ok || sw.Tombstones() != 0 {
		t.Fatalf("after the call's update: ended rule there %v, %d tombstones; want it deleted in the call's bundle", ok, sw.Tombstones())
	}
	if sw.DelayedDeleteFailures() != 0 || len(errs) != 0 {
		t.Fatalf("the stopped delayed delete counted as %d failures (%v); want none", sw.DelayedDeleteFailures(), errs)
	}
	runs := m.runs
	clk.Advance(2 * EndHold)
	if m.runs != runs {
		t.Fatalf("the delayed delete ran %d ovs-ofctl after the call's update; want none, nothing left", m.runs-runs)
	}
}

// A delayed delete that comes while the switch is held (a caller's
// update, a counter read) does not wait for it: it sets itself again and
// deletes the tombstone on its next turn. Before, it queued on the switch
// and ran its bundle right after the caller's.
func TestADelayedDeleteGivesWayToAHeldSwitch(t *testing.T) {
	m, sw, clk, _, e := oneCall(t, true)
	sw.mu.Lock()
	swept := make(chan struct{})
	go func() {
		defer close(swept)
		clk.Advance(EndHold)
	}()
	select {
	case <-swept:
	case <-time.After(30 * time.Second): // a watchdog, not a timing bound
		sw.mu.Unlock()
		<-swept
		t.Fatal("the delayed delete waited for the held switch")
	}
	sw.mu.Unlock()
	if _, ok := m.rules[e.Key()]; !ok || sw.Tombstones() != 1 {
		t.Fatalf("after the delayed delete gave way: rule there %v, %d tombstones; want both kept", ok, sw.Tombstones())
	}
	clk.Advance(EndHold)
	if _, ok := m.rules[e.Key()]; ok || sw.Tombstones() != 0 {
		t.Fatalf("on its next turn: rule there %v, %d tombstones; want it deleted", ok, sw.Tombstones())
	}
}
