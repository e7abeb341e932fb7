package sip

// The real-SIP deployment both tests drive: Kamailio P-CSCFs and S-CSCFs of
// two DCs launched by drivers/local, one discovery DNS server per DC, the
// real global and local controllers (controller/system), the statistics
// agents and the CP workload meter at the S-CSCFs.

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/agent"
	"github.com/ims-orch/ims-orch/controller/discovery"
	"github.com/ims-orch/ims-orch/controller/fsm"
	"github.com/ims-orch/ims-orch/controller/global"
	"github.com/ims-orch/ims-orch/controller/local"
	"github.com/ims-orch/ims-orch/controller/sipglue"
	"github.com/ims-orch/ims-orch/controller/strategy"
	"github.com/ims-orch/ims-orch/controller/system"
	"github.com/ims-orch/ims-orch/drivers"
	"github.com/ims-orch/ims-orch/drivers/fake"
	localdrv "github.com/ims-orch/ims-orch/drivers/local"
	"github.com/ims-orch/ims-orch/drivers/local/kamrpc"
	"github.com/ims-orch/ims-orch/drivers/split"
)

// rigConfig is what differs between the tests.
type rigConfig struct {
	top      fsm.Topology
	policy   fsm.Policy
	interval time.Duration
	vnfs     map[string]local.VNFConfig
	// meterPeriod between two CP reports (0: the meter's 5 s)
	meterPeriod    time.Duration
	overloadWindow time.Duration
	// scaleInGuard as the daemon sets it for real drivers (local.Config)
	scaleInGuard bool
}

type rig struct {
	kam     *localdrv.Driver
	drv     *split.Driver
	servers map[string]*discovery.Server
	dnsAddr map[string]netip.AddrPort
	sys     *system.System
	meter   *sipglue.CPMeter
	rec     *recorder

	dnsMu   sync.Mutex
	dnsErrs []error

	flushMu   sync.Mutex
	flushes   []time.Time
	flushErrs []error
}

func rpcCall(ctx context.Context, rpc netip.AddrPort, method string, params ...any) (json.RawMessage, error) {
	return kamrpc.New(rpc).Call(ctx, method, params...)
}

// startRig starts the deployment; everything stops when t ends.
func startRig(t *testing.T, cfg rigConfig) *rig {
	t.Helper()
	logf, err := os.Create(keepDir(t, "controllers") + "/controllers.log")
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(logf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	clk := clock.Real{}
	r := &rig{servers: map[string]*discovery.Server{}, dnsAddr: map[string]netip.AddrPort{}, rec: &recorder{peak: map[string]local.Stats{}, last: map[string]time.Time{}, maxGap: map[string]time.Duration{}}}

	// the real parts: Kamailio processes, DNS servers
	r.kam, err = localdrv.New(localdrv.Config{BaseDir: keepDir(t, "kamailio"), Grace: 2 * time.Second, Quarantine: time.Minute, NoTakeover: true,
		DCIndex: func(dc string) (int, error) {
			if i, ok := dcIndex[dc]; ok {
				return i, nil
			}
			return 0, fmt.Errorf("DC %q: not dc0 or dc1", dc)
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = r.kam.Close(c)
	})
	dp, err := fake.New(clk, fake.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r.drv, err = split.NewDriver(split.DriverConfig{CP: r.kam, CPVNFs: []string{"pcscf", "scscf"}, Other: dp, DrainTimeout: drainLimit})
	if err != nil {
		t.Fatal(err)
	}
	zones := map[string]sipglue.Zone{}
	for dc, i := range dcIndex {
		s, err := discovery.New(discovery.Options{Zone: localdrv.Zone(i, "ims.local")})
		if err != nil {
			t.Fatal(err)
		}
		a, _ := localdrv.DNSAddr(i)
		if _, err := s.ListenAndServe(a.String()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		zones[dc], r.servers[dc], r.dnsAddr[dc] = s, s, a
	}
	disc, err := sipglue.NewDiscovery("pcscf", "scscf", zones, func(err error) { r.dnsMu.Lock(); r.dnsErrs = append(r.dnsErrs, err); r.dnsMu.Unlock() })
	if err != nil {
		t.Fatal(err)
	}
	// a removed S-CSCF: every P-CSCF drops its DNS cache at once
	disc.OnSCSCFChange(func([]netip.AddrPort) {
		err := sipglue.FlushDNSCaches(context.Background(), rpcCall, r.rpcs("", "pcscf"))
		r.flushMu.Lock()
		r.flushes = append(r.flushes, time.Now())
		if err != nil {
			r.flushErrs = append(r.flushErrs, err)
		}
		r.flushMu.Unlock()
	})

	// the real controllers
	r.sys, err = system.New(system.Config{Topology: cfg.top, Policy: cfg.policy, Strategy: strategy.Hybrid,
		Global: global.Config{Interval: cfg.interval},
		Local:  local.Config{Tau: 2, OverloadWindow: cfg.overloadWindow, StatsTimeout: 3 * time.Second, DriverTimeout: time.Minute, ScaleInGuard: cfg.scaleInGuard},
		VNFs:   cfg.vnfs, InitialRound: true, Logger: logger, WrapSink: disc.Sink}, r.drv, clk)
	if err != nil {
		t.Fatal(err)
	}
	intakes := map[string]sipglue.StatsIntake{}
	for dc, lc := range r.sys.Locals {
		intakes[dc] = recordingIntake{lc, r.rec}
	}
	agents, err := sipglue.StartAgents(sipglue.AgentsConfig{Driver: r.kam, Sink: sipglue.NewStatsSink(intakes), Clock: clk, Cores: 1,
		Counters: func(rt localdrv.Runtime) agent.Counters { return kamrpc.New(rt.RPC) },
		OnError:  func(id string, err error) { logger.Warn("statistics agent", "instance", id, "err", err) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(agents.Close)
	r.meter, err = sipglue.NewCPMeter(sipglue.CPMeterConfig{DC: cfg.top.SCSCFDC, DCs: cfg.top.DCs, Clock: clk, Report: r.sys, Period: cfg.meterPeriod,
		Targets: func() []sipglue.Target {
			var out []sipglue.Target
			for _, in := range r.instances(cfg.top.SCSCFDC, "scscf") {
				out = append(out, sipglue.Target{ID: in.id, RPC: in.rt.RPC})
			}
			return out
		},
		Call: rpcCall})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.sys.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.sys.Stop)
	r.meter.Start()
	t.Cleanup(r.meter.Stop)
	return r
}

type runningInstance struct {
	id string
	rt localdrv.Runtime
}

// instances lists the active Kamailio instances of a VNF in dc ("": all DCs).
func (r *rig) instances(dc, vnf string) []runningInstance {
	ins, _ := r.kam.List(context.Background(), dc)
	var out []runningInstance
	for _, in := range ins {
		if rt, ok := r.kam.Runtime(in.ID); ok && in.VNF == vnf && in.State == drivers.StateActive {
			out = append(out, runningInstance{in.ID, rt})
		}
	}
	return out
}

func (r *rig) rpcs(dc, vnf string) []netip.AddrPort {
	var out []netip.AddrPort
	for _, in := range r.instances(dc, vnf) {
		out = append(out, in.rt.RPC)
	}
	return out
}

func (r *rig) zone(dc string) string { return localdrv.Zone(dcIndex[dc], "ims.local") }

// waitMinimum waits until every DC's DNS lists its minimum P-CSCFs and S-CSCFs.
func (r *rig) waitMinimum(t *testing.T, pcscfs, scscfs int) {
	waitFor(t, 20*time.Second, fmt.Sprintf("%d P-CSCF per DC and %d S-CSCFs in DNS", pcscfs, scscfs), func() bool {
		for _, s := range r.servers {
			if len(s.Records("pcscf")) < pcscfs || len(s.Records("scscf")) < scscfs {
				return false
			}
		}
		return true
	})
}

// recordingIntake passes statistics on to the local controller and keeps
// each instance's peak values for the report.
type recordingIntake struct {
	next sipglue.StatsIntake
	rec  *recorder
}

type recorder struct {
	mu   sync.Mutex
	peak map[string]local.Stats
	// last arrival of each instance's statistics and the longest time
	// between two (the local controller fails an instance silent for its
	// StatsTimeout)
	last   map[string]time.Time
	maxGap map[string]time.Duration
}

func (r recordingIntake) ReportStats(id string, s local.Stats) error {
	r.rec.mu.Lock()
	now := time.Now()
	if l, ok := r.rec.last[id]; ok {
		r.rec.maxGap[id] = max(r.rec.maxGap[id], now.Sub(l))
	}
	r.rec.last[id] = now
	p := r.rec.peak[id]
	p.CPU, p.Mem, p.PktRate, p.Flows = max(p.CPU, s.CPU), max(p.Mem, s.Mem), max(p.PktRate, s.PktRate), max(p.Flows, s.Flows)
	r.rec.peak[id] = p
	r.rec.mu.Unlock()
	return r.next.ReportStats(id, s)
}

// keepDir returns a new directory for a test's files: under
// $IMS_SIP_KEEP/<test name>/ when that is set, kept after the test (the
// Kamailio logs, the SIPp statistics, error and message logs of a failing
// run), else a t.TempDir.
func keepDir(t testing.TB, name string) string {
	t.Helper()
	root := os.Getenv("IMS_SIP_KEEP")
	if root == "" {
		return t.TempDir()
	}
	base := filepath.Join(root, strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()))
	if err := os.MkdirAll(base, 0o755); err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp(base, name+"-")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	for end := time.Now().Add(d); !ok(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
	}
}
