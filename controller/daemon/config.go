package daemon

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/ims-orch/ims-orch/controller/local"
	"github.com/ims-orch/ims-orch/controller/strategy"
	"github.com/ims-orch/ims-orch/controller/system"
	"github.com/ims-orch/ims-orch/controller/transport"
	"github.com/ims-orch/ims-orch/placement/vnf"

	"gopkg.in/yaml.v3"

	"github.com/ims-orch/ims-orch/api"
	"github.com/ims-orch/ims-orch/controller/fsm"
	"github.com/ims-orch/ims-orch/controller/global"
	"github.com/ims-orch/ims-orch/controller/routing"
	"github.com/ims-orch/ims-orch/predictor"
)

// MaxConfigBytes bounds a configuration file.
const MaxConfigBytes = 1 << 20

//go:embed default.yaml
var defaultYAML []byte

// DefaultYAML returns the embedded default configuration: one node, the
// simulated cloud, the paper's 4-DC topology and a traffic ramp.
func DefaultYAML() []byte { return bytes.Clone(defaultYAML) }

// Config is the daemon's configuration file (YAML, unknown fields refused).
type Config struct {
	Node     NodeConfig     `yaml:"node"`
	API      APIConfig      `yaml:"api"`
	Role     RoleConfig     `yaml:"role"`
	Driver   DriverConfig   `yaml:"driver"`
	Topology TopologyConfig `yaml:"topology"`
	Policy   PolicyConfig   `yaml:"policy"`
	Traffic  *TrafficConfig `yaml:"traffic"`
}

// NodeConfig is this node's identity and, in a cluster, its raft setup.
// With RaftBind empty the node runs alone without raft (single-node mode).
type NodeConfig struct {
	ID        string       `yaml:"id"`
	RaftBind  string       `yaml:"raftBind"`
	RaftDir   string       `yaml:"raftDir"`
	Peers     []PeerConfig `yaml:"peers"`
	Bootstrap bool         `yaml:"bootstrap"`
	// RaftTLS puts raft on mutual TLS (rafttls.go); required off loopback.
	RaftTLS *RaftTLSConfig `yaml:"raftTLS"`
	// RaftTimeouts sets raft's timeouts (rafttimeouts.go; default raft's).
	RaftTimeouts *RaftTimeoutsConfig `yaml:"raftTimeouts"`
}

// PeerConfig is another node of the cluster: its raft ID and address and
// its API base URL (where a follower forwards writes).
type PeerConfig struct {
	ID   string `yaml:"id"`
	Raft string `yaml:"raft"`
	API  string `yaml:"api"`
}

// APIConfig configures the REST API listener.
type APIConfig struct {
	// Listen is the API address (default 127.0.0.1:8080).
	Listen string `yaml:"listen"`
	// URL is this node's API base URL as peers reach it (default
	// http(s)://Listen).
	URL string `yaml:"url"`
	// TokensFile is the token file (api.LoadTokenFile); empty with
	// AllowUnauthenticated only.
	TokensFile           string     `yaml:"tokensFile"`
	AllowUnauthenticated bool       `yaml:"allowUnauthenticated"`
	TLS                  *TLSConfig `yaml:"tls"`
	// LeaderMode is proxy (default), redirect or reject.
	LeaderMode string `yaml:"leaderMode"`
	// MetricsTokenFile, when set, holds the bearer token /metrics requires
	// (metricsauth.go); empty: /metrics is open.
	MetricsTokenFile string `yaml:"metricsTokenFile"`
}

// TLSConfig names the API's PEM files.
type TLSConfig struct {
	Cert              string `yaml:"cert"`
	Key               string `yaml:"key"`
	ClientCA          string `yaml:"clientCA"`
	RequireClientCert bool   `yaml:"requireClientCert"`
	// PeerCA verifies the other nodes' API certificates when this node
	// forwards a write to the leader or talks the controller protocol
	// (default: ClientCA). The node presents Cert/Key as its client
	// certificate.
	PeerCA string `yaml:"peerCA"`
}

// RoleConfig says what the node runs: the global controller and/or local
// controllers for some datacenters. In single-node mode both are always
// run for every datacenter.
type RoleConfig struct {
	Global bool     `yaml:"global"`
	Locals []string `yaml:"locals"`
	// LocalEndpoints maps a DC to the base URL of the node that runs its
	// local controller (cluster mode, global role): the protocol goes to
	// URL + "/dc/<name>" + transport.ProtocolPath.
	LocalEndpoints map[string]string `yaml:"localEndpoints"`
	// ProtocolTokenFile holds the bearer token of the controller protocol
	// (cluster mode; the same on every node).
	ProtocolTokenFile string `yaml:"protocolTokenFile"`
	// GlobalEndpoints are the API base URLs of the nodes with the global
	// role, where this node's local controllers send their workload reports
	// (cluster mode; default: every node.peers[].api). See reports.go.
	GlobalEndpoints []string `yaml:"globalEndpoints"`
	// ReportersFile (global role) lists each reporting node's token hash and
	// datacenters: reports then need the reporter's own token and are taken
	// only for its DCs (reporters.go). Empty: the protocol token, any DC.
	ReportersFile string `yaml:"reportersFile"`
	// ReportTokenFile is the token this node's reporter presents (default:
	// the protocol token).
	ReportTokenFile string `yaml:"reportTokenFile"`
	// Agents enables the statistics agents inside VNF instances (reports.go).
	Agents *AgentsConfig `yaml:"agents"`
	// ProbePeriod is how often each local controller probes every other
	// DC's (probes.go): a duration, or "off"; default a tenth of the
	// interval within [1s, 30s].
	ProbePeriod string `yaml:"probePeriod"`
}

// Driver kinds.
const (
	DriverSim       = "sim"
	DriverFake      = "fake"
	DriverLocal     = "local"
	DriverOpenStack = "openstack"
)

// MinSCSCFLocal is the S-CSCF minimum with driver.kind local (a lower
// topology.scscf.min is raised to it): N+1, so that the registrations,
// replicated between the S-CSCFs, survive any one S-CSCF failure.
const MinSCSCFLocal = 2

// DriverConfig selects the cloud driver.
type DriverConfig struct {
	Kind string `yaml:"kind"`
	// BootDelay of an instance in the sim and fake clouds (default 2s);
	// with every driver the boot time the plan horizon covers
	// (policy.planHorizon).
	BootDelay string `yaml:"bootDelay"`
	// OpenStackConfig is the drivers/openstack configuration file (openstack only).
	OpenStackConfig string `yaml:"openstackConfig"`
	// KamailioDir is the run directory of the local driver's Kamailio
	// processes (default .kamailio-dev).
	KamailioDir string `yaml:"kamailioDir"`
	// Location is no longer read: a user's entry datacenter is the DC of
	// the P-CSCF it registered through, as the S-CSCFs' registrar records it
	// (deploy/kamailio). A config that still sets it is refused with a
	// message saying so, rather than with yaml's unknown-field error.
	Location any `yaml:"location,omitempty"`
}

// VNFConfig is one VNF of the catalog with its per-instance capacity,
// thresholds and bounds. It stays a struct of its own because it is the
// configuration file's form (YAML names, image, flavor, min, max); its
// Table 2 facts convert to and from vnf.Type in Type, and a VNF of the
// catalog states only what differs from Table 2.
type VNFConfig struct {
	Name       string         `yaml:"name"`
	Capacity   float64        `yaml:"capacity"`
	Thresholds vnf.Thresholds `yaml:"thresholds"`
	Image      string         `yaml:"image"`
	Flavor     string         `yaml:"flavor"`
	Min        int            `yaml:"min"`
	Max        int            `yaml:"max"`
	// LoadThreshold is a DP stage's trigger, in percent of an instance's
	// capacity (local.VNFConfig.LoadThreshold; 0: local.DefaultLoadThreshold,
	// 90; at most 100): of its overload detector and its load rules, which
	// read its load (the larger of CPU and the packet rate's share of the
	// capacity) instead of CPU. The detector's 2-of-3 rule also reads
	// thresholds.pktRate: on the real plane, where a forwarder's CPU and
	// queue stay low, the load and the packet rate count the same packets,
	// and the overload trigger is the larger of loadThreshold % of the
	// capacity and thresholds.pktRate (the capacity itself outside the
	// catalog, so there a loadThreshold under 100 moves the load rules but
	// not the overload). No rule
	// reads a DP stage's thresholds.cpu, so a stated one must equal this
	// (checkStageCPU, in Normalize); a CSCF has none.
	LoadThreshold float64 `yaml:"loadThreshold,omitempty"`
	// filled is the thresholds Normalize filled in (none stated): a second
	// Normalize (ApplyIdentity) checks them as not stated, so normalizing
	// is idempotent and still checks what a caller states, in a file or in
	// code (checkStageCPU).
	filled vnf.Thresholds
}

// Type is the entry as a catalog type of plane: what the entry leaves zero
// comes from Table 2 for a catalog name (vnf.Type.Complete); a VNF outside
// the catalog without thresholds gets 90 % CPU, 50 % memory and its
// capacity in packets/s.
func (v VNFConfig) Type(plane vnf.Plane) vnf.Type {
	t := vnf.Type{Name: v.Name, Plane: plane, Capacity: v.Capacity, Thresholds: v.Thresholds}.Complete()
	if t.Thresholds == (vnf.Thresholds{}) {
		t.Thresholds = vnf.Thresholds{CPU: 90, Mem: 50, PktRate: t.Capacity}
	}
	return t
}

// TopologyConfig describes the datacenters and the VNF chain.
type TopologyConfig struct {
	Datacenters []api.Datacenter `yaml:"datacenters"`
	DelaysMs    [][]float64      `yaml:"delaysMs"`
	SCSCFDC     string           `yaml:"scscfDC"`
	PCSCF       VNFConfig        `yaml:"pcscf"`
	SCSCF       VNFConfig        `yaml:"scscf"`
	Chain       []VNFConfig      `yaml:"chain"`
}

// TrafficConfig is the simulated load (sim driver only): calls per second
// started in each entry DC, following Rates (one per ChangeInterval, held
// after the last), each call lasting CallSeconds with MediaPktPerSec packets
// per second each way; a call's exit DC is its entry DC when Exits is
// "local", else spread evenly over every DC ("uniform").
type TrafficConfig struct {
	ChangeInterval string               `yaml:"changeInterval"`
	Rates          map[string][]float64 `yaml:"rates"`
	Exits          string               `yaml:"exits"`
	CallSeconds    int                  `yaml:"callSeconds"`
	MediaPktPerSec float64              `yaml:"mediaPktPerSec"`
}

// PolicyConfig is the policy section (api.Policy with YAML names).
type PolicyConfig struct {
	IntervalSeconds int         `yaml:"intervalSeconds"`
	Tau             int         `yaml:"tau"`
	DelayBoundMs    float64     `yaml:"delayBoundMs"`
	Predictor       string      `yaml:"predictor"`
	Strategy        string      `yaml:"strategy"`
	Limits          []api.Limit `yaml:"limits"`
	// ImproveBudget is the planner's joint improvement phase budget in pair
	// searches (placement.ImproveOptions; 0: off; absent:
	// DefaultImproveBudget). Restart-only: not part of the API's policy.
	ImproveBudget *int `yaml:"improveBudget"`
	// Scaling options (restart-only, not part of the API's policy; absent:
	// system.Defaults, the simulator's defaults too): the planning target
	// utilisation, local-first planning, the plan horizon (the driver's
	// boot delay after the next interval), the scale-in guard, the buffer
	// trim and the spare instances it keeps, the trim of emptied buffered
	// instances, between-round scale-in.
	TargetUtilization *float64 `yaml:"targetUtilization"`
	// DPTargetUtilization plans the DP stages at this fraction of their
	// capacity (fsm.Policy.DPTargetUtilization; 0: targetUtilization;
	// strategies with rounds only, system.PolicyFor).
	DPTargetUtilization *float64 `yaml:"dpTargetUtilization"`
	// Targets plan the named DP stages at their own utilisation
	// (fsm.Policy.Targets); given (even empty), they replace the default
	// list. Strategies with rounds only.
	Targets      *[]fsm.Target `yaml:"targets"`
	LocalFirst   *bool         `yaml:"localFirst"`
	PlanHorizon  *bool         `yaml:"planHorizon"`
	ScaleInGuard *bool         `yaml:"scaleInGuard"`
	TrimBuffer   *bool         `yaml:"trimBuffer"`
	BufferSpare  *int          `yaml:"bufferSpare"`
	TrimEmpty    *bool         `yaml:"trimEmpty"`
	ScaleIn      *bool         `yaml:"scaleIn"`
	// Anticipate: DP stages scale out before the overload (hybrid only;
	// local.Config.Anticipate).
	Anticipate *bool `yaml:"anticipate"`
	// RiseFlags: the rounds flag DP stages NoRise and Fast (hybrid only;
	// system.Scaling.RiseFlags; false: session 16's behaviour, no flag).
	RiseFlags *bool `yaml:"riseFlags"`
	// Rise sets the rise flags' thresholds (riseconfig.go; absent or 0:
	// the defaults; riseFlags false: no flag whatever it says).
	Rise *RiseConfig `yaml:"rise"`
	// PackFlows: new DP flows are packed onto the most-loaded instance with
	// room up to this fraction of its capacity (system.Config.PackFlows,
	// flows of system.DefaultFlowPackets packets/s; 0: least-loaded).
	PackFlows *float64 `yaml:"packFlows"`
	// SpreadOverload: a new DP flow goes to a less-loaded overloaded
	// instance when the least-loaded normal one would pass this fraction of
	// its capacity (system.Config.SpreadOverload; 0: new flows avoid
	// overloaded instances while a normal one exists).
	SpreadOverload *float64 `yaml:"spreadOverload"`
	// ReactiveUtilization: a local controller's reactive scale-out of a DP
	// stage waits until a majority of its working instances is overloaded
	// and carries this fraction of its capacity (the larger of the packet
	// and the CPU share; for at most one minute while the majority stays
	// overloaded: local.Config.ReactiveUtilization; strategies with rounds
	// only; 0: the overload report suffices).
	ReactiveUtilization *float64 `yaml:"reactiveUtilization"`
	// FallingScaleIn: between rounds, a local controller buffers one
	// instance of a DP stage whose load in its DC is falling once the
	// working load fits on one instance fewer at this fraction of their
	// capacity, and destroys it when its pinned flows have ended
	// (local.Config.FallingScaleIn; strategies with rounds only; 0: off).
	FallingScaleIn *float64 `yaml:"fallingScaleIn"`
	// FallingScaleInSingle: with fallingScaleIn, also step a DP stage from
	// two working instances to one when that one would carry at most this
	// fraction of its capacity (local.Config.FallingScaleInSingle; capped
	// at fallingScaleIn's bar, nothing with fallingScaleIn 0; 0: two
	// stay).
	FallingScaleInSingle *float64 `yaml:"fallingScaleInSingle"`
	// TrimEmptyBusy, TrimEmptySingleBusy: with trimEmpty, a local controller
	// keeps a VNF's emptied buffered instances while its working instances
	// average more than this fraction of their load threshold (the single
	// bar with one working instance; local.Config.TrimEmptyBusy; in (0, 1]).
	TrimEmptyBusy       *float64 `yaml:"trimEmptyBusy"`
	TrimEmptySingleBusy *float64 `yaml:"trimEmptySingleBusy"`
	// FlowPackets is the packet rate of one DP flow (packets/s), the
	// routing's unit of load: it turns packFlows and spreadOverload into
	// flows per instance, the pack and spread limits
	// (system.Config.FlowPackets; absent: system.DefaultFlowPackets, 50,
	// one G.711 stream of 20 ms packets).
	FlowPackets *float64 `yaml:"flowPackets"`
	// CrashLoopBackoff is the local controllers' crash-loop backoff of
	// replacements (restart-only; what it leaves out:
	// local.DefaultCrashBackoff).
	CrashLoopBackoff *CrashLoopBackoffConfig `yaml:"crashLoopBackoff"`
	// DeclaredProfile is the operator's declared daily traffic profile
	// (global.ProfileConfig: per datacenter its rates over its local day,
	// 24 hourly values or a file of "hour, value" lines, and its UTC
	// offset): the global controller's rounds also plan for the profile's
	// coming rises (global.ProfilePrior; strategies with rounds only).
	// Restart-only; absent: none. Files are read when the config is
	// normalized (a relative path from the working directory).
	DeclaredProfile *global.ProfileConfig `yaml:"declaredProfile"`
	// declared is DeclaredProfile built (Normalize; nil: none).
	declared *global.ProfilePrior
	// testProfileHour, if set, replaces the declared profile's 1 h hours
	// (tests only: a day of virtual time the tests can run).
	testProfileHour time.Duration
}

// profilePrior is the declared profile's prior (nil: none): profile time
// 0 is 00:00 UTC, so the profile's hours are the wall clock's.
func (p PolicyConfig) profilePrior() *global.ProfilePrior {
	if p.declared == nil {
		return nil
	}
	c := *p.declared
	return &c
}

// buildDeclared checks policy.declaredProfile against the datacenters
// dcs and builds its prior.
func (p *PolicyConfig) buildDeclared(dcs []string) error {
	p.declared = nil
	if p.DeclaredProfile == nil {
		return nil
	}
	const f = "policy.declaredProfile"
	if h := p.DeclaredProfile.Hour; h != "" {
		if d, err := time.ParseDuration(h); err != nil || d != time.Hour {
			return fmt.Errorf("%s.hour %q: a daemon's profile hours are the wall clock's (1h; leave it out); shorter hours compress the day, a simulator setting (experiment declaredProfile.hour)", f, h)
		}
	}
	prof, call, err := p.DeclaredProfile.Build(f, dcs, readProfileFile)
	if err != nil {
		return err
	}
	if p.testProfileHour > 0 {
		prof.Hour = p.testProfileHour
	}
	d := p.DeclaredProfile
	p.declared = &global.ProfilePrior{Profile: prof, Origin: time.Unix(0, 0).UTC(), CallDuration: call,
		StageFloor: d.StageFloor, StageFloorMode: d.StageFloorMode, StageFloorWindow: d.StageFloorWindow}
	return nil
}

// readProfileFile reads a declared profile's file, at most
// global.MaxProfileFileBytes.
func readProfileFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, global.MaxProfileFileBytes+1))
}

// CrashLoopBackoffConfig is local.CrashBackoff with YAML names: durations
// ("10s", "5m"); initial "off" replaces every failed instance at once.
type CrashLoopBackoffConfig struct {
	Initial string `yaml:"initial"`
	Max     string `yaml:"max"`
	Reset   string `yaml:"reset"`
}

// CrashBackoff is the local controllers' crash-loop backoff: the policy's
// fields, local.DefaultCrashBackoff for those it leaves out. Errors name
// the field.
func (p PolicyConfig) CrashBackoff() (local.CrashBackoff, error) {
	const f = "policy.crashLoopBackoff"
	var b local.CrashBackoff
	if c := p.CrashLoopBackoff; c != nil {
		if c.Initial == "off" {
			if c.Max != "" || c.Reset != "" {
				return b, fmt.Errorf("%s: max and reset mean nothing with initial off", f)
			}
			return local.CrashBackoff{Initial: -1}, nil
		}
		for _, x := range []struct {
			n string
			v string
			p *time.Duration
		}{{"initial", c.Initial, &b.Initial}, {"max", c.Max, &b.Max}, {"reset", c.Reset, &b.Reset}} {
			if x.v == "" {
				continue
			}
			d, err := time.ParseDuration(x.v)
			if err != nil || d <= 0 {
				return b, fmt.Errorf("%s.%s: %q is not a duration > 0 (e.g. 10s, 5m)", f, x.n, x.v)
			}
			*x.p = d
		}
	}
	return b.WithDefaults(f)
}

// Scaling returns the policy's scaling options, system.Defaults for those
// it does not set. WarmStart stays system.Defaults' value but the daemon
// has nothing to warm up from: no operator-declared starting load (the
// simulator's warm start reports its schedule's first rates), so its
// first round sizes for what the first interval measured.
func (p PolicyConfig) Scaling() system.Scaling {
	s := system.Defaults
	if p.Predictor != "" {
		s.Predictor = p.Predictor
	}
	for _, f := range []struct {
		dst *bool
		v   *bool
	}{{&s.LocalFirst, p.LocalFirst}, {&s.PlanHorizon, p.PlanHorizon}, {&s.ScaleInGuard, p.ScaleInGuard}, {&s.TrimBuffer, p.TrimBuffer}, {&s.TrimEmpty, p.TrimEmpty}, {&s.ScaleIn, p.ScaleIn}, {&s.Anticipate, p.Anticipate}, {&s.RiseFlags, p.RiseFlags}} {
		if f.v != nil {
			*f.dst = *f.v
		}
	}
	if p.TargetUtilization != nil {
		s.TargetUtilization = *p.TargetUtilization
	}
	if p.DPTargetUtilization != nil {
		s.DPTargetUtilization = *p.DPTargetUtilization
	}
	s.Targets = slices.Clone(s.Targets)
	if p.Targets != nil {
		s.Targets = slices.Clone(*p.Targets)
	}
	if p.BufferSpare != nil {
		s.BufferSpare = *p.BufferSpare
	}
	if p.PackFlows != nil {
		s.PackFlows = *p.PackFlows
	}
	if p.SpreadOverload != nil {
		s.SpreadOverload = *p.SpreadOverload
	}
	if p.ReactiveUtilization != nil {
		s.ReactiveUtilization = *p.ReactiveUtilization
	}
	if p.FallingScaleIn != nil {
		s.FallingScaleIn = *p.FallingScaleIn
	}
	if p.FallingScaleInSingle != nil {
		s.FallingScaleInSingle = *p.FallingScaleInSingle
	}
	if p.TrimEmptyBusy != nil {
		s.TrimEmptyBusy = *p.TrimEmptyBusy
	}
	if p.TrimEmptySingleBusy != nil {
		s.TrimEmptySingleBusy = *p.TrimEmptySingleBusy
	}
	return s
}

// flowPackets is system.Config.FlowPackets (0: the system's default).
func (p PolicyConfig) flowPackets() float64 {
	if p.FlowPackets == nil {
		return 0
	}
	return *p.FlowPackets
}

// DefaultImproveBudget is the improvement phase's budget when the config
// does not set one (docs/algorithms.md "Joint improvement phase": at 100
// DCs it costs tens of ms and takes most of the saving of a 3× budget).
const DefaultImproveBudget = 1000

// API returns the policy as the API shows it, named PolicyName.
func (p PolicyConfig) API() api.Policy {
	return api.Policy{Name: PolicyName, IntervalSeconds: p.IntervalSeconds, Tau: p.Tau, DelayBoundMs: p.DelayBoundMs,
		Predictor: p.Predictor, Strategy: p.Strategy, Limits: append([]api.Limit(nil), p.Limits...)}
}

// Defaults filled by Normalize.
const (
	DefaultListen    = "127.0.0.1:8080"
	DefaultBootDelay = 2 * time.Second
)

// LoadConfig reads and parses a configuration file.
func LoadConfig(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxConfigBytes+1))
	if err != nil {
		return nil, err
	}
	c, err := ParseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// ParseConfig parses and validates a configuration; unknown fields and
// invalid values are errors naming the field.
func ParseConfig(data []byte) (*Config, error) {
	if len(data) > MaxConfigBytes {
		return nil, fmt.Errorf("config: %d bytes, at most %d", len(data), MaxConfigBytes)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var c Config
	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("config: empty document")
		}
		return nil, fmt.Errorf("config: %w", err)
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("config: more than one YAML document")
	}
	if err := c.Normalize(); err != nil {
		return nil, err
	}
	return &c, nil
}

// DefaultConfig returns the embedded default configuration.
func DefaultConfig() *Config {
	c, err := ParseConfig(defaultYAML)
	if err != nil {
		panic("daemon: embedded default.yaml: " + err.Error()) // a test parses it
	}
	return c
}

// checkNodeID checks node.id with one rule and one message: the ID names
// the node in raft and on its workload reports (reports.go: a reporter ID,
// transport.CheckReporterID), and no '/' (it is a path element).
func checkNodeID(id string) error {
	err := transport.CheckReporterID(id)
	if err == nil && strings.Contains(id, "/") {
		err = fmt.Errorf("%q holds '/'", id)
	}
	if err != nil {
		return fmt.Errorf("node.id: %w; a node ID is at most %d bytes of printable UTF-8 without white space or '/'",
			err, transport.MaxReporterID)
	}
	return nil
}

// Clustered reports whether the node runs raft.
func (c *Config) Clustered() bool { return c.Node.RaftBind != "" }

// Normalize fills defaults and validates; errors name the field.
func (c *Config) Normalize() error {
	if c.Node.ID == "" {
		c.Node.ID = "node1"
	}
	if err := checkNodeID(c.Node.ID); err != nil {
		return err
	}
	if c.Node.RaftBind != "" {
		if _, _, err := net.SplitHostPort(c.Node.RaftBind); err != nil {
			return fmt.Errorf("node.raftBind: %q is not host:port: %v", c.Node.RaftBind, err)
		}
	} else if len(c.Node.Peers) > 0 || c.Node.RaftDir != "" {
		return errors.New("node.raftBind: required when node.peers or node.raftDir is set")
	}
	seen := map[string]bool{c.Node.ID: true}
	for i, p := range c.Node.Peers {
		if p.ID == "" || seen[p.ID] {
			return fmt.Errorf("node.peers[%d].id: %q is empty or repeated", i, p.ID)
		}
		seen[p.ID] = true
		if p.API != "" && !strings.HasPrefix(p.API, "http://") && !strings.HasPrefix(p.API, "https://") {
			return fmt.Errorf("node.peers[%d].api: %q must be an http:// or https:// URL", i, p.API)
		}
	}
	if c.API.Listen == "" {
		c.API.Listen = DefaultListen
	}
	if _, _, err := net.SplitHostPort(c.API.Listen); err != nil {
		return fmt.Errorf("api.listen: %q is not host:port: %v", c.API.Listen, err)
	}
	if c.API.URL == "" {
		scheme := "http://"
		if c.API.TLS != nil {
			scheme = "https://"
		}
		c.API.URL = scheme + c.API.Listen
	}
	switch api.LeaderMode(c.API.LeaderMode) {
	case "", api.LeaderProxy, api.LeaderRedirect, api.LeaderReject:
	default:
		return fmt.Errorf("api.leaderMode: %q must be proxy, redirect or reject", c.API.LeaderMode)
	}
	if c.API.TokensFile == "" && !c.API.AllowUnauthenticated {
		return errors.New("api.tokensFile: required unless api.allowUnauthenticated is true")
	}
	if c.API.TLS != nil && (c.API.TLS.Cert == "" || c.API.TLS.Key == "") {
		return errors.New("api.tls: cert and key are both required")
	}
	if c.Driver.Kind == DriverOpenStack && c.Driver.OpenStackConfig == "" {
		return errors.New("driver.openstackConfig: required with driver.kind openstack")
	}
	if c.Driver.Location != nil {
		return errors.New("driver.location: removed: a SIP user's entry datacenter now comes from its registration (the DC of the P-CSCF its REGISTER went through); delete the section")
	}
	if c.Driver.Kind == "" {
		c.Driver.Kind = DriverSim
	}
	switch c.Driver.Kind {
	case DriverSim, DriverFake, DriverLocal, DriverOpenStack:
	default:
		return fmt.Errorf("driver.kind: %q must be sim, fake, local or openstack", c.Driver.Kind)
	}
	if _, err := c.BootDelay(); err != nil {
		return err
	}
	if c.Driver.Kind == DriverLocal && c.Topology.SCSCF.Min < MinSCSCFLocal {
		// N+1 (issue 15): registrations live in the S-CSCFs (replicated over
		// DMQ); with two, no single S-CSCF failure makes a user re-register
		c.Topology.SCSCF.Min = MinSCSCFLocal
	}
	if err := c.normalizeTopology(); err != nil {
		return err
	}
	for i, l := range c.Role.Locals {
		if c.dcIndex(l) < 0 {
			return fmt.Errorf("role.locals[%d]: %q is not a datacenter of topology.datacenters", i, l)
		}
	}
	if !c.Clustered() {
		c.Role.Global = true
		c.Role.Locals = nil
		for _, d := range c.Topology.Datacenters {
			c.Role.Locals = append(c.Role.Locals, d.Name)
		}
	} else if !c.Role.Global && len(c.Role.Locals) == 0 {
		return errors.New("role: a node runs the global controller, local controllers or both")
	}
	for dc, u := range c.Role.LocalEndpoints {
		if c.dcIndex(dc) < 0 {
			return fmt.Errorf("role.localEndpoints[%q]: not a datacenter", dc)
		}
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			return fmt.Errorf("role.localEndpoints[%q]: %q must be an http:// or https:// URL", dc, u)
		}
	}
	if c.Clustered() && (len(c.Role.Locals) > 0 || len(c.Role.LocalEndpoints) > 0) && c.Role.ProtocolTokenFile == "" {
		return errors.New("role.protocolTokenFile: required when a clustered node runs or reaches local controllers")
	}
	if err := c.normalizePolicy(); err != nil {
		return err
	}
	if err := c.normalizeRaftTLS(); err != nil {
		return err
	}
	if err := c.normalizeRaftTimeouts(); err != nil {
		return err
	}
	if err := c.normalizeReports(); err != nil {
		return err
	}
	if _, _, err := c.probePeriod(); err != nil {
		return err
	}
	if c.Traffic != nil {
		// in cluster mode each node loads and reports its own DCs (reports.go)
		if c.Clustered() && len(c.Role.Locals) == 0 {
			return errors.New("traffic: in cluster mode the simulated traffic loads this node's local controllers; role.locals is empty")
		}
		if c.Driver.Kind != DriverSim && c.Driver.Kind != DriverLocal {
			// local may fall back to sim (local.Available fails): the traffic is used then
			return fmt.Errorf("traffic: only the sim driver takes simulated traffic, driver.kind is %q", c.Driver.Kind)
		}
		if err := c.normalizeTraffic(); err != nil {
			return err
		}
	}
	return nil
}

// planHorizon is the forecaster's plan horizon (system.PlanHorizonFor):
// the next interval's end and driver.bootDelay after it, 0 when
// policy.planHorizon is off.
func (c *Config) planHorizon() float64 {
	boot, _ := c.BootDelay() // checked by Normalize
	return system.PlanHorizonFor(c.Policy.Scaling().PlanHorizon, c.Interval(), boot)
}

// BootDelay parses driver.bootDelay.
func (c *Config) BootDelay() (time.Duration, error) {
	if c.Driver.BootDelay == "" {
		return DefaultBootDelay, nil
	}
	d, err := time.ParseDuration(c.Driver.BootDelay)
	if err != nil || d < 0 || d > time.Hour {
		return 0, fmt.Errorf("driver.bootDelay: %q is not a duration in [0, 1h]", c.Driver.BootDelay)
	}
	return d, nil
}

func (c *Config) dcIndex(name string) int {
	for i, d := range c.Topology.Datacenters {
		if d.Name == name {
			return i
		}
	}
	return -1
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

func (c *Config) normalizeTopology() error {
	t := &c.Topology
	if err := (api.DatacenterList{Datacenters: t.Datacenters}).Validate(); err != nil {
		return fmt.Errorf("topology.datacenters: %w", err)
	}
	n := len(t.Datacenters)
	names := make([]string, n)
	for i, d := range t.Datacenters {
		names[i] = d.Name
		if d.Discovery != nil {
			return fmt.Errorf("topology.datacenters[%d].discovery: read-only (the daemon reports where the DC's discovery DNS is)", i)
		}
	}
	if err := (api.DelayMatrix{Datacenters: names, DelaysMs: t.DelaysMs}).Validate(); err != nil {
		return fmt.Errorf("topology.delaysMs: %w", err)
	}
	if c.dcIndex(t.SCSCFDC) < 0 {
		return fmt.Errorf("topology.scscfDC: %q is not a datacenter", t.SCSCFDC)
	}
	if len(t.Chain) == 0 {
		return errors.New("topology.chain: at least one data-plane VNF is needed")
	}
	if len(t.Chain) > routing.MaxStages {
		return fmt.Errorf("topology.chain: %d stages, at most %d (the data plane's flow tag encodes stages 1..%d)",
			len(t.Chain), routing.MaxStages, routing.MaxStages)
	}
	seen := map[string]bool{}
	all := append([]*VNFConfig{&t.PCSCF, &t.SCSCF}, ptrs(t.Chain)...)
	for i, v := range all {
		field := "topology.chain[" + fmt.Sprint(i-2) + "]"
		switch i {
		case 0:
			field = "topology.pcscf"
		case 1:
			field = "topology.scscf"
		}
		if v.Name == "" || strings.ContainsAny(v.Name, " \t\n/") {
			return fmt.Errorf("%s.name: %q is empty or holds white space or '/'", field, v.Name)
		}
		if seen[v.Name] {
			return fmt.Errorf("%s.name: %q is repeated", field, v.Name)
		}
		seen[v.Name] = true
		// the thresholds as the user gave them: an earlier Normalize's fill
		// (ApplyIdentity normalizes again) is none
		stated := v.Thresholds
		if stated == v.filled {
			stated = vnf.Thresholds{}
		}
		ct := v.Type("") // a catalog VNF's unstated capacity and thresholds are Table 2's
		v.Capacity, v.Thresholds = ct.Capacity, ct.Thresholds
		if stated == (vnf.Thresholds{}) {
			v.filled = v.Thresholds
		}
		if !finite(v.Capacity) || v.Capacity <= 0 {
			return fmt.Errorf("%s.capacity: must be a positive number, got %g", field, v.Capacity)
		}
		th := v.Thresholds
		if !finite(th.CPU) || !finite(th.Mem) || !finite(th.PktRate) || th.CPU < 0 || th.Mem < 0 || th.PktRate < 0 || th.CPU > 100 || th.Mem > 100 {
			return fmt.Errorf("%s.thresholds: cpu and mem in [0, 100], pktRate ≥ 0", field)
		}
		if !finite(v.LoadThreshold) || v.LoadThreshold < 0 || v.LoadThreshold > 100 {
			return fmt.Errorf("%s.loadThreshold: must be in [0, 100] percent of an instance's capacity (0: %g), got %g", field, local.DefaultLoadThreshold, v.LoadThreshold)
		}
		if i < 2 && v.LoadThreshold != 0 {
			return fmt.Errorf("%s.loadThreshold %g: only a data-plane stage (topology.chain[]) has one; a CSCF's overload and load rules read its CPU against %s.thresholds.cpu (its packet rate counts SIP messages, not its capacity's transactions)", field, v.LoadThreshold, field)
		}
		if i >= 2 {
			if err := checkStageCPU(field, stated.CPU, v.LoadThreshold); err != nil {
				return err
			}
		}
		if v.Min < 0 || v.Max < 0 || (v.Max > 0 && v.Max < v.Min) {
			return fmt.Errorf("%s: min %d and max %d must be ≥ 0 and max ≥ min (0 = no limit)", field, v.Min, v.Max)
		}
		if err := c.checkVNFBound(field, v); err != nil {
			return err
		}
	}
	return nil
}

// checkStageCPU checks a chain stage's thresholds.cpu as the user stated it
// (0: not stated; Normalize, before the catalog fills in the thresholds left
// out, on every path: a file, a config built in code) against its
// loadThreshold lt. A DP stage is marked overloaded and sized by its load,
// the larger of its CPU and its packet rate in percent of its capacity,
// against loadThreshold (local.VNFConfig.LoadThreshold); no rule reads its
// thresholds.cpu (the simulated cloud scales its model's CPU by it,
// docs/simulator.md). So a stated thresholds.cpu other than the
// loadThreshold in force is refused, naming both fields: it would silently
// do nothing (before session 12 it was the overload trigger, and session
// 11's docs had the real plane's set to the forwarder's few percent of CPU).
// The remedy offered is the CPU threshold, never the loadThreshold: that is
// a share of the capacity, and a CPU value there (5) would count an
// instance full at 5 % of its capacity. A CSCF has no loadThreshold
// (normalizeTopology): its rules read its CPU against thresholds.cpu, and
// its packet rate counts SIP messages, not its capacity's transactions.
func checkStageCPU(field string, cpu, lt float64) error {
	if cpu == 0 {
		return nil
	}
	ltIs := fmt.Sprintf("%g", lt)
	if lt == 0 {
		lt = local.DefaultLoadThreshold
		ltIs = fmt.Sprintf("%g (not stated: the default)", lt)
	}
	if cpu == lt {
		return nil
	}
	return fmt.Errorf("%s.thresholds.cpu %g differs from %s.loadThreshold %s: a data-plane stage is marked overloaded and sized by its load, the larger of its CPU and its packet rate in percent of its capacity, against loadThreshold, and no rule reads its thresholds.cpu; set thresholds.cpu to %g, or leave thresholds out (cpu, mem and pktRate then all take their defaults); loadThreshold is the share of the capacity at which an instance counts as full, not a CPU value",
		field, cpu, field, ltIs, lt)
}

func ptrs(vs []VNFConfig) []*VNFConfig {
	out := make([]*VNFConfig, len(vs))
	for i := range vs {
		out[i] = &vs[i]
	}
	return out
}

// PolicyName is the policy in force: the one the config's policy section
// defines and the one API writes to "default" change.
const PolicyName = "default"

func (c *Config) normalizePolicy() error {
	p := &c.Policy
	if p.IntervalSeconds == 0 {
		p.IntervalSeconds = 50
	}
	if p.Tau == 0 {
		p.Tau = 10
	}
	if p.DelayBoundMs == 0 {
		p.DelayBoundMs = 250
	}
	if p.Predictor == "" {
		p.Predictor = system.Defaults.Predictor
	}
	// the key's default is system.Defaults' 0.9: an explicit 0 is refused
	// rather than read as the FSM's 0 = 1
	if u := p.TargetUtilization; u != nil {
		if err := fsm.CheckUtilization("policy.targetUtilization", *u, ""); err != nil {
			return err
		}
	}
	if u := p.DPTargetUtilization; u != nil {
		if err := fsm.CheckUtilization("policy.dpTargetUtilization", *u, "targetUtilization"); err != nil {
			return err
		}
	}
	for _, o := range []struct {
		field string
		v     *float64
		check func(string, float64) error
	}{
		{"policy.packFlows", p.PackFlows, system.CheckPackFlows},
		{"policy.spreadOverload", p.SpreadOverload, system.CheckSpreadOverload},
		{"policy.reactiveUtilization", p.ReactiveUtilization, system.CheckReactiveUtilization},
		{"policy.fallingScaleIn", p.FallingScaleIn, system.CheckFallingScaleIn},
		{"policy.fallingScaleInSingle", p.FallingScaleInSingle, system.CheckFallingScaleInSingle},
		{"policy.trimEmptyBusy", p.TrimEmptyBusy, system.CheckTrimEmptyBusy},
		{"policy.trimEmptySingleBusy", p.TrimEmptySingleBusy, system.CheckTrimEmptyBusy},
	} {
		if o.v == nil {
			continue
		}
		if err := o.check(o.field, *o.v); err != nil {
			return err
		}
	}
	if sc := p.Scaling(); p.SpreadOverload != nil || p.PackFlows != nil {
		if err := system.CheckSpreadNotBelowPack("policy.spreadOverload", sc.SpreadOverload, "policy.packFlows", sc.PackFlows); err != nil {
			return err
		}
	}
	if p.Targets != nil {
		if err := fsm.CheckTargets("policy.targets", *p.Targets); err != nil {
			return err
		}
		for i, t := range *p.Targets {
			if !slices.ContainsFunc(c.Topology.Chain, func(v VNFConfig) bool { return vnf.Same(v.Name, t.VNF) }) {
				return fmt.Errorf("policy.targets[%d].vnf %q: not a stage of topology.chain", i, t.VNF)
			}
		}
	}
	if f := p.FlowPackets; f != nil && (!finite(*f) || *f <= 0) {
		return fmt.Errorf("policy.flowPackets: must be a positive packet rate (packets/s of one DP flow, the routing's unit of load; %d for G.711 at 20 ms), got %g", system.DefaultFlowPackets, *f)
	}
	if n := p.BufferSpare; n != nil && *n < 0 {
		return fmt.Errorf("policy.bufferSpare: must not be negative, got %d", *n)
	}
	if _, err := p.CrashBackoff(); err != nil {
		return err
	}
	if _, _, err := p.risePolicies(); err != nil {
		return err
	}
	if err := p.buildDeclared(c.dcNames()); err != nil {
		return err
	}
	if p.Strategy == "" {
		p.Strategy = strategy.Default.Name()
	}
	if p.ImproveBudget == nil {
		b := DefaultImproveBudget
		p.ImproveBudget = &b
	}
	if *p.ImproveBudget < 0 {
		return fmt.Errorf("policy.improveBudget: must not be negative (0 turns the improvement phase off), got %d", *p.ImproveBudget)
	}
	if err := p.API().Validate(); err != nil {
		return fmt.Errorf("policy: %w", err)
	}
	if _, err := strategy.Parse(p.Strategy); err != nil {
		return fmt.Errorf("policy.%w", err)
	}
	if _, err := predictor.ParseSpec(p.Predictor); err != nil {
		return fmt.Errorf("policy.predictor: %w", err)
	}
	return c.checkLimits(p.API())
}

// checkLimits checks a policy's limits as the FSM will (fsm.Policy
// ValidateLimits), with the field named the API's way: known DCs (a limit
// without dc applies in every DC) and VNFs, 0 ≤ min, max 0 (no upper
// bound) or ≥ min, no (dc, vnf) twice.
func (c *Config) checkLimits(p api.Policy) error {
	v := &api.ValidationError{}
	type key struct{ dc, vnf string }
	seen := map[key]int{}
	for i, l := range p.Limits {
		f := fmt.Sprintf("limits[%d]", i)
		if l.DC != "" && c.dcIndex(l.DC) < 0 {
			v.Add(f+".dc", "%q is not a datacenter", l.DC)
		}
		if c.vnf(l.VNF) == nil {
			v.Add(f+".vnf", "%q is not a VNF of the topology", l.VNF)
		}
		if l.Min < 0 {
			v.Add(f+".min", "%d must be ≥ 0", l.Min)
		}
		if l.Max < 0 || (l.Max > 0 && l.Max < l.Min) {
			v.Add(f+".max", "%d must be 0 (no upper bound) or ≥ min (%d)", l.Max, l.Min)
		}
		c.checkLimitBound(v, f, l)
		if j, dup := seen[key{l.DC, l.VNF}]; dup {
			v.Add(f, "repeats limits[%d] (same dc and vnf)", j)
		}
		seen[key{l.DC, l.VNF}] = i
	}
	return v.Err()
}

// fsmLimits converts API limits to the FSM's.
func fsmLimits(ls []api.Limit) []fsm.Limit {
	if len(ls) == 0 {
		return nil
	}
	out := make([]fsm.Limit, len(ls))
	for i, l := range ls {
		out[i] = fsm.Limit(l)
	}
	return out
}

// apiLimits converts FSM limits to the API's.
func apiLimits(ls []fsm.Limit) []api.Limit {
	if len(ls) == 0 {
		return nil
	}
	out := make([]api.Limit, len(ls))
	for i, l := range ls {
		out[i] = api.Limit(l)
	}
	return out
}

// fsmPolicy is the first committed policy: the configured delay bound and
// limits (the limits then travel with every decision).
func (c *Config) fsmPolicy() fsm.Policy {
	budget := DefaultImproveBudget
	if c.Policy.ImproveBudget != nil {
		budget = *c.Policy.ImproveBudget
	}
	sc := c.Policy.Scaling()
	strat, _ := strategy.Parse(c.Policy.Strategy) // checked by normalizePolicy
	return system.PolicyFor(fsm.Policy{DelayBoundMs: c.Policy.DelayBoundMs, Limits: fsmLimits(c.Policy.Limits), ImproveBudget: budget,
		TargetUtilization: sc.TargetUtilization, DPTargetUtilization: sc.DPTargetUtilization, Targets: sc.Targets, LocalFirst: sc.LocalFirst}, strat)
}

func (c *Config) vnf(name string) *VNFConfig {
	t := &c.Topology
	for _, v := range append([]*VNFConfig{&t.PCSCF, &t.SCSCF}, ptrs(t.Chain)...) {
		if v.Name == name {
			return v
		}
	}
	return nil
}

// Interval is the policy's scaling interval.
func (c *Config) Interval() time.Duration {
	return time.Duration(c.Policy.IntervalSeconds) * time.Second
}

// ChangeInterval parses traffic.changeInterval.
func (t *TrafficConfig) changeInterval() time.Duration {
	d, _ := time.ParseDuration(t.ChangeInterval)
	return d
}

func (c *Config) normalizeTraffic() error {
	t := c.Traffic
	if t.ChangeInterval == "" {
		t.ChangeInterval = "10s"
	}
	d, err := time.ParseDuration(t.ChangeInterval)
	if err != nil || d < time.Second || d > 24*time.Hour {
		return fmt.Errorf("traffic.changeInterval: %q is not a duration in [1s, 24h]", t.ChangeInterval)
	}
	for dc, rs := range t.Rates {
		if c.dcIndex(dc) < 0 {
			return fmt.Errorf("traffic.rates[%q]: not a datacenter", dc)
		}
		if len(rs) == 0 || len(rs) > 10000 {
			return fmt.Errorf("traffic.rates[%q]: 1 to 10000 rates needed, got %d", dc, len(rs))
		}
		for i, r := range rs {
			if !finite(r) || r < 0 || r > 1e4 {
				return fmt.Errorf("traffic.rates[%q][%d]: %g calls/s is not in [0, 10000]", dc, i, r)
			}
		}
	}
	switch t.Exits {
	case "":
		t.Exits = "uniform"
	case "uniform", "local":
	default:
		return fmt.Errorf("traffic.exits: %q must be uniform or local", t.Exits)
	}
	if t.CallSeconds == 0 {
		t.CallSeconds = 60
	}
	if t.CallSeconds < 1 || t.CallSeconds > 86400 {
		return fmt.Errorf("traffic.callSeconds: %d is not in [1, 86400]", t.CallSeconds)
	}
	if t.MediaPktPerSec == 0 {
		t.MediaPktPerSec = 50
	}
	if !finite(t.MediaPktPerSec) || t.MediaPktPerSec < 0 || t.MediaPktPerSec > 1e6 {
		return fmt.Errorf("traffic.mediaPktPerSec: %g is not in [0, 1e6]", t.MediaPktPerSec)
	}
	return nil
}
