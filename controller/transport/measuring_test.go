package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/protocol"
)

// copyRec is an intervalRec that is a OnceIntake: it answers a report of
// a time it counted as a copy, counted in the interval it counted it in
// (a duplicate memory as global.Engine's, which is tested there).
type copyRec struct {
	*intervalRec
	seen map[time.Time]uint64
}

func newCopyRec(interval uint64) copyRec {
	c := copyRec{&intervalRec{}, map[time.Time]uint64{}}
	c.interval.Store(interval)
	return c
}

func (c copyRec) ReportWorkloadOnce(r protocol.WorkloadReport) (uint64, bool, error) {
	c.mu.Lock()
	notLeader, n, dup := c.notLeader, uint64(0), false
	if !notLeader {
		n, dup = c.seen[r.At]
	}
	c.mu.Unlock()
	if notLeader {
		return 0, false, ErrNotLeader
	}
	if dup {
		return n, true, nil
	}
	n, err := c.ReportWorkloadInterval(r)
	if err == nil {
		c.mu.Lock()
		c.seen[r.At] = n
		c.mu.Unlock()
	}
	return n, false, err
}

// countingRec is a copyRec that also names the interval it measures (a
// CountingIntake, as global.Engine).
type countingRec struct{ copyRec }

func (c countingRec) ReportWorkloadCounted(r protocol.WorkloadReport) (Counted, error) {
	n, dup, err := c.ReportWorkloadOnce(r)
	if err != nil {
		return Counted{}, err
	}
	return Counted{Interval: n, Measuring: c.interval.Load(), Known: true, Duplicate: dup}, nil
}

// The handler answers a CountingIntake's copy with the interval its
// original was counted in ("interval", what a reporter of session 13
// books) and the one measured now ("measuring"); an HTTP target reads
// both, and an older node's answer without "measuring" as measuring the
// interval it names. An accepted report's answer names "measuring" too
// (session 15; session 14 named it with a copy only).
func TestWorkloadHandlerAnswersTheIntervalMeasuredWithACopy(t *testing.T) {
	for _, tc := range []struct {
		name          string
		counting      bool
		accepted      string
		answer        string
		wantMeasuring uint64
	}{
		{"a node that names it", true, `{"accepted":true,"interval":3,"measuring":3}`, `{"interval":3,"duplicate":true,"measuring":5}`, 5},
		{"an older node", false, `{"accepted":true,"interval":3}`, `{"interval":3,"duplicate":true}`, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCopyRec(3)
			var in WorkloadIntake = c
			if tc.counting {
				in = countingRec{c}
			}
			h := mustHandler(t, in)
			if a := strings.TrimSpace(postReport(t, h, wrep("tokyo", 1, 10))); a != tc.accepted {
				t.Fatalf("a report answered %s, want %s", a, tc.accepted)
			}
			c.interval.Store(5)
			if a := strings.TrimSpace(postReport(t, h, wrep("tokyo", 1, 10))); a != tc.answer {
				t.Fatalf("a copy answered %s, want %s", a, tc.answer)
			}
			got, err := servedTarget(t, h).SendReportCounted(context.Background(), wrep("tokyo", 1, 10))
			if want := (Counted{Interval: 3, Measuring: tc.wantMeasuring, Known: true, Duplicate: true}); err != nil || got != want {
				t.Fatalf("the target read %+v, %v; want %+v", got, err, want)
			}
		})
	}
	// a reporter of session 13 decodes the answer into its own struct
	// (json.Unmarshal, unknown fields ignored) and books "interval"
	var old struct {
		Accepted  bool    `json:"accepted,omitempty"`
		Interval  *uint64 `json:"interval,omitempty"`
		Duplicate bool    `json:"duplicate,omitempty"`
	}
	if err := json.Unmarshal([]byte(`{"duplicate":true,"interval":3,"measuring":5}`), &old); err != nil || old.Interval == nil ||
		*old.Interval != 3 || !old.Duplicate {
		t.Fatalf("an older reporter reads %+v, %v; want the duplicate of interval 3", old, err)
	}
}

// revR's LOW (session 12): a counts report 0 in interval 1 and loses the
// lead; b counts report 1 in interval 1 (so 0 is queued again for b) and
// loses it before the copy of 0 reaches it; b closes interval 1 (its
// averages hold 1, not 0) and a leads again in interval 2. The copy of 0
// lands at a: a duplicate, counted in 1. a measures 2, so report 1, in
// b's closed interval 1, must not be re-sent to a, which would count it
// again in 2 (within its skew window). The reporter books 0 in 1 and
// compares report 1's interval with the one a measures ("measuring").
// Before, it compared with the copy's counted-in 1 and re-sent 1; an older
// a that does not name the interval measured still gets it (as before).
//
// "a's close in flight": a counted report 0 in 2, after its close of 1 in
// memory, and leads again while the log measures 1 (its close not
// committed; global.Engine answers the log's interval then). The copy of 0
// is answered counted in 2, measuring 1: report 1, b's of interval 1, is
// re-sent to a (b never closed 1: skipped, it would be counted nowhere).
// The reporter takes "measuring" as it is, below the copy's interval too
// (clamping it up to the interval would skip report 1).
func TestReporterSkipsWithTheIntervalMeasuredNotTheCopys(t *testing.T) {
	for _, tc := range []struct {
		name       string
		counting   bool
		aIn, aThen uint64 // the interval a counts report 0 in, the one it measures when it leads again
		atA        []int  // the report seconds a counts, in order
		skipped    uint64
		copies     uint64
	}{
		{"a names the interval it measures", true, 1, 2, []int{0}, 1, 1},
		{"an older a", false, 1, 2, []int{0, 1}, 0, 0},
		{"a's close in flight", true, 2, 1, []int{0, 1}, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ca, rb := newCopyRec(tc.aIn), &intervalRec{}
			ra := ca.intervalRec
			rb.interval.Store(1)
			rb.setLeader(false)
			var ina WorkloadIntake = ca
			if tc.counting {
				ina = countingRec{ca}
			}
			targets := []ReportTarget{servedTarget(t, mustHandler(t, ina)), servedTarget(t, mustHandler(t, handsOver{rb, 1, ra}))}
			r, send := resendingReporter(t, targets)
			send(0, 1) // a counts it in 1
			ra.setLeader(false)
			rb.setLeader(true)
			ra.interval.Store(tc.aThen) // when a leads again (b closed interval 1, or a's close is in flight)
			// b counts report 1 and hands the lead back to a; the copy of
			// 0 queued for b lands at a
			send(1, 3) // report 1, the copy of 0 and, queued with it, what it re-sends
			var got []int
			for _, rep := range ra.reports() {
				got = append(got, int(rep.At.Sub(t0)/time.Second))
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.atA) {
				t.Fatalf("a counted the reports of seconds %v, want %v", got, tc.atA)
			}
			s := r.Stats()
			if s.ResendSkipped != tc.skipped {
				t.Errorf("ResendSkipped %d, want %d", s.ResendSkipped, tc.skipped)
			}
			if s.CopiesOfClosed != tc.copies {
				t.Errorf("CopiesOfClosed %d, want %d (the copy of 0, counted in %d while a measures %d)", s.CopiesOfClosed, tc.copies, tc.aIn, tc.aThen)
			}
		})
	}
}

// resendingReporter is a reporter with Resend to targets (closed when the
// test ends) and send, which reports the second i of tokyo and waits until
// sent reports in all were sent and nothing is queued.
func resendingReporter(t *testing.T, targets []ReportTarget) (*Reporter, func(i int, sent uint64)) {
	t.Helper()
	r, err := NewReporter(ReporterConfig{Targets: targets, Clock: clock.NewVirtual(t0), Resend: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r, func(i int, sent uint64) {
		t.Helper()
		if err := r.ReportWorkload(wrep("tokyo", i, float64(i))); err != nil {
			t.Fatal(err)
		}
		waitFor(t, fmt.Sprintf("report %d and what it re-sends sent", i), func() bool {
			s := r.Stats()
			return s.Sent >= sent && s.QueueLen == 0
		})
	}
}

// intervalOnly is a target that names the interval it counted a report in
// and nothing more (an IntervalTarget that is not a CountedTarget: code
// older than Counted).
type intervalOnly struct{ IntervalTarget }

// A target that does not name the interval it measures (an IntervalTarget
// that is not a CountedTarget; an IntakeTarget whose intake is a
// OnceIntake that is not a CountingIntake) has the interval it counted a
// report in stand in for it (revD LOW-1): a counts report 0 in interval
// 1 and loses the lead; b, measuring 2, counts report 1 there (a fresh
// report), so report 0, in interval 1 closed since, is not re-sent to b.
// Had the measured interval been left 0, the skip rule would never skip
// and b would count 0 again in 2.
func TestReporterSkipsWithAnOlderTargetsInterval(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    func(rb *intervalRec) ReportTarget
	}{
		{"an IntervalTarget that is not a CountedTarget", func(rb *intervalRec) ReportTarget {
			return intervalOnly{IntakeTarget{In: rb, Name: "b"}}
		}},
		{"an IntakeTarget of a OnceIntake that is not a CountingIntake", func(rb *intervalRec) ReportTarget {
			return IntakeTarget{In: copyRec{rb, map[time.Time]uint64{}}, Name: "b"}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ra, rb := &intervalRec{}, &intervalRec{}
			ra.interval.Store(1)
			rb.interval.Store(2)
			rb.setLeader(false)
			r, send := resendingReporter(t, []ReportTarget{IntakeTarget{In: ra, Name: "a"}, tc.b(rb)})
			send(0, 1)
			ra.setLeader(false)
			rb.setLeader(true)
			send(1, 2)
			var got []int
			for _, rep := range rb.reports() {
				got = append(got, int(rep.At.Sub(t0)/time.Second))
			}
			if fmt.Sprint(got) != "[1]" {
				t.Fatalf("b counted the reports of seconds %v, want [1] (0 was counted in interval 1, closed)", got)
			}
			if s := r.Stats(); s.ResendSkipped != 1 {
				t.Errorf("ResendSkipped %d, want 1", s.ResendSkipped)
			}
		})
	}
}

// lockProbe is a slog handler that, on each record, checks that the
// reporter's other callers are not held up meanwhile (its Stats, which
// takes the reporter's lock, returns).
type lockProbe struct {
	r    *Reporter
	mu   sync.Mutex
	held int // records logged while Stats could not return
	n    int
}

func (h *lockProbe) Enabled(context.Context, slog.Level) bool { return true }
func (h *lockProbe) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *lockProbe) WithGroup(string) slog.Handler            { return h }

func (h *lockProbe) Handle(context.Context, slog.Record) error {
	done := make(chan struct{})
	go func() {
		h.r.Stats()
		close(done)
	}()
	held := false
	select {
	case <-done:
	case <-time.After(10 * time.Second): // a deadlock guard: Stats waits for the lock the logging caller holds
		held = true
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.n++
	if held {
		h.held++
	}
	return nil
}

// The reporter logs a copy of a closed interval's report without holding
// its lock (revD NIT-4): a slow log handler (Debug on) must not hold up
// ReportWorkload, NewInterval or Stats.
func TestReporterLogsCopiesOutsideItsLock(t *testing.T) {
	c := newCopyRec(1)
	probe := &lockProbe{}
	r, err := NewReporter(ReporterConfig{Targets: []ReportTarget{IntakeTarget{In: countingRec{c}, Name: "a"}},
		Clock: clock.NewVirtual(t0), Log: slog.New(probe)})
	if err != nil {
		t.Fatal(err)
	}
	probe.r = r
	t.Cleanup(r.Close)
	if err := r.ReportWorkload(wrep("tokyo", 0, 1)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the report sent", func() bool { return r.Stats().Sent == 1 })
	c.interval.Store(2)
	if err := r.ReportWorkload(wrep("tokyo", 0, 1)); err != nil { // a copy: counted in 1, a measures 2
		t.Fatal(err)
	}
	waitFor(t, "the copy logged", func() bool {
		probe.mu.Lock()
		defer probe.mu.Unlock()
		return probe.n > 0
	})
	probe.mu.Lock()
	defer probe.mu.Unlock()
	if probe.n != 1 || probe.held != 0 {
		t.Fatalf("%d records logged, %d of them holding the reporter's lock; want 1, none holding it", probe.n, probe.held)
	}
}

// closingRec is a countingRec whose engine's close of interval measuring
// is in flight: it counts reports in the next interval (its intervalRec's)
// and names the log's as measured (global.Engine's answer then).
type closingRec struct {
	countingRec
	measuring uint64
}

func (c closingRec) ReportWorkloadCounted(r protocol.WorkloadReport) (Counted, error) {
	got, err := c.countingRec.ReportWorkloadCounted(r)
	if err == nil {
		got.Measuring = c.measuring
	}
	return got, err
}

// A fresh report as the first contact after a flap (dupfix's left item):
// b counted report 0 in interval 1 during a flap and lost the lead back to
// a, whose close of 1 is in flight (it counts in 2, the log measures 1).
// a's first answer is an acceptance, not a copy: it names "measuring" 1
// too (session 15), so report 0, which b never closed, is re-sent to a.
// Before, an accepted answer named no "measuring", the reporter took the
// counted-in 2 for it and skipped report 0: counted nowhere.
func TestReporterSkipsWithTheIntervalMeasuredOfAFreshReport(t *testing.T) {
	ca, rb := newCopyRec(2), &intervalRec{}
	ca.setLeader(false)
	rb.interval.Store(1)
	targets := []ReportTarget{servedTarget(t, mustHandler(t, closingRec{countingRec{ca}, 1})), servedTarget(t, mustHandler(t, rb))}
	r, send := resendingReporter(t, targets)
	send(0, 1) // b counts it in 1
	rb.setLeader(false)
	ca.setLeader(true)
	send(1, 2) // a counts report 1 in 2, measuring 1, and the re-sent 0 (queued behind it: the wait covers it)
	var got []int
	for _, rep := range ca.reports() {
		got = append(got, int(rep.At.Sub(t0)/time.Second))
	}
	if fmt.Sprint(got) != "[1 0]" {
		t.Fatalf("a counted the reports of seconds %v, want [1 0] (0 is b's of interval 1, which the log still measures)", got)
	}
	if s := r.Stats(); s.ResendSkipped != 0 || s.Resent != 1 {
		t.Errorf("re-sent %d, skipped %d; want 1, 0", s.Resent, s.ResendSkipped)
	}
}

// countedAs is a CountingIntake that answers every report with c.
type countedAs struct {
	*intakeRec
	c Counted
}

func (i countedAs) ReportWorkloadInterval(protocol.WorkloadReport) (uint64, error) {
	return i.c.Interval, nil
}
func (i countedAs) ReportWorkloadOnce(protocol.WorkloadReport) (uint64, bool, error) {
	return i.c.Interval, i.c.Duplicate, nil
}
func (i countedAs) ReportWorkloadCounted(protocol.WorkloadReport) (Counted, error) { return i.c, nil }

// The handler answers the engine's ID and, with a copy of a dropped
// intake's report, the closer's (session 15); the target reads them, and
// a reporter of session 14 (json.Unmarshal into its own struct, unknown
// fields ignored) books the interval and reads "measuring" as before.
func TestWorkloadHandlerNamesTheEngineAndTheCloser(t *testing.T) {
	c := Counted{Interval: 0, Measuring: 1, Known: true, Duplicate: true, Engine: "e1", ClosedBy: "e2"}
	h := mustHandler(t, countedAs{&intakeRec{}, c})
	const want = `{"interval":0,"duplicate":true,"measuring":1,"engine":"e1","closedBy":"e2"}`
	a := strings.TrimSpace(postReport(t, h, wrep("tokyo", 1, 10)))
	if a != want {
		t.Fatalf("a copy of a dropped intake's report answered %s, want %s", a, want)
	}
	if got, err := servedTarget(t, h).SendReportCounted(context.Background(), wrep("tokyo", 1, 10)); err != nil || got != c {
		t.Fatalf("the target read %+v, %v; want %+v", got, err, c)
	}
	var s14 struct {
		Accepted  bool    `json:"accepted,omitempty"`
		Interval  *uint64 `json:"interval,omitempty"`
		Duplicate bool    `json:"duplicate,omitempty"`
		Measuring *uint64 `json:"measuring,omitempty"`
		NotLeader bool    `json:"notLeader,omitempty"`
		Error     string  `json:"error,omitempty"`
	}
	if err := json.Unmarshal([]byte(a), &s14); err != nil || s14.Interval == nil || *s14.Interval != 0 || !s14.Duplicate ||
		s14.Measuring == nil || *s14.Measuring != 1 {
		t.Fatalf("a session-14 reporter reads %+v, %v; want the duplicate of interval 0, measuring 1", s14, err)
	}
}

// s14WorkloadReport is a session-14 global node's report: reporter and
// ageMs, no countedBy.
type s14WorkloadReport struct {
	oldWorkloadReport
	Reporter string  `json:"reporter,omitempty"`
	AgeMs    float64 `json:"ageMs,omitempty"`
}

// A global node of session 14 (or older) refuses a copy's countedBy
// (strict decoding): the target sends the copy again without it — with
// reporter and ageMs to a session-14 node, which knows them (no legacy
// mode), without all three to an older one (legacy mode, as before).
func TestHTTPReportTargetOlderNodeRefusesCountedBy(t *testing.T) {
	for _, tc := range []struct {
		name   string
		decode func([]byte) error
		legacy bool
	}{
		{"session 14", func(b []byte) error {
			var rep s14WorkloadReport
			return DecodeStrict(bytes.NewReader(b), &rep, "workload report body")
		}, false},
		{"session 8", func(b []byte) error {
			var rep oldWorkloadReport
			return DecodeStrict(bytes.NewReader(b), &rep, "workload report body")
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := uint64(3)
			srv, posts := olderNode(t, func(b []byte) (workloadAnswer, error) {
				return workloadAnswer{Accepted: true, Interval: &n}, tc.decode(b)
			})
			tg, err := NewHTTPReportTarget(srv.URL, wtoken, srv.Client())
			if err != nil {
				t.Fatal(err)
			}
			rep := withAge(withReporter(wrep("tokyo", 1, 1), "n1"), 20)
			rep.CountedBy = &protocol.CountedBy{Engine: "e1", Interval: 3}
			if c, err := tg.SendReportCounted(context.Background(), rep); err != nil || !c.Known || c.Interval != 3 {
				t.Fatalf("a copy with countedBy to an older node: %+v, %v; want accepted in 3", c, err)
			}
			p := posts()
			last := p[len(p)-1]
			if !strings.Contains(p[0], `"countedBy":{"engine":"e1","interval":3}`) || strings.Contains(last, "countedBy") ||
				strings.Contains(last, `"reporter":"n1"`) != !tc.legacy || tg.Legacy() != tc.legacy {
				t.Fatalf("posts %q, legacy %v; want the first with countedBy, the last without (with reporter: %v)", p, tg.Legacy(), !tc.legacy)
			}
		})
	}
}
