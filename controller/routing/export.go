package routing

import (
	"slices"

	"github.com/ims-orch/ims-orch/placement"
)

// HeldSet is one path set a Table holds: the previous, current or next
// interval's.
type HeldSet struct {
	Interval uint64
	Paths    map[placement.Pair]placement.Path
}

// HeldSets returns the path sets the table routes by, in interval order: the
// previous, current and next interval's, those held. A switch driver compiles
// them into per-interval rules.
func (t *Table) HeldSets() []HeldSet {
	var out []HeldSet
	for _, slot := range []int{prevSlot, curSlot, nextSlot} {
		s := &t.sets[slot]
		if !s.held {
			continue
		}
		h := HeldSet{Interval: s.interval, Paths: map[placement.Pair]placement.Path{}}
		for i, e := range s.paths {
			if !e.ok {
				continue
			}
			p := make(placement.Path, t.m+2)
			for j := range p {
				p[j] = int(e.dc[j])
			}
			h.Paths[placement.Pair{Entry: i / t.n, Exit: i % t.n}] = p
		}
		out = append(out, h)
	}
	return out
}

// IgnoresIntervalTag reports Config.IgnoreIntervalTag.
func (t *Table) IgnoresIntervalTag() bool { return t.ignoreTag }

// Stages returns m, N the number of datacenters.
func (t *Table) Stages() int { return t.m }

// N returns the number of datacenters.
func (t *Table) N() int { return t.n }

// PickInstance returns the instance Route would choose for stage now for a
// flow of load 1 (the least-loaded normal one, or the packed one with
// SetPackLimit, or a less-loaded overloaded one past SetSpreadLimit, else
// the least-loaded overloaded one) without adding load, or false when the
// stage has no instance.
func (t *Table) PickInstance(stage int) (uint8, bool) {
	if stage < 1 || stage > t.m {
		return 0, false
	}
	i := pick(t.inst[stage-1], t.pack[stage-1], t.spread[stage-1], 1)
	if i < 0 {
		return 0, false
	}
	return t.inst[stage-1][i].Index, true
}

// Share is one instance's part of a stage's new flows (Table.Shares).
type Share struct {
	Index  uint8
	Weight float64
}

// Shares returns how Route divides a stage's new flows among its instances,
// as weights, for a data plane that fixes the split in advance instead of
// routing each flow (a switch's tag rules for flows arriving through the
// tunnel). They are the proportions of a long batch of flows of load 1 under
// pick's rule:
//
//   - packing (SetPackLimit > 0) while some normal instance has room for a
//     flow: those instances, each weighted by its room, limit − Load. Route
//     fills the most-loaded first and the next when it is full, so a batch
//     that fills the stage puts room_i of its flows on instance i;
//   - otherwise the normal instances (the overloaded ones when no instance is
//     normal) with equal weights: Route gives each flow to the least-loaded,
//     which evens the loads out;
//   - past the spread limit (SetSpreadLimit: the least-loaded normal instance
//     would pass it with a flow and an overloaded one carries less) only the
//     instance PickInstance names.
//
// Instances are listed in SetInstances' order; nil when the stage has none.
func (t *Table) Shares(stage int) []Share {
	if stage < 1 || stage > t.m {
		return nil
	}
	xs := t.inst[stage-1]
	var out []Share
	if limit := t.pack[stage-1]; limit > 0 {
		for _, x := range xs {
			if !x.Overloaded && x.Load+1 <= limit {
				out = append(out, Share{Index: x.Index, Weight: limit - x.Load})
			}
		}
		if len(out) > 0 {
			return out
		}
	}
	i := pick(xs, 0, t.spread[stage-1], 1)
	if i < 0 {
		return nil
	}
	if xs[i].Overloaded && slices.ContainsFunc(xs, func(x InstanceLoad) bool { return !x.Overloaded }) {
		return []Share{{Index: xs[i].Index, Weight: 1}} // past the spread limit
	}
	for _, x := range xs {
		if x.Overloaded == xs[i].Overloaded {
			out = append(out, Share{Index: x.Index, Weight: 1})
		}
	}
	return out
}
