package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"runtime"
	"time"

	"github.com/ims-orch/ims-orch/api"
	"github.com/ims-orch/ims-orch/controller/agent"
	"github.com/ims-orch/ims-orch/controller/discovery"
	"github.com/ims-orch/ims-orch/controller/local"
	"github.com/ims-orch/ims-orch/controller/sipglue"
	"github.com/ims-orch/ims-orch/drivers"
	localdrv "github.com/ims-orch/ims-orch/drivers/local"
	"github.com/ims-orch/ims-orch/drivers/local/kamrpc"
)

// sipParts are the real-SIP parts of driver local (paper 4.3, 4.4): one
// discovery DNS server per datacenter on loopback (P-CSCFs find the S-CSCFs
// through it; buffered and overloaded instances leave it at once), the
// statistics agents of the Kamailio instances (reactive scaling on real
// numbers) and the CP workload meter at the S-CSCFs (4.2 step 1).
type sipParts struct {
	// where each DC's discovery is (GET /datacenters, describe dc)
	where   map[string]api.Discovery
	servers []*discovery.Server
	// stopWeights stops the P-CSCFs' SRV weight updates
	stopWeights func()
	disc        *sipglue.Discovery
	agents      *sipglue.Agents
	meter       *sipglue.CPMeter
}

// startDNS serves each DC's discovery zone on its loopback DNS address (port
// 53: Kamailio's resolver uses no other, so this needs root).
func (d *Daemon) startDNS() error {
	t := d.cfg.Topology
	zones := map[string]sipglue.Zone{}
	sp := &sipParts{}
	for i, dc := range d.cfg.dcNames() {
		s, err := discovery.New(discovery.Options{Zone: localdrv.Zone(i, "ims.local")})
		if err != nil {
			sp.close()
			return err
		}
		a, err := localdrv.DNSAddr(i)
		if err != nil {
			sp.close()
			return err
		}
		if _, err := s.ListenAndServe(a.String()); err != nil {
			sp.close()
			return fmt.Errorf("driver local: discovery DNS for %s on %s (needs root: Kamailio resolves on port 53 only): %w", dc, a, err)
		}
		sp.servers = append(sp.servers, s)
		zones[dc] = s
		// newcomer's path (issue 15): where to look without reading the code
		zone := localdrv.Zone(i, "ims.local")
		w := api.Discovery{DNSServer: a.String(), Zone: zone, PCSCFSRV: "_sip._udp.pcscf." + zone, SCSCFSRV: "_sip._udp.scscf." + zone}
		if sp.where == nil {
			sp.where = map[string]api.Discovery{}
		}
		sp.where[dc] = w
		d.log.Info("driver local: discovery DNS", "dc", dc, "index", i, "server", w.DNSServer, "zone", w.Zone,
			"pcscfSRV", w.PCSCFSRV, "scscfSRV", w.SCSCFSRV)
	}
	disc, err := sipglue.NewDiscovery(t.PCSCF.Name, t.SCSCF.Name, zones, func(err error) {
		d.log.Warn("discovery DNS update failed", "err", err)
	})
	if err != nil {
		sp.close()
		return err
	}
	// a removed S-CSCF: every P-CSCF drops its DNS cache at once
	disc.OnSCSCFChange(func([]netip.AddrPort) {
		if err := sipglue.FlushDNSCaches(context.Background(), rpcCall, d.kamailioRPCs(t.PCSCF.Name)); err != nil {
			d.log.Warn("flushing the P-CSCFs' DNS caches", "err", err)
		}
	})
	sp.disc = disc
	d.sip = sp
	return nil
}

func rpcCall(ctx context.Context, rpc netip.AddrPort, method string, params ...any) (json.RawMessage, error) {
	return kamrpc.New(rpc).Call(ctx, method, params...)
}

// kamailioRPCs lists the RPC sockets of the active Kamailio instances of a VNF.
func (d *Daemon) kamailioRPCs(vnf string) []netip.AddrPort {
	ins, _ := d.localDrv.List(context.Background(), "")
	var out []netip.AddrPort
	for _, in := range ins {
		if rt, ok := d.localDrv.Runtime(in.ID); ok && in.VNF == vnf && in.State == drivers.StateActive {
			out = append(out, rt.RPC)
		}
	}
	return out
}

// startSIP starts the agents and the CP meter once the controllers exist.
func (d *Daemon) startSIP() error {
	intakes := map[string]sipglue.StatsIntake{}
	for dc, lc := range d.locals {
		intakes[dc] = lc
	}
	agents, err := sipglue.StartAgents(sipglue.AgentsConfig{Driver: d.localDrv, Sink: sipglue.NewStatsSink(intakes), Clock: d.clk,
		Cores: float64(runtime.NumCPU()), Counters: func(rt localdrv.Runtime) agent.Counters { return kamrpc.New(rt.RPC) },
		OnError: func(id string, err error) { d.log.Warn("statistics agent", "instance", id, "err", err) }})
	if err != nil {
		return err
	}
	d.sip.agents = agents
	// SRV weights of the P-CSCFs from their measured load (issue 15 item 7):
	// user agents choosing per RFC 2782 spread over the working P-CSCFs
	srcs := map[string]sipglue.WeightSource{}
	for dc, lc := range d.locals {
		srcs[dc] = lc.Instances
	}
	d.sip.stopWeights = d.sip.disc.StartPCSCFWeights(d.clk, time.Second, d.cfg.Topology.PCSCF.Thresholds, srcs)
	t := d.cfg.Topology
	report, err := d.cpMeterReporter("local")
	if report == nil || err != nil {
		return err // nil: the S-CSCF DC's node meters its S-CSCFs
	}
	meter, err := sipglue.NewCPMeter(sipglue.CPMeterConfig{DC: t.SCSCFDC, DCs: d.cfg.dcNames(), Clock: d.clk, Report: report,
		Call: rpcCall,
		Targets: func() []sipglue.Target {
			ins, _ := d.localDrv.List(context.Background(), t.SCSCFDC)
			var out []sipglue.Target
			for _, in := range ins {
				if rt, ok := d.localDrv.Runtime(in.ID); ok && in.VNF == t.SCSCF.Name && in.State == drivers.StateActive {
					out = append(out, sipglue.Target{ID: in.ID, RPC: rt.RPC})
				}
			}
			return out
		},
		OnError: func(err error) { d.log.Warn("CP workload meter", "err", err) }})
	if err != nil {
		return err
	}
	d.sip.meter = meter
	meter.Start()
	return nil
}

func (sp *sipParts) close() {
	if sp == nil {
		return
	}
	if sp.meter != nil {
		sp.meter.Stop()
	}
	if sp.stopWeights != nil {
		sp.stopWeights()
	}
	if sp.agents != nil {
		sp.agents.Close()
	}
	for _, s := range sp.servers {
		_ = s.Close()
	}
}

var _ sipglue.StatsIntake = (*local.Controller)(nil)
