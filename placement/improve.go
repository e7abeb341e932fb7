package placement

import (
	"math"
	"sort"
)

// The joint improvement phase (docs/algorithms.md "Joint improvement
// phase"). Alg. 1 places the pairs one after another, so a pair placed early
// takes capacity a later one needed and the later one adds an instance the
// round as a whole did not need. The phase starts from Alg. 1's plan (the
// incumbent) and re-routes pairs while the round's cost — instances created,
// then instances added, over every DC and stage — falls:
//
//   - a single move takes one pair off its path (the instances the rest of
//     the round no longer needs go with it: state.remove) and searches it
//     again on what the others left (Alg. 2, or the exhaustive solver on
//     small networks); it moves when the new path costs strictly less than
//     putting it back, and to its current path when that costs the same;
//   - a group move (large-neighbourhood search) targets one DC/stage cell
//     that added instances: it takes every movable pair through the cell off
//     (up to ImproveOptions.MaxGroup, smallest workloads first), forbids the
//     cell to add instances (state.tabu) and searches them again, largest
//     first; it is kept only when the round costs strictly less, else undone.
//
// Cells are visited by the unused capacity of their last instance, most
// first (an almost empty instance is the easiest to give up). Passes repeat
// until one improves nothing or the budget (pair searches) is spent, so the
// phase is deterministic for a fixed budget. Every search respects what Alg.
// 1 respects (delay bound, loopless paths, drains, limits); the CP sizing
// does not depend on DP paths. Finally the round is rebuilt from scratch from
// the final paths and compared with the incumbent: the result is never worse.

// ImproveOptions configure the joint improvement phase.
type ImproveOptions struct {
	// Budget is the work the phase may do, in pair searches (one Alg. 2 or
	// exhaustive search of one pair); 0 turns the phase off.
	Budget int
	// MaxGroup bounds the pairs one group move takes off (0: DefaultMaxGroup).
	MaxGroup int
}

// DefaultMaxGroup is the default ImproveOptions.MaxGroup.
const DefaultMaxGroup = 8

// improveExactPaths: the phase searches pairs with the exhaustive solver when
// a pair has at most this many stage assignments (n^m), else with Alg. 2.
const improveExactPaths = 4096

// ImproveReport is what the improvement phase did in one round.
type ImproveReport struct {
	Budget int `json:"budget"` // pair searches allowed
	Work   int `json:"work"`   // pair searches done
	Passes int `json:"passes"`
	// Moves accepted: single-pair moves and group moves.
	SingleMoves int `json:"singleMoves"`
	GroupMoves  int `json:"groupMoves"`
	// Converged: the last pass improved nothing (else the budget ran out).
	Converged bool `json:"converged"`
	// Rerouted pairs have a path other than Alg. 1's; BackToCurrent of them
	// are on their current path again.
	Rerouted      int `json:"rerouted"`
	BackToCurrent int `json:"backToCurrent"`
	// Alg. 1's DP instances (created; created + reused) and the result's.
	CreatedBefore int `json:"createdBefore"`
	AddedBefore   int `json:"addedBefore"`
	CreatedAfter  int `json:"createdAfter"`
	AddedAfter    int `json:"addedAfter"`
}

type improver struct {
	st *state
	se *search
	// plans are Alg. 1's plans, changed in place by the moves; orig keeps
	// Alg. 1's plan of every pair a move touched.
	plans []PairPlan
	orig  map[int]PairPlan
	exact bool
	// cur holds the current path of a pair when usable by the phase, looked
	// up on first use (curOf): a round's steady pairs never need it.
	cur    []Path
	curSet []bool
	move   []bool // the phase may move the pair
	work   int
	max    int
	group  int
	rep    *ImproveReport
	// changed: some pair's path differs from the one it had (setPath).
	changed bool
}

// improveRound runs the phase on the committed Alg. 1 state st and returns
// the better of the incumbent inc and the improved round.
func improveRound(s *Snapshot, opt Options, pairs []Pair, plans []PairPlan, st *state, se *search, inc *Decision) *Decision {
	rep := &ImproveReport{Budget: opt.Improve.Budget}
	ic, ia := dpAdded(inc)
	rep.CreatedBefore, rep.AddedBefore, rep.CreatedAfter, rep.AddedAfter = ic, ia, ic, ia
	inc.Improvement = rep
	im := &improver{st: st, se: se, plans: plans, orig: map[int]PairPlan{}, max: opt.Improve.Budget,
		group: opt.Improve.MaxGroup, rep: rep, cur: make([]Path, len(plans)), curSet: make([]bool, len(plans)),
		move:  make([]bool, len(plans)),
		exact: opt.Exact || math.Pow(float64(s.N), float64(st.m)) <= improveExactPaths}
	if im.group <= 0 {
		im.group = DefaultMaxGroup
	}
	for i, pr := range pairs {
		p := &plans[i]
		im.move[i] = (pr.Entry != pr.Exit || st.excluded(pr.Entry)) && !p.DelayViolated && !p.OverLimit
	}
	im.run()
	rep.Work = im.work
	// every path is Alg. 1's: the incumbent is the round; a stopped plan's
	// round is not used, so it is not rebuilt either
	if !im.changed || st.stop.stopped() {
		return inc
	}

	// Rebuild the round from the final paths on a fresh state: the counts are
	// then exactly those of committing the paths, whatever order the moves
	// came in. The CP sizing does not depend on the DP paths: the
	// incumbent's stays.
	fresh := newCountState(s, opt.IgnoreBuffer)
	pos := decisionOrder(pairs)
	dec := &Decision{Pairs: make([]PairPlan, len(plans))}
	commitPass := func(local bool) {
		for i, pr := range pairs {
			if (pr.Entry == pr.Exit) != local {
				continue
			}
			p := im.plans[i]
			over := fresh.overLimit(p.Path, p.Workload)
			p.NewInstances, p.Created = fresh.commit(p.Path, p.Workload)
			p.OverLimit = p.OverLimit || over
			dec.Pairs[pos[i]] = p
		}
	}
	if opt.LocalFirst {
		commitPass(true)
		commitPass(false)
	} else {
		commitPass(false)
		commitPass(true)
	}
	// only the pairs a move touched can differ from Alg. 1's plan
	rerouted, back := 0, 0
	onCur := 0 // pairs on their current path, after minus before
	for i, alg1 := range im.orig {
		out := &dec.Pairs[pos[i]]
		if out.Path.Equal(alg1.Path) { // moved and moved back: Alg. 1's plan
			out.Method, out.Candidates, out.LoopsEliminated, out.LoopMerged = alg1.Method, alg1.Candidates, alg1.LoopsEliminated, alg1.LoopMerged
			continue
		}
		out.Rerouted = true
		rerouted++
		if cur := im.curOf(i); cur != nil {
			if out.Path.Equal(cur) {
				back++
				onCur++
			}
			if alg1.Path.Equal(cur) {
				onCur--
			}
		}
	}
	countDP(fresh, dec)
	dec.PCSCF, dec.SCSCF = inc.PCSCF, inc.SCSCF
	c, a := dpAdded(dec)
	better := cost{c, a}.less(cost{ic, ia}) || (c == ic && a == ia && onCur > 0)
	if !better {
		return inc
	}
	rep.Rerouted, rep.BackToCurrent = rerouted, back
	rep.CreatedAfter, rep.AddedAfter = c, a
	dec.Improvement = rep
	return dec
}

// dpAdded sums the DP instances a decision creates and adds (created +
// reused).
func dpAdded(d *Decision) (created, added int) {
	for _, row := range d.DP {
		for _, c := range row {
			created += c.Created
			added += c.Created + c.Reused
		}
	}
	return created, added
}

// budgetLeft reports whether the phase may search again: budget left and
// the plan not stopped (a stopped plan's result is not used).
func (im *improver) budgetLeft() bool { return im.work < im.max && !im.st.stop.stopped() }

// curOf returns pair i's current path when the phase may use it (in
// service, within the delay bound), else nil.
func (im *improver) curOf(i int) Path {
	if !im.curSet[i] {
		im.curSet[i] = true
		s, st := im.st.s, im.st
		if c, ok := s.CurrentPaths[im.plans[i].Pair]; ok && len(c) == st.m+2 && st.usable(c) && DelayOf(s.Delay, c) <= s.DelayBound+eps {
			im.cur[i] = c
		}
	}
	return im.cur[i]
}

// run repeats passes until one improves nothing or the budget is spent.
func (im *improver) run() {
	for im.budgetLeft() {
		im.rep.Passes++
		if !im.pass() {
			im.rep.Converged = im.budgetLeft()
			return
		}
	}
}

// cell is a DC/stage that added instances, with the unused capacity of its
// last instance as a fraction of one instance.
type cell struct {
	idx   int // d·m + k
	waste float64
}

// pass visits every cell that added instances, most unused capacity first:
// single moves of the pairs through it, then a group move on it. It reports
// whether the round's cost fell.
func (im *improver) pass() bool {
	st := im.st
	var cells []cell
	for d := 0; d < st.n; d++ {
		for k := 0; k < st.m; k++ {
			if st.added[d][k] > 0 {
				cells = append(cells, cell{d*st.m + k, st.avail[d][k] / st.s.Stages[k].Capacity})
			}
		}
	}
	sort.SliceStable(cells, func(i, j int) bool { return cells[i].waste > cells[j].waste })
	// members[c] lists the movable pairs through cell c, smallest workload
	// first (ties by processing order); paths change during the pass, so a
	// member is checked again before it is used.
	members := make([][]int, st.n*st.m)
	grew := make([]bool, st.n*st.m)
	for _, c := range cells {
		grew[c.idx] = true
	}
	for i := range im.plans {
		if i%stopEvery == 0 && st.stop.stopped() {
			return false
		}
		st.stop.visited(1)
		if !im.move[i] {
			continue
		}
		p := im.plans[i].Path
		for k := 0; k < st.m; k++ {
			if c := p[k+1]*st.m + k; grew[c] {
				members[c] = append(members[c], i)
			}
		}
	}
	improved := false
	for _, c := range cells {
		ms := members[c.idx]
		sort.SliceStable(ms, func(a, b int) bool { return im.plans[ms[a]].Workload < im.plans[ms[b]].Workload })
		for _, i := range ms {
			if !im.budgetLeft() {
				return improved
			}
			if im.through(i, c.idx) && im.single(i) {
				improved = true
			}
		}
		d, k := c.idx/st.m, c.idx%st.m
		if st.added[d][k] == 0 {
			continue
		}
		var g []int
		for _, i := range ms {
			if len(g) < im.group && im.through(i, c.idx) {
				g = append(g, i)
			}
		}
		if len(g) == 0 || im.work+len(g) > im.max {
			continue
		}
		if !im.budgetLeft() { // stopped: no group move's searches either
			return improved
		}
		if im.groupMove(g, c.idx) {
			improved = true
		}
	}
	return improved
}

// through reports whether pair i's path places stage k in DC d (c = d·m+k).
func (im *improver) through(i, c int) bool {
	m := im.st.m
	return im.plans[i].Path[c%m+1] == c/m
}

// find searches pair i on the state as it is (work: one search).
func (im *improver) find(i int) result {
	im.work++
	im.st.stop.searched()
	p := &im.plans[i]
	if im.exact {
		return im.se.exact(p.Pair, p.Workload)
	}
	return im.se.alg2(p.Pair, p.Workload)
}

// usableResult reports whether a search result may replace a path: finite
// cost, within the delay bound.
func (im *improver) usableResult(r result) bool {
	return len(r.path) == im.st.m+2 && !r.cost.inf() && r.delay <= im.st.s.DelayBound+eps
}

// single moves pair i when that makes the round strictly cheaper, or puts it
// on its current path when that costs the same. It reports a strict gain.
func (im *improver) single(i int) bool {
	st := im.st
	p := &im.plans[i]
	old := p.Path
	st.remove(old, p.Workload)
	r := im.find(i)
	oldC := st.pathCost(old, p.Workload)
	best, bestC, bestR := old, oldC, false
	if im.usableResult(r) && r.cost.less(bestC) {
		best, bestC, bestR = r.path, r.cost, true
	}
	if c := im.curOf(i); c != nil && !c.Equal(best) {
		if cc := st.pathCost(c, p.Workload); !cc.inf() && !bestC.less(cc) {
			best, bestC, bestR = c, cc, false
		}
	}
	gain := bestC.less(oldC)
	st.commit(best, p.Workload)
	if !best.Equal(old) {
		im.setPath(i, best, bestR, r)
		if gain {
			im.rep.SingleMoves++
		}
	}
	return gain
}

// setPath records pair i's new path.
func (im *improver) setPath(i int, p Path, fromSearch bool, r result) {
	pl := &im.plans[i]
	if _, ok := im.orig[i]; !ok {
		im.orig[i] = *pl
	}
	im.changed = true
	pl.Path = append(Path(nil), p...)
	pl.Delay = DelayOf(im.st.s.Delay, pl.Path)
	pl.Method = MethodJoint
	if c := im.curOf(i); c != nil && c.Equal(p) {
		pl.Method = MethodKept
	}
	if fromSearch {
		pl.Candidates, pl.LoopsEliminated, pl.LoopMerged = r.candidates, r.loops, r.merged
	}
}

// groupMove takes the pairs g off, forbids cell c to add instances and
// places them again, largest workload first. It keeps the result when the
// round costs strictly less, else restores the paths.
func (im *improver) groupMove(g []int, c int) bool {
	st := im.st
	before := st.tot
	old := make([]Path, len(g))
	for j, i := range g {
		old[j] = im.plans[i].Path
		st.remove(old[j], im.plans[i].Workload)
	}
	order := append([]int(nil), g...)
	sort.SliceStable(order, func(a, b int) bool { return im.plans[order[a]].Workload > im.plans[order[b]].Workload })
	st.tabu = c
	newP := map[int]Path{}
	res := map[int]result{}
	for _, i := range order {
		q := im.plans[i].Workload
		r := im.find(i)
		p := r.path
		if !im.usableResult(r) {
			st.tabu = -1 // no way around the cell: back on the old path
			p = im.pathOf(g, old, i)
			st.tabu = c
		}
		st.commit(p, q)
		newP[i], res[i] = p, r
	}
	st.tabu = -1
	if st.tot.less(before) {
		im.rep.GroupMoves++
		for _, i := range g {
			if p := newP[i]; !p.Equal(im.plans[i].Path) {
				im.setPath(i, p, true, res[i])
			}
		}
		return true
	}
	for _, i := range order {
		st.remove(newP[i], im.plans[i].Workload)
	}
	for j, i := range g {
		st.commit(old[j], im.plans[i].Workload)
	}
	return false
}

func (im *improver) pathOf(g []int, old []Path, i int) Path {
	for j, x := range g {
		if x == i {
			return old[j]
		}
	}
	return im.plans[i].Path
}
