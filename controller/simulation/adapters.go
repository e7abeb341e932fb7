package simulation

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ims-orch/ims-orch/controller/dcroute"
	"github.com/ims-orch/ims-orch/controller/protocol"
	"github.com/ims-orch/ims-orch/controller/routing"
	"github.com/ims-orch/ims-orch/controller/system"
	"github.com/ims-orch/ims-orch/drivers/sim"
	"github.com/ims-orch/ims-orch/drivers/sim/traffic"
)

// Invented addresses: users of call c are 100.64.0.0/10 + 2c (caller) and
// + 2c+1 (callee); datacenter d's entry IP is 198.18.0.(d+1).
const (
	userNet        = 0x64400000
	userMask       = 0x003fffff
	entryNet       = 0xC6120000
	callerSend     = 20000
	callerRecv     = 20001
	calleeSend     = 30000
	calleeRecv     = 30001
	mediaEntryPort = 40000
	udp            = 17
)

func entryIP(dc int) routing.IPv4 { return routing.IPv4(entryNet + uint32(dc) + 1) }

type callState struct {
	c      routing.Call
	routed int // Route calls made (0..2)
	live   int // flows routed and not yet released
}

// router is the traffic.Router over the local controllers' routing tables:
// it walks a new flow through the datacenters of its path the way the
// switches would, first packet by first packet.
type router struct {
	rs    []*dcroute.Router
	m     int
	calls map[uint64]*callState
	flows map[uint64][]routing.Decision
}

func newRouter(sys *system.System, dcs []string, m int) *router {
	r := &router{m: m, calls: map[uint64]*callState{}, flows: map[uint64][]routing.Decision{}}
	for _, d := range dcs {
		r.rs = append(r.rs, sys.Routers[d])
	}
	return r
}

var errLoop = errors.New("routing: the flow did not exit after m+2 datacenters")

func (r *router) Route(f traffic.Flow) ([]traffic.Hop, error) {
	cs := r.calls[f.Call]
	if cs == nil {
		caller, callee := f.Entry, f.Exit
		if f.Dir == 1 {
			caller, callee = callee, caller
		}
		ip := uint32(2*f.Call) & userMask
		c := routing.Call{CallerDC: caller, CalleeDC: callee,
			CallerIP: routing.IPv4(userNet + ip), CalleeIP: routing.IPv4(userNet + (ip+1)&userMask),
			CallerSendPort: callerSend, CallerRecvPort: callerRecv, CalleeSendPort: calleeSend, CalleeRecvPort: calleeRecv,
			CallerEntryIP: entryIP(caller), CalleeEntryIP: entryIP(callee)}
		if err := r.rs[caller].AddCall(c); err != nil {
			return nil, fmt.Errorf("routing: add call: %v", err)
		}
		if callee != caller {
			if err := r.rs[callee].AddCall(c); err != nil {
				r.rs[caller].RemoveCall(c)
				return nil, fmt.Errorf("routing: add call: %v", err)
			}
		}
		cs = &callState{c: c}
		r.calls[f.Call] = cs
	}
	cs.routed++
	hops, decs, err := r.walk(f, cs)
	if err != nil {
		for i := range decs {
			r.rs[decs[i].DC].Release(&decs[i])
		}
		r.maybeRemove(f.Call, cs)
		return nil, err
	}
	cs.live++
	r.flows[f.ID] = decs
	return hops, nil
}

func (r *router) walk(f traffic.Flow, cs *callState) ([]traffic.Hop, []routing.Decision, error) {
	src, port := cs.c.CallerIP, uint16(callerSend)
	if f.Dir == 1 {
		src, port = cs.c.CalleeIP, calleeSend
	}
	p := routing.Packet{From: routing.FromUser, Proto: udp, SrcIP: src, SrcPort: port,
		DstIP: entryIP(f.Entry), DstPort: mediaEntryPort, Load: 1}
	hops := make([]traffic.Hop, r.m)
	decs := make([]routing.Decision, 0, 2)
	dc := f.Entry
	for range r.m + 2 {
		if dc < 0 || dc >= len(r.rs) {
			return nil, decs, fmt.Errorf("routing: next datacenter %d does not exist", dc)
		}
		rt := r.rs[dc]
		d := rt.Route(p)
		if d.Verdict != routing.Forward {
			where := "downstream"
			if p.From == routing.FromUser {
				where = "entry"
			}
			return nil, decs, fmt.Errorf("routing: %s: %s", where, d.Reason)
		}
		decs = append(decs, d)
		for s := d.First; s <= d.Last; s++ {
			hops[s-1] = traffic.Hop{DC: dc, Instance: rt.InstanceID(s, d.Instances[s-1])}
		}
		if d.Exit {
			if dc != f.Exit {
				return nil, decs, fmt.Errorf("routing: flow exited at the wrong datacenter")
			}
			for s, h := range hops {
				if h.Instance == "" {
					return nil, decs, fmt.Errorf("routing: stage %d got no instance", s+1)
				}
			}
			return hops, decs, nil
		}
		p.From, p.DstIP, p.DstPort = routing.FromTunnel, d.DstIP, d.DstPort
		dc = d.Next
	}
	return nil, decs, errLoop
}

func (r *router) maybeRemove(id uint64, cs *callState) {
	if cs.routed < 2 || cs.live > 0 {
		return
	}
	r.rs[cs.c.CallerDC].RemoveCall(cs.c)
	if cs.c.CalleeDC != cs.c.CallerDC {
		r.rs[cs.c.CalleeDC].RemoveCall(cs.c)
	}
	delete(r.calls, id)
}

func (r *router) Release(f traffic.Flow, _ []traffic.Hop) {
	decs := r.flows[f.ID]
	delete(r.flows, f.ID)
	for i := range decs {
		r.rs[decs[i].DC].Release(&decs[i])
	}
	if cs := r.calls[f.Call]; cs != nil {
		cs.live--
		r.maybeRemove(f.Call, cs)
	}
}

// workload turns the traffic engine's measurements into the local
// controllers' workload reports (paper 4.2 step 1): every DC reports the
// pairs it is the entry of, DP with its measured outgoing link delays.
type workload struct {
	sys    *system.System
	dcs    []string
	delays *sim.Delays
	logger *slog.Logger
	// errs counts refused reports; firstErr is the first refusal.
	errs     int
	firstErr error
	// fixed records the DP loads for Cost.FixedFloorVMSeconds (nil: not recorded).
	fixed *fixedRouting
	// loads logs the reports (Result.Loads; nil: not logged).
	loads *LoadLog
}

func (w *workload) report(at time.Time, kind string, loads []traffic.PairLoad) {
	per := make([][]protocol.PairLoad, len(w.dcs))
	for _, l := range loads {
		per[l.Entry] = append(per[l.Entry], protocol.PairLoad{Entry: w.dcs[l.Entry], Exit: w.dcs[l.Exit], Rate: l.Rate})
	}
	var D [][]float64
	if kind == "dp" {
		D = w.delays.Matrix(at)
	}
	for i, dc := range w.dcs {
		rep := protocol.WorkloadReport{DC: dc, At: at, Kind: kind, Pairs: per[i]}
		if D != nil {
			rep.DelaysMs = make(map[string]float64, len(w.dcs)-1)
			for j, o := range w.dcs {
				if j != i {
					rep.DelaysMs[o] = D[i][j]
				}
			}
		}
		if err := w.sys.ReportWorkload(rep); err != nil {
			if w.errs++; w.firstErr == nil {
				w.firstErr = err
			}
			w.logger.Warn("workload report refused", "dc", dc, "err", err)
		}
	}
}

func (w *workload) CPWorkload(at time.Time, loads []traffic.PairLoad) {
	w.loads.record("cp", at, loads)
	w.report(at, "cp", loads)
}

func (w *workload) DPWorkload(at time.Time, loads []traffic.PairLoad) {
	w.fixed.record(at, loads)
	w.loads.record("dp", at, loads)
	w.report(at, "dp", loads)
}
