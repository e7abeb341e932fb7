package fsm

import (
	"maps"
	"slices"

	"github.com/ims-orch/ims-orch/controller/protocol"
)

// Clone returns a deep copy of s, except the prediction maps and the
// documents' bytes, which are shared because committed predictions and
// documents are immutable (read-only for callers).
func (s State) Clone() State {
	c := s
	if s.Topology != nil {
		t := s.Topology.clone()
		c.Topology = &t
	}
	if s.Round != nil {
		r := s.Round.clone()
		c.Round = &r
	}
	c.Paths = clonePaths(s.Paths)
	c.LastProvision = cloneProvisions(s.LastProvision)
	c.Stale = maps.Clone(s.Stale)
	c.Policy.Limits = slices.Clone(s.Policy.Limits)
	c.Drained = slices.Clone(s.Drained)
	// documents are immutable once applied (PutDoc stores a new slice):
	// the map is copied, the bytes shared
	c.Docs = maps.Clone(s.Docs)
	c.Outcomes = cloneOutcomes(s.Outcomes)
	if s.History != nil {
		c.History = make([]Prediction, len(s.History))
		for i, p := range s.History {
			c.History[i] = p.clone()
		}
	}
	return c
}

func (t Topology) clone() Topology {
	c := t
	c.DCs = slices.Clone(t.DCs)
	c.Stages = slices.Clone(t.Stages)
	if t.DelayMs != nil {
		c.DelayMs = make([][]float64, len(t.DelayMs))
		for i, row := range t.DelayMs {
			c.DelayMs[i] = slices.Clone(row)
		}
	}
	return c
}

// clone shares the maps: a committed prediction is never modified (the FSM
// replaces predictions, it does not edit them), so copies of the state may
// share it as long as readers treat it as read-only.
func (p Prediction) clone() Prediction { return p }

func (r Round) clone() Round {
	c := r
	if r.Prediction != nil {
		p := r.Prediction.clone()
		c.Prediction = &p
	}
	c.Provisions = cloneProvisions(r.Provisions)
	if r.Decision != nil {
		c.Decision = make([]protocol.DCDecision, len(r.Decision))
		for i, d := range r.Decision {
			c.Decision[i] = CloneDecision(d)
		}
	}
	c.Paths = clonePaths(r.Paths)
	c.Unreachable = maps.Clone(r.Unreachable)
	return c
}

// CloneDecision returns a deep copy of a DC decision.
func CloneDecision(d protocol.DCDecision) protocol.DCDecision {
	c := d
	c.Targets = slices.Clone(d.Targets)
	c.Limits = slices.Clone(d.Limits)
	c.Paths = clonePaths(d.Paths)
	return c
}

func clonePaths(ps []protocol.PathEntry) []protocol.PathEntry {
	if ps == nil {
		return nil
	}
	out := make([]protocol.PathEntry, len(ps))
	for i, p := range ps {
		out[i] = protocol.PathEntry{Entry: p.Entry, Exit: p.Exit, Hops: slices.Clone(p.Hops)}
	}
	return out
}

func cloneProvisions(m map[string]protocol.ProvisionReport) map[string]protocol.ProvisionReport {
	if m == nil {
		return nil
	}
	out := make(map[string]protocol.ProvisionReport, len(m))
	for k, v := range m {
		vnfs := slices.Clone(v.VNFs)
		for i := range vnfs {
			if q := vnfs[i].QuotaLeft; q != nil {
				vnfs[i].QuotaLeft = new(*q)
			}
		}
		out[k] = protocol.ProvisionReport{DC: v.DC, VNFs: vnfs, Features: slices.Clone(v.Features)}
	}
	return out
}
