package placement

import "slices"

// plan runs Alg. 1 (DP proactive scaling) and the CP sizing of 4.2 step 3 over
// a validated snapshot.
//
// Order: pairs are processed by descending predicted workload, ties by
// (entry, exit), so the largest flows get first pick of capacity (the paper
// leaves the order open). A pair is planned when it has a predicted workload
// or a current path; a pair without a prediction has workload 0 and still gets
// a path, so new flows of that pair can be routed.
//
// stop (nil: never) ends the plan between two searches; it then returns nil.
func plan(s *Snapshot, opt Options, stop *stopper) *Decision {
	st := newState(s, opt.IgnoreBuffer)
	st.stop = stop
	pairs, qs := planPairs(s)
	if stop.stopped() {
		return nil
	}
	plans, se := alg1(st, pairs, qs, opt)
	if stop.stopped() {
		return nil
	}
	if opt.Improve.Budget <= 0 {
		return assemble(st, pairs, plans)
	}
	// A second start when the first converged with budget left (small
	// rounds; a large one spends the budget on the first): the plan of the
	// other order of the entry = exit pairs (LocalFirst flipped), which
	// leaves the shared instances to different pairs. The second result is
	// taken only when it beats the first, so neither start makes the round
	// worse than Alg. 1's plan.
	inc := assemble(st, pairs, plans)
	if stop.stopped() {
		return nil
	}
	a := improveRound(s, opt, pairs, plans, st, se, inc)
	half := opt.Improve.Budget - a.Improvement.Work
	if stop.failed() != nil || half <= 0 || !a.Improvement.Converged {
		return a
	}
	ob := opt
	ob.LocalFirst = !opt.LocalFirst
	ob.Improve.Budget = half
	st2 := newState(s, opt.IgnoreBuffer)
	st2.stop = stop
	plans2, se2 := alg1(st2, pairs, qs, ob)
	if stop.failed() != nil {
		return nil
	}
	b := improveRound(s, ob, pairs, plans2, st2, se2, assemble(st2, pairs, plans2))
	if stop.failed() != nil {
		return nil
	}
	ac, aa := dpAdded(a)
	bc, ba := dpAdded(b)
	if !(cost{bc, ba}).less(cost{ac, aa}) {
		a.Improvement.Work += b.Improvement.Work
		return a
	}
	// report against Alg. 1's plan: paths re-routed relative to it
	r := b.Improvement
	r.Budget, r.Work = opt.Improve.Budget, r.Work+a.Improvement.Work
	r.CreatedBefore, r.AddedBefore = a.Improvement.CreatedBefore, a.Improvement.AddedBefore
	r.Rerouted, r.BackToCurrent = 0, 0
	for i := range b.Pairs {
		b.Pairs[i].Rerouted = !b.Pairs[i].Path.Equal(inc.Pairs[i].Path)
		if b.Pairs[i].Rerouted {
			r.Rerouted++
			if cur, ok := s.CurrentPaths[b.Pairs[i].Pair]; ok && cur.Equal(b.Pairs[i].Path) {
				r.BackToCurrent++
			}
		}
	}
	return b
}

// alg1 runs Alg. 1 lines 1-14 on st: every pair of pairs (processing order)
// gets a path, committed to st. It returns the plans in the order of pairs and
// the search it used. qs[i] is pairs[i]'s workload. When st.stop says stop
// before a search, it returns at once with the plans unfinished.
func alg1(st *state, pairs []Pair, qs []float64, opt Options) ([]PairPlan, *search) {
	s := st.s
	done := make([]bool, len(pairs))
	plans := make([]PairPlan, len(pairs))
	// Lines 10-14: the entry = exit pairs, the whole chain in the DC. The
	// paper places them last, taking the capacity the other pairs left.
	// Options.LocalFirst places them first instead: their path has no
	// alternative, so a current path of another pair then counts as fitting
	// only if it leaves the local pairs their capacity, and otherwise Alg. 2
	// may serve it elsewhere (through a DC's buffered or spare instances)
	// instead of pushing the local pairs into creating instances. Placing
	// them first is the same as reserving their load: the instances they
	// need are counted once, whatever the order. A drained DC cannot host
	// its own pairs: their path goes elsewhere (drain.go) and needs the
	// search, so with sr nil (LocalFirst, before Alg. 2) they wait.
	placeLocal := func(sr *search) {
		for i, pr := range pairs {
			if pr.Entry != pr.Exit || done[i] {
				continue
			}
			q := qs[i]
			if st.excluded(pr.Entry) {
				if sr != nil {
					if st.stop.stopped() {
						return
					}
					plans[i] = st.planDrained(sr, pr, q, opt.Exact)
					done[i] = true
				}
				continue
			}
			p := localPath(pr.Entry, st.m)
			over := st.overLimit(p, q)
			added, created := st.commit(p, q)
			plans[i] = PairPlan{Pair: pr, Workload: q, Path: p, Method: MethodLocal, NewInstances: added, Created: created, OverLimit: over}
			done[i] = true
		}
	}
	if opt.LocalFirst {
		placeLocal(nil)
	}

	// Alg. 1 lines 1-4: keep a current path that still has the capacity and
	// meets the delay bound. The kept paths' copies share one backing array
	// (most pairs are kept in a steady round: one allocation, not one each).
	var keptBuf []int
	for i, pr := range pairs {
		if i%stopEvery == 0 && st.stop.stopped() {
			return plans, nil
		}
		st.stop.visited(1)
		if pr.Entry == pr.Exit {
			continue
		}
		q := qs[i]
		cur, ok := s.CurrentPaths[pr]
		if !ok || !st.usable(cur) {
			continue
		}
		d := DelayOf(s.Delay, cur)
		if d > s.DelayBound+eps || !st.fits(cur, q) {
			continue
		}
		st.commit(cur, q)
		if cap(keptBuf)-len(keptBuf) < len(cur) {
			keptBuf = make([]int, 0, max(len(cur), len(pairs)-i)*len(cur))
		}
		keptBuf = append(keptBuf, cur...)
		kept := Path(keptBuf[len(keptBuf)-len(cur) : len(keptBuf) : len(keptBuf)])
		plans[i] = PairPlan{Pair: pr, Workload: q, Path: kept, Delay: d, Method: MethodKept}
		done[i] = true
	}

	// Lines 5-9: a new path from Alg. 2 (or the exact solver), scaling out
	// ⌈(Q − Q')/C⌉ where the path's capacity is short.
	search := newSearch(st)
	search.paperOnly = opt.PaperOnly
	for i, pr := range pairs {
		if done[i] || pr.Entry == pr.Exit {
			continue
		}
		if st.stop.stopped() {
			return plans, search
		}
		q := qs[i]
		r, over := st.searchPair(search, pr, q, opt.Exact)
		added, created := st.commit(r.path, q)
		plans[i] = PairPlan{Pair: pr, Workload: q, Path: r.path, Delay: r.delay, Method: r.method,
			NewInstances: added, Created: created, DelayViolated: r.delay > s.DelayBound+eps, OverLimit: over,
			Candidates: r.candidates, LoopsEliminated: r.loops, LoopMerged: r.merged}
		done[i] = true
	}

	placeLocal(search)
	return plans, search
}

// localPath is the path of an entry = exit pair whose chain stays in dc.
func localPath(dc, m int) Path {
	p := make(Path, m+2)
	for k := range p {
		p[k] = dc
	}
	return p
}

// assemble turns the committed state of a round into its decision: the pairs
// (entry ≠ exit first in processing order, then entry = exit), the DP counts
// with the scale-in of line 15, the drains and the CP sizing.
func assemble(st *state, pairs []Pair, plans []PairPlan) *Decision {
	dec := assembleDP(st, pairs, plans)
	sizeCP(st.s, dec, st.stop)
	return dec
}

// assembleDP is assemble without the CP sizing (which does not depend on the
// DP paths).
func assembleDP(st *state, pairs []Pair, plans []PairPlan) *Decision {
	dec := &Decision{Pairs: make([]PairPlan, len(pairs))}
	for i, j := range decisionOrder(pairs) {
		dec.Pairs[j] = plans[i]
	}
	countDP(st, dec)
	return dec
}

// decisionOrder gives each pair's position in Decision.Pairs: entry ≠ exit
// pairs first, then entry = exit pairs, each in processing order.
func decisionOrder(pairs []Pair) []int {
	pos := make([]int, len(pairs))
	n := 0
	for i, pr := range pairs {
		if pr.Entry != pr.Exit {
			pos[i] = n
			n++
		}
	}
	for i, pr := range pairs {
		if pr.Entry == pr.Exit {
			pos[i] = n
			n++
		}
	}
	return pos
}

// countDP fills the decision's DP counts from the committed state.
func countDP(st *state, dec *Decision) {
	s := st.s
	// Line 15: scale in — working instances the placed load does not need go
	// to the buffer queue.
	dec.DP = make([][]Count, s.N)
	for d := 0; d < s.N; d++ {
		dec.DP[d] = make([]Count, st.m)
		for k := 0; k < st.m; k++ {
			prov := s.DP[d][k]
			c := Count{Before: prov.Working, Load: st.load[d][k]}
			c.Working = prov.Working + st.added[d][k]
			if needK := ceilDiv(st.load[d][k], s.Stages[k].Capacity); needK < c.Working {
				c.ToBuffer = c.Working - needK
				c.Working = needK
			}
			c.Reused = min(st.added[d][k], prov.Buffered)
			c.Created = st.added[d][k] - c.Reused
			c.BufferedAfter = prov.Buffered - c.Reused + c.ToBuffer
			dec.DP[d][k] = c
		}
	}
	st.drainDP(dec)
}

// planPairs lists the pairs to plan (predicted or with a current path) in
// processing order: descending workload, then (entry, exit), with their
// workloads.
func planPairs(s *Snapshot) ([]Pair, []float64) {
	type pq struct {
		p Pair
		q float64
	}
	all := make([]pq, 0, len(s.DPWorkload)+len(s.CurrentPaths))
	for p, q := range s.DPWorkload {
		all = append(all, pq{p, q})
	}
	for p := range s.CurrentPaths {
		if _, ok := s.DPWorkload[p]; !ok {
			all = append(all, pq{p, 0})
		}
	}
	// a total order (pairs are distinct), so the sort algorithm does not
	// matter; slices.SortFunc avoids sort.Slice's reflective swaps
	slices.SortFunc(all, func(a, b pq) int {
		if a.q != b.q {
			if a.q > b.q {
				return -1
			}
			return 1
		}
		if a.p.Entry != b.p.Entry {
			return a.p.Entry - b.p.Entry
		}
		return a.p.Exit - b.p.Exit
	})
	pairs, qs := make([]Pair, len(all)), make([]float64, len(all))
	for i, x := range all {
		pairs[i], qs[i] = x.p, x.q
	}
	return pairs, qs
}

// sizeCP computes the CP instance counts of 4.2 step 3: S-CSCF instances at
// the S-CSCF DC from the total predicted CP workload; P-CSCF instances per DC
// from the workload of the pairs that use the DC as entry or exit (a pair with
// entry = exit counts once).
//
// stop ends it between two entry DCs' rows (the counts are then unfinished:
// a stopped plan's decision is not used).
func sizeCP(s *Snapshot, dec *Decision, stop *stopper) {
	total := 0.0
	perDC := make([]float64, s.N)
	// sum in (entry, exit) order: float addition is not associative, and map
	// order would make the counts differ near a capacity boundary. Validate
	// keeps every pair inside 0..N−1, so scanning the N² cells visits each
	// pair once, in that order, without sorting the map's keys.
	for e := 0; e < s.N && len(s.CPWorkload) > 0; e++ {
		if e%max(1, stopEvery/s.N) == 0 && stop.stopped() {
			return
		}
		stop.visited(s.N)
		for x := 0; x < s.N; x++ {
			q, ok := s.CPWorkload[Pair{Entry: e, Exit: x}]
			if !ok {
				continue
			}
			total += q
			perDC[e] += q
			if x != e {
				perDC[x] += q
			}
		}
	}
	dec.PCSCF = make([]Count, s.N)
	for d := 0; d < s.N; d++ {
		dec.PCSCF[d] = sizeOne(s.PCSCFProv[d], perDC[d], s.PCSCF)
	}
	drainPCSCF(s, perDC, dec)
	dec.SCSCF = sizeOne(s.SCSCFProv, total, s.SCSCF)
}

func sizeOne(prov Provision, load float64, v CPVNF) Count {
	load += prov.Reserved
	target := max(v.Min, ceilDiv(load, v.Capacity))
	c := Count{Before: prov.Working, Working: target, Load: load}
	if target > prov.Working {
		add := target - prov.Working
		c.Reused = min(add, prov.Buffered)
		c.Created = add - c.Reused
	} else {
		c.ToBuffer = prov.Working - target
	}
	c.BufferedAfter = prov.Buffered - c.Reused + c.ToBuffer
	return c
}
