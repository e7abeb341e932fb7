package daemon

import (
	"context"
	"encoding/binary"
	"encoding/json"
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
	"github.com/ims-orch/ims-orch/controller/transport"
	"github.com/ims-orch/ims-orch/predictor"
)

// Backend implements api.Backend over a node.
//
// What is replicated (the raft FSM: writes are commits on the leader, reads
// come from the local FSM on any node, so a follower answers with the
// leader's data once it is replicated, and it survives a leader change):
//   - the topology: datacenter names, delays, VNF capacities, chain;
//   - the policy in force ("default"): its delay bound and its instance
//     limits (fsm.Policy.Limits), which the global controller sends to the
//     local controllers with each decision, so a change applies from the
//     next round;
//   - saved policies other than "default" (documents "policy/NAME");
//   - datacenter labels: group, region, AZ (documents "labels/DC"; a DC
//     without one shows the labels of this node's config file);
//   - drained datacenters (fsm.State.Drained) and the scale, drain and
//     undrain operation records (documents "op/ID", the last 100 kept): any
//     node answers GET operation, and an open drain's state is computed on
//     read from the DC's last step-2 report.
//
// Settings the running controllers were built with (datacenter set, chain,
// thresholds, interval, τ, predictor, strategy) cannot change while the
// daemon runs: such a write is refused with a ValidationError that says to
// edit the config and restart.
type Backend struct {
	d *Daemon

	// mu serializes writes (read, check, commit) and guards the fields
	mu     sync.Mutex
	types  []api.VNFType
	chains []api.Chain
}

var _ api.Backend = (*Backend)(nil)

func newBackend(d *Daemon) *Backend {
	c := d.cfg
	b := &Backend{d: d}
	t := c.Topology
	vt := func(v VNFConfig, plane string) api.VNFType {
		return api.VNFType{Name: v.Name, Plane: plane, Image: v.Image, Flavor: v.Flavor, Capacity: v.Capacity,
			Thresholds: c.thresholds(v)}
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
		return b.storeErr("commit", err)
	}
	return nil
}

// sync makes the local FSM hold every committed command (a raft barrier)
// before a write reads what it replaces.
func (b *Backend) sync() error {
	if err := b.d.store.Sync(); err != nil {
		return b.storeErr("sync", err)
	}
	return nil
}

// storeErr turns a lost leadership into the API's NotLeaderError.
func (b *Backend) storeErr(what string, err error) error {
	if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
		if w := b.writable(); w != nil {
			return w
		}
	}
	return fmt.Errorf("%s: %w", what, err)
}

// putDoc commits a replicated document (field names the request part that
// makes it too large).
func (b *Backend) putDoc(key string, v any, field string) error {
	doc, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if len(doc) > fsm.MaxDocBytes {
		ve := &api.ValidationError{}
		ve.Add(field, "makes a %d-byte document, at most %d", len(doc), fsm.MaxDocBytes)
		return ve
	}
	return b.commit(fsm.PutDoc{Key: key, Doc: doc})
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

// labelsDoc is a datacenter's labels as replicated (document "labels/DC").
type labelsDoc struct {
	Group  string `json:"group"`
	Region string `json:"region,omitempty"`
	AZ     string `json:"az,omitempty"`
}

// datacenters is the configured datacenter list with each DC's replicated
// labels (a DC without a labels document keeps the config file's).
func (b *Backend) datacenters(st fsm.State) []api.Datacenter {
	out := slices.Clone(b.d.cfg.Topology.Datacenters)
	for i := range out {
		raw, ok := st.Docs[fsm.DocLabels+out[i].Name]
		if !ok {
			continue
		}
		var l labelsDoc
		if err := json.Unmarshal(raw, &l); err != nil {
			b.d.log.Warn("unreadable replicated labels; showing the configured ones", "dc", out[i].Name, "err", err)
			continue
		}
		out[i].Group, out[i].Region, out[i].AZ = l.Group, l.Region, l.AZ
	}
	return out
}

// Datacenters implements api.Backend (labels from the replicated state).
func (b *Backend) Datacenters(context.Context) ([]api.Datacenter, error) {
	return b.datacenters(b.d.store.State()), nil
}

// SetDatacenters implements api.Backend: labels may change (one PutDoc
// commit per changed DC), the set of names may not.
func (b *Backend) SetDatacenters(_ context.Context, dcs []api.Datacenter) ([]api.Datacenter, error) {
	if err := b.writable(); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.sync(); err != nil {
		return nil, err
	}
	cur := b.datacenters(b.d.store.State())
	v := &api.ValidationError{}
	if len(dcs) != len(cur) {
		restart(v, "datacenters", fmt.Sprintf("the number of datacenters (%d → %d)", len(cur), len(dcs)))
	} else {
		for i := range dcs {
			if dcs[i].Name != cur[i].Name {
				restart(v, fmt.Sprintf("datacenters[%d].name", i), fmt.Sprintf("the datacenter %q", cur[i].Name))
			}
		}
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	for i, dc := range dcs {
		if dc == cur[i] {
			continue
		}
		if err := b.putDoc(fsm.DocLabels+dc.Name, labelsDoc{Group: dc.Group, Region: dc.Region, AZ: dc.AZ},
			fmt.Sprintf("datacenters[%d]", i)); err != nil {
			return nil, err
		}
	}
	return cur, nil
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

// inForce is the policy in force: interval, τ, predictor and strategy from
// the config (restart-only), delay bound and limits from the FSM once
// committed.
func (b *Backend) inForce(st fsm.State) api.Policy {
	p := b.d.cfg.Policy.API()
	if st.Policy.DelayBoundMs > 0 {
		p.DelayBoundMs = st.Policy.DelayBoundMs
		p.Limits = apiLimits(st.Policy.Limits)
	}
	return p
}

// policy returns the policy in force or a saved one (document
// "policy/NAME").
func (b *Backend) policy(st fsm.State, name string) (api.Policy, bool) {
	if name == PolicyName {
		return b.inForce(st), true
	}
	raw, ok := st.Docs[fsm.DocPolicy+name]
	if !ok {
		return api.Policy{}, false
	}
	var p api.Policy
	if err := json.Unmarshal(raw, &p); err != nil {
		b.d.log.Warn("unreadable replicated policy", "policy", name, "err", err)
		return api.Policy{}, false
	}
	p.Name = name
	return p, true
}

// Policies implements api.Backend: the policy in force and the saved ones,
// by name.
func (b *Backend) Policies(context.Context) ([]api.Policy, error) {
	st := b.d.store.State()
	names := []string{PolicyName}
	for k := range st.Docs {
		if n, ok := strings.CutPrefix(k, fsm.DocPolicy); ok && n != PolicyName {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	out := []api.Policy{}
	for _, n := range names {
		if p, ok := b.policy(st, n); ok {
			out = append(out, p)
		}
	}
	return out, nil
}

// Policy implements api.Backend.
func (b *Backend) Policy(_ context.Context, name string) (api.Policy, error) {
	p, ok := b.policy(b.d.store.State(), name)
	if !ok {
		return api.Policy{}, fmt.Errorf("policy %q: %w", name, api.ErrNotFound)
	}
	return p, nil
}

// checkPolicy checks references and, for the policy in force, that only
// live-changeable fields (delay bound, limits) change.
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
	}
	return v.Err()
}

// PutPolicy implements api.Backend. The policy named "default" is the one
// in force: its delay bound and limits are committed (fsm.SetPolicy) and
// used from the next round (the limits reach the local controllers with
// the round's decision). Other names are saved, replicated, for later use
// and dry runs (document "policy/NAME").
func (b *Backend) PutPolicy(_ context.Context, p api.Policy) (*api.Policy, error) {
	if err := b.writable(); err != nil {
		return nil, err
	}
	if err := b.checkPolicy(p); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.sync(); err != nil {
		return nil, err
	}
	st := b.d.store.State()
	var prev *api.Policy
	if old, ok := b.policy(st, p.Name); ok {
		prev = &old
	}
	p.Limits = slices.Clone(p.Limits)
	changed := prev == nil || !policyEqual(*prev, p)
	switch {
	case !changed:
	case p.Name == PolicyName:
		fp := st.Policy
		if fp.DelayBoundMs == 0 { // not committed yet
			fp = b.d.cfg.fsmPolicy()
		}
		fp.DelayBoundMs, fp.Limits = p.DelayBoundMs, fsmLimits(p.Limits)
		if err := b.commit(fsm.SetPolicy{Policy: fp}); err != nil {
			return nil, err
		}
	default:
		if err := fsm.ValidateDocKey(fsm.DocPolicy + p.Name); err != nil {
			ve := &api.ValidationError{}
			ve.Add("name", "%q is not a valid policy name", p.Name)
			return nil, ve
		}
		if err := b.putDoc(fsm.DocPolicy+p.Name, p, "limits"); err != nil {
			return nil, err
		}
	}
	if changed {
		b.d.log.Info("policy written", "policy", p.Name, "delayBoundMs", p.DelayBoundMs, "limits", len(p.Limits),
			"inForce", p.Name == PolicyName)
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
	if name == PolicyName {
		return fmt.Errorf("policy %q is in force and cannot be deleted: %w", name, api.ErrConflict)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.sync(); err != nil {
		return err
	}
	if _, ok := b.d.store.State().Docs[fsm.DocPolicy+name]; !ok {
		return fmt.Errorf("policy %q: %w", name, api.ErrNotFound)
	}
	return b.commit(fsm.DeleteDoc{Key: fsm.DocPolicy + name})
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

// Decisions implements api.Backend: a page of this node's decision history
// (the last maxDecisions decisions the watcher recorded, numbered from 1
// when the process started).
func (b *Backend) Decisions(_ context.Context, q api.DecisionQuery) (api.DecisionPage, error) {
	return b.d.watch.decisions(q), nil
}

// dcOperation runs an operator's operation on datacenter dc (and VNF vnf
// when not empty): on the leader, for a known target, under the write lock
// after a raft barrier, so f sees every committed command.
func (b *Backend) dcOperation(dc, vnf string, f func(st fsm.State) (api.Operation, error)) (api.Operation, error) {
	if err := b.writable(); err != nil {
		return api.Operation{}, err
	}
	if err := b.checkTarget(dc, vnf); err != nil {
		return api.Operation{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.sync(); err != nil {
		return api.Operation{}, err
	}
	return f(b.d.store.State())
}

// Scale implements api.Backend: an operator's ScaleVnf goes to the DC's
// local controller (local.Controller.Scale), which reuses buffered instances
// before launching and buffers the least-loaded ones to scale in. When that
// controller runs in another node, the request goes to its scale endpoint
// (transport.ScalePath, protocol token) at role.localEndpoints.
func (b *Backend) Scale(ctx context.Context, req api.ScaleRequest) (api.Operation, error) {
	return b.dcOperation(req.DC, req.VNF, func(st fsm.State) (api.Operation, error) { return b.scale(ctx, st, req) })
}

func (b *Backend) scale(ctx context.Context, st fsm.State, req api.ScaleRequest) (api.Operation, error) {
	lc := b.d.locals[req.DC]
	if lc == nil && b.d.httpT == nil {
		return api.Operation{}, fmt.Errorf("datacenter %q has no local controller in this node and no endpoint for it (role.localEndpoints): %w", req.DC, api.ErrConflict)
	}
	delta := req.NumberOfSteps
	if req.Type == api.ScaleIn {
		delta = -delta
	}
	now := b.d.clk.Now()
	op := api.Operation{ID: fmt.Sprintf("scale-%d", nextOpSeq(st)), Kind: api.OpScale, State: api.OpProcessing,
		StartedAt: now, Scale: &req}
	detail := fmt.Sprintf("operator %s %s by %d (%s)", req.Type, req.VNF, req.NumberOfSteps, op.ID)
	var target int
	var err error
	if lc != nil {
		target, err = lc.Scale(req.VNF, delta, detail)
	} else {
		// the DC's local controller runs in another node: its scale endpoint
		target, err = b.d.httpT.Scale(ctx, req.DC, transport.ScaleCommand{VNF: req.VNF, Delta: delta, Detail: detail})
	}
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
	if err := b.putOp(op); err != nil {
		// the scale itself happened; only its record is missing
		b.d.log.Warn("cannot record the scale operation", "operation", op.ID, "err", err)
	}
	return op, nil
}

// Drain implements api.Backend: it commits SetDrain{DC, true} (the planner
// then keeps DP stages and P-CSCF load out of the DC and its local
// controller lets its instances go to the buffer) and records a DRAIN
// operation (document "op/drain-N") in PROCESSING; Operation reports it
// COMPLETED once the DC's last step-2 report shows no working or booting
// instance. The S-CSCF DC and the last undrained DC are refused. Draining a
// drained DC answers its open drain operation again.
func (b *Backend) Drain(_ context.Context, req api.DrainRequest) (api.Operation, error) {
	return b.dcOperation(req.DC, "", func(st fsm.State) (api.Operation, error) { return b.drain(st, req) })
}

func (b *Backend) drain(st fsm.State, req api.DrainRequest) (api.Operation, error) {
	if st.Topology == nil {
		return api.Operation{}, fmt.Errorf("no topology committed yet: %w", api.ErrConflict)
	}
	v := &api.ValidationError{}
	if req.DC == st.Topology.SCSCFDC {
		v.Add("dc", "%q hosts the S-CSCF, which every registration and call passes: it cannot be drained", req.DC)
		return api.Operation{}, v
	}
	if slices.Contains(st.Drained, req.DC) {
		if op, ok := openDrain(st, req.DC); ok {
			return op, nil
		}
	} else {
		if len(st.Topology.DCs)-len(st.Drained) <= 1 {
			v.Add("dc", "%q is the last datacenter not drained (drained: %s): undrain another one first", req.DC,
				strings.Join(st.Drained, ", "))
			return api.Operation{}, v
		}
		if err := b.commit(fsm.SetDrain{DC: req.DC, Drain: true}); err != nil {
			return api.Operation{}, err
		}
	}
	r := api.DrainRequest{DC: req.DC}
	op := api.Operation{ID: fmt.Sprintf("drain-%d", nextOpSeq(st)), Kind: api.OpDrain, State: api.OpProcessing,
		StartedAt: b.d.clk.Now(), Drain: &r}
	if err := b.putOp(op); err != nil {
		return api.Operation{}, err
	}
	b.d.log.Info("datacenter drain started", "dc", req.DC, "operation", op.ID)
	return op, nil
}

// Undrain implements api.Backend: it commits SetDrain{DC, false}, closes
// the DC's open drain operation (COMPLETED if it was, else FAILED) and
// records a COMPLETED UNDRAIN operation.
func (b *Backend) Undrain(_ context.Context, req api.DrainRequest) (api.Operation, error) {
	return b.dcOperation(req.DC, "", func(st fsm.State) (api.Operation, error) { return b.undrain(st, req) })
}

func (b *Backend) undrain(st fsm.State, req api.DrainRequest) (api.Operation, error) {
	if !slices.Contains(st.Drained, req.DC) {
		return api.Operation{}, fmt.Errorf("datacenter %q is not drained: %w", req.DC, api.ErrNotFound)
	}
	if err := b.commit(fsm.SetDrain{DC: req.DC, Drain: false}); err != nil {
		return api.Operation{}, err
	}
	now := b.d.clk.Now()
	if op, ok := openDrain(st, req.DC); ok {
		// its state as it was while drained; a failure to record it is
		// harmless: an open drain of an undrained DC reads as FAILED
		if op.State == api.OpProcessing {
			op.State, op.Error = api.OpFailed, errUndrained
			op.FinishedAt = &now
		}
		if err := b.putOp(op); err != nil {
			b.d.log.Warn("cannot record the end of a drain operation", "operation", op.ID, "err", err)
		}
	}
	r := api.DrainRequest{DC: req.DC}
	op := api.Operation{ID: fmt.Sprintf("undrain-%d", nextOpSeq(b.d.store.State())), Kind: api.OpUndrain,
		State: api.OpCompleted, StartedAt: now, FinishedAt: &now, Drain: &r}
	if err := b.putOp(op); err != nil {
		return api.Operation{}, err
	}
	b.d.log.Info("datacenter undrained", "dc", req.DC, "operation", op.ID)
	return op, nil
}

const errUndrained = "the datacenter was undrained before its instances were gone"

// maxOpRecords bounds the replicated operation records (the oldest go).
const maxOpRecords = 100

// opRecords returns the replicated operation records by increasing
// sequence number.
func opRecords(st fsm.State) []api.Operation {
	var ops []api.Operation
	for k, raw := range st.Docs {
		if _, ok := strings.CutPrefix(k, fsm.DocOp); !ok {
			continue
		}
		var op api.Operation
		if json.Unmarshal(raw, &op) == nil {
			ops = append(ops, op)
		}
	}
	sort.Slice(ops, func(i, j int) bool { return opSeq(ops[i].ID) < opSeq(ops[j].ID) })
	return ops
}

// opSeq is the number ending an operation id ("drain-12" → 12), 0 if none.
func opSeq(id string) int {
	i := strings.LastIndexByte(id, '-')
	n, err := strconv.Atoi(id[i+1:])
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// nextOpSeq numbers a new operation record after every recorded one (the
// newest records are never pruned, so numbers are not reused).
func nextOpSeq(st fsm.State) int {
	n := 0
	for k := range st.Docs {
		if id, ok := strings.CutPrefix(k, fsm.DocOp); ok {
			n = max(n, opSeq(id))
		}
	}
	return n + 1
}

// openDrain returns the DC's drain operation still recorded PROCESSING,
// with its state computed from st.
func openDrain(st fsm.State, dc string) (api.Operation, bool) {
	ops := opRecords(st)
	for i := len(ops) - 1; i >= 0; i-- {
		op := ops[i]
		if op.Kind == api.OpDrain && op.State == api.OpProcessing && op.Drain != nil && op.Drain.DC == dc {
			return drainState(st, op), true
		}
	}
	return api.Operation{}, false
}

// drainState computes an open drain operation's state on read, so any node
// answers alike: COMPLETED once the DC's last answered step-2 report shows
// no working or booting instance (buffered ones may remain until τ expires
// them), FAILED when the DC was undrained meanwhile, else PROCESSING.
func drainState(st fsm.State, op api.Operation) api.Operation {
	if op.Kind != api.OpDrain || op.State != api.OpProcessing || op.Drain == nil {
		return op
	}
	dc := op.Drain.DC
	if !slices.Contains(st.Drained, dc) {
		op.State, op.Error = api.OpFailed, errUndrained
		return op
	}
	rep, ok := st.LastProvision[dc]
	if !ok {
		return op
	}
	for _, v := range rep.VNFs {
		if v.Working > 0 || v.Booting > 0 {
			return op
		}
	}
	op.State = api.OpCompleted
	return op
}

// putOp records an operation (document "op/ID") and prunes the oldest
// records beyond maxOpRecords.
func (b *Backend) putOp(op api.Operation) error {
	if err := b.putDoc(fsm.DocOp+op.ID, op, "operation"); err != nil {
		return err
	}
	ops := opRecords(b.d.store.State())
	for _, old := range ops[:max(0, len(ops)-maxOpRecords)] {
		if err := b.commit(fsm.DeleteDoc{Key: fsm.DocOp + old.ID}); err != nil {
			b.d.log.Warn("cannot prune an old operation record", "operation", old.ID, "err", err)
			break
		}
	}
	return nil
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

// Operation implements api.Backend from the replicated operation records
// (any node answers; an open drain's state is computed from the replicated
// state).
func (b *Backend) Operation(_ context.Context, id string) (api.Operation, error) {
	st := b.d.store.State()
	if raw, ok := st.Docs[fsm.DocOp+id]; ok {
		var op api.Operation
		if err := json.Unmarshal(raw, &op); err != nil {
			return api.Operation{}, fmt.Errorf("operation %q: unreadable record: %w", id, err)
		}
		return drainState(st, op), nil
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

// StateVersion implements api.StateVersioner: a hash of what State shows
// that can change — the FSM's change counter (interval, round, step, paths,
// history), the leader, each local controller's instance fingerprint (IDs
// and states) — computed without copying anything, so the server encodes
// the state once per change and a poller's If-None-Match costs little.
func (b *Backend) StateVersion(context.Context) (uint64, error) {
	h := fnv.New64a()
	var buf [8]byte
	put := func(x uint64) {
		binary.LittleEndian.PutUint64(buf[:], x)
		h.Write(buf[:])
	}
	put(b.d.store.Changes())
	id, _ := b.leader()
	h.Write([]byte(id))
	h.Write([]byte{0})
	var inst uint64 // order-independent: instance IDs name their DC
	for _, lc := range b.d.locals {
		inst += lc.Fingerprint()
	}
	put(inst)
	return h.Sum64(), nil
}
