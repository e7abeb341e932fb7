// Package apitest owns an in-memory api.Backend for tests of the API server,
// the API client and the CLI: the configuration, policies, a live state,
// the decision history and manual operations live in one mutex-guarded
// struct, time comes from an injected function, and leadership is a field
// (set NotLeader and every write answers *api.NotLeaderError). It checks
// references the way the daemon's backend does (a delay matrix naming an
// unknown datacenter, a chain naming an unknown VNF type, an unknown
// predictor model → *api.ValidationError).
package apitest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ims-orch/ims-orch/api"
	"github.com/ims-orch/ims-orch/predictor"
)

// Backend is an in-memory api.Backend. The zero value is not usable; call
// New.
type Backend struct {
	mu        sync.Mutex
	now       func() time.Time
	dcs       []api.Datacenter
	delays    api.DelayMatrix
	types     []api.VNFType
	chains    []api.Chain
	policies  map[string]api.Policy
	state     api.State
	decisions []api.Decision // by increasing Seq
	seq       int64          // Seq of the newest decision
	ops       map[string]api.Operation
	nextOp    int
	nextInst  int
	notLeader *api.NotLeaderError
	readyErr  error
	writes    int
	stateVer  uint64
}

var (
	_ api.Backend        = (*Backend)(nil)
	_ api.StateVersioner = (*Backend)(nil)
)

// StateVersion implements api.StateVersioner: it changes on every change of
// the live state.
func (b *Backend) StateVersion(context.Context) (uint64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stateVer, nil
}

// New returns an empty backend whose clock is now.
func New(now func() time.Time) *Backend {
	return &Backend{now: now, policies: map[string]api.Policy{}, ops: map[string]api.Operation{}}
}

// SetNotLeader makes every write answer e (nil: this node leads again).
func (b *Backend) SetNotLeader(e *api.NotLeaderError) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.notLeader = e
}

// SetReady sets what Ready answers.
func (b *Backend) SetReady(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.readyErr = err
}

// SetState replaces the live state.
func (b *Backend) SetState(s api.State) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.state = cloneState(s)
	b.stateVer++
}

// SetDiscovery sets where a datacenter's discovery DNS is, as the daemon
// reports it with driver local (read-only in the API: a PUT drops it).
func (b *Backend) SetDiscovery(dc string, d api.Discovery) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := range b.dcs {
		if b.dcs[i].Name == dc {
			b.dcs[i].Discovery = &d
		}
	}
}

// AddDecisions appends decisions to the history, numbering them (Seq)
// after the ones already recorded; their own Seq is ignored.
func (b *Backend) AddDecisions(ds ...api.Decision) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.record(ds...)
}

// record appends decisions to the history with the next sequence numbers.
func (b *Backend) record(ds ...api.Decision) {
	for _, d := range ds {
		b.seq++
		d.Seq = b.seq
		b.decisions = append(b.decisions, d)
	}
}

// Writes counts the writes this backend committed (tests check that a
// follower's write reached the leader, and that a dry run committed nothing).
func (b *Backend) Writes() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.writes
}

func (b *Backend) writable() error {
	if b.notLeader != nil {
		e := *b.notLeader
		return &e
	}
	return nil
}

func (b *Backend) hasDC(name string) bool {
	return slices.ContainsFunc(b.dcs, func(d api.Datacenter) bool { return d.Name == name })
}

func (b *Backend) hasVNF(name string) bool {
	return slices.ContainsFunc(b.types, func(t api.VNFType) bool { return t.Name == name })
}

// get returns a copy of a stored list under the lock.
func get[T any](b *Backend, list *[]T, clone func([]T) []T) []T {
	b.mu.Lock()
	defer b.mu.Unlock()
	return clone(*list)
}

// replace is every whole-list PUT: on the leader, check (nil: nothing to
// check) under the lock, store a copy (never nil) and return the previous
// list.
func replace[T any](b *Backend, list *[]T, v []T, clone func([]T) []T, check func() error) ([]T, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.writable(); err != nil {
		return nil, err
	}
	if check != nil {
		if err := check(); err != nil {
			return nil, err
		}
	}
	prev := *list
	*list = clone(v)
	if *list == nil {
		*list = []T{}
	}
	b.writes++
	return prev, nil
}

// Datacenters implements api.Backend.
func (b *Backend) Datacenters(context.Context) ([]api.Datacenter, error) {
	return get(b, &b.dcs, slices.Clone), nil
}

// SetDatacenters implements api.Backend.
func (b *Backend) SetDatacenters(_ context.Context, dcs []api.Datacenter) ([]api.Datacenter, error) {
	dcs = slices.Clone(dcs)
	for i := range dcs {
		dcs[i].Discovery = nil // read-only
	}
	return replace(b, &b.dcs, dcs, slices.Clone, nil)
}

// Delays implements api.Backend.
func (b *Backend) Delays(context.Context) (api.DelayMatrix, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return cloneMatrix(b.delays), nil
}

// SetDelays implements api.Backend: every datacenter must be known.
func (b *Backend) SetDelays(_ context.Context, m api.DelayMatrix) (api.DelayMatrix, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.writable(); err != nil {
		return api.DelayMatrix{}, err
	}
	v := &api.ValidationError{}
	for i, d := range m.Datacenters {
		if !b.hasDC(d) {
			v.Add(fmt.Sprintf("datacenters[%d]", i), "%q is not a known datacenter (PUT /api/v1/datacenters first)", d)
		}
	}
	if err := v.Err(); err != nil {
		return api.DelayMatrix{}, err
	}
	prev := b.delays
	b.delays = cloneMatrix(m)
	b.writes++
	return prev, nil
}

// VNFTypes implements api.Backend.
func (b *Backend) VNFTypes(context.Context) ([]api.VNFType, error) {
	return get(b, &b.types, slices.Clone), nil
}

// SetVNFTypes implements api.Backend.
func (b *Backend) SetVNFTypes(_ context.Context, ts []api.VNFType) ([]api.VNFType, error) {
	return replace(b, &b.types, ts, slices.Clone, nil)
}

// Chains implements api.Backend.
func (b *Backend) Chains(context.Context) ([]api.Chain, error) {
	return get(b, &b.chains, cloneChains), nil
}

// SetChains implements api.Backend: every stage must be a known VNF type.
func (b *Backend) SetChains(_ context.Context, cs []api.Chain) ([]api.Chain, error) {
	return replace(b, &b.chains, cs, cloneChains, func() error {
		v := &api.ValidationError{}
		for i, c := range cs {
			for k, s := range c.Stages {
				if !b.hasVNF(s) {
					v.Add(fmt.Sprintf("chains[%d].stages[%d]", i, k), "%q is not a known VNF type", s)
				}
			}
		}
		return v.Err()
	})
}

// Policies implements api.Backend (sorted by name).
func (b *Backend) Policies(context.Context) ([]api.Policy, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]api.Policy, 0, len(b.policies))
	for _, p := range b.policies {
		out = append(out, clonePolicy(p))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Policy implements api.Backend.
func (b *Backend) Policy(_ context.Context, name string) (api.Policy, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	p, ok := b.policies[name]
	if !ok {
		return api.Policy{}, fmt.Errorf("policy %q: %w", name, api.ErrNotFound)
	}
	return clonePolicy(p), nil
}

func (b *Backend) checkPolicy(p api.Policy) error {
	v := &api.ValidationError{}
	if _, err := predictor.ParseSpec(p.Predictor); err != nil {
		v.Add("predictor", "%v", err)
	}
	for i, l := range p.Limits {
		if l.DC != "" && !b.hasDC(l.DC) {
			v.Add(fmt.Sprintf("limits[%d].dc", i), "%q is not a known datacenter", l.DC)
		}
		if !b.hasVNF(l.VNF) {
			v.Add(fmt.Sprintf("limits[%d].vnf", i), "%q is not a known VNF type", l.VNF)
		}
	}
	return v.Err()
}

// PutPolicy implements api.Backend.
func (b *Backend) PutPolicy(_ context.Context, p api.Policy) (*api.Policy, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.writable(); err != nil {
		return nil, err
	}
	if err := b.checkPolicy(p); err != nil {
		return nil, err
	}
	var prev *api.Policy
	if old, ok := b.policies[p.Name]; ok {
		prev = &old
	}
	b.policies[p.Name] = clonePolicy(p)
	b.writes++
	return prev, nil
}

// DeletePolicy implements api.Backend.
func (b *Backend) DeletePolicy(_ context.Context, name string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.writable(); err != nil {
		return err
	}
	if name == InForce {
		return fmt.Errorf("policy %q is in force and cannot be deleted: %w", name, api.ErrConflict)
	}
	if _, ok := b.policies[name]; !ok {
		return fmt.Errorf("policy %q: %w", name, api.ErrNotFound)
	}
	delete(b.policies, name)
	b.writes++
	return nil
}

// DryRunPolicy implements api.Backend: the decisions that would bring every
// (dc, vnf) of the live state inside the policy's limits, nothing committed.
func (b *Backend) DryRunPolicy(_ context.Context, p api.Policy) ([]api.Decision, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.writable(); err != nil {
		return nil, err
	}
	if err := b.checkPolicy(p); err != nil {
		return nil, err
	}
	working := map[[2]string]int{}
	for _, in := range b.state.Instances {
		if in.State == "working" || in.State == "booting" {
			working[[2]string{in.DC, in.VNF}]++
		}
	}
	var out []api.Decision
	now := b.now()
	for _, l := range p.Limits {
		dcs := []string{l.DC}
		if l.DC == "" {
			dcs = dcs[:0]
			for _, d := range b.dcs {
				dcs = append(dcs, d.Name)
			}
		}
		for _, dc := range dcs {
			n := working[[2]string{dc, l.VNF}]
			var delta int
			var why string
			switch {
			case n < l.Min:
				delta, why = l.Min-n, fmt.Sprintf("%d working < min %d of policy %s", n, l.Min, p.Name)
			case n > l.Max:
				delta, why = l.Max-n, fmt.Sprintf("%d working > max %d of policy %s", n, l.Max, p.Name)
			default:
				continue
			}
			out = append(out, api.Decision{Round: b.state.Interval + 1, At: now, Kind: api.DecisionProactive,
				DC: dc, VNF: l.VNF, Delta: delta, Reason: why,
				Detail: map[string]any{"policy": p.Name, "working": n, "min": l.Min, "max": l.Max}})
		}
	}
	return out, nil
}

// State implements api.Backend.
func (b *Backend) State(context.Context) (api.State, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return cloneState(b.state), nil
}

// Decisions implements api.Backend.
func (b *Backend) Decisions(_ context.Context, q api.DecisionQuery) (api.DecisionPage, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return api.PageDecisions(b.decisions, q), nil
}

func (b *Backend) newOp(kind string) api.Operation {
	b.nextOp++
	return api.Operation{ID: fmt.Sprintf("op-%d", b.nextOp), Kind: kind, State: api.OpProcessing, StartedAt: b.now()}
}

// Scale implements api.Backend: a scale-out adds booting instances, a
// scale-in removes working ones (409 when there are not enough); the
// operation completes at once and one manual decision records it.
func (b *Backend) Scale(_ context.Context, req api.ScaleRequest) (api.Operation, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.writable(); err != nil {
		return api.Operation{}, err
	}
	if !b.hasDC(req.DC) {
		return api.Operation{}, fmt.Errorf("datacenter %q: %w", req.DC, api.ErrNotFound)
	}
	if !b.hasVNF(req.VNF) {
		return api.Operation{}, fmt.Errorf("VNF type %q: %w", req.VNF, api.ErrNotFound)
	}
	now := b.now()
	delta := req.NumberOfSteps
	var drop map[int]bool
	if req.Type == api.ScaleIn {
		delta = -delta
		var idx []int
		for i, in := range b.state.Instances {
			if in.DC == req.DC && in.VNF == req.VNF && in.State == "working" {
				idx = append(idx, i)
			}
		}
		if len(idx) < req.NumberOfSteps {
			return api.Operation{}, fmt.Errorf("%s in %s has %d working instances, cannot scale in by %d: %w",
				req.VNF, req.DC, len(idx), req.NumberOfSteps, api.ErrConflict)
		}
		drop = map[int]bool{}
		for _, i := range idx[len(idx)-req.NumberOfSteps:] {
			drop[i] = true
		}
	}
	op := b.newOp(api.OpScale)
	r := req
	op.Scale = &r
	if req.Type == api.ScaleIn {
		kept := b.state.Instances[:0:0]
		for i, in := range b.state.Instances {
			if !drop[i] {
				kept = append(kept, in)
			}
		}
		b.state.Instances = kept
	} else {
		for range req.NumberOfSteps {
			b.nextInst++
			b.state.Instances = append(b.state.Instances, api.Instance{
				ID: fmt.Sprintf("%s-%s-m%d", req.DC, req.VNF, b.nextInst), DC: req.DC, VNF: req.VNF,
				State: "booting", Reason: "manual scale-out " + op.ID, Since: now})
		}
	}
	b.record(api.Decision{Round: b.state.Interval, At: now, Kind: api.DecisionManual,
		DC: req.DC, VNF: req.VNF, Delta: delta, Reason: fmt.Sprintf("operator %s by %d", req.Type, req.NumberOfSteps),
		Detail: map[string]any{"operation": op.ID}})
	op.State = api.OpCompleted
	op.FinishedAt = &now
	b.ops[op.ID] = op
	b.writes++
	b.stateVer++
	return op, nil
}

// Undrain implements api.Backend: the DC's draining instances work again,
// one manual decision per VNF records it.
func (b *Backend) Undrain(_ context.Context, req api.DrainRequest) (api.Operation, error) {
	return b.drainOp(req, false)
}

// Drain implements api.Backend: every instance of the datacenter becomes
// draining, one manual decision per VNF records it.
func (b *Backend) Drain(_ context.Context, req api.DrainRequest) (api.Operation, error) {
	return b.drainOp(req, true)
}

// drainOp moves the DC's instances into draining (drain) or back to
// working, records one manual decision per VNF and the operation (a drain
// stays PROCESSING, an undrain completes; undraining a DC with nothing
// draining is ErrNotFound).
func (b *Backend) drainOp(req api.DrainRequest, drain bool) (api.Operation, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.writable(); err != nil {
		return api.Operation{}, err
	}
	if !b.hasDC(req.DC) {
		return api.Operation{}, fmt.Errorf("datacenter %q: %w", req.DC, api.ErrNotFound)
	}
	moves := func(in api.Instance) bool { return in.DC == req.DC && (in.State == "draining") != drain }
	per := map[string]int{}
	for _, in := range b.state.Instances {
		if moves(in) {
			per[in.VNF]++
		}
	}
	kind, to, sign, why := api.OpDrain, "draining", -1, "operator drained the datacenter"
	if !drain {
		if len(per) == 0 {
			return api.Operation{}, fmt.Errorf("datacenter %q is not drained: %w", req.DC, api.ErrNotFound)
		}
		kind, to, sign, why = api.OpUndrain, "working", 1, "operator ended the drain of the datacenter"
	}
	op := b.newOp(kind)
	r := req
	op.Drain = &r
	now := b.now()
	for i, in := range b.state.Instances {
		if moves(in) {
			b.state.Instances[i].State = to
			b.state.Instances[i].Reason = strings.ToLower(kind) + " " + op.ID
			b.state.Instances[i].Since = now
		}
	}
	for _, v := range slices.Sorted(maps.Keys(per)) {
		b.record(api.Decision{Round: b.state.Interval, At: now, Kind: api.DecisionManual,
			DC: req.DC, VNF: v, Delta: sign * per[v], Reason: why, Detail: map[string]any{"operation": op.ID}})
	}
	if !drain {
		op.State = api.OpCompleted
		op.FinishedAt = &now
	}
	b.ops[op.ID] = op
	b.writes++
	b.stateVer++
	return op, nil
}

// InForce is the name of the policy in force, which cannot be deleted.
const InForce = "default"

// Operation implements api.Backend.
func (b *Backend) Operation(_ context.Context, id string) (api.Operation, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	op, ok := b.ops[id]
	if !ok {
		return api.Operation{}, fmt.Errorf("operation %q: %w", id, api.ErrNotFound)
	}
	return op, nil
}

// Ready implements api.Backend.
func (b *Backend) Ready(context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.readyErr
}

func cloneMatrix(m api.DelayMatrix) api.DelayMatrix {
	out := api.DelayMatrix{Datacenters: slices.Clone(m.Datacenters)}
	if m.DelaysMs != nil {
		out.DelaysMs = make([][]float64, len(m.DelaysMs))
		for i, r := range m.DelaysMs {
			out.DelaysMs[i] = slices.Clone(r)
		}
	}
	return out
}

func cloneChains(cs []api.Chain) []api.Chain {
	if cs == nil {
		return nil
	}
	out := make([]api.Chain, len(cs))
	for i, c := range cs {
		out[i] = api.Chain{Name: c.Name, Stages: slices.Clone(c.Stages)}
	}
	return out
}

func clonePolicy(p api.Policy) api.Policy {
	p.Limits = slices.Clone(p.Limits)
	return p
}

func cloneState(s api.State) api.State {
	s.Instances = slices.Clone(s.Instances)
	s.Predictions = slices.Clone(s.Predictions)
	paths := make([]api.Path, len(s.Paths))
	for i, p := range s.Paths {
		p.Hops = slices.Clone(p.Hops)
		paths[i] = p
	}
	s.Paths = paths
	return s
}
