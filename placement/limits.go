package placement

// Limits and quotas in the planner (Snapshot.Headroom, docs/algorithms.md
// "Limits"). A stage that cannot add the instances a pair needs costs +∞ in
// stageCost, exactly like a stage in a drained DC, so Alg. 2, the route
// candidates, the exact solver and the improvement phase route around it; a
// kept path adds nothing and is unaffected. Only when no path inside the
// limits can serve a pair does it get the path it would get without them,
// flagged OverLimit.

// strict reports whether a candidate may cost +∞ (a stage in a drained DC or
// past a limit) and must then be refused.
func (st *state) strict() bool { return st.excl != nil || st.room != nil || st.tabu >= 0 }

// pathCost is what committing q on p would cost now (+∞ when a stage is in
// a drained DC, past a limit or in the tabu cell).
func (st *state) pathCost(p Path, q float64) cost {
	var c cost
	for k := 0; k < st.m; k++ {
		d := p[k+1]
		if st.excluded(d) {
			return infCost
		}
		sc := st.stageCost(d, k, q)
		if sc.inf() {
			return infCost
		}
		c = c.plus(sc)
	}
	return c
}

// searchPair finds a new path for pr: Alg. 2 or, with exact, the exhaustive
// solver. When the limits leave the pair no path (its best costs +∞), it
// searches again without them and reports overLimit.
func (st *state) searchPair(se *search, pr Pair, q float64, exact bool) (r result, overLimit bool) {
	find := func() result {
		st.stop.searched()
		if exact {
			return se.exact(pr, q)
		}
		return se.alg2(pr, q)
	}
	r = find()
	if st.room == nil || !r.cost.inf() {
		return r, false
	}
	st.limitsOff = true
	r2 := find()
	st.limitsOff = false
	r2.candidates += r.candidates
	return r2, true
}

// overLimit reports whether committing q on p would add instances past a
// limit.
func (st *state) overLimit(p Path, q float64) bool {
	if st.room == nil {
		return false
	}
	for k := 0; k < st.m; k++ {
		d := p[k+1]
		if need(q, st.avail[d][k], st.s.Stages[k].Capacity) > st.room[d][k] {
			return true
		}
	}
	return false
}
