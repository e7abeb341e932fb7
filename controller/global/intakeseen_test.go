package global

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/controller/protocol"
	"github.com/ims-orch/ims-orch/controller/transport"
)

// handsLead is an acceptSignal target whose engine, right after it
// accepted the report dated at, hands the lead to next (stops, next
// starts), as a raft leader that steps down at once.
type handsLead struct {
	acceptSignal
	at   time.Time
	next *Engine // nil: keeps the lead
	t    *testing.T
}

func (h handsLead) SendReportInterval(ctx context.Context, r protocol.WorkloadReport) (uint64, bool, error) {
	n, known, err := h.acceptSignal.SendReportInterval(ctx, r)
	if err == nil && h.next != nil && r.At.Equal(h.at) {
		h.e.Stop()
		if err := h.next.Start(); err != nil {
			h.t.Errorf("handing the lead on: %v", err)
		}
	}
	return n, known, err
}

func (h handsLead) SendReport(ctx context.Context, r protocol.WorkloadReport) error {
	_, _, err := h.SendReportInterval(ctx, r)
	return err
}

// dc0Counted is what e's intake holds of dc0's DP reports of the interval
// it measures: how many, and their dc0→dc0 average (what its close would
// commit).
func dc0Counted(e *Engine) (int, float64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	avg, _ := e.in.averages()
	return e.in.reports[KindDP+"/dc0"], avg[SeriesKey(KindDP, "dc0", "dc0")]
}

// A leader flap A→B→A before a re-sent copy is sent, with three engines
// in process (the daemon's IntakeTarget, no HTTP handler between): a
// counts n reports (one a second, as the daemon's DP pump and meter send;
// rate 100); b takes the next (rate 200: the reporter queues a's n again
// for b) and at once hands the lead back to a, within the interval; the
// copies queued for b are tried at b (not the leader), c (never led),
// then a, which still holds a's reports in its intake. a counts each once
// (the engine's duplicate memory), then gets b's report re-sent and
// counts it. Before, only the HTTP handler had a memory, and a counted
// the copy twice (n = 1: 3 reports, average (100+100+200)/3 = 133.3); and
// while a key kept its last 64 times, from n = 65 on the first copies
// were not known, each one counted pushed out the time the next copy
// needed, and every copy was counted twice (n = 70: 141 reports held, no
// copy recognised). When b keeps the lead, b counts its report and the
// re-sent n (a copy of a report another engine counted is no duplicate
// at b).
func TestEngineCountsAReportOnceAcrossALeaderFlap(t *testing.T) {
	for _, tc := range []struct {
		name string
		flap bool
		n    int // reports a counts before the flap
	}{
		{"the lead goes back to a", true, 1},
		{"b keeps the lead", false, 1},
		{"the lead goes back to a after 70 reports", true, 70},
		{"the lead goes back to a after 200 reports", true, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := tc.n
			// what each intake holds and its dc0→dc0 average, the copies
			// a recognises and the acceptances the reporter gets (copies
			// included)
			aCounts, aAvg, bCount, bAvg := n+1, float64(100*n+200)/float64(n+1), 1, 200.0
			aDup, accepts := n, 2*n+2
			if !tc.flap {
				aCounts, aAvg, bCount, bAvg = n, 100, n+1, float64(100*n+200)/float64(n+1)
				aDup, accepts = 0, 2*n+1
			}
			h := newHarness(t, 2, transportCfgNone, Hooks{}, nil)
			cfg := h.cfg
			cfg.Interval = 300 * time.Second // holds the 200 reports
			a, b, c := engineOn(t, h, cfg, nil), engineOn(t, h, cfg, nil), engineOn(t, h, cfg, nil)
			if err := a.Start(); err != nil {
				t.Fatal(err)
			}
			defer a.Stop()
			defer b.Stop()
			accepted := make(chan time.Time, accepts+16)
			last := h.clk.Now().Add(time.Duration(n) * time.Second) // b's report
			bTarget := handsLead{acceptSignal: acceptSignal{leaderTarget{b, "b"}, accepted}, at: last, t: t}
			if tc.flap {
				bTarget.next = a
			}
			rep, err := transport.NewReporter(transport.ReporterConfig{Clock: h.clk, Resend: true, ID: "node1", QueueCap: 4096,
				Targets: []transport.ReportTarget{acceptSignal{leaderTarget{a, "a"}, accepted}, bTarget,
					acceptSignal{leaderTarget{c, "c"}, accepted}}})
			if err != nil {
				t.Fatal(err)
			}
			defer rep.Close()
			report := func(rate float64) {
				t.Helper()
				reportDC0(t, rep, h.clk.Now(), rate)
			}
			wait := func(k int) {
				t.Helper()
				for range k {
					select {
					case <-accepted:
					case <-time.After(time.Minute): // a guard only
						t.Fatalf("fewer acceptances than %d: %+v", accepts, rep.Stats())
					}
				}
			}
			for range n {
				report(100)
				wait(1)
				h.clk.Advance(time.Second)
			}
			a.Stop()
			if err := b.Start(); err != nil {
				t.Fatal(err)
			}
			report(200)
			wait(accepts - n)
			rep.Close() // the sender is done: what it sent was signalled
			if got, avg := dc0Counted(a); got != aCounts || avg != aAvg {
				t.Fatalf("a holds %d reports of dc0, average %v; want %d, %v (each report once)", got, avg, aCounts, aAvg)
			}
			if got, avg := dc0Counted(b); got != bCount || avg != bAvg {
				t.Fatalf("b holds %d reports of dc0, average %v; want %d, %v", got, avg, bCount, bAvg)
			}
			if d := a.Stats().DuplicateReports; d != aDup {
				t.Fatalf("a recognised %d copies, want %d", d, aDup)
			}
			if k := len(accepted); k != 0 {
				t.Fatalf("%d acceptances more than %d", k, accepts)
			}
		})
	}
}

// A holder of the shared token making reporter IDs up (delay reports:
// their IDs are not bounded per credential) cannot make the engine forget
// another credential's key within one interval: a copy of the node's own
// in-process report, or of a reporter credential's report
// (role.reportersFile), is still a duplicate. Before, one memory held the
// node's keys and the shared token's, and 4 096 made-up keys pushed the
// node's out; then one held every credential's over HTTP, and they pushed
// a reporter credential's out.
func TestEngineKeepsOtherCredentialsKeysFromMadeUpIDs(t *testing.T) {
	for _, cred := range []string{"", "node2"} {
		name := "in process"
		if cred != "" {
			name = "a reporter credential"
		}
		t.Run(name, func(t *testing.T) {
			h, e, _ := twoNodesALeads(t)
			defer e.Stop()
			h.clk.Advance(5 * time.Second)
			own := dc0Report(h.clk.Now(), "node1", 100)
			if cred != "" {
				own.Reporter, own.Credential = cred, cred // the handler's: its name is its ID
			}
			if _, dup, err := e.ReportWorkloadOnce(own); err != nil || dup {
				t.Fatalf("the report: duplicate %v, %v", dup, err)
			}
			for i := range maxSeenKeys {
				r := protocol.WorkloadReport{DC: "dc0", At: h.clk.Now(), Kind: KindDelay, Reporter: fmt.Sprintf("x%d", i),
					Credential: transport.SharedCredential, DelaysMs: map[string]float64{"dc1": 1}}
				if _, _, err := e.ReportWorkloadOnce(r); err != nil {
					t.Fatalf("delay report %d: %v", i, err)
				}
			}
			if _, dup, err := e.ReportWorkloadOnce(own); err != nil || !dup {
				t.Fatalf("its copy after %d made-up keys: duplicate %v, %v; want a duplicate", maxSeenKeys, dup, err)
			}
			if n, _ := dc0Counted(e); n != 1 {
				t.Fatalf("%d reports of dc0 counted, want 1", n)
			}
		})
	}
}

var _ transport.CountingIntake = (*Engine)(nil)

// dc0Report is a DP report of dc0 dated at, by reporter id (none: "").
func dc0Report(at time.Time, id string, rate float64) protocol.WorkloadReport {
	return protocol.WorkloadReport{DC: "dc0", At: at, Kind: KindDP, Reporter: id,
		Pairs: []protocol.PairLoad{{Entry: "dc0", Exit: "dc0", Rate: rate}}}
}

// postWorkload posts rep to a workload handler's server with the shared
// token and returns the 200 answer's body.
func postWorkload(t *testing.T, srv *httptest.Server, rep protocol.WorkloadReport) string {
	t.Helper()
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, srv.URL+transport.WorkloadPath, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+seenToken)
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("%s at %v: %d %s", rep.Reporter, rep.At.Sub(t0), res.StatusCode, body)
	}
	return string(body)
}

const seenToken = "workload-token-0123456789"

// intakeReports is how many reports e's intake holds of the interval it
// measures, of every DC and kind.
func intakeReports(e *Engine) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, k := range e.in.reports {
		n += k
	}
	return n
}

// The engine remembers only the reports it counted: a report refused as
// implausible (ahead of the leader's clock), refused as a ninth reporter
// under one credential, or dropped as late is judged again when it comes
// again (the implausible one counted once it is plausible; the others
// refused and late again), never taken for a copy.
func TestEngineRemembersOnlyCountedReports(t *testing.T) {
	h, e, _ := twoNodesALeads(t)
	defer e.Stop()
	h.clk.Advance(5 * time.Second)
	ahead := dc0Report(h.clk.Now().Add(e.cfg.MaxReportSkew+time.Second), "node1", 10)
	if _, _, err := e.ReportWorkloadOnce(ahead); err == nil {
		t.Fatal("a report ahead of the skew window accepted")
	}
	h.clk.Advance(2 * time.Second)
	if n, dup, err := e.ReportWorkloadOnce(ahead); err != nil || dup {
		t.Fatalf("the same report, plausible now: interval %d, duplicate %v, %v; want counted", n, dup, err)
	}
	var ninth protocol.WorkloadReport
	for i := range maxReportersPerCredential + 1 {
		ninth = dc0Report(h.clk.Now(), fmt.Sprintf("r%d", i), 10)
		ninth.Credential = transport.SharedCredential
		_, _, err := e.ReportWorkloadOnce(ninth)
		if (err != nil) != (i == maxReportersPerCredential) {
			t.Fatalf("reporter %d: %v", i+1, err)
		}
	}
	if _, dup, err := e.ReportWorkloadOnce(ninth); !errors.Is(err, errTooManyReporters) || dup {
		t.Fatalf("the ninth reporter's report again: duplicate %v, %v; want refused again", dup, err)
	}
	h.runRounds(t, 1) // the interval starts at 50 s
	late := dc0Report(t0.Add(35*time.Second), "node1", 10)
	for range 2 {
		if _, dup, err := e.ReportWorkloadOnce(late); err != nil || dup {
			t.Fatalf("a report of 35 s: duplicate %v, %v; want late", dup, err)
		}
	}
	if s := e.Stats(); s.LateReports != 2 || s.DuplicateReports != 0 {
		t.Fatalf("stats %+v: want 2 late, no duplicate", s)
	}
}

// A copy of a report the engine counted (the same credential, reporter,
// DC, kind and time) is counted no more, on both paths into the engine:
// in process and over HTTP (the handler answers the engine's
// {"duplicate":true} with the interval the report was counted in; it has
// no memory of its own since the engine's). Each part of the key counts:
// a report of an earlier time (a clock stepped back) is no copy, nor
// another reporter's of the same time, nor the same reporter's of another
// DC or kind (a node sends one DP report per DC it runs, all of one
// time), nor the same ID's under another credential; a copy with another
// age is one. Reports without a time (in-process sources of tests), and
// in-process ones without a reporter ID (the node's own sources, no
// reporter between: the simulator, a single-node daemon), are never
// copies. A copy is known before its time is judged: one older than an
// interval and the skew window is the duplicate, not an implausible
// report.
func TestEngineCountsACopyOnce(t *testing.T) {
	for _, overHTTP := range []bool{false, true} {
		name := "in process"
		if overHTTP {
			name = "over HTTP"
		}
		t.Run(name, func(t *testing.T) {
			h, e, _ := twoNodesALeads(t)
			defer e.Stop()
			h.clk.Advance(5 * time.Second)
			var srv *httptest.Server
			if overHTTP {
				wh, err := transport.NewWorkloadHandler(e, seenToken)
				if err != nil {
					t.Fatal(err)
				}
				srv = httptest.NewServer(wh)
				defer srv.Close()
			}
			// send gives rep to e and returns whether it was a copy and
			// the interval named
			send := func(rep protocol.WorkloadReport) (bool, uint64) {
				t.Helper()
				if !overHTTP {
					n, dup, err := e.ReportWorkloadOnce(rep)
					if err != nil {
						t.Fatal(err)
					}
					return dup, n
				}
				var a struct {
					Accepted, Duplicate bool
					Interval            *uint64
				}
				if err := json.Unmarshal([]byte(postWorkload(t, srv, rep)), &a); err != nil || a.Interval == nil || a.Accepted == a.Duplicate {
					t.Fatalf("answer %+v (%v): want accepted or duplicate, with the interval", a, err)
				}
				return a.Duplicate, *a.Interval
			}
			sec := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
			aged := dc0Report(sec(2), "node2", 10)
			aged.AgeMs = 3000
			ofDC1 := dc0Report(sec(3), "node1", 10)
			ofDC1.DC, ofDC1.Pairs = "dc1", []protocol.PairLoad{{Entry: "dc1", Exit: "dc1", Rate: 10}}
			ofCP := dc0Report(sec(3), "node1", 10)
			ofCP.Kind = KindCP
			steps := []struct {
				what string
				rep  protocol.WorkloadReport
				dup  bool
			}{
				{"a report", dc0Report(sec(3), "node1", 10), false},
				{"the same report again", dc0Report(sec(3), "node1", 10), true},
				{"an older report (the reporter's clock stepped back)", dc0Report(sec(2), "node1", 10), false},
				{"a copy of it", dc0Report(sec(2), "node1", 10), true},
				{"another reporter's report of the same time", dc0Report(sec(2), "node2", 10), false},
				{"a copy of it, with an age", aged, true},
				{"the first report's reporter and time, of another DC", ofDC1, false},
				{"a copy of it", ofDC1, true},
				{"the first report's reporter, DC and time, of another kind", ofCP, false},
			}
			if !overHTTP {
				other := dc0Report(sec(2), "node2", 10)
				other.Credential = transport.SharedCredential
				own := other // a reporter credential's (role.reportersFile)
				own.Credential = "node2"
				steps = append(steps, []struct {
					what string
					rep  protocol.WorkloadReport
					dup  bool
				}{
					{"the same ID's report under another credential", other, false},
					{"and under a third", own, false},
					{"a copy of it", own, true},
					{"a report without a time", dc0Report(time.Time{}, "node1", 10), false},
					{"another without a time", dc0Report(time.Time{}, "node1", 10), false},
					{"an in-process report without an ID", dc0Report(sec(3), "", 10), false},
					{"another of that time", dc0Report(sec(3), "", 10), false},
				}...)
			}
			counted := 0
			for _, s := range steps {
				dup, n := send(s.rep)
				if dup != s.dup || n != 0 {
					t.Fatalf("%s: duplicate %v in interval %d, want %v in 0", s.what, dup, n, s.dup)
				}
				if !dup {
					counted++
				}
			}
			if n := intakeReports(e); n != counted {
				t.Fatalf("the intake holds %d reports, want %d", n, counted)
			}
			if s, dups := e.Stats(), len(steps)-counted; s.DuplicateReports != dups || s.LateReports != 0 {
				t.Fatalf("stats %+v: want %d duplicates, none late", s, dups)
			}
			// a copy is known before its time is judged: one more than an
			// interval and the skew window old is the report counted, a
			// duplicate, not an implausible report (422)
			h.clk.Advance(e.cfg.Interval + e.cfg.MaxReportSkew)
			if dup, n := send(dc0Report(sec(3), "node1", 10)); !dup || n != 0 {
				t.Fatalf("an old copy of the first report: duplicate %v in interval %d, want true in 0", dup, n)
			}
		})
	}
}

// The memory outlives the engine's terms and interval closes: a counted
// report of a closed interval stays counted. a counts report R0 (no age,
// an older reporter, dated 45 s) in interval 0 and closes it at 50 s; a
// copy of R0 (within the skew window before a's close, and a's new intake
// has no ring of its reporter) is a duplicate of interval 0, not a report
// of interval 1. a counts R (dated 95 s) in interval 1 and loses the lead; b closes
// interval 1 at 100 s; a leads again in interval 2 and gets a copy of R
// (the older reporter re-sends its kept reports to a new leader). R lies
// within the skew window before interval 2's committed start, and a's new
// intake has no ring of R's reporter to find it out of order, so only the
// memory keeps it from being counted in interval 2 as well: it is a
// duplicate of interval 1. The memory is a's: a copy to b, which never
// counted R, is no duplicate (b counts it in interval 2 by the rule for
// reports without an age: in order, within the skew window).
func TestEngineRemembersCountedReportsAcrossTermsAndCloses(t *testing.T) {
	h, a, b := twoNodesALeads(t)
	defer a.Stop()
	defer b.Stop()
	h.clk.Advance(45 * time.Second)
	r0 := dc0Report(h.clk.Now(), "old", 100)
	if n, dup, err := a.ReportWorkloadOnce(r0); err != nil || dup || n != 0 {
		t.Fatalf("a: interval %d, duplicate %v, %v; want counted in 0", n, dup, err)
	}
	h.runRounds(t, 1) // a closes interval 0 at 50 s
	if n, dup, err := a.ReportWorkloadOnce(r0); err != nil || !dup || n != 0 {
		t.Fatalf("a, after its close: interval %d, duplicate %v, %v; want a duplicate of interval 0", n, dup, err)
	}
	h.clk.Advance(95*time.Second - h.clk.Now().Sub(t0)) // interval 1
	r := dc0Report(h.clk.Now(), "old", 100)
	if n, dup, err := a.ReportWorkloadOnce(r); err != nil || dup || n != 1 {
		t.Fatalf("a: interval %d, duplicate %v, %v; want counted in 1", n, dup, err)
	}
	h.clk.Advance(time.Second)
	a.Stop()
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	h.runRounds(t, 2) // b closes interval 1
	h.clk.Advance(time.Second)
	b.Stop()
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	if n, dup, err := a.ReportWorkloadOnce(r); err != nil || !dup || n != 1 {
		t.Fatalf("a, leading again: interval %d, duplicate %v, %v; want a duplicate of interval 1", n, dup, err)
	}
	if n, _ := dc0Counted(a); n != 0 {
		t.Fatalf("a counted %d reports in interval 2, want none", n)
	}
	if n, dup, err := b.ReportWorkloadOnce(r); err != nil || dup || n != 2 {
		t.Fatalf("b: interval %d, duplicate %v, %v; want counted in 2", n, dup, err)
	}
}

// The memory keeps at most maxSeenKeys keys, however many reporter IDs
// (and credentials) the reporters make up, and at the bound forgets the
// key that counted a report least recently: a reporter that keeps
// reporting keeps its key while others come and go.
func TestSeenReportsBounded(t *testing.T) {
	var s seenReports
	rep := func(id string, sec int) protocol.WorkloadReport {
		return dc0Report(t0.Add(time.Duration(sec)*time.Second), id, 1)
	}
	live := rep("live", 1)
	s.note(live, 7, t0)
	for i := range maxSeenKeys + 10 {
		s.note(rep(fmt.Sprintf("r%d", i), 1), 7, t0)
		if i%100 == 0 {
			s.note(rep("live", 2+i), 7, t0) // the live reporter goes on reporting
		}
	}
	if s.by[""].keys.Len() != maxSeenKeys {
		t.Fatalf("%d keys kept, want %d", s.by[""].keys.Len(), maxSeenKeys)
	}
	if n, ok := s.counted(live); !ok || n != 7 {
		t.Fatalf("the live reporter's first report: %d, %v; want counted in 7 (its key was forgotten)", n, ok)
	}
	// 4 107 keys came: the 11 oldest, r0..r10, are forgotten, r11 is known
	if _, ok := s.counted(rep("r11", 1)); !ok {
		t.Fatal("r11's report forgotten")
	}
	for i := range 11 {
		if _, ok := s.counted(rep(fmt.Sprintf("r%d", i), 1)); ok {
			t.Fatalf("r%d's report still known, want its key forgotten", i)
		}
	}
	checkSeenEntries(t, s.by[""])
}

// checkSeenEntries checks a memory's count of its times.
func checkSeenEntries(t *testing.T, m *seenMemory) {
	t.Helper()
	n := 0
	for _, times := range m.keys.Values() {
		n += len(times)
	}
	if n != m.entries || n > maxSeenEntries {
		t.Fatalf("the memory holds %d times, counts %d; at most %d", n, m.entries, maxSeenEntries)
	}
}

// A key keeps the times a copy could still be counted for, however many
// (a leader flap re-sends all of an interval's reports; before, a key
// kept its last 64 and a flap after 70 reports counted all of them
// twice): those of the interval measured and the one before, and the
// older ones while a copy of them is plausible (dated after stale), at
// most its last seenKept. A time UnixNano cannot hold is not remembered
// (one 2^64 ns after another wraps onto it).
func TestSeenReportsKeepWhatACopyCouldComeOf(t *testing.T) {
	var s seenReports
	sec := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }
	rep := func(n int) protocol.WorkloadReport { return dc0Report(sec(n), "node1", 1) }
	known := func(what string, n int, want bool) {
		t.Helper()
		if _, ok := s.counted(rep(n)); ok != want {
			t.Fatalf("%s: the report of %d s known %v, want %v", what, n, ok, want)
		}
	}
	for n := range 100 {
		s.note(rep(n), 1, sec(0))
	}
	known("100 reports of interval 1", 0, true)
	s.note(rep(100), 2, sec(200))
	known("a report of interval 2, every earlier one stale", 0, true)
	s.note(rep(101), 3, sec(50))
	known("a report of interval 3", 49, false)
	known("a report of interval 3", 50, true)
	s.note(rep(102), 3, sec(200))
	known("another of interval 3, every earlier one stale", 99, false)
	known("another of interval 3, every earlier one stale", 100, true)
	for n := range seenKept + 1 {
		s.note(rep(1000+n), 4, sec(0))
	}
	known(fmt.Sprintf("%d reports of interval 4", seenKept+1), 1000, false)
	known(fmt.Sprintf("%d reports of interval 4", seenKept+1), 1001, true)
	checkSeenEntries(t, s.by[""])
	wrapped := rep(1)
	wrapped.At = time.Unix(sec(1001).Unix()+18446744073, int64(sec(1001).Nanosecond())+709551616)
	if wrapped.At.UnixNano() != sec(1001).UnixNano() {
		t.Fatal("the test's time does not wrap")
	}
	if _, ok := s.counted(wrapped); ok {
		t.Fatalf("a report of %v taken for a copy of one of %v", wrapped.At, sec(1001))
	}
}

// The shared token's memory holds at most maxSeenEntries times: at the
// bound the least recently used keys are forgotten whole. The node's own
// in-process keys are a memory of their own: the shared token's reports
// (a holder making reporter IDs up) never push them out.
func TestSeenReportsEntryBudget(t *testing.T) {
	var s seenReports
	own := dc0Report(t0, "node1", 1)
	s.note(own, 0, t0)
	keys := maxSeenEntries/seenKept + 1
	for k := range keys {
		for n := range seenKept {
			r := dc0Report(t0.Add(time.Duration(n)*time.Millisecond), fmt.Sprintf("x%d", k), 1)
			r.Credential = transport.SharedCredential
			s.note(r, 0, t0)
		}
	}
	checkSeenEntries(t, s.by[transport.SharedCredential])
	if n := s.by[transport.SharedCredential].keys.Len(); n != keys-1 {
		t.Fatalf("%d keys over HTTP kept, want %d", n, keys-1)
	}
	first, last := dc0Report(t0, "x0", 1), dc0Report(t0, fmt.Sprintf("x%d", keys-1), 1)
	first.Credential, last.Credential = transport.SharedCredential, transport.SharedCredential
	if _, ok := s.counted(first); ok {
		t.Fatal("the least recently used key over HTTP still known")
	}
	if _, ok := s.counted(last); !ok {
		t.Fatal("the last key over HTTP forgotten")
	}
	if _, ok := s.counted(own); !ok {
		t.Fatal("the node's own in-process key forgotten")
	}
}

// Reports without a reporter ID under one credential share one key per DC
// and kind (docs/operations.md "Reporter IDs per credential"): a second
// ID-less client stamping the same time as the first is taken for a copy
// and not counted, whatever it measured; with IDs both are counted.
func TestEngineIDlessReportersShareTheDuplicateKey(t *testing.T) {
	for _, tc := range []struct {
		name       string
		ids        [2]string
		wantCounts int
	}{
		{"without IDs", [2]string{"", ""}, 1},
		{"with IDs", [2]string{"n1", "n2"}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, e, _ := twoNodesALeads(t)
			defer e.Stop()
			at := h.clk.Now()
			for i, id := range tc.ids {
				r := dc0Report(at, id, float64(10*(i+1)))
				r.Credential = transport.SharedCredential
				if err := e.ReportWorkload(r); err != nil {
					t.Fatal(err)
				}
			}
			if n, _ := dc0Counted(e); n != tc.wantCounts {
				t.Fatalf("%d reports counted, want %d", n, tc.wantCounts)
			}
		})
	}
}
