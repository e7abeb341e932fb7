package global

import (
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/controller/protocol"
	"github.com/ims-orch/ims-orch/controller/transport"
)

// A report in a dropped intake is counted once (session 15). a closes
// interval 0 in memory at 50 s and counts R (rate 400) in interval 1;
// raft loses a's close. The reporter's local side has not entered
// interval 1 yet (it keeps what it sent since its last NewInterval; the
// test never calls it): the window in which a report of a dropped intake
// can be re-sent at all.
//
// "b closed, then counted R in 1": b resumes round 0 and closes interval
// 0 at 50.1 s before any report reaches it (a partition, a slow
// reporter). The reporter's first report to b (X) makes it re-send R, in
// interval 1 by a's word and so not skipped: b takes it in interval 1
// (answering so, engine b). b loses the lead in interval 1 (its intake
// with it); a leads again and drops its intake of 1, R in it (b closed
// interval 0, not a). The copy of R re-sent to a is answered as a copy
// of a dropped intake's report, closed by b; the reporter heard b say it
// counted R in 1, the interval a measures, so it sends the copy once more
// with b's word (countedBy) and a counts it: interval 1 holds R once.
// Before, a answered the duplicate of 0 and R was counted nowhere
// (interval 1 measured 100).
//
// "b closed of session 14": as the first, b's answers name no engine (an
// older node): no word, the copy is not re-sent, R is lost as before.
//
// "c counted R in 0, its answer lost": c resumes round 0, takes the
// reporter's re-sent reports, R among them, in interval 0 — its answer to
// R is lost (c partitioned from the reporter) — and closes interval 0
// with R. b leads a moment in interval 1 and counts R there (the reporter
// had no word that R was counted); a leads again and drops its intake.
// The reporter holds a's and b's word that R was counted in 1, none of c,
// the closer: the copy is not sent again (were any engine's word enough,
// a would count R in 1 as well: twice, with c's 0).
//
// "b closes 0 and 1, a drops while measuring 2": bClosesR. Every row
// with R still a dropped entry at a also checks that a refuses the
// closer's word for another interval than 1 (0, 2), and that a copy whose
// closer a has forgotten is answered naming no engine.
func TestDroppedIntakeReportCountedOnce(t *testing.T) {
	for _, tc := range []struct {
		name     string
		closer   string // the engine that closes interval 0: b (after R's loss at a) or c (with R)
		oldB     bool   // b's answers name no engine (session 14)
		bClosesR bool   // b closes interval 1 too (R in it) while the reporter is busy with a's answer
		recounts int    // copies a counts again
	}{
		{name: "b closed, then counted R in 1", closer: "b", recounts: 1},
		{name: "b closed of session 14", closer: "b", oldB: true},
		{name: "b closes 0 and 1, a drops while measuring 2", closer: "b", bClosesR: true},
		{name: "c counted R in 0, its answer lost", closer: "c"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, 2, transportCfgNone, Hooks{}, nil)
			ls := &lossyStore{MemStore: h.store, hold: isPredictOf(0), held: make(chan chan error)}
			a, b := tokenEngines(t, h, ls, Hooks{}, nil)
			if tc.closer == "b" { // b closes at once, before the reporter finds it
				bcfg := h.cfg
				bcfg.TakeoverWait = 100 * time.Millisecond
				var err error
				if b, err = New(bcfg, Deps{Clock: h.clk, Transport: h.mem, Forecaster: newAR1(), Store: h.store, Token: "b"}); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(b.Stop)
			}
			c, err := New(h.cfg, Deps{Clock: h.clk, Transport: h.mem, Forecaster: newAR1(), Store: h.store, Token: "c"})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Stop)
			rAt := t0.Add(50 * time.Second)
			isR := func(r protocol.WorkloadReport) bool { return r.At.Equal(rAt) }
			tb := countedLeader{e: b, name: "b"}
			if tc.oldB {
				tb.answer = func(_ protocol.WorkloadReport, got transport.Counted) (transport.Counted, error) {
					got.Engine, got.ClosedBy = "", ""
					return got, nil
				}
			}
			// holdA, when set, holds the reporter's sender in a's next
			// acceptance (a has counted the report; its answer is on the
			// way) until releaseA
			var holdA atomic.Bool
			heldA, releaseA := make(chan struct{}), make(chan struct{})
			ta := countedLeader{e: a, name: "a", accepted: func(protocol.WorkloadReport) {
				if holdA.CompareAndSwap(true, false) {
					heldA <- struct{}{}
					<-releaseA
				}
			}}
			tcT := countedLeader{e: c, name: "c", answer: func(r protocol.WorkloadReport, got transport.Counted) (transport.Counted, error) {
				if isR(r) {
					return transport.Counted{}, errors.New("c's answer lost")
				}
				return got, nil
			}}
			idle := make(chan struct{}, 1)
			rep, err := transport.NewReporter(transport.ReporterConfig{Clock: h.clk, Resend: true, ID: "node1", QueueCap: 4096,
				Attempts: 1, // a report whose answer is lost is given up at once (no retry timer)
				OnIdle:   idleSignal(idle),
				Targets:  []transport.ReportTarget{ta, tb, tcT}})
			if err != nil {
				t.Fatal(err)
			}
			defer rep.Close()
			// report sends the reporter the load of now and waits until it
			// has sent it and what it re-sends behind it
			report := func(rate float64) {
				t.Helper()
				reportDC0(t, rep, h.clk.Now(), rate)
				waitIdle(t, rep, idle)
			}
			if err := a.Start(); err != nil {
				t.Fatal(err)
			}
			verdict, clockDone := closeInterval0Held(t, h, ls, report)
			if !h.clk.Now().Equal(rAt) {
				t.Fatalf("R at %v, want 50 s", h.clk.Now().Sub(t0))
			}
			report(400) // R: a counts it in interval 1
			verdict <- fmt.Errorf("%w: leadership lost while committing", ErrNotLeader)
			within(t, "the clock's Advance after the verdict", func() { <-clockDone })
			a.Stop()
			sum1, n1 := 0.0, 0.0 // interval 1's reports at a, R aside
			want0 := 0.0
			switch tc.closer {
			case "b":
				if err := b.Start(); err != nil {
					t.Fatal(err)
				}
				h.clk.Advance(200 * time.Millisecond) // b closes interval 0, empty
				if p := committedClose(ptr(h.store.State()), h.store.History, 0); p == nil || p.ClosedBy != "b" {
					t.Fatalf("b did not close interval 0: %+v", p)
				}
				report(100) // X: b counts it in 1, and the re-sent R
				sum1, n1 = sum1+100, n1+1
			case "c":
				if err := c.Start(); err != nil {
					t.Fatal(err)
				}
				h.clk.Advance(time.Second)
				report(100)       // c: its report, the re-sent 0–49 s and R (its answer lost)
				h.runRounds(t, 1) // c closes interval 0 at 52 s
				want0 = (50*100 + 100 + 400) / 52.0
				if p := committedClose(ptr(h.store.State()), h.store.History, 0); p == nil || p.ClosedBy != "c" {
					t.Fatalf("c did not close interval 0: %+v", p)
				}
				c.Stop()
				if err := b.Start(); err != nil {
					t.Fatal(err)
				}
				h.clk.Advance(time.Second)
				report(100) // b: its report, then R (kept in a's interval 1: no word of c)
				sum1, n1 = sum1+100, n1+1
			}
			b.Stop()
			if err := a.Start(); err != nil {
				t.Fatal(err)
			}
			if got := a.Stats().DroppedOnLostClose; got != 1 {
				t.Fatalf("a dropped %d reports on the lost close, want 1 (R)", got)
			}
			h.clk.Advance(time.Second)
			if tc.bClosesR {
				bClosesR(t, h, a, b, rep, idle, &holdA, heldA, releaseA)
				return
			}
			report(100) // a's first: the re-sent reports of b's interval 1, R among them
			sum1, n1 = sum1+100, n1+1
			if got := a.Stats().RecountedReports; got != tc.recounts {
				t.Errorf("a counted %d copies of its dropped intake again, want %d; reporter %+v", got, tc.recounts, rep.Stats())
			}
			if got := rep.Stats().Recounts; got != uint64(tc.recounts) {
				t.Errorf("the reporter re-sent %d copies with the closer's word, want %d", got, tc.recounts)
			}
			// the copy again, with the word of b (not c, the closer, in
			// the third case): counted no more (in the second, b's word is
			// what a session-15 b would have said: no check)
			r := protocol.WorkloadReport{DC: "dc0", At: rAt, Kind: KindDP, Reporter: "node1",
				Pairs: []protocol.PairLoad{{Entry: "dc0", Exit: "dc0", Rate: 400}}, CountedBy: &protocol.CountedBy{Engine: EngineID("b"), Interval: 1}}
			wantIn := uint64(0)
			if tc.recounts > 0 {
				wantIn = 1
			}
			// the closer's ID with another interval than the one a
			// measures (the closer counted R in the interval it closed, or
			// closed the one it counted R in too): no recount, whatever
			// the reporter sends (rows 2 and 3, where R is still a
			// dropped entry at a; row 1 recounted it)
			for _, in := range []uint64{0, 2} {
				f := r
				f.CountedBy = &protocol.CountedBy{Engine: EngineID(tc.closer), Interval: in}
				if got, err := a.ReportWorkloadCounted(f); err != nil || !got.Duplicate {
					t.Errorf("a copy of R with %s's word for interval %d: %+v, %v; want a duplicate", tc.closer, in, got, err)
				}
			}
			if !tc.oldB {
				if got, err := a.ReportWorkloadCounted(r); err != nil || !got.Duplicate || got.Interval != wantIn || got.Measuring != 1 {
					t.Errorf("a copy of R with b's word: %+v, %v; want the duplicate of interval %d, measuring 1", got, err, wantIn)
				}
			}
			if tc.recounts == 0 {
				// the closer fell out of a's memory of 8 dropped closes: a
				// copy is answered without closedBy and without engine, so
				// its guessed interval is no engine's word
				a.locked(func() {
					for i := range uint64(maxDroppedBy) {
						a.noteDropped(100+i, EngineID("x"))
					}
				})
				f := r
				f.CountedBy = nil
				if got, err := a.ReportWorkloadCounted(f); err != nil || !got.Duplicate || got.ClosedBy != "" || got.Engine != "" {
					t.Errorf("a copy of R, its closer forgotten: %+v, %v; want a duplicate naming no engine and no closer", got, err)
				}
			}
			for h.clk.Now().Before(t0.Add(99 * time.Second)) { // interval 1, to a
				h.clk.Advance(time.Second)
				report(100)
				sum1, n1 = sum1+100, n1+1
			}
			h.runRounds(t, 2)
			if got := measuredDC0(t, h, 0); math.Abs(got-want0) > 1e-9 {
				t.Errorf("interval 0 measured %v, want %v", got, want0)
			}
			want1, with, without := sum1/n1, (sum1+400)/(n1+1), sum1/n1
			if tc.closer == "b" && !tc.oldB {
				want1 = with
			}
			if got := measuredDC0(t, h, 1); math.Abs(got-want1) > 1e-9 {
				t.Fatalf("interval 1 measured %v, want %v (with R %v, without %v); reporter %+v", got, want1, with, without, rep.Stats())
			}
		})
	}
}

// bClosesR is the row "b closes 0 and 1, a drops while measuring 2" of
// TestDroppedIntakeReportCountedOnce, from a's restart at 51 s on (b
// closed interval 0 empty and answered X and R as counted in 1, a dropped
// its intake of 1 with R, measuring 1). a takes its first report
// (measuring 1), and the reporter queues its kept reports of interval 1
// for a, R among them; before the reporter reads a's answer, a loses the
// lead, b leads again with its intake of 1 and closes it, and a leads
// again, measuring 2. The copy of R reaches a: a copy of its dropped
// intake's report, closed by b, while a measures 2. The reporter holds
// b's word that it counted R in 1, not 2: no copy with the word (b closed
// the interval it counted R in; sent and counted, R would count in b's 1
// and a's 2), and a refuses such a word (the engine is the authority: a
// buggy or forged countedBy). b's intake of 1 in fact lacks R: b's
// interval 1 began at 50.1 s, after R's 50 s, so b dropped R as late
// (answering it as counted in 1, Stats.LateReports); the row checks the
// words, and that neither interval gains R: 100 each.
func bClosesR(t *testing.T, h *harness, a, b *Engine, rep *transport.Reporter, idle chan struct{},
	holdA *atomic.Bool, heldA, releaseA chan struct{}) {
	t.Helper()
	holdA.Store(true)
	reportDC0(t, rep, h.clk.Now(), 100) // a's first (51 s), counted in a's 1
	within(t, "a's acceptance", func() { <-heldA })
	a.Stop()
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	h.runRounds(t, 2) // b closes interval 1 at 100 s
	if p := committedClose(ptr(h.store.State()), h.store.History, 1); p == nil || p.ClosedBy != "b" {
		t.Fatalf("b did not close interval 1: %+v", p)
	}
	b.Stop()
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	close(releaseA) // the reporter reads a's answer (measuring 1) and re-sends to a
	waitIdle(t, rep, idle)
	if got := a.Stats().RecountedReports; got != 0 {
		t.Errorf("a counted %d copies of its dropped intake again, want 0", got)
	}
	if got := rep.Stats().Recounts; got != 0 {
		t.Errorf("the reporter re-sent %d copies with the closer's word, want 0 (b's word names 1, a measures 2)", got)
	}
	// the engine alone: b's word for 1, the interval b closed too
	r := protocol.WorkloadReport{DC: "dc0", At: t0.Add(50 * time.Second), Kind: KindDP, Reporter: "node1",
		Pairs: []protocol.PairLoad{{Entry: "dc0", Exit: "dc0", Rate: 400}}, CountedBy: &protocol.CountedBy{Engine: EngineID("b"), Interval: 1}}
	if got, err := a.ReportWorkloadCounted(r); err != nil || !got.Duplicate || got.Measuring != 2 {
		t.Errorf("a copy of R with b's word for 1: %+v, %v; want a duplicate, measuring 2", got, err)
	}
	for h.clk.Now().Before(t0.Add(149 * time.Second)) { // interval 2, to a
		h.clk.Advance(time.Second)
		reportDC0(t, rep, h.clk.Now(), 100)
		waitIdle(t, rep, idle)
	}
	h.runRounds(t, 3)
	if got := b.Stats().LateReports; got != 1 {
		t.Errorf("b dropped %d reports as late, want 1 (R)", got)
	}
	if got := measuredDC0(t, h, 1); math.Abs(got-100) > 1e-9 {
		t.Errorf("interval 1 measured %v, want 100 (X, b's close)", got)
	}
	if got := measuredDC0(t, h, 2); math.Abs(got-100) > 1e-9 {
		t.Errorf("interval 2 measured %v, want 100 (R not in it); reporter %+v", got, rep.Stats())
	}
}

func ptr[T any](v T) *T { return &v }

// reportDC0 gives rep a DP report of dc0 at at, rate on dc0→dc0.
func reportDC0(t *testing.T, rep *transport.Reporter, at time.Time, rate float64) {
	t.Helper()
	if err := rep.ReportWorkload(protocol.WorkloadReport{DC: "dc0", At: at, Kind: KindDP,
		Pairs: []protocol.PairLoad{{Entry: "dc0", Exit: "dc0", Rate: rate}}}); err != nil {
		t.Fatal(err)
	}
}

// idleSignal is a ReporterConfig.OnIdle that signals on idle (one
// signal per drain: the test waits for each before it hands the reporter
// the next report).
func idleSignal(idle chan struct{}) func() {
	return func() {
		select {
		case idle <- struct{}{}:
		default: // a signal not taken yet: one is enough
		}
	}
}

// waitIdle waits until rep's sender has found its queue empty (idle, fed
// by idleSignal): every report given to it has been sent, given up or
// refused, and what it re-sent behind them too.
func waitIdle(t *testing.T, rep *transport.Reporter, idle chan struct{}) {
	t.Helper()
	within(t, "the reporter's sending", func() { <-idle })
	if n := rep.Stats().QueueLen; n != 0 {
		t.Fatalf("the reporter idle with %d reports queued", n)
	}
}
