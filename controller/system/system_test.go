package system

import (
	"bytes"
	"context"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/fsm"
	"github.com/ims-orch/ims-orch/controller/global"
	"github.com/ims-orch/ims-orch/controller/local"
	"github.com/ims-orch/ims-orch/controller/protocol"
	"github.com/ims-orch/ims-orch/controller/strategy"
	"github.com/ims-orch/ims-orch/controller/transport"
	"github.com/ims-orch/ims-orch/drivers"
	"github.com/ims-orch/ims-orch/drivers/fake"
	"github.com/ims-orch/ims-orch/placement"
	"github.com/ims-orch/ims-orch/placement/vnf"
)

// world is a tiny load model for the fake cloud: the DP workload of each pair
// flows over the pair's current path; each VNF's load is shared evenly by its
// routable instances, which report CPU and memory from their utilisation
// every second (CPU over 90% and memory over 50% above 90% utilisation).
type world struct {
	t    *testing.T
	sys  *System
	clk  *clock.Virtual
	load func(at time.Duration, p placement.Pair) float64
	caps map[string]float64
	dcs  []string
	t0   time.Time
}

func newWorld(t *testing.T, strat strategy.Strategy, loss float64, tau uint64) *world {
	return newWorldWith(t, strat, loss, tau, nil)
}

// newWorldWith is newWorld with edit applied to the system's config.
func newWorldWith(t *testing.T, strat strategy.Strategy, loss float64, tau uint64, edit func(*Config)) *world {
	clk := clock.NewVirtual(time.Unix(1_700_000_000, 0))
	drv, err := fake.New(clk, fake.Options{BootDelay: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	dcs := []string{"a", "b", "c"}
	top := fsm.Topology{DCs: dcs, SCSCFDC: "a",
		PCSCF:   fsm.VNF{Name: "pcscf", Capacity: 500},
		SCSCF:   fsm.VNF{Name: "scscf", Capacity: 200},
		Stages:  []fsm.VNF{{Name: "firewall", Capacity: 100}, {Name: "ids", Capacity: 100}},
		DelayMs: [][]float64{{0, 10, 20}, {10, 0, 15}, {20, 15, 0}}}
	vnfs := map[string]local.VNFConfig{}
	for _, v := range []string{"pcscf", "scscf", "firewall", "ids"} {
		vnfs[v] = local.VNFConfig{Min: 1, Thresholds: vnf.Thresholds{CPU: 90, Mem: 50, PktRate: 1e9}}
	}
	cfg := Config{Topology: top, Policy: fsm.Policy{DelayBoundMs: 250}, Strategy: strat,
		Global: global.Config{Interval: 50 * time.Second}, Local: local.Config{Tau: tau, StatsTimeout: 3 * time.Second},
		VNFs: vnfs, Transport: transport.MemConfig{Loss: loss, Dup: loss / 2, Jitter: 20 * time.Millisecond, Seed: 42},
		InitialRound: true}
	if edit != nil {
		edit(&cfg)
	}
	sys, err := New(cfg, drv, clk)
	if err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, sys: sys, clk: clk, dcs: dcs, t0: clk.Now(),
		caps: map[string]float64{"firewall": 100, "ids": 100, "pcscf": 500, "scscf": 200}}
	if err := sys.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return w
}

// tick runs one second: workload reports to the global controller and
// statistics to the local controllers.
func (w *world) tick() {
	at := w.clk.Now().Sub(w.t0)
	offered := map[string]map[string]float64{} // dc → vnf → load
	for _, dc := range w.dcs {
		offered[dc] = map[string]float64{}
	}
	for ei, e := range w.dcs {
		rep := protocol.WorkloadReport{DC: e, At: w.clk.Now(), Kind: "dp", DelaysMs: map[string]float64{}}
		for xi, x := range w.dcs {
			pr := placement.Pair{Entry: ei, Exit: xi}
			q := w.load(at, pr)
			rep.Pairs = append(rep.Pairs, protocol.PairLoad{Entry: e, Exit: x, Rate: q})
			r := w.sys.Routers[e]
			path, ok := r.Path(r.Interval(), pr)
			if !ok {
				continue
			}
			for k, st := range []string{"firewall", "ids"} {
				offered[w.dcs[path[k+1]]][st] += q
			}
		}
		if err := w.sys.ReportWorkload(rep); err != nil {
			w.t.Fatal(err)
		}
	}
	for _, dc := range w.dcs {
		lc := w.sys.Locals[dc]
		routable := map[string]bool{}
		per := map[string]float64{}
		for _, vnf := range []string{"pcscf", "firewall", "ids"} {
			insts := lc.Routable(vnf)
			for _, in := range insts {
				routable[in.ID] = true
			}
			if len(insts) > 0 {
				per[vnf] = offered[dc][vnf] / float64(len(insts))
			}
		}
		// every running instance's agent reports; idle ones (buffered, S-CSCF here) report no load
		for _, in := range lc.Instances() {
			if in.CloudState != drivers.StateActive || in.State == local.StateFailed {
				continue
			}
			load := 0.0
			if routable[in.ID] {
				load = per[in.VNF]
			}
			u := load / w.caps[in.VNF]
			_ = lc.ReportStats(in.ID, local.Stats{At: w.clk.Now(), CPU: min(100, 100*u), Mem: 20 + 40*u, PktRate: load})
		}
	}
	w.clk.Advance(time.Second)
}

func (w *world) run(d time.Duration) {
	for end := w.clk.Now().Add(d); w.clk.Now().Before(end); {
		w.tick()
	}
}

func (w *world) actions() []local.Action {
	var out []local.Action
	for _, dc := range w.dcs {
		out = append(out, w.sys.Locals[dc].Actions()...)
	}
	return out
}

func count(as []local.Action, kind local.ActionKind, reason local.Reason, vnf string) int {
	n := 0
	for _, a := range as {
		if a.Kind == kind && (reason == "" || a.Reason == reason) && (vnf == "" || a.VNF == vnf) {
			n++
		}
	}
	return n
}

// Load on a→b rises in steps (AR(1) lags behind, so instances overload
// between rounds), then falls (instances go to the buffer), rises again
// within τ (they are reused, not created), then stays low (they expire).
func TestHybridScalesWithLoad(t *testing.T) {
	w := newWorld(t, strategy.Hybrid, 0, 4)
	w.load = func(at time.Duration, p placement.Pair) float64 {
		if p != (placement.Pair{Entry: 0, Exit: 1}) {
			return 5
		}
		s := at.Seconds()
		switch {
		case s < 100:
			return 20
		case s < 500:
			return 20 + 60*float64(int(s-100)/50+1) // +60 every 50 s up to 500
		case s < 700:
			return 500
		case s < 1000:
			return 20
		case s < 1150:
			return 400
		default:
			return 20
		}
	}
	w.run(700 * time.Second)
	as := w.actions()
	if n := count(as, local.KindCreate, local.ReasonProactive, "firewall"); n == 0 {
		t.Fatalf("no proactive firewall creation while load rose: %d actions", len(as))
	}
	if n := count(as, local.KindCreate, local.ReasonReactive, "") + count(as, local.KindReuse, local.ReasonReactive, ""); n == 0 {
		t.Fatal("no reactive scale-out although load outran the prediction")
	}
	w.run(300 * time.Second) // load falls
	as = w.actions()
	buffered := count(as, local.KindBuffer, "", "firewall") + count(as, local.KindBuffer, "", "ids")
	if buffered == 0 {
		t.Fatal("no instance moved to the buffer after the load fell")
	}
	createdBefore := count(as, local.KindCreate, "", "firewall") + count(as, local.KindCreate, "", "ids")
	w.run(150 * time.Second) // load back within τ
	as = w.actions()
	if count(as, local.KindReuse, "", "firewall")+count(as, local.KindReuse, "", "ids") == 0 {
		t.Fatal("buffered instances not reused when the load came back")
	}
	w.run(900 * time.Second) // low for > τ intervals
	as = w.actions()
	if count(as, local.KindDestroy, local.ReasonExpiry, "") == 0 {
		t.Fatal("no buffered instance destroyed after τ intervals")
	}
	createdAfter := count(as, local.KindCreate, "", "firewall") + count(as, local.KindCreate, "", "ids")
	t.Logf("rounds %d; firewall+ids created %d before the fall, %d in all; buffered %d; actions %d",
		w.sys.Engine.Stats().Rounds, createdBefore, createdAfter, buffered, len(as))
	if errs := w.sys.RouterErrors(); len(errs) > 0 {
		t.Fatalf("routing table errors: %v", errs)
	}
	if r := w.sys.Engine.Stats().Rounds; r < 40 {
		t.Fatalf("only %d rounds in 2050 s of 50 s intervals", r)
	}
}

// 20% message loss and 10% duplication between the controllers: every round
// still completes, by re-sending after 500 ms.
func TestRoundsCompleteUnderLoss(t *testing.T) {
	w := newWorld(t, strategy.Hybrid, 0.2, 10)
	w.load = func(time.Duration, placement.Pair) float64 { return 50 }
	w.run(1000 * time.Second)
	st := w.sys.Engine.Stats()
	if st.Rounds < 19 || st.Retransmissions == 0 || st.Unreachable != 0 {
		t.Fatalf("stats %+v", st)
	}
	for _, dc := range w.dcs {
		if got := w.sys.Locals[dc].Interval(); got != uint64(st.Rounds) {
			t.Fatalf("dc %s in interval %d after %d rounds", dc, got, st.Rounds)
		}
	}
}

// The reactive strategy runs one initial round, then never again; proactive
// never scales reactively.
func TestStrategies(t *testing.T) {
	rise := func(at time.Duration, p placement.Pair) float64 {
		if p == (placement.Pair{Entry: 0, Exit: 1}) && at > 60*time.Second {
			return 400
		}
		return 5
	}
	w := newWorld(t, strategy.Reactive, 0, 10)
	w.load = rise
	w.run(400 * time.Second)
	if r := w.sys.Engine.Stats().Rounds; r != 1 {
		t.Fatalf("reactive strategy ran %d rounds, want the initial one", r)
	}
	if count(w.actions(), local.KindCreate, local.ReasonReactive, "")+count(w.actions(), local.KindReuse, local.ReasonReactive, "") == 0 {
		t.Fatal("reactive strategy did not scale out")
	}
	w = newWorld(t, strategy.Proactive, 0, 10)
	w.load = rise
	w.run(400 * time.Second)
	if n := count(w.actions(), local.KindCreate, local.ReasonReactive, ""); n != 0 {
		t.Fatalf("proactive strategy scaled reactively %d times", n)
	}
	if count(w.actions(), local.KindCreate, local.ReasonProactive, "firewall") == 0 {
		t.Fatal("proactive strategy did not scale out")
	}
}

// TestLogAttributesOnce: every log line names each attribute once (the local
// controller adds dc itself; a caller that added it too printed
// "dc=a dc=a").
func TestLogAttributesOnce(t *testing.T) {
	var buf syncBuffer
	w := newWorldWith(t, strategy.Hybrid, 0, 10, func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	w.load = func(at time.Duration, p placement.Pair) float64 {
		if p == (placement.Pair{Entry: 0, Exit: 1}) && at > 30*time.Second {
			return 400
		}
		return 5
	}
	w.run(120 * time.Second)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	withDC := 0
	for _, l := range lines {
		seen := map[string]bool{}
		for _, m := range logAttr.FindAllStringSubmatch(l, -1) {
			if seen[m[1]] {
				t.Fatalf("attribute %s repeated in %q", m[1], l)
			}
			seen[m[1]] = true
		}
		if seen["dc"] {
			withDC++
		}
	}
	if withDC == 0 {
		t.Fatalf("no line names a dc (%d lines): the test checks nothing", len(lines))
	}
}

var logAttr = regexp.MustCompile(`(?:^| )([A-Za-z_][\w.]*)=(?:"(?:[^"\\]|\\.)*"|\S*)`)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }
