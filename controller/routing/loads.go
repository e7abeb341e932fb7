package routing

import (
	"fmt"
	"math"
)

// This file holds what a data plane does to a table besides deciding new
// flows: one instance's load, the loads it counted, and a retried decision.
// Route, pick and the placement of new flows are in table.go.

// AddLoad adds load to instance idx of stage (1..m), a flow placed on it
// outside Route (moved off a departed instance), so Release of that flow
// takes back only what was added. It reports whether idx is one of the
// stage's instances; a load that is negative, NaN or infinite, or a stage
// out of range, is an error and changes nothing.
func (t *Table) AddLoad(stage int, idx uint8, load float64) (bool, error) {
	if stage < 1 || stage > t.m {
		return false, ferr("stage", "stage %d is not one of 1..%d", stage, t.m)
	}
	if math.IsNaN(load) || math.IsInf(load, 0) || load < 0 {
		return false, ferr("load", "must be a finite non-negative number, got %g", load)
	}
	xs := t.inst[stage-1]
	for i := range xs {
		if xs[i].Index == idx {
			xs[i].Load += load
			return true, nil
		}
	}
	return false, nil
}

// SetLoads sets the load of the instances of stage (1..m) whose index is
// in loads (e.g. the flows a data plane counted on each); the others keep
// theirs, and indices that are not the stage's instances are ignored. A
// load that is negative, NaN or infinite, or a stage out of range, is an
// error and changes nothing. It allocates nothing.
func (t *Table) SetLoads(stage int, loads map[uint8]float64) error {
	if stage < 1 || stage > t.m {
		return ferr("stage", "stage %d is not one of 1..%d", stage, t.m)
	}
	for idx, l := range loads {
		if math.IsNaN(l) || math.IsInf(l, 0) || l < 0 {
			return ferr(fmt.Sprintf("loads[stage %d][%d]", stage, idx), "must be a finite non-negative number, got %g", l)
		}
	}
	xs := t.inst[stage-1]
	for i := range xs {
		if l, ok := loads[xs[i].Index]; ok {
			xs[i].Load = l
		}
	}
	return nil
}

// Reroute is Route for a flow that was already decided once and dropped
// (its first packet again, e.g. a data plane retrying flows it dropped
// while the DC could not route them): a forwarded result counts like
// Route's, a drop leaves the counters as they were, so a flow that stays
// unroutable is counted dropped once, not once per retry.
func (t *Table) Reroute(p Packet) Decision {
	c := t.c
	d := t.Route(p)
	if d.Verdict != Forward {
		t.c = c
	}
	return d
}
