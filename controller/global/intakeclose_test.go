package global

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/fsm"
	"github.com/ims-orch/ims-orch/controller/protocol"
	"github.com/ims-orch/ims-orch/controller/transport"
)

// lossyStore is a MemStore whose Apply of the commands hold picks waits
// for the test's verdict: nil commits it (the quorum answered), an error
// is returned without applying it (raft lost the entry: the leader
// stepped down before a quorum had it).
type lossyStore struct {
	*MemStore
	hold func(fsm.Command) bool
	held chan chan error
}

func (s *lossyStore) Apply(c fsm.Command) error {
	if !s.hold(c) {
		return s.MemStore.Apply(c)
	}
	verdict := make(chan error)
	s.held <- verdict
	if err := <-verdict; err != nil {
		return err
	}
	return s.MemStore.Apply(c)
}

// oldSnapshotStore reads the committed state as a node does that
// installed a snapshot of a leader of session 12: its fsm.Prediction had
// neither closedBy nor peak, so its snapshot (fsm.WriteSnapshot's format)
// lacks them. Every read goes through such a snapshot of the real FSM's
// state, restored by the real fsm.ReadSnapshot.
type oldSnapshotStore struct{ *lossyStore }

func (s oldSnapshotStore) restored() fsm.State {
	st := s.MemStore.State()
	st.History = s.MemStore.History()
	var buf, old bytes.Buffer
	if err := fsm.WriteSnapshot(&buf, st); err != nil {
		panic(err)
	}
	for line := range bytes.Lines(buf.Bytes()) {
		var rec map[string]any
		if err := json.Unmarshal(line, &rec); err != nil {
			panic(err)
		}
		var preds []any
		if stRec, ok := rec["state"].(map[string]any); ok {
			if r, ok := stRec["round"].(map[string]any); ok {
				preds = append(preds, r["prediction"])
			}
		}
		preds = append(preds, rec["history"])
		for _, p := range preds {
			if p, ok := p.(map[string]any); ok {
				delete(p, "closedBy")
				delete(p, "peak")
			}
		}
		b, err := json.Marshal(rec)
		if err != nil {
			panic(err)
		}
		old.Write(append(b, '\n'))
	}
	out, err := fsm.ReadSnapshot(&old)
	if err != nil {
		panic(err)
	}
	return out
}

func (s oldSnapshotStore) State() fsm.State {
	st := s.restored()
	st.History = nil
	return st
}

func (s oldSnapshotStore) History() []fsm.Prediction { return s.restored().History }

// A closes interval 0 in memory at 50 s and its predict step's commit is
// in flight when report R (rate 400) comes: A counts it in interval 1.
// Then A loses the lead.
//
// "b redoes the close": raft loses A's predict entry. B resumes round 0,
// gets the reports the reporter re-sends to a new leader (R among them:
// A booked it in interval 1, not before B's 0) and counts R in interval
// 0, closes it and finishes the round; A leads again in interval 1. A's
// intake of interval 1 began at a close that was never committed: it is
// dropped, so interval 1 measures its own reports only (100), and a copy
// of R is the duplicate of interval 0, where it was counted. Before, A
// kept that intake (it measured interval 1 when it stopped, as the
// committed state does now) and counted R twice, in 0 (B) and 1 (A).
//
// "a's close is committed": A's entry is committed, but A had stopped
// and dropped the result; B leads a moment in interval 1 and takes no
// report; A leads again. Its intake of interval 1 began at the committed
// close: it is kept, and R counts in interval 1 (the reporter never saw
// B, so nothing is re-sent: dropping the intake would lose R).
//
// "a's close is committed, b finishes round 0": as the second, but B
// finishes round 0 (the close is then in the history, not the round in
// progress, when A leads again): A keeps its intake (revL F1).
//
// "b redoes the close and a leads after interval 1's end": as the first,
// with B taking interval 1's reports until 99 s and A leading from 101 s
// (after interval 1's end at 100 s). A, with its intake dropped, waits TakeoverWait for the
// reports the reporter re-sends to it (B's of interval 1) before it
// closes interval 1, as any new leader does (an engine that kept its
// intake does not wait: it would close the interval at once, empty).
//
// "... a reads an old leader's snapshot": a rolling upgrade from session
// 12. The log's entries carry a's token, but a lagging a installed a
// snapshot of an older leader, whose FSM dropped closedBy: a reads a
// close without a token. Its own close (the committed averages are
// exactly those a proposed) keeps the intake, as with the token; b's redo
// (other averages: b counted reports a never had) drops it. Before, a
// close without a token always dropped it: R, counted in interval 1 by a
// only, was lost (interval 1 measured 100, not 106).
//
// "... b's averages equal a's" pins the limitation of telling the closes
// apart by their averages (revD MED-1): R is 150 and b's own report 50,
// so b's close of interval 0 averages (50·100+50+150)/52 = 100, exactly
// a's proposal. a takes b's close for its own and keeps its intake: R
// counts in interval 0 (b) and in 1 (a: 101.04, not 100), and a counts
// and logs that keep (Stats.KeptOnMatchingAverages) instead of dropping.
func TestRegainedLeadDropsTheIntakeOfALostClose(t *testing.T) {
	for _, tc := range []struct {
		name         string
		lost         bool
		bRounds      uint64        // rounds b finishes (of a close not lost: 0 or 1)
		bUntil       time.Duration // b leads until then (0: until it finished round 0)
		oldSnap      bool          // a reads the log from an old leader's snapshot (no closedBy)
		rRate, bRate float64       // R's rate, b's own report's (0: 400, 100)
		matches      bool          // b's close averages exactly what a proposed
	}{
		{name: "b redoes the close", lost: true, bRounds: 1},
		{name: "a's close is committed"},
		{name: "a's close is committed, b finishes round 0", bRounds: 1},
		{name: "b redoes the close and a leads after interval 1's end", lost: true, bRounds: 1, bUntil: 99 * time.Second},
		{name: "a's close is committed, a reads an old leader's snapshot", oldSnap: true},
		{name: "a's close is committed, b finishes round 0, a reads an old leader's snapshot", bRounds: 1, oldSnap: true},
		{name: "b redoes the close, a reads an old leader's snapshot", lost: true, bRounds: 1, oldSnap: true},
		{name: "b redoes the close, a reads an old leader's snapshot, b's averages equal a's", lost: true, bRounds: 1, oldSnap: true,
			rRate: 150, bRate: 50, matches: true},
	} {
		lost, rRate, bRate := tc.lost, cmp.Or(tc.rRate, 400), cmp.Or(tc.bRate, 100)
		// a keeps its intake of interval 1 (R in it): a's close, or b's
		// taken for a's by equal averages (the pinned limitation)
		matching := lost && tc.oldSnap && tc.matches
		drops := lost && !matching
		t.Run(tc.name, func(t *testing.T) {
			var rep *transport.Reporter
			hooks := Hooks{StepCommitted: func(_ uint64, step protocol.Step) {
				if step == protocol.StepEnter { // the local side enters the new interval
					rep.NewInterval()
				}
			}}
			h := newHarness(t, 2, transportCfgNone, hooks, nil)
			ls := &lossyStore{MemStore: h.store, hold: isPredictOf(0), held: make(chan chan error)}
			var as Store = ls
			if tc.oldSnap {
				as = oldSnapshotStore{ls}
			}
			var alog syncBuffer
			a, b := tokenEngines(t, h, as, hooks, slog.New(slog.NewTextHandler(&alog, nil)))
			rep, accepted := signalledReporter(t, transport.ReporterConfig{Clock: h.clk, Resend: true, ID: "node1", QueueCap: 4096}, a, b)
			defer rep.Close()
			if err := a.Start(); err != nil {
				t.Fatal(err)
			}
			// report sends the reporter the load of now and waits for k
			// acceptances (the report's and the re-sent copies')
			report := func(rate float64, k int) {
				t.Helper()
				if err := rep.ReportWorkload(protocol.WorkloadReport{DC: "dc0", At: h.clk.Now(), Kind: KindDP,
					Pairs: []protocol.PairLoad{{Entry: "dc0", Exit: "dc0", Rate: rate}}}); err != nil {
					t.Fatal(err)
				}
				for range k {
					select {
					case <-accepted:
					case <-time.After(time.Minute): // a guard only
						t.Fatalf("fewer acceptances than %d at %v: %+v", k, h.clk.Now().Sub(t0), rep.Stats())
					}
				}
			}
			verdict, clockDone := closeInterval0Held(t, h, ls, func(rate float64) { report(rate, 1) })
			r := protocol.WorkloadReport{DC: "dc0", At: h.clk.Now(), Kind: KindDP, Reporter: "node1",
				Pairs: []protocol.PairLoad{{Entry: "dc0", Exit: "dc0", Rate: rRate}}}
			report(rRate, 1) // R: a counts it in interval 1
			if lost {
				verdict <- fmt.Errorf("%w: leadership lost while committing", ErrNotLeader)
			} else {
				a.Stop()
				verdict <- nil
			}
			within(t, "the clock's Advance after the verdict", func() { <-clockDone })
			a.Stop()
			if err := b.Start(); err != nil {
				t.Fatal(err)
			}
			want0, want1, sum1, n1 := 100.0, 100.0, rRate, 1.0
			if lost {
				h.clk.Advance(time.Second)
				report(bRate, 1+50+1) // b: its report, then the re-sent 0–49 s and R
				h.runRounds(t, 1)     // b closes interval 0 at 52 s
				want0 = (50*100 + bRate + rRate) / 52
			}
			if drops {
				sum1, n1 = 0, 0
			} else if tc.bRounds > 0 {
				h.runRounds(t, tc.bRounds) // b finishes round 0 from a's close
			}
			for h.clk.Now().Before(t0.Add(tc.bUntil)) { // interval 1, to b
				h.clk.Advance(time.Second)
				report(100, 1)
				sum1, n1 = sum1+100, n1+1
			}
			b.Stop()
			if tc.bUntil > 0 {
				h.clk.Advance(2 * time.Second) // the election
			}
			if err := a.Start(); err != nil {
				t.Fatal(err)
			}
			wantIn, wantDropped, wantKept := uint64(1), 0, 0
			if drops {
				wantIn, wantDropped = 0, 1 // R
			}
			if tc.oldSnap && !drops {
				wantKept = 1 // a close without a token kept by its averages: a's own, or b's (matching)
			}
			if got := a.Stats().DroppedOnLostClose; got != wantDropped {
				t.Errorf("a dropped %d reports on a lost close, want %d", got, wantDropped)
			}
			if got := a.Stats().KeptOnMatchingAverages; got != wantKept {
				t.Errorf("a kept its intake on matching averages %d times, want %d", got, wantKept)
			}
			if logged := strings.Count(alog.String(), "level=INFO msg=\"a close without a token matched this engine's proposal: intake kept because the averages matched"); logged != wantKept {
				t.Errorf("a logged %d keeps on matching averages at Info, want %d:\n%s", logged, wantKept, alog.String())
			}
			// the copy's answer names where R was counted and the interval
			// a measures (1): the reporter books the copy in the one and
			// skips its kept reports of intervals before the other
			if c, err := a.ReportWorkloadCounted(r); err != nil || !c.Duplicate || c.Interval != wantIn || c.Measuring != 1 || !c.Known {
				t.Errorf("a copy of R to a leading again: %+v, %v; want the duplicate of interval %d, measuring 1", c, err, wantIn)
			}
			for h.clk.Now().Before(t0.Add(99 * time.Second)) { // interval 1, to a
				h.clk.Advance(time.Second)
				report(100, 1)
				sum1, n1 = sum1+100, n1+1
			}
			if tc.bUntil > 0 { // a's first report, then b's of interval 1 re-sent
				h.clk.Advance(time.Second)
				if rs := h.store.State().RoundStartedAt; rs.After(t0.Add(50 * time.Second)) {
					t.Fatalf("a started round 1 at %v, before the reporter re-sent it interval 1's reports (want TakeoverWait after 101 s)", rs.Sub(t0))
				}
				report(100, 1+int(n1))
				sum1, n1 = sum1+100, n1+1
			}
			h.runRounds(t, 2)
			want1 = sum1 / n1
			wantBy := "a"
			if lost {
				wantBy = "b"
			}
			if hist := h.store.History(); len(hist) == 0 || hist[0].Round != 0 || hist[0].ClosedBy != wantBy {
				t.Errorf("the log's history %+v: want interval 0 closed by %q", hist, wantBy)
			}
			if got := measuredDC0(t, h, 0); math.Abs(got-want0) > 1e-9 {
				t.Fatalf("interval 0 measured %v, want %v", got, want0)
			}
			if got := measuredDC0(t, h, 1); math.Abs(got-want1) > 1e-9 {
				t.Fatalf("interval 1 measured %v, want %v (with R as well: %v)", got, want1, (sum1+rRate)/(n1+1))
			}
		})
	}
}

// tokenEngines is engines a, over store as and logging to log (nil:
// nowhere), and b, over the harness's store, their closes named "a" and
// "b", with hooks; both stop when the test ends.
func tokenEngines(t *testing.T, h *harness, as Store, hooks Hooks, log *slog.Logger) (a, b *Engine) {
	t.Helper()
	a, err := New(h.cfg, Deps{Clock: h.clk, Transport: h.mem, Forecaster: newAR1(), Store: as, Hooks: hooks, Token: "a", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	b, err = New(h.cfg, Deps{Clock: h.clk, Transport: h.mem, Forecaster: newAR1(), Store: h.store, Hooks: hooks, Token: "b"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Stop)
	t.Cleanup(b.Stop)
	return a, b
}

// closeInterval0Held reports (report) rate 100 each second of interval 0,
// 0–49 s, and moves the clock on to 50 s: round 0 starts and a closes
// interval 0 in memory, its predict commit held by ls. It returns that
// commit's verdict channel and the clock's Advance, which returns once a
// verdict is given.
func closeInterval0Held(t *testing.T, h *harness, ls *lossyStore, report func(rate float64)) (chan error, chan struct{}) {
	t.Helper()
	for i := range 50 {
		if i > 0 {
			h.clk.Advance(time.Second)
		}
		report(100)
	}
	h.clk.Advance(999 * time.Millisecond)
	clockDone := goAdvance(h, time.Millisecond)
	select {
	case verdict := <-ls.held:
		return verdict, clockDone
	case <-time.After(10 * time.Second): // deadlock guard
		t.Fatal("a's predict step was never applied")
	}
	return nil, nil
}

// histStore is a MemStore whose History is the test's.
type histStore struct {
	*MemStore
	hist []fsm.Prediction
}

func (s *histStore) History() []fsm.Prediction { return s.hist }

// closeSettled, called directly on an engine that closed interval 4 in
// memory and took report r in interval 5 since, with the log showing
// interval 4 closed by another engine or by this one: in the round in
// progress (predict done), or in the history (the other leader finished
// round 4 and measures interval 6 from its predict step of round 5).
// Another's close drops the intake (its reports counted nowhere here, the
// stats say how many), measures the interval of the log, from the
// committed round start on another node's clock (inSinceStored: compared
// with the skew tolerance), and names interval 4 as r's; its own close
// changes nothing but forgetting the closing intake. (advance reaches it
// without a Start when a quick flap went unseen: revL F2.)
func TestCloseSettledDropsOnlyAfterAnothersClose(t *testing.T) {
	began := t0.Add(200 * time.Second) // the committed round start
	inProgress := fsm.State{Interval: 4, RoundStartedAt: began, Round: &fsm.Round{Round: 4, Done: protocol.StepPredict}}
	finished := fsm.State{Interval: 5, RoundStartedAt: began, Round: &fsm.Round{Round: 5, Done: protocol.StepPredict,
		Prediction: &fsm.Prediction{Round: 5, ClosedBy: "x"}}}
	for _, tc := range []struct {
		name    string
		st      fsm.State
		closer  string
		dropped bool
		wantFor uint64
	}{
		{"another's close in the round in progress", inProgress, "b", true, 5},
		{"its own close in the round in progress", inProgress, "a", false, 5},
		{"another's close in the history", finished, "b", true, 6},
		{"its own close in the history", finished, "a", false, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := clock.NewVirtual(t0)
			mem, err := transport.NewMem(clk, transportCfgNone)
			if err != nil {
				t.Fatal(err)
			}
			st := tc.st
			if st.Round.Round == 4 {
				r := *st.Round
				r.Prediction = &fsm.Prediction{Round: 4, ClosedBy: tc.closer}
				st.Round = &r
			}
			store := &histStore{MemStore: NewMemStore(), hist: []fsm.Prediction{{Round: 3, ClosedBy: "a"}, {Round: 4, ClosedBy: tc.closer}}}
			e, err := New(Config{Interval: 50 * time.Second}, Deps{Clock: clk, Transport: mem, Forecaster: newAR1(), Store: store, Token: "a"})
			if err != nil {
				t.Fatal(err)
			}
			closedAt := t0.Add(199 * time.Second) // this engine's own close, on its clock
			closing := newIntake()
			e.closing, e.closingFor = &closing, 4
			e.in, e.inFor, e.inSince, e.inSinceStored = newIntake(), 5, closedAt, false
			e.in.reports["dp/dc0"] = 3
			r := protocol.WorkloadReport{DC: "dc0", At: t0.Add(201 * time.Second), Kind: KindDP, Reporter: "node1", Credential: "c"}
			e.seen.note(r, 5, time.Time{})

			if got := e.closeSettled(&st); got != tc.dropped {
				t.Fatalf("closeSettled = %v, want %v", got, tc.dropped)
			}
			if e.closing != nil {
				t.Error("the closing intake is kept after the log showed its interval closed")
			}
			in, _ := e.seen.counted(r)
			if !tc.dropped {
				if e.in.reports["dp/dc0"] != 3 || e.inFor != 5 || !e.inSince.Equal(closedAt) || e.inSinceStored || in != 5 ||
					e.Stats().DroppedOnLostClose != 0 {
					t.Errorf("its own close changed the intake: %v for %d since %v (stored %v), r counted in %d, dropped %d",
						e.in.reports, e.inFor, e.inSince.Sub(t0), e.inSinceStored, in, e.Stats().DroppedOnLostClose)
				}
				return
			}
			if len(e.in.reports) != 0 {
				t.Errorf("the intake of the lost close is kept: %v", e.in.reports)
			}
			if e.inFor != measuring(&st) || e.inFor != tc.wantFor {
				t.Errorf("the new intake is interval %d's, want %d (the log's)", e.inFor, tc.wantFor)
			}
			if !e.inSince.Equal(began) || !e.inSinceStored {
				t.Errorf("the new intake begins %v (stored %v), want the committed round start %v on another node's clock",
					e.inSince.Sub(t0), e.inSinceStored, began.Sub(t0))
			}
			if in != 4 {
				t.Errorf("r is remembered as interval %d's, want 4's (the other leader counted the re-sent reports there)", in)
			}
			if got := e.Stats().DroppedOnLostClose; got != 3 {
				t.Errorf("Stats.DroppedOnLostClose = %d, want 3", got)
			}
		})
	}
}

// The lost close that advance finds (not Start): a closes interval 0 in
// memory at 50 s and counts R (rate 400) in interval 1; its predict
// commit times out (a retryable error: a retries from the committed state
// after Retransmit). Meanwhile the lead went a→b→a too quickly for a to
// see it (raft's leader channel keeps only the last value, so
// FollowLeadership never stops a): b resumed round 0, redid the close
// with its own intake and lost the lead. a's retry, advance, finds b's
// close in the log: a drops its intake of interval 1 (R with it), names
// interval 0 as R's, and goes on with b's round; interval 1 measures a's
// later reports only (100). Without closeSettled in advance, a kept R and
// counted it in interval 1 (106) although the log says its close never
// happened (revL F2 / leaderdupfix's left item).
func TestAdvanceDropsTheIntakeOfAnUnseenLostClose(t *testing.T) {
	h := newHarness(t, 2, transportCfgNone, Hooks{}, nil)
	ls := &lossyStore{MemStore: h.store, hold: isPredictOf(0), held: make(chan chan error)}
	a, err := New(h.cfg, Deps{Clock: h.clk, Transport: h.mem, Forecaster: newAR1(), Store: ls, Token: "a"})
	if err != nil {
		t.Fatal(err)
	}
	bcfg := h.cfg
	bcfg.TakeoverWait = 100 * time.Millisecond // b redoes the close before a's retry
	var b *Engine
	b, err = New(bcfg, Deps{Clock: h.clk, Transport: h.mem, Forecaster: newAR1(), Store: h.store, Token: "b",
		Hooks: Hooks{StepCommitted: func(_ uint64, step protocol.Step) {
			if step == protocol.StepPredict {
				b.Stop() // b loses the lead right after its close
			}
		}}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Stop()
	defer b.Stop()
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	report := func(rate float64) protocol.WorkloadReport {
		t.Helper()
		r := protocol.WorkloadReport{DC: "dc0", At: h.clk.Now(), Kind: KindDP, Reporter: "node1",
			Pairs: []protocol.PairLoad{{Entry: "dc0", Exit: "dc0", Rate: rate}}}
		if c, err := a.ReportWorkloadCounted(r); err != nil || c.Duplicate {
			t.Fatalf("a report to a at %v: %+v, %v", h.clk.Now().Sub(t0), c, err)
		}
		return r
	}
	verdict, clockDone := closeInterval0Held(t, h, ls, func(rate float64) { report(rate) })
	r := report(400) // R: a counts it in interval 1
	verdict <- errors.New("timed out enqueuing operation")
	within(t, "the clock's Advance after the verdict", func() { <-clockDone })
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	h.clk.Advance(200 * time.Millisecond) // b's close of interval 0, then b stops
	if st := h.store.State(); st.Round == nil || st.Round.Prediction == nil || st.Round.Prediction.ClosedBy != "b" || b.Running() {
		t.Fatalf("b did not redo the close and stop: round %+v, b running %v", st.Round, b.Running())
	}
	h.clk.Advance(400 * time.Millisecond) // a's retry (Retransmit after the verdict): advance
	if !a.Running() {
		t.Fatal("a stopped; the test needs it leading throughout")
	}
	if got := a.Stats().DroppedOnLostClose; got != 1 {
		t.Errorf("a dropped %d reports on the lost close, want 1 (R)", got)
	}
	if c, err := a.ReportWorkloadCounted(r); err != nil || !c.Duplicate || c.Interval != 0 || c.Measuring != 1 {
		t.Errorf("a copy of R: %+v, %v; want the duplicate of interval 0, measuring 1", c, err)
	}
	sum1, n1 := 0.0, 0.0
	for h.clk.Now().Before(t0.Add(99 * time.Second)) { // interval 1, to a
		h.clk.Advance(time.Second)
		report(100)
		sum1, n1 = sum1+100, n1+1
	}
	h.runRounds(t, 2)
	if hist := h.store.History(); len(hist) < 2 || hist[0].ClosedBy != "b" || hist[1].ClosedBy != "a" {
		t.Errorf("the log's history %+v: want interval 0 closed by b, 1 by a", hist)
	}
	if got := measuredDC0(t, h, 1); math.Abs(got-sum1/n1) > 1e-9 {
		t.Fatalf("interval 1 measured %v, want %v (with R as well: %v)", got, sum1/n1, (sum1+400)/(n1+1))
	}
}

// countedLeader is an engine as a transport.CountedTarget (as the
// daemon's engineIntake in an IntakeTarget): only a running engine takes
// reports; accepted, when set, hears each report it took, then the test's
// hook; answer, when set, changes what the reporter hears of it (a lost
// answer, an older node's).
type countedLeader struct {
	e        *Engine
	name     string
	accepted func(protocol.WorkloadReport)
	answer   func(protocol.WorkloadReport, transport.Counted) (transport.Counted, error)
}

func (l countedLeader) SendReportCounted(_ context.Context, r protocol.WorkloadReport) (transport.Counted, error) {
	if !l.e.Running() {
		return transport.Counted{}, transport.ErrNotLeader
	}
	c, err := l.e.ReportWorkloadCounted(r)
	if err != nil {
		return transport.Counted{}, fmt.Errorf("%w: %v", transport.ErrRejected, err)
	}
	if l.accepted != nil {
		l.accepted(r)
	}
	if l.answer != nil {
		return l.answer(r, c)
	}
	return c, nil
}

func (l countedLeader) SendReportInterval(ctx context.Context, r protocol.WorkloadReport) (uint64, bool, error) {
	c, err := l.SendReportCounted(ctx, r)
	return c.Interval, c.Known, err
}

func (l countedLeader) SendReport(ctx context.Context, r protocol.WorkloadReport) error {
	_, err := l.SendReportCounted(ctx, r)
	return err
}

func (l countedLeader) String() string { return l.name }

// A copy answered while the engine's own close is in flight names the
// interval the log measures, not the one its in-memory intake has begun
// (revD MED-2). a closes interval 0 in memory at 50 s; raft loses the
// entry. b leads a moment: it takes report k (rate 400, 51 s) in interval
// 0 and loses the lead before it closes the interval. a leads again, its
// close of 0 in flight once more. The reporter's re-sends of 0–49 s queued
// for b land at a: copies, counted in 0. a measures 0 in the log; had it
// answered 1 (its intake's), the reporter would skip k (kept, counted in
// 0 by b, before 1), which no close holds: counted nowhere. Answered 0,
// the reporter re-sends k to a, which counts it in interval 1 once its
// close of 0 commits (interval 1 measures 400 with it, 100 without).
func TestCopyDuringTheCloseNamesTheIntervalTheLogMeasures(t *testing.T) {
	var rep *transport.Reporter
	hooks := Hooks{StepCommitted: func(_ uint64, step protocol.Step) {
		if step == protocol.StepEnter {
			rep.NewInterval()
		}
	}}
	h := newHarness(t, 2, transportCfgNone, hooks, nil)
	ls := &lossyStore{MemStore: h.store, hold: isPredictOf(0), held: make(chan chan error)}
	a, b := tokenEngines(t, h, ls, hooks, nil)
	accepted := make(chan string, 4096)
	k := 51 * time.Second
	var err error
	rep, err = transport.NewReporter(transport.ReporterConfig{Clock: h.clk, Resend: true, ID: "node1", QueueCap: 4096,
		Targets: []transport.ReportTarget{
			countedLeader{e: a, name: "a", accepted: func(protocol.WorkloadReport) { accepted <- "a" }},
			countedLeader{e: b, name: "b", accepted: func(r protocol.WorkloadReport) {
				if r.At.Sub(t0) == k {
					// b loses the lead before it closes interval 0, and a
					// leads again: the re-sends queued for b land at a
					b.Stop()
					if err := a.Start(); err != nil {
						t.Error(err)
					}
				}
				accepted <- "b"
			}},
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer rep.Close()
	wait := func(who string, n int) {
		t.Helper()
		for range n {
			select {
			case got := <-accepted:
				if got != who {
					t.Fatalf("a report accepted by %s, want %s", got, who)
				}
			case <-time.After(time.Minute): // a guard only
				t.Fatalf("fewer acceptances by %s than %d at %v: %+v", who, n, h.clk.Now().Sub(t0), rep.Stats())
			}
		}
	}
	report := func(rate float64) {
		t.Helper()
		if err := rep.ReportWorkload(protocol.WorkloadReport{DC: "dc0", At: h.clk.Now(), Kind: KindDP,
			Pairs: []protocol.PairLoad{{Entry: "dc0", Exit: "dc0", Rate: rate}}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	verdict, clockDone := closeInterval0Held(t, h, ls, func(rate float64) { report(rate); wait("a", 1) })
	verdict <- fmt.Errorf("%w: leadership lost while committing", ErrNotLeader) // a stops
	within(t, "the clock's Advance after the verdict", func() { <-clockDone })
	a.Stop()
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	h.clk.Advance(time.Second) // 51 s, before b's TakeoverWait ends
	report(400)                // k: b counts it in interval 0, stops, a starts
	wait("b", 1)
	// the copy of 0 (then, k not skipped, the others and k) at a
	waitSent(t, rep, 50+1+1)
	for len(accepted) > 0 { // every acceptance is signalled before it is booked
		<-accepted
	}
	st := h.store.State()
	copy0 := protocol.WorkloadReport{DC: "dc0", At: t0, Kind: KindDP, Reporter: "node1",
		Pairs: []protocol.PairLoad{{Entry: "dc0", Exit: "dc0", Rate: 100}}}
	if c, err := a.ReportWorkloadCounted(copy0); err != nil || !c.Duplicate || c.Interval != 0 || c.Measuring != measuring(&st) {
		t.Errorf("a copy of report 0 while a's close is in flight: %+v, %v; want the duplicate of interval 0, measuring %d (the log's)",
			c, err, measuring(&st))
	}
	// a's retried close of interval 0 (its intake: 100) commits
	clockDone = goAdvance(h, time.Millisecond)
	select {
	case v := <-ls.held:
		v <- nil
	case <-time.After(10 * time.Second): // deadlock guard
		t.Fatal("a did not retry its close of interval 0")
	}
	within(t, "the clock's Advance after the verdict", func() { <-clockDone })
	for h.clk.Now().Before(t0.Add(99 * time.Second)) { // interval 1, to a
		h.clk.Advance(time.Second)
		report(100)
		wait("a", 1)
	}
	h.runRounds(t, 2)
	if got := measuredDC0(t, h, 0); got != 100 {
		t.Errorf("interval 0 measured %v, want 100 (a's close)", got)
	}
	if got, want := measuredDC0(t, h, 1), (400+48*100)/49.0; math.Abs(got-want) > 1e-9 {
		t.Fatalf("interval 1 measured %v, want %v: k counted there (without k: 100, counted nowhere); reporter %+v",
			got, want, rep.Stats())
	}
}

// waitSent waits until rep has sent n reports and has nothing queued (a
// guard turns a stuck queue into a failure).
func waitSent(t *testing.T, rep *transport.Reporter, n uint64) {
	t.Helper()
	for end := time.Now().Add(time.Minute); ; {
		if s := rep.Stats(); s.Sent >= n && s.QueueLen == 0 {
			return
		}
		if time.Now().After(end) { // a guard only
			t.Fatalf("the reporter did not send %d reports: %+v", n, rep.Stats())
		}
		time.Sleep(time.Millisecond) // polling a condition, not waiting for time
	}
}

// A predict commit retried after a retryable failure proposes the same
// averages (the closing intake is frozen): the engine keeps one copy of
// them for ownClose, not one per retry (revD LOW-3: a leader whose commit
// kept failing grew the list every Retransmit).
func TestRetriedCloseKeepsOneProposal(t *testing.T) {
	h := newHarness(t, 2, transportCfgNone, Hooks{}, nil)
	ls := &lossyStore{MemStore: h.store, hold: isPredictOf(0), held: make(chan chan error)}
	a, err := New(h.cfg, Deps{Clock: h.clk, Transport: h.mem, Forecaster: newAR1(), Store: ls, Token: "a"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Stop()
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	verdict, clockDone := closeInterval0Held(t, h, ls, func(rate float64) {
		if _, err := a.ReportWorkloadCounted(dpReport(h, rate)); err != nil {
			t.Fatal(err)
		}
	})
	for try := 1; try <= 3; try++ {
		var n int
		a.locked(func() { n = len(a.closingActual) })
		if n != 1 {
			t.Fatalf("try %d of the close: %d proposals kept, want 1", try, n)
		}
		verdict <- errors.New("timed out enqueuing operation") // retryable
		within(t, "the clock's Advance after the verdict", func() { <-clockDone })
		clockDone = goAdvance(h, protocol.RetransmitAfter)
		select {
		case verdict = <-ls.held:
		case <-time.After(10 * time.Second): // deadlock guard
			t.Fatalf("try %d: a did not retry its close", try)
		}
	}
	verdict <- nil
	within(t, "the clock's Advance after the verdict", func() { <-clockDone })
	var n int
	a.locked(func() { n = len(a.closingActual) })
	if n != 0 {
		t.Fatalf("%d proposals kept after the close committed, want 0", n)
	}
}

// syncBuffer is a bytes.Buffer safe for a logger's writes from the
// engine's goroutines while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
