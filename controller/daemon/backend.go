package daemon

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/hashicorp/raft"

	"github.com/ims-orch/ims-orch/api"
	"github.com/ims-orch/ims-orch/controller/fsm"
	"github.com/ims-orch/ims-orch/controller/global"
	"github.com/ims-orch/ims-orch/controller/metrics"
	"github.com/ims-orch/ims-orch/controller/system"
	"github.com/ims-orch/ims-orch/predictor"
)

// Backend implements api.Backend over a node.
//
// What is replicated: the topology (datacenter names, delays, VNF
// capacities, chain) and the delay bound of the policy in force live in the
// raft FSM, so every node reads them alike and writes to them are raft
// commits on the leader. Datacenter labels (group, region, AZ) and saved
// policies other than "default" are kept by the node that took the write
// (fsm.State has no place for them). Settings the running controllers were
// built with (datacenter set, chain, thresholds, interval, τ, predictor,
// strategy, limits) cannot change while the daemon runs: such a write is
// refused with a ValidationError that says to edit the config and restart.
type Backend struct {
	d *Daemon

	mu       sync.Mutex
	dcs      []api.Datacenter
	types    []api.VNFType
	chains   []api.Chain
	policies map[string]api.Policy
	ops      map[string]api.Operation // manual operations by id
	opSeq    int
}

var _ api.Backend = (*Backend)(nil)

func newBackend(d *Daemon) *Backend {
	c := d.cfg
	b := &Backend{d: d, dcs: slices.Clone(c.Topology.Datacenters), policies: map[string]api.Policy{PolicyName: c.Policy.API()},
		ops: map[string]api.Operation{}}
	t := c.Topology
	vt := func(v VNFConfig, plane string) api.VNFType {
		th := c.thresholds(v)
		return api.VNFType{Name: v.Name, Plane: plane, Image: v.Image, Flavor: v.Flavor, Capacity: v.Capacity,
			Thresholds: api.Thresholds{CPU: th.CPU, Mem: th.Mem, PktRate: th.PktRate}}
	}
	b.types = []api.VNFType{vt(t.PCSCF, api.PlaneCP), vt(t.SCSCF, api.PlaneCP)}
	stages := []string{}
	for _, v := range t.Chain {
		b.types = append(b.types, vt(v, api.PlaneDP))
		stages = append(stages, v.Name)
	}
	b.chains = []api.Chain{{Name: "dp", Stages: stages}}
	return b
}

// ---- leadership ----

func (b *Backend) leader() (id string, isSelf bool) {
	n := b.d.node
	if n == nil {
		return b.d.cfg.Node.ID, true
	}
	_, lid := n.Raft.LeaderWithID()
	return string(lid), n.Raft.State() == raft.Leader
}

func (b *Backend) peerAPI(id string) string {
	if id == b.d.cfg.Node.ID {
		return b.d.cfg.API.URL
	}
	for _, p := range b.d.cfg.Node.Peers {
		if p.ID == id {
			return p.API
		}
	}
	return ""
}

// writable returns nil on the leader, *api.NotLeaderError on a follower
// that knows the leader, api.ErrNoLeader otherwise.
func (b *Backend) writable() error {
	id, self := b.leader()
	if self {
		return nil
	}
	if id == "" {
		return api.ErrNoLeader
	}
	return &api.NotLeaderError{LeaderID: id, LeaderAddr: b.peerAPI(id)}
}

// commit applies a command through the store (raft on a cluster).
func (b *Backend) commit(c fsm.Command) error {
	if err := b.d.store.Apply(c); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			if w := b.writable(); w != nil {
				return w
			}
		}
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

func (b *Backend) topology() (*fsm.Topology, fsm.Policy) {
	st := b.d.store.State()
	if st.Topology == nil {
		t := b.d.cfg.fsmTopology()
		return &t, fsm.Policy{DelayBoundMs: b.d.cfg.Policy.DelayBoundMs}
	}
	return st.Topology, st.Policy
}

func restart(v *api.ValidationError, field, what string) {
	v.Add(field, "%s cannot change while the daemon runs: edit the config file and restart serve", what)
}

// ---- configuration ----

// Datacenters implements api.Backend.
func (b *Backend) Datacenters(context.Context) ([]api.Datacenter, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.dcs), nil
}

// SetDatacenters implements api.Backend: labels may change, the set of
// names may not.
func (b *Backend) SetDatacenters(_ context.Context, dcs []api.Datacenter) ([]api.Datacenter, error) {
	if err := b.writable(); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	v := &api.ValidationError{}
	if len(dcs) != len(b.dcs) {
		restart(v, "datacenters", fmt.Sprintf("the number of datacenters (%d → %d)", len(b.dcs), len(dcs)))
	} else {
		for i := range dcs {
			if dcs[i].Name != b.dcs[i].Name {
				restart(v, fmt.Sprintf("datacenters[%d].name", i), fmt.Sprintf("the datacenter %q", b.dcs[i].Name))
			}
		}
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	prev := b.dcs
	b.dcs = slices.Clone(dcs)
	return prev, nil
}

// Delays implements api.Backend (the replicated static matrix).
func (b *Backend) Delays(context.Context) (api.DelayMatrix, error) {
	t, _ := b.topology()
	return delayMatrix(t), nil
}

func delayMatrix(t *fsm.Topology) api.DelayMatrix {
	m := api.DelayMatrix{Datacenters: slices.Clone(t.DCs)}
	for _, row := range t.DelayMs {
		m.DelaysMs = append(m.DelaysMs, slices.Clone(row))
	}
	return m
}

// SetDelays implements api.Backend: the matrix is committed with the
// topology and the next round plans with it.
func (b *Backend) SetDelays(_ context.Context, m api.DelayMatrix) (api.DelayMatrix, error) {
	if err := b.writable(); err != nil {
		return api.DelayMatrix{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	t, _ := b.topology()
	v := &api.ValidationError{}
	idx := make([]int, len(m.Datacenters))
	for i, dc := range m.Datacenters {
		if idx[i] = t.Index(dc); idx[i] < 0 {
			v.Add(fmt.Sprintf("datacenters[%d]", i), "%q is not a known datacenter", dc)
		}
	}
	if len(m.Datacenters) != len(t.DCs) {
		v.Add("datacenters", "lists %d datacenters, the topology has %d: give the whole matrix", len(m.Datacenters), len(t.DCs))
	}
	if err := v.Err(); err != nil {
		return api.DelayMatrix{}, err
	}
	prev := delayMatrix(t)
	nt := *t
	nt.DelayMs = make([][]float64, len(t.DCs))
	for i := range nt.DelayMs {
		nt.DelayMs[i] = make([]float64, len(t.DCs))
	}
	for i := range m.Datacenters {
		for j := range m.Datacenters {
			nt.DelayMs[idx[i]][idx[j]] = m.DelaysMs[i][j]
		}
	}
	if err := b.commit(fsm.SetTopology{Topology: nt}); err != nil {
		return api.DelayMatrix{}, err
	}
	return prev, nil
}

// VNFTypes implements api.Backend (capacities from the replicated topology).
func (b *Backend) VNFTypes(context.Context) ([]api.VNFType, error) {
	t, _ := b.topology()
	b.mu.Lock()
	defer b.mu.Unlock()
	out := slices.Clone(b.types)
	caps := vnfCaps(t)
	for i := range out {
		if c, ok := caps[out[i].Name]; ok {
			out[i].Capacity = c
		}
	}
	return out, nil
}

func vnfCaps(t *fsm.Topology) map[string]float64 {
	caps := map[string]float64{t.PCSCF.Name: t.PCSCF.Capacity, t.SCSCF.Name: t.SCSCF.Capacity}
	for _, s := range t.Stages {
		caps[s.Name] = s.Capacity
	}
	return caps
}

// SetVNFTypes implements api.Backend: capacities may change (committed with
// the topology, planned with from the next round); names, planes,
// thresholds, images and flavors may not.
func (b *Backend) SetVNFTypes(ctx context.Context, types []api.VNFType) ([]api.VNFType, error) {
	if err := b.writable(); err != nil {
		return nil, err
	}
	prev, _ := b.VNFTypes(ctx)
	b.mu.Lock()
	defer b.mu.Unlock()
	v := &api.ValidationError{}
	if len(types) != len(b.types) {
		restart(v, "vnfTypes", "the set of VNF types")
	}
	for i := range types {
		if i >= len(b.types) {
			break
		}
		cur, nw := b.types[i], types[i]
		f := fmt.Sprintf("vnfTypes[%d]", i)
		switch {
		case nw.Name != cur.Name:
			restart(v, f+".name", fmt.Sprintf("the VNF type %q", cur.Name))
		case nw.Plane != cur.Plane:
			restart(v, f+".plane", "a VNF's plane")
		case nw.Thresholds != cur.Thresholds:
			restart(v, f+".thresholds", "thresholds")
		case nw.Image != cur.Image || nw.Flavor != cur.Flavor:
			restart(v, f+".image", "image and flavor")
		}
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	t, _ := b.topology()
	nt := *t
	caps := map[string]float64{}
	for _, ty := range types {
		caps[ty.Name] = ty.Capacity
	}
	nt.PCSCF.Capacity, nt.SCSCF.Capacity = caps[nt.PCSCF.Name], caps[nt.SCSCF.Name]
	nt.Stages = slices.Clone(t.Stages)
	for i := range nt.Stages {
		nt.Stages[i].Capacity = caps[nt.Stages[i].Name]
	}
	if err := b.commit(fsm.SetTopology{Topology: nt}); err != nil {
		return nil, err
	}
	return prev, nil
}

// Chains implements api.Backend: the data-plane chain, named "dp".
func (b *Backend) Chains(context.Context) ([]api.Chain, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]api.Chain, len(b.chains))
	for i, c := range b.chains {
		out[i] = api.Chain{Name: c.Name, Stages: slices.Clone(c.Stages)}
	}
	return out, nil
}

// SetChains implements api.Backend: the chain is fixed while running, so
// only an unchanged list is accepted.
func (b *Backend) SetChains(ctx context.Context, chains []api.Chain) ([]api.Chain, error) {
	if err := b.writable(); err != nil {
		return nil, err
	}
	prev, _ := b.Chains(ctx)
	if !slices.EqualFunc(prev, chains, func(a, c api.Chain) bool { return a.Name == c.Name && slices.Equal(a.Stages, c.Stages) }) {
		v := &api.ValidationError{}
		restart(v, "chains", "the service chain")
		return nil, v
	}
	return prev, nil
}

// ---- policies ----

func (b *Backend) policyLocked(name string) (api.Policy, bool) {
	p, ok := b.policies[name]
	if !ok {
		return api.Policy{}, false
	}
	p.Limits = slices.Clone(p.Limits)
	if name == PolicyName {
		_, fp := b.topology()
		if fp.DelayBoundMs > 0 {
			p.DelayBoundMs = fp.DelayBoundMs
		}
	}
	return p, true
}

// Policies implements api.Backend.
func (b *Backend) Policies(context.Context) ([]api.Policy, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := []api.Policy{}
	for _, n := range slices.Sorted(maps.Keys(b.policies)) {
		p, _ := b.policyLocked(n)
		out = append(out, p)
	}
	return out, nil
}

// Policy implements api.Backend.
func (b *Backend) Policy(_ context.Context, name string) (api.Policy, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	p, ok := b.policyLocked(name)
	if !ok {
		return api.Policy{}, fmt.Errorf("policy %q: %w", name, api.ErrNotFound)
	}
	return p, nil
}

// checkPolicy checks references and, for the policy in force, that only
// live-changeable fields change.
func (b *Backend) checkPolicy(p api.Policy) error {
	v := &api.ValidationError{}
	if _, err := predictor.ParseSpec(p.Predictor); err != nil {
		v.Add("predictor", "%v", err)
	}
	if _, err := system.ParseStrategy(p.Strategy); err != nil {
		v.Add("strategy", "%v", err)
	}
	if err := b.d.cfg.checkLimits(p); err != nil {
		var ve *api.ValidationError
		if errors.As(err, &ve) {
			v.Errors = append(v.Errors, ve.Errors...)
		}
	}
	if p.Name == PolicyName {
		cur := b.d.cfg.Policy.API()
		if p.IntervalSeconds != cur.IntervalSeconds {
			restart(v, "intervalSeconds", "the interval of the policy in force")
		}
		if p.Tau != cur.Tau {
			restart(v, "tau", "τ of the policy in force")
		}
		if p.Predictor != cur.Predictor {
			restart(v, "predictor", "the predictor of the policy in force")
		}
		if p.Strategy != cur.Strategy {
			restart(v, "strategy", "the strategy of the policy in force")
		}
		if !slices.Equal(p.Limits, cur.Limits) {
			restart(v, "limits", "the limits of the policy in force")
		}
	}
	return v.Err()
}

// PutPolicy implements api.Backend. The policy named "default" is the one
// in force: its delay bound is committed (raft) and used from the next
// round. Other names are saved for later use (and dry runs).
func (b *Backend) PutPolicy(_ context.Context, p api.Policy) (*api.Policy, error) {
	if err := b.writable(); err != nil {
		return nil, err
	}
	if err := b.checkPolicy(p); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var prev *api.Policy
	if old, ok := b.policyLocked(p.Name); ok {
		prev = &old
	}
	if p.Name == PolicyName && (prev == nil || prev.DelayBoundMs != p.DelayBoundMs) {
		_, fp := b.topology()
		fp.DelayBoundMs = p.DelayBoundMs
		if err := b.commit(fsm.SetPolicy{Policy: fp}); err != nil {
			return nil, err
		}
	}
	p.Limits = slices.Clone(p.Limits)
	b.policies[p.Name] = p
	if prev == nil || !policyEqual(*prev, p) {
		b.d.log.Info("policy written", "policy", p.Name, "delayBoundMs", p.DelayBoundMs, "inForce", p.Name == PolicyName)
	}
	return prev, nil
}

func policyEqual(a, c api.Policy) bool {
	return a.Name == c.Name && a.IntervalSeconds == c.IntervalSeconds && a.Tau == c.Tau && a.DelayBoundMs == c.DelayBoundMs &&
		a.Predictor == c.Predictor && a.Strategy == c.Strategy && slices.Equal(a.Limits, c.Limits)
}

// DeletePolicy implements api.Backend; the policy in force cannot go.
func (b *Backend) DeletePolicy(_ context.Context, name string) error {
	if err := b.writable(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.policies[name]; !ok {
		return fmt.Errorf("policy %q: %w", name, api.ErrNotFound)
	}
	if name == PolicyName {
		return fmt.Errorf("policy %q is in force and cannot be deleted: %w", name, api.ErrConflict)
	}
	delete(b.policies, name)
	return nil
}

// DryRunPolicy implements api.Backend: the plan of the next proactive round
// under p's delay bound, from the committed state (paths, last provisioning
// reports, latest predictions), without committing anything.
func (b *Backend) DryRunPolicy(_ context.Context, p api.Policy) ([]api.Decision, error) {
	if err := b.checkPolicy(api.Policy{Name: "dry-run", IntervalSeconds: p.IntervalSeconds, Tau: p.Tau,
		DelayBoundMs: p.DelayBoundMs, Predictor: p.Predictor, Strategy: p.Strategy, Limits: p.Limits}); err != nil {
		return nil, err
	}
	st := b.d.store.State()
	return dryRun(st, b.d.store.History(), p.DelayBoundMs, b.d.clk.Now())
}

// ---- live state ----

// State implements api.Backend.
func (b *Backend) State(context.Context) (api.State, error) {
	st := b.d.store.State()
	id, _ := b.leader()
	out := api.State{Interval: int64(st.Interval), Step: "idle", Leader: id, Instances: []api.Instance{}, Paths: []api.Path{},
		Predictions: []api.Prediction{}}
	if st.Round != nil {
		out.Step = fmt.Sprintf("round %d: %s", st.Round.Round, (st.Round.Done + 1).String())
	}
	for _, dc := range slices.Sorted(maps.Keys(b.d.locals)) {
		for _, in := range b.d.locals[dc].Instances() {
			out.Instances = append(out.Instances, api.Instance{ID: in.ID, DC: dc, VNF: in.VNF, State: string(in.State),
				Reason: in.Why, Since: in.Created})
		}
	}
	t := st.Topology
	for _, p := range st.Paths {
		if len(p.Hops) < 2 {
			continue
		}
		ap := api.Path{Entry: p.Entry, Exit: p.Exit, Hops: slices.Clone(p.Hops[1 : len(p.Hops)-1]), Method: "committed"}
		if t != nil {
			for i := 0; i+1 < len(p.Hops); i++ {
				a, c := t.Index(p.Hops[i]), t.Index(p.Hops[i+1])
				if a >= 0 && c >= 0 {
					ap.DelayMs += t.DelayMs[a][c]
				}
			}
		}
		out.Paths = append(out.Paths, ap)
	}
	if h := b.d.store.History(); len(h) > 0 {
		last := h[len(h)-1]
		for _, k := range slices.Sorted(maps.Keys(last.Predicted)) {
			kind, a, c, ok := global.ParseSeriesKey(k)
			if !ok || (kind != global.KindCP && kind != global.KindDP) {
				continue
			}
			out.Predictions = append(out.Predictions, api.Prediction{Entry: a, Exit: c, Kind: kind, Predicted: last.Predicted[k]})
		}
	}
	return out, nil
}

// Decisions implements api.Backend.
func (b *Backend) Decisions(_ context.Context, since int64, limit int) ([]api.Decision, error) {
	return b.d.watch.decisions(since, limit), nil
}

// Scale implements api.Backend: an operator's ScaleVnf goes to the DC's
// local controller (local.Controller.Scale), which reuses buffered instances
// before launching and buffers the least-loaded ones to scale in.
func (b *Backend) Scale(_ context.Context, req api.ScaleRequest) (api.Operation, error) {
	if err := b.writable(); err != nil {
		return api.Operation{}, err
	}
	if err := b.checkTarget(req.DC, req.VNF); err != nil {
		return api.Operation{}, err
	}
	lc := b.d.locals[req.DC]
	if lc == nil {
		return api.Operation{}, fmt.Errorf("datacenter %q is served by another node's local controller; send the request there: %w", req.DC, api.ErrConflict)
	}
	delta := req.NumberOfSteps
	if req.Type == api.ScaleIn {
		delta = -delta
	}
	now := b.d.clk.Now()
	b.mu.Lock()
	b.opSeq++
	op := api.Operation{ID: fmt.Sprintf("op-%d", b.opSeq), Kind: api.OpScale, State: api.OpProcessing, StartedAt: now, Scale: &req}
	b.mu.Unlock()
	target, err := lc.Scale(req.VNF, delta, fmt.Sprintf("operator %s %s by %d (%s)", req.Type, req.VNF, req.NumberOfSteps, op.ID))
	if err != nil {
		op.State, op.Error = api.OpFailed, err.Error()
	} else {
		// the launches and buffer moves are under way; the instances follow
		op.State = api.OpCompleted
		done := now
		op.FinishedAt = &done
		b.d.log.Info("scaling decision", "kind", api.DecisionManual, "dc", req.DC, "vnf", req.VNF, "delta", delta,
			"reason", fmt.Sprintf("operator %s by %d → target %d", req.Type, req.NumberOfSteps, target), "operation", op.ID)
	}
	b.mu.Lock()
	b.ops[op.ID] = op
	b.mu.Unlock()
	return op, nil
}

// Drain implements api.Backend. Draining a datacenter needs the planner to
// keep paths out of it (placement has no exclusion yet), so it is refused.
func (b *Backend) Drain(_ context.Context, req api.DrainRequest) (api.Operation, error) {
	if err := b.writable(); err != nil {
		return api.Operation{}, err
	}
	if err := b.checkTarget(req.DC, ""); err != nil {
		return api.Operation{}, err
	}
	return api.Operation{}, fmt.Errorf("draining a datacenter is not available in this build: %w", api.ErrConflict)
}

// Undrain implements api.Backend.
func (b *Backend) Undrain(_ context.Context, req api.DrainRequest) (api.Operation, error) {
	if err := b.writable(); err != nil {
		return api.Operation{}, err
	}
	return api.Operation{}, fmt.Errorf("datacenter %q is not drained: %w", req.DC, api.ErrNotFound)
}

func (b *Backend) checkTarget(dc, vnf string) error {
	v := &api.ValidationError{}
	if b.d.cfg.dcIndex(dc) < 0 {
		v.Add("dc", "%q is not a known datacenter", dc)
	}
	if vnf != "" && b.d.cfg.vnf(vnf) == nil {
		v.Add("vnf", "%q is not a known VNF type", vnf)
	}
	return v.Err()
}

// Operation implements api.Backend: the manual operations this node ran.
func (b *Backend) Operation(_ context.Context, id string) (api.Operation, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if op, ok := b.ops[id]; ok {
		return op, nil
	}
	return api.Operation{}, fmt.Errorf("operation %q: %w", id, api.ErrNotFound)
}

// Ready implements api.Backend: a leader is known and the topology is
// committed.
func (b *Backend) Ready(context.Context) error {
	if b.d.node != nil {
		if id, _ := b.leader(); id == "" {
			return api.ErrNoLeader
		}
	}
	if b.d.store.State().Topology == nil {
		return errors.New("no topology committed yet")
	}
	return nil
}

// ---- metrics ----

// MetricsSnapshot implements metrics.Source.
func (b *Backend) MetricsSnapshot() metrics.Snapshot {
	var s metrics.Snapshot
	for _, dc := range slices.Sorted(maps.Keys(b.d.locals)) {
		counts := b.d.locals[dc].Counts()
		for _, vnf := range slices.Sorted(maps.Keys(counts)) {
			c := counts[vnf]
			for _, x := range []struct {
				st string
				n  int
			}{{"booting", c.Booting}, {"normal", c.Normal}, {"overload", c.Overload}, {"buffered", c.Buffered},
				{"draining", c.Draining}, {"failed", c.Failed}} {
				s.Instances = append(s.Instances, metrics.InstanceCount{DC: dc, VNF: vnf, State: x.st, N: x.n})
			}
		}
		for _, r := range routingDropReasons {
			s.Drops = append(s.Drops, metrics.Drops{DC: dc, Reason: r.String(), N: float64(b.d.routers[dc].Counters().Drops(r))})
		}
	}
	if b.d.pump != nil {
		s.Drops = append(s.Drops, metrics.Drops{DC: "sim", Reason: "no-instance-packets", N: b.d.pump.Drops()})
	}
	st := b.d.store.State()
	s.Interval = st.Interval
	if h := b.d.store.History(); len(h) >= 2 {
		prev, last := h[len(h)-2], h[len(h)-1]
		for _, k := range slices.Sorted(maps.Keys(last.Actual)) {
			kind, a, c, ok := global.ParseSeriesKey(k)
			if !ok {
				continue
			}
			s.Workloads = append(s.Workloads, metrics.Workload{Kind: kind, Entry: a, Exit: c, Predicted: prev.Predicted[k], Actual: last.Actual[k]})
		}
	}
	if b.d.engine != nil {
		es := b.d.engine.Stats()
		s.Rounds, s.Retransmissions, s.Unreachable = uint64(es.Rounds), uint64(es.Retransmissions), uint64(es.Unreachable)
	}
	s.RaftRole = "standalone"
	if n := b.d.node; n != nil {
		s.RaftRole = strings.ToLower(n.Raft.State().String())
		stats := n.Raft.Stats()
		s.CommitIndex, _ = strconv.ParseUint(stats["commit_index"], 10, 64)
		s.AppliedIndex = n.Raft.AppliedIndex()
	}
	return s
}

// sortDecisions orders decisions by round, then time, then DC and VNF.
func sortDecisions(ds []api.Decision) {
	sort.SliceStable(ds, func(i, j int) bool {
		a, c := ds[i], ds[j]
		if a.Round != c.Round {
			return a.Round < c.Round
		}
		if !a.At.Equal(c.At) {
			return a.At.Before(c.At)
		}
		if a.DC != c.DC {
			return a.DC < c.DC
		}
		return a.VNF < c.VNF
	})
}

var _ api.StateVersioner = (*Backend)(nil)

// StateVersion implements api.StateVersioner: a hash of everything State
// shows that can change (interval, round and step, history length, leader,
// every instance's ID and state), so the server encodes the state once per
// change.
func (b *Backend) StateVersion(context.Context) (uint64, error) {
	h := fnv.New64a()
	st := b.d.store.State()
	var buf [8]byte
	put := func(x uint64) {
		binary.LittleEndian.PutUint64(buf[:], x)
		h.Write(buf[:])
	}
	put(st.Interval)
	if st.Round != nil {
		put(st.Round.Round + 1)
		put(uint64(st.Round.Done))
	} else {
		put(0)
	}
	put(uint64(len(st.Paths)))
	hist := b.d.store.History()
	put(uint64(len(hist)))
	if len(hist) > 0 {
		put(hist[len(hist)-1].Round)
	}
	id, _ := b.leader()
	h.Write([]byte(id))
	h.Write([]byte{0})
	for _, dc := range slices.Sorted(maps.Keys(b.d.locals)) {
		for _, in := range b.d.locals[dc].Instances() {
			h.Write([]byte(in.ID))
			h.Write([]byte{0})
			h.Write([]byte(in.State))
			h.Write([]byte{0})
		}
	}
	return h.Sum64(), nil
}
