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

// Shares returns where Route would place the next batch flows of load 1
// at stage, as weights, for a data plane that fixes the split in advance
// instead of routing each flow (a switch's tag rules for flows arriving
// through the tunnel, recompiled at every call start or end, SetInstances
// and interval step: what matters is where the next few flows go). It runs
// Route's own rule (pick: packing's most-loaded instance with room, else the
// least-loaded normal one, the spread limit) batch times on a copy of the
// loads, each flow adding 1, and returns how many went to each instance
// (Weight), those with at least one, in SetInstances' order; nil when the
// stage has no instance or batch < 1. With use non-nil only the instances
// it accepts are considered (a data plane's instances with ports), as if
// the others were not registered. The table's loads are not changed.
//
// With packing a small batch lands on the most-loaded instance with room,
// so the instances being emptied get no transit flow while another has
// room; without packing it lands on the least-loaded ones. A batch larger
// than the stage's room tends to room-weighted shares (packing) or equal
// ones (least-loaded), the proportions of a long burst.
func (t *Table) Shares(stage, batch int, use func(index uint8) bool) []Share {
	if stage < 1 || stage > t.m || batch < 1 {
		return nil
	}
	xs := slices.Clone(t.inst[stage-1])
	if use != nil {
		xs = slices.DeleteFunc(xs, func(x InstanceLoad) bool { return !use(x.Index) })
	}
	n := make([]int, len(xs))
	for range batch {
		i := pick(xs, t.pack[stage-1], t.spread[stage-1], 1)
		if i < 0 {
			return nil
		}
		n[i]++
		xs[i].Load++
	}
	var out []Share
	for i, x := range xs {
		if n[i] > 0 {
			out = append(out, Share{Index: x.Index, Weight: float64(n[i])})
		}
	}
	return out
}
