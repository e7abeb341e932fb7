// Package system is the one composition path of the controllers: it builds
// the global controller's round engine (with its predictor, store and
// transport), one local controller and routing table per datacenter, and
// wires the strategy into them (which rounds run, whether local controllers
// react) and the instance sinks (routing tables, optionally wrapped, e.g. by
// the discovery DNS). The simulator (controller/simulation), the daemon in
// single-node and in cluster mode (controller/daemon) and the integration
// tests all build the controllers through New; Config says which parts run
// in this process and which store and transport they use.
package system

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/dcroute"
	"github.com/ims-orch/ims-orch/controller/delayprobe"
	"github.com/ims-orch/ims-orch/controller/dpmeter"
	"github.com/ims-orch/ims-orch/controller/fsm"
	"github.com/ims-orch/ims-orch/controller/global"
	"github.com/ims-orch/ims-orch/controller/local"
	"github.com/ims-orch/ims-orch/controller/protocol"
	"github.com/ims-orch/ims-orch/controller/strategy"
	"github.com/ims-orch/ims-orch/controller/transport"
	"github.com/ims-orch/ims-orch/drivers"
)

// Config describes a deployment.
type Config struct {
	Topology fsm.Topology
	Policy   fsm.Policy
	// Global tunes the round engine (interval, re-send timer, deadlines);
	// InitialRoundOnly is set from Strategy.
	Global global.Config
	// EngineHooks observe the round engine (the daemon's chaos failpoint).
	EngineHooks global.Hooks
	// EngineToken names the round engine's closes in the log
	// (global.Deps.Token): "" draws one from crypto/rand (the daemon); the
	// simulator passes a fixed one, so its runs repeat byte for byte.
	EngineToken string
	// Strategy decides which rounds run and whether the local controllers
	// scale out reactively (nil: strategy.Default).
	Strategy strategy.Strategy
	// Predictor is the model spec of every series (predictor.ParseSpec;
	// default "ar1", the paper's Eq. (1)).
	Predictor string
	// PlanHorizon is the forecaster's planning horizon in intervals after
	// the middle of the next one (global BankForecaster.SetHorizon; 0 =
	// the paper's mean forecast).
	PlanHorizon float64
	// Forecaster, if set, replaces the Predictor's bank forecaster the
	// rounds plan with (analysis: the simulator's load oracle, a bound on
	// what round sizing alone can reach); Predictor and PlanHorizon then
	// only configure the bank Forecaster() returns, which no round uses.
	Forecaster global.Forecaster
	// ProfilePrior, if set, wraps the forecaster the rounds plan with (the
	// Predictor's bank, or Forecaster) in the declared daily profile's
	// prior (global.NewProfileForecaster; the policy's declaredProfile);
	// its Interval and Window, when 0, come from Global.Interval and
	// PlanHorizon (global.ProfileWindow), its CallDuration from
	// global.DefaultProfileCallDuration. The profile indexes Topology.DCs.
	ProfilePrior *global.ProfilePrior
	// PackFlows > 0 packs the new flows of every DP stage onto its most-loaded
	// instance with room up to PackFlows × its capacity
	// (routing.Table.SetPackLimit), so the instances a round buffers carry
	// fewer pinned calls; 0 routes each to the least-loaded instance. Only
	// for a strategy with periodic rounds (nothing removes instances
	// otherwise). Must be in [0, 1].
	PackFlows float64
	// SpreadOverload > 0: while some instances of a DP stage are
	// overloaded, a new flow whose least-loaded normal instance would pass
	// SpreadOverload × the capacity goes to the overloaded instance with
	// the fewest flows when it carries fewer (routing.Table.SetSpreadLimit:
	// flows pinned, not measured load); 0 keeps
	// the paper's rule (new flows avoid overloaded instances while a normal
	// one exists). Only for a strategy with periodic rounds, like
	// PackFlows: reactive-only, the yardstick, keeps the paper's rule. Must
	// be in [0, 1], and 0 or at least PackFlows (packing comes first: a
	// lower value would act as PackFlows; CheckSpreadNotBelowPack).
	SpreadOverload float64
	// FlowPackets is the packet rate of one DP flow, the routing tables'
	// unit of load (0: DefaultFlowPackets); it turns PackFlows and
	// SpreadOverload into flows (packLimit, spreadLimit).
	FlowPackets float64
	// Local is the template of every local controller; DC, Paths, Sink and
	// Reactive are set per DC, VNFs from Topology and VNFs.
	Local local.Config
	// VNFs overrides per VNF name (thresholds, image, flavor, min, max); the
	// capacity always comes from Topology.
	VNFs map[string]local.VNFConfig
	// Transport is the in-memory transport's fault injection.
	Transport transport.MemConfig
	// InitialRound runs a round at Start so paths exist from the beginning
	// (the paper's experiments start with "a good set of service chain
	// paths"); a strategy without periodic rounds always does. Not with
	// an external Store (the raft leader's engine starts its rounds).
	InitialRound bool
	Logger       *slog.Logger
	// WrapSink, if set, wraps each DC's instance sink (the DC's routing
	// table), e.g. to also publish routable instances in DNS
	// (controller/sipglue). The wrapper must pass updates on to s.
	WrapSink func(dc string, s local.InstanceSink) local.InstanceSink
	// WrapPaths, if set, wraps each DC's path store (the DC's routing
	// router), e.g. to install the path sets' rules on a real switch.
	WrapPaths func(dc string, p local.PathStore) local.PathStore
	// Probes, if set, measure the inter-DC delays: the local controllers of
	// this process probe every other DC over Probes.Transport and report
	// the samples (nil: the static matrix is every link's delay).
	Probes *Probes
	// DPMeters, if set, measure the DP workload per entry→exit pair at each
	// local DC from its switch's counters (the real data plane) and report
	// it (nil: the DP workload comes from elsewhere, e.g. the simulated
	// cloud's fluid model).
	DPMeters *DPMeters

	// Where the parts run. The zero values run everything in this process
	// on the in-memory transport (the simulator, the daemon's single-node
	// mode, tests); the daemon's cluster mode sets them.

	// LocalDCs are the datacenters whose local controllers run here (nil:
	// every DC of Topology; empty, not nil: none).
	LocalDCs []string
	// NoEngine: the global controller does not run in this process.
	NoEngine bool
	// Store is the committed global state (raft in a cluster). Nil: an
	// in-memory store seeded with Topology and Policy.
	Store global.Store
	// EngineTransport is how the engine reaches the local controllers. Nil:
	// the in-memory transport (Transport's fault injection) to the local
	// controllers of this process.
	EngineTransport transport.Transport
}

// Probes configures the delay probers of the local controllers.
type Probes struct {
	Transport delayprobe.Transport
	// Period between two probes of a link (delayprobe default 5 s).
	Period time.Duration
	// Report takes the delay reports (nil: this system's engine).
	Report delayprobe.Reporter
}

// DPMeters configures the DP workload meters of the local DCs.
type DPMeters struct {
	// Counters returns DC dc's cumulative per-pair packet counters (its
	// switch's entry rules); nil for a DC without a real switch.
	Counters func(dc string) dpmeter.Counters
	// Period between two reports (dpmeter default 1 s).
	Period time.Duration
	// Report takes the DP reports (nil: this system's engine).
	Report dpmeter.Reporter
}

// System is a running deployment.
type System struct {
	cfg   Config
	Clock clock.Clock
	// Engine is nil with NoEngine.
	Engine *global.Engine
	Store  global.Store
	// Transport is the in-memory transport (nil with an EngineTransport).
	Transport *transport.Mem
	// Locals and Routers by DC name.
	Locals  map[string]*local.Controller
	Routers map[string]*dcroute.Router
	// Probers by DC name (empty without Config.Probes).
	Probers map[string]*delayprobe.Prober
	// Meters by DC name (DCs with a real switch, with Config.DPMeters).
	Meters map[string]*dpmeter.Meter
	fc     *global.BankForecaster

	mu         sync.Mutex
	routerErrs []error
}

// DefaultFlowPackets is Config.FlowPackets when zero: one RTP stream of
// G.711 with 20 ms packets (80 kbit/s of 200-byte packets), the simulator's
// flow too.
const DefaultFlowPackets = 50

// packLimit is a DP stage's routing pack limit in flows (0: off). A
// flowPackets above packFlows × the stage's capacity is an error: the limit
// would round to 0 flows, which means least-loaded routing (packing off)
// without anyone having asked for it; with packing on an operator expects
// at least one flow per instance, and a flow larger than the packing share
// of an instance is a unit mistake (packets/s per flow, not per instance),
// which an error shows and a clamp to 1 would hide.
func packLimit(cfg Config, stage string, capacity float64) (float64, error) {
	if cfg.PackFlows <= 0 || !cfg.Strategy.PeriodicRounds() {
		return 0, nil
	}
	fp := cfg.FlowPackets
	if fp <= 0 {
		fp = DefaultFlowPackets
	}
	l := math.Floor(cfg.PackFlows * capacity / fp)
	if l < 1 {
		return 0, fmt.Errorf("policy.flowPackets: %g packets/s per flow exceeds packFlows %g × stage %s's capacity %g packets/s (%g): its pack limit would be 0 flows, i.e. packing off; lower flowPackets or set packFlows 0",
			fp, cfg.PackFlows, stage, capacity, cfg.PackFlows*capacity)
	}
	return l, nil
}

// spreadLimit is a DP stage's routing spread limit in flows (0: off): the
// flows that bring an instance to SpreadOverload × its capacity, at least
// one flow.
func spreadLimit(cfg Config, capacity float64) float64 {
	f := cfg.SpreadOverload
	if f <= 0 || !cfg.Strategy.PeriodicRounds() {
		return 0
	}
	fp := cfg.FlowPackets
	if fp <= 0 {
		fp = DefaultFlowPackets
	}
	return max(1, math.Floor(f*capacity/fp))
}

// localConfig is DC dc's local controller configuration in topology top,
// without its router (Paths, Sink): cfg.Local under the strategy
// (strategyLocal), the DC's VNFs (the P-CSCF, the DP stages, the S-CSCF in
// its DC) with cfg.VNFs' settings and the topology's capacities, the DP
// stages carrying calls' media (PinnedFlows).
func localConfig(cfg Config, top fsm.Topology, dc string) local.Config {
	lc := strategyLocal(cfg.Local, cfg.Strategy)
	lc.DC = dc
	lc.VNFs = nil
	vnfs := append([]fsm.VNF{top.PCSCF}, top.Stages...)
	if dc == top.SCSCFDC {
		vnfs = append(vnfs, top.SCSCF)
	}
	for i, v := range vnfs {
		vc := cfg.VNFs[v.Name]
		vc.Name, vc.Capacity = v.Name, v.Capacity
		// the DP stages (after the P-CSCF, before the S-CSCF) carry calls' media
		vc.PinnedFlows = i > 0 && i <= len(top.Stages)
		lc.VNFs = append(lc.VNFs, vc)
	}
	return lc
}

// strategyLocal is the local controllers' configuration lc under strategy
// s: reactive scaling as s says, and the rules for rounds (between-round
// and falling scale-in, anticipation, the utilisation bar) off without
// periodic rounds.
func strategyLocal(lc local.Config, s strategy.Strategy) local.Config {
	lc.Reactive = s.Reactive()
	// between-round scale-in undoes what rounds planned; without
	// rounds (reactive-only) nothing would plan it back
	lc.ScaleIn.On = lc.ScaleIn.On && s.PeriodicRounds()
	// anticipated scale-out is hybrid's: reactive-only, the yardstick,
	// keeps the paper's rule
	lc.Anticipate = lc.Anticipate && s.PeriodicRounds()
	// the rounds' NoRise and Fast flags tune hybrid's reactive rules: a
	// local controller advertises them only while reactive, and not
	// without rounds
	lc.NoRise.Off = lc.NoRise.Off || !s.PeriodicRounds()
	// so does the overload report as the reactive bar: the utilisation
	// bar is for rounds sizing the DP stages, which reactive-only lacks
	if !s.PeriodicRounds() {
		lc.ReactiveUtilization = 0
		lc.FallingScaleIn = 0 // like ScaleIn: nothing would plan it back
	}
	return lc
}

// PolicyFor is the policy a strategy's rounds plan with: p, without the
// data-plane targets (DPTargetUtilization, Targets) for a strategy without
// periodic rounds. Reactive-only
// plans only its initial round and then adds instances at the overload
// trigger, never removes any: a DP target closer to capacity would only
// start it with fewer instances than its rule (the yardstick of issue 16)
// has always had, so it plans every VNF at TargetUtilization, like
// packFlows is off for it. Config.Policy goes through it (New); a raft
// store's policy is committed by its owner (the daemon), which calls it.
func PolicyFor(p fsm.Policy, s strategy.Strategy) fsm.Policy {
	if s == nil {
		s = strategy.Default
	}
	if !s.PeriodicRounds() {
		p.DPTargetUtilization, p.Targets = 0, nil
	}
	return p
}

// New builds the deployment over driver d and clock clk (nothing runs until Start).
func New(cfg Config, d drivers.Driver, clk clock.Clock) (*System, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Strategy == nil {
		cfg.Strategy = strategy.Default
	}
	cfg.Global.InitialRoundOnly = !cfg.Strategy.PeriodicRounds()
	if cfg.Predictor == "" {
		cfg.Predictor = "ar1"
	}
	if err := CheckPackFlows("packFlows", cfg.PackFlows); err != nil {
		return nil, err
	}
	if err := CheckSpreadOverload("spreadOverload", cfg.SpreadOverload); err != nil {
		return nil, err
	}
	if err := CheckSpreadNotBelowPack("spreadOverload", cfg.SpreadOverload, "packFlows", cfg.PackFlows); err != nil {
		return nil, err
	}
	if err := CheckReactiveUtilization("local.reactiveUtilization", cfg.Local.ReactiveUtilization); err != nil {
		return nil, err
	}
	if err := CheckFallingScaleIn("local.fallingScaleIn", cfg.Local.FallingScaleIn); err != nil {
		return nil, err
	}
	if err := CheckFallingScaleInSingle("local.fallingScaleInSingle", cfg.Local.FallingScaleInSingle); err != nil {
		return nil, err
	}
	if err := checkTrimEmptyBusy(cfg.Local); err != nil {
		return nil, err
	}
	if f := cfg.FlowPackets; math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
		return nil, fmt.Errorf("flowPackets: must be a finite packet rate ≥ 0 (0: %d), got %g", DefaultFlowPackets, f)
	}
	fc, err := global.NewBankForecaster(cfg.Predictor)
	if err != nil {
		return nil, err
	}
	fc.SetHorizon(cfg.PlanHorizon)
	top := cfg.Topology
	if len(top.DCs) == 0 {
		return nil, errors.New("topology.dcs: no datacenter")
	}
	if cfg.LocalDCs == nil {
		cfg.LocalDCs = top.DCs
	}
	for _, dc := range cfg.LocalDCs {
		if !slices.Contains(top.DCs, dc) {
			return nil, fmt.Errorf("local DC %q: not a datacenter of the topology", dc)
		}
	}
	s := &System{cfg: cfg, Clock: clk, Locals: map[string]*local.Controller{}, Routers: map[string]*dcroute.Router{},
		Probers: map[string]*delayprobe.Prober{}, Meters: map[string]*dpmeter.Meter{}, fc: fc}
	s.Store = cfg.Store
	if s.Store == nil {
		m := global.NewMemStore()
		if err := m.Apply(fsm.SetTopology{Topology: top}); err != nil {
			return nil, fmt.Errorf("topology: %w", err)
		}
		if err := m.Apply(fsm.SetPolicy{Policy: PolicyFor(cfg.Policy, cfg.Strategy)}); err != nil {
			return nil, fmt.Errorf("policy: %w", err)
		}
		s.Store = m
	}
	tr := cfg.EngineTransport
	if tr == nil {
		mem, err := transport.NewMem(clk, cfg.Transport)
		if err != nil {
			return nil, err
		}
		s.Transport, tr = mem, mem
	}
	stages := make([]string, len(top.Stages))
	for i, st := range top.Stages {
		stages[i] = st.Name
	}
	for _, dc := range cfg.LocalDCs {
		r, err := dcroute.New(dc, top.DCs, stages, 0, func(err error) { s.routerError(dc, err) })
		if err != nil {
			return nil, err
		}
		for _, st := range top.Stages {
			l, err := packLimit(cfg, st.Name, st.Capacity)
			if err != nil {
				return nil, err
			}
			if err := r.SetPackLimit(st.Name, l); err != nil {
				return nil, fmt.Errorf("stage %s: %w", st.Name, err)
			}
			if err := r.SetSpreadLimit(st.Name, spreadLimit(cfg, st.Capacity)); err != nil {
				return nil, fmt.Errorf("stage %s: %w", st.Name, err)
			}
		}
		lc := localConfig(cfg, top, dc)
		lc.Paths, lc.Sink = r, r
		if cfg.WrapSink != nil {
			lc.Sink = cfg.WrapSink(dc, r)
		}
		if cfg.WrapPaths != nil {
			lc.Paths = cfg.WrapPaths(dc, r)
		}
		c, err := local.New(lc, d, clk, cfg.Logger)
		if err != nil {
			return nil, fmt.Errorf("local controller %s: %w", dc, err)
		}
		if s.Transport != nil {
			s.Transport.Register(dc, c)
		}
		s.Locals[dc], s.Routers[dc] = c, r
		if cfg.Probes != nil {
			report := cfg.Probes.Report
			if report == nil {
				report = s
			}
			p, err := delayprobe.New(delayprobe.Config{DC: dc, Peers: top.DCs, Period: cfg.Probes.Period, Clock: clk,
				Transport: cfg.Probes.Transport, Report: report,
				OnError: func(err error) { cfg.Logger.Debug("delay probe", "err", err) }})
			if err != nil {
				return nil, err
			}
			s.Probers[dc] = p
		}
		if err := s.addMeter(dc, top.DCs); err != nil {
			return nil, err
		}
	}
	if cfg.NoEngine {
		return s, nil
	}
	var rounds global.Forecaster = fc
	if cfg.Forecaster != nil {
		rounds = cfg.Forecaster
	}
	if cfg.ProfilePrior != nil {
		p := profilePrior(*cfg.ProfilePrior, cfg.Global.Interval, cfg.PlanHorizon)
		if err := p.Validate(); err != nil {
			return nil, err
		}
		rounds = global.NewProfileForecaster(rounds, p, clk, top.DCs)
	}
	if cfg.ProfilePrior != nil {
		cfg.Global.StageFloorMode = cfg.ProfilePrior.StageFloorMode
	}
	s.Engine, err = global.New(cfg.Global, global.Deps{Clock: clk, Transport: tr, Forecaster: rounds, Store: s.Store,
		Logger: cfg.Logger.With("role", "global"), Hooks: cfg.EngineHooks, Token: cfg.EngineToken})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// addMeter builds DC dc's DP workload meter when it has a real switch.
func (s *System) addMeter(dc string, dcs []string) error {
	m := s.cfg.DPMeters
	if m == nil || m.Counters == nil {
		return nil
	}
	c := m.Counters(dc)
	if c == nil {
		return nil
	}
	var report dpmeter.Reporter = s
	if m.Report != nil {
		report = m.Report
	}
	log := s.cfg.Logger
	mt, err := dpmeter.New(dpmeter.Config{DC: dc, DCs: dcs, Counters: c, Report: report, Clock: s.Clock, Period: m.Period,
		OnError: func(err error) { log.Warn("DP workload meter", "err", err) }})
	if err != nil {
		return fmt.Errorf("DP workload meter %s: %w", dc, err)
	}
	s.Meters[dc] = mt
	return nil
}

func (s *System) routerError(dc string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.routerErrs = append(s.routerErrs, err)
	s.cfg.Logger.Warn("routing table update failed", "dc", dc, "err", err)
}

// RouterErrors returns the errors the routing tables reported.
func (s *System) RouterErrors() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]error(nil), s.routerErrs...)
}

// DCs returns the datacenter names in index order.
func (s *System) DCs() []string { return append([]string(nil), s.cfg.Topology.DCs...) }

// Start starts the local controllers of this process (launching their
// minimum instances) and, over the in-memory store, the round engine; with
// InitialRound or a strategy without periodic rounds a first round starts
// at once. Over an external Store the engine is the caller's to run while
// this node leads (global.FollowLeadership).
func (s *System) Start(ctx context.Context) error {
	for _, dc := range s.cfg.LocalDCs {
		if err := s.Locals[dc].Start(ctx); err != nil {
			return fmt.Errorf("local controller %s: %w", dc, err)
		}
	}
	for _, dc := range s.cfg.LocalDCs {
		if p := s.Probers[dc]; p != nil {
			p.Start()
		}
		if m := s.Meters[dc]; m != nil {
			m.Start()
		}
	}
	if s.Engine == nil || s.cfg.Store != nil {
		return nil
	}
	if err := s.Engine.Start(); err != nil {
		return err
	}
	if s.cfg.InitialRound || !s.cfg.Strategy.PeriodicRounds() {
		s.Engine.Trigger()
	}
	return nil
}

// Stop stops the engine and the local controllers.
func (s *System) Stop() {
	for _, p := range s.Probers {
		p.Stop()
	}
	for _, m := range s.Meters {
		m.Stop()
	}
	if s.Engine != nil {
		s.Engine.Stop()
	}
	for _, dc := range s.cfg.LocalDCs {
		s.Locals[dc].Stop()
	}
}

// ReportWorkload hands a local controller's workload report to the global
// controller (in one process the report needs no transport).
func (s *System) ReportWorkload(r protocol.WorkloadReport) error {
	if s.Engine == nil {
		return errors.New("workload report: no global controller in this process")
	}
	return s.Engine.ReportWorkload(r)
}

// Strategy returns the strategy in use.
func (s *System) Strategy() strategy.Strategy { return s.cfg.Strategy }

// LocalDCs returns the datacenters whose local controllers run here.
func (s *System) LocalDCs() []string { return slices.Clone(s.cfg.LocalDCs) }

// Forecaster returns the system's forecaster.
func (s *System) Forecaster() *global.BankForecaster { return s.fc }

// profilePrior fills p's fields left 0: the interval, the window of the
// plan horizon, the default call duration.
func profilePrior(p global.ProfilePrior, interval time.Duration, horizon float64) global.ProfilePrior {
	if p.Interval == 0 {
		p.Interval = interval
	}
	if p.Window == 0 {
		p.Window = global.ProfileWindow(p.Interval, horizon)
	}
	if p.CallDuration == 0 {
		p.CallDuration = global.DefaultProfileCallDuration
	}
	return p
}
