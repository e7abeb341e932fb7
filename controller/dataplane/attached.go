package dataplane

import (
	"context"
	"time"

	"github.com/ims-orch/ims-orch/controller/agent"
	"github.com/ims-orch/ims-orch/controller/local"
	"github.com/ims-orch/ims-orch/controller/protocol"
	"github.com/ims-orch/ims-orch/drivers/netns"
)

// Hooks are the local.PathStore and local.InstanceSink of an attached
// datacenter: each call goes to the DC's router first, then the DC's rules
// are recompiled and applied, so step 4 has installed the next interval's
// rules and step 5 switched to them when the calls return.
type Hooks struct {
	p  *Plane
	dc int
}

var (
	_ local.PathStore    = Hooks{}
	_ local.InstanceSink = Hooks{}
)

// Hooks returns the hooks of attached datacenter dc; give them to the
// local controller as Config.Paths and Config.Sink.
func (p *Plane) Hooks(dc int) Hooks { return Hooks{p: p, dc: dc} }

func (h Hooks) sync() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.p.Sync(ctx, h.dc); err != nil && h.p.cfg.OnError != nil {
		h.p.cfg.OnError(err)
	}
}

// StoreNext implements local.PathStore (step 4).
func (h Hooks) StoreNext(interval uint64, paths []protocol.PathEntry) {
	h.p.dcs[h.dc].router.StoreNext(interval, paths)
	h.sync()
}

// Enter implements local.PathStore (step 5).
func (h Hooks) Enter(interval uint64) {
	h.p.dcs[h.dc].router.Enter(interval)
	h.sync()
}

// SetInstances implements local.InstanceSink.
func (h Hooks) SetInstances(vnf string, insts []local.RoutableInstance) {
	h.p.dcs[h.dc].router.SetInstances(vnf, insts)
	h.sync()
}

// SampleStats reports every active DP instance of drv in datacenter dc to
// sink each period until ctx ends, through the same intake as the Kamailio
// agents: PktRate is the packets/s the switch sent into the instance's in
// port (interface counters, one command for all instances). CPU and Mem stay
// 0: the kernel forwards in softirq context, no process of the instance runs
// whose CPU could be measured (docs/dataplane.md).
func SampleStats(ctx context.Context, drv *netns.Driver, dc string, sink agent.Sink, period time.Duration) {
	type last struct {
		at  time.Time
		rcv uint64
	}
	prev := map[string]last{}
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		counts, err := drv.InPackets(ctx, dc)
		if err != nil {
			continue // the switch namespace is being restarted or gone: Watch reports it
		}
		now := time.Now()
		for id, rcv := range counts {
			s := agent.Sample{At: now}
			if p, ok := prev[id]; ok && now.After(p.at) && rcv >= p.rcv {
				s.PktRate = float64(rcv-p.rcv) / now.Sub(p.at).Seconds()
			}
			prev[id] = last{at: now, rcv: rcv}
			_ = sink.ReportStats(id, s)
		}
		for id := range prev {
			if _, ok := counts[id]; !ok {
				delete(prev, id)
			}
		}
	}
}
