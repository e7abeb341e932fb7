package dataplane

import (
	"fmt"
	"slices"

	"github.com/ims-orch/ims-orch/controller/routing"
	"github.com/ims-orch/ims-orch/drivers/ovs"
)

// One 5-tuple is routed one way at a time. A UA that reuses its media
// endpoint for consecutive or overlapping calls (SIPp sends every call's
// RTP from one port) makes two flows with one first packet, whose arrival
// rules have one identity on the switch; a call started in a later
// interval carries another tag. The newer flow takes the 5-tuple over (its
// rule replaces the older one), and the older call's end removes only the
// flows it still owns.

// flowKey is what a flow's arrival rule matches (routing.Decision's
// AppendRules): two flows with one key have rules of one identity.
type flowKey struct {
	from             routing.Arrival
	proto            uint8
	srcIP, dstIP     routing.IPv4
	srcPort, dstPort uint16
}

func keyOf(p routing.Packet) flowKey {
	return flowKey{from: p.From, proto: p.Proto, srcIP: p.SrcIP, dstIP: p.DstIP, srcPort: p.SrcPort, dstPort: p.DstPort}
}

// release takes a flow's load off its instances.
func (st *dcState) release(d *routing.Decision) {
	if st.router != nil {
		st.router.Release(d)
	} else {
		st.t.Release(d)
	}
}

// addFlow stores a flow routed here (owner: the call StartCall routed it
// for, nil for StartFlow) under a new serial. The flow that routed the same
// 5-tuple before leaves (its load is released, its call no longer owns it):
// the next sync replaces its rules with the new flow's. The new flow takes
// the older one's serial when both name one entry→exit pair.
func (st *dcState) addFlow(d routing.Decision, pkt routing.Packet, owner *routing.Call) {
	if st.byKey == nil {
		st.byKey = map[flowKey]uint32{}
		st.callOf = map[uint32]routing.Call{}
	}
	k := keyOf(d.Packet)
	var sr uint32
	if old, took := st.byKey[k]; took {
		if o, ok := st.flows[old]; ok && o.Decision.Tag.Entry == d.Tag.Entry && o.Decision.Tag.Exit == d.Tag.Exit {
			// the same pair: the flow keeps the serial, so its rule
			// keeps its cookie and is modified in place (its packet
			// counter goes on: the DP meter reads no extra dump)
			sr = old
		}
		st.removeFlow(old)
		st.takeovers++
	}
	if sr == 0 {
		st.serial++
		sr = st.serial
	}
	st.flows[sr] = Flow{Serial: sr, Decision: d, Packet: pkt}
	st.byKey[k] = sr
	if owner != nil {
		st.callOf[sr] = *owner
		st.byCall[*owner] = append(st.byCall[*owner], sr)
	}
}

// removeFlow forgets flow sr: its load, its 5-tuple and its owner's claim.
func (st *dcState) removeFlow(sr uint32) {
	f, ok := st.flows[sr]
	if !ok {
		return
	}
	st.release(&f.Decision)
	delete(st.flows, sr)
	if k := keyOf(f.Decision.Packet); st.byKey[k] == sr {
		delete(st.byKey, k)
	}
	c, owned := st.callOf[sr]
	if !owned {
		return
	}
	delete(st.callOf, sr)
	if s := slices.DeleteFunc(st.byCall[c], func(x uint32) bool { return x == sr }); len(s) > 0 {
		st.byCall[c] = s
	} else {
		delete(st.byCall, c)
	}
}

// callStart is the packets StartCall routed at one DC for call c.
type callStart struct {
	c    routing.Call
	pkts []routing.Packet
}

// recordStart notes that StartCall routed pkt here for c (its start's entry
// is the last one of c: StartCall records its packets in one go).
func (st *dcState) recordStart(c routing.Call, pkt routing.Packet) {
	pkt.From = routing.FromUser
	if n := len(st.starts); n > 0 && st.starts[n-1].c == c {
		st.starts[n-1].pkts = append(st.starts[n-1].pkts, pkt)
		return
	}
	st.starts = append(st.starts, callStart{c: c, pkts: []routing.Packet{pkt}})
}

// forgetStart drops the oldest start of c (of equal calls, which hold the
// same packets, one ends).
func (st *dcState) forgetStart(c routing.Call) {
	if i := slices.IndexFunc(st.starts, func(s callStart) bool { return s.c == c }); i >= 0 {
		st.starts = slices.Delete(st.starts, i, i+1)
	}
}

// giveBack routes each 5-tuple in keys (those an ending call owned) again
// for the newest open call that started a flow with it (route: with the
// table that holds the open calls' mappings again, remap): that call's flow
// had been taken over, and without this its packets would find no arrival
// rule until it ends. A 5-tuple no open call has stays unrouted.
func (st *dcState) giveBack(keys []flowKey, route func(routing.Packet) routing.Decision) {
	for _, k := range keys {
		if _, routed := st.byKey[k]; routed {
			continue
		}
	newest:
		for i := len(st.starts) - 1; i >= 0; i-- {
			for _, pkt := range st.starts[i].pkts {
				if keyOf(pkt) == k {
					st.addFlow(route(pkt), pkt, &st.starts[i].c)
					break newest
				}
			}
		}
	}
}

// openCopies is how many calls equal to c (same endpoints, DCs and entry
// addresses: one UA calling one peer again before the first call ended)
// the plane holds open: the calls list of c's first datacenter this node
// runs.
func (p *Plane) openCopies(c routing.Call) int {
	for _, k := range []int{c.CallerDC, c.CalleeDC} {
		if st := p.dcs[k]; st != nil {
			n := 0
			for _, o := range st.calls {
				if o == c {
					n++
				}
			}
			return n
		}
	}
	return 0
}

// remap gives the endpoints of an ended call c (whose mappings RemoveCall
// just deleted, though a newer call sharing an endpoint may have written
// them too) the mappings of the calls still open, as if those had started
// alone and in order: every open call sharing an endpoint with c, or with
// such a call, is added again in start order, so each endpoint ends up with
// its newest call's mapping (as AddCall leaves it) and none with an older
// one's.
func remap(t *routing.Table, calls []routing.Call, c routing.Call) {
	ends := func(x routing.Call) (routing.Endpoint, routing.Endpoint) {
		return routing.Endpoint{IP: x.CallerIP, Port: x.CallerSendPort}, routing.Endpoint{IP: x.CalleeIP, Port: x.CalleeSendPort}
	}
	a, b := ends(c)
	eps := map[routing.Endpoint]bool{a: true, b: true}
	in := make([]bool, len(calls))
	for grew := true; grew; {
		grew = false
		for i, o := range calls {
			if in[i] {
				continue
			}
			if a, b := ends(o); eps[a] || eps[b] {
				in[i], grew = true, true
				eps[a], eps[b] = true, true
			}
		}
	}
	for i, o := range calls {
		if in[i] {
			_ = t.AddCall(o) // valid: it was added when the call started
		}
	}
}

// resolve returns want with one rule per identity (ovs.Resolve keeps the
// last one; flows compile in serial order, and since byKey keeps one flow
// per 5-tuple no two flows' rules share an identity: a flow that took a
// 5-tuple over may carry an older serial, addFlow) and reports each
// conflict not reported by the previous sync once, naming both rules; the
// count is the metric ims_orch_dataplane_rule_conflicts_total. With the
// takeover above no two flows share a 5-tuple, so a conflict is a bug of
// the rule compiler, and it costs the dropped rule only.
func (p *Plane) resolve(k int, st *dcState, want []ovs.Flow) []ovs.Flow {
	want, cs := ovs.Resolve(want)
	if len(cs) == 0 && len(st.conflicts) == 0 {
		return want
	}
	now := make(map[string]bool, len(cs))
	for _, c := range cs {
		id := c.String()
		now[id] = true
		if st.conflicts[id] {
			continue
		}
		st.conflictCount++
		if p.cfg.OnError != nil {
			p.cfg.OnError(fmt.Errorf("dc%d: rule conflict, the later rule installed: %s", k, id))
		}
	}
	st.conflicts = now
	return want
}

// FlowTakeovers is, per datacenter, how many flows took their 5-tuple over
// from an older flow since the plane started, and how many rule conflicts
// (two compiled rules with one identity) were resolved.
type FlowTakeovers struct {
	Takeovers, Conflicts int
}

// FlowTakeoversByDC returns FlowTakeovers of every datacenter this plane
// runs, by its name (as SkippedLearnedByDC): the counters
// ims_orch_dataplane_flow_takeovers_total and
// ims_orch_dataplane_rule_conflicts_total.
func (p *Plane) FlowTakeoversByDC() map[string]FlowTakeovers {
	return perDC(p, func(st *dcState) (FlowTakeovers, bool) {
		return FlowTakeovers{Takeovers: st.takeovers, Conflicts: st.conflictCount}, true
	})
}

// changed bumps the change generation of each touched DC (under mu) and
// returns it per DC, for commit.
func (p *Plane) changed(touched map[int]bool) map[int]uint64 {
	gens := make(map[int]uint64, len(touched))
	for k := range touched {
		st := p.dcs[k]
		st.gen++
		gens[k] = st.gen
	}
	return gens
}
