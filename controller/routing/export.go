package routing

import "github.com/ims-orch/ims-orch/placement"

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
