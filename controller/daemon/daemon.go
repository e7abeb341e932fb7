// Package daemon owns `ims-orch serve`: it builds a node from a Config (the
// driver, the global controller's round engine and/or local controllers,
// raft in cluster mode, the simulated load in sim mode), serves the REST API
// (package api) over its Backend, /metrics (package metrics), /healthz and
// /readyz, logs one line per scaling decision with its reason, and shuts
// down gracefully.
//
// Single-node mode (node.raftBind empty) runs the whole deployment in one
// process through controller/system on the daemon's clock. Cluster mode runs
// a raft node (fsm.NewNode over raft-wal), the round engine only while this
// node leads (global.FollowLeadership over a global.RaftStore), and the
// local controllers of role.locals behind the controller protocol's HTTP
// handler at /dc/<name>/v1/protocol. Reports from other processes
// (reports.go): workload reports of this node's local controllers go to the
// leader's engine (POST /protocol/v1/workload on the global nodes), and
// statistics agents inside VNF instances post to /dc/<name>/stats.
package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/ims-orch/ims-orch/api"
	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/dcroute"
	"github.com/ims-orch/ims-orch/controller/fsm"
	"github.com/ims-orch/ims-orch/controller/global"
	"github.com/ims-orch/ims-orch/controller/local"
	"github.com/ims-orch/ims-orch/controller/metrics"
	"github.com/ims-orch/ims-orch/controller/protocol"
	"github.com/ims-orch/ims-orch/controller/sipglue"
	"github.com/ims-orch/ims-orch/controller/strategy"
	"github.com/ims-orch/ims-orch/controller/system"
	"github.com/ims-orch/ims-orch/controller/transport"
	"github.com/ims-orch/ims-orch/drivers"
	"github.com/ims-orch/ims-orch/drivers/fake"
	localdrv "github.com/ims-orch/ims-orch/drivers/local"
	"github.com/ims-orch/ims-orch/drivers/openstack"
	"github.com/ims-orch/ims-orch/drivers/sim"
	"github.com/ims-orch/ims-orch/drivers/split"
	"github.com/ims-orch/ims-orch/placement/vnf"
)

// Options are the daemon's injected edges.
type Options struct {
	// Clock drives the controllers and the simulated load (clock.Real{}
	// when nil; tests pass a clock.Virtual).
	Clock clock.Clock
	// Logger receives the structured logs (slog.Default when nil).
	Logger *slog.Logger
	// Listener is the API listener (net.Listen(api.listen) when nil).
	Listener net.Listener
	// RaftTransport replaces raft's TCP transport (tests).
	RaftTransport raft.Transport
	// BootstrapProbeTimeout bounds how long a bootstrap node with an empty
	// raft directory asks its peers whether a cluster runs already
	// (bootstrap.go; default 3 s).
	BootstrapProbeTimeout time.Duration
	// RaftAdvertise is the raft address (host:port, a DNS name allowed;
	// port 0: the port bound) kept in the raft configuration instead of
	// the bound one (identity.go); empty: the bound address.
	RaftAdvertise string
	// Raft overrides raft's configuration (tests shorten its timeouts).
	Raft *raft.Config
	// ShutdownTimeout bounds the graceful shutdown (default 10 s).
	ShutdownTimeout time.Duration
	// DPForwarder is the command of each real DP instance's process (driver
	// local with Open vSwitch; drivers/netns). Empty: this binary's
	// "dp-forward" when it is ims-orch, else ims-dpfwd on PATH.
	DPForwarder []string
	// ObserveReport, if set, sees every workload report this node's
	// local-side sources (simulated load, DP and CP meters, delay probes)
	// handed to its reporter to the leader in cluster mode, once the
	// reporter took it (tests compare them with the leader's measurement).
	ObserveReport func(protocol.WorkloadReport)

	// wrapStore, if set, wraps a cluster node's raft store before anything
	// uses it (package tests: hold the round engine's commits).
	wrapStore func(global.Store) global.Store
	// wrapProtocol, if set, wraps the round engine's protocol transport
	// (package tests: count the requests in flight).
	wrapProtocol func(transport.Transport) transport.Transport
	// realTimeout, if positive, bounds one protocol request and one
	// workload report send instead of their 2 s defaults (package tests
	// on a loaded machine: a slow answer is not a loss).
	realTimeout time.Duration
}

// Daemon is one running node.
type Daemon struct {
	cfg *Config
	clk clock.Clock
	log *slog.Logger
	opt Options

	driver drivers.Driver
	// simCloud is the simulated cloud (the driver, or its DP half), nil otherwise
	simCloud *sim.Cloud
	// dp is the real data plane (driver local with Open vSwitch), nil otherwise
	dp *dpParts
	// localDrv runs the CP VNFs as Kamailio processes (driver local): they
	// are children of the daemon and are terminated at shutdown
	localDrv *localdrv.Driver
	// sip holds the discovery DNS, agents and CP meter of driver local
	sip *sipParts
	// reconcile reconciles the OpenStack servers with the local
	// controllers (driver openstack), nil otherwise
	reconcile *cloudReconciler
	sys       *system.System
	node      *fsm.Node
	engine    *global.Engine
	store     global.Store
	locals    map[string]*local.Controller
	routers   map[string]*dcroute.Router
	pump      *pump
	reports   *reportParts // workload reporter, agents' stats endpoint (reports.go)
	httpT     *transport.HTTP
	peerTr    *http.Transport

	backend *Backend
	metrics *metrics.Metrics
	watch   *watcher
	ln      net.Listener
	srv     *http.Server
	mux     *http.ServeMux
	peers   *peerContact // raft heartbeat contact, for membership changes (clustered only)

	cancel    context.CancelFunc
	wg        sync.WaitGroup
	serveErr  chan error
	stopOnce  sync.Once
	closeOnce sync.Once
}

// New builds a node from cfg (already normalized); nothing runs until Start.
func New(cfg *Config, opt Options) (*Daemon, error) {
	if opt.Clock == nil {
		opt.Clock = clock.Real{}
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.ShutdownTimeout <= 0 {
		opt.ShutdownTimeout = 10 * time.Second
	}
	d := &Daemon{cfg: cfg, clk: opt.Clock, log: opt.Logger, opt: opt, locals: map[string]*local.Controller{},
		routers: map[string]*dcroute.Router{}, serveErr: make(chan error, 1)}
	var err error
	if d.driver, err = d.newDriver(); err != nil {
		d.close() // what it started before failing: the data plane, Kamailio processes
		return nil, err
	}
	if err = d.build(); err != nil {
		d.close()
		return nil, err
	}
	if d.node != nil {
		d.peers = watchPeers(d.node.Raft)
	}
	d.backend = newBackend(d)
	d.metrics = metrics.New(d.backend)
	d.registerReportMetrics()
	d.buildCloudReconciler()
	d.watch = newWatcher(d)
	return d, nil
}

func (d *Daemon) newDriver() (drivers.Driver, error) {
	cfg := d.cfg
	boot, _ := cfg.BootDelay()
	names := cfg.dcNames()
	simCloud := func() (drivers.Driver, error) {
		cat, err := cfg.simCatalog()
		if err != nil {
			return nil, err
		}
		return sim.New(d.clk, sim.Options{DCs: names, Catalog: cat, BootDelay: max(boot, time.Millisecond)})
	}
	switch cfg.Driver.Kind {
	case DriverSim:
		c, err := simCloud()
		if c != nil {
			d.simCloud = c.(*sim.Cloud)
		}
		return c, err
	case DriverFake:
		return fake.New(d.clk, fake.Options{BootDelay: boot})
	case DriverLocal:
		if err := localdrv.Available(); err != nil {
			d.log.Warn("the local driver cannot run here; falling back to the simulated cloud", "err", err)
			cfg.Driver.Kind = DriverSim
			c, err := simCloud()
			if c != nil {
				d.simCloud = c.(*sim.Cloud)
			}
			return c, err
		}
		// CP VNFs run as real Kamailio processes, the DP stages as network
		// namespaces on Open vSwitch when it is installed, else on the
		// simulated cloud (drivers/local runs only P-CSCF and S-CSCF)
		other, dpErr := d.startDataPlane()
		if dpErr != nil {
			d.log.Warn("the data plane stays simulated", "reason", dpErr)
			dp, err := simCloud()
			if err != nil {
				return nil, err
			}
			d.simCloud = dp.(*sim.Cloud)
			other = dp
		}
		var media func(int) (string, netip.Addr)
		if d.dp != nil {
			media = d.dp.mediaFor
		}
		ld, err := localdrv.New(localdrv.Config{BaseDir: cfg.Driver.KamailioDir, Clock: d.clk, Media: media, DCIndex: func(dc string) (int, error) {
			if i := cfg.dcIndex(dc); i >= 0 {
				return i, nil
			}
			return 0, fmt.Errorf("%q is not a datacenter of the topology", dc)
		}})
		if err != nil {
			return nil, fmt.Errorf("driver local: %w", err)
		}
		d.localDrv = ld
		if err := d.startDNS(); err != nil {
			return nil, err // New closes ld and the data plane
		}
		d.log.Info("driver local: CP VNFs run as Kamailio processes", "dir", cfg.Driver.KamailioDir)
		return split.NewDriver(split.DriverConfig{CP: ld, CPVNFs: []string{cfg.Topology.PCSCF.Name, cfg.Topology.SCSCF.Name},
			Other: other})
	case DriverOpenStack:
		data, err := os.ReadFile(cfg.Driver.OpenStackConfig)
		if err != nil {
			return nil, fmt.Errorf("driver.openstackConfig: %w", err)
		}
		oc, err := openstack.ParseConfig(data)
		if err != nil {
			return nil, fmt.Errorf("driver.openstackConfig %s: %w", cfg.Driver.OpenStackConfig, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		clients, err := openstack.Connect(ctx, oc, d.clk)
		if err != nil {
			return nil, fmt.Errorf("driver openstack: %w", err)
		}
		drv, err := openstack.New(oc, clients, d.clk)
		if err != nil {
			return nil, err
		}
		drv.SetLogger(d.log.With("driver", "openstack"))
		return drv, nil
	}
	return nil, fmt.Errorf("driver.kind: %q is not supported", cfg.Driver.Kind)
}

func (c *Config) dcNames() []string {
	out := make([]string, len(c.Topology.Datacenters))
	for i, dc := range c.Topology.Datacenters {
		out[i] = dc.Name
	}
	return out
}

// simCatalog builds the simulated cloud's catalog from the topology.
func (c *Config) simCatalog() (*sim.Catalog, error) {
	t := c.Topology
	var types []sim.VNFType
	add := func(v VNFConfig, plane vnf.Plane) {
		types = append(types, sim.DefaultModel(v.Type(plane)))
	}
	add(t.PCSCF, vnf.ControlPlane)
	add(t.SCSCF, vnf.ControlPlane)
	for _, v := range t.Chain {
		add(v, vnf.DataPlane)
	}
	return sim.NewCatalog(types...)
}

// fsmTopology is the replicated topology of the config.
func (c *Config) fsmTopology() fsm.Topology {
	t := c.Topology
	top := fsm.Topology{DCs: c.dcNames(), SCSCFDC: t.SCSCFDC,
		PCSCF: fsm.NewVNF(t.PCSCF.Type(vnf.ControlPlane), t.PCSCF.Min),
		SCSCF: fsm.NewVNF(t.SCSCF.Type(vnf.ControlPlane), t.SCSCF.Min)}
	for _, v := range t.Chain {
		top.Stages = append(top.Stages, fsm.NewVNF(v.Type(vnf.DataPlane), 0))
	}
	for _, row := range t.DelaysMs {
		top.DelayMs = append(top.DelayMs, append([]float64(nil), row...))
	}
	return top
}

// localVNFs returns the local controllers' per-VNF settings, policy limits
// applied (a limit without DC bounds the VNF in every DC).
func (c *Config) localVNFs() map[string]local.VNFConfig {
	out := map[string]local.VNFConfig{}
	t := c.Topology
	for _, v := range append([]VNFConfig{t.PCSCF, t.SCSCF}, t.Chain...) {
		lv := local.NewVNFConfig(v.Type(""))
		lv.Image, lv.Flavor, lv.Min, lv.Max, lv.Bound = v.Image, v.Flavor, v.Min, v.Max, c.instanceBound(v.Name)
		lv.LoadThreshold = v.LoadThreshold
		for _, l := range c.Policy.Limits {
			if l.VNF == v.Name && l.DC == "" {
				lv.Min, lv.Max = l.Min, l.Max
			}
		}
		out[v.Name] = lv
	}
	return out
}

// wrapSink puts the discovery DNS in front of each DC's routing sink
// (driver local), so DNS follows the routable P-CSCFs and S-CSCFs.
func (d *Daemon) wrapSink() func(string, local.InstanceSink) local.InstanceSink {
	if d.sip == nil || d.sip.disc == nil {
		return nil
	}
	return d.sip.disc.Sink
}

func (d *Daemon) localTemplate() local.Config {
	// the policy's scaling options (system.Defaults unless the config sets them)
	sc := d.cfg.Policy.Scaling()
	cb, _ := d.cfg.Policy.CrashBackoff()        // checked by Normalize
	_, noRise, _ := d.cfg.Policy.risePolicies() // checked by Normalize
	lc := local.Config{Tau: uint64(d.cfg.Policy.Tau), ScaleInGuard: sc.ScaleInGuard, TrimBuffer: sc.TrimBuffer, BufferSpare: sc.BufferSpare,
		TrimEmpty: sc.TrimEmpty, ScaleIn: local.ScaleIn{On: sc.ScaleIn}, Anticipate: sc.Anticipate, ReactiveUtilization: sc.ReactiveUtilization,
		FallingScaleIn: sc.FallingScaleIn, FallingScaleInSingle: sc.FallingScaleInSingle, TrimEmptyBusy: sc.TrimEmptyBusy, TrimEmptySingleBusy: sc.TrimEmptySingleBusy, CrashBackoff: cb,
		NoRise: noRise}
	if d.sip != nil && d.cfg.Traffic != nil && !d.cfg.Clustered() {
		// the Kamailio instances' agents and the simulated DP stages report every second
		return lc
	}
	if d.cfg.Driver.Kind != DriverSim || d.cfg.Traffic == nil || d.cfg.Clustered() {
		// no simulated load reports statistics: instances are failed for
		// silence only when agents report (role.agents), else never
		lc.StatsTimeout = d.cfg.agentStatsTimeout()
	}
	return lc
}

// globalConfig is the round engine's configuration: the interval, its
// step deadline, the rise policy in force (policy.riseFlags, policy.rise).
func (c *Config) globalConfig() global.Config {
	rise, _, _ := c.Policy.risePolicies() // checked by Normalize
	return global.Config{Interval: c.Interval(), StepDeadline: min(5*time.Second, c.Interval()/2), Rise: rise}
}

// build composes the controllers through system.New, the one composition
// path of the simulator, the single-node and the cluster mode: the
// strategy, the instance sinks (routing tables, the discovery DNS with
// driver local), the statistics agents, the CP workload meter and the
// workload reports are wired alike in every mode. A cluster node adds its
// raft store, runs the local controllers of role.locals (protocol and scale
// endpoints) and the engine only with role.global.
func (d *Daemon) build() error {
	cfg := d.cfg
	strat, err := strategy.Parse(cfg.Policy.Strategy)
	if err != nil {
		return err
	}
	sc := system.Config{
		Topology: cfg.fsmTopology(), Policy: cfg.fsmPolicy(),
		Global:   cfg.globalConfig(),
		Strategy: strat, Predictor: cfg.Policy.Predictor, Local: d.localTemplate(), VNFs: cfg.localVNFs(),
		PlanHorizon: cfg.planHorizon(), PackFlows: cfg.Policy.Scaling().PackFlows,
		SpreadOverload: cfg.Policy.Scaling().SpreadOverload,
		FlowPackets:    cfg.Policy.flowPackets(),
		ProfilePrior:   cfg.Policy.profilePrior(),
		InitialRound:   true, Logger: d.log, WrapSink: d.wrapDPSink(d.wrapSink()), WrapPaths: d.wrapPaths(),
		EngineHooks: d.failpointHooks(),
		LocalDCs:    append([]string{}, cfg.Role.Locals...), // none is none, not every DC
	}
	if d.sip != nil && !cfg.Clustered() {
		// driver local: the Kamailio instances' agents always report, so a
		// silent (stopped) CSCF is failed and replaced even when nothing
		// measures the DP stages (no traffic, no Open vSwitch)
		for _, n := range []string{cfg.Topology.PCSCF.Name, cfg.Topology.SCSCF.Name} {
			v := sc.VNFs[n]
			v.StatsTimeout = local.DefaultStatsTimeout
			sc.VNFs[n] = v
		}
	}
	token := ""
	if cfg.Clustered() {
		if token, err = d.buildCluster(&sc); err != nil {
			return err
		}
	}
	if sc.Probes, err = d.probes(); err != nil {
		return err
	}
	sc.DPMeters = d.dpMeters()
	sys, err := system.New(sc, d.driver, d.clk)
	if err != nil {
		return err
	}
	d.sys, d.engine, d.store = sys, sys.Engine, sys.Store
	d.locals, d.routers = sys.Locals, sys.Routers
	if err := d.attachDataPlane(sys.Routers); err != nil {
		return err
	}
	if cfg.Clustered() {
		d.wireResync()
		if err := d.serveLocals(token); err != nil {
			return err
		}
	} else if c := d.simCloud; c != nil && cfg.Traffic != nil {
		d.pump = newPump(d.clk, *cfg.Traffic, cfg.Topology, c, d.locals, d.routers, d.localDrv != nil, sys.ReportWorkload, func(err error) {
			d.log.Warn("simulated workload report refused", "err", err)
		})
	}
	if err := d.buildReports(token); err != nil {
		return err
	}
	if d.sip != nil {
		return d.startSIP()
	}
	return nil
}

// workloadReporter is where this node's local-side workload reports go:
// the in-process engine in single-node mode, the reporter to the raft
// leader in a cluster (nil: this node runs no local controller).
func (d *Daemon) workloadReporter() sipglue.Reporter {
	if !d.cfg.Clustered() {
		return d.sys
	}
	if d.reports != nil && d.reports.reporter != nil {
		return viaReporter{d}
	}
	return nil
}

// cpMeterReporter is where this node's CP workload meter (driver named
// in the error) sends: nil, nil when another node runs the S-CSCF DC's local
// controller (that node meters its S-CSCFs); an error when this node runs
// it but knows no report target.
func (d *Daemon) cpMeterReporter(driver string) (sipglue.Reporter, error) {
	if d.locals[d.cfg.Topology.SCSCFDC] == nil {
		return nil, nil
	}
	report := d.workloadReporter()
	if report == nil {
		return nil, fmt.Errorf("driver %s: the CP workload meter has no report target", driver)
	}
	return report, nil
}

// buildCluster starts the raft node and sets the cluster's parts of sc: the
// raft store, the local controllers of role.locals, the engine only with
// role.global, over HTTP to role.localEndpoints. It returns the protocol
// token.
func (d *Daemon) buildCluster(sc *system.Config) (string, error) {
	cfg := d.cfg
	var peers []fsm.Peer
	for _, p := range cfg.Node.Peers {
		if p.Raft != "" {
			peers = append(peers, fsm.Peer{ID: p.ID, Addr: p.Raft})
		}
	}
	var stream raft.StreamLayer
	if d.opt.RaftTransport == nil {
		var err error
		if stream, err = d.raftStream(); err != nil {
			return "", err
		}
		if d.opt.RaftAdvertise != "" {
			if stream, err = advertise(stream, cfg.Node.RaftBind, d.opt.RaftAdvertise); err != nil {
				return "", err
			}
		}
	}
	var err error
	if d.peerTr, err = d.peerTransport(); err != nil {
		return "", err
	}
	nc := fsm.NodeConfig{ID: cfg.Node.ID, Dir: cfg.Node.RaftDir, Bind: cfg.Node.RaftBind,
		Transport: d.opt.RaftTransport, Peers: peers, Bootstrap: cfg.Node.Bootstrap, Raft: cfg.raftConfig(d.opt.Raft),
		Stream: stream, Logger: fsm.SlogLogger(d.log)}
	if len(peers) == 0 {
		// a cluster of itself: only if no peer runs one already (bootstrap.go)
		nc.SkipBootstrap = d.clusterElsewhere
	}
	node, err := fsm.NewNode(nc)
	if err != nil {
		return "", fmt.Errorf("raft: %w", err)
	}
	d.node = node
	d.store = global.NewRaftStore(node, 5*time.Second)
	if d.opt.wrapStore != nil {
		d.store = d.opt.wrapStore(d.store)
	}
	token := ""
	if cfg.Role.ProtocolTokenFile != "" {
		b, err := os.ReadFile(cfg.Role.ProtocolTokenFile)
		if err != nil {
			return "", fmt.Errorf("role.protocolTokenFile: %w", err)
		}
		token = strings.TrimSpace(string(b))
		if token == "" {
			return "", fmt.Errorf("role.protocolTokenFile %s: empty", cfg.Role.ProtocolTokenFile)
		}
	}
	d.mux = http.NewServeMux()
	sc.Store, sc.NoEngine = d.store, !cfg.Role.Global
	if !cfg.Role.Global {
		return token, nil
	}
	if len(cfg.Role.LocalEndpoints) > 0 {
		eps := map[string]string{}
		for dc, u := range cfg.Role.LocalEndpoints {
			eps[dc] = strings.TrimSuffix(u, "/") + "/dc/" + dc
		}
		hc := &http.Client{}
		if d.peerTr != nil {
			hc.Transport = d.peerTr
		}
		h, err := transport.NewHTTP(transport.HTTPConfig{Endpoints: eps, Token: token, Client: hc, Timeout: d.opt.realTimeout})
		if err != nil {
			return "", err
		}
		d.httpT, sc.EngineTransport = h, h
	} else {
		// no local controller reachable: rounds give every DC up
		m, err := transport.NewMem(d.clk, transport.MemConfig{})
		if err != nil {
			return "", err
		}
		sc.EngineTransport = m
	}
	if d.opt.wrapProtocol != nil {
		sc.EngineTransport = d.opt.wrapProtocol(sc.EngineTransport)
	}
	return token, nil
}

// serveLocals serves the protocol and manual-scale endpoints of this
// node's local controllers (cluster mode).
func (d *Daemon) serveLocals(token string) error {
	for _, dc := range d.cfg.Role.Locals {
		c := d.locals[dc]
		h, err := transport.NewHandler(c, token)
		if err != nil {
			return err
		}
		d.mux.Handle("/dc/"+dc+transport.ProtocolPath, http.StripPrefix("/dc/"+dc, h))
		sh, err := transport.NewScaleHandler(c, token)
		if err != nil {
			return err
		}
		d.mux.Handle("/dc/"+dc+transport.ScalePath, http.StripPrefix("/dc/"+dc, sh))
	}
	return nil
}

// peerTransport is the HTTP transport to the other nodes' APIs when the API
// uses TLS: it trusts PeerCA (or ClientCA) and presents this node's
// certificate.
func (d *Daemon) peerTransport() (*http.Transport, error) {
	t := d.cfg.API.TLS
	if t == nil {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if ca := t.PeerCA; ca != "" || t.ClientCA != "" {
		if ca == "" {
			ca = t.ClientCA
		}
		pool, err := api.LoadCertPool(ca)
		if err != nil {
			return nil, fmt.Errorf("api.tls.peerCA: %w", err)
		}
		tc.RootCAs = pool
	}
	cert, err := tls.LoadX509KeyPair(t.Cert, t.Key)
	if err != nil {
		return nil, fmt.Errorf("api.tls: %w", err)
	}
	tc.Certificates = []tls.Certificate{cert}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	return tr, nil
}

// Start starts the controllers, the simulated load and the API listener.
func (d *Daemon) Start(ctx context.Context) error {
	ctx, d.cancel = context.WithCancel(context.WithoutCancel(ctx))
	srvCfg := api.Config{Backend: d.backend, AllowUnauthenticated: d.cfg.API.AllowUnauthenticated,
		Leader: api.LeaderMode(d.cfg.API.LeaderMode), Logger: d.log.With("component", "api")}
	if d.peerTr != nil {
		srvCfg.ProxyTransport = d.peerTr
	}
	if d.cfg.API.TokensFile != "" {
		ts, err := api.LoadTokenFile(d.cfg.API.TokensFile)
		if err != nil {
			return fmt.Errorf("api.tokensFile: %w", err)
		}
		srvCfg.Tokens = ts
	}
	apiSrv, err := api.New(srvCfg)
	if err != nil {
		return err
	}
	var tlsCfg *tls.Config
	if t := d.cfg.API.TLS; t != nil {
		if tlsCfg, err = api.ServerTLSConfig(api.TLSFiles{CertFile: t.Cert, KeyFile: t.Key, ClientCAFile: t.ClientCA,
			RequireClientCert: t.RequireClientCert}); err != nil {
			return fmt.Errorf("api.tls: %w", err)
		}
	}
	mux := d.mux
	if mux == nil {
		mux = http.NewServeMux()
	}
	mh, err := d.metricsHandler()
	if err != nil {
		return err
	}
	mux.Handle("/metrics", mh)
	mux.Handle("/", apiSrv)
	d.srv = apiSrv.HTTPServer(d.cfg.API.Listen, tlsCfg)
	d.srv.Handler = mux
	ln := d.opt.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", d.cfg.API.Listen); err != nil {
			return fmt.Errorf("api.listen: %w", err)
		}
	}
	d.ln = ln

	if err := d.sys.Start(ctx); err != nil {
		return err
	}
	if d.node != nil {
		if d.engine != nil {
			d.wg.Add(1)
			go func() {
				defer d.wg.Done()
				global.FollowLeadership(ctx, d.node, d.engine)
			}()
		}
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			d.seedState(ctx)
		}()
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			d.resyncLoop(ctx)
		}()
	}
	if d.pump != nil {
		d.pump.Start()
	}
	if d.reconcile != nil {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			d.reconcile.run(ctx)
		}()
	}
	d.watch.start()
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		var err error
		if tlsCfg != nil {
			err = d.srv.ServeTLS(ln, "", "")
		} else {
			err = d.srv.Serve(ln)
		}
		if !errors.Is(err, http.ErrServerClosed) {
			d.serveErr <- err
		}
	}()
	d.log.Info("ims-orch serving", "api", d.URL(), "node", d.cfg.Node.ID, "clustered", d.cfg.Clustered(),
		"driver", d.cfg.Driver.Kind, "global", d.cfg.Role.Global, "locals", d.cfg.Role.Locals,
		"interval", d.cfg.Interval().String(), "strategy", d.cfg.Policy.Strategy, "rise", d.cfg.Policy.riseSummary())
	if d.cfg.API.AllowUnauthenticated {
		d.log.Warn("the API accepts unauthenticated requests (api.allowUnauthenticated): development only")
	}
	if w := d.cfg.raftIntervalWarning(); w != "" && d.opt.Raft == nil {
		d.log.Warn(w)
	}
	return nil
}

// seedState commits the configured topology and policy once this node leads
// a cluster whose state has none yet (a new cluster).
func (d *Daemon) seedState(ctx context.Context) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		if d.node.Raft.State() == raft.Leader && d.store.State().Topology == nil {
			err := d.store.Apply(fsm.SetTopology{Topology: d.cfg.fsmTopology()})
			if err == nil {
				err = d.store.Apply(fsm.SetPolicy{Policy: d.cfg.fsmPolicy()})
			}
			if err != nil {
				d.log.Warn("cannot commit the configured topology yet", "err", err)
			} else {
				d.log.Info("committed the configured topology and policy")
			}
		}
		if d.store.State().Topology != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// URL is the API's base URL (from the listener once started).
func (d *Daemon) URL() string {
	if d.ln != nil {
		scheme := "http://"
		if d.cfg.API.TLS != nil {
			scheme = "https://"
		}
		return scheme + d.ln.Addr().String()
	}
	return d.cfg.API.URL
}

// Backend returns the node's api.Backend.
func (d *Daemon) Backend() *Backend { return d.backend }

// Node returns the raft node (nil in single-node mode).
func (d *Daemon) Node() *fsm.Node { return d.node }

// System returns the one-process deployment (nil in cluster mode).
func (d *Daemon) System() *system.System { return d.sys }

// Errors delivers a fatal error of the API listener.
func (d *Daemon) Errors() <-chan error { return d.serveErr }

// Shutdown stops accepting requests, lets a round in progress finish
// (bounded by ctx; in cluster mode leadership is handed over so the next
// leader resumes the round from its last committed step), then stops the
// engine, the simulated load and the local controllers.
func (d *Daemon) Shutdown(ctx context.Context) error {
	var err error
	d.stopOnce.Do(func() {
		if d.srv != nil {
			if e := d.srv.Shutdown(ctx); e != nil {
				err = errors.Join(err, fmt.Errorf("api shutdown: %w", e))
			}
		}
		if d.node != nil && d.node.Raft.State() == raft.Leader && len(d.node.Raft.GetConfiguration().Configuration().Servers) > 1 {
			if e := d.node.Raft.LeadershipTransfer().Error(); e != nil {
				d.log.Warn("leadership transfer failed; followers elect a leader after the election timeout", "err", e)
			}
		}
		if d.node == nil {
			d.waitRound(ctx)
		}
		if d.pump != nil {
			d.pump.Stop()
		}
		if d.watch != nil {
			d.watch.stop()
		}
		if d.cancel != nil {
			d.cancel()
		}
		d.wg.Wait()
		d.close()
	})
	return err
}

// waitRound waits (polling, bounded by ctx) until no round is in progress.
func (d *Daemon) waitRound(ctx context.Context) {
	for d.store.State().Round != nil {
		select {
		case <-ctx.Done():
			d.log.Warn("shutdown with a round in progress; it resumes from its last committed step at the next start")
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (d *Daemon) close() { d.closeOnce.Do(d.closeNow) }

func (d *Daemon) closeNow() {
	d.reports.close()
	if d.sys != nil {
		d.sys.Stop()
	}
	if d.httpT != nil {
		d.httpT.Close()
	}
	d.sip.close()
	d.dp.close(d.log)
	if d.localDrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		if err := d.localDrv.Close(ctx); err != nil {
			d.log.Warn("stopping the Kamailio processes", "err", err)
		}
		cancel()
	}
	if d.node != nil {
		if err := d.node.Shutdown(); err != nil {
			d.log.Warn("raft shutdown", "err", err)
		}
	}
}

// Run starts the node and serves until ctx is done (SIGINT/SIGTERM in
// serve), then shuts down within Options.ShutdownTimeout.
func (d *Daemon) Run(ctx context.Context) error {
	if err := d.Start(ctx); err != nil {
		d.close()
		return err
	}
	var err error
	select {
	case <-ctx.Done():
		d.log.Info("shutting down", "cause", context.Cause(ctx))
	case err = <-d.serveErr:
		d.log.Error("API listener failed", "err", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), d.opt.ShutdownTimeout)
	defer cancel()
	return errors.Join(err, d.Shutdown(sctx))
}
