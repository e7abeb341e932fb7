// Package simulation is the experiment runner of the simulator: it reads an
// experiment file (topology, delays and their changes, traffic schedule,
// scaling parameters), builds the simulated cloud (drivers/sim), the REAL
// controllers (controller/system: global round engine, one local controller
// and routing table per DC) and the traffic engine (drivers/sim/traffic) on
// one virtual clock, connects them with small adapters (flow routing through
// the routing tables, statistics to the local controllers, workload reports
// to the global controller, the P-CSCF/S-CSCF balancer) and runs the
// experiment second by second. It also writes the CSV series and the plots
// of the paper's Figs. 4–9 (output.go, plot.go).
package simulation

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/fsm"
	"github.com/ims-orch/ims-orch/controller/global"
	"github.com/ims-orch/ims-orch/controller/local"
	"github.com/ims-orch/ims-orch/controller/strategy"
	"github.com/ims-orch/ims-orch/controller/system"
	"github.com/ims-orch/ims-orch/controller/transport"
	"github.com/ims-orch/ims-orch/drivers/sim"
	"github.com/ims-orch/ims-orch/drivers/sim/traffic"
	"github.com/ims-orch/ims-orch/placement"
	"github.com/ims-orch/ims-orch/placement/vnf"
)

// Options are a run's switches.
type Options struct {
	// Strategy overrides the experiment's strategy (nil keeps it).
	Strategy strategy.Strategy
	Seed     uint64
	// Progress, if set, is called after every simulated second.
	Progress func(done, total int)
	Logger   *slog.Logger
	// Oracle, if set, replaces the rounds' forecaster with the load to
	// come (an analysis, not a strategy: Oracle).
	Oracle *Oracle
	// Observe, if set, is called after every simulated second with the
	// local controllers by DC name (analysis: per-instance states and
	// statistics; it must not change them).
	Observe func(sec int, locals map[string]*local.Controller)
}

// PathRow is one DC in one interval: how many pairs' service chain paths
// process a stage in it (Fig. 8b), and how many paths of the interval use a
// link whose delay the experiment changes (Fig. 9b).
type PathRow struct {
	T        int // seconds since the traffic start when the interval was entered
	Interval uint64
	DC       int
	Through  int
	Total    int // paths in the set
	// OverChanged counts the interval's paths that cross a changed link
	// (the same in every DC's row).
	OverChanged int
}

// Result is what a run produced.
type Result struct {
	Experiment string
	Strategy   strategy.Strategy
	Seed       uint64
	DCs        []string
	Recorder   *traffic.Recorder
	Paths      []PathRow
	// Rounds completed by the global controller, RoundRows their records.
	Rounds    int
	RoundRows []RoundRow
	// Created counts every instance launched during the run (warm-up
	// included), DPCreated the data-plane ones.
	Created, DPCreated int
	// Scale actions of the local controllers by kind and reason, e.g.
	// "create/reactive".
	Actions map[string]int
	// RouterErrors are the routing tables' update errors.
	RouterErrors int
	// Warmup is the simulated time before the traffic started.
	Warmup time.Duration
	// Cost is the run's VM-seconds (total, buffered) and their floor.
	Cost Cost
	// Start is the traffic's start on the run's virtual clock (t = 0 of
	// the CSV files).
	Start time.Time
	// Loads is the workload the traffic engine reported (Oracle.Log).
	Loads *LoadLog

	sys    *system.System
	router *router
}

// maxRounds bounds the round records kept for rounds.csv.
const maxRounds = 5000

// RoundRow is one proactive round as the global controller recorded it
// (rounds.csv): the DP workload it measured for the interval that ended,
// what it had predicted for that interval, and the plan's totals.
type RoundRow struct {
	Round uint64
	T     float64 // seconds since the traffic start when the round finished (negative: warm-up)
	// DPActual is the measured DP workload of the interval (Σ over pairs,
	// pkt/s), DPPredicted what the previous round forecast for it.
	DPActual, DPPredicted float64
	Totals                placement.Totals
	PlanError             string
}

// the paper's data-plane chain (Table 2)
var chain = vnf.DataPlaneChain()

// Run runs one experiment on a virtual clock. The controllers start a
// boot delay (+5 s) before the traffic, so the initial round's paths and the
// minimum instances exist when the first users arrive (the paper starts
// with "a good set of service chain paths").
func Run(ctx context.Context, exp *Experiment, opts Options) (*Result, error) {
	if exp == nil || exp.Schedule == nil {
		return nil, fmt.Errorf("run: no experiment")
	}
	strat := exp.Strategy
	if opts.Strategy != nil {
		strat = opts.Strategy
	}
	if strat == nil {
		strat = strategy.Default
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	clk := clock.NewVirtual(time.Unix(1_700_000_000, 0).UTC())
	cat := exp.Catalog()
	cloud, err := sim.New(clk, sim.Options{DCs: exp.DCs, Catalog: cat, BootDelay: exp.BootDelay})
	if err != nil {
		return nil, err
	}
	warm := exp.BootDelay + 5*time.Second
	start := clk.Now().Add(warm) // the traffic's start, after the warm-up
	var fc global.Forecaster
	if opts.Oracle != nil {
		if err := opts.Oracle.validate(); err != nil {
			return nil, err
		}
		fc = newOracleForecaster(*opts.Oracle, clk, start, exp.DCs)
	}
	var prior *global.ProfilePrior
	if opts.Oracle == nil {
		prior = exp.profilePrior(start, opts.Seed)
	}
	typeOf := func(n string) vnf.Type { t, _ := cat.Lookup(n); t.Name = n; return t.Type } // the name as the experiment writes it
	top := fsm.Topology{DCs: exp.DCs, SCSCFDC: exp.DCs[exp.SCSCFDC],
		PCSCF:   fsm.NewVNF(typeOf(vnf.PCSCF), exp.Min[vnf.PCSCF]),
		SCSCF:   fsm.NewVNF(typeOf(vnf.SCSCF), exp.Min[vnf.SCSCF]),
		DelayMs: exp.DelaysMs}
	for _, st := range chain {
		top.Stages = append(top.Stages, fsm.NewVNF(typeOf(st), 0))
	}
	vnfs := localVNFs(cat, exp.Min)
	sys, err := system.New(system.Config{
		Topology: top, Policy: fsm.Policy{DelayBoundMs: exp.DelayBoundMs, TargetUtilization: exp.TargetUtilization, DPTargetUtilization: exp.DPTargetUtilization, Targets: slices.Clone(exp.Targets), LocalFirst: exp.LocalFirst, ImproveBudget: exp.ImproveBudget},
		Global: global.Config{Interval: exp.Interval, RecordsKept: maxRounds, Rise: global.RisePolicy{Off: !exp.RiseFlags}}, Strategy: strat, Predictor: exp.Predictor,
		PlanHorizon: exp.planHorizon(), Forecaster: fc, ProfilePrior: prior, PackFlows: exp.PackFlows, SpreadOverload: exp.SpreadOverload, // the traffic engine's flows: system.DefaultFlowPackets
		Local: local.Config{Tau: exp.Tau, StatsTimeout: 3 * time.Second, History: 1 << 15, PaperMajority: exp.PaperReactive, ScaleInGuard: exp.ScaleInGuard,
			TrimBuffer: exp.TrimBuffer, BufferSpare: exp.BufferSpare, TrimEmpty: exp.TrimEmpty, ScaleIn: local.ScaleIn{On: exp.ScaleIn},
			Anticipate: exp.Anticipate, ReactiveUtilization: exp.ReactiveUtilization, FallingScaleIn: exp.FallingScaleIn,
			FallingScaleInSingle: exp.FallingScaleInSingle, TrimEmptyBusy: exp.TrimEmptyBusy, TrimEmptySingleBusy: exp.TrimEmptySingleBusy,
			NoRise: local.NoRiseConfig{Off: !exp.RiseFlags}},
		VNFs:      vnfs,
		Transport: transport.MemConfig{Jitter: exp.TransportJitter, Seed: opts.Seed ^ 0x5eed},
		// Reactive runs its initial round anyway.
		InitialRound: true, Logger: logger,
		EngineToken: "simulator", // one engine, its own log: a fixed token keeps the runs deterministic
	}, cloud, clk)
	if err != nil {
		return nil, err
	}
	cloud.SetSink(&statsSink{cloud: cloud, sys: sys, dcs: exp.DCs})
	// Warm-up: the minimum instances boot and the initial round runs; the
	// agents report idle statistics. With WarmStart the operator's expected
	// starting load (the schedule's rates at the start) is reported too, so
	// the initial round sizes for it instead of for nothing.
	delays, err := sim.NewDelays(start, exp.DelaysMs, exp.Changes)
	if err != nil {
		return nil, err
	}
	wl := &workload{sys: sys, dcs: exp.DCs, delays: delays, logger: logger, fixed: &fixedRouting{start: start, n: len(exp.DCs)},
		loads: newLoadLog(start, len(exp.DCs))}
	if exp.WarmStart {
		// Reported before Start, so the initial round predicts from them;
		// stamped with the clock's time now (the warm-up's start): the
		// engine refuses a report more than MaxReportSkew ahead of its
		// clock, and a hint stamped with the traffic's start (boot delay
		// + 5 s ahead) was refused silently, so no strategy warm-started.
		hintCP, hintDP := startingLoad(exp.Schedule, len(exp.DCs))
		wl.CPWorkload(clk.Now(), hintCP)
		wl.DPWorkload(clk.Now(), hintDP)
		if wl.errs > 0 {
			return nil, fmt.Errorf("run: warm start: %d of the starting-load reports refused (first: %w)", wl.errs, wl.firstErr)
		}
	}
	if err := sys.Start(ctx); err != nil {
		return nil, err
	}
	defer sys.Stop()

	for clk.Now().Before(start) {
		clk.Advance(time.Second)
		cloud.Report(clk.Now())
	}
	rt := newRouter(sys, exp.DCs, len(chain))
	eng, err := traffic.New(clk, traffic.Config{
		Cloud: cloud, Delays: delays, Schedule: exp.Schedule, Router: rt, Seed: opts.Seed,
		Start: start, Duration: exp.Duration, SCSCFDC: exp.SCSCFDC, Chain: chain, Pairing: exp.Pairing,
		CPBalancer: &balancer{sys: sys, dcs: exp.DCs},
		Workload:   wl,
	})
	if err != nil {
		return nil, err
	}
	res := &Result{Experiment: exp.Name, Strategy: strat, Seed: opts.Seed, DCs: exp.DCs, Recorder: eng.Recorder(),
		Actions: map[string]int{}, Warmup: warm, Start: start, Loads: wl.loads, sys: sys, router: rt}
	changed := changedLinks(exp)
	pr := &pathRecorder{sys: sys, dcs: exp.DCs, m: len(chain), changed: changed, last: ^uint64(0)}
	pr.record(0, res)
	eng.Start()
	total := int(exp.Duration / time.Second)
	var buffered []int
	for sec := 1; !eng.Done(); sec++ {
		if err := ctx.Err(); err != nil {
			eng.Stop()
			return nil, err
		}
		clk.Advance(time.Second)
		pr.record(sec, res)
		buffered = append(buffered, bufferedNow(sys, exp.DCs))
		if opts.Observe != nil {
			opts.Observe(sec, sys.Locals)
		}
		if opts.Progress != nil {
			opts.Progress(min(sec, total), total)
		}
		if sec > total+5 {
			return nil, fmt.Errorf("run: traffic engine did not finish after %d s", sec)
		}
	}
	res.Rounds = sys.Engine.Stats().Rounds
	for _, rr := range sys.Engine.Records() {
		row := RoundRow{Round: rr.Round, T: rr.Finished.Sub(start).Seconds(), Totals: rr.Totals, PlanError: rr.PlanError}
		row.DPActual, row.DPPredicted = sumKind(rr.Actual, global.KindDP), sumKind(rr.PreviousPredicted, global.KindDP)
		res.RoundRows = append(res.RoundRows, row)
	}
	res.RouterErrors = len(sys.RouterErrors())
	if wl.errs > 0 {
		// a refused report changes what every strategy plans from: the
		// run measures something else than its experiment
		return nil, fmt.Errorf("run: %d workload reports refused by the global controller (first: %w)", wl.errs, wl.firstErr)
	}
	for _, dc := range exp.DCs {
		for _, a := range sys.Locals[dc].Actions() {
			res.Actions[string(a.Kind)+"/"+string(a.Reason)]++
		}
	}
	rows := res.Recorder.Instances
	res.Cost = computeCost(exp, cat, rows, buffered, wl.fixed)
	for i := len(rows) - 1; i >= 0 && rows[i].T == rows[len(rows)-1].T; i-- {
		res.Created += rows[i].Created
		if t, ok := cat.Lookup(rows[i].VNF); ok && t.Plane == vnf.DataPlane {
			res.DPCreated += rows[i].Created
		}
	}
	return res, nil
}

func sumKind(m map[string]float64, kind string) float64 {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys) // a fixed order keeps the float sum deterministic
	s := 0.0
	for _, k := range keys {
		if kd, _, _, ok := global.ParseSeriesKey(k); ok && kd == kind {
			s += m[k]
		}
	}
	return s
}

// changedLinks returns the links (both directions) whose delay an
// experiment changes.
func changedLinks(exp *Experiment) map[[2]int]bool {
	out := map[[2]int]bool{}
	for _, c := range exp.Changes {
		for _, a := range c.From {
			for _, b := range c.To {
				out[[2]int{a, b}], out[[2]int{b, a}] = true, true
			}
		}
	}
	return out
}

type pathRecorder struct {
	sys     *system.System
	dcs     []string
	m       int
	changed map[[2]int]bool
	last    uint64
}

// record adds the path rows of the interval the first DC is in, once per interval.
func (p *pathRecorder) record(sec int, res *Result) {
	r := p.sys.Routers[p.dcs[0]]
	iv := r.Interval()
	if iv == p.last {
		return
	}
	p.last = iv
	n := len(p.dcs)
	through := make([]int, n)
	total, over := 0, 0
	for a := 0; a < n; a++ {
		for b := 0; b < n; b++ {
			path, ok := r.Path(iv, placement.Pair{Entry: a, Exit: b})
			if !ok {
				continue
			}
			total++
			seen := make([]bool, n)
			for k := 1; k <= p.m && k < len(path); k++ {
				if d := path[k]; d >= 0 && d < n && !seen[d] {
					seen[d] = true
					through[d]++
				}
			}
			for k := 1; k < len(path); k++ {
				if path[k-1] != path[k] && p.changed[[2]int{path[k-1], path[k]}] {
					over++
					break
				}
			}
		}
	}
	for d := 0; d < n; d++ {
		res.Paths = append(res.Paths, PathRow{T: sec, Interval: iv, DC: d, Through: through[d], Total: total, OverChanged: over})
	}
}

// statsSink hands the simulated agents' samples to the instance's local controller.
type statsSink struct {
	cloud *sim.Cloud
	sys   *system.System
	dcs   []string
}

func (s *statsSink) ReportStats(id string, x sim.Sample) error {
	u, ok := s.cloud.Unit(id)
	if !ok {
		return fmt.Errorf("stats of unknown instance %s", id)
	}
	return s.sys.Locals[s.dcs[u.DC()]].ReportStats(id, local.Stats{At: x.At, CPU: x.CPU, Mem: x.Mem, PktRate: x.PktRate, Flows: x.Flows})
}

// balancer lists the CSCF instances that take new SIP transactions: the
// local controller's routable ones, normal ones first (buffered and
// overloaded instances get none while a normal one exists).
type balancer struct {
	sys *system.System
	dcs []string
}

func (b *balancer) CPInstances(dc int, vnf string) []string {
	insts := local.PreferNormal(b.sys.Locals[b.dcs[dc]].Routable(vnf))
	out := make([]string, len(insts))
	for i, in := range insts {
		out[i] = in.ID
	}
	return out
}

// startingLoad is the steady-state workload of the schedule's rates at its
// start, per ordered pair, with first-come-first-match pairing (a call pairs
// users of DCs i and j with probability r_i·r_j/R²): DP 2 flows × 50 pkt/s ×
// 60 s calls → 3000·r_i·r_j/R pkt/s on i→j; CP one REGISTER per user on
// (i, i) and INVITE + BYE per call → r_i·r_j/R tx/s on i→j.
func startingLoad(s *traffic.Schedule, n int) (cp, dp []traffic.PairLoad) {
	r := make([]float64, n)
	total := 0.0
	for i := range r {
		r[i] = s.Rate(i, 0)
		total += r[i]
	}
	if total <= 0 {
		return nil, nil
	}
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			x := r[i] * r[j] / total
			if x == 0 {
				continue
			}
			c := x
			if i == j {
				c += r[i]
			}
			cp = append(cp, traffic.PairLoad{Entry: i, Exit: j, Rate: c})
			dp = append(dp, traffic.PairLoad{Entry: i, Exit: j, Rate: 3000 * x})
		}
	}
	return cp, dp
}

// localVNFs is the local controllers' configuration of the catalog's VNFs
// (Table 2's facts, the experiment's Min). A DP stage's load rules
// (local.VNFConfig.LoadThreshold) compare its carried share with the share
// of its capacity at which this model triggers the overload, 100 ×
// TriggerUtil: 90 % by default (local.DefaultLoadThreshold: the rules act
// as when they read the CPU threshold 90), 100 % with OverloadAtCapacity.
func localVNFs(cat *sim.Catalog, mins map[string]int) map[string]local.VNFConfig {
	vnfs := map[string]local.VNFConfig{}
	for _, t := range cat.Names() {
		vc := local.NewVNFConfig(vnf.Type{Name: t}.Complete())
		vc.Min = mins[t]
		if st, ok := cat.Lookup(t); ok && st.Plane == vnf.DataPlane {
			vc.LoadThreshold = 100 * st.TriggerUtil
		}
		vnfs[t] = vc
	}
	return vnfs
}
