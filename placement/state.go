package placement

import (
	"math"
	"sort"
)

// eps absorbs float rounding in capacity comparisons (packets/s).
const eps = 1e-9

// cost is what a path costs in instances. Paths compare by Created (instances
// that must boot), then Added (instances added in all, buffer reuse included).
// With Options.IgnoreBuffer, Created equals Added, as in the paper.
type cost struct {
	Created, Added int
}

func (a cost) plus(b cost) cost { return cost{a.Created + b.Created, a.Added + b.Added} }

func (a cost) less(b cost) bool {
	if a.Created != b.Created {
		return a.Created < b.Created
	}
	return a.Added < b.Added
}

var infCost = cost{math.MaxInt32, math.MaxInt32}

func (a cost) inf() bool { return a.Created >= math.MaxInt32 }

// state is the mutable working copy of one round: the capacity still
// available on each VNF in each DC, instances added and buffered instances not
// yet reused.
type state struct {
	s         *Snapshot
	n, m      int
	ignoreBuf bool
	// excl[d] marks a drained DC (Snapshot.Excluded); nil when none is, so a
	// round without exclusions takes exactly the code paths it always took.
	excl []bool

	avail   [][]float64 // [dc][stage] working capacity not yet used by placed pairs
	added   [][]int     // [dc][stage] instances added this round (reused + created)
	bufLeft [][]int     // [dc][stage] buffered instances not yet reused
	load    [][]float64 // [dc][stage] placed load, reserved capacity included
	// room[d][k] is how many instances stage k in DC d may still add this
	// round (Snapshot.Headroom); nil when nothing is limited. It may go
	// negative when a pair with no path inside the limits had to exceed it.
	room [][]int
	// limitsOff lets stageCost ignore room: the search's second try for a
	// pair that no path inside the limits can serve.
	limitsOff bool
	// tabu is the cell d·m+k that may add no instance (the improvement
	// phase's neighbourhood move); −1: none.
	tabu int
	// tot is what the committed paths cost: instances created and added
	// over every DC and stage (the objective of the improvement phase).
	tot cost
	// stop ends the plan between two searches (cancel.go; nil: never).
	stop *stopper

	// byRank[k] orders the DCs by rankKey for stage k, byAvail[k] by available
	// working capacity alone; commit keeps both sorted.
	byRank, byAvail []*ranking
}

// ranking lists every DC by descending key, ties by DC index.
type ranking struct {
	order, pos []int
	key        []float64
}

func newRanking(key []float64) *ranking {
	r := &ranking{order: make([]int, len(key)), pos: make([]int, len(key)), key: key}
	for d := range r.order {
		r.order[d] = d
	}
	sort.SliceStable(r.order, func(i, j int) bool { return key[r.order[i]] > key[r.order[j]] })
	for i, d := range r.order {
		r.pos[d] = i
	}
	return r
}

func (r *ranking) ahead(a, b int) bool {
	ka, kb := r.key[a], r.key[b]
	return ka > kb || (ka == kb && a < b)
}

// update sets d's key and moves d to its place.
func (r *ranking) update(d int, key float64) {
	r.key[d] = key
	o, pos := r.order, r.pos
	i := pos[d]
	for i > 0 && r.ahead(d, o[i-1]) {
		o[i] = o[i-1]
		pos[o[i]] = i
		i--
	}
	for i < len(o)-1 && r.ahead(o[i+1], d) {
		o[i] = o[i+1]
		pos[o[i]] = i
		i++
	}
	o[i] = d
	pos[d] = i
}

func newState(s *Snapshot, ignoreBuf bool) *state {
	st := newCountState(s, ignoreBuf)
	st.byRank = make([]*ranking, st.m)
	st.byAvail = make([]*ranking, st.m)
	for k := 0; k < st.m; k++ {
		rk, av := make([]float64, s.N), make([]float64, s.N)
		for d := 0; d < s.N; d++ {
			rk[d], av[d] = st.rankKey(d, k), st.avail[d][k]
			if st.excluded(d) { // drained DCs rank last: never a best DC
				rk[d], av[d] = math.Inf(-1), math.Inf(-1)
			}
		}
		st.byRank[k], st.byAvail[k] = newRanking(rk), newRanking(av)
	}
	return st
}

// newCountState is a state that only counts (commit, overLimit): without the
// DC rankings a search needs, so committing is cheaper (the improvement
// phase's final rebuild).
func newCountState(s *Snapshot, ignoreBuf bool) *state {
	st := &state{s: s, n: s.N, m: len(s.Stages), ignoreBuf: ignoreBuf, excl: excludedSet(s), tabu: -1}
	st.avail = make([][]float64, s.N)
	st.added = make([][]int, s.N)
	st.bufLeft = make([][]int, s.N)
	st.load = make([][]float64, s.N)
	for d := 0; d < s.N; d++ {
		st.avail[d] = make([]float64, st.m)
		st.added[d] = make([]int, st.m)
		st.bufLeft[d] = make([]int, st.m)
		st.load[d] = make([]float64, st.m)
		for k := 0; k < st.m; k++ {
			p := s.DP[d][k]
			st.avail[d][k] = float64(p.Working)*s.Stages[k].Capacity - p.Reserved
			st.bufLeft[d][k] = p.Buffered
			st.load[d][k] = p.Reserved
		}
	}
	st.room = headroomOf(s)
	return st
}

// need returns how many instances stage k in DC d must add to carry q more:
// ⌈(Q − Q')/C⌉ when Q > Q', else 0.
func need(q, avail, capacity float64) int {
	if q <= avail+eps {
		return 0
	}
	return int(math.Ceil((q-avail)/capacity - eps))
}

// stageCost is the cost of placing workload q on stage k in DC d.
// It knows nothing of drained DCs: the search's cost table (search.c) makes
// theirs infinite, and the exact solver skips them.
func (st *state) stageCost(d, k int, q float64) cost {
	n := need(q, st.avail[d][k], st.s.Stages[k].Capacity)
	if n == 0 {
		return cost{}
	}
	if (st.room != nil && !st.limitsOff && n > st.room[d][k]) || (st.tabu >= 0 && d*st.m+k == st.tabu) {
		return infCost
	}
	if st.ignoreBuf {
		return cost{n, n}
	}
	r := min(n, st.bufLeft[d][k])
	return cost{n - r, n}
}

// fits reports whether every stage of p has q capacity available already.
func (st *state) fits(p Path, q float64) bool {
	for k := 0; k < st.m; k++ {
		if st.avail[p[k+1]][k]+eps < q {
			return false
		}
	}
	return true
}

// commit places q on path p: adds the instances that are short (reusing the
// buffer first) and takes q from the available capacity. It returns the
// instances added and, of those, created.
func (st *state) commit(p Path, q float64) (added, created int) {
	for k := 0; k < st.m; k++ {
		d := p[k+1]
		c := st.s.Stages[k].Capacity
		if n := need(q, st.avail[d][k], c); n > 0 {
			r := min(n, st.bufLeft[d][k])
			st.bufLeft[d][k] -= r
			st.added[d][k] += n
			st.avail[d][k] += float64(n) * c
			added += n
			created += n - r
			if st.room != nil {
				st.room[d][k] -= n
			}
		}
		st.avail[d][k] -= q
		st.load[d][k] += q
		if st.byRank != nil {
			st.byRank[k].update(d, st.rankKey(d, k))
			st.byAvail[k].update(d, st.avail[d][k])
		}
	}
	st.tot = st.tot.plus(cost{created, added})
	return added, created
}

// remove takes q off path p again (the improvement phase re-routes a pair):
// the load goes, and so do the instances the remaining load no longer needs
// (the last ones added, which are the created ones before the reused ones:
// reuse comes first). It returns the instances freed and, of those, created.
func (st *state) remove(p Path, q float64) (freed, created int) {
	for k := 0; k < st.m; k++ {
		d := p[k+1]
		c := st.s.Stages[k].Capacity
		st.load[d][k] -= q
		st.avail[d][k] += q
		if a := st.added[d][k]; a > 0 {
			// instances still needed: the least count that keeps avail ≥ 0
			keep := a - int(math.Floor(st.avail[d][k]/c+eps))
			keep = max(0, min(a, keep))
			if f := a - keep; f > 0 {
				buf := st.s.DP[d][k].Buffered
				reusedBefore, reusedAfter := min(a, buf), min(keep, buf)
				st.bufLeft[d][k] += reusedBefore - reusedAfter
				st.added[d][k] = keep
				st.avail[d][k] -= float64(f) * c
				freed += f
				created += (a - reusedBefore) - (keep - reusedAfter)
				if st.room != nil {
					st.room[d][k] += f
				}
			}
		}
		st.byRank[k].update(d, st.rankKey(d, k))
		st.byAvail[k].update(d, st.avail[d][k])
	}
	st.tot = cost{st.tot.Created - created, st.tot.Added - freed}
	return freed, created
}

// rankKey is the capacity Alg. 2 ranks DCs by for a stage: the available
// working capacity, plus the capacity of buffered instances unless the
// buffer is ignored (a buffered instance serves without a boot).
func (st *state) rankKey(d, k int) float64 {
	a := st.avail[d][k]
	if !st.ignoreBuf {
		a += float64(st.bufLeft[d][k]) * st.s.Stages[k].Capacity
	}
	return a
}

func ceilDiv(load, capacity float64) int {
	if load <= eps {
		return 0
	}
	return int(math.Ceil(load/capacity - eps))
}
