package global

import (
	"fmt"
	"math"
	"testing"
	"time"

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
// "b redoes the close and a leads after interval 1's end": as the first,
// with B taking interval 1's reports until 99 s and A leading from 101 s
// (after interval 1's end at 100 s). A, with its intake dropped, waits TakeoverWait for the
// reports the reporter re-sends to it (B's of interval 1) before it
// closes interval 1, as any new leader does (an engine that kept its
// intake does not wait: it would close the interval at once, empty).
func TestRegainedLeadDropsTheIntakeOfALostClose(t *testing.T) {
	for _, tc := range []struct {
		name   string
		lost   bool
		bUntil time.Duration // b leads until then (0: until it finished round 0)
	}{
		{"b redoes the close", true, 0},
		{"a's close is committed", false, 0},
		{"b redoes the close and a leads after interval 1's end", true, 99 * time.Second},
	} {
		lost := tc.lost
		t.Run(tc.name, func(t *testing.T) {
			var rep *transport.Reporter
			hooks := Hooks{StepCommitted: func(_ uint64, step protocol.Step) {
				if step == protocol.StepEnter { // the local side enters the new interval
					rep.NewInterval()
				}
			}}
			h := newHarness(t, 2, transportCfgNone, hooks, nil)
			ls := &lossyStore{MemStore: h.store, hold: isPredictOf(0), held: make(chan chan error)}
			a, err := New(h.cfg, Deps{Clock: h.clk, Transport: h.mem, Forecaster: newAR1(), Store: ls, Hooks: hooks})
			if err != nil {
				t.Fatal(err)
			}
			b, err := New(h.cfg, Deps{Clock: h.clk, Transport: h.mem, Forecaster: newAR1(), Store: h.store, Hooks: hooks})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Stop()
			defer b.Stop()
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
			for i := range 50 { // interval 0: 0–49 s
				if i > 0 {
					h.clk.Advance(time.Second)
				}
				report(100, 1)
			}
			h.clk.Advance(999 * time.Millisecond)
			clockDone := goAdvance(h, time.Millisecond) // round 0 starts at 50 s; a closes interval 0
			var verdict chan error
			select {
			case verdict = <-ls.held:
			case <-time.After(10 * time.Second): // deadlock guard
				t.Fatal("a's predict step was never applied")
			}
			r := protocol.WorkloadReport{DC: "dc0", At: h.clk.Now(), Kind: KindDP, Reporter: "node1",
				Pairs: []protocol.PairLoad{{Entry: "dc0", Exit: "dc0", Rate: 400}}}
			report(400, 1) // R: a counts it in interval 1
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
			want0, want1, sum1, n1 := 100.0, 100.0, 400.0, 1.0
			if lost {
				h.clk.Advance(time.Second)
				report(100, 1+50+1) // b: its report, then the re-sent 0–49 s and R
				h.runRounds(t, 1)   // b closes interval 0 at 52 s
				want0, sum1, n1 = (51*100+400)/52.0, 0, 0
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
			wantIn := uint64(1)
			if lost {
				wantIn = 0
			}
			if n, dup, err := a.ReportWorkloadOnce(r); err != nil || !dup || n != wantIn {
				t.Errorf("a copy of R to a leading again: interval %d, duplicate %v, %v; want the duplicate of interval %d", n, dup, err, wantIn)
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
			if got := measuredDC0(t, h, 0); math.Abs(got-want0) > 1e-9 {
				t.Fatalf("interval 0 measured %v, want %v", got, want0)
			}
			if got := measuredDC0(t, h, 1); math.Abs(got-want1) > 1e-9 {
				t.Fatalf("interval 1 measured %v, want %v (with R as well: %v)", got, want1, (sum1+400)/(n1+1))
			}
		})
	}
}
