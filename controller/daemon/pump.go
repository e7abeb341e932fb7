package daemon

import (
	"slices"
	"sync"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/dcroute"
	"github.com/ims-orch/ims-orch/controller/local"
	"github.com/ims-orch/ims-orch/controller/protocol"
	"github.com/ims-orch/ims-orch/drivers/sim"
	"github.com/ims-orch/ims-orch/placement"
)

// Transactions per call on the control plane (REGISTER of both users,
// INVITE, BYE), counted on the call's entry → exit pair.
const cpTxPerCall = 4

// pump is the simulated load of the single-node sim mode: a fluid model run
// every second on the daemon's clock. Calls start in each entry DC at the
// configured rate and last callSeconds; a pair's DP workload is its active
// calls × packets/s, both directions. The DP load of a pair flows over the
// pair's current path (the entry DC's routing table), each VNF's load in a
// DC is shared evenly by its routable instances, and the simulated cloud
// turns loads into the agents' CPU, memory and packet statistics, which go
// to the local controllers; the entry DCs report DP workloads and the
// S-CSCF DC the CP workloads to the global controller every second.
type pump struct {
	clk     clock.Clock
	cfg     TrafficConfig
	change  time.Duration
	cloud   *sim.Cloud
	dcs     []string
	scscf   int
	pcscf   string
	scscfN  string
	chain   []string
	rates   [][]float64 // by DC index
	locals  map[string]*local.Controller
	routers map[string]*dcroute.Router
	report  func(protocol.WorkloadReport) error
	onError func(error)

	mu      sync.Mutex
	start   time.Time
	active  [][]float64 // [entry][exit] active calls
	drops   float64     // packets/s offered to a VNF with no routable instance, summed over seconds
	dpRates map[[2]int]float64
	rep     *clock.Repeater
	stopped bool
}

func newPump(clk clock.Clock, t TrafficConfig, top TopologyConfig, cloud *sim.Cloud, locals map[string]*local.Controller,
	routers map[string]*dcroute.Router, report func(protocol.WorkloadReport) error, onError func(error)) *pump {
	p := &pump{clk: clk, cfg: t, change: t.changeInterval(), cloud: cloud, locals: locals, routers: routers,
		report: report, onError: onError, pcscf: top.PCSCF.Name, scscfN: top.SCSCF.Name}
	for i, d := range top.Datacenters {
		p.dcs = append(p.dcs, d.Name)
		p.rates = append(p.rates, t.Rates[d.Name])
		if d.Name == top.SCSCFDC {
			p.scscf = i
		}
	}
	for _, v := range top.Chain {
		p.chain = append(p.chain, v.Name)
	}
	n := len(p.dcs)
	p.active = make([][]float64, n)
	for i := range p.active {
		p.active[i] = make([]float64, n)
	}
	cloud.SetSink(statsSink{p})
	return p
}

// statsSink hands the cloud's agent samples to the DC's local controller.
type statsSink struct{ p *pump }

func (s statsSink) ReportStats(id string, smp sim.Sample) error {
	u, ok := s.p.cloud.Unit(id)
	if !ok {
		return nil
	}
	lc := s.p.locals[s.p.dcs[u.DC()]]
	if lc == nil {
		return nil
	}
	return lc.ReportStats(id, local.Stats{At: smp.At, CPU: smp.CPU, Mem: smp.Mem, PktRate: smp.PktRate, Flows: smp.Flows})
}

func (p *pump) Start() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.start = p.clk.Now()
	p.rep = clock.Every(p.clk, time.Second, func() bool { p.tick(); return true })
}

func (p *pump) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopped = true
	if p.rep != nil {
		p.rep.Stop()
	}
}

// rate is entry DC i's call rate at off after the start.
func (p *pump) rate(i int, off time.Duration) float64 {
	rs := p.rates[i]
	if len(rs) == 0 {
		return 0
	}
	k := int(off / p.change)
	return rs[min(k, len(rs)-1)]
}

// Drops returns the DP packets offered so far to a VNF that had no routable
// instance (packets; one second at a time).
func (p *pump) Drops() float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.drops
}

func (p *pump) tick() {
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		return
	}
	now := p.clk.Now()
	off := now.Sub(p.start)
	n := len(p.dcs)
	cp := make([][]float64, n)
	for e := range n {
		cp[e] = make([]float64, n)
		r := p.rate(e, off)
		for x := range n {
			share := 0.0
			switch {
			case p.cfg.Exits == "local" && x == e:
				share = 1
			case p.cfg.Exits == "uniform":
				share = 1 / float64(n)
			}
			a := &p.active[e][x]
			*a += r*share - *a/float64(p.cfg.CallSeconds)
			cp[e][x] = r * share * cpTxPerCall
		}
	}
	dp := map[[2]int]float64{}
	for e := range n {
		for x := range n {
			q := p.active[e][x] * p.cfg.MediaPktPerSec
			if q <= 0 {
				continue
			}
			dp[[2]int{e, x}] += q
			dp[[2]int{x, e}] += q
		}
	}
	p.dpRates = dp
	// offered load per DC and VNF
	offered := make([]map[string]float64, n)
	for i := range offered {
		offered[i] = map[string]float64{}
	}
	for pr, q := range dp {
		e := pr[0]
		path := placement.Path(nil)
		if r := p.routers[p.dcs[e]]; r != nil {
			if ph, ok := r.Path(r.Interval(), placement.Pair{Entry: pr[0], Exit: pr[1]}); ok && len(ph) == len(p.chain)+2 {
				path = ph
			}
		}
		for k, st := range p.chain {
			dc := e
			if path != nil {
				dc = path[k+1]
			}
			offered[dc][st] += q
		}
	}
	total := 0.0
	for e := range n {
		for x := range n {
			offered[e][p.pcscf] += cp[e][x]
			if x != e {
				offered[x][p.pcscf] += cp[e][x]
			}
			total += cp[e][x]
		}
	}
	offered[p.scscf][p.scscfN] += total
	p.mu.Unlock()

	// reports to the global controller (outside the pump's lock)
	for e := range n {
		rep := protocol.WorkloadReport{DC: p.dcs[e], At: now, Kind: "dp"}
		for x := range n {
			if q := dp[[2]int{e, x}]; q > 0 {
				rep.Pairs = append(rep.Pairs, protocol.PairLoad{Entry: p.dcs[e], Exit: p.dcs[x], Rate: q})
			}
		}
		p.send(rep)
	}
	crep := protocol.WorkloadReport{DC: p.dcs[p.scscf], At: now, Kind: "cp"}
	for e := range n {
		for x := range n {
			if cp[e][x] > 0 {
				crep.Pairs = append(crep.Pairs, protocol.PairLoad{Entry: p.dcs[e], Exit: p.dcs[x], Rate: cp[e][x]})
			}
		}
	}
	p.send(crep)

	// instance loads → cloud → agents' statistics → local controllers
	var dropped float64
	for i, dc := range p.dcs {
		lc := p.locals[dc]
		if lc == nil {
			continue
		}
		vnfs := slices.Sorted(func(yield func(string) bool) {
			for v := range offered[i] {
				if !yield(v) {
					return
				}
			}
		})
		for _, vnf := range vnfs {
			q := offered[i][vnf]
			insts := lc.Routable(vnf)
			if len(insts) == 0 {
				dropped += q
				continue
			}
			per := q / float64(len(insts))
			for _, in := range insts {
				if u, ok := p.cloud.Unit(in.ID); ok {
					p.cloud.SetLoad(u, per, 0)
				}
			}
		}
	}
	p.cloud.Report(now)

	p.mu.Lock()
	p.drops += dropped
	p.mu.Unlock()
}

func (p *pump) send(r protocol.WorkloadReport) {
	if len(r.Pairs) == 0 {
		return
	}
	if err := p.report(r); err != nil && p.onError != nil {
		p.onError(err)
	}
}
