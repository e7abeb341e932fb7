package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/protocol"
)

// intakeRec records reports; notLeader makes it answer ErrNotLeader, known
// limits the DCs it accepts.
type intakeRec struct {
	mu        sync.Mutex
	got       []protocol.WorkloadReport
	notLeader bool
	known     map[string]bool
}

func (in *intakeRec) ReportWorkload(r protocol.WorkloadReport) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.notLeader {
		return ErrNotLeader
	}
	if in.known != nil && !in.known[r.DC] {
		return fmt.Errorf("workload report dc: %q is not a datacenter of the topology", r.DC)
	}
	in.got = append(in.got, r)
	return nil
}

func (in *intakeRec) reports() []protocol.WorkloadReport {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]protocol.WorkloadReport(nil), in.got...)
}

func (in *intakeRec) setLeader(b bool) {
	in.mu.Lock()
	in.notLeader = !b
	in.mu.Unlock()
}

const wtoken = "workload-token-0123456789"

func wrep(dc string, sec int, rate float64) protocol.WorkloadReport {
	return protocol.WorkloadReport{DC: dc, At: t0.Add(time.Duration(sec) * time.Second), Kind: "dp",
		Pairs: []protocol.PairLoad{{Entry: dc, Exit: dc, Rate: rate}}}
}

func withReporter(r protocol.WorkloadReport, id string) protocol.WorkloadReport {
	r.Reporter = id
	return r
}

func withAge(r protocol.WorkloadReport, ms float64) protocol.WorkloadReport {
	r.AgeMs = ms
	return r
}

func body(t testing.TB, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestWorkloadHandler(t *testing.T) {
	in := &intakeRec{known: map[string]bool{"tokyo": true}}
	h, err := NewWorkloadHandler(in, wtoken)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, tc := range []struct {
		name, method, path, auth, body string
		want                           int
		wantMsg                        string
	}{
		{"accepted", "POST", WorkloadPath, wtoken, body(t, wrep("tokyo", 1, 10)), 200, `"accepted":true`},
		{"older report (a reporter's clock stepped back) is counted", "POST", WorkloadPath, wtoken, body(t, wrep("tokyo", 0, 10)), 200, `"accepted":true`},
		{"newer report", "POST", WorkloadPath, wtoken, body(t, wrep("tokyo", 2, 10)), 200, `"accepted":true`},
		{"wrong token", "POST", WorkloadPath, "nope", body(t, wrep("tokyo", 3, 10)), 401, "bearer token"},
		{"no token", "POST", WorkloadPath, "", body(t, wrep("tokyo", 3, 10)), 401, "bearer token"},
		{"GET", "GET", WorkloadPath, wtoken, "", 405, "POST"},
		{"wrong path", "POST", "/protocol/v1/other", wtoken, body(t, wrep("tokyo", 3, 10)), 404, "not found"},
		{"unknown field", "POST", WorkloadPath, wtoken, `{"dc":"tokyo","kind":"dp","at":"2026-01-01T00:00:09Z","bogus":1}`, 400, "bogus"},
		{"pairs in a delay report", "POST", WorkloadPath, wtoken,
			`{"dc":"tokyo","kind":"delay","at":"2026-01-01T00:00:09Z","pairs":[{"entry":"tokyo","exit":"tokyo","rate":1}]}`, 400, "pairs"},
		{"bad kind", "POST", WorkloadPath, wtoken, `{"dc":"tokyo","kind":"xx","at":"2026-01-01T00:00:09Z"}`, 400, "kind"},
		{"no time", "POST", WorkloadPath, wtoken, `{"dc":"tokyo","kind":"dp"}`, 400, "at:"},
		{"negative rate", "POST", WorkloadPath, wtoken,
			`{"dc":"tokyo","kind":"dp","at":"2026-01-01T00:00:09Z","pairs":[{"entry":"tokyo","exit":"tokyo","rate":-1}]}`, 400, "pairs[0].rate"},
		{"unnamed exit", "POST", WorkloadPath, wtoken,
			`{"dc":"tokyo","kind":"dp","at":"2026-01-01T00:00:09Z","pairs":[{"entry":"tokyo","rate":1}]}`, 400, "pairs[0]"},
		{"delays on cp", "POST", WorkloadPath, wtoken,
			`{"dc":"tokyo","kind":"cp","at":"2026-01-01T00:00:09Z","delaysMs":{"london":3}}`, 400, "delaysMs"},
		{"trailing data", "POST", WorkloadPath, wtoken, body(t, wrep("tokyo", 5, 1)) + "{}", 400, "trailing"},
		{"too large", "POST", WorkloadPath, wtoken, `{"dc":"` + strings.Repeat("x", MaxWorkloadBytes) + `"}`, 413, ""},
		{"unknown dc refused by the engine", "POST", WorkloadPath, wtoken, body(t, wrep("paris", 5, 1)), 422, "paris"},
		// a second reporter of the DC stamping second 2 too (whether a
		// report is a copy is the intake's: global.Engine, OnceIntake)
		{"another reporter's report of the same time", "POST", WorkloadPath, wtoken, body(t, withReporter(wrep("tokyo", 2, 10), "node2")), 200, `"accepted":true`},
		{"reporter with a space", "POST", WorkloadPath, wtoken, body(t, withReporter(wrep("tokyo", 3, 10), "node 2")), 400, "reporter:"},
		{"reporter too long", "POST", WorkloadPath, wtoken, body(t, withReporter(wrep("tokyo", 3, 10), strings.Repeat("n", MaxReporterID+1))), 400, "reporter:"},
		{"negative age", "POST", WorkloadPath, wtoken, `{"dc":"tokyo","kind":"dp","at":"2026-01-01T00:00:09Z","ageMs":-1}`, 400, "ageMs"},
		{"age over a day", "POST", WorkloadPath, wtoken, `{"dc":"tokyo","kind":"dp","at":"2026-01-01T00:00:09Z","ageMs":1e12}`, 400, "ageMs"},
		{"a credential is never read from the wire", "POST", WorkloadPath, wtoken, `{"dc":"tokyo","kind":"dp","at":"2026-01-01T00:00:09Z","Credential":""}`, 400, "Credential"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			expectAnswer(t, srv, tc.method, tc.path, tc.auth, tc.body, tc.want, tc.wantMsg)
		})
	}
	expectAnswerTyped(t, srv, "POST", WorkloadPath, wtoken, "text/plain", body(t, wrep("tokyo", 7, 1)), 415, "application/json")
	expectAnswerTyped(t, srv, "POST", WorkloadPath, wtoken, "", body(t, wrep("tokyo", 7, 1)), 415, "application/json")
	if got := in.reports(); len(got) != 4 || got[1].At != t0 || got[2].At != t0.Add(2*time.Second) || got[3].Reporter != "node2" {
		t.Fatalf("intake got %+v, want the reports of second 1, 0 and 2 once each, then node2's of second 2", got)
	}
	for i, r := range in.reports() {
		if r.Credential != SharedCredential {
			t.Errorf("report %d: credential %q, want %q (the shared token's: the intake bounds its reporters together)", i, r.Credential, SharedCredential)
		}
	}
	in.setLeader(false)
	tg, err := NewHTTPReportTarget(srv.URL, wtoken, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	if err := tg.SendReport(context.Background(), wrep("tokyo", 9, 1)); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("follower: %v, want ErrNotLeader", err)
	}
	in.setLeader(true)
	if err := tg.SendReport(context.Background(), wrep("tokyo", 9, 1)); err != nil {
		t.Fatalf("a report refused by a follower is taken later by the leader: %v", err)
	}
	bad, _ := NewHTTPReportTarget(srv.URL, "wrong-token", srv.Client())
	if err := bad.SendReport(context.Background(), wrep("tokyo", 10, 1)); !errors.Is(err, ErrRejected) {
		t.Fatalf("wrong token: %v, want ErrRejected", err)
	}
}

func TestNewWorkloadHandlerAndTargetChecks(t *testing.T) {
	if _, err := NewWorkloadHandler(&intakeRec{}, ""); err == nil {
		t.Fatal("empty token accepted")
	}
	if _, err := NewWorkloadHandler(nil, "x"); err == nil {
		t.Fatal("nil intake accepted")
	}
	if _, err := NewHTTPReportTarget("node2:8080", "x", nil); err == nil {
		t.Fatal("URL without scheme accepted")
	}
	if _, err := NewReporter(ReporterConfig{}); err == nil {
		t.Fatal("reporter without targets accepted")
	}
}

// fakeTarget answers from a script of errors (nil when exhausted) and
// signals each call.
type fakeTarget struct {
	name  string
	mu    sync.Mutex
	errs  []error
	got   []protocol.WorkloadReport
	calls chan string
}

func (f *fakeTarget) SendReport(_ context.Context, r protocol.WorkloadReport) error {
	f.mu.Lock()
	var err error
	if len(f.errs) > 0 {
		err, f.errs = f.errs[0], f.errs[1:]
	}
	if err == nil {
		f.got = append(f.got, r)
	}
	f.mu.Unlock()
	if f.calls != nil {
		f.calls <- f.name
	}
	return err
}

func (f *fakeTarget) String() string { return f.name }

func (f *fakeTarget) received() []protocol.WorkloadReport {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]protocol.WorkloadReport(nil), f.got...)
}

// waitFor polls cond (a condition set by another goroutine) with a deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond) // polling a condition, not waiting for time to pass
	}
}

func TestReporterFindsLeaderAndSticksToIt(t *testing.T) {
	clk := clock.NewVirtual(t0)
	a := &fakeTarget{name: "a", errs: []error{ErrNotLeader, ErrNotLeader, ErrNotLeader}}
	b := &fakeTarget{name: "b"}
	r, err := NewReporter(ReporterConfig{Targets: []ReportTarget{a, b}, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i := range 3 {
		if err := r.ReportWorkload(wrep("tokyo", i, 1)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "3 reports sent", func() bool { return r.Stats().Sent == 3 })
	if got := b.received(); len(got) != 3 || got[0].At != t0 || got[2].At != t0.Add(2*time.Second) {
		t.Fatalf("leader b got %d reports, want 3 in order", len(got))
	}
	a.mu.Lock()
	left := len(a.errs)
	a.mu.Unlock()
	if left != 2 {
		t.Fatalf("follower a asked %d times, want once (the reporter keeps to the node that accepted)", 3-left)
	}
	if s := r.Stats(); s.Dropped != 0 || s.Failed != 0 || s.Retries != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestReporterRetriesThenGivesUp(t *testing.T) {
	clk := clock.NewVirtual(t0)
	down := errors.New("connection refused")
	a := &fakeTarget{name: "a", errs: []error{down, down, down, down}, calls: make(chan string, 16)}
	var mu sync.Mutex
	var gaveUp []error
	r, err := NewReporter(ReporterConfig{Targets: []ReportTarget{a}, Clock: clk, Attempts: 3, Backoff: time.Second,
		OnError: func(err error) { mu.Lock(); gaveUp = append(gaveUp, err); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.ReportWorkload(wrep("tokyo", 1, 1)); err != nil {
		t.Fatal(err)
	}
	<-a.calls
	waitFor(t, "retry timer", func() bool { return clk.Pending() == 1 })
	if s := r.Stats(); !s.Waiting || s.QueueLen != 1 {
		t.Fatalf("stats %+v with the retry timer armed: want Waiting", s)
	}
	clk.Advance(999 * time.Millisecond)
	if len(a.calls) != 0 {
		t.Fatal("retried before the backoff")
	}
	clk.Advance(time.Millisecond)
	<-a.calls
	waitFor(t, "second retry timer", func() bool { return clk.Pending() == 1 })
	clk.Advance(2 * time.Second) // backoff doubles
	<-a.calls
	waitFor(t, "give up", func() bool { return r.Stats().Failed == 1 })
	if s := r.Stats(); s.Retries != 2 || s.Sent != 0 || s.QueueLen != 0 {
		t.Fatalf("stats %+v", s)
	}
	waitFor(t, "OnError", func() bool { mu.Lock(); defer mu.Unlock(); return len(gaveUp) == 1 })
	// the next report goes through (script: one more failure, then success)
	if err := r.ReportWorkload(wrep("tokyo", 2, 1)); err != nil {
		t.Fatal(err)
	}
	<-a.calls
	waitFor(t, "retry timer", func() bool { return clk.Pending() == 1 })
	clk.Advance(time.Second)
	<-a.calls
	waitFor(t, "sent", func() bool { return r.Stats().Sent == 1 })
	if s := r.Stats(); s.Latency != time.Second || s.Waiting {
		t.Fatalf("stats %+v: want latency 1s (one backoff), not Waiting", s)
	}
}

func TestReporterDropsOldestWhenFull(t *testing.T) {
	clk := clock.NewVirtual(t0)
	block := make(chan struct{})
	a := &blockingTarget{release: block}
	r, err := NewReporter(ReporterConfig{Targets: []ReportTarget{a}, Clock: clk, QueueCap: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i := range 10 {
		if err := r.ReportWorkload(wrep("tokyo", i, 1)); err != nil {
			t.Fatal(err)
		}
	}
	// report 0 is in flight (it was the head: dropped from the queue by the
	// overflow, but its send completes); 7, 8, 9 remain
	close(block)
	waitFor(t, "queue drained", func() bool {
		got := a.received()
		return r.Stats().QueueLen == 0 && len(got) >= 3 && got[len(got)-1].At == t0.Add(9*time.Second)
	})
	s := r.Stats()
	if s.Dropped != 7 || s.Queued != 10 {
		t.Fatalf("stats %+v, want 7 dropped of 10", s)
	}
	got := a.received()
	last := got[len(got)-3:]
	for i, want := range []int{7, 8, 9} {
		if last[i].At != t0.Add(time.Duration(want)*time.Second) {
			t.Fatalf("sent %v, want the newest reports 7, 8, 9 last", got)
		}
	}
}

type blockingTarget struct {
	release chan struct{}
	mu      sync.Mutex
	got     []protocol.WorkloadReport
}

func (b *blockingTarget) SendReport(ctx context.Context, r protocol.WorkloadReport) error {
	select {
	case <-b.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	b.mu.Lock()
	b.got = append(b.got, r)
	b.mu.Unlock()
	return nil
}

func (b *blockingTarget) String() string { return "blocking" }

func (b *blockingTarget) received() []protocol.WorkloadReport {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]protocol.WorkloadReport(nil), b.got...)
}

func TestReporterRejectedIsNotRetried(t *testing.T) {
	clk := clock.NewVirtual(t0)
	a := &fakeTarget{name: "a", errs: []error{fmt.Errorf("%w: unknown dc", ErrRejected)}}
	b := &fakeTarget{name: "b"}
	r, err := NewReporter(ReporterConfig{Targets: []ReportTarget{a, b}, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.ReportWorkload(wrep("tokyo", 1, 1)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "rejected", func() bool { return r.Stats().Rejected == 1 })
	if len(b.received()) != 0 || clk.Pending() != 0 {
		t.Fatal("a rejected report was sent elsewhere or retried")
	}
	if err := r.ReportWorkload(protocol.WorkloadReport{DC: "tokyo", Kind: "zz", At: t0}); err == nil || !strings.Contains(err.Error(), "kind") {
		t.Fatalf("bad report queued: %v", err)
	}
	r.Close()
	if err := r.ReportWorkload(wrep("tokyo", 2, 1)); !errors.Is(err, ErrReporterClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

// Reporter → HTTP → handler → intake on loopback, the leader being the
// second node.
func TestReporterOverHTTP(t *testing.T) {
	follower, leader := &intakeRec{notLeader: true}, &intakeRec{}
	var targets []ReportTarget
	for _, in := range []*intakeRec{follower, leader} {
		h, err := NewWorkloadHandler(in, wtoken)
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(h)
		defer srv.Close()
		tg, err := NewHTTPReportTarget(srv.URL+"/", wtoken, srv.Client())
		if err != nil {
			t.Fatal(err)
		}
		targets = append(targets, tg)
	}
	r, err := NewReporter(ReporterConfig{Targets: targets})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i := range 20 {
		if err := r.ReportWorkload(wrep("tokyo", i, float64(i))); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "20 reports", func() bool { return r.Stats().Sent == 20 })
	if got := leader.reports(); len(got) != 20 || got[19].Pairs[0].Rate != 19 {
		t.Fatalf("leader got %d reports", len(got))
	}
	if len(follower.reports()) != 0 {
		t.Fatal("follower took reports")
	}
}

func FuzzParseWorkloadReport(f *testing.F) {
	f.Add([]byte(`{"dc":"tokyo","at":"2026-01-01T00:00:00Z","kind":"dp","pairs":[{"entry":"tokyo","exit":"london","rate":3.5}],"delaysMs":{"london":120}}`))
	f.Add([]byte(`{"dc":"tokyo","at":"2026-01-01T00:00:00Z","kind":"cp","pairs":[]}`))
	f.Add([]byte(`{"dc":"","kind":"dp"}`))
	f.Add([]byte(`{"dc":"tokyo","at":"2026-01-01T00:00:00Z","kind":"delay","delaysMs":{"london":61.5}}`))
	f.Add([]byte(`{"dc":"a","at":"x","kind":"dp"}`))
	f.Add([]byte(`{"dc":"a","at":"2026-01-01T00:00:00Z","kind":"dp","pairs":[{"entry":"a","exit":"b","rate":1e400}]}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"dc":"tokyo","at":"2026-01-01T00:00:00Z","kind":"dp","reporter":"node-2","ageMs":1500.5}`))
	f.Add([]byte(`{"dc":"tokyo","at":"2026-01-01T00:00:00Z","kind":"dp","reporter":"a\u0000b","ageMs":-0}`))
	f.Add([]byte(`{"dc":"tokyo","at":"2026-01-01T00:00:00Z","kind":"dp","reporter":"n1","credential":"n2"}`))
	f.Add([]byte(`{"dc":"tokyo","at":"2026-01-01T00:00:00Z","kind":"dp","Credential":"shared protocol token"}`))
	f.Add([]byte(`{"dc":"tokyo","at":"2026-01-01T00:00:00Z","kind":"dp","countedBy":{"engine":"e3511f9e3c11d8a7","interval":1}}`))
	f.Add([]byte(`{"dc":"tokyo","at":"2026-01-01T00:00:00Z","kind":"dp","countedBy":{"engine":"","interval":1}}`))
	f.Add([]byte(`{"dc":"tokyo","at":"2026-01-01T00:00:00Z","kind":"dp","countedBy":{"engine":"a b","interval":-1}}`))
	f.Add([]byte(`{"dc":"tokyo","at":"2026-01-01T00:00:00Z","kind":"dp","countedBy":{"engine":"e1","interval":1,"x":1}}`))
	f.Add([]byte(`{"dc":"tokyo","at":"2026-01-01T00:00:00Z","kind":"dp","countedBy":null}`))
	// the wire names of the new fields (a tag typo, or json:"-", would make
	// the round trip below pass on its own: both sides use the same tags)
	named, err := ParseWorkloadReport(strings.NewReader(`{"dc":"tokyo","at":"2026-01-01T00:00:00Z","kind":"dp","reporter":"node-2","ageMs":1500.5}`))
	if err != nil || named.Reporter != "node-2" || named.AgeMs != 1500.5 {
		f.Fatalf("reporter/ageMs on the wire: %+v, %v", named, err)
	}
	named, err = ParseWorkloadReport(strings.NewReader(`{"dc":"tokyo","at":"2026-01-01T00:00:00Z","kind":"dp","countedBy":{"engine":"e1","interval":7}}`))
	if err != nil || named.CountedBy == nil || *named.CountedBy != (protocol.CountedBy{Engine: "e1", Interval: 7}) {
		f.Fatalf("countedBy on the wire: %+v, %v", named, err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		rep, err := ParseWorkloadReport(bytes.NewReader(b))
		if err != nil {
			if rep.DC != "" || rep.Pairs != nil {
				t.Fatalf("error %v with a non-zero report", err)
			}
			return
		}
		if CheckWorkloadReport(rep) != nil {
			t.Fatal("parsed report fails its own check")
		}
		if rep.Credential != "" {
			t.Fatalf("credential %q read from the wire (the receiving node sets it)", rep.Credential)
		}
		// a parsed report survives a round trip
		again, err := ParseWorkloadReport(strings.NewReader(body(t, rep)))
		if err != nil || again.DC != rep.DC || again.Kind != rep.Kind || !again.At.Equal(rep.At) ||
			len(again.Pairs) != len(rep.Pairs) || len(again.DelaysMs) != len(rep.DelaysMs) ||
			again.Reporter != rep.Reporter || again.AgeMs != rep.AgeMs ||
			(again.CountedBy == nil) != (rep.CountedBy == nil) || (rep.CountedBy != nil && *again.CountedBy != *rep.CountedBy) {
			t.Fatalf("round trip: %+v, want %+v (%v)", again, rep, err)
		}
	})
}

// With Resend, a new leader gets the interval's earlier reports again right
// after the report that found it; after NewInterval they are forgotten.
func TestReporterResendsIntervalToNewLeader(t *testing.T) {
	clk := clock.NewVirtual(t0)
	a := &fakeTarget{name: "a"}
	b := &fakeTarget{name: "b"}
	r, err := NewReporter(ReporterConfig{Targets: []ReportTarget{a, b}, Clock: clk, Resend: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	send := func(i int) {
		if err := r.ReportWorkload(wrep("tokyo", i, float64(i))); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		send(i)
	}
	waitFor(t, "3 reports at a", func() bool { return r.Stats().Sent == 3 })
	a.mu.Lock()
	a.errs = []error{ErrNotLeader}
	a.mu.Unlock()
	send(3) // a lost the lead: b takes it, then gets 0, 1, 2 again
	waitFor(t, "b has the whole interval", func() bool { return len(b.received()) == 4 })
	got := b.received()
	if got[0].At != t0.Add(3*time.Second) || got[1].At != t0 || got[3].At != t0.Add(2*time.Second) {
		t.Fatalf("b got %+v, want report 3 then 0, 1, 2", got)
	}
	if s := r.Stats(); s.Resent != 3 || s.Sent != 7 {
		t.Fatalf("stats %+v", s)
	}
	r.NewInterval()
	b.mu.Lock()
	b.errs = []error{ErrNotLeader}
	b.mu.Unlock()
	send(4) // back to a in a new interval: nothing to re-send
	waitFor(t, "report 4 at a", func() bool { return len(a.received()) == 4 })
	if s := r.Stats(); s.Resent != 3 {
		t.Fatalf("re-sent %d after NewInterval, want still 3", s.Resent)
	}
}

// errElection is a node's answer during an election, as the HTTP target
// returns it.
var errElection = fmt.Errorf("http://n2: %w", ErrNotLeader)

// electionReporter sends one report to a node that answers "not the
// leader" for the given number of passes (an election) and then accepts,
// and steps the virtual clock until the report is sent or given up. It
// returns the reporter's stats and when the report was settled.
func electionReporter(t *testing.T, passes int, wait time.Duration) (ReporterStats, time.Duration) {
	t.Helper()
	clk := clock.NewVirtual(t0)
	errs := make([]error, passes)
	for i := range errs {
		errs[i] = errElection
	}
	a := &fakeTarget{name: "a", errs: errs, calls: make(chan string, 64)}
	r, err := NewReporter(ReporterConfig{Targets: []ReportTarget{a}, Clock: clk, Attempts: 3,
		Backoff: 250 * time.Millisecond, NoLeaderWait: wait})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.ReportWorkload(wrep("tokyo", 1, 1)); err != nil {
		t.Fatal(err)
	}
	for {
		<-a.calls // a pass ended: its outcome is booked, or a retry timer comes
		waitFor(t, "the pass booked", func() bool {
			s := r.Stats()
			return s.Sent+s.Failed == 1 || clk.Pending() == 1
		})
		if s := r.Stats(); s.Sent+s.Failed == 1 {
			return s, clk.Now().Sub(t0)
		}
		clk.Step()
	}
}

func TestReporterOutlastsAnElection(t *testing.T) {
	// 9 passes without a leader, 250 ms apart: a 2.25 s election (2.3 s
	// was measured on a loaded host). Without NoLeaderWait the report is
	// given up after 3 passes (0.75 s).
	if s, at := electionReporter(t, 9, 0); s.Failed != 1 || s.Sent != 0 || at != 750*time.Millisecond {
		t.Fatalf("without NoLeaderWait: stats %+v settled at %v, want given up at 750ms", s, at)
	}
	s, at := electionReporter(t, 9, 5*time.Second)
	if s.Sent != 1 || s.Failed != 0 || at != 9*250*time.Millisecond || s.Retries != 9 {
		t.Fatalf("with NoLeaderWait 5s: stats %+v settled at %v, want sent at 2.25s after 9 retries", s, at)
	}
	// an election longer than NoLeaderWait: the passes count again from
	// then on (3 attempts, 250 ms and 500 ms apart) and the report is given up
	s, at = electionReporter(t, 100, time.Second)
	if s.Failed != 1 || s.Sent != 0 || at != time.Second+750*time.Millisecond {
		t.Fatalf("with NoLeaderWait 1s and a longer election: stats %+v settled at %v, want given up at 1.75s", s, at)
	}
	if _, err := NewReporter(ReporterConfig{Targets: []ReportTarget{&fakeTarget{}}, NoLeaderWait: -time.Second}); err == nil ||
		!strings.Contains(err.Error(), "NoLeaderWait") {
		t.Fatalf("negative NoLeaderWait: err = %v", err)
	}
}

// A reporter stamps its ID on the reports that name none (one that names
// its own keeps it) and each send's age on its own clock: a report that
// waited 3 s for a leader goes out 3 000 ms old.
func TestReporterStampsIDAndAge(t *testing.T) {
	clk := clock.NewVirtual(t0)
	a := &fakeTarget{name: "a", errs: []error{ErrNotLeader}, calls: make(chan string, 64)}
	r, err := NewReporter(ReporterConfig{Targets: []ReportTarget{a}, Clock: clk, ID: "node1", Backoff: 3 * time.Second,
		NoLeaderWait: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.ReportWorkload(wrep("tokyo", 0, 1)); err != nil {
		t.Fatal(err)
	}
	<-a.calls // no leader: retried after 3 s
	waitFor(t, "the retry timer", func() bool { return clk.Pending() == 1 })
	clk.Step()
	<-a.calls
	waitFor(t, "the report sent", func() bool { return r.Stats().Sent == 1 })
	if err := r.ReportWorkload(withReporter(wrep("tokyo", 3, 1), "meter")); err != nil {
		t.Fatal(err)
	}
	<-a.calls
	waitFor(t, "the second report sent", func() bool { return r.Stats().Sent == 2 })
	got := a.received()
	if got[0].Reporter != "node1" || got[0].AgeMs != 3000 || got[1].Reporter != "meter" || got[1].AgeMs != 0 {
		t.Fatalf("sent %+v, want node1's report 3000 ms old, then meter's 0 ms old", got)
	}
	if _, err := NewReporter(ReporterConfig{Targets: []ReportTarget{a}, ID: "node 1"}); err == nil ||
		!strings.Contains(err.Error(), "transport.ReporterConfig.ID") {
		t.Fatalf("ID with a space: err = %v", err)
	}
}

// oldWorkloadReport is protocol.WorkloadReport before session 9 (no
// reporter, no ageMs): what a global node of that version decodes.
type oldWorkloadReport struct {
	DC       string              `json:"dc"`
	At       time.Time           `json:"at"`
	Kind     string              `json:"kind"`
	Pairs    []protocol.PairLoad `json:"pairs"`
	DelaysMs map[string]float64  `json:"delaysMs,omitempty"`
}

// A global node of the older version refuses the new fields (strict
// decoding): the target sends the report again without them and leaves
// them out from then on, so reporters can be upgraded before the global
// nodes. Another 400 is still a rejection.
func TestHTTPReportTargetOlderNode(t *testing.T) {
	srv, posts := olderNode(t, func(b []byte) (workloadAnswer, error) {
		var rep oldWorkloadReport
		if err := DecodeStrict(bytes.NewReader(b), &rep, "workload report body"); err != nil {
			return workloadAnswer{}, err
		}
		if rep.DC == "paris" {
			return workloadAnswer{}, errors.New("dc: bad")
		}
		return workloadAnswer{Accepted: true}, nil
	})
	tg, err := NewHTTPReportTarget(srv.URL, wtoken, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	if err := tg.SendReport(context.Background(), withAge(withReporter(wrep("tokyo", 1, 1), "n1"), 20)); err != nil {
		t.Fatalf("first report to an older node: %v", err)
	}
	if err := tg.SendReport(context.Background(), withAge(withReporter(wrep("tokyo", 2, 1), "n1"), 20)); err != nil {
		t.Fatalf("second report: %v", err)
	}
	if err := tg.SendReport(context.Background(), wrep("paris", 3, 1)); !errors.Is(err, ErrRejected) {
		t.Fatalf("another 400: %v, want ErrRejected", err)
	}
	if p := posts(); len(p) != 4 || !strings.Contains(p[0], `"reporter":"n1"`) || strings.Contains(p[1], "reporter") ||
		strings.Contains(p[2], "reporter") || strings.Contains(p[2], "ageMs") {
		t.Fatalf("posts %q, want the first with the new fields, then every one without", p)
	}
}

// olderNode serves a global node of an older version (closed when the
// test ends): decode reads each body (an error is a 400 with its text)
// and gives the 200 answer; posts returns the bodies posted so far.
func olderNode(t *testing.T, decode func([]byte) (workloadAnswer, error)) (srv *httptest.Server, posts func() []string) {
	t.Helper()
	var mu sync.Mutex
	var got []string
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, string(b))
		mu.Unlock()
		a, err := decode(b)
		if err != nil {
			BodyError(w, err)
			return
		}
		writeAnswer(w, http.StatusOK, a)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(got)
	}
}

// postReport posts rep to h with the shared token and returns the answer
// body (200 expected).
func postReport(t *testing.T, h http.Handler, rep protocol.WorkloadReport) string {
	t.Helper()
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, WorkloadPath, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+wtoken)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		t.Fatalf("%s: %d %s", rep.Reporter, w.Code, w.Body)
	}
	return w.Body.String()
}

// The legacy mode for an older global node ends: a node upgraded after
// the target met its old version gets reporter and ageMs again once
// LegacyFor has passed on the injected clock (revB #2: it never did), or at
// once when the node answers "not the leader" (a leader change: it may have
// been restarted, upgraded). Legacy and LegacyFallbacks tell, and so does
// the reporter's stats.
func TestHTTPReportTargetLegacyExpires(t *testing.T) {
	var mu sync.Mutex
	old, conflict := true, false
	var last string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		last = string(b)
		if conflict {
			WriteError(w, http.StatusConflict, "not the leader")
			return
		}
		if old {
			var rep oldWorkloadReport
			if err := DecodeStrict(bytes.NewReader(b), &rep, "workload report body"); err != nil {
				BodyError(w, err)
				return
			}
		}
		writeAnswer(w, http.StatusOK, workloadAnswer{Accepted: true})
	}))
	defer srv.Close()
	clk := clock.NewVirtual(time.Unix(1000, 0))
	tg, err := NewHTTPReportTargetWith(srv.URL, wtoken, srv.Client(), HTTPReportOptions{Clock: clk, LegacyFor: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	rp, err := NewReporter(ReporterConfig{Targets: []ReportTarget{tg}, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	defer rp.Close()
	seq := 0
	send := func(wantFields bool) {
		t.Helper()
		seq++
		if err := tg.SendReport(context.Background(), withAge(withReporter(wrep("tokyo", seq, 1), "n1"), 20)); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		if got := strings.Contains(last, `"reporter":"n1"`) && strings.Contains(last, `"ageMs":20`); got != wantFields {
			t.Fatalf("report %d at %v: new fields sent %v, want %v: %s", seq, clk.Now().Sub(time.Unix(1000, 0)), got, wantFields, last)
		}
	}
	send(false) // refused, sent again without
	if !tg.Legacy() || tg.LegacyFallbacks() != 1 {
		t.Fatalf("legacy %v, fallbacks %d after an older node's refusal", tg.Legacy(), tg.LegacyFallbacks())
	}
	if s := rp.Stats(); s.LegacyTargets != 1 || s.LegacyFallbacks != 1 {
		t.Fatalf("reporter stats: legacy targets %d, fallbacks %d, want 1, 1", s.LegacyTargets, s.LegacyFallbacks)
	}
	mu.Lock()
	old = false // upgraded, same URL
	mu.Unlock()
	clk.Advance(59 * time.Second)
	send(false) // still within LegacyFor
	clk.Advance(time.Second)
	send(true)
	if tg.Legacy() || tg.LegacyFallbacks() != 1 || rp.Stats().LegacyTargets != 0 {
		t.Fatalf("after LegacyFor on the upgraded node: legacy %v, fallbacks %d", tg.Legacy(), tg.LegacyFallbacks())
	}

	// a leader change ends it at once
	mu.Lock()
	old = true
	mu.Unlock()
	send(false)
	mu.Lock()
	old, conflict = false, true
	mu.Unlock()
	seq++
	if err := tg.SendReport(context.Background(), withAge(withReporter(wrep("tokyo", seq, 1), "n1"), 20)); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("a follower's answer: %v, want ErrNotLeader", err)
	}
	mu.Lock()
	conflict = false
	mu.Unlock()
	send(true)
	if n := tg.LegacyFallbacks(); n != 2 {
		t.Fatalf("fallbacks %d, want 2", n)
	}
}

// intervalRec is an intakeRec that says it counts every report in interval
// (an IntervalIntake, as global.Engine).
type intervalRec struct {
	intakeRec
	interval atomic.Uint64
}

func (in *intervalRec) ReportWorkloadInterval(r protocol.WorkloadReport) (uint64, error) {
	if err := in.ReportWorkload(r); err != nil {
		return 0, err
	}
	return in.interval.Load(), nil
}

// A leader that closed interval 0 and dies before the reporter's
// NewInterval (the local side learns of the new interval a few steps after
// the close): the reports it counted in interval 0 are in its committed
// averages, so the reporter does not re-send them to the new leader, which
// would count them again in interval 1 (its skew window let those measured
// within 10 s before the close in); the one counted in interval 1 is
// re-sent. Over HTTP: the handler answers the interval, the target reads
// it. A new leader of an older version names no interval: everything is
// re-sent, as before.
func TestReporterSkipsReportsOfAClosedInterval(t *testing.T) {
	for _, tc := range []struct {
		name    string
		bTells  bool
		wantAtB []int // the report seconds b gets, in order
		skipped uint64
	}{
		{"the new leader says its interval", true, []int{4, 3}, 3},
		{"a new leader of an older version", false, []int{4, 0, 1, 2, 3}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ina := &intervalRec{} // interval 0: the first, a known one
			var inb WorkloadIntake = &intakeRec{}
			if tc.bTells {
				rb := &intervalRec{}
				rb.interval.Store(1)
				inb = rb
			}
			var targets []ReportTarget
			for _, in := range []WorkloadIntake{ina, inb} {
				targets = append(targets, servedTarget(t, mustHandler(t, in)))
			}
			if a := postReport(t, mustHandler(t, ina), wrep("paris", 9, 1)); !strings.Contains(a, `"interval":0`) {
				t.Fatalf("the answer %s names no interval", a)
			}
			ina.got = nil
			r, err := NewReporter(ReporterConfig{Targets: targets, Clock: clock.NewVirtual(t0), Resend: true})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			send := func(i int) {
				t.Helper()
				if err := r.ReportWorkload(wrep("tokyo", i, float64(i))); err != nil {
					t.Fatal(err)
				}
				waitFor(t, fmt.Sprintf("report %d sent", i), func() bool { return r.Stats().Sent >= uint64(i+1) })
			}
			for i := range 3 {
				send(i)
			}
			ina.interval.Store(1) // a closes interval 0 (its averages hold reports 0–2)
			send(3)
			ina.setLeader(false) // a dies before the local side enters interval 2
			if err := r.ReportWorkload(wrep("tokyo", 4, 4)); err != nil {
				t.Fatal(err)
			}
			received := func() []protocol.WorkloadReport {
				if rb, ok := inb.(*intervalRec); ok {
					return rb.reports()
				}
				return inb.(*intakeRec).reports()
			}
			waitFor(t, "b gets what it needs", func() bool { return len(received()) == len(tc.wantAtB) && r.Stats().QueueLen == 0 })
			for i, rep := range received() {
				if want := t0.Add(time.Duration(tc.wantAtB[i]) * time.Second); !rep.At.Equal(want) {
					t.Fatalf("b's report %d is of %v, want the seconds %v", i, rep.At.Sub(t0), tc.wantAtB)
				}
			}
			if s := r.Stats(); s.ResendSkipped != tc.skipped || s.Resent != uint64(len(tc.wantAtB)-1) {
				t.Fatalf("stats %+v, want %d skipped, %d re-sent", s, tc.skipped, len(tc.wantAtB)-1)
			}
		})
	}
}

func mustHandler(t *testing.T, in WorkloadIntake) *WorkloadHandler {
	t.Helper()
	h, err := NewWorkloadHandler(in, wtoken)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// servedTarget serves h on a test server (closed when the test ends) and
// returns a report target posting to it with the shared token.
func servedTarget(t *testing.T, h http.Handler) *HTTPReportTarget {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	tg, err := NewHTTPReportTarget(srv.URL, wtoken, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

// FuzzAnswered: a global node's answer (outside input to the reporter)
// gives an interval only when it names one, and an interval measured no
// other than the one it names ("measuring") or, without it, the interval
// itself (an older node); it never panics, and what it reads survives the
// handler's encoding. Seeds also in testdata/fuzz/FuzzAnswered.
func FuzzAnswered(f *testing.F) {
	f.Add([]byte(`{"accepted":true,"interval":0}`))
	f.Add([]byte(`{"accepted":true,"interval":18446744073709551615}`))
	f.Add([]byte(`{"accepted":true}`))
	f.Add([]byte(`{"duplicate":true}`))
	f.Add([]byte(`{"duplicate":true,"interval":3}`))
	f.Add([]byte(`{"duplicate":true,"interval":3,"measuring":5}`))
	f.Add([]byte(`{"duplicate":true,"measuring":5}`))
	f.Add([]byte(`{"duplicate":true,"interval":3,"measuring":-1}`))
	f.Add([]byte(`{"accepted":true,"interval":-1}`))
	f.Add([]byte(`{"accepted":true,"interval":1.5}`))
	f.Add([]byte(`not json`))
	f.Add([]byte(`{"accepted":true,"interval":1,"measuring":0,"engine":"e3511f9e3c11d8a7"}`))
	f.Add([]byte(`{"duplicate":true,"interval":0,"measuring":1,"engine":"e1","closedBy":"e2"}`))
	f.Add([]byte(`{"accepted":true,"interval":1,"engine":"e1","closedBy":"e2"}`))
	f.Add([]byte(`{"duplicate":true,"interval":0,"engine":"a b","closedBy":""}`))
	if c := answered([]byte(`{"accepted":true,"interval":7}`)); !c.Known || c.Interval != 7 || c.Measuring != 7 || c.Duplicate {
		f.Fatalf("interval 7 read as %+v", c)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c := answered(b)
		if !c.Known {
			if c != (Counted{}) {
				t.Fatalf("no interval, yet %+v", c)
			}
			return
		}
		if !json.Valid(b) {
			t.Fatalf("%+v from an answer that is not JSON: %q", c, b)
		}
		var raw map[string]json.RawMessage
		if json.Unmarshal(b, &raw) == nil && c.Measuring != c.Interval &&
			!slices.ContainsFunc(slices.Collect(maps.Keys(raw)), func(k string) bool { return strings.EqualFold(k, "measuring") }) {
			t.Fatalf("no measuring named, yet %+v", c)
		}
		if (c.Engine != "" && CheckEngineID(c.Engine) != nil) || (c.ClosedBy != "" && (CheckEngineID(c.ClosedBy) != nil || !c.Duplicate)) {
			t.Fatalf("%+v: an engine ID that is none, or closedBy without a copy", c)
		}
		a := workloadAnswer{Accepted: !c.Duplicate, Duplicate: c.Duplicate, Interval: &c.Interval, Measuring: &c.Measuring,
			Engine: c.Engine, ClosedBy: c.ClosedBy}
		again, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		if d := answered(again); d != c {
			t.Fatalf("%+v does not survive a round trip: %+v", c, d)
		}
	})
}

// A re-sent report is booked in the interval the new leader counted it in
// when that is earlier than the old leader's: a closed its interval 5 (its
// predict step, not committed) and counted report 0 in 6, then died; b,
// resuming round 5 from the committed state, measures 5 and counts report 1
// and the re-sent 0 there, closes 5 (its averages hold both) and dies
// before the local side enters the next interval; c measures 6. Neither
// report may reach c: c would count 0 again in 6 (within its skew window
// before the start). Before, the kept report 0 still said a's 6, so it was
// re-sent to c.
func TestReporterBooksAResentReportInTheNewLeadersInterval(t *testing.T) {
	ins := []*intervalRec{{}, {}, {}}
	var targets []ReportTarget
	for i, in := range ins {
		in.setLeader(i == 0)
		targets = append(targets, IntakeTarget{In: in, Name: string(rune('a' + i))})
	}
	ins[0].interval.Store(6)
	ins[1].interval.Store(5)
	ins[2].interval.Store(6)
	r, send := resendingReporter(t, targets)
	send(0, 1) // a counts it in 6
	ins[0].setLeader(false)
	ins[1].setLeader(true)
	send(1, 3) // b counts it in 5, then the re-sent 0 in 5 as well
	if got := ins[1].reports(); len(got) != 2 || !got[1].At.Equal(t0) {
		t.Fatalf("b got %+v, want reports 1 and 0", got)
	}
	ins[1].setLeader(false)
	ins[2].setLeader(true)
	send(2, 4)
	if got := ins[2].reports(); len(got) != 1 || !got[0].At.Equal(t0.Add(2*time.Second)) {
		t.Fatalf("c got %d reports (%+v), want report 2 only: b counted 0 and 1 in interval 5, closed since", len(got), got)
	}
	if s := r.Stats(); s.Resent != 1 || s.ResendSkipped != 2 {
		t.Fatalf("re-sent %d, skipped %d; want 1 (0 to b) and 2 (0 and 1 at c)", s.Resent, s.ResendSkipped)
	}
}

// handsOver is an intake that, right after accepting the report of second
// sec, hands the lead to next (a leader change while re-sent copies wait
// in the reporter's queue).
type handsOver struct {
	*intervalRec
	sec  int
	next *intervalRec
}

func (h handsOver) ReportWorkloadInterval(r protocol.WorkloadReport) (uint64, error) {
	n, err := h.intervalRec.ReportWorkloadInterval(r)
	if err == nil && r.At.Equal(t0.Add(time.Duration(h.sec)*time.Second)) {
		h.setLeader(false)
		h.next.setLeader(true)
	}
	return n, err
}

// Two leader changes before the re-sent reports reach the first new
// leader: a took reports 0 and 1 (in interval 6); b takes report 2, so 0
// and 1 are queued again for b, and b hands the lead to c before they are
// sent. c takes the re-sent 0 as the head. When c measures interval 6 too,
// the reporter queues again for c what c lacks: report 1 (in place of its
// copy queued for b) and report 2, but not report 0 itself. When c measures
// 7 (b closed 6 and died), reports 1 and 2 are in 6's averages: neither
// reaches c (the copy of 1 queued for b is dropped too). c (an intake
// without the engine's duplicate memory, so every copy sent shows) gets
// each report once.
// Before, the kept report 0 still named b as its target, so it was queued
// for c again, and report 1's copy queued for b was sent to c as well.
func TestReporterResendsToAThirdLeaderOnlyWhatItLacks(t *testing.T) {
	for _, tc := range []struct {
		name            string
		cMeasures       uint64
		want            []int // the report seconds c gets, in order
		resent, skipped uint64
	}{
		{"c measures the same interval", 6, []int{0, 1, 2}, 4, 0},
		{"c measures the next interval", 7, []int{0}, 2, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b, c := &intervalRec{}, &intervalRec{}, &intervalRec{}
			for _, in := range []*intervalRec{a, b, c} {
				in.interval.Store(6)
				in.setLeader(in == a)
			}
			c.interval.Store(tc.cMeasures)
			targets := []ReportTarget{
				IntakeTarget{In: a, Name: "a"},
				IntakeTarget{In: handsOver{b, 2, c}, Name: "b"},
				IntakeTarget{In: c, Name: "c"},
			}
			r, err := NewReporter(ReporterConfig{Targets: targets, Clock: clock.NewVirtual(t0), Resend: true})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			sent := uint64(3 + len(tc.want)) // 0 and 1 to a, 2 to b, then c's
			for i := range 3 {
				if i == 2 {
					a.setLeader(false)
					b.setLeader(true)
				}
				if err := r.ReportWorkload(wrep("tokyo", i, float64(i))); err != nil {
					t.Fatal(err)
				}
				waitFor(t, fmt.Sprintf("report %d and what it re-sends sent", i), func() bool {
					s := r.Stats()
					return s.Sent >= min(uint64(i+1), 3) && s.QueueLen == 0
				})
			}
			var got, want []time.Duration
			for _, rep := range c.reports() {
				got = append(got, rep.At.Sub(t0))
			}
			for _, sec := range tc.want {
				want = append(want, time.Duration(sec)*time.Second)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("c got the reports of %v, want %v, each once", got, want)
			}
			if s := r.Stats(); s.Sent != sent || s.Resent != tc.resent || s.ResendSkipped != tc.skipped {
				t.Fatalf("sent %d, re-sent %d, skipped %d; want %d, %d, %d", s.Sent, s.Resent, s.ResendSkipped, sent, tc.resent, tc.skipped)
			}
			if n := len(b.reports()); n != 1 {
				t.Fatalf("b got %d reports, want 1 (report 2)", n)
			}
		})
	}
}

// onceRec is an intervalRec that is a OnceIntake: it takes a report dated
// dup for a copy of one it counted in interval 3 (whether a report is a
// copy is global.Engine's, tested there).
type onceRec struct {
	intervalRec
	dup time.Time
}

func (in *onceRec) ReportWorkloadOnce(r protocol.WorkloadReport) (uint64, bool, error) {
	if r.At.Equal(in.dup) {
		return 3, true, nil
	}
	n, err := in.ReportWorkloadInterval(r)
	return n, false, err
}

// The handler answers what a OnceIntake says: a copy is
// {"duplicate":true} with the interval the intake counted it in, and an
// HTTP target takes it as delivered in that interval; the handler keeps no
// memory of its own (a copy to an intake that is no OnceIntake is
// counted: global.Engine is the one place), so a follower never answers
// for the leader.
func TestWorkloadHandlerAnswersTheIntakesDuplicate(t *testing.T) {
	in := &onceRec{dup: t0.Add(time.Second)}
	in.interval.Store(4)
	h := mustHandler(t, in)
	if a := postReport(t, h, wrep("tokyo", 1, 10)); !strings.Contains(a, `"duplicate":true`) || !strings.Contains(a, `"interval":3`) ||
		strings.Contains(a, "accepted") {
		t.Fatalf("a copy answered %s, want a duplicate of interval 3", a)
	}
	if a := postReport(t, h, wrep("tokyo", 2, 10)); !strings.Contains(a, `"accepted":true,"interval":4`) || strings.Contains(a, "duplicate") {
		t.Fatalf("a report answered %s, want accepted in interval 4", a)
	}
	if n, known, err := servedTarget(t, h).SendReportInterval(context.Background(), wrep("tokyo", 1, 10)); err != nil || !known || n != 3 {
		t.Fatalf("the target read %d, %v, %v; want delivered in interval 3", n, known, err)
	}
	plain := &intakeRec{}
	h = mustHandler(t, plain)
	postReport(t, h, wrep("tokyo", 1, 10))
	if a := postReport(t, h, wrep("tokyo", 1, 10)); !strings.Contains(a, `"accepted":true`) || len(plain.reports()) != 2 {
		t.Fatalf("a copy to a plain intake answered %s, counted %d times; want accepted, twice", a, len(plain.reports()))
	}
	// a node that took a report while it led and leads no more answers
	// its copy "not the leader" (the reporter goes on to the leader,
	// which may lack it); before, its handler answered "duplicate" and
	// the reporter took the follower for the leader
	plain.setLeader(false)
	if _, _, err := servedTarget(t, h).SendReportInterval(context.Background(), wrep("tokyo", 1, 10)); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("a copy to a follower: %v, want ErrNotLeader", err)
	}
}

// OnIdle is called once the sender has emptied the queue: not while a
// retry timer waits, once per drain (two reports queued together: one
// call), and again after the next report.
func TestReporterOnIdle(t *testing.T) {
	clk := clock.NewVirtual(t0)
	a := &fakeTarget{name: "a", errs: []error{errors.New("connection refused")}, calls: make(chan string, 16)}
	idle := make(chan struct{}, 4)
	r, err := NewReporter(ReporterConfig{Targets: []ReportTarget{a}, Clock: clk, Backoff: time.Second,
		OnIdle: func() { idle <- struct{}{} }})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	waitIdle := func(sent uint64) {
		t.Helper()
		select {
		case <-idle:
		case <-time.After(10 * time.Second): // a deadlock guard, not a wait for time
			t.Fatalf("OnIdle not called; stats %+v", r.Stats())
		}
		if s := r.Stats(); s.Sent != sent || s.QueueLen != 0 || len(idle) != 0 {
			t.Fatalf("idle with stats %+v and %d more calls; want %d sent, none queued, one call", s, len(idle), sent)
		}
	}
	for i := range 2 {
		if err := r.ReportWorkload(wrep("tokyo", i, 1)); err != nil {
			t.Fatal(err)
		}
	}
	<-a.calls
	waitFor(t, "retry timer", func() bool { return clk.Pending() == 1 })
	if len(idle) != 0 {
		t.Fatal("OnIdle called while the retry timer waits")
	}
	clk.Advance(time.Second)
	waitIdle(2)
	if err := r.ReportWorkload(wrep("tokyo", 2, 1)); err != nil {
		t.Fatal(err)
	}
	waitIdle(3)
}
