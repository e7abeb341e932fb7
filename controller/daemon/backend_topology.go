package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/ims-orch/ims-orch/api"
	"github.com/ims-orch/ims-orch/controller/fsm"
)

func (b *Backend) topology() (*fsm.Topology, fsm.Policy) {
	st := b.d.store.State()
	if st.Topology == nil {
		t := b.d.cfg.fsmTopology()
		return &t, fsm.Policy{DelayBoundMs: b.d.cfg.Policy.DelayBoundMs}
	}
	return st.Topology, st.Policy
}

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
	if b.d.sip != nil {
		for i := range out {
			if w, ok := b.d.sip.where[out[i].Name]; ok {
				out[i].Discovery = &w
			}
		}
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
		if dc.Group == cur[i].Group && dc.Region == cur[i].Region && dc.AZ == cur[i].AZ {
			continue // only the labels are written (discovery is read-only)
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
