package global

import (
	"strings"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/fsm"
	"github.com/ims-orch/ims-orch/controller/protocol"
	"github.com/ims-orch/ims-orch/controller/transport"
)

var (
	t0               = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	transportCfgNone = transport.MemConfig{Delay: time.Millisecond}
)

type harness struct {
	clk   *clock.Virtual
	mem   *transport.Mem
	store *MemStore
	eng   *Engine
	parts map[string]*scripted
	topo  fsm.Topology
	cfg   Config
}

func newHarness(t *testing.T, n int, mc transport.MemConfig, hooks Hooks, rate func(i, j int) float64) *harness {
	t.Helper()
	return newHarnessStore(t, n, mc, hooks, rate, nil)
}

// newHarnessStore is newHarness with the engine's store s (nil: a
// MemStore; a *gateStore: its MemStore is the harness's store).
func newHarnessStore(t *testing.T, n int, mc transport.MemConfig, hooks Hooks, rate func(i, j int) float64, s Store) *harness {
	t.Helper()
	h := &harness{clk: clock.NewVirtual(t0), store: NewMemStore(), parts: map[string]*scripted{}, topo: testTopology(n)}
	switch g := s.(type) {
	case nil:
		s = h.store
	case *gateStore:
		h.store = g.MemStore
	default:
		t.Fatalf("newHarnessStore: store %T", s)
	}
	var err error
	if h.mem, err = transport.NewMem(h.clk, mc); err != nil {
		t.Fatal(err)
	}
	setup(t, h.store, h.topo)
	for _, dc := range h.topo.DCs {
		p := newScripted(dc, vnfNames(h.topo), 1)
		h.parts[dc] = p
		h.mem.Register(dc, p)
	}
	h.cfg = Config{Interval: 50 * time.Second}
	h.eng, err = New(h.cfg, Deps{Clock: h.clk, Transport: h.mem, Forecaster: newAR1(), Store: s, Hooks: hooks})
	if err != nil {
		t.Fatal(err)
	}
	if rate != nil {
		tick := 0
		var report func()
		report = func() {
			tick++
			for _, r := range workloadReports(h.topo, h.clk.Now(), tick, rate) {
				if err := h.eng.ReportWorkload(r); err != nil {
					t.Errorf("report: %v", err)
				}
			}
			h.clk.AfterFunc(time.Second, report)
		}
		h.clk.AfterFunc(time.Second, report)
	}
	return h
}

// runRounds advances virtual time until the store has entered `rounds`
// intervals (bounded: fails after rounds+2 intervals).
func (h *harness) runRounds(t *testing.T, rounds uint64) {
	t.Helper()
	limit := h.clk.Now().Add(time.Duration(rounds+2) * h.cfg.Interval)
	for h.store.State().Interval < rounds {
		if !h.clk.Now().Before(limit) {
			t.Fatalf("only %d of %d rounds completed by %v", h.store.State().Interval, rounds, h.clk.Now().Sub(t0))
		}
		h.clk.Advance(100 * time.Millisecond)
	}
}

func TestRoundsCompleteUnderLossAndDuplication(t *testing.T) {
	for _, tc := range []struct {
		name string
		mc   transport.MemConfig
	}{
		{"20% loss, 10% dup, reorder", transport.MemConfig{Loss: 0.2, Dup: 0.1, Delay: 5 * time.Millisecond, Jitter: 200 * time.Millisecond, Seed: 1}},
		{"20% loss, other seed", transport.MemConfig{Loss: 0.2, Dup: 0.2, Delay: 20 * time.Millisecond, Jitter: 700 * time.Millisecond, Seed: 42}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, 5, tc.mc, Hooks{}, func(i, j int) float64 { return float64(1000 * (1 + (i+j)%3)) })
			if err := h.eng.Start(); err != nil {
				t.Fatal(err)
			}
			h.runRounds(t, 10)
			st := h.eng.Stats()
			if st.Rounds < 10 {
				t.Fatalf("engine completed %d rounds, want ≥ 10", st.Rounds)
			}
			if st.Retransmissions == 0 {
				t.Fatalf("no retransmission under 20%% loss: %+v", st)
			}
			if st.Unreachable != 0 {
				t.Fatalf("a DC was given up under 20%% loss: %+v", st)
			}
			ms := h.mem.Stats()
			if ms.Dropped == 0 || ms.Duplicated == 0 {
				t.Fatalf("transport injected no fault: %+v", ms)
			}
			dupSeen := 0
			for dc, p := range h.parts {
				for r := uint64(0); r < 10; r++ {
					for _, step := range []protocol.Step{protocol.StepAcquire, protocol.StepBroadcast, protocol.StepEnter} {
						if n := p.actedCount(r, step); n != 1 {
							t.Errorf("%s acted %d times on round %d step %v, want once", dc, n, r, step)
						}
					}
				}
				if p.maxActed() != 1 {
					t.Errorf("%s acted twice on some step", dc)
				}
				iv, _, dups := p.state()
				dupSeen += dups
				if iv < 10 {
					t.Errorf("%s is in interval %d, want ≥ 10", dc, iv)
				}
			}
			if dupSeen == 0 {
				t.Errorf("participants never saw a duplicate request (re-sends or dups should reach them)")
			}
			recs := h.eng.Records()
			if len(recs) < 10 {
				t.Fatalf("%d records", len(recs))
			}
			retr := 0
			for i, r := range recs[:10] {
				retr += r.Retransmissions
				if r.Round != uint64(i) || len(r.Steps) != 5 {
					t.Errorf("record %d: round %d with %d steps, want round %d with 5", i, r.Round, len(r.Steps), i)
				}
			}
			if retr == 0 {
				t.Errorf("records show no retransmission")
			}
		})
	}
}

func TestSameSeedSameRun(t *testing.T) {
	run := func() (Stats, transport.MemStats, []RoundRecord) {
		h := newHarness(t, 4, transport.MemConfig{Loss: 0.2, Dup: 0.1, Jitter: 300 * time.Millisecond, Seed: 7}, Hooks{}, func(i, j int) float64 { return 5000 })
		if err := h.eng.Start(); err != nil {
			t.Fatal(err)
		}
		h.runRounds(t, 4)
		return h.eng.Stats(), h.mem.Stats(), h.eng.Records()
	}
	s1, m1, r1 := run()
	s2, m2, r2 := run()
	if s1 != s2 || m1 != m2 {
		t.Fatalf("two runs with one seed differ:\n%+v %+v\n%+v %+v", s1, m1, s2, m2)
	}
	for i := range r1 {
		if r1[i].Finished != r2[i].Finished || r1[i].Retransmissions != r2[i].Retransmissions {
			t.Fatalf("round %d differs between runs", i)
		}
	}
}

func TestUnanswering(t *testing.T) {
	t.Run("silent at step 2: given up, round completes, re-synced when back", func(t *testing.T) {
		h := newHarness(t, 4, transport.MemConfig{Delay: time.Millisecond}, Hooks{}, func(i, j int) float64 { return 3000 })
		h.mem.SetDown("dc2", true)
		if err := h.eng.Start(); err != nil {
			t.Fatal(err)
		}
		h.runRounds(t, 2)
		recs := h.eng.Records()
		for _, r := range recs[:2] {
			if r.Unreachable["dc2"] != protocol.StepAcquire || len(r.Unreachable) != 1 {
				t.Fatalf("round %d unreachable = %v, want dc2 at step 2", r.Round, r.Unreachable)
			}
			if d := r.Finished.Sub(r.Started); d < h.eng.cfg.StepDeadline || d > h.eng.cfg.StepDeadline+time.Second {
				t.Errorf("round %d took %v, want about the %v deadline", r.Round, d, h.eng.cfg.StepDeadline)
			}
			if len(r.Decision) != 4 {
				t.Errorf("round %d: %d DC decisions, want 4 (the silent DC is still planned)", r.Round, len(r.Decision))
			}
		}
		if st := h.eng.Stats(); st.Unreachable != 2 {
			t.Fatalf("Unreachable = %d, want 2 (one per round)", st.Unreachable)
		}
		if s := h.store.State(); s.Stale["dc2"] != 1 {
			t.Fatalf("stale = %v, want dc2 stale since round 1", s.Stale)
		}
		for _, step := range []protocol.Step{protocol.StepBroadcast, protocol.StepEnter} {
			if n := h.parts["dc2"].actedCount(0, step); n != 0 {
				t.Fatalf("dc2 was sent step %v after being given up", step)
			}
		}
		h.mem.SetDown("dc2", false)
		h.runRounds(t, 3)
		if iv, _, _ := h.parts["dc2"].state(); iv != 3 {
			t.Fatalf("dc2 interval %d after coming back, want 3", iv)
		}
		if s := h.store.State(); s.Stale != nil {
			t.Fatalf("stale = %v after dc2 came back", s.Stale)
		}
		if len(h.parts["dc2"].paths) == 0 {
			t.Fatalf("dc2 got no path set when it came back")
		}
	})
	t.Run("silent at step 2 after answering before: planned with its last report", func(t *testing.T) {
		var h *harness
		h = newHarness(t, 3, transportCfgNone, Hooks{StepCommitted: func(r uint64, s protocol.Step) {
			if r == 0 && s == protocol.StepEnter {
				h.mem.SetDown("dc1", true)
			}
		}}, nil)
		h.parts["dc1"].vnfs["pcscf"].Working = 3
		if err := h.eng.Start(); err != nil {
			t.Fatal(err)
		}
		h.runRounds(t, 2)
		rec := h.eng.Records()[1]
		if rec.Unreachable["dc1"] != protocol.StepAcquire {
			t.Fatalf("unreachable = %v", rec.Unreachable)
		}
		// Round 0 told dc1 to go from 3 P-CSCF to the minimum 1; dc1's last
		// report (round 0) said 3, and that is what round 1 plans from.
		var pc protocol.VNFTarget
		for _, d := range rec.Decision {
			if d.DC == "dc1" {
				pc = d.Targets[0]
			}
		}
		if pc.VNF != "pcscf" || !strings.Contains(pc.Reason, "(was 3)") || pc.ToBuffer != 2 {
			t.Fatalf("dc1 P-CSCF target %+v, want planned from the last report's 3 working", pc)
		}
	})
	t.Run("silent after step 2: given up at step 4, not sent step 5", func(t *testing.T) {
		var h *harness
		h = newHarness(t, 3, transport.MemConfig{Delay: time.Millisecond}, Hooks{StepCommitted: func(r uint64, s protocol.Step) {
			if r == 0 && s == protocol.StepAcquire {
				h.mem.SetDown("dc1", true)
			}
		}}, nil)
		if err := h.eng.Start(); err != nil {
			t.Fatal(err)
		}
		h.runRounds(t, 1)
		rec := h.eng.Records()[0]
		if rec.Unreachable["dc1"] != protocol.StepBroadcast {
			t.Fatalf("unreachable = %v, want dc1 at step 4", rec.Unreachable)
		}
		if h.parts["dc1"].actedCount(0, protocol.StepAcquire) != 1 || h.parts["dc1"].actedCount(0, protocol.StepEnter) != 0 {
			t.Fatalf("dc1 acted on step 2 %d times and on step 5 %d times, want 1 and 0",
				h.parts["dc1"].actedCount(0, protocol.StepAcquire), h.parts["dc1"].actedCount(0, protocol.StepEnter))
		}
		if h.parts["dc0"].actedCount(0, protocol.StepEnter) != 1 {
			t.Fatalf("dc0 did not enter the interval")
		}
	})
}

func TestDecisionCarriesTargetsReasonsAndPaths(t *testing.T) {
	h := newHarness(t, 4, transport.MemConfig{}, Hooks{}, func(i, j int) float64 {
		if i == 0 && j == 3 {
			return 60000 // needs 2 firewall, 3 ids, 4 transcoder instances on its path
		}
		return 0
	})
	if err := h.eng.Start(); err != nil {
		t.Fatal(err)
	}
	h.runRounds(t, 1)
	rec := h.eng.Records()[0]
	if got := rec.Actual["dp/dc0/dc3"]; got != 60000 {
		t.Fatalf("interval average dp/dc0/dc3 = %g, want 60000", got)
	}
	if got := rec.Actual["delay/dc0/dc3"]; got != 10 {
		t.Fatalf("interval average delay/dc0/dc3 = %g, want 10 (g0–g1)", got)
	}
	if got := rec.Predicted["dp/dc0/dc3"]; got != 60000 {
		t.Fatalf("prediction after one interval = %g, want the observation 60000", got)
	}
	var path *protocol.PathEntry
	for i, p := range rec.Paths {
		if p.Entry == "dc0" && p.Exit == "dc3" {
			path = &rec.Paths[i]
		}
	}
	if path == nil || len(path.Hops) != 5 || path.Hops[0] != "dc0" || path.Hops[4] != "dc3" {
		t.Fatalf("path set %v has no dc0→dc3 path of 5 hops", rec.Paths)
	}
	if len(h.parts["dc1"].paths) != len(rec.Paths) {
		t.Fatalf("dc1 received %d paths, the decision has %d", len(h.parts["dc1"].paths), len(rec.Paths))
	}
	if rec.PlanError != "" {
		t.Fatalf("plan error: %s", rec.PlanError)
	}
	wantPerStage := map[string]int{"firewall": 2, "ids": 3, "transcoder": 4}
	got := map[string]int{}
	for _, d := range rec.Decision {
		names := map[string]bool{}
		for _, tg := range d.Targets {
			names[tg.VNF] = true
			if !strings.Contains(tg.Reason, "predicted") {
				t.Errorf("%s %s: reason %q does not name the prediction", d.DC, tg.VNF, tg.Reason)
			}
			if _, dp := wantPerStage[tg.VNF]; dp {
				got[tg.VNF] += tg.Working
			}
		}
		for _, v := range []string{"pcscf", "firewall", "ids", "transcoder"} {
			if !names[v] {
				t.Errorf("%s has no target for %s", d.DC, v)
			}
		}
		if names["scscf"] != (d.DC == "dc0") {
			t.Errorf("%s: scscf target present = %v, want only at the S-CSCF DC", d.DC, names["scscf"])
		}
		if d.Interval != 1 {
			t.Errorf("%s: decision interval %d, want 1", d.DC, d.Interval)
		}
	}
	for stg, want := range wantPerStage {
		// Each DC started with 1 working instance of every stage; the path's
		// DCs must hold at least ⌈60000/C⌉ of them.
		if got[stg] < want {
			t.Errorf("%s: %d working in total, want ≥ %d for 60000 pkt/s", stg, got[stg], want)
		}
	}
	if !strings.Contains(rec.Decision[0].Targets[0].Reason, "dc0→dc3") {
		t.Errorf("dc0's P-CSCF reason %q does not name the pair that loads it", rec.Decision[0].Targets[0].Reason)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	clk := clock.NewVirtual(t0)
	mem, _ := transport.NewMem(clk, transport.MemConfig{})
	ok := Deps{Clock: clk, Transport: mem, Forecaster: newAR1(), Store: NewMemStore()}
	for _, tc := range []struct {
		name string
		cfg  Config
		deps Deps
		want string
	}{
		{"deadline above interval", Config{Interval: time.Second, StepDeadline: 2 * time.Second}, ok, "StepDeadline"},
		{"retransmit above deadline", Config{Retransmit: 6 * time.Second, StepDeadline: 5 * time.Second}, ok, "Retransmit"},
		{"negative", Config{Interval: -1}, ok, "negative"},
		{"no clock", Config{}, Deps{Transport: mem, Forecaster: newAR1(), Store: NewMemStore()}, "Clock"},
		{"no forecaster", Config{}, Deps{Clock: clk, Transport: mem, Store: NewMemStore()}, "Forecaster"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg, tc.deps)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to name %q", err, tc.want)
			}
		})
	}
}

// A new engine on the same store finishes the round a stopped one left after
// sending step 5; the participants see step 5 again with the same header and
// act once.
func TestResumeReSendsSameHeaders(t *testing.T) {
	h := newHarness(t, 3, transport.MemConfig{Delay: time.Millisecond}, Hooks{}, nil)
	second := engineOn(t, h, h.cfg, nil)
	var seen protocol.Header
	h.parts["dc0"].onHandle = func(req protocol.Request) {
		if req.Step == protocol.StepEnter && seen.Step == 0 {
			seen = req.Header
			h.eng.Stop() // the first engine dies with step 5 sent, not committed
		}
	}
	if err := h.eng.Start(); err != nil {
		t.Fatal(err)
	}
	for seen.Step == 0 && h.clk.Now().Before(t0.Add(2*time.Minute)) {
		h.clk.Advance(100 * time.Millisecond)
	}
	if seen.Step == 0 {
		t.Fatal("step 5 never reached dc0")
	}
	if st := h.store.State(); st.Round == nil || st.Round.Done != protocol.StepBroadcast {
		t.Fatalf("store: %+v, want round 0 with step 4 done", st.Round)
	}
	if err := second.Start(); err != nil {
		t.Fatal(err)
	}
	h.runRounds(t, 1)
	if second.Stats().Resumed != 1 || !second.Records()[0].Resumed {
		t.Fatalf("the second engine did not resume: %+v", second.Stats())
	}
	for dc, p := range h.parts {
		if n := p.actedCount(0, protocol.StepEnter); n != 1 {
			t.Errorf("%s entered interval 1 %d times", dc, n)
		}
		if n := p.actedCount(0, protocol.StepBroadcast); n != 1 {
			t.Errorf("%s applied decision 0 %d times", dc, n)
		}
	}
	if _, _, dups := h.parts["dc0"].state(); dups == 0 {
		t.Fatalf("dc0 was not re-sent step 5 with the same header")
	}
	if got := h.store.State().Interval; got != 1 {
		t.Fatalf("interval %d, want 1 (entered once)", got)
	}
}

// When planning fails the round still completes: every DC keeps its working
// counts and the current paths, and the record and reasons say why.
func TestPlanFailureKeepsCurrentProvisioning(t *testing.T) {
	h := newHarness(t, 130, transportCfgNone, Hooks{}, nil) // 130³ paths: over placement.ExactLimit
	mustApply(t, h.store, fsm.SetPolicy{Policy: fsm.Policy{DelayBoundMs: 250, Exact: true}})
	if err := h.eng.Start(); err != nil {
		t.Fatal(err)
	}
	h.runRounds(t, 1)
	rec := h.eng.Records()[0]
	if !strings.Contains(rec.PlanError, "exact") {
		t.Fatalf("plan error %q, want the placement's exact-solver refusal", rec.PlanError)
	}
	for _, d := range rec.Decision {
		for _, tg := range d.Targets {
			if tg.Working != 1 || tg.Create+tg.Reuse+tg.ToBuffer != 0 || !strings.HasPrefix(tg.Reason, "plan failed") {
				t.Fatalf("%s %s: %+v, want kept at 1 working with the failure as reason", d.DC, tg.VNF, tg)
			}
		}
	}
	if h.store.State().Interval != 1 {
		t.Fatal("round did not complete")
	}
}
