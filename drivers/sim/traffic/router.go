package traffic

import (
	"fmt"

	"github.com/ims-orch/ims-orch/drivers/sim"
)

// LocalRouter is a trivial Router for tests and benchmarks: every stage of a
// flow runs in the flow's entry DC, on the active instance of the stage's
// VNF that has the fewest pinned flows (ties: the earliest launched). It
// does not know about paths, tags or overload; the experiment runner uses a
// Router over the real local controllers instead.
type LocalRouter struct {
	Cloud *sim.Cloud
	Chain []string
	flows map[string]int
}

// Route picks the instances in the entry DC.
func (r *LocalRouter) Route(f Flow) ([]Hop, error) {
	if r.flows == nil {
		r.flows = map[string]int{}
	}
	hops := make([]Hop, 0, len(r.Chain))
	for _, vnf := range r.Chain {
		units := r.Cloud.Active(f.Entry, vnf)
		if len(units) == 0 {
			return nil, fmt.Errorf("no active %s in dc %d", vnf, f.Entry)
		}
		best := units[0]
		for _, u := range units[1:] {
			if r.flows[u.ID()] < r.flows[best.ID()] {
				best = u
			}
		}
		hops = append(hops, Hop{DC: f.Entry, Instance: best.ID()})
	}
	for _, h := range hops {
		r.flows[h.Instance]++
	}
	return hops, nil
}

// Release unpins the flow.
func (r *LocalRouter) Release(_ Flow, hops []Hop) {
	for _, h := range hops {
		if r.flows[h.Instance]--; r.flows[h.Instance] <= 0 {
			delete(r.flows, h.Instance)
		}
	}
}

// Pinned returns the number of flows pinned to an instance.
func (r *LocalRouter) Pinned(id string) int { return r.flows[id] }
