// Package dcroute glues one datacenter's local controller to its routing
// table: it implements local.PathStore and local.InstanceSink over a
// routing.Table, translating DC names to indices, VNF names to stage numbers
// and instance IDs to stable routing indices (N..255, paper 5.3), and it
// serialises access to the table, which is not safe for concurrent use.
package dcroute

import (
	"fmt"
	"sort"
	"sync"

	"github.com/ims-orch/ims-orch/controller/local"
	"github.com/ims-orch/ims-orch/controller/protocol"
	"github.com/ims-orch/ims-orch/controller/routing"
	"github.com/ims-orch/ims-orch/placement"
)

// Router is one DC's routing state.
type Router struct {
	mu     sync.Mutex
	t      *routing.Table
	dcs    map[string]int // DC name → index
	stages map[string]int // DP VNF name → stage (1-based)
	n      int
	// per stage: instance ID ↔ routing index
	index [][]string         // [stage-1][idx] = id ("" = free)
	byID  []map[string]uint8 // [stage-1][id] = idx of the routable ones
	// parked: per stage, the instances that left routing (buffered,
	// draining, gone) with the index they keep and the load of the flows
	// still pinned to them; seq orders them for reclaiming
	parked []map[string]parkedInst
	// gone: per stage, routable instances the cloud reported gone (Forget)
	// before they left routing: their index is freed, not parked, when
	// they leave
	gone []map[string]bool
	seq  uint64
	errs func(error)
	// committed is the cluster's committed routing state (resync.go).
	committed CommittedFunc
	onResync  func(from, to uint64)
}

var (
	_ local.PathStore    = (*Router)(nil)
	_ local.InstanceSink = (*Router)(nil)
	// the sinks that wrap a router pass Forget on with local.ForgetIn, a
	// silent type assertion: without Forget, indices would never be freed
	_ local.InstanceForgetter = (*Router)(nil)
)

// New returns the router of datacenter dc (a name in dcs, in index order) for
// the DP chain stages (VNF names in chain order). onErr receives errors of
// the PathStore and InstanceSink calls, which have no error return (nil:
// ignored).
func New(dc string, dcs, stages []string, interval uint64, onErr func(error)) (*Router, error) {
	r := &Router{dcs: map[string]int{}, stages: map[string]int{}, n: len(dcs), errs: onErr}
	for i, d := range dcs {
		if _, dup := r.dcs[d]; dup {
			return nil, fmt.Errorf("datacenters[%d]: duplicate name %q", i, d)
		}
		r.dcs[d] = i
	}
	self, ok := r.dcs[dc]
	if !ok {
		return nil, fmt.Errorf("dc: %q is not among the datacenters", dc)
	}
	for i, s := range stages {
		r.stages[s] = i + 1
	}
	t, err := routing.NewTable(routing.Config{DC: self, N: len(dcs), Stages: len(stages), Interval: interval})
	if err != nil {
		return nil, err
	}
	r.t = t
	r.index = make([][]string, len(stages))
	r.byID = make([]map[string]uint8, len(stages))
	r.parked = make([]map[string]parkedInst, len(stages))
	r.gone = make([]map[string]bool, len(stages))
	for i := range r.index {
		r.index[i] = make([]string, 256)
		r.byID[i] = map[string]uint8{}
		r.parked[i] = map[string]parkedInst{}
		r.gone[i] = map[string]bool{}
	}
	return r, nil
}

func (r *Router) fail(err error) {
	if err != nil && r.errs != nil {
		r.errs(err)
	}
}

// Paths converts protocol path entries to placement paths.
func (r *Router) Paths(entries []protocol.PathEntry) (map[placement.Pair]placement.Path, error) {
	out := make(map[placement.Pair]placement.Path, len(entries))
	for i, e := range entries {
		en, ok1 := r.dcs[e.Entry]
		ex, ok2 := r.dcs[e.Exit]
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("paths[%d]: unknown datacenter in %s→%s", i, e.Entry, e.Exit)
		}
		p := make(placement.Path, len(e.Hops))
		for j, h := range e.Hops {
			d, ok := r.dcs[h]
			if !ok {
				return nil, fmt.Errorf("paths[%d].hops[%d]: unknown datacenter %q", i, j, h)
			}
			p[j] = d
		}
		out[placement.Pair{Entry: en, Exit: ex}] = p
	}
	return out, nil
}

// StoreNext stores the next interval's path set (step 4).
func (r *Router) StoreNext(interval uint64, paths []protocol.PathEntry) {
	ps, err := r.Paths(paths)
	if err != nil {
		r.fail(err)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.catchUpStoreLocked(interval)
	r.fail(r.t.StoreNext(interval, ps))
}

// Enter switches to the stored path set (step 5).
func (r *Router) Enter(interval uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.catchUpEnterLocked(interval)
	r.fail(r.t.Enter(interval))
}

// parkedInst is an instance that left routing: its index stays reserved
// and its load is kept, so flows still pinned to it keep their instance and
// it comes back with its load when it is reused from the buffer.
type parkedInst struct {
	idx  uint8
	load float64
	seq  uint64
}

// SetInstances replaces the routable instances of a DP stage, keeping each
// instance's routing index and current load. CP VNFs are ignored. An
// instance that leaves (to the buffer) keeps its index and load (the flows
// pinned to it go on; Release takes an ended one's load back), and gets
// both back when it returns: a reused buffered instance re-enters with the
// load it still carries, not at 0 (packing would fill it on top of its
// pinned calls). A parked index is given to a new instance only when no
// index is free and the parked instance carries no load (the longest
// parked first); an instance reported gone (Forget) frees its index.
func (r *Router) SetInstances(vnf string, insts []local.RoutableInstance) {
	st, ok := r.stages[vnf]
	if !ok {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	loads := map[uint8]float64{}
	for _, il := range r.t.Instances(st) {
		loads[il.Index] = il.Load
	}
	keep := map[string]bool{}
	for _, in := range insts {
		keep[in.ID] = true
	}
	// park the instances that left (in ID order: the reclaim order is
	// deterministic)
	var left []string
	for id := range r.byID[st-1] {
		if !keep[id] {
			left = append(left, id)
		}
	}
	sort.Strings(left)
	for _, id := range left {
		idx := r.byID[st-1][id]
		delete(r.byID[st-1], id)
		if r.gone[st-1][id] {
			delete(r.gone[st-1], id)
			r.index[st-1][idx] = ""
			continue
		}
		r.seq++
		r.parked[st-1][id] = parkedInst{idx: idx, load: loads[idx], seq: r.seq}
	}
	out := make([]routing.InstanceLoad, 0, len(insts))
	for _, in := range insts {
		idx, ok := r.byID[st-1][in.ID]
		load := loads[idx]
		switch pk, back := r.parked[st-1][in.ID]; {
		case ok:
		case back:
			idx, load = pk.idx, pk.load
			delete(r.parked[st-1], in.ID)
			r.byID[st-1][in.ID] = idx
		default:
			var err error
			idx, err = r.alloc(st, in.ID)
			if err != nil {
				r.fail(fmt.Errorf("stage %s: instance %s not routed: %w", vnf, in.ID, err))
				continue
			}
			load = 0
		}
		out = append(out, routing.InstanceLoad{Index: idx, Load: load, Overloaded: in.Overloaded})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Index < out[j].Index })
	r.fail(r.t.SetInstances(st, out))
}

// alloc gives id a free index of stage st, else the index of the longest
// parked instance that carries no load (it is forgotten). It never takes
// the index of a parked instance with load: its pinned flows would move to
// id silently (rules compile to the index's instance).
func (r *Router) alloc(st int, id string) (uint8, error) {
	take := func(i int) (uint8, error) {
		r.index[st-1][i] = id
		r.byID[st-1][id] = uint8(i)
		return uint8(i), nil
	}
	for i := r.n; i < 256; i++ {
		if r.index[st-1][i] == "" {
			return take(i)
		}
	}
	oldest, found, loaded := "", false, 0
	for pid, pk := range r.parked[st-1] {
		if pk.load > 0 {
			loaded++
			continue
		}
		if !found || pk.seq < r.parked[st-1][oldest].seq {
			oldest, found = pid, true
		}
	}
	if !found {
		return 0, fmt.Errorf("no free routing index: %d of %d taken, %d by parked instances whose pinned flows still run",
			256-r.n, 256-r.n, loaded)
	}
	i := int(r.parked[st-1][oldest].idx)
	delete(r.parked[st-1], oldest)
	return take(i)
}

// Forget tells the router that instance id of vnf is gone (destroyed, or
// vanished from the cloud): its index is freed, at once if it is parked,
// else when it leaves routing. Without it a destroyed instance would keep
// its index for ever. Unknown VNFs and IDs are ignored.
func (r *Router) Forget(vnf, id string) {
	st, ok := r.stages[vnf]
	if !ok {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if pk, ok := r.parked[st-1][id]; ok {
		delete(r.parked[st-1], id)
		if r.index[st-1][pk.idx] == id {
			r.index[st-1][pk.idx] = ""
		}
		return
	}
	if _, ok := r.byID[st-1][id]; ok {
		r.gone[st-1][id] = true
	}
}

// Routed says whether instance id of vnf is routable here (its last
// SetInstances listed it), also after a Forget: it leaves routing with the
// next SetInstances. Unknown VNFs and IDs are not routed.
func (r *Router) Routed(vnf, id string) bool {
	st, ok := r.stages[vnf]
	if !ok {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok = r.byID[st-1][id]
	return ok
}

// SetLoads sets the load of the instances of stage (1-based) named by
// index in loads, routable or parked: the flows a data plane counted
// pinned to each (their unit is Packet.Load's: flows). Other instances keep
// theirs.
func (r *Router) SetLoads(stage int, loads map[uint8]float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if stage < 1 || stage > len(r.index) {
		return
	}
	if err := r.t.SetLoads(stage, loads); err != nil {
		r.fail(err)
		return
	}
	for id, pk := range r.parked[stage-1] {
		if l, ok := loads[pk.idx]; ok && r.index[stage-1][pk.idx] == id {
			pk.load = l
			r.parked[stage-1][id] = pk
		}
	}
}

// InstanceID returns the instance behind a routing index of a stage.
func (r *Router) InstanceID(stage int, idx uint8) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if stage < 1 || stage > len(r.index) {
		return ""
	}
	return r.index[stage-1][idx]
}

// SetPackLimit sets a DP stage's packing limit in flows
// (routing.Table.SetPackLimit; 0: least-loaded routing).
func (r *Router) SetPackLimit(vnf string, limit float64) error {
	return r.setLimit(vnf, "packLimit", limit, r.t.SetPackLimit)
}

// SetSpreadLimit sets a DP stage's spread limit in flows
// (routing.Table.SetSpreadLimit; 0: new flows avoid overloaded instances
// while a normal one exists).
func (r *Router) SetSpreadLimit(vnf string, limit float64) error {
	return r.setLimit(vnf, "spreadLimit", limit, r.t.SetSpreadLimit)
}

// SpreadLimit returns a DP stage's spread limit in flows (0: off, or not a
// DP stage).
func (r *Router) SpreadLimit(vnf string) float64 {
	return r.limit(vnf, r.t.SpreadLimit)
}

// PackLimit returns a DP stage's packing limit in flows (0: least-loaded
// routing, or not a DP stage).
func (r *Router) PackLimit(vnf string) float64 {
	return r.limit(vnf, r.t.PackLimit)
}

// setLimit sets a DP stage's per-stage limit through set (a Table setter),
// under the router's lock; field names the limit in errors.
func (r *Router) setLimit(vnf, field string, limit float64, set func(stage int, limit float64) error) error {
	st, ok := r.stages[vnf]
	if !ok {
		return fmt.Errorf("%s: %q is not a DP stage", field, vnf)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return set(st, limit)
}

// limit reads a DP stage's per-stage limit through get (a Table getter),
// under the router's lock; 0 for a VNF that is not a DP stage.
func (r *Router) limit(vnf string, get func(stage int) float64) float64 {
	st, ok := r.stages[vnf]
	if !ok {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return get(st)
}

// Route routes one packet (the first of a new flow, or a tunnelled one).
func (r *Router) Route(p routing.Packet) routing.Decision {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.t.Route(p)
}

// Release returns a finished flow's load, also from a parked instance
// (buffered while the flow ran).
func (r *Router) Release(d *routing.Decision) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.t.Release(d)
	if d.Verdict != routing.Forward || d.DC != r.t.DC() {
		return
	}
	for s := d.First; s >= 1 && s <= d.Last && s <= len(r.parked); s++ {
		id := r.index[s-1][d.Instances[s-1]]
		if pk, ok := r.parked[s-1][id]; ok {
			pk.load = max(0, pk.load-d.Load)
			r.parked[s-1][id] = pk
		}
	}
}

// AddCall stores a call's Table 1 mappings.
func (r *Router) AddCall(c routing.Call) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.t.AddCall(c)
}

// RemoveCall drops a call's mappings.
func (r *Router) RemoveCall(c routing.Call) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.t.RemoveCall(c)
}

// Counters returns the routing counters.
func (r *Router) Counters() routing.Counters {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.t.Counters()
}

// Interval is the table's current interval.
func (r *Router) Interval() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.t.Interval()
}

// Path returns the path of a pair in an interval's set.
func (r *Router) Path(interval uint64, pr placement.Pair) (placement.Path, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.t.Path(interval, pr)
}
