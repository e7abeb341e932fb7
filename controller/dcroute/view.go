package dcroute

import "github.com/ims-orch/ims-orch/controller/routing"

// View calls fn under the router's lock with the routing table and a lookup
// of the instance ID behind a stage's routing index ("" when free). fn must
// not keep the table or call back into the Router.
func (r *Router) View(fn func(t *routing.Table, id func(stage int, idx uint8) string)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fn(r.t, func(stage int, idx uint8) string {
		if stage < 1 || stage > len(r.index) {
			return ""
		}
		return r.index[stage-1][idx]
	})
}

// Stage returns the stage (1-based) of a DP VNF name.
func (r *Router) Stage(vnf string) (int, bool) {
	s, ok := r.stages[vnf]
	return s, ok
}
