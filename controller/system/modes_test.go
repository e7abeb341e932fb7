package system

import (
	"context"
	"slices"
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
	"github.com/ims-orch/ims-orch/drivers/fake"
	"github.com/ims-orch/ims-orch/placement/vnf"
)

// wrapRecorder is a WrapSink that records which DCs it wrapped and how many
// instance updates went through each wrapper.
type wrapRecorder struct {
	mu      sync.Mutex
	wrapped map[string]int
	updates map[string]int
}

func (w *wrapRecorder) wrap(dc string, s local.InstanceSink) local.InstanceSink {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.wrapped[dc]++
	return sinkFunc(func(vnf string, insts []local.RoutableInstance) {
		w.mu.Lock()
		w.updates[dc]++
		w.mu.Unlock()
		s.SetInstances(vnf, insts)
	})
}

type sinkFunc func(string, []local.RoutableInstance)

func (f sinkFunc) SetInstances(vnf string, insts []local.RoutableInstance) { f(vnf, insts) }

// TestStrategiesInEveryMode: the one composition path (New) in the three
// modes that use it — the simulator, the daemon's single node and a
// cluster (two processes: the global controller with DC a, the local
// controllers of b and c; one committed store, as raft replicates it) —
// under every strategy: which rounds run (periodic, or the initial one
// only), whether the local controllers react, which instance sinks are
// wired (the wrapper, e.g. the discovery DNS, in every DC of the modes that
// set it) and where workload reports are taken.
func TestStrategiesInEveryMode(t *testing.T) {
	dcs := []string{"a", "b", "c"}
	top := fsm.Topology{DCs: dcs, SCSCFDC: "a",
		PCSCF:   fsm.VNF{Name: "pcscf", Capacity: 500},
		SCSCF:   fsm.VNF{Name: "scscf", Capacity: 200},
		Stages:  []fsm.VNF{{Name: "firewall", Capacity: 100}, {Name: "ids", Capacity: 100}},
		DelayMs: [][]float64{{0, 10, 20}, {10, 0, 15}, {20, 15, 0}}}
	pol := fsm.Policy{DelayBoundMs: 250}
	vnfs := map[string]local.VNFConfig{}
	for _, v := range []string{"pcscf", "scscf", "firewall", "ids"} {
		vnfs[v] = local.VNFConfig{Min: 1, Thresholds: vnf.Thresholds{CPU: 90, Mem: 50, PktRate: 1e9}}
	}
	const interval = 50 * time.Second
	for _, strat := range strategy.All() {
		for _, mode := range []string{"simulator", "single", "cluster"} {
			t.Run(strat.Name()+"/"+mode, func(t *testing.T) {
				clk := clock.NewVirtual(time.Unix(1_700_000_000, 0))
				drv, err := fake.New(clk, fake.Options{BootDelay: time.Second})
				if err != nil {
					t.Fatal(err)
				}
				rec := &wrapRecorder{wrapped: map[string]int{}, updates: map[string]int{}}
				base := Config{Topology: top, Policy: pol, Strategy: strat, Global: global.Config{Interval: interval},
					Local: local.Config{StatsTimeout: -1, ScaleIn: local.ScaleIn{On: true}, Anticipate: true, ReactiveUtilization: 0.95, FallingScaleIn: 0.94}, VNFs: vnfs, InitialRound: true}
				var systems []*System
				var engineSys *System
				switch mode {
				case "simulator":
					s, err := New(base, drv, clk)
					if err != nil {
						t.Fatal(err)
					}
					systems, engineSys = []*System{s}, s
				case "single":
					base.WrapSink = rec.wrap
					s, err := New(base, drv, clk)
					if err != nil {
						t.Fatal(err)
					}
					systems, engineSys = []*System{s}, s
				case "cluster":
					store := global.NewMemStore() // what raft replicates; the leader seeds it
					if err := store.Apply(fsm.SetTopology{Topology: top}); err != nil {
						t.Fatal(err)
					}
					if err := store.Apply(fsm.SetPolicy{Policy: pol}); err != nil {
						t.Fatal(err)
					}
					mem, err := transport.NewMem(clk, transport.MemConfig{})
					if err != nil {
						t.Fatal(err)
					}
					base.WrapSink, base.Store, base.EngineTransport = rec.wrap, store, mem
					n1, n2 := base, base
					n1.LocalDCs = []string{"a"}
					n2.LocalDCs, n2.NoEngine = []string{"b", "c"}, true
					for _, c := range []Config{n1, n2} {
						s, err := New(c, drv, clk)
						if err != nil {
							t.Fatal(err)
						}
						for dc, lc := range s.Locals {
							mem.Register(dc, lc) // the protocol endpoints of each node
						}
						systems = append(systems, s)
					}
					engineSys = systems[0]
					if systems[1].Engine != nil {
						t.Fatal("a node without the global role built an engine")
					}
					if err := systems[1].ReportWorkload(protocol.WorkloadReport{}); err == nil {
						t.Fatal("a node without engine took a workload report")
					}
				}
				// the scale-in on a falling load is hybrid's (New turns it off
				// for reactive-only: no round plans it back; it needs reactive
				// scaling, which proactive-only lacks; where it acts and at
				// which bar: controller/local TestFallingScaleInBar)
				if lc := strategyLocal(base.Local, strat); (lc.FallingScaleIn > 0 && lc.Reactive) != (strat == strategy.Hybrid) ||
					(strat == strategy.Hybrid && lc.FallingScaleIn != 0.94) {
					t.Fatalf("falling scale-in %g (reactive %v) with strategy %s", lc.FallingScaleIn, lc.Reactive, strat)
				}
				got := map[string]local.Config{} // what New gives each local controller (localConfig)
				for _, s := range systems {
					for dc := range s.Locals {
						got[dc] = localConfig(base, top, dc)
					}
				}
				for dc, lc := range got {
					// between-round scale-in needs rounds and reactive reuse: hybrid only
					if on := lc.ScaleIn.On && lc.Reactive; on != (strat == strategy.Hybrid) {
						t.Fatalf("%s: between-round scale-in %v with strategy %s", dc, on, strat)
					}
					// anticipated scale-out is hybrid's (reactive-only, the
					// yardstick, keeps the paper's rule), and so is the
					// utilisation bar of reactive scale-out (proactive-only
					// has no reactive scale-out at all); both act on the DP
					// stages only, the VNFs with PinnedFlows (what each
					// setting does: controller/local's tests)
					if on := lc.Anticipate && lc.Reactive; on != (strat == strategy.Hybrid) {
						t.Fatalf("%s: anticipates %v with strategy %s", dc, on, strat)
					}
					// the rounds' noRise/fast flags are hybrid's: a local
					// controller advertises them only while reactive, and
					// not without rounds
					if on := !lc.NoRise.Off && lc.Reactive; on != (strat == strategy.Hybrid) {
						t.Fatalf("%s: takes the rise flags %v with strategy %s", dc, on, strat)
					}
					wantU := 0.0
					if strat.PeriodicRounds() && strat.Reactive() {
						wantU = 0.95
					}
					if u := lc.ReactiveUtilization; lc.Reactive && u != wantU {
						t.Fatalf("%s: reactive scale-out bar %g with strategy %s, want %g", dc, u, strat, wantU)
					}
					for _, v := range lc.VNFs {
						if dp := slices.ContainsFunc(top.Stages, func(st fsm.VNF) bool { return st.Name == v.Name }); v.PinnedFlows != dp {
							t.Fatalf("%s: %s pinned flows %v, want %v (DP stages only)", dc, v.Name, v.PinnedFlows, dp)
						}
					}
				}
				if len(got) != len(dcs) {
					t.Fatalf("local controllers built for %d DCs, want %d", len(got), len(dcs))
				}
				for _, s := range systems {
					if err := s.Start(context.Background()); err != nil {
						t.Fatal(err)
					}
					defer s.Stop()
				}
				if mode == "cluster" {
					// FollowLeadership starts the leader's engine
					if err := engineSys.Engine.Start(); err != nil {
						t.Fatal(err)
					}
				}
				for range 5 * int(interval/time.Second) {
					for _, dc := range dcs {
						rep := protocol.WorkloadReport{DC: dc, At: clk.Now(), Kind: "dp", DelaysMs: map[string]float64{}}
						for _, x := range dcs {
							rep.Pairs = append(rep.Pairs, protocol.PairLoad{Entry: dc, Exit: x, Rate: 10})
						}
						if err := engineSys.ReportWorkload(rep); err != nil {
							t.Fatal(err)
						}
					}
					clk.Advance(time.Second)
				}

				rounds := engineSys.Engine.Stats().Rounds
				if strat.PeriodicRounds() && rounds < 3 {
					t.Errorf("%d rounds in 5 intervals, want a round every interval", rounds)
				}
				if !strat.PeriodicRounds() && rounds != 1 {
					t.Errorf("%d rounds, want the initial round only", rounds)
				}
				locals := map[string]*local.Controller{}
				for _, s := range systems {
					for dc, lc := range s.Locals {
						if locals[dc] != nil {
							t.Fatalf("DC %s runs in two processes", dc)
						}
						locals[dc] = lc
					}
				}
				if len(locals) != len(dcs) {
					t.Fatalf("local controllers of %d DCs, want %d", len(locals), len(dcs))
				}
				for dc, lc := range locals {
					if lc.Reactive() != strat.Reactive() {
						t.Errorf("%s: reactive %v, strategy says %v", dc, lc.Reactive(), strat.Reactive())
					}
					if lc.Interval() < 1 {
						t.Errorf("%s never entered an interval", dc)
					}
					want := 0
					if mode != "simulator" {
						want = 1
					}
					if rec.wrapped[dc] != want || (want == 1 && rec.updates[dc] == 0) {
						t.Errorf("%s: sink wrapped %d times (want %d), %d updates through it", dc, rec.wrapped[dc], want, rec.updates[dc])
					}
				}
			})
		}
	}
}
