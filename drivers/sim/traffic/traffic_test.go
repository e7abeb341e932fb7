package traffic

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/drivers/sim"
)

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func TestPairUsers(t *testing.T) {
	u := func(dc int, at float64) user { return user{dc: dc, at: at} }
	for _, tc := range []struct {
		name      string
		mode      Pairing
		waiting   []user
		users     []user
		wantPairs [][2]int // DCs of (caller, callee)
		wantLeft  []int    // DCs of the users left waiting
	}{
		{"empty", FirstComeFirstMatch, nil, nil, nil, nil},
		{"one waits", FirstComeFirstMatch, nil, []user{u(3, 0.1)}, nil, []int{3}},
		{"in arrival order", FirstComeFirstMatch, nil, []user{u(0, 0.1), u(1, 0.2), u(2, 0.3), u(3, 0.4), u(4, 0.5)}, [][2]int{{0, 1}, {2, 3}}, []int{4}},
		{"waiting user first", FirstComeFirstMatch, []user{u(7, 0)}, []user{u(1, 1.2), u(2, 1.3)}, [][2]int{{7, 1}}, []int{2}},
		{"same DC pairs", FirstComeFirstMatch, nil, []user{u(5, 0.1), u(5, 0.2)}, [][2]int{{5, 5}}, nil},
		{"cross-DC skips own DC", CrossDC, nil, []user{u(0, 0.1), u(0, 0.2), u(1, 0.3), u(1, 0.4), u(1, 0.5)}, [][2]int{{0, 1}, {0, 1}}, []int{1}},
		{"cross-DC earliest other DC", CrossDC, []user{u(2, 0), u(1, 0.05)}, []user{u(2, 0.1)}, [][2]int{{1, 2}}, []int{2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pairs, left, ab := pairUsers(tc.mode, tc.waiting, tc.users)
			if len(pairs) != len(tc.wantPairs) || ab != 0 {
				t.Fatalf("pairs %v (abandoned %d), want %v", pairs, ab, tc.wantPairs)
			}
			for i, p := range pairs {
				if p[0].dc != tc.wantPairs[i][0] || p[1].dc != tc.wantPairs[i][1] || p[0].at > p[1].at {
					t.Fatalf("pair %d = %v, want DCs %v", i, p, tc.wantPairs[i])
				}
			}
			if len(left) != len(tc.wantLeft) {
				t.Fatalf("left %v, want DCs %v", left, tc.wantLeft)
			}
			for i := range left {
				if left[i].dc != tc.wantLeft[i] {
					t.Fatalf("left %v, want DCs %v", left, tc.wantLeft)
				}
			}
		})
	}
	t.Run("cross-DC bounded wait", func(t *testing.T) {
		users := make([]user, MaxWaiting+5)
		for i := range users {
			users[i] = u(0, float64(i))
		}
		_, left, ab := pairUsers(CrossDC, nil, users)
		if len(left) != MaxWaiting || ab != 5 || left[0].at != 5 {
			t.Fatalf("%d waiting, %d abandoned, first at %v", len(left), ab, left[0].at)
		}
	})
}

func TestCrossDCCallsBetweenTwoDCs(t *testing.T) {
	// Paper 6.3.2: calls between DC 0 and DC 1 only.
	w := newWorld(t, 3, fleet15, 2)
	router := &fixedRouter{hops: nil}
	e := w.engine(t, Config{Schedule: &Schedule{ChangeInterval: time.Minute, Shape: Step, DCs: []DCSchedule{{DC: 0, Rates: []float64{15}}, {DC: 1, Rates: []float64{15}}}},
		Seed: 9, Duration: 30 * time.Second, Pairing: CrossDC, SCSCFDC: 2, Router: router, Chain: []string{"firewall"}})
	router.hops = []Hop{{0, "dc0-firewall-0"}}
	w.run(e, 30*time.Second)
	if len(router.routed) < 600 {
		t.Fatalf("only %d flows", len(router.routed))
	}
	for _, f := range router.routed {
		if f.Entry == f.Exit || f.Entry > 1 || f.Exit > 1 {
			t.Fatalf("flow %+v not between DC 0 and DC 1", f)
		}
	}
}

func TestPoissonMoments(t *testing.T) {
	for _, lambda := range []float64{0.5, 3, 15, 45} { // 45 uses two chunks
		r := rand.New(rand.NewPCG(1, 2))
		const n = 20000
		var s, s2 float64
		for i := 0; i < n; i++ {
			x := float64(poisson(r, lambda))
			s += x
			s2 += x * x
		}
		mean := s / n
		v := s2/n - mean*mean
		// The mean's standard error is sqrt(λ/n); allow 5 of them.
		if !near(mean, lambda, 5*math.Sqrt(lambda/n)) || !near(v, lambda, 0.1*lambda) {
			t.Errorf("λ=%v: mean %v variance %v", lambda, mean, v)
		}
	}
}

func TestScheduleRate(t *testing.T) {
	s := &Schedule{ChangeInterval: 10 * time.Second, Shape: Step, DCs: []DCSchedule{
		{DC: 0, Rates: []float64{1, 3, 5}},
		{DC: 1, Start: 25 * time.Second, Rates: []float64{2, 4}},
	}}
	lin := *s
	lin.Shape = Linear
	stop := *s
	stop.Stop = true
	for _, tc := range []struct {
		name string
		s    *Schedule
		dc   int
		off  time.Duration
		want float64
	}{
		{"step first interval", s, 0, 0, 1},
		{"step just before change", s, 0, 10*time.Second - 1, 1},
		{"step second interval", s, 0, 10 * time.Second, 3},
		{"step holds last", s, 0, time.Hour, 5},
		{"not started", s, 1, 24 * time.Second, 0},
		{"started late", s, 1, 25 * time.Second, 2},
		{"second of late DC", s, 1, 35 * time.Second, 4},
		{"unknown DC", s, 9, 0, 0},
		{"linear midway", &lin, 0, 5 * time.Second, 2},
		{"linear at change", &lin, 0, 10 * time.Second, 3},
		{"linear holds", &lin, 0, 100 * time.Second, 5},
		{"stop after last", &stop, 0, 30 * time.Second, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.s.Rate(tc.dc, tc.off); !near(got, tc.want, 1e-12) {
				t.Fatalf("rate %v, want %v", got, tc.want)
			}
		})
	}
}

func TestRamp(t *testing.T) {
	for _, tc := range []struct {
		name                string
		from, peak, to, stp float64
		want                []float64
		err                 bool
	}{
		{"paper simultaneous 1→15→6", 1, 15, 6, 1, []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6}, false},
		{"paper async 5→15→5 by 5", 5, 15, 5, 5, []float64{5, 10, 15, 10, 5}, false},
		{"uneven step ends at to", 1, 10, 2, 4, []float64{1, 5, 9, 10, 6, 2}, false},
		{"flat", 4, 4, 4, 1, []float64{4}, false},
		{"peak below from", 5, 4, 1, 1, nil, true},
		{"zero step", 1, 5, 1, 0, nil, true},
		{"too many", 0, MaxRate, 0, 1e-3, nil, true},
		{"NaN", math.NaN(), 5, 1, 1, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Ramp(tc.from, tc.peak, tc.to, tc.stp)
			if (err != nil) != tc.err {
				t.Fatalf("err %v", err)
			}
			if tc.err {
				return
			}
			if len(got) != len(tc.want) {
				t.Fatalf("ramp %v, want %v", got, tc.want)
			}
			for i := range got {
				if !near(got[i], tc.want[i], 1e-9) {
					t.Fatalf("ramp %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func TestParseSchedule(t *testing.T) {
	good := `
changeInterval: 30s
shape: linear
dcs:
  - {dc: 0, rates: [1, 5]}
  - {dc: 2, start: 120s, ramp: {from: 5, peak: 15, to: 5, step: 5}}
`
	s, err := ParseSchedule([]byte(good), 4)
	if err != nil {
		t.Fatal(err)
	}
	if s.ChangeInterval != 30*time.Second || s.Shape != Linear || len(s.DCs) != 2 || s.DCs[1].Start != 120*time.Second || len(s.DCs[1].Rates) != 5 {
		t.Fatalf("parsed %+v", s)
	}
	if got := s.Rate(2, 150*time.Second); got != 10 {
		t.Fatalf("rate %v", got)
	}
	for _, tc := range []struct {
		name, doc, field string
	}{
		{"empty", "", "empty document"},
		{"unknown field", "changeInterval: 1s\nbogus: 1\n", "bogus"},
		{"bad interval", "changeInterval: soon\n", "changeInterval"},
		{"zero interval", "changeInterval: 0s\n", "changeInterval"},
		{"bad shape", "changeInterval: 1s\nshape: wave\n", "shape"},
		{"missing dc", "changeInterval: 1s\ndcs: [{rates: [1]}]\n", "dcs[0].dc"},
		{"dc out of range", "changeInterval: 1s\ndcs: [{dc: 4, rates: [1]}]\n", "dcs[0].dc"},
		{"duplicate dc", "changeInterval: 1s\ndcs: [{dc: 1, rates: [1]}, {dc: 1, rates: [2]}]\n", "dcs[1].dc"},
		{"negative rate", "changeInterval: 1s\ndcs: [{dc: 1, rates: [-1]}]\n", "rates[0]"},
		{"no rates", "changeInterval: 1s\ndcs: [{dc: 1}]\n", "dcs[0].rates"},
		{"both forms", "changeInterval: 1s\ndcs: [{dc: 1, rates: [1], ramp: {from: 1, peak: 2, to: 1, step: 1}}]\n", "not both"},
		{"bad ramp", "changeInterval: 1s\ndcs: [{dc: 1, ramp: {from: 1, peak: 2, to: 1, step: 0}}]\n", "ramp"},
		{"bad start", "changeInterval: 1s\ndcs: [{dc: 1, start: later, rates: [1]}]\n", "start"},
		{"negative start", "changeInterval: 1s\ndcs: [{dc: 1, start: -1s, rates: [1]}]\n", "start"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSchedule([]byte(tc.doc), 4)
			if err == nil || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("err %v, want one naming %q", err, tc.field)
			}
		})
	}
}

func FuzzParseSchedule(f *testing.F) {
	f.Add([]byte("changeInterval: 30s\ndcs: [{dc: 0, rates: [1, 2]}, {dc: 1, start: 5s, ramp: {from: 1, peak: 3, to: 2, step: 1}}]\n"))
	f.Add([]byte(`{"changeInterval": "1m", "shape": "linear", "stop": true, "dcs": [{"dc": 3, "rates": [0]}]}`))
	f.Add([]byte("changeInterval: 1ns\ndcs: [{dc: 0, ramp: {from: 0, peak: 99999, to: 0, step: 1}}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseSchedule(data, 8)
		if err != nil {
			return
		}
		if err := s.Validate(8); err != nil {
			t.Fatalf("parsed schedule does not validate: %v", err)
		}
		for _, d := range s.DCs {
			for _, off := range []time.Duration{0, d.Start, d.Start + s.ChangeInterval/2, 1 << 62} {
				if r := s.Rate(d.DC, off); !(r >= 0) || r > MaxRate {
					t.Fatalf("rate %v at %v", r, off)
				}
			}
		}
	})
}

func runCSVs(t *testing.T, seed uint64, sched *Schedule, d time.Duration) (map[string][]byte, *Engine) {
	t.Helper()
	w := newWorld(t, 4, fleet15, 1)
	var flowLog bytes.Buffer
	e := w.engine(t, Config{Schedule: sched, Seed: seed, Duration: d, SCSCFDC: 1, FlowLog: &flowLog})
	w.run(e, d)
	if !e.Done() {
		t.Fatal("engine not done")
	}
	out := map[string][]byte{}
	var b bytes.Buffer
	for name, fn := range map[string]func() error{
		"seconds":   func() error { return e.Recorder().WriteSecondsCSV(&b) },
		"instances": func() error { return e.Recorder().WriteInstancesCSV(&b) },
		"summary":   func() error { return e.Recorder().WriteSummaryCSV(&b) },
		"rttcdf":    func() error { return WriteCDFCSV(&b, &e.Recorder().FlowRTT) },
	} {
		b.Reset()
		if err := fn(); err != nil {
			t.Fatal(err)
		}
		out[name] = bytes.Clone(b.Bytes())
	}
	if err := e.Recorder().FlowLogErr(); err != nil {
		t.Fatal(err)
	}
	out["flows"] = flowLog.Bytes()
	return out, e
}

func TestSameSeedByteIdenticalCSV(t *testing.T) {
	rates, _ := Ramp(1, 15, 6, 1)
	sched := Uniform(4, 5*time.Second, rates)
	a, ea := runCSVs(t, 42, sched, 150*time.Second)
	b, _ := runCSVs(t, 42, sched, 150*time.Second)
	c, _ := runCSVs(t, 43, sched, 150*time.Second)
	for k := range a {
		if !bytes.Equal(a[k], b[k]) {
			t.Errorf("%s differs between two runs with seed 42", k)
		}
	}
	if bytes.Equal(a["seconds"], c["seconds"]) || bytes.Equal(a["flows"], c["flows"]) {
		t.Error("seeds 42 and 43 gave the same results")
	}
	r := ea.Recorder()
	if r.FlowsTotal == 0 || len(r.Seconds) != 150 || r.FlowsTruncated == 0 {
		t.Fatalf("run too small: %d flows, %d seconds, %d truncated", r.FlowsTotal, len(r.Seconds), r.FlowsTruncated)
	}
	lines := bytes.Count(a["flows"], []byte("\n"))
	if lines != r.FlowsTotal+1 {
		t.Fatalf("flow log has %d lines for %d flows", lines, r.FlowsTotal)
	}
	if !bytes.HasPrefix(a["seconds"], []byte("t,arrivals,calls,")) {
		t.Fatalf("seconds header: %q", a["seconds"][:40])
	}
}

func TestArrivalsFollowSchedule(t *testing.T) {
	sched := &Schedule{ChangeInterval: 100 * time.Second, Shape: Step, Stop: true, DCs: []DCSchedule{
		{DC: 0, Rates: []float64{5, 2}},
		{DC: 1, Start: 100 * time.Second, Rates: []float64{10}},
	}}
	w := newWorld(t, 2, fleet{"P-CSCF": 1, "S-CSCF": 1, "firewall": 1, "ids": 1, "transcoder": 1}, 0)
	e := w.engine(t, Config{Schedule: sched, Seed: 7, Duration: 300 * time.Second})
	w.run(e, 300*time.Second)
	window := func(from, to int) (n int) {
		for _, s := range e.Recorder().Seconds {
			if s.T > from && s.T <= to {
				n += s.Arrivals
			}
		}
		return n
	}
	for _, tc := range []struct {
		name     string
		from, to int
		want     float64
	}{
		{"dc0 alone at 5/s", 0, 100, 500},
		{"dc0 at 2/s + dc1 at 10/s", 100, 200, 1200},
		{"after the last interval (stop)", 200, 300, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := float64(window(tc.from, tc.to))
			if !near(got, tc.want, 5*math.Sqrt(tc.want)) {
				t.Fatalf("%v arrivals, want %v ± %.0f", got, tc.want, 5*math.Sqrt(tc.want))
			}
		})
	}
	// Every pair of users makes one call, each call two flows.
	total := window(0, 300)
	if r := e.Recorder(); r.FlowsTotal != 2*(total/2) {
		t.Fatalf("%d flows from %d users", r.FlowsTotal, total)
	}
}

// fixedRouter routes every flow to the same instances.
type fixedRouter struct {
	hops     []Hop
	err      error
	routed   []Flow
	released int
}

func (r *fixedRouter) Route(f Flow) ([]Hop, error) {
	r.routed = append(r.routed, f)
	return r.hops, r.err
}
func (r *fixedRouter) Release(Flow, []Hop) { r.released++ }

func TestDataPlaneOverloadHandComputed(t *testing.T) {
	// 800 flows of 50 pkt/s from dc0 to dc1 through one firewall and one
	// IDS in dc0: 40000 pkt/s offered to a 35000 pkt/s firewall (loss 1/8,
	// buffer full: 20 ms), then 35000 pkt/s to a 20000 pkt/s IDS (loss 3/7,
	// 20 ms). A flow loses 1 − 7/8·4/7 = 1/2. The reverse flows (dc1 → dc0)
	// run through idle instances of dc1.
	w := newWorld(t, 2, fleet{"P-CSCF": 1, "S-CSCF": 1, "firewall": 1, "ids": 1}, 0)
	router := &fixedRouter{}
	e := w.engine(t, Config{Schedule: Uniform(2, time.Second, []float64{0}), Chain: []string{"firewall", "ids"}, Duration: 10 * time.Second, Router: router})
	fw := Hop{DC: 0, Instance: "dc0-firewall-0"}
	ids := Hop{DC: 0, Instance: "dc0-ids-0"}
	at := w.start.Add(time.Second)
	var row Second
	for i := 0; i < 400; i++ {
		router.hops = []Hop{fw, ids}
		// caller dc0 → callee dc1: flow 0 enters at dc0, flow 1 at dc1.
		c := &call{id: uint64(i), caller: 0, callee: 1, end: at.Add(time.Minute)}
		c.flows[0] = &flow{Flow: Flow{ID: uint64(2 * i), Call: c.id, Entry: 0, Exit: 1, Rate: e.rate, At: at}}
		e.route(c.flows[0], &row)
		router.hops = []Hop{fw, ids}
		c.flows[1] = &flow{Flow: Flow{ID: uint64(2*i + 1), Call: c.id, Dir: 1, Entry: 1, Exit: 0, Rate: e.rate, At: at}}
		e.route(c.flows[1], &row)
		e.calls = append(e.calls, c)
	}
	if e.rate != 50 {
		t.Fatalf("packet rate %v, want 50", e.rate)
	}
	e.dataPlane(at, &row)
	if !near(row.DPOffered, 40000, 1e-6) || !near(row.DPLoss, 0.5, 1e-9) || row.Flows != 800 {
		t.Fatalf("row %+v", row)
	}
	f := e.calls[0].flows[0]
	if !near(f.queue, 40, 1e-9) {
		t.Fatalf("queueing %v ms, want 40", f.queue)
	}
	// Path dc0 (entry) → dc0 → dc0 → dc1 (exit): 10 ms one way; the reverse
	// flow's path dc1 → dc0 → dc0 → dc0: 10 ms. RTT = 2·(10 + 40) = 100 ms.
	if !near(row.RTTMeanMs, 100, 1e-9) {
		t.Fatalf("RTT %v, want 100", row.RTTMeanMs)
	}
	// The instances' agents see the overload: CPU 100 %, pkt/s = offered.
	tot, _ := w.cloud.Report(at)
	for _, x := range tot {
		if x.DC == 0 && x.VNF == "firewall" && (!near(x.Offered, 40000, 1e-6) || x.MeanCPU != 100 || !near(x.Lost, 5000, 1e-6)) {
			t.Fatalf("firewall totals %+v", x)
		}
		if x.DC == 0 && x.VNF == "ids" && (!near(x.Offered, 35000, 1e-6) || !near(x.Served, 20000, 1e-6)) {
			t.Fatalf("ids totals %+v", x)
		}
	}
}

func TestControlPlaneHandComputed(t *testing.T) {
	// 2 DCs 10 ms apart, S-CSCF in dc0. 300 INVITEs from dc1 to dc1: dc1's
	// P-CSCF (500 tx/s) sees each twice, 600 tx/s: loss 1/6, queue 500 ms
	// (buffer full). The S-CSCFs (200 tx/s, 2 instances) get 150 each: no
	// loss, W = 1000/(200 − 150) = 20 ms. Completion = 2·(10 + 10) +
	// 2·(500 + 20 + 500) = 2080 ms; success (5/6)·1·(5/6) = 25/36.
	w := newWorld(t, 2, fleet{"P-CSCF": 1, "S-CSCF": 2, "firewall": 1, "ids": 1, "transcoder": 1}, 0)
	e := w.engine(t, Config{Schedule: Uniform(2, time.Second, []float64{0}), Duration: 10 * time.Second})
	cps := cpSecond{pc: make([]float64, 2), reg: make([]float64, 2), call: make([]float64, 4)}
	cps.call[1*2+1] = 300 // caller and callee in dc1: P-CSCF of dc1 twice
	var row Second
	e.controlPlane(w.start.Add(time.Second), &cps, &row)
	if !near(row.CPTx, 300, 1e-9) || !near(row.CPFailed, 300*(1-25.0/36), 1e-6) {
		t.Fatalf("row %+v", row)
	}
	if !near(row.SIPMeanMs, 2080, 1e-6) {
		t.Fatalf("SIP completion %v ms, want 2080", row.SIPMeanMs)
	}
	tot, _ := w.cloud.Report(w.start)
	for _, x := range tot {
		if x.DC == 1 && x.VNF == "P-CSCF" && !near(x.Offered, 600, 1e-9) {
			t.Fatalf("P-CSCF dc1 offered %v", x.Offered)
		}
		if x.DC == 0 && x.VNF == "S-CSCF" && (x.Active != 2 || !near(x.Offered, 300, 1e-9) || !near(x.Served, 300, 1e-9) || !near(x.MeanCPU, 75, 1e-9)) {
			t.Fatalf("S-CSCF totals %+v", x)
		}
	}
}

func TestRouterDropsAndInvalidRoutesCounted(t *testing.T) {
	for _, tc := range []struct {
		name   string
		router *fixedRouter
		reason string
	}{
		{"router refuses", &fixedRouter{err: errors.New("no path")}, "no path"},
		{"wrong hop count", &fixedRouter{hops: []Hop{{0, "dc0-firewall-0"}}}, "1 hops"},
		{"unknown instance", &fixedRouter{hops: []Hop{{0, "x"}, {0, "dc0-ids-0"}, {0, "dc0-transcoder-0"}}}, "stage 1: unknown"},
		{"wrong VNF", &fixedRouter{hops: []Hop{{0, "dc0-firewall-0"}, {0, "dc0-firewall-0"}, {0, "dc0-transcoder-0"}}}, "stage 2: instance of another VNF"},
		{"wrong DC", &fixedRouter{hops: []Hop{{1, "dc0-firewall-0"}, {0, "dc0-ids-0"}, {0, "dc0-transcoder-0"}}}, "stage 1: instance in another DC"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, 2, fleet{"P-CSCF": 1, "S-CSCF": 1, "firewall": 1, "ids": 1, "transcoder": 1}, 0)
			e := w.engine(t, Config{Schedule: Uniform(2, time.Minute, []float64{3}), Seed: 1, Duration: 100 * time.Second, Router: tc.router})
			w.run(e, 100*time.Second)
			r := e.Recorder()
			if r.FlowsTotal == 0 || r.FlowsDropped != r.FlowsTotal || r.DropReasons()[tc.reason] == 0 && !hasPrefix(r.DropReasons(), tc.reason) {
				t.Fatalf("%d of %d dropped, reasons %v", r.FlowsDropped, r.FlowsTotal, r.DropReasons())
			}
			if r.DPLost != r.DPOffered || tc.router.released != 0 {
				t.Fatalf("dropped flows delivered packets (%v of %v) or were released (%d)", r.DPLost, r.DPOffered, tc.router.released)
			}
		})
	}
}

func hasPrefix(m map[string]int, p string) bool {
	for k := range m {
		if strings.Contains(k, p) {
			return true
		}
	}
	return false
}

type workloadRec struct {
	cp, dp []time.Time
	cpLast []PairLoad
	dpAll  [][]PairLoad
}

func (w *workloadRec) CPWorkload(at time.Time, l []PairLoad) {
	w.cp = append(w.cp, at)
	w.cpLast = l
}
func (w *workloadRec) DPWorkload(at time.Time, l []PairLoad) {
	w.dp = append(w.dp, at)
	w.dpAll = append(w.dpAll, l)
}

func TestWorkloadReportsAndFlowLifetime(t *testing.T) {
	w := newWorld(t, 2, fleet{"P-CSCF": 1, "S-CSCF": 1, "firewall": 1, "ids": 1, "transcoder": 1}, 0)
	router := &LocalRouter{Cloud: w.cloud, Chain: paperChain}
	wl := &workloadRec{}
	e := w.engine(t, Config{Schedule: Uniform(2, time.Minute, []float64{2}), Seed: 3, Duration: 200 * time.Second, Router: router, Workload: wl, ArrivalsUntil: 100 * time.Second})
	w.run(e, 200*time.Second)
	if len(wl.dp) != 200 || len(wl.cp) != 40 || !wl.cp[0].Equal(w.start.Add(5*time.Second)) {
		t.Fatalf("%d DP reports, %d CP reports, first CP at %v", len(wl.dp), len(wl.cp), wl.cp[0].Sub(w.start))
	}
	// DP load per pair = 50 pkt/s per active flow with that entry and exit.
	rows := e.Recorder().Seconds
	for i, loads := range wl.dpAll {
		sum := 0.0
		for _, l := range loads {
			sum += l.Rate
		}
		if !near(sum, 50*float64(rows[i].Flows), 1e-9) && rows[i].DroppedFlows == 0 {
			t.Fatalf("second %d: DP workload %v for %d flows", i+1, sum, rows[i].Flows)
		}
	}
	// Arrivals stop at 100 s; the last calls start by then and end 60 s
	// later with BYE: no flow is active after 161 s, every flow released.
	for _, s := range rows[161:] {
		if s.Flows != 0 || s.CPTx != 0 {
			t.Fatalf("second %d: %d flows, %v transactions", s.T, s.Flows, s.CPTx)
		}
	}
	if len(wl.cpLast) != 0 {
		t.Fatalf("CP load reported after the traffic ended: %v", wl.cpLast)
	}
	for _, id := range []string{"dc0-firewall-0", "dc1-transcoder-0"} {
		if n := router.Pinned(id); n != 0 {
			t.Fatalf("%s still has %d pinned flows", id, n)
		}
	}
	r := e.Recorder()
	if r.FlowsTruncated != 0 || r.FlowsDropped != 0 || r.FlowRTT.Count() != float64(r.FlowsTotal) {
		t.Fatalf("flows %d truncated %d dropped %d with RTT %v", r.FlowsTotal, r.FlowsTruncated, r.FlowsDropped, r.FlowRTT.Count())
	}
	// Each call = 2 REGISTER + INVITE + BYE.
	users := 0
	for _, s := range rows {
		users += s.Arrivals
	}
	if want := float64(users + 2*(users/2)); !near(r.CPTx, want, 1e-9) {
		t.Fatalf("%v transactions for %d users, want %v", r.CPTx, users, want)
	}
}

func TestKilledInstanceLosesPinnedFlows(t *testing.T) {
	w := newWorld(t, 1, fleet{"P-CSCF": 1, "S-CSCF": 1, "firewall": 1, "ids": 1, "transcoder": 1}, 0)
	e := w.engine(t, Config{Schedule: Uniform(1, time.Minute, []float64{4}), Seed: 5, Duration: 40 * time.Second})
	e.Start()
	w.clk.RunUntil(w.start.Add(20 * time.Second))
	if got := e.Recorder().Seconds[19]; got.DPLoss != 0 || got.Flows == 0 {
		t.Fatalf("before the kill: %+v", got)
	}
	w.cloud.Kill("dc0-ids-0")
	w.clk.RunUntil(w.start.Add(21 * time.Second))
	if got := e.Recorder().Seconds[20]; got.DPLoss != 1 {
		t.Fatalf("after killing the only IDS: loss %v", got.DPLoss)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	w := newWorld(t, 2, fleet{"P-CSCF": 1}, 0)
	sched := Uniform(2, time.Second, []float64{1})
	r := &LocalRouter{Cloud: w.cloud, Chain: paperChain}
	base := Config{Cloud: w.cloud, Delays: w.delays, Schedule: sched, Router: r, Duration: time.Minute}
	for _, tc := range []struct {
		name  string
		mod   func(*Config)
		field string
	}{
		{"no cloud", func(c *Config) { c.Cloud = nil }, "cloud"},
		{"no router", func(c *Config) { c.Router = nil }, "router"},
		{"short", func(c *Config) { c.Duration = time.Millisecond }, "duration"},
		{"bad S-CSCF DC", func(c *Config) { c.SCSCFDC = 2 }, "scscfDC"},
		{"CP VNF in chain", func(c *Config) { c.Chain = []string{"firewall", "P-CSCF"} }, "chain[1]"},
		{"duplicate stage", func(c *Config) { c.Chain = []string{"ids", "IDS"} }, "chain[1]"},
		{"DP VNF as P-CSCF", func(c *Config) { c.PCSCF = "ids" }, "Config.PCSCF"},
		{"fractional call", func(c *Config) { c.CallDuration = 1500 * time.Millisecond }, "callDuration"},
		{"schedule for 3 DCs", func(c *Config) { c.Schedule = Uniform(3, time.Second, []float64{1}) }, "dcs[2]"},
		{"negative packet size", func(c *Config) { c.PacketBytes = -1 }, "packetBytes"},
		{"unknown pairing", func(c *Config) { c.Pairing = "random" }, "pairing"},
		{"delays of another size", func(c *Config) { c.Delays = mustDelays(t, 3) }, "delays"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			tc.mod(&cfg)
			_, err := New(w.clk, cfg)
			if err == nil || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("err %v, want one naming %q", err, tc.field)
			}
		})
	}
}

func mustDelays(t *testing.T, n int) *sim.Delays {
	m := make([][]float64, n)
	for i := range m {
		m[i] = make([]float64, n)
	}
	d, err := sim.NewDelays(t0, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestHistQuantilesAndCDF(t *testing.T) {
	var h Hist
	for i := 1; i <= 1000; i++ {
		h.Add(float64(i), 1)
	}
	h.Add(0, 1)
	h.Add(math.NaN(), 1)
	h.Add(5, 0)
	if h.Count() != 1001 || !near(h.Mean(), 500500.0/1001, 1e-9) || h.Max() != 1000 {
		t.Fatalf("count %v mean %v max %v", h.Count(), h.Mean(), h.Max())
	}
	for _, q := range []float64{0.5, 0.9, 0.99} {
		want := q * 1001
		if got := h.Quantile(q); got < want*0.97 || got > want*1.03 {
			t.Errorf("q%v = %v, want ≈ %v", q, got, want)
		}
	}
	cdf := h.CDF()
	if cdf[0].Le != HistMin || !near(cdf[0].Fraction, 1.0/1001, 1e-12) || cdf[len(cdf)-1].Fraction != 1 || cdf[len(cdf)-1].Le != 1000 {
		t.Fatalf("cdf ends %v … %v", cdf[0], cdf[len(cdf)-1])
	}
	for i := 1; i < len(cdf); i++ {
		if cdf[i].Le <= cdf[i-1].Le || cdf[i].Fraction < cdf[i-1].Fraction {
			t.Fatalf("cdf not increasing at %d: %v %v", i, cdf[i-1], cdf[i])
		}
	}
}

func TestDelayChangeReachesRTT(t *testing.T) {
	// Paper 6.3.1: g1–g3 rises from 17 to 65 ms (here at t = 20 s). Users
	// only in dc2 (g1), every stage in dc6 (g3): path 2 → 6 → 6 → 6 → 2,
	// one way 2·17 = 34 ms before, 2·65 = 130 ms after, RTT twice that
	// (+ sub-millisecond queueing on idle instances).
	w := newWorld(t, 8, fleet{"P-CSCF": 1, "S-CSCF": 1, "firewall": 1, "ids": 1, "transcoder": 1}, 4)
	ch := sim.PaperHighDelayChange()
	ch.After = 20 * time.Second
	d, err := sim.NewDelays(w.start, sim.PaperDelays8(), []sim.DelayChange{ch})
	if err != nil {
		t.Fatal(err)
	}
	w.delays = d
	router := &fixedRouter{hops: []Hop{{6, "dc6-firewall-0"}, {6, "dc6-ids-0"}, {6, "dc6-transcoder-0"}}}
	sched := &Schedule{ChangeInterval: time.Minute, Shape: Step, DCs: []DCSchedule{{DC: 2, Rates: []float64{4}}}}
	e := w.engine(t, Config{Schedule: sched, Seed: 11, Duration: 40 * time.Second, SCSCFDC: 4, Router: router})
	w.run(e, 40*time.Second)
	rows := e.Recorder().Seconds
	if got := rows[18].RTTMeanMs; !near(got, 68, 1) {
		t.Fatalf("RTT before the change %v, want ≈ 68", got)
	}
	if got := rows[25].RTTMeanMs; !near(got, 260, 1) {
		t.Fatalf("RTT after the change %v, want ≈ 260", got)
	}
	// SIP crosses dc2 ↔ dc4 (g1–g2: 20 ms), unaffected by the g1–g3 change:
	// REGISTER 2·20 ms, INVITE/BYE 2·(20 + 20) ms, plus 2·W at each CSCF
	// (W ≈ 2 ms at the P-CSCF, ≈ 5 ms at the S-CSCF at this load).
	for _, r := range []Second{rows[18], rows[25]} {
		if r.SIPMeanMs < 40 || r.SIPMeanMs > 100 || r.SIPP95Ms > 100 {
			t.Fatalf("second %d: SIP completion mean %v p95 %v ms", r.T, r.SIPMeanMs, r.SIPP95Ms)
		}
	}
}
