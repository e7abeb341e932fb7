package simulation

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/controller/routing"
	"github.com/ims-orch/ims-orch/controller/strategy"
	"github.com/ims-orch/ims-orch/drivers/sim/traffic"
	"github.com/ims-orch/ims-orch/placement"
	"github.com/ims-orch/ims-orch/placement/vnf"
)

const expDir = "../../testdata/experiments/"

func load(t *testing.T, name string) *Experiment {
	t.Helper()
	e, err := LoadExperiment(expDir + name)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func runExp(t *testing.T, e *Experiment, s strategy.Strategy, seed uint64) *Result {
	t.Helper()
	r, err := Run(context.Background(), e, Options{Strategy: s, Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	if r.RouterErrors != 0 {
		t.Fatalf("%d routing table errors", r.RouterErrors)
	}
	return r
}

// short returns e cut to d.
func short(e *Experiment, d time.Duration) *Experiment {
	c := e.clone()
	c.Duration = d
	return c
}

func writeAll(t *testing.T, r *Result) map[string][]byte {
	t.Helper()
	dir := t.TempDir()
	if err := WriteRun(dir, r); err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = b
	}
	return out
}

// Same seed → byte-identical CSV files; another seed → different traffic.
//
// 290 s of seed 1 reach a buffered transcoder in Tokyo that empties at
// t ≈ 276 s on a flat load: with the local controllers' Σ CPU added in the
// registry map's order (before fixedSum) it went at 10 s or 11 s in the
// buffer depending on the run (3 of 8 runs the other way), so two runs
// differed about every other time.
func TestDeterminism(t *testing.T) {
	e := short(load(t, "simultaneous-start-20s.yaml"), 290*time.Second)
	ra, rb := runExp(t, e, strategy.Hybrid, 1), runExp(t, e, strategy.Hybrid, 1)
	a, b := writeAll(t, ra), writeAll(t, rb)
	c := writeAll(t, runExp(t, e, strategy.Hybrid, 2))
	for _, dc := range ra.DCs {
		if x, y := ra.sys.Locals[dc].Actions(), rb.sys.Locals[dc].Actions(); !slices.Equal(x, y) {
			t.Errorf("%s: the local controller's actions differ between two runs with seed 1 (%d and %d)", dc, len(x), len(y))
		}
	}
	// the engine's log too: its closes name a fixed token (revL F3)
	ha, err := json.Marshal(ra.sys.Store.History())
	if err != nil {
		t.Fatal(err)
	}
	hb, _ := json.Marshal(rb.sys.Store.History())
	if !bytes.Equal(ha, hb) || !bytes.Contains(ha, []byte(`"closedBy":"simulator"`)) {
		t.Errorf("the prediction history differs between two runs with seed 1, or names no fixed closer:\n%.300s\n%.300s", ha, hb)
	}
	if len(a) != 7 {
		t.Fatalf("files %v", len(a))
	}
	for name, x := range a {
		if !bytes.Equal(x, b[name]) {
			t.Errorf("%s differs between two runs with seed 1", name)
		}
		if len(x) < 20 {
			t.Errorf("%s is nearly empty", name)
		}
	}
	if bytes.Equal(a["seconds.csv"], c["seconds.csv"]) {
		t.Error("seeds 1 and 2 gave the same seconds.csv")
	}
}

// The traffic really flows through the routing tables of the local
// controllers: flows cross DCs per the paths, no flow is dropped, and the
// proactive rounds run every interval.
func TestFlowsFollowRoutingTables(t *testing.T) {
	e := short(load(t, "simultaneous-start-20s.yaml"), 200*time.Second)
	r := runExp(t, e, strategy.Hybrid, 1)
	rec := r.Recorder
	if rec.FlowsTotal < 1000 || rec.FlowsDropped != 0 {
		t.Fatalf("flows %d dropped %d (%v)", rec.FlowsTotal, rec.FlowsDropped, rec.DropReasons())
	}
	var entered, forwarded uint64
	for _, rt := range r.sys.Routers {
		c := rt.Counters()
		entered += c.Entered
		forwarded += c.Forwarded
	}
	if entered != uint64(rec.FlowsTotal) || forwarded < entered {
		t.Fatalf("routing tables tagged %d flows (forwarded %d), the engine routed %d", entered, forwarded, rec.FlowsTotal)
	}
	// at least 4 rounds in 200 s + warm-up (50 s interval)
	if r.Rounds < 4 {
		t.Fatalf("rounds %d", r.Rounds)
	}
	// every flow was released at the end (the engine ends the running
	// calls), so the adapter holds no decision and no call mappings
	if len(r.router.flows) != 0 || len(r.router.calls) != 0 {
		t.Fatalf("router still holds %d flows and %d calls", len(r.router.flows), len(r.router.calls))
	}
}

// Fig. 9(b): after g1–g3 rises to 65 ms (bound 50 ms) at 350 s, the paths
// stop using the g1–g3 links within two intervals.
func TestLargeDelayPathsAvoidSlowLinks(t *testing.T) {
	if testing.Short() {
		t.Skip("550 s of an 8-DC experiment")
	}
	e := short(load(t, "large-delay-link.yaml"), 550*time.Second)
	r := runExp(t, e, strategy.Hybrid, 1)
	before, after := -1, -1
	for _, p := range r.Paths {
		if p.DC != 0 {
			continue
		}
		if p.T < 350 {
			before = p.OverChanged
		}
		if p.T > 350+2*50 {
			after = p.OverChanged
		}
	}
	if before <= 0 {
		t.Fatalf("paths over g1–g3 before the change: %d (the test needs some)", before)
	}
	if after != 0 {
		t.Fatalf("paths over g1–g3 two intervals after the change: %d, want 0", after)
	}
}

// Strategies of 6.2 on a short asynchronous start with the issue-5 options
// (AR(1), no headroom, no warm start, no guard, the paper's τ buffer):
// hybrid creates no more instances than reactive-only and loses far fewer
// packets than proactive-only. The paper's "hybrid creates fewer instances
// AND loses less than reactive-only" does NOT hold with them (hybrid's
// rounds buffer instances that reactive scaling then reuses), so it is not
// asserted; TestDefaultsBeatReactive checks what the current defaults do.
func TestStrategiesAsyncStart(t *testing.T) {
	if testing.Short() {
		t.Skip("three 700 s runs")
	}
	e := short(load(t, "async-start.yaml"), 700*time.Second)
	issue5Options(e)
	h := runExp(t, e, strategy.Hybrid, 1).Summarize()
	r := runExp(t, e, strategy.Reactive, 1).Summarize()
	p := runExp(t, e, strategy.Proactive, 1).Summarize()
	t.Logf("hybrid %+v", h)
	t.Logf("reactive %+v", r)
	t.Logf("proactive %+v", p)
	if h.Created > r.Created {
		t.Errorf("hybrid created %d instances, reactive-only %d", h.Created, r.Created)
	}
	if !(h.DPLoss < p.DPLoss/2) {
		t.Errorf("hybrid DP loss %.4f, proactive-only %.4f: want less than half", h.DPLoss, p.DPLoss)
	}
	if r.ProactiveNew > h.ProactiveNew+h.ReactiveCreates || r.Rounds != 1 || h.Rounds < 10 {
		t.Errorf("rounds: hybrid %d, reactive %d", h.Rounds, r.Rounds)
	}
	if p.ReactiveCreates != 0 {
		t.Errorf("proactive-only created %d instances reactively", p.ReactiveCreates)
	}
}

// With the defaults (issue 16: Kalman forecast, 90 % target utilisation,
// warm start, scale-in guard, plan horizon, buffer trimmed to 0 spare), on
// async start with every DC's ramp (Tokyo → Hong Kong delay 0 s, the
// traffic ends at 870 s, cut at 900 s), hybrid pays at most 0.88 ×
// reactive-only's VM-seconds, loses at most 0.5 × its DP packets (the issue's
// goal) and stays within 1.35 × the per-second floor (measured 0.825, 0.03,
// 1.290 (loss 0.0002 against 0.0075) since a starting series is planned from its recent level — session
// 6; 0.816, 0.61, 1.291 before, so the loss bound fails without it; 0.831,
// 0.619, 1.292 before the horizon followed the last change; with the
// issue-5 options the same run measured 0.914, 2.995, 1.437, so every bound
// fails without the new defaults).
func TestDefaultsBeatReactive(t *testing.T) {
	if testing.Short() {
		t.Skip("two 900 s runs")
	}
	e, err := load(t, "async-start.yaml").WithStartDelay(0)
	if err != nil {
		t.Fatal(err)
	}
	e = short(e, 900*time.Second)
	h := runExp(t, e, strategy.Hybrid, 1).Summarize()
	r := runExp(t, e, strategy.Reactive, 1).Summarize()
	t.Logf("hybrid VM-s %.0f (buffered %.0f, floor %.0f) loss %.4f; reactive VM-s %.0f loss %.4f",
		h.VMSeconds, h.BufferedVMSeconds, h.FloorVMSeconds, h.DPLoss, r.VMSeconds, r.DPLoss)
	if h.VMSeconds > 0.88*r.VMSeconds || h.DPLoss > 0.5*r.DPLoss || h.VMSeconds > 1.35*h.FloorVMSeconds {
		t.Fatalf("hybrid VM-s %.0f (%.3f × reactive, %.3f × floor), DP loss %.4f (%.3f × reactive): want ≤ 0.88, ≤ 1.35, ≤ 0.5",
			h.VMSeconds, h.VMSeconds/r.VMSeconds, h.VMSeconds/h.FloorVMSeconds, h.DPLoss, h.DPLoss/r.DPLoss)
	}
}

// The router adapter walks a flow through the DCs of its pair's current
// path, takes instances of the right VNF in each, and gives the load back
// on Release; a flow without a path set entry is dropped with the
// routing table's reason.
func TestRouterAdapter(t *testing.T) {
	e := short(load(t, "async-start.yaml"), 30*time.Second)
	r := runExp(t, e, strategy.Hybrid, 1)
	rt := r.router
	src := r.sys.Routers[r.DCs[0]]
	for entry := range r.DCs {
		for exit := range r.DCs {
			f := traffic.Flow{ID: 1 << 40, Call: 1 << 39, Entry: entry, Exit: exit, Rate: 50}
			hops, err := rt.Route(f)
			if err != nil {
				t.Fatalf("%d→%d: %v", entry, exit, err)
			}
			path, ok := src.Path(src.Interval(), placement.Pair{Entry: entry, Exit: exit})
			if !ok {
				t.Fatalf("%d→%d: no path", entry, exit)
			}
			for s, h := range hops {
				if h.DC != path[s+1] {
					t.Fatalf("%d→%d: stage %d in DC %d, the path says %v", entry, exit, s+1, h.DC, path)
				}
				in := false
				for _, ri := range r.sys.Locals[r.DCs[h.DC]].Routable(chain[s]) {
					in = in || ri.ID == h.Instance
				}
				if !in {
					t.Fatalf("%d→%d: stage %d instance %s is not a routable %s of DC %d", entry, exit, s+1, h.Instance, chain[s], h.DC)
				}
			}
			// the reverse flow of the same call, then both end
			g := traffic.Flow{ID: 1<<40 + 1, Call: 1 << 39, Dir: 1, Entry: exit, Exit: entry, Rate: 50}
			hops2, err := rt.Route(g)
			if err != nil {
				t.Fatalf("%d→%d reverse: %v", exit, entry, err)
			}
			rt.Release(f, hops)
			if len(rt.calls) != 1 {
				t.Fatal("call mappings removed while a flow still runs")
			}
			rt.Release(g, hops2)
			if len(rt.calls) != 0 || len(rt.flows) != 0 {
				t.Fatalf("after release: %d calls, %d flows", len(rt.calls), len(rt.flows))
			}
		}
	}
	// a packet of a user with no Table 1 mapping is dropped at the entry
	d := src.Route(routing.Packet{From: routing.FromUser, SrcIP: 1, SrcPort: 9, DstIP: entryIP(0), DstPort: mediaEntryPort})
	if d.Verdict != routing.Drop || d.Reason != routing.DropNoMapping {
		t.Fatalf("unmapped packet: %v", d)
	}
}

// The warm-start hint is the steady-state load of the starting rates: with
// rates 2 and 3 users/s (R = 5), pair 0→1 carries 3000·2·3/5 = 3600 pkt/s and
// 2·3/5 = 1.2 tx/s; pair 1→1 carries 3000·9/5 = 5400 pkt/s and 9/5 + 3 = 4.8 tx/s
// (its users' REGISTERs). A DC starting later contributes nothing.
func TestStartingLoad(t *testing.T) {
	s := &traffic.Schedule{ChangeInterval: time.Minute, Shape: traffic.Step, DCs: []traffic.DCSchedule{
		{DC: 0, Rates: []float64{2}}, {DC: 1, Rates: []float64{3}}, {DC: 2, Start: time.Hour, Rates: []float64{7}}}}
	if err := s.Validate(3); err != nil {
		t.Fatal(err)
	}
	cp, dp := startingLoad(s, 3)
	find := func(ls []traffic.PairLoad, i, j int) float64 {
		for _, l := range ls {
			if l.Entry == i && l.Exit == j {
				return l.Rate
			}
		}
		return -1
	}
	for _, c := range []struct {
		i, j   int
		dp, cp float64
	}{{0, 1, 3600, 1.2}, {1, 0, 3600, 1.2}, {1, 1, 5400, 4.8}, {0, 0, 2400, 2.8}, {2, 0, -1, -1}} {
		if got := find(dp, c.i, c.j); math.Abs(got-c.dp) > 1e-9 {
			t.Fatalf("dp %d→%d = %v, want %v", c.i, c.j, got, c.dp)
		}
		if got := find(cp, c.i, c.j); math.Abs(got-c.cp) > 1e-9 {
			t.Fatalf("cp %d→%d = %v, want %v", c.i, c.j, got, c.cp)
		}
	}
}

// With warm start the initial round sizes the data plane for the declared
// starting load before the traffic begins: on daily-audio (every DC busy at
// 00:00 UTC) at least one DC has more DP instances up at the first traffic
// second than its minimum, and as many as without warm start plus what the
// hint asked for. Without warm start only the minimum runs. The hint was
// once stamped 35 s ahead of the engine's clock and refused silently (the
// intake's skew window), which left every strategy cold-started and moved
// reactive-only's daily-audio loss from 0 % to 1.9 %.
func TestWarmStartSizesTheInitialRound(t *testing.T) {
	dpUp := func(warm bool) int {
		e := short(load(t, "daily-audio.yaml"), 2*time.Second)
		e.WarmStart = warm
		r := runExp(t, e, strategy.Reactive, 1)
		n := 0
		for _, row := range r.Recorder.Instances {
			if row.T == 1 && row.VNF != vnf.PCSCF && row.VNF != vnf.SCSCF {
				n += row.Active + row.Booting
			}
		}
		return n
	}
	cold, warm := dpUp(false), dpUp(true)
	// 4 DCs × 3 DP stages, minimum 1 each
	if cold != 12 {
		t.Fatalf("without warm start %d DP instances at the first second, want the 12 minimum ones", cold)
	}
	if warm <= cold {
		t.Fatalf("with warm start %d DP instances at the first second, without %d: the starting-load hint was not used", warm, cold)
	}
}
