package placement

// Draining a datacenter (Snapshot.Excluded, docs/algorithms.md "Draining a
// datacenter"). Everything a drain changes lives here or behind st.excl, which
// is nil when no DC is excluded, so a round without exclusions runs exactly
// the code it always ran:
//
//   - no DP stage in a drained DC: its stage costs are infinite in the
//     search's cost table (drainCosts), it ranks last for every stage (newState), Alg. 2 and
//     the exact solver skip it as a stage DC, the shortest-delay routes never
//     pass through it (shortestFrom), and a candidate with an infinite cost is
//     never accepted (candidate.beats; infinite stage costs are summed with
//     cost.plus, which needs a 64-bit int: m·MaxInt32 must not overflow);
//   - Alg. 1 keeps no current path with a stage in a drained DC (usable);
//   - an entry = exit pair of a drained DC gets a path through other DCs
//     (planDrained) instead of the local one;
//   - every instance in a drained DC goes to the buffer queue (drainDP,
//     drainPCSCF) and its P-CSCF load moves to the nearest DC in service.

// excludedSet returns s.Excluded when it excludes a DC, else nil.
func excludedSet(s *Snapshot) []bool {
	for _, x := range s.Excluded {
		if x {
			return s.Excluded
		}
	}
	return nil
}

// excluded reports whether DC d is drained.
func (st *state) excluded(d int) bool { return st.excl != nil && st.excl[d] }

// drainCosts makes the cost of every stage in a drained DC +∞ in the cost
// table of the pair being searched (prepare), so that no candidate, route DP
// or shortest-delay DP places a stage there. stageCost itself stays small
// enough to inline.
func (s *search) drainCosts() {
	m := s.m
	for d, x := range s.st.excl {
		if x {
			for k := 0; k < m; k++ {
				s.tab[d*m+k], s.tabGen[d*m+k] = infCost, s.gen
			}
		}
	}
}

// usable reports whether Alg. 1 may keep path p: it is loopless (LooplessFor)
// and no stage is in a drained DC. Without exclusions it is p.Loopless().
func (st *state) usable(p Path) bool {
	if st.excl == nil {
		return p.Loopless()
	}
	for _, d := range p[1 : len(p)-1] {
		if st.excl[d] {
			return false
		}
	}
	return p.LooplessFor(st.excl)
}

// planDrained plans an entry = exit pair of a drained DC, which cannot host
// the chain: like an entry ≠ exit pair it keeps its current path when Alg. 1
// lines 2-4 allow (a path of an earlier drained round, e.g. (3,1,1,2,3)),
// else it gets a new path from Alg. 2 (or the exact solver) that leaves the
// DC and comes back to it as the exit.
func (st *state) planDrained(se *search, pr Pair, q float64, exact bool) PairPlan {
	bound := st.s.DelayBound
	if cur, ok := st.s.CurrentPaths[pr]; ok && st.usable(cur) {
		if d := DelayOf(st.s.Delay, cur); d <= bound+eps && st.fits(cur, q) {
			st.commit(cur, q)
			return PairPlan{Pair: pr, Workload: q, Path: append(Path(nil), cur...), Delay: d, Method: MethodKept}
		}
	}
	r, over := st.searchPair(se, pr, q, exact)
	added, created := st.commit(r.path, q)
	return PairPlan{Pair: pr, Workload: q, Path: r.path, Delay: r.delay, Method: r.method,
		NewInstances: added, Created: created, DelayViolated: r.delay > bound+eps, OverLimit: over,
		Candidates: r.candidates, LoopsEliminated: r.loops, LoopMerged: r.merged}
}

// drainCount is the decision for a VNF in a drained DC: every working
// instance goes to the buffer queue (the local controller parks them and they
// expire after τ); nothing is placed there, so the load is 0 (the flows still
// on the instances, reserved capacity included, drain with them).
func drainCount(p Provision) Count {
	return Count{Before: p.Working, ToBuffer: p.Working, BufferedAfter: p.Buffered + p.Working}
}

// drainDP sets the DP counts of the drained DCs.
func (st *state) drainDP(dec *Decision) {
	if st.excl == nil {
		return
	}
	for d, x := range st.excl {
		if x {
			for k := range dec.DP[d] {
				dec.DP[d][k] = drainCount(st.s.DP[d][k])
			}
		}
	}
}

// nearestInService returns the DC in service with the least delay from the
// drained DC d (ties to the lower index).
func nearestInService(s *Snapshot, excl []bool, d int) int {
	best := -1
	for j := 0; j < s.N; j++ {
		if !excl[j] && (best < 0 || s.Delay[d][j] < s.Delay[d][best]) {
			best = j
		}
	}
	return best
}

// drainPCSCF corrects the P-CSCF counts sizeCP made from perDC (the load per
// DC, by the paper's rule) for the drained DCs: a drained DC gets no P-CSCF
// load and 0 working instances (its Min does not apply); its load moves to
// the nearest DC in service, which is sized again. The total P-CSCF load is
// unchanged: a pair between a drained DC and the DC its load moves to counts
// on both sides there, as if the two were still different DCs.
func drainPCSCF(s *Snapshot, perDC []float64, dec *Decision) {
	excl := excludedSet(s)
	if excl == nil {
		return
	}
	moved := make([]float64, s.N)
	for d, x := range excl {
		if x {
			moved[nearestInService(s, excl, d)] += perDC[d]
			dec.PCSCF[d] = drainCount(s.PCSCFProv[d])
		}
	}
	for d, q := range moved {
		if q > 0 {
			dec.PCSCF[d] = sizeOne(s.PCSCFProv[d], perDC[d]+q, s.PCSCF)
		}
	}
}
