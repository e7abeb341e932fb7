package global

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/controller/protocol"
)

func TestIntakeAverages(t *testing.T) {
	pl := func(a, b string, r float64) protocol.PairLoad { return protocol.PairLoad{Entry: a, Exit: b, Rate: r} }
	for _, tc := range []struct {
		name    string
		reports []protocol.WorkloadReport
		want    map[string]float64
	}{
		{"mean over reports", []protocol.WorkloadReport{
			{DC: "a", Kind: KindDP, Pairs: []protocol.PairLoad{pl("a", "b", 100)}},
			{DC: "a", Kind: KindDP, Pairs: []protocol.PairLoad{pl("a", "b", 300)}},
		}, map[string]float64{"dp/a/b": 200}},
		{"pair missing from a report counts 0", []protocol.WorkloadReport{
			{DC: "a", Kind: KindDP, Pairs: []protocol.PairLoad{pl("a", "b", 300)}},
			{DC: "a", Kind: KindDP},
			{DC: "a", Kind: KindDP},
		}, map[string]float64{"dp/a/b": 100}},
		{"two reporters add up", []protocol.WorkloadReport{
			{DC: "a", Kind: KindCP, Pairs: []protocol.PairLoad{pl("a", "b", 10)}},
			{DC: "b", Kind: KindCP, Pairs: []protocol.PairLoad{pl("a", "b", 4)}},
			{DC: "b", Kind: KindCP},
		}, map[string]float64{"cp/a/b": 12}},
		{"cp and dp counted apart", []protocol.WorkloadReport{
			{DC: "a", Kind: KindCP, Pairs: []protocol.PairLoad{pl("a", "b", 10)}},
			{DC: "a", Kind: KindDP, Pairs: []protocol.PairLoad{pl("a", "b", 1000)}},
			{DC: "a", Kind: KindDP, Pairs: []protocol.PairLoad{pl("a", "b", 3000)}},
		}, map[string]float64{"cp/a/b": 10, "dp/a/b": 2000}},
		{"delays are per link means", []protocol.WorkloadReport{
			{DC: "a", Kind: KindDP, DelaysMs: map[string]float64{"b": 10}},
			{DC: "a", Kind: KindDP, DelaysMs: map[string]float64{"b": 20}},
			{DC: "b", Kind: KindDP, DelaysMs: map[string]float64{"a": 7}},
		}, map[string]float64{"delay/a/b": 15, "delay/b/a": 7}},
		{"delay reports do not dilute the workload", []protocol.WorkloadReport{
			{DC: "a", Kind: KindDP, Pairs: []protocol.PairLoad{pl("a", "b", 300)}},
			{DC: "a", Kind: KindDelay, DelaysMs: map[string]float64{"b": 10}},
			{DC: "a", Kind: KindDelay, DelaysMs: map[string]float64{"b": 30}},
		}, map[string]float64{"dp/a/b": 300, "delay/a/b": 20}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := newIntake()
			for _, r := range tc.reports {
				in.add(r)
			}
			got, _ := in.averages()
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if math.Abs(got[k]-v) > 1e-9 {
					t.Fatalf("%s = %g, want %g (all: %v)", k, got[k], v, got)
				}
			}
		})
	}
}

func TestReportWorkloadRejects(t *testing.T) {
	h := newHarness(t, 2, transportCfgNone, Hooks{}, nil)
	for _, tc := range []struct {
		name string
		r    protocol.WorkloadReport
		want string
	}{
		{"unknown dc", protocol.WorkloadReport{DC: "x", Kind: KindDP}, "dc"},
		{"bad kind", protocol.WorkloadReport{DC: "dc0", Kind: "up"}, "kind"},
		{"unknown pair dc", protocol.WorkloadReport{DC: "dc0", Kind: KindDP, Pairs: []protocol.PairLoad{{Entry: "dc0", Exit: "zz", Rate: 1}}}, "pairs[0]"},
		{"negative rate", protocol.WorkloadReport{DC: "dc0", Kind: KindDP, Pairs: []protocol.PairLoad{{Entry: "dc0", Exit: "dc1", Rate: -1}}}, "pairs[0].rate"},
		{"NaN rate", protocol.WorkloadReport{DC: "dc0", Kind: KindCP, Pairs: []protocol.PairLoad{{Entry: "dc0", Exit: "dc1", Rate: math.NaN()}}}, "rate"},
		{"delay to self", protocol.WorkloadReport{DC: "dc0", Kind: KindDP, DelaysMs: map[string]float64{"dc0": 1}}, `delaysMs["dc0"]`},
		{"delay infinite", protocol.WorkloadReport{DC: "dc0", Kind: KindDP, DelaysMs: map[string]float64{"dc1": math.Inf(1)}}, `delaysMs["dc1"]`},
		{"pairs in a delay report", protocol.WorkloadReport{DC: "dc0", Kind: KindDelay, Pairs: []protocol.PairLoad{{Entry: "dc0", Exit: "dc1", Rate: 1}}}, "pairs"},
		{"delay in a cp report", protocol.WorkloadReport{DC: "dc0", Kind: KindCP, DelaysMs: map[string]float64{"dc1": 1}}, "delaysMs"},
		{"implausible dp rate", protocol.WorkloadReport{DC: "dc0", Kind: KindDP, Pairs: []protocol.PairLoad{{Entry: "dc0", Exit: "dc1", Rate: 1e12}}}, "pairs[0].rate: 1e+12 is implausible"},
		{"implausible cp rate", protocol.WorkloadReport{DC: "dc0", Kind: KindCP, Pairs: []protocol.PairLoad{{Entry: "dc0", Exit: "dc1", Rate: 1e12}}}, "pairs[0].rate: 1e+12 is implausible"},
		{"stamped 2099", protocol.WorkloadReport{DC: "dc0", At: time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC), Kind: KindDP}, "ahead of the leader's clock"},
		{"clock ahead by a minute", protocol.WorkloadReport{DC: "dc0", At: h.clk.Now().Add(time.Minute), Kind: KindDP}, "ahead of the leader's clock"},
		{"older than an interval", protocol.WorkloadReport{DC: "dc0", At: h.clk.Now().Add(-time.Hour), Kind: KindDP}, "behind the leader's clock"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := h.eng.ReportWorkload(tc.r)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to name %q", err, tc.want)
			}
		})
	}
	if err := h.eng.ReportWorkload(protocol.WorkloadReport{DC: "dc0", Kind: KindDP, Pairs: []protocol.PairLoad{{Entry: "dc0", Exit: "dc1", Rate: 5}}}); err != nil {
		t.Fatalf("valid report rejected: %v", err)
	}
	if err := h.eng.ReportWorkload(protocol.WorkloadReport{DC: "dc0", At: h.clk.Now().Add(5 * time.Second), Kind: KindDP,
		Pairs: []protocol.PairLoad{{Entry: "dc0", Exit: "dc1", Rate: 1e6}}}); err != nil {
		t.Fatalf("a report 5 s ahead with 10⁶ pkt/s rejected: %v", err)
	}
	empty, _ := New(Config{}, Deps{Clock: h.clk, Transport: h.mem, Forecaster: newAR1(), Store: NewMemStore()})
	if err := empty.ReportWorkload(protocol.WorkloadReport{DC: "dc0", Kind: KindDP}); err == nil || !strings.Contains(err.Error(), "topology") {
		t.Fatalf("report before any topology: %v", err)
	}
}

// A pair that stops being reported is observed as 0 (its kind was reported);
// delays keep being averaged from their own reports.
func TestSilentSeriesRules(t *testing.T) {
	rate := 2000.0
	// The pair goes silent exactly when round 0 closes its interval.
	stop := Hooks{StepCommitted: func(r uint64, s protocol.Step) {
		if r == 0 && s == protocol.StepPredict {
			rate = 0
		}
	}}
	h := newHarness(t, 2, transportCfgNone, stop, func(i, j int) float64 {
		if i == 0 && j == 1 {
			return rate
		}
		return 0
	})
	if err := h.eng.Start(); err != nil {
		t.Fatal(err)
	}
	h.runRounds(t, 2)
	rec := h.eng.Records()[1]
	if v, ok := rec.Actual["dp/dc0/dc1"]; !ok || v != 0 {
		t.Fatalf("silent pair observed as %v (present %v), want 0", v, ok)
	}
	if rec.PreviousPredicted["dp/dc0/dc1"] != 2000 {
		t.Fatalf("previous prediction %v, want 2000", rec.PreviousPredicted)
	}
	if rec.Actual["delay/dc0/dc1"] != 5 { // same group
		t.Fatalf("delay average %v", rec.Actual["delay/dc0/dc1"])
	}
}

// recent is the level at the interval's end: per reporter the mean over its
// last RecentReports reports (a missing pair counts 0), summed over
// reporters; a pair that stopped before them is 0, delays have none.
func TestIntakeRecent(t *testing.T) {
	pl := func(a, b string, r float64) []protocol.PairLoad {
		return []protocol.PairLoad{{Entry: a, Exit: b, Rate: r}}
	}
	in := newIntake()
	for i := range 20 {
		in.add(protocol.WorkloadReport{DC: "a", Kind: KindDP, Pairs: pl("a", "b", float64(100*i))})
		if i < 3 {
			in.add(protocol.WorkloadReport{DC: "a", Kind: KindCP, Pairs: pl("a", "a", 50)})
		}
	}
	in.add(protocol.WorkloadReport{DC: "b", Kind: KindDP, Pairs: pl("a", "b", 40)})
	in.add(protocol.WorkloadReport{DC: "b", Kind: KindDP})
	in.add(protocol.WorkloadReport{DC: "a", Kind: KindDelay, DelaysMs: map[string]float64{"b": 10}})
	got := in.recent(0)
	// a's last 5 DP reports: 1500 … 1900 (mean 1700); b's: 40 and nothing (20)
	want := map[string]float64{"dp/a/b": 1700 + 20, "cp/a/a": 50}
	if len(got) != len(want) {
		t.Fatalf("recent %v, want %v", got, want)
	}
	for k, v := range want {
		if math.Abs(got[k].Level-v) > 1e-9 {
			t.Fatalf("recent %s = %g, want %g (all: %v)", k, got[k].Level, v, got)
		}
	}
	in.add(protocol.WorkloadReport{DC: "a", Kind: KindDP, Pairs: pl("b", "a", 7)})
	for range RecentReports {
		in.add(protocol.WorkloadReport{DC: "a", Kind: KindDP})
	}
	got = in.recent(0)
	if v, ok := got["dp/b/a"]; !ok || v.Level != 0 || got["dp/a/b"].Level != 20 {
		t.Fatalf("pairs gone from a's last reports: %v, want dp/b/a 0 and dp/a/b b's 20", got)
	}
}

// One interval of the intake at scale: n DCs, each sending 50 one-second DP
// reports with a pair per exit DC (n² series), then the round's averages
// and recent levels. Reports (add, which keeps each reporter's last
// RecentReports pair lists) and the round's reads are timed apart.
//
//	go test -run xxx -bench BenchmarkIntakeInterval -benchmem ./controller/global/
func BenchmarkIntakeInterval(b *testing.B) {
	for _, n := range []int{50, 200} {
		reps := make([]protocol.WorkloadReport, n)
		for i := range n {
			r := protocol.WorkloadReport{DC: fmt.Sprintf("dc%d", i), Kind: KindDP}
			for j := range n {
				r.Pairs = append(r.Pairs, protocol.PairLoad{Entry: r.DC, Exit: fmt.Sprintf("dc%d", j), Rate: float64(100 + i + j)})
			}
			reps[i] = r
		}
		fill := func() intake {
			in := newIntake()
			for range 50 {
				for _, r := range reps {
					in.add(r)
				}
			}
			return in
		}
		b.Run(fmt.Sprintf("dcs=%d/add", n), func(b *testing.B) {
			for range b.N {
				fill()
			}
		})
		in := fill()
		b.Run(fmt.Sprintf("dcs=%d/averages", n), func(b *testing.B) {
			for range b.N {
				in.averages()
			}
		})
		b.Run(fmt.Sprintf("dcs=%d/recent", n), func(b *testing.B) {
			for range b.N {
				in.recent(0)
			}
		})
	}
}

// Recent.Slope is the rise of a DC's last reports per interval: (mean of
// the newest half − mean of the oldest half) / their distance in report
// periods × the periods of the interval (the reports the DC sent in it);
// a pair missing from a report counts 0; too few reports give no slope.
// These reports carry no times, so a report period is the interval ÷ the
// DC's reports of it (TestIntakeRecentSlopePartialInterval: with times).
func TestIntakeRecentSlope(t *testing.T) {
	in := newIntake()
	for i := range 10 {
		pairs := []protocol.PairLoad{{Entry: "a", Exit: "a", Rate: float64(10 * i)}}
		if i >= 8 {
			pairs = append(pairs, protocol.PairLoad{Entry: "a", Exit: "b", Rate: 50})
		}
		in.add(protocol.WorkloadReport{DC: "a", Kind: KindDP, Pairs: pairs})
		if i < MinSlopeReports-1 {
			in.add(protocol.WorkloadReport{DC: "c", Kind: KindDP, Pairs: []protocol.PairLoad{{Entry: "c", Exit: "c", Rate: 5}}})
		}
	}
	got := in.recent(0)
	// a→a: the last 5 reports 50 … 90, halves 55 and 85, 3 periods apart:
	// 10 per period, 10 periods → 100 per interval; a→b: 0 → 50 over 3
	// periods → 166.7
	for k, want := range map[string]Recent{
		"dp/a/a": {Level: 70, Slope: 100, SlopeOK: true},
		"dp/a/b": {Level: 20, Slope: 500.0 / 3, SlopeOK: true},
		"dp/c/c": {Level: 5},
	} {
		g := got[k]
		if math.Abs(g.Level-want.Level) > 1e-9 || math.Abs(g.Slope-want.Slope) > 1e-9 || g.SlopeOK != want.SlopeOK {
			t.Errorf("%s: %+v, want %+v", k, g, want)
		}
	}
}

// A pair that several DCs report sums their shares in a fixed order, so
// the average is the same bits every time (map order would change the
// last bit of a sum of three or more; a planner comparing it flips).
func TestIntakeAveragesIgnoreReporterOrder(t *testing.T) {
	in := newIntake()
	// values whose float sum depends on the order they are added in
	vals := []float64{1e16, 1, -1e16, 3, 0.1, 7e15, 0.7}
	for i, v := range vals {
		in.add(protocol.WorkloadReport{DC: fmt.Sprintf("dc%d", i), Kind: KindCP,
			Pairs: []protocol.PairLoad{{Entry: "a", Exit: "b", Rate: v}}})
	}
	first, _ := in.averages()
	want := first["cp/a/b"]
	for range 200 {
		got, _ := in.averages()
		if math.Float64bits(got["cp/a/b"]) != math.Float64bits(want) {
			t.Fatalf("average %v then %v: depends on the reporters' map order", want, got["cp/a/b"])
		}
	}
}

// Recent.Slope measures the reports' distance by their own times: a DC that
// reported for only the last 6 s of a 10 s interval (an engine that took
// leadership mid-interval, a meter started late, a DC back from silence)
// on a 10/s ramp has the slope 100 per interval, as one that reported all
// of it. Counting the interval's reports as its periods (the fallback for
// reports without times) gave 60 — the start rule's cap with it (review A
// of session 7, item 4).
func TestIntakeRecentSlopePartialInterval(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ramp := func(in *intake, from, to int, timed bool) {
		for i := from; i < to; i++ {
			r := protocol.WorkloadReport{DC: "a", Kind: KindDP, Pairs: []protocol.PairLoad{{Entry: "a", Exit: "a", Rate: float64(10 * i)}}}
			if timed {
				r.At = t0.Add(time.Duration(i) * time.Second)
			}
			in.add(r)
		}
	}
	part, whole, untimed := newIntake(), newIntake(), newIntake()
	ramp(&part, 4, 10, true)
	ramp(&whole, 0, 10, true)
	ramp(&untimed, 4, 10, false)
	for name, c := range map[string]struct {
		in   *intake
		want float64
	}{"6 of 10 s": {&part, 100}, "all 10 s": {&whole, 100}, "6 untimed reports": {&untimed, 60}} {
		g := c.in.recent(10 * time.Second)["dp/a/a"]
		if math.Abs(g.Slope-c.want) > 1e-9 || !g.SlopeOK || math.Abs(g.Level-70) > 1e-9 {
			t.Errorf("%s: %+v, want Level 70 Slope %v", name, g, c.want)
		}
	}
	// reports 2 s apart: the same rise per second, the same slope
	sparse := newIntake()
	for i := 0; i < 5; i++ {
		sparse.add(protocol.WorkloadReport{DC: "a", Kind: KindDP, At: t0.Add(time.Duration(2*i) * time.Second),
			Pairs: []protocol.PairLoad{{Entry: "a", Exit: "a", Rate: float64(20 * i)}}})
	}
	if g := sparse.recent(10 * time.Second)["dp/a/a"]; math.Abs(g.Slope-100) > 1e-9 {
		t.Errorf("2 s apart: %+v, want Slope 100", g)
	}
}

// Recent.Slope reads the ring of last reports in arrival order also when it
// has wrapped to a slot other than 0 (10 reports leave next at 0, where
// the physical order is the arrival order: TestIntakeRecentSlope).
func TestIntakeRecentSlopeRingOrder(t *testing.T) {
	in := newIntake()
	for i := range 7 { // next = 2 after 7 reports
		in.add(protocol.WorkloadReport{DC: "a", Kind: KindDP, Pairs: []protocol.PairLoad{{Entry: "a", Exit: "a", Rate: float64(10 * i)}}})
	}
	// last 5: 20 … 60; halves 25 and 55, 3 periods apart: 10/period × 7
	g := in.recent(0)["dp/a/a"]
	if math.Abs(g.Slope-70) > 1e-9 || !g.SlopeOK || math.Abs(g.Level-40) > 1e-9 {
		t.Fatalf("%+v, want Level 40 Slope 70", g)
	}
}

// Recent.Slope takes the reports' times as their distance only when every
// kept report has one and they strictly increase, and never a distance
// below half the counted one (review B of session 8, finding 3: two
// reporters of one DC with skewed clocks gave 500 and near-identical times
// 60 000 for a true slope of 100). Six reports of a +10 per report ramp in
// a 10 s interval; the counted slope (one period of 10 s ÷ 6 between two
// reports) is 60.
func TestIntakeRecentSlopeReportTimes(t *testing.T) {
	t0 := time.Unix(1000, 0)
	const unset = -1e9 // a report without a time
	for _, c := range []struct {
		name string
		at   []float64 // the reports' times in seconds after t0, in arrival order
		want float64
	}{
		{"in order, 1 s apart", []float64{0, 1, 2, 3, 4, 5}, 100},
		{"the last 6 s of the interval (partial interval)", []float64{4, 5, 6, 7, 8, 9}, 100},
		// a second reporter of the DC, its clock 2.4 s behind, sends the
		// last two: the times go back (3 → 1.6); counted. Was 500.
		{"two reporters of one DC, 2.4 s skew", []float64{0, 1, 2, 3, 4 - 2.4, 5 - 2.4}, 60},
		// alternating reporters, one 2.4 s behind: counted (was 100, right
		// by symmetry only: the intake keeps a DC's reports in one ring)
		{"two reporters alternating, 2.4 s skew", []float64{0, 1 - 2.4, 2, 3 - 2.4, 4, 5 - 2.4}, 60},
		// equal times are no distance: counted. Was 60 000.
		{"near-identical times", []float64{0, 0, 0, 0, 0, 0.01}, 60},
		// strictly increasing but 1 ms apart: the distance is held at half
		// the counted one (2.5 s), twice the counted slope. Was 100 000.
		{"1 ms apart", []float64{0, 0.001, 0.002, 0.003, 0.004, 0.005}, 120},
		// was ≈ 0: the unset time counted as 292 years before the others
		{"one report without a time", []float64{0, 1, unset, 3, 4, 5}, 60},
		{"no times", []float64{unset, unset, unset, unset, unset, unset}, 60},
	} {
		in := newIntake()
		for i, s := range c.at {
			r := protocol.WorkloadReport{DC: "a", Kind: KindDP, Pairs: []protocol.PairLoad{{Entry: "a", Exit: "a", Rate: float64(10 * i)}}}
			if s != unset {
				r.At = t0.Add(time.Duration(s * float64(time.Second)))
			}
			in.add(r)
		}
		g := in.recent(10 * time.Second)["dp/a/a"]
		if math.Abs(g.Slope-c.want) > 1e-9 || !g.SlopeOK || math.Abs(g.Level-30) > 1e-9 {
			t.Errorf("%s: %+v, want Level 30 Slope %v", c.name, g, c.want)
		}
	}
}

// Two reporters of one DC, interleaved, both reporting the DC's whole load
// over the last 10 s of a 20 s interval on a ramp of 10/s (200 per
// interval), the second with its clock 2.4 s behind: with reporter IDs each
// keeps its own ring and times, and the DC's slope is the ramp's. In one
// shared ring (reports without an ID, and every report before the ID) the
// times go back and fall back to the count-based slope, which spreads the
// 10 reports over the whole interval: half the ramp.
func TestIntakeRecentSlopeInterleavedReporters(t *testing.T) {
	t0 := time.Unix(1000, 0)
	for _, c := range []struct {
		name       string
		a, b       string // reporter IDs
		want       float64
		wantShared bool
	}{
		{"two reporter IDs", "node1", "node2", 200, false},
		{"no IDs: one shared ring, counted", "", "", 100, true},
	} {
		in := newIntake()
		for s := 10; s < 20; s++ {
			id, at := c.a, t0.Add(time.Duration(s)*time.Second)
			if s%2 == 1 {
				id, at = c.b, at.Add(-2400*time.Millisecond)
			}
			in.add(protocol.WorkloadReport{DC: "a", Kind: KindDP, At: at, Reporter: id,
				Pairs: []protocol.PairLoad{{Entry: "a", Exit: "a", Rate: float64(10 * s)}}})
		}
		if got := len(in.latest["dp/a"].by); (got == 1) != c.wantShared {
			t.Errorf("%s: %d rings", c.name, got)
		}
		g := in.recent(20 * time.Second)["dp/a/a"]
		// the level is the mean of the DC's last 5 reports, whoever sent them
		if math.Abs(g.Slope-c.want) > 1e-9 || !g.SlopeOK || math.Abs(g.Level-170) > 1e-9 {
			t.Errorf("%s: %+v, want Level 170 Slope %v", c.name, g, c.want)
		}
		if avg, _ := in.averages(); math.Abs(avg["dp/a/a"]-145) > 1e-9 {
			t.Errorf("%s: interval average %v, want 145 (every report)", c.name, avg["dp/a/a"])
		}
	}
}

// A DC's slope weights its reporters by their share of its last reports: a
// reporter that stopped earlier in the interval is left out, one with too
// few reports has no slope of its own, and the ring count per DC is
// bounded.
func TestIntakeRecentSlopeReporterShares(t *testing.T) {
	t0 := time.Unix(1000, 0)
	rep := func(id string, s float64, rate float64) protocol.WorkloadReport {
		return protocol.WorkloadReport{DC: "a", Kind: KindDP, At: t0.Add(time.Duration(s * float64(time.Second))), Reporter: id,
			Pairs: []protocol.PairLoad{{Entry: "a", Exit: "a", Rate: rate}}}
	}
	// old falls over 0–9 s (slope −100 per 10 s), then new reports a flat
	// 50 for 10–14 s: only new's reports are among the DC's last 5
	in := newIntake()
	for s := range 10 {
		in.add(rep("old", float64(s), 100-10*float64(s)))
	}
	for s := 10; s < 15; s++ {
		in.add(rep("new", float64(s), 50))
	}
	if g := in.recent(10 * time.Second)["dp/a/a"]; g.Slope != 0 || !g.SlopeOK || g.Level != 50 {
		t.Errorf("a reporter that stopped: %+v, want Level 50 Slope 0 (the stopped one left out)", g)
	}
	// new has sent only 2 reports among the DC's last 5: old's 3 carry the
	// slope alone; with only new's 2 there is none
	in = newIntake()
	for s := range 8 {
		in.add(rep("old", float64(s), 10*float64(s)))
	}
	in.add(rep("new", 8, 80))
	in.add(rep("new", 9, 90))
	if g := in.recent(10 * time.Second)["dp/a/a"]; math.Abs(g.Slope-100) > 1e-9 || !g.SlopeOK {
		t.Errorf("a new reporter with 2 reports: %+v, want old's slope 100", g)
	}
	in = newIntake()
	in.add(rep("x", 0, 1))
	in.add(rep("y", 1, 1))
	in.add(rep("z", 2, 1))
	in.add(rep("w", 3, 1))
	if g := in.recent(10 * time.Second)["dp/a/a"]; g.SlopeOK || g.Level != 1 {
		t.Errorf("four reporters of one report each: %+v, want Level 1 and no slope", g)
	}
}

// TestIntakeBoundsReportersPerCredential: the holder of one credential (the
// shared protocol token: any node that has it) cannot take the rings of a
// DC's other reporters by making up reporter IDs. It gets
// maxReportersPerCredential; a further ID under it is refused, naming the
// field, counted in Stats.RefusedReporters and nowhere else; the global
// node's own (in-process) local controller and a reporter with its own
// credential keep their own rings, so each one's slope is its own. Before,
// the first 8 IDs of a DC took all its rings and every later reporter
// shared one overflow ring (the two real reporters' interleaved reports
// there gave no slope of their own).
func TestIntakeBoundsReportersPerCredential(t *testing.T) {
	h := newHarness(t, 2, transportCfgNone, Hooks{}, nil)
	e := engineOn(t, h, h.cfg, nil)
	start := h.clk.Now().Add(-10 * time.Second)
	rep := func(cred, id string, s int, rate float64) protocol.WorkloadReport {
		return protocol.WorkloadReport{DC: "dc0", Kind: KindDP, At: start.Add(time.Duration(s) * time.Second), Reporter: id,
			Credential: cred, Pairs: []protocol.PairLoad{{Entry: "dc0", Exit: "dc0", Rate: rate}}}
	}
	const shared = "shared protocol token" // transport.SharedCredential
	for i := range maxReportersPerCredential {
		if err := e.ReportWorkload(rep(shared, fmt.Sprintf("x%d", i), 0, 1000)); err != nil {
			t.Fatal(err)
		}
	}
	err := e.ReportWorkload(rep(shared, "x8", 0, 1000))
	if !errors.Is(err, errTooManyReporters) || !strings.Contains(err.Error(), `workload report reporter: "x8" would be reporter 9 of dc0 dp reports under credential "shared protocol token" this interval, at most 8`) {
		t.Fatalf("a ninth reporter ID under the shared token: %v, want errTooManyReporters naming the field", err)
	}
	if n := e.Stats().RefusedReporters; n != 1 {
		t.Fatalf("RefusedReporters %d, want 1", n)
	}
	// an ID the credential has a ring for still reports
	if err := e.ReportWorkload(rep(shared, "x3", 1, 1000)); err != nil {
		t.Fatal(err)
	}
	// the DC's real reporters ramp 10 per second, interleaved
	for s := 1; s <= 5; s++ {
		for _, r := range []protocol.WorkloadReport{rep("", "n1", s, 10*float64(s)), rep("node2", "node2", s, 10*float64(s))} {
			if err := e.ReportWorkload(r); err != nil {
				t.Fatalf("%s's report of second %d: %v", r.Reporter, s, err)
			}
		}
	}
	e.mu.Lock()
	reports, g := e.in.reports["dp/dc0"], e.in.recent(10 * time.Second)[SeriesKey(KindDP, "dc0", "dc0")]
	e.mu.Unlock()
	if reports != maxReportersPerCredential+1+10 {
		t.Errorf("%d reports counted, want %d (the refused one not)", reports, maxReportersPerCredential+1+10)
	}
	// the DC's last 5: node2's 30, n1's and node2's 40 and 50 → 42; each
	// real reporter's own slope 100 per 10 s
	if !g.SlopeOK || math.Abs(g.Slope-100) > 1e-9 || math.Abs(g.Level-42) > 1e-9 {
		t.Fatalf("dc0's recent level %+v, want Level 42, Slope 100 (each real reporter's own ramp)", g)
	}
}

// The reporter IDs a credential holds are the interval's: when the interval
// closes (its round's predict step) the count starts afresh, so reporters
// that left (a fleet restarted under new IDs) lock no one out for longer
// than the interval they reported in. The refusal says so and how to
// separate the nodes.
func TestIntakeReporterIDsFreedAtTheClose(t *testing.T) {
	h, a, _ := twoNodesALeads(t)
	const shared = "shared protocol token" // transport.SharedCredential
	report := func(id string) error {
		return a.ReportWorkload(protocol.WorkloadReport{DC: "dc0", Kind: KindDP, At: h.clk.Now(), Reporter: id, Credential: shared,
			Pairs: []protocol.PairLoad{{Entry: "dc0", Exit: "dc0", Rate: 1}}})
	}
	fleet := func(prefix string) {
		t.Helper()
		for i := range maxReportersPerCredential {
			if err := report(fmt.Sprintf("%s%d", prefix, i)); err != nil {
				t.Fatalf("%s%d: %v", prefix, i, err)
			}
		}
	}
	fleet("old")
	err := report("new0")
	if err == nil || !strings.Contains(err.Error(), "at most 8 (the count starts afresh when the interval closes; per-node reporter credentials, role.reportersFile, give each node its own)") {
		t.Fatalf("a ninth ID in the interval: %v, want the refusal saying when it ends and how to avoid it", err)
	}
	for st := h.store.State(); st.Round == nil || st.Round.Done < protocol.StepPredict; st = h.store.State() {
		if h.clk.Now().Sub(t0) > 200*time.Second {
			t.Fatal("the interval never closed")
		}
		h.clk.Advance(100 * time.Millisecond)
	}
	fleet("new") // the old IDs left with the interval
	if err := report("new8"); err == nil {
		t.Fatal("a ninth new ID in the new interval was taken")
	}
	if n := a.Stats().RefusedReporters; n != 2 {
		t.Fatalf("RefusedReporters %d, want 2", n)
	}
}

// The bound on reporter IDs per credential is written as a number (and the
// first ID refused as an ordinal) where the constant cannot be named: the
// refused-reporters metric's HELP text (controller/daemon/reports.go,
// refusedReportersDesc; the constant is unexported) and the docs. A change
// of maxReportersPerCredential fails here until they say the new number.
func TestMaxReportersPerCredentialIsTheNumberTheTextsState(t *testing.T) {
	n := maxReportersPerCredential
	next := map[int]string{9: "ninth"}[n+1] // the docs spell out the first ID refused
	if next == "" {
		t.Fatalf("spell out the ordinal of %d here and in the docs", n+1)
	}
	for _, tc := range []struct {
		file    string
		phrases []string
	}{
		{"../daemon/reports.go", []string{fmt.Sprintf(`"%d other reporter IDs in the report's DC and kind this interval`, n)}},
		{"../../docs/operations.md", []string{
			fmt.Sprintf("for at most %d reporter IDs per DC and kind", n),
			fmt.Sprintf("already had %d other reporter IDs", n),
			fmt.Sprintf("or a %s reporter ID under one credential", next),
			fmt.Sprintf("A report of a %s ID is refused whole", next),
		}},
		{"../../docs/global-controller.md", []string{
			fmt.Sprintf("at most %d reporter IDs (`maxReportersPerCredential`)", n),
			fmt.Sprintf("a report of a %s ID under that credential", next),
			fmt.Sprintf("the first %d IDs of an interval win", n),
		}},
	} {
		b, err := os.ReadFile(tc.file)
		if err != nil {
			t.Fatal(err)
		}
		text := strings.Join(strings.Fields(string(b)), " ") // the docs wrap lines anywhere
		for _, p := range tc.phrases {
			if !strings.Contains(text, p) {
				t.Errorf("%s does not say %q: maxReportersPerCredential is %d", tc.file, p, n)
			}
		}
	}
}
