package dataplane

import (
	"context"
	"fmt"
	"slices"

	"github.com/ims-orch/ims-orch/controller/routing"
	"github.com/ims-orch/ims-orch/drivers/ovs"
)

// InstanceRef names a DP instance of a datacenter: its stage (1-based) and
// routing index.
type InstanceRef struct {
	Stage int
	Index uint8
}

// InstanceFlows is a live DP instance of a datacenter (working or buffered)
// and the flows its switch pins to it.
type InstanceFlows struct {
	InstanceRef
	// ID is the driver's instance ID (attached plane; "" standalone).
	ID    string
	Flows int
}

// CountFlows counts, per live instance of one datacenter (n datacenters, m
// stages), the flows whose per-flow rule on the DC's switch sends them
// through it (pure):
//
//   - flows that entered the chain here (the plane's per-flow rules, which
//     Apply installs exactly as compiled): the instances Route chose for
//     the stages this DC hosts (First..Last);
//   - flows the switch learned (a tunnel arrival's tag rule learned a
//     per-flow rule; it goes when the flow has been idle for LearnIdle):
//     the rule's output port names the instance of the first stage it
//     serves here, and the routing bytes it writes name the instances of
//     the following stages here, up to the byte that names the next
//     datacenter (a DC index < n; instance indices are ≥ n).
//
// A rule towards an instance that is not live counts nowhere.
func CountFlows(flows []Flow, learned []ovs.LearnedFlow, live [routing.MaxStages]map[uint8]Ports, n, m int) map[InstanceRef]int {
	out := map[InstanceRef]int{}
	for s := 1; s <= m && s <= routing.MaxStages; s++ {
		for idx := range live[s-1] {
			out[InstanceRef{s, idx}] = 0
		}
	}
	add := func(s int, idx uint8) {
		if _, ok := live[s-1][idx]; ok {
			out[InstanceRef{s, idx}]++
		}
	}
	for _, f := range flows {
		d := &f.Decision
		if d.Verdict != routing.Forward {
			continue
		}
		for s := d.First; s >= 1 && s <= d.Last && s <= m; s++ {
			add(s, d.Instances[s-1])
		}
	}
	byIn := map[int]InstanceRef{}
	for s := 1; s <= m && s <= routing.MaxStages; s++ {
		for idx, p := range live[s-1] {
			byIn[p.In] = InstanceRef{s, idx}
		}
	}
	for _, l := range learned {
		first, ok := byIn[l.OutPort]
		if !ok {
			continue
		}
		out[first]++
		for s := first.Stage + 1; s <= m; s++ {
			idx := routing.StageByte(routing.IPv4(l.DstIP), s)
			if int(idx) < n {
				break // the next datacenter: the chain leaves here
			}
			add(s, idx)
		}
	}
	return out
}

// SkippedLearned returns how many learned rules FlowCounts' last read of
// datacenter dc's switch could not read: rules on the switch now, not
// rule-reads (a rule that stays unreadable counts 1 however often it is
// read); each counts nowhere in that read's counts, the others do.
func (p *Plane) SkippedLearned(dc int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	st, err := p.dc(dc)
	if err != nil {
		return 0
	}
	return st.lastSkipped
}

// SkippedLearnedByDC returns SkippedLearned of every datacenter this plane
// runs, by its name (Config.Names; "dc<k>" for a plane of Tables): the
// metric ims_orch_dataplane_learned_rules_skipped.
func (p *Plane) SkippedLearnedByDC() map[string]int {
	return perDC(p, func(st *dcState) (int, bool) { return st.lastSkipped, true })
}

// perDC collects get of every datacenter this plane runs, by its label,
// under the plane's lock; get's false leaves a datacenter out.
func perDC[T any](p *Plane, get func(*dcState) (T, bool)) map[string]T {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]T{}
	for k, st := range p.dcs {
		if st == nil {
			continue
		}
		p.noteApplied(k, st) // the applies' outcomes (counts lost) not noted yet
		if v, ok := get(st); ok {
			out[st.label(k)] = v
		}
	}
	return out
}

// label is datacenter k's name in the metrics: Config.Names', "dc<k>" for
// a plane of Tables.
func (st *dcState) label(k int) string {
	if st.name == "" {
		return fmt.Sprintf("dc%d", k)
	}
	return st.name
}

// MonitorRestarts is how often a datacenter's learned-rule monitor stopped
// and was restarted since the plane started, and how many of those stops
// were the switch's PAUSED (ovs.LearnedMonitor.Restarts).
type MonitorRestarts struct {
	Restarts, Paused int
}

// MonitorRestartsByDC returns MonitorRestarts of every datacenter this
// plane runs, by its name (as SkippedLearnedByDC): the counter
// ims_orch_dataplane_learned_monitor_restarts_total.
func (p *Plane) MonitorRestartsByDC() map[string]MonitorRestarts {
	return perDC(p, func(st *dcState) (MonitorRestarts, bool) {
		if st.mon == nil {
			return MonitorRestarts{}, false
		}
		r, paused := st.mon.Restarts()
		return MonitorRestarts{Restarts: r, Paused: paused}, true
	})
}

// FlowCounts returns every live DP instance of datacenter dc (working or
// buffered) with the flows pinned to it (CountFlows), sorted by stage and
// index: the plane's own flows and the rules the switch learned, as the
// DC's ovs.LearnedMonitor follows them (no process; an error while it does
// not follow the switch, e.g. ovs-vswitchd restarting; skipped while the
// switch cannot hold any: no tag rule was installed since a read found
// none). It also sets each
// instance's routing load to its count, so new flows are placed (least
// loaded, or packed: routing.Table.SetPackLimit) by the flows the switch
// carries now, those that arrived through the tunnel included, and a
// buffered instance keeps its load for its reuse (dcroute.Router.SetLoads).
func (p *Plane) FlowCounts(ctx context.Context, dc int) ([]InstanceFlows, error) {
	p.mu.Lock()
	st, err := p.dc(dc)
	var learn bool
	var gen uint64
	var mon learnedMonitor
	if err == nil {
		learn, gen, mon = st.learning, st.tagGen, st.mon
	}
	p.mu.Unlock()
	if err != nil {
		return nil, err
	}
	var rules ovs.LearnedRules
	if learn { // a switch that never had a tag rule since it held no learned rule has none
		if mon != nil {
			rules, err = mon.Learned() // unknown while the monitor does not follow the switch
		} else {
			rules, err = st.sw.Learned(ctx)
		}
		if err != nil {
			return nil, err
		}
	}
	learned := rules.Flows
	p.mu.Lock()
	defer p.mu.Unlock()
	p.noteApplied(dc, st)
	if learn && len(learned) == 0 && len(rules.Skipped) == 0 && st.tagGen == gen && !st.mayHaveTags() {
		st.learning = false
	}
	if n := len(rules.Skipped); n > 0 && n != st.lastSkipped && p.cfg.OnError != nil {
		// a rule that stays unreadable is reported once, not every sample
		p.cfg.OnError(fmt.Errorf("dc%d: %d learned rules unreadable, counted nowhere (first: %w)", dc, n, rules.Skipped[0]))
	}
	st.lastSkipped = len(rules.Skipped)
	var out []InstanceFlows
	var loads [routing.MaxStages]map[uint8]float64
	p.withLive(st, func(t *routing.Table, live [routing.MaxStages]map[uint8]Ports, id func(int, uint8) string) {
		for r, n := range CountFlows(flowList(st), learned, live, t.N(), t.Stages()) {
			out = append(out, InstanceFlows{InstanceRef: r, ID: id(r.Stage, r.Index), Flows: n})
			if loads[r.Stage-1] == nil {
				loads[r.Stage-1] = map[uint8]float64{}
			}
			loads[r.Stage-1][r.Index] = float64(n)
		}
	})
	for s, l := range loads {
		if l == nil {
			continue
		}
		if st.router != nil {
			st.router.SetLoads(s+1, l) // parked instances' too
		} else {
			_ = st.t.SetLoads(s+1, l) // counts: valid loads
		}
	}
	slices.SortFunc(out, func(a, b InstanceFlows) int {
		if a.Stage != b.Stage {
			return a.Stage - b.Stage
		}
		return int(a.Index) - int(b.Index)
	})
	return out, nil
}
