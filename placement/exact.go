package placement

import (
	"fmt"
	"math"
)

// ExactLimit bounds the paths the exhaustive solver may enumerate per pair
// (n^m stage assignments).
const ExactLimit = 2_000_000

// exactFeasible says whether the exhaustive solver may run on s.
func exactFeasible(s *Snapshot) error {
	if math.Pow(float64(s.N), float64(len(s.Stages))) > ExactLimit {
		return ferr("options.exact", "the exact solver enumerates n^m = %d^%d paths per pair, more than %d; use it on small scenarios only", s.N, len(s.Stages), ExactLimit)
	}
	return nil
}

// exact is the reference solver: it enumerates every loopless assignment of
// the m stages to DCs between entry and exit and returns the delay-feasible
// one that needs the fewest new instances (same cost order and tie-breaks as
// Alg. 2), given the capacities left by the pairs placed before. When no path
// meets the bound it falls back like Alg. 2 does (shortest-delay route + DP).
func (s *search) exact(pr Pair, q float64) result {
	st := s.st
	m := st.m
	path := make(Path, m+2)
	path[0], path[m+1] = pr.Entry, pr.Exit
	best := candidate{drain: st.strict()}
	var r result
	// stage k at DC d: the path so far must stay loopless, the exit may only
	// be followed by the exit, and no stage goes to a drained DC.
	var walk func(k int, c cost, delay float64)
	walk = func(k int, c cost, delay float64) {
		if k == m {
			r.candidates++
			last := path[m]
			best.offer(path, c, delay+st.s.Delay[last][pr.Exit], st.s.DelayBound, MethodExact)
			return
		}
		prev := path[k]
		for d := 0; d < st.n; d++ {
			if (k > 0 && prev == pr.Exit && d != pr.Exit) || (st.excl != nil && st.excl[d]) {
				continue // left the exit: would come back to it; or drained
			}
			path[k+1] = d
			if d != prev && loopAt(path[:k+2], k+1) >= 0 {
				continue
			}
			nd := delay + st.s.Delay[prev][d]
			if nd > st.s.DelayBound+eps {
				continue // delays are non-negative: no completion can recover
			}
			nc := c.plus(st.stageCost(d, k, q))
			if best.ok && best.cost.less(nc) {
				continue // costs only grow
			}
			walk(k+1, nc, nd)
		}
	}
	walk(0, cost{}, 0)
	if !best.ok {
		sr := s.shortestDP(pr, q)
		sr.candidates += r.candidates
		return sr
	}
	return result{path: append(Path(nil), best.path...), cost: best.cost, delay: best.delay, method: MethodExact, candidates: r.candidates}
}

// BestPath returns the path the round would give pair pr if it were the only
// pair to place on s (Alg. 2, or the exact solver when exact is set), with the
// instances it adds and, of those, the ones to create. Tests and the CLI use
// it to compare the heuristic with the optimum pair by pair. An entry = exit
// pair has no path to search unless its DC is excluded (drained): then it is
// searched like the round does (planDrained).
func BestPath(s *Snapshot, pr Pair, q float64, exact bool, opt Options) (Path, int, int, error) {
	if err := s.Validate(); err != nil {
		return nil, 0, 0, err
	}
	if err := s.checkPair("pair", pr); err != nil {
		return nil, 0, 0, err
	}
	if pr.Entry == pr.Exit && (len(s.Excluded) == 0 || !s.Excluded[pr.Entry]) {
		return nil, 0, 0, ferr("pair", "entry and exit are the same DC; its path is always local (unless the DC is excluded)")
	}
	if exact {
		if err := exactFeasible(s); err != nil {
			return nil, 0, 0, err
		}
	}
	st := newState(s, opt.IgnoreBuffer)
	se := newSearch(st)
	se.paperOnly = opt.PaperOnly
	var r result
	if exact {
		r = se.exact(pr, q)
	} else {
		r = se.alg2(pr, q)
	}
	return r.path, r.cost.Added, r.cost.Created, nil
}

// String renders a path as (a,b,c).
func (p Path) String() string {
	s := "("
	for i, d := range p {
		if i > 0 {
			s += ","
		}
		s += fmt.Sprint(d)
	}
	return s + ")"
}
