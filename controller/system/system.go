// Package system assembles one whole ims-orch deployment in a process: the
// global controller's round engine, one local controller and routing table per
// datacenter, the transport between them and the predictor behind the
// engine. The simulator, the daemon's single-node mode and the integration
// tests all build the controllers through it, so they run the same code.
package system

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/dcroute"
	"github.com/ims-orch/ims-orch/controller/fsm"
	"github.com/ims-orch/ims-orch/controller/global"
	"github.com/ims-orch/ims-orch/controller/local"
	"github.com/ims-orch/ims-orch/controller/protocol"
	"github.com/ims-orch/ims-orch/controller/transport"
	"github.com/ims-orch/ims-orch/drivers"
)

// Strategy is the scaling strategy of paper 6.2.
type Strategy string

// Strategies.
const (
	// Hybrid: proactive rounds every interval and reactive scale-out between them (ScalIMS).
	Hybrid Strategy = "hybrid"
	// Proactive: rounds only; local controllers do not react to overload.
	Proactive Strategy = "proactive"
	// Reactive: one initial round sets paths and instances, then only reactive scale-out.
	Reactive Strategy = "reactive"
)

// ParseStrategy checks a strategy name.
func ParseStrategy(s string) (Strategy, error) {
	switch Strategy(s) {
	case Hybrid, Proactive, Reactive:
		return Strategy(s), nil
	case "":
		return Hybrid, nil
	}
	return "", fmt.Errorf("strategy: %q is not one of hybrid, proactive, reactive", s)
}

// Config describes a deployment.
type Config struct {
	Topology fsm.Topology
	Policy   fsm.Policy
	// Global tunes the round engine (interval, re-send timer, deadlines).
	Global   global.Config
	Strategy Strategy
	// Predictor is the model spec of every series (predictor.ParseSpec;
	// default "ar1", the paper's Eq. (1)).
	Predictor string
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
	// paths"); Reactive always does.
	InitialRound bool
	Logger       *slog.Logger
	// WrapSink, if set, wraps each DC's instance sink (the DC's routing
	// table), e.g. to also publish routable instances in DNS
	// (controller/sipglue). The wrapper must pass updates on to s.
	WrapSink func(dc string, s local.InstanceSink) local.InstanceSink
}

// System is a running deployment.
type System struct {
	cfg       Config
	Clock     clock.Clock
	Engine    *global.Engine
	Store     *global.MemStore
	Transport *transport.Mem
	// Locals and Routers by DC name.
	Locals  map[string]*local.Controller
	Routers map[string]*dcroute.Router
	fc      *global.ModelForecaster

	mu         sync.Mutex
	routerErrs []error
}

// New builds the deployment over driver d and clock clk (nothing runs until Start).
func New(cfg Config, d drivers.Driver, clk clock.Clock) (*System, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	var err error
	if cfg.Strategy, err = ParseStrategy(string(cfg.Strategy)); err != nil {
		return nil, err
	}
	if cfg.Predictor == "" {
		cfg.Predictor = "ar1"
	}
	fc, err := global.NewModelForecaster(cfg.Predictor)
	if err != nil {
		return nil, err
	}
	top := cfg.Topology
	if len(top.DCs) == 0 {
		return nil, errors.New("topology.dcs: no datacenter")
	}
	s := &System{cfg: cfg, Clock: clk, Locals: map[string]*local.Controller{}, Routers: map[string]*dcroute.Router{}, fc: fc}
	s.Store = global.NewMemStore()
	if err := s.Store.Apply(fsm.SetTopology{Topology: top}); err != nil {
		return nil, fmt.Errorf("topology: %w", err)
	}
	if err := s.Store.Apply(fsm.SetPolicy{Policy: cfg.Policy}); err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	mem, err := transport.NewMem(clk, cfg.Transport)
	if err != nil {
		return nil, err
	}
	s.Transport = mem
	stages := make([]string, len(top.Stages))
	for i, st := range top.Stages {
		stages[i] = st.Name
	}
	for _, dc := range top.DCs {
		r, err := dcroute.New(dc, top.DCs, stages, 0, s.routerError)
		if err != nil {
			return nil, err
		}
		lc := cfg.Local
		lc.DC = dc
		lc.Paths, lc.Sink = r, r
		if cfg.WrapSink != nil {
			lc.Sink = cfg.WrapSink(dc, r)
		}
		lc.Reactive = cfg.Strategy != Proactive
		lc.VNFs = nil
		vnfs := append([]fsm.VNF{top.PCSCF}, top.Stages...)
		if dc == top.SCSCFDC {
			vnfs = append(vnfs, top.SCSCF)
		}
		for _, v := range vnfs {
			vc := cfg.VNFs[v.Name]
			vc.Name, vc.Capacity = v.Name, v.Capacity
			lc.VNFs = append(lc.VNFs, vc)
		}
		c, err := local.New(lc, d, clk, cfg.Logger.With("dc", dc))
		if err != nil {
			return nil, fmt.Errorf("local controller %s: %w", dc, err)
		}
		mem.Register(dc, c)
		s.Locals[dc], s.Routers[dc] = c, r
	}
	hooks := global.Hooks{}
	if cfg.Strategy == Reactive {
		hooks.StepCommitted = func(_ uint64, step protocol.Step) {
			if step == protocol.StepEnter {
				// the initial round is done: no more proactive rounds
				clk.AfterFunc(0, func() { s.Engine.Stop() })
			}
		}
	}
	s.Engine, err = global.New(cfg.Global, global.Deps{Clock: clk, Transport: mem, Forecaster: fc, Store: s.Store,
		Logger: cfg.Logger.With("role", "global"), Hooks: hooks})
	if err != nil {
		return nil, err
	}
	return s, nil
}

func (s *System) routerError(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.routerErrs = append(s.routerErrs, err)
	s.cfg.Logger.Warn("routing table update failed", "err", err)
}

// RouterErrors returns the errors the routing tables reported.
func (s *System) RouterErrors() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]error(nil), s.routerErrs...)
}

// DCs returns the datacenter names in index order.
func (s *System) DCs() []string { return append([]string(nil), s.cfg.Topology.DCs...) }

// Start starts every local controller (launching their minimum instances)
// and the round engine; with InitialRound or the reactive strategy a first
// round starts at once.
func (s *System) Start(ctx context.Context) error {
	for _, dc := range s.cfg.Topology.DCs {
		if err := s.Locals[dc].Start(ctx); err != nil {
			return fmt.Errorf("local controller %s: %w", dc, err)
		}
	}
	if err := s.Engine.Start(); err != nil {
		return err
	}
	if s.cfg.InitialRound || s.cfg.Strategy == Reactive {
		s.Engine.Trigger()
	}
	return nil
}

// Stop stops the engine and the local controllers.
func (s *System) Stop() {
	s.Engine.Stop()
	for _, dc := range s.cfg.Topology.DCs {
		s.Locals[dc].Stop()
	}
}

// ReportWorkload hands a local controller's workload report to the global
// controller (in one process the report needs no transport).
func (s *System) ReportWorkload(r protocol.WorkloadReport) error { return s.Engine.ReportWorkload(r) }

// Forecaster returns the system's forecaster.
func (s *System) Forecaster() *global.ModelForecaster { return s.fc }
