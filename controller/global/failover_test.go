package global

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/fsm"
	"github.com/ims-orch/ims-orch/controller/protocol"
	"github.com/ims-orch/ims-orch/controller/transport"
)

// engineOn returns a new engine with cfg on the harness's store and
// transport, on clock clk (nil: the harness's), not started.
func engineOn(t *testing.T, h *harness, cfg Config, clk clock.Clock) *Engine {
	t.Helper()
	if clk == nil {
		clk = h.clk
	}
	e, err := New(cfg, Deps{Clock: clk, Transport: h.mem, Forecaster: newAR1(), Store: h.store})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// twoEngines returns two engines with cfg on the harness's store,
// transport and clock (two global nodes), neither started.
func twoEngines(t *testing.T, h *harness, cfg Config) (a, b *Engine) {
	t.Helper()
	return engineOn(t, h, cfg, nil), engineOn(t, h, cfg, nil)
}

// twoNodesALeads returns a two-DC harness and two engines with its
// config on it, a started (the leader), b not.
func twoNodesALeads(t *testing.T) (h *harness, a, b *Engine) {
	t.Helper()
	h = newHarness(t, 2, transportCfgNone, Hooks{}, nil)
	a, b = twoEngines(t, h, h.cfg)
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	return h, a, b
}

// measuredDC0 is the interval-mean DP workload on dc0→dc0 that round
// measured, from the store's history (one prediction per round: fsm);
// the test fails when none is stored.
func measuredDC0(t *testing.T, h *harness, round uint64) float64 {
	t.Helper()
	for _, p := range h.store.History() {
		if p.Round == round {
			return p.Actual[SeriesKey(KindDP, "dc0", "dc0")]
		}
	}
	t.Fatalf("no prediction of round %d", round)
	return 0
}

// leaderTarget is an engine as a report target: only a running engine (the
// leader) takes reports, as the daemon's engineIntake.
type leaderTarget struct {
	e    *Engine
	name string
}

func (l leaderTarget) SendReport(ctx context.Context, r protocol.WorkloadReport) error {
	_, _, err := l.SendReportInterval(ctx, r)
	return err
}

// SendReportInterval implements transport.IntervalTarget: the interval the
// engine counted the report in.
func (l leaderTarget) SendReportInterval(_ context.Context, r protocol.WorkloadReport) (uint64, bool, error) {
	if !l.e.Running() {
		return 0, false, transport.ErrNotLeader
	}
	interval, err := l.e.ReportWorkloadInterval(r)
	if err != nil {
		return 0, false, transport.ErrRejected
	}
	return interval, true, nil
}

func (l leaderTarget) String() string { return l.name }

// failoverRun reports a DP ramp on dc0→dc0 every second through a reporter
// to two engines over one store; with failover the first engine dies in the
// middle of interval 1 (after the report of second 75) and the second takes
// over before the report of second takeover (75: at once; reports in between
// wait in the reporter, as during an election); with openRound the dead
// leader had committed round 1's start (at 100 s) but not its predict step.
// It returns the measured
// (interval-mean) workload of interval 1 and when its round started.
func failoverRun(t *testing.T, failover, resend bool, takeover int, openRound bool) (float64, time.Duration) {
	h := newHarness(t, 2, transportCfgNone, Hooks{}, nil)
	var rep *transport.Reporter
	hooks := Hooks{StepCommitted: func(_ uint64, step protocol.Step) {
		if step == protocol.StepEnter { // the local side enters the new interval
			rep.NewInterval()
		}
	}}
	a, err := New(h.cfg, Deps{Clock: h.clk, Transport: h.mem, Forecaster: newAR1(), Store: h.store, Hooks: hooks})
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(h.cfg, Deps{Clock: h.clk, Transport: h.mem, Forecaster: newAR1(), Store: h.store, Hooks: hooks})
	if err != nil {
		t.Fatal(err)
	}
	rep, err = transport.NewReporter(transport.ReporterConfig{Targets: []transport.ReportTarget{leaderTarget{e: a, name: "a"}, leaderTarget{e: b, name: "b"}},
		Clock: h.clk, Resend: resend, NoLeaderWait: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer rep.Close()
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	for s := 1; h.store.State().Interval < 2; s++ {
		if s > 200 {
			t.Fatal("interval 1 never closed")
		}
		if failover && s == takeover && takeover > 75 { // the election is over: the other node leads
			if openRound {
				if err := h.store.Apply(fsm.RoundStarted{Round: 1, At: t0.Add(100 * time.Second)}); err != nil {
					t.Fatal(err)
				}
			}
			if err := b.Start(); err != nil {
				t.Fatal(err)
			}
		}
		if err := rep.ReportWorkload(protocol.WorkloadReport{DC: "dc0", At: h.clk.Now(), Kind: KindDP,
			Pairs: []protocol.PairLoad{{Entry: "dc0", Exit: "dc0", Rate: 100 + 10*float64(s)}}}); err != nil {
			t.Fatal(err)
		}
		// the reporter sends on its own goroutine: wait (bounded) until it is
		// done; while no node leads (and in the second the reports waiting
		// for a leader are retried) it waits for its retry timer
		// A retry timer armed after the step's Advance (the drain goroutine
		// races the test's clock) is due only on the virtual clock: once
		// the queue has made no progress for 20 ms of real time, move the
		// clock 10 ms so it fires (the CI rehearsal of e2e6a95 saw the
		// reporter wait forever with 29 reports queued after the takeover).
		for end, last, sent := time.Now().Add(5*time.Second), time.Now(), rep.Stats().Sent; !(failover && s > 75 && s <= takeover) && (rep.Stats().QueueLen > 0 || rep.Stats().Sent < uint64(s)); {
			if time.Now().After(end) {
				t.Fatalf("reporter stuck: %+v", rep.Stats())
			}
			if st := rep.Stats(); st.Sent != sent {
				sent, last = st.Sent, time.Now()
			} else if st.QueueLen > 0 && time.Since(last) > 20*time.Millisecond {
				h.clk.Advance(10 * time.Millisecond)
				last = time.Now()
			}
			time.Sleep(100 * time.Microsecond)
		}
		if failover && s == 75 { // mid-interval 1: the leader dies
			a.Stop()
			if takeover <= 75 { // the other node leads at once
				if err := b.Start(); err != nil {
					t.Fatal(err)
				}
			}
		}
		h.clk.Advance(time.Second)
	}
	// interval 2 entered: the last round to start was round 1
	started := h.store.State().RoundStartedAt.Sub(t0)
	return measuredDC0(t, h, 1), started
}

// The leader dies in the middle of an interval: the new leader runs the
// next round when the old one would have (the interval boundary is
// replicated) and, with the reporters re-sending the interval's reports,
// its measured workload equals the run without failover within 5 %;
// without the re-send it measures only the part after the takeover.
func TestFailoverKeepsTheInterval(t *testing.T) {
	want, wantAt := failoverRun(t, false, true, 75, false)
	got, gotAt := failoverRun(t, true, true, 75, false)
	lost, _ := failoverRun(t, true, false, 75, false)
	t.Logf("interval 1: %.1f pkt/s without failover (round at %v), %.1f with failover and re-send (round at %v), %.1f without re-send",
		want, wantAt, got, gotAt, lost)
	if math.Abs(got-want) > 0.05*want {
		t.Fatalf("with failover the interval measured %.1f, without %.1f: more than 5 %% apart", got, want)
	}
	if gotAt != wantAt {
		t.Fatalf("the new leader ran round 1 at %v, the old schedule at %v", gotAt, wantAt)
	}
	if math.Abs(lost-want) <= 0.05*want {
		t.Fatalf("without the re-send the interval measured %.1f ≈ %.1f: the test cannot tell the mechanism works", lost, want)
	}
}

// A node that led before and leads again later measures only the interval
// in progress: reports its engine took in an earlier term, for an interval
// another leader has closed since, are not averaged into its first round.
// (Seen over HTTP with three daemons: a node that lost the lead in one
// interval and won it back in the next measured 10 % low.)
func TestRegainedLeadershipDropsStaleReports(t *testing.T) {
	h, a, b := twoNodesALeads(t)
	leader, rate := a, 100.0
	for s := 1; h.store.State().Interval < 2; s++ {
		if s > 300 {
			t.Fatal("interval 1 never closed")
		}
		switch s {
		case 11: // a loses the lead in interval 0; b closes it
			a.Stop()
			if err := b.Start(); err != nil {
				t.Fatal(err)
			}
			leader = b
		case 80: // in interval 1 b dies and a leads again
			b.Stop()
			if err := a.Start(); err != nil {
				t.Fatal(err)
			}
			leader = a
		}
		if st := h.store.State(); st.Interval >= 1 || st.Round != nil {
			rate = 500 // interval 1's load
		}
		if err := leader.ReportWorkload(protocol.WorkloadReport{DC: "dc0", At: h.clk.Now(), Kind: KindDP,
			Pairs: []protocol.PairLoad{{Entry: "dc0", Exit: "dc0", Rate: rate}}}); err != nil {
			t.Fatal(err)
		}
		h.clk.Advance(time.Second)
	}
	if got := measuredDC0(t, h, 1); got != 500 {
		t.Fatalf("round 1 measured %v, want 500 (interval 1's reports only)", got)
	}
}

// The leader dies in the middle of an interval and the next one is elected
// only after that interval's end (a slow election on a starved host): its
// first round still measures the interval from the reports the reporters
// re-send to it, within 5 % of the run without failover — it does not close
// the interval before the re-sent reports can reach it (it measured 0 on
// every series, and the re-sent reports were counted in the next interval).
func TestFailoverAfterTheIntervalEndKeepsTheInterval(t *testing.T) {
	want, wantAt := failoverRun(t, false, true, 75, false)
	// round 1 is due at 100 s; the new leader starts 2 s later
	got, gotAt := failoverRun(t, true, true, 103, false)
	t.Logf("interval 1: %.1f pkt/s without failover (round at %v), %.1f with a leader elected after its end (round at %v)",
		want, wantAt, got, gotAt)
	if math.Abs(got-want) > 0.05*want {
		t.Fatalf("with a leader elected after the interval's end the interval measured %.1f, without failover %.1f: more than 5 %% apart", got, want)
	}
	if gotAt < wantAt {
		t.Fatalf("round 1 started at %v, before its schedule %v", gotAt, wantAt)
	}
	// the old leader committed round 1's start at the boundary and died
	// before its predict step: the new leader resumes the round, after the
	// re-sent reports
	got, _ = failoverRun(t, true, true, 103, true)
	t.Logf("%.1f with the round started by the old leader", got)
	if math.Abs(got-want) > 0.05*want {
		t.Fatalf("resuming a round whose predict step was not committed, the interval measured %.1f, without failover %.1f: more than 5 %% apart", got, want)
	}
}

// When a new leader closes interval 1 (due at 100 s; round 0 started at
// 50 s): another engine waits TakeoverWait for the re-sent reports unless
// TakeoverWait is negative (no wait); the same engine leading again in the
// interval it measured when it stopped does not wait (its intake holds the
// interval's reports), so a re-election does not move the interval's
// boundary, and it measures the whole interval.
func TestTakeoverWaitOffAndSameEngine(t *testing.T) {
	for _, tc := range []struct {
		name    string
		wait    time.Duration // Config.TakeoverWait
		same    bool          // the engine that stopped leads again
		startAt time.Duration // when the leader (re)starts, from t0
		want    time.Duration // when round 1 starts, from t0
	}{
		{"other engine after the end, default wait", 0, false, 102 * time.Second, 104 * time.Second},
		{"other engine after the end, no wait", -time.Second, false, 102 * time.Second, 102 * time.Second},
		{"other engine 1 s before the end, default wait", 0, false, 99 * time.Second, 101 * time.Second},
		{"other engine 1 s before the end, no wait", -time.Second, false, 99 * time.Second, 100 * time.Second},
		{"same engine 1 s before the end", 0, true, 99 * time.Second, 100 * time.Second},
		{"same engine after the end", 0, true, 102 * time.Second, 102 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, 2, transportCfgNone, Hooks{}, nil)
			cfg := Config{Interval: 50 * time.Second, TakeoverWait: tc.wait}
			a, b := twoEngines(t, h, cfg)
			if err := a.Start(); err != nil {
				t.Fatal(err)
			}
			leader, next := a, a
			if !tc.same {
				next = b
			}
			stopAt := min(tc.startAt, 99*time.Second)
			for tick := 0; h.store.State().Interval < 2; tick++ {
				now := h.clk.Now().Sub(t0)
				if now > 150*time.Second {
					t.Fatal("interval 1 never closed")
				}
				if now == stopAt {
					leader.Stop()
				}
				if now == tc.startAt {
					if err := next.Start(); err != nil {
						t.Fatal(err)
					}
					leader = next
				}
				if tick%10 == 0 && leader.Running() {
					if err := leader.ReportWorkload(protocol.WorkloadReport{DC: "dc0", At: h.clk.Now(), Kind: KindDP,
						Pairs: []protocol.PairLoad{{Entry: "dc0", Exit: "dc0", Rate: 100}}}); err != nil {
						t.Fatal(err)
					}
				}
				h.clk.Advance(100 * time.Millisecond)
			}
			if got := h.store.State().RoundStartedAt.Sub(t0); got != tc.want {
				t.Fatalf("round 1 started at %v, want %v", got, tc.want)
			}
			if !tc.same {
				return
			}
			if got := measuredDC0(t, h, 1); got != 100 {
				t.Fatalf("round 1 measured %v, want 100 (the whole interval's reports)", got)
			}
		})
	}
}

// The leader dies at 75 s in interval 1 (50–100 s), the next one starts
// leading at 102 s and closes interval 1 at 104 s (TakeoverWait), and the
// reporter reaches it only at 105 s, after that close: the reports it
// queued meanwhile (76–105 s) and the ones it re-sends (50–75 s) come with
// their age, so the new leader dates them on its own clock and drops those
// measured before 104 s (interval 1's, whose averages are computed) instead
// of counting them in interval 2, and counts them in Stats.LateReports. The
// load is 100 before 100 s and 300 from then on, so interval 2 measures 300
// exactly only without interval 1's reports (it measured 233.3 before).
// A reporter whose clock is 5 s behind still counts (its fresh reports
// are 0 ms old); a report without an age is dated by its own time, late
// only beyond the skew window.
func TestLateReportAfterTheDelayedCloseIsDropped(t *testing.T) {
	h, a, b := twoNodesALeads(t)
	report := func(e *Engine, reporter string, at time.Duration, age time.Duration) {
		t.Helper()
		if err := e.ReportWorkload(protocol.WorkloadReport{DC: "dc0", At: t0.Add(at), Kind: KindDP, Reporter: reporter,
			AgeMs: float64(age) / float64(time.Millisecond), Pairs: []protocol.PairLoad{{Entry: "dc0", Exit: "dc0", Rate: stepLoad(at)}}}); err != nil {
			t.Fatal(err)
		}
	}
	for tick := 0; h.store.State().Interval < 3; tick++ {
		now := h.clk.Now().Sub(t0)
		if now > 200*time.Second {
			t.Fatal("interval 2 never closed")
		}
		switch {
		case now == 102*time.Second: // the election is over
			if err := b.Start(); err != nil {
				t.Fatal(err)
			}
		case now == 105*time.Second: // the reporter reaches b: its queue, then the re-sent reports
			if rs := h.store.State().RoundStartedAt.Sub(t0); rs != 104*time.Second {
				t.Fatalf("round 1 started at %v, want 104s (TakeoverWait)", rs)
			}
			for s := 76 * time.Second; s <= now; s += time.Second {
				report(b, "node1", s, now-s)
			}
			for s := 50 * time.Second; s <= 75*time.Second; s += time.Second {
				report(b, "node1", s, now-s)
			}
			report(b, "old", 60*time.Second, 0) // an older reporter's, without an age, 44 s before the close
		}
		if tick%10 == 0 && now > 105*time.Second {
			report(b, "node1", now, 0)
			report(b, "skewed", now-5*time.Second, 0) // its clock 5 s behind, its report fresh
		}
		if tick%10 == 0 && now <= 75*time.Second {
			report(a, "node1", now, 0)
			if now == 75*time.Second {
				a.Stop()
			}
		}
		h.clk.Advance(100 * time.Millisecond)
	}
	got := measuredDC0(t, h, 2)
	// 26 re-sent (50–75 s), 28 queued (76–103 s), the old reporter's
	late := b.Stats().LateReports
	t.Logf("interval 2 measured %.1f; %d late reports dropped", got, late)
	if got != 300 {
		t.Fatalf("interval 2 measured %v, want 300: interval 1's reports counted in it", got)
	}
	if late != 26+28+1 {
		t.Fatalf("%d late reports, want %d", late, 26+28+1)
	}
}

// A new leader's clock need not agree with the old leader's, on which the
// committed round start (the beginning of the interval the new leader
// measures after a takeover) was read: a report is dropped as late against
// that start only beyond MaxReportSkew. b 3 s behind: a fresh report (1 ms
// old) is counted, not dropped (revB #1: it was). b 3 s ahead: a report
// measured 15 s before the start is dropped (beyond the window and the
// skew); one from 1 s before it is counted, the window's price.
func TestSkewedNewLeaderDatesReportsWithTolerance(t *testing.T) {
	for _, c := range []struct {
		name     string
		skew     time.Duration // b's clock less a's
		age      time.Duration // before the committed round start, on a's clock (negative: after)
		wantLate int
	}{
		{"behind fresh", -3 * time.Second, -1, 0},
		{"ahead 1 s before the close", 3 * time.Second, time.Second, 0},
		{"ahead 15 s before the close", 3 * time.Second, 15 * time.Second, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, 2, transportCfgNone, Hooks{}, nil)
			a := engineOn(t, h, h.cfg, nil)
			if err := a.Start(); err != nil {
				t.Fatal(err)
			}
			for h.store.State().Interval < 2 || h.store.State().Round != nil {
				if h.clk.Now().Sub(t0) > 200*time.Second {
					t.Fatal("no round")
				}
				h.clk.Advance(100 * time.Millisecond)
			}
			a.Stop()
			rs := h.store.State().RoundStartedAt
			cb := clock.NewVirtual(h.clk.Now().Add(c.skew))
			b := engineOn(t, h, h.cfg, cb)
			if err := b.Start(); err != nil {
				t.Fatal(err)
			}
			age := time.Millisecond // fresh
			if c.age >= 0 {
				age = h.clk.Now().Sub(rs.Add(-c.age)) // measured c.age before the start, true time
			}
			if err := b.ReportWorkload(protocol.WorkloadReport{DC: "dc0", At: cb.Now().Add(-age), Kind: KindDP, Reporter: "n1",
				AgeMs: float64(age) / float64(time.Millisecond), Pairs: []protocol.PairLoad{{Entry: "dc0", Exit: "dc0", Rate: 1}}}); err != nil {
				t.Fatal(err)
			}
			if n := b.Stats().LateReports; n != c.wantLate {
				t.Fatalf("late reports %d, want %d (round start %v on a's clock, b's clock %v off)", n, c.wantLate, rs.Sub(t0), c.skew)
			}
		})
	}
}

// ReportWorkloadInterval names the interval a report is counted in as the
// committed state numbers it, on every node: the interval measured until
// its round's predict step closes it, the next from then on; a new leader
// after a takeover says the interval the old one counted in when that
// interval is still open (its round started, not closed: the new leader
// measures it), the next when the old leader had closed it. A reporter
// re-sending to the new leader skips exactly the reports counted in an
// interval below the new leader's (transport.Reporter's Resend).
func TestReportIntervalAcrossATakeover(t *testing.T) {
	report := func(t *testing.T, h *harness, e *Engine) uint64 {
		t.Helper()
		n, err := e.ReportWorkloadInterval(protocol.WorkloadReport{DC: "dc0", At: h.clk.Now(), Kind: KindDP,
			Pairs: []protocol.PairLoad{{Entry: "dc0", Exit: "dc0", Rate: 1}}})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	t.Run("closed by the old leader", func(t *testing.T) {
		h, a, b := twoNodesALeads(t)
		before := report(t, h, a)
		for st := h.store.State(); st.Round == nil || st.Round.Done < protocol.StepPredict; st = h.store.State() {
			if h.clk.Now().Sub(t0) > 200*time.Second {
				t.Fatal("no predict step")
			}
			if n := report(t, h, a); n != before && n != before+1 {
				t.Fatalf("a counted a report in interval %d, between %d and %d", n, before, before+1)
			}
			h.clk.Advance(100 * time.Millisecond)
		}
		after := report(t, h, a)
		if after != before+1 {
			t.Fatalf("after the close a counts in %d, want %d", after, before+1)
		}
		a.Stop()
		if err := b.Start(); err != nil {
			t.Fatal(err)
		}
		if n := report(t, h, b); n != after {
			t.Fatalf("b counts in %d after the takeover, want %d (a's reports of %d are in its committed averages)", n, after, before)
		}
	})
	t.Run("still open", func(t *testing.T) {
		h, a, b := twoNodesALeads(t)
		h.clk.Advance(10 * time.Second)
		before := report(t, h, a)
		a.Stop() // the round of the interval starts, its leader dies before closing it
		if err := h.store.Apply(fsm.RoundStarted{Round: before, At: h.clk.Now()}); err != nil {
			t.Fatal(err)
		}
		if err := b.Start(); err != nil {
			t.Fatal(err)
		}
		if n := report(t, h, b); n != before {
			t.Fatalf("b counts in %d, want %d: the interval a counted in is open, b measures it", n, before)
		}
	})
}

// A reporter of an older version sends no age (nor interval answers read):
// after the leader closes interval 1 at 100 s and dies before the local
// side enters interval 2, the reporter sends the new leader the report
// that found it, then re-sends right behind it its kept reports of
// interval 1 (50–99 s), which the old leader counted there. Dated by their
// own time, those within the skew window before the close (90–99 s) were
// counted again in interval 2 (it measured 281.65 instead of 300); out of
// order behind a later report of their reporter, they are dropped as late
// (all 50). A reporter whose clock is 3 s behind, reporting in order, is
// still counted for its reports dated just before the close (the window
// stays for it).
func TestResentReportsWithoutAgeAreNotCountedTwice(t *testing.T) {
	h, a, b := twoNodesALeads(t)
	const shared, lagging = "shared protocol token", "node3"
	agelessTakeover(t, h, a, b, func(now time.Duration) {
		agelessReport(t, b, shared, "", now, 0) // the report that found b
		for s := 50 * time.Second; s < 100*time.Second; s += time.Second {
			agelessReport(t, b, shared, "", s, 0) // the kept reports of interval 1, re-sent
		}
	}, func(e *Engine, now time.Duration) {
		switch {
		case e == a && now < 100*time.Second:
			agelessReport(t, a, shared, "", now, 0)
		case e == b:
			agelessReport(t, b, shared, "", now, 0)
			agelessReport(t, b, lagging, "", now, -3*time.Second) // in order, dated before 100 s until 103 s
		}
	})
	got, late := measuredDC0(t, h, 2), b.Stats().LateReports
	t.Logf("interval 2 measured %.2f; %d late reports dropped", got, late)
	if got != 300 {
		t.Fatalf("interval 2 measured %v, want 300: interval 1's re-sent reports counted again", got)
	}
	if late != 50 {
		t.Fatalf("%d late reports, want the 50 re-sent ones (the lagging reporter's in-order reports counted)", late)
	}
}

// stepLoad is the load of dc0 at true time at in the failover tests: 100
// before 100 s (interval 1), 300 from then on (interval 2).
func stepLoad(at time.Duration) float64 {
	if at < 100*time.Second {
		return 100
	}
	return 300
}

// agelessReport sends e the report of an older reporter (no age) under
// credential cred with reporter ID id, measured at true time at (load 100
// before 100 s, 300 from then on), its clock off by skew.
func agelessReport(t *testing.T, e *Engine, cred, id string, at, skew time.Duration) {
	t.Helper()
	if err := e.ReportWorkload(protocol.WorkloadReport{DC: "dc0", At: t0.Add(at + skew), Kind: KindDP, Credential: cred,
		Reporter: id, Pairs: []protocol.PairLoad{{Entry: "dc0", Exit: "dc0", Rate: stepLoad(at)}}}); err != nil {
		t.Fatal(err)
	}
}

// agelessTakeover runs a (leading) and b until interval 2 is closed: a
// closes interval 1 at 100 s and dies at once, b takes over and gets what
// takeover sends it (true time now); every second before, a gets what
// every sends, and every second after, b does.
func agelessTakeover(t *testing.T, h *harness, a, b *Engine, takeover func(now time.Duration), every func(e *Engine, now time.Duration)) {
	t.Helper()
	var took time.Duration
	for tick := 0; h.store.State().Interval < 3; tick++ {
		now := h.clk.Now().Sub(t0)
		if now > 200*time.Second {
			t.Fatal("interval 2 never closed")
		}
		st := h.store.State()
		if took == 0 && st.Round != nil && st.Round.Round == 1 && st.Round.Done >= protocol.StepPredict {
			took = now
			a.Stop() // a closed interval 1 and dies; b leads
			if err := b.Start(); err != nil {
				t.Fatal(err)
			}
			takeover(now)
		}
		if tick%10 == 0 {
			switch {
			case took == 0:
				every(a, now)
			case now > took:
				every(b, now)
			}
		}
		h.clk.Advance(100 * time.Millisecond)
	}
	if took < 100*time.Second || took > 101*time.Second {
		t.Fatalf("took over at %v, want right after the close at 100 s", took)
	}
}

// acceptSignal is a leaderTarget that says, after each report its engine
// accepted, which report (its time) it was.
type acceptSignal struct {
	leaderTarget
	accepted chan<- time.Time
}

func (s acceptSignal) SendReportInterval(ctx context.Context, r protocol.WorkloadReport) (uint64, bool, error) {
	n, known, err := s.leaderTarget.SendReportInterval(ctx, r)
	if err == nil {
		s.accepted <- r.At
	}
	return n, known, err
}

func (s acceptSignal) SendReport(ctx context.Context, r protocol.WorkloadReport) error {
	_, _, err := s.SendReportInterval(ctx, r)
	return err
}

// signalledReporter is a reporter with cfg to engines a and b as
// acceptSignal targets, and the channel they signal on.
func signalledReporter(t *testing.T, cfg transport.ReporterConfig, a, b *Engine) (*transport.Reporter, chan time.Time) {
	t.Helper()
	accepted := make(chan time.Time, 4096)
	cfg.Targets = []transport.ReportTarget{acceptSignal{leaderTarget{a, "a"}, accepted}, acceptSignal{leaderTarget{b, "b"}, accepted}}
	rep, err := transport.NewReporter(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return rep, accepted
}

// The whole path, engines and reporter: a closes interval 1 at 100 s and
// dies before the local side enters interval 2 (the reporter still keeps
// every report a accepted); b takes over at once. The reporter re-sends to
// b only what b's interval needs: nothing (a counted every kept report in
// interval 0 or 1, closed), so interval 2 measures exactly its own load,
// 300. Without the skip all 100 were re-sent: 40 refused as implausible,
// 50 dropped as late, and those of 90–99 s (within the skew window before
// the close) counted again in interval 2, which measured 266.67.
func TestTakeoverAfterTheCloseCountsNoReportTwice(t *testing.T) {
	h := newHarness(t, 2, transportCfgNone, Hooks{}, nil)
	a, b := twoEngines(t, h, h.cfg)
	rep, accepted := signalledReporter(t, transport.ReporterConfig{Clock: h.clk, Resend: true, NoLeaderWait: time.Minute}, a, b)
	defer rep.Close()
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	// send reports the load of now and waits until a node accepted it
	// (what the reporter sends before it, re-sent reports, is accepted first)
	send := func(now time.Duration) {
		t.Helper()
		at := t0.Add(now)
		if err := rep.ReportWorkload(protocol.WorkloadReport{DC: "dc0", At: at, Kind: KindDP,
			Pairs: []protocol.PairLoad{{Entry: "dc0", Exit: "dc0", Rate: stepLoad(now)}}}); err != nil {
			t.Fatal(err)
		}
		for {
			select {
			case got := <-accepted:
				if got.Equal(at) {
					return
				}
			case <-time.After(time.Minute): // a guard only
				t.Fatalf("the report of %v was never accepted: %+v", now, rep.Stats())
			}
		}
	}
	took := time.Duration(0)
	for tick := 0; h.store.State().Interval < 3; tick++ {
		now := h.clk.Now().Sub(t0)
		if now > 200*time.Second {
			t.Fatal("interval 2 never closed")
		}
		if st := h.store.State(); took == 0 && st.Round != nil && st.Round.Round == 1 && st.Round.Done >= protocol.StepPredict {
			took = now
			a.Stop()
			if err := b.Start(); err != nil {
				t.Fatal(err)
			}
		}
		if tick%10 == 0 && (now < 100*time.Second || took > 0) {
			send(now)
		}
		h.clk.Advance(100 * time.Millisecond)
	}
	got, s := measuredDC0(t, h, 2), rep.Stats()
	t.Logf("took over at %v; interval 2 measured %.2f; reporter %+v; b late %d", took, got, s, b.Stats().LateReports)
	if got != 300 {
		t.Fatalf("interval 2 measured %v, want 300: reports a counted in interval 1 counted again", got)
	}
	if s.Resent != 0 || s.ResendSkipped != 100 {
		t.Fatalf("re-sent %d, skipped %d; want 0 and the 100 reports a accepted (0–99 s)", s.Resent, s.ResendSkipped)
	}
}

// Two reporters of an older version (no reporter ID, no age) of one DC and
// kind under one credential are one reporter to the leader: one ring, one
// order. The order rule then never counts a report twice (the other's
// reports only raise the newest time a re-send is compared with): both
// re-send their kept reports of interval 1 to the new leader, and all 100
// are dropped as late. The cost is the lagging one's (clock 3.5 s behind)
// in-order reports dated before an interval's start: once the other has
// reported in the interval they look re-sent and are dropped too (5 here:
// the one that found b and the next three, and the first after b's close
// of interval 2; the interval's average is the other reports', each a
// measurement of the whole DC); with its own ID (or credential) they are
// counted. (The lag is off the other's whole seconds: two reporters
// without an ID stamping the same time share the engine's duplicate key
// too, and the lagging one's reports would be taken for copies:
// TestEngineIDlessReportersShareTheDuplicateKey.)
func TestAgelessReportersWithoutAnIDShareOneRing(t *testing.T) {
	for _, tc := range []struct {
		name, laggingID string
		wantLate        uint64
	}{
		{"no ID", "", 100 + 5},
		{"own ID", "node3", 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, a, b := twoNodesALeads(t)
			const shared, lag = "shared protocol token", -3500 * time.Millisecond
			both := func(e *Engine, now time.Duration) {
				agelessReport(t, e, shared, "", now, 0)
				agelessReport(t, e, shared, tc.laggingID, now, lag)
			}
			agelessTakeover(t, h, a, b, func(now time.Duration) {
				for _, r := range []struct {
					id   string
					skew time.Duration
				}{{"", 0}, {tc.laggingID, lag}} {
					agelessReport(t, b, shared, r.id, now, r.skew) // the report that found b
					for s := 50 * time.Second; s < 100*time.Second; s += time.Second {
						agelessReport(t, b, shared, r.id, s, r.skew) // the kept reports of interval 1, re-sent
					}
				}
			}, both)
			got, late := measuredDC0(t, h, 2), b.Stats().LateReports
			t.Logf("interval 2 measured %.2f; %d late reports dropped", got, late)
			if got != 300 {
				t.Fatalf("interval 2 measured %v, want 300: a report counted twice", got)
			}
			if late != int(tc.wantLate) {
				t.Fatalf("%d late reports, want %d", late, tc.wantLate)
			}
		})
	}
}
