package placement

// result is the path chosen for one pair.
type result struct {
	path       Path
	cost       cost
	delay      float64
	method     Method
	candidates int
	loops      int // loops eliminated
	merged     int // of which by approach 1 (merge)
}

// search holds the per-round scratch space of Alg. 2, the exact solver and
// the shortest-delay fallback, so a round allocates little per pair.
type search struct {
	st   *state
	topK int
	// top[k] lists the DCs with the largest rankKey for stage k, best first
	// (ties by DC index), excluding the current pair's exit.
	top [][]int
	rec Path
	alt Path
	// sp caches hop-limited shortest-delay paths per entry DC.
	sp map[int]*hopSP
	// paperOnly turns off the extra route candidates (Options.PaperOnly).
	paperOnly bool
	route     []int
	mark      []bool
	tset      []int
	m         int // stages (= st.m, kept here so c stays inlinable)
	// tab[d*m+k] caches stageCost(d, k, q) for the pair being searched when
	// tabGen[d*m+k] == gen.
	tab    []cost
	tabGen []uint32
	gen    uint32
	q      float64
	dp     dpScratch
	p1     Path
	p2     Path
	path   Path
	suf    []cost
	preE   []cost
	// lb bounds the cost of any path of the pair from below (each stage at its
	// cheapest DC); a candidate that reaches it cannot be beaten.
	lb cost
	// lbRest is the lower bound of stages 2..m alone.
	lbRest cost
	// entryTop: the entry is the top-ranked DC of some stage 2..m, so a loop
	// can lead back to it.
	entryTop bool
	entry    int
	noPrune  bool // tests: turn the pruning off to prove it changes nothing
	// topC[k] = c(top[k][0], k)
	topC []cost
	// loop detection: seen[d] == stamp when DC d is in the record, at its
	// last position at[d]
	seen  []uint32
	at    []int
	stamp uint32
	// Generic v (see alg2): inS marks the DCs whose v needs the full scan;
	// gen* hold, per x, what the first generic v's candidate was without its
	// own stage-1 cost and first two hops.
	inS       []uint32    // == gen when in S
	genOK     bool        // the first generic v was scanned
	genCost   []cost      // [x] cost of rec[2..x] + suf[x]
	genHops   [][]float64 // [x] delays rec[2]→rec[3] … rec[x−1]→rec[x]
	genTail   []float64   // [x] delay rec[x]→exit
	genRec    [][]int     // [x] rec[2..x]
	genLoops  int
	genMerged int
	genMin    cost // the least genCost[x]
	noGeneric bool // tests: scan every v in full
	// dT is the delay matrix transposed (dT[j][i] = Delay[i][j]): the generic
	// scan reads delays into a fixed DC from every v, a row here.
	dT [][]float64
}

func newSearch(st *state) *search {
	k := min(st.m+3, st.n)
	s := &search{st: st, m: st.m, topK: k, top: make([][]int, st.m), rec: make(Path, st.m+2), alt: make(Path, st.m+2), sp: map[int]*hopSP{},
		mark: make([]bool, st.n), route: make([]int, 0, 4), topC: make([]cost, st.m), inS: make([]uint32, st.n),
		genCost: make([]cost, st.m+1), genHops: make([][]float64, st.m+1), genTail: make([]float64, st.m+1), genRec: make([][]int, st.m+1), seen: make([]uint32, st.n), at: make([]int, st.n), tab: make([]cost, st.n*st.m), tabGen: make([]uint32, st.n*st.m),
		p1: make(Path, st.m+2), p2: make(Path, st.m+2), path: make(Path, st.m+2),
		suf: make([]cost, st.m+1), preE: make([]cost, st.m+1)}
	for i := range s.top {
		s.top[i] = make([]int, 0, k)
	}
	d := st.s.Delay
	s.dT = make([][]float64, st.n)
	for j := range s.dT {
		s.dT[j] = make([]float64, st.n)
		for i := range d {
			s.dT[j][i] = d[i][j]
		}
	}
	return s
}

// prepare fills the pair's cost table for workload q and, for every stage,
// top[k]: the DCs other than the exit with the largest rankKey, best first
// (ties by DC index).
func (s *search) prepare(entry, exit int, q float64) {
	st := s.st
	s.entry = entry
	m := st.m
	s.q = q
	s.gen++
	if s.gen == 0 { // wrapped: every stamp is stale anyway
		clear(s.tabGen)
		s.gen = 1
	}
	// Lower bound: created instances fall as rankKey grows, added instances
	// as available working capacity grows, so each stage's best DC on each
	// ranking gives the least it can cost.
	// stage 1 of every DC: every v of Alg. 2 needs it, so fill the column at once
	for d := 0; d < st.n; d++ {
		s.tab[d*m] = st.stageCost(d, 0, q)
		s.tabGen[d*m] = s.gen
	}
	if st.excl != nil {
		s.drainCosts()
	}
	s.lb = cost{}
	for k := 0; k < m; k++ {
		l := cost{s.c(st.byRank[k].order[0], k).Created, s.c(st.byAvail[k].order[0], k).Added}
		s.lb = s.lb.plus(l)
		if k == 0 {
			s.lbRest = cost{}
		} else {
			s.lbRest = s.lbRest.plus(l)
		}
	}
	if st.room != nil || st.tabu >= 0 {
		// a best-ranked DC may be at its limit (+∞): no cheap lower bound
		s.lb, s.lbRest = cost{}, cost{}
	}
	for k := 0; k < m; k++ {
		t := s.top[k][:0]
		for _, d := range st.byRank[k].order {
			if len(t) == s.topK {
				break
			}
			if d != exit {
				t = append(t, d)
			}
		}
		s.top[k] = t
		s.topC[k] = s.c(t[0], k)
	}
	s.entryTop = false
	for k := 1; k < m; k++ {
		s.entryTop = s.entryTop || s.top[k][0] == s.entry
	}
}

// c is stageCost(d, k, q) for the pair being searched, computed on first use.
func (s *search) c(d, k int) cost {
	i := d*s.m + k
	if s.tabGen[i] == s.gen {
		return s.tab[i]
	}
	return s.fill(i, d, k)
}

func (s *search) fill(i, d, k int) cost {
	s.tab[i] = s.st.stageCost(d, k, s.q)
	s.tabGen[i] = s.gen
	return s.tab[i]
}

// cost of path p.
func (s *search) cost(p Path) cost {
	var c cost
	for k := 0; k < s.st.m; k++ {
		c = c.plus(s.c(p[k+1], k))
	}
	return c
}

// routeTop is how many of each stage's best-ranked DCs may be the middle
// DCs of the 4-DC route candidates.
const routeTop = 2

// candidate keeps the best delay-feasible candidate seen so far (Alg. 2
// lines 11-12): fewer instances to create wins; ties go to fewer instances
// added in all, then to the lower delay, then to the first found.
type candidate struct {
	ok    bool
	path  Path
	cost  cost
	delay float64
	m     Method
	// drain: some DC is excluded, so a candidate may cost infinitely (a
	// stage in a drained DC) and must then be refused.
	drain bool
}

func (c *candidate) offer(p Path, co cost, delay, bound float64, m Method) bool {
	if !c.beats(co, delay, bound) {
		return false
	}
	c.set(p, co, delay, m)
	return true
}

// beats reports whether a candidate of cost co and delay would replace c.
func (c *candidate) beats(co cost, delay, bound float64) bool {
	if delay > bound+eps || (c.drain && co.inf()) {
		return false
	}
	return !c.ok || co.less(c.cost) || (co == c.cost && delay < c.delay-eps)
}

func (c *candidate) set(p Path, co cost, delay float64, m Method) {
	c.ok = true
	c.path = append(c.path[:0], p...)
	c.cost = co
	c.delay = delay
	c.m = m
}

// fill writes the candidate of Alg. 2 lines 9-10 into dst: rec[0..x], then
// the exit for every later position.
func fill(dst, rec Path, x, exit int) Path {
	copy(dst, rec[:x+1])
	for i := x + 1; i < len(dst); i++ {
		dst[i] = exit
	}
	return dst
}

// loopAt reports the position j < x−1 where rec[x] was already visited before
// rec[x−1], or −1 when appending rec[x] keeps rec[0..x] loopless (rec[0..x−1]
// is loopless).
func loopAt(rec Path, x int) int {
	d := rec[x]
	if d == rec[x-1] {
		return -1
	}
	for j := x - 2; j >= 0; j-- {
		if rec[j] == d {
			return j
		}
	}
	return -1
}

// alg2 is Alg. 2 (path computation) for pair pr with workload q.
func (s *search) alg2(pr Pair, q float64) result {
	st := s.st
	m, entry, exit := st.m, pr.Entry, pr.Exit
	bound := st.s.DelayBound
	delay := st.s.Delay
	s.prepare(entry, exit, q)
	best := candidate{drain: st.strict()}
	var r result
	path := s.path
	// suf[k] = cost of stages k..m−1 at the exit (the tail of every candidate)
	suf := s.suf
	suf[m] = cost{}
	for k := m - 1; k >= 0; k-- {
		suf[k] = suf[k+1].plus(s.c(exit, k))
	}
	// Generic v: when no loop can lead back to the entry (!entryTop), a v
	// that is neither the entry, the exit nor in any ranking of stages 2..m
	// can never close or break a loop, so its record rec[2..m] and the loop
	// eliminations on it are the same as for every other such v; only its
	// stage-1 cost and the hops entry→v→rec[2] differ. The first one is
	// scanned in full and remembered; the others reuse it in O(m) (same
	// candidates, same order: TestGenericVChangesNoPath).
	generic := !s.entryTop && !s.noGeneric && m >= 2
	s.genOK = false
	if generic {
		s.inS[entry], s.inS[exit] = s.gen, s.gen
		for k := 1; k < m; k++ {
			for _, d := range s.top[k] {
				s.inS[d] = s.gen
			}
		}
	}
	for v := 0; v < st.n; v++ { // line 2
		if v == exit || (st.excl != nil && st.excl[v]) {
			continue
		}
		isGeneric := generic && s.inS[v] != s.gen
		// Every candidate of this v costs at least c(v,0) + lbRest (lines
		// 9-14 alike) unless a loop back to the entry merges v away: when
		// that cannot happen and the bound already loses to the best, no
		// candidate of v can win, so skipping v changes no result.
		if lo := s.c(v, 0).plus(s.lbRest); best.ok && !s.entryTop && !s.noPrune && best.cost.less(lo) {
			continue
		}
		if isGeneric && s.genOK {
			// most generic v lose on instances outright: count their
			// candidates without the call
			if cv := s.c(v, 0); best.ok && best.cost.less(cv.plus(s.genMin)) && best.cost.less(cv.plus(suf[1])) {
				r.candidates += m
				r.loops += s.genLoops
				r.merged += s.genMerged
				continue
			}
			s.genericCandidates(v, entry, exit, &best, &r)
			continue
		}
		loops0, merged0 := r.loops, r.merged
		rec := s.rec
		rec[0], rec[1], rec[m+1] = entry, v, exit // line 3
		// at[d] = last position of DC d in rec[0..x−1] while seen[d] == stamp
		s.stamp++
		s.seen[entry], s.at[entry] = s.stamp, 0
		s.seen[v], s.at[v] = s.stamp, 1
		pre := s.c(v, 0) // cost of rec[1..x]
		// preD is the delay of rec[0..upTo]; it is brought up to date only
		// when a candidate's cost can still win, since most candidates lose
		// on cost and the delay matrix lookups are the expensive part.
		preD, upTo := delay[entry][v], 1
		for x := 2; x <= m; x++ { // line 4
			k := x - 1       // 0-based stage index of paper stage x
			d := s.top[k][0] // lines 5-6: largest available capacity, not the exit
			rec[x] = d
			if s.seen[d] == s.stamp && d != rec[x-1] { // lines 7-8: loop elimination
				j := s.at[d]
				r.loops++
				if s.eliminate(rec, x, j, k, q, exit) {
					r.merged++
				}
				pre = cost{}
				preD, upTo = 0, 0
				s.stamp++
				s.seen[entry], s.at[entry] = s.stamp, 0
				for i := 1; i <= x; i++ {
					pre = pre.plus(s.c(rec[i], i-1))
					s.seen[rec[i]], s.at[rec[i]] = s.stamp, i
				}
			} else {
				pre = pre.plus(s.topC[k])
				s.seen[d], s.at[d] = s.stamp, x
			}
			// lines 9-12: candidate rec[0..x] + exit…exit
			r.candidates++
			co := pre.plus(suf[x])
			if isGeneric && !s.genOK { // the first generic v: remember what every other one shares
				g := cost{}
				hops := s.genHops[x][:0]
				for i := 2; i <= x; i++ {
					g = g.plus(s.c(rec[i], i-1))
					if i < x {
						hops = append(hops, delay[rec[i]][rec[i+1]])
					}
				}
				s.genCost[x], s.genHops[x], s.genTail[x] = g.plus(suf[x]), hops, delay[rec[x]][exit]
				s.genRec[x] = append(s.genRec[x][:0], rec[2:x+1]...)
			}
			if best.ok && best.cost.less(co) {
				continue // loses on instances whatever its delay
			}
			for ; upTo < x; upTo++ {
				preD += delay[rec[upTo]][rec[upTo+1]]
			}
			if dd := preD + delay[rec[x]][exit]; best.beats(co, dd, bound) {
				best.set(fill(path, rec, x, exit), co, dd, MethodAlg2)
			}
		}
		if isGeneric && !s.genOK {
			s.genLoops, s.genMerged, s.genOK = r.loops-loops0, r.merged-merged0, true
			s.genMin = s.genCost[2]
			for x := 3; x <= m; x++ {
				if s.genCost[x].less(s.genMin) {
					s.genMin = s.genCost[x]
				}
			}
		}
		// line 13-14: (entry, v, exit, ..., exit)
		r.candidates++
		if c := s.c(v, 0).plus(suf[1]); !best.ok || !best.cost.less(c) {
			if d := delay[entry][v] + delay[v][exit]; best.beats(c, d, bound) {
				path[0], path[1] = entry, v // rec[1] may have been merged away: line 13 uses v
				best.set(fill(path, path, 1, exit), c, d, MethodAlg2Extra)
			}
		}
	}
	// lines 15-17: every stage at the exit, every stage at the entry.
	fill(path, Path{entry}, 0, exit)
	r.candidates++
	best.offer(path, s.cost(path), DelayOf(delay, path), bound, MethodAlg2Extra)
	for i := 0; i <= m; i++ {
		path[i] = entry
	}
	path[m+1] = exit
	r.candidates++
	best.offer(path, s.cost(path), DelayOf(delay, path), bound, MethodAlg2Extra)

	// The route candidates are there to save instances: they run unless the
	// best candidate already needs the fewest instances any path can.
	if !s.paperOnly && !(best.ok && best.cost == s.lb) {
		r.candidates += s.routeCandidates(pr, q, &best)
	}

	if !best.ok { // lines 18-20
		sr := s.shortestDP(pr, q)
		sr.candidates += r.candidates
		sr.loops, sr.merged = r.loops, r.merged
		return sr
	}
	r.path, r.cost, r.delay, r.method = append(Path(nil), best.path...), best.cost, best.delay, best.m
	return r
}

// genericCandidates offers the candidates of a generic v (see alg2) from the
// first generic v's scan: the same records, costs and delays but for v's own
// stage-1 cost and hops entry→v→rec[2], summed in the order the full scan sums
// them, in the same candidate order.
func (s *search) genericCandidates(v, entry, exit int, best *candidate, r *result) {
	m := s.st.m
	delay := s.st.s.Delay
	bound := s.st.s.DelayBound
	cv := s.c(v, 0)
	a, haveA := 0.0, false // entry→v→rec[2], read only when a candidate can still win
	r.loops += s.genLoops
	r.merged += s.genMerged
	p := s.path
	// cost order is translation invariant: if v's cheapest candidate loses on
	// instances, all of them do
	from := 2
	if best.ok && best.cost.less(cv.plus(s.genMin)) {
		r.candidates += m - 1
		from = m + 1
	}
	for x := from; x <= m; x++ {
		r.candidates++
		co := cv.plus(s.genCost[x])
		if best.ok && best.cost.less(co) {
			continue
		}
		if !haveA {
			a, haveA = delay[entry][v]+s.dT[s.genRec[2][0]][v], true
		}
		dd := a
		for _, h := range s.genHops[x] {
			dd += h
		}
		dd += s.genTail[x]
		if best.beats(co, dd, bound) {
			p[0], p[1] = entry, v
			copy(p[2:], s.genRec[x])
			best.set(fill(p, p, x, exit), co, dd, MethodAlg2)
		}
	}
	// line 13-14: (entry, v, exit, ..., exit)
	r.candidates++
	if c := cv.plus(s.suf[1]); !best.ok || !best.cost.less(c) {
		if d := delay[entry][v] + s.dT[exit][v]; best.beats(c, d, bound) {
			p[0], p[1] = entry, v
			best.set(fill(p, p, 1, exit), c, d, MethodAlg2Extra)
		}
	}
}

// eliminate removes the loop that rec[x] closes with rec[j] (paper 5.2, Loop
// Elimination) by the better of the two approaches, writing the result into
// rec[0..x]. Approach 1 merges the stages inside the loop into rec[x]'s DC
// (1,2,4,2 → 1,2,2,2); approach 2 picks, for stage x, the DC with the largest
// capacity that closes no loop (1,2,4,2 → 1,2,4,3). The one whose candidate
// path needs fewer new instances wins (then lower delay; approach 1 on a tie).
// It reports whether approach 1 was kept.
func (s *search) eliminate(rec Path, x, j, k int, q float64, exit int) bool {
	st := s.st
	// approach 2 into alt
	alt := s.alt
	copy(alt, rec[:x+1])
	alt[x] = rec[x-1] // staying put never loops; improve on it from the ranking
	for _, d := range s.top[k] {
		alt[x] = d
		if loopAt(alt, x) < 0 {
			break
		}
		alt[x] = rec[x-1]
	}
	// approach 1 in place
	for i := j + 1; i < x; i++ {
		rec[i] = rec[x]
	}
	p1 := fill(s.p1, rec, x, exit)
	p2 := fill(s.p2, alt, x, exit)
	c1, c2 := s.cost(p1), s.cost(p2)
	d1, d2 := DelayOf(st.s.Delay, p1), DelayOf(st.s.Delay, p2)
	if c2.less(c1) || (c2 == c1 && d2 < d1-eps) {
		copy(rec[:x+1], alt[:x+1])
		return false
	}
	return true
}

// routeCandidates adds the project's candidates beyond the paper: the
// stage-placement DP of Eq. (2)–(3) run on short DC routes, which finds the
// best arrangement of the stages along each route — e.g. (e,v,v,x,x), which
// Alg. 2 never generates. Routes: (e,x); (e,v,x) for every v; (e,a,b,x) for
// a, b among the DCs ranked best for some stage. Routes over the delay bound
// are skipped. It returns how many routes it evaluated.
func (s *search) routeCandidates(pr Pair, q float64, best *candidate) int {
	st := s.st
	e, x := pr.Entry, pr.Exit
	dl, bound := st.s.Delay, st.s.DelayBound
	n := 0
	try := func(route []int) {
		d := 0.0
		for i := 1; i < len(route); i++ {
			d += dl[route[i-1]][route[i]]
		}
		if d > bound+eps || len(route) > st.m+2 {
			return
		}
		n++
		if c := s.dp.place(route, st.m, s, s.p1); !c.inf() {
			best.offer(s.p1, c, d, bound, MethodAlg2Extra)
		}
	}
	try(append(s.route[:0], e, x))
	// (e,v,x) for every v, in closed form: stages [0,a) on e, [a,b) on v
	// (at least one), [b,m) on x; this is what the DP computes on the route.
	m := st.m
	preE, suf := s.preE, s.suf
	preE[0] = cost{}
	for k := 0; k < m; k++ {
		preE[k+1] = preE[k].plus(s.c(e, k))
	}
	for v := 0; v < st.n; v++ {
		if v == e || v == x || st.excluded(v) {
			continue
		}
		d := dl[e][v] + dl[v][x]
		if d > bound+eps {
			continue
		}
		n++
		// for each b, the best a < b: min over a of preE[a] + V(a..b)
		var bestC cost
		bestA, bestB := -1, -1
		for a := 0; a < m; a++ {
			vc := cost{}
			for b := a + 1; b <= m; b++ {
				vc = vc.plus(s.c(v, b-1))
				c := preE[a].plus(vc).plus(suf[b])
				if bestA < 0 || c.less(bestC) {
					bestC, bestA, bestB = c, a, b
				}
			}
		}
		if best.beats(bestC, d, bound) {
			p := s.p1
			p[0], p[m+1] = e, x
			for k := 0; k < m; k++ {
				switch {
				case k < bestA:
					p[k+1] = e
				case k < bestB:
					p[k+1] = v
				default:
					p[k+1] = x
				}
			}
			best.set(p, bestC, d, MethodAlg2Extra)
		}
	}
	if st.m < 2 {
		return n
	}
	// T: the DCs ranked best for some stage, without entry and exit.
	t := s.tset[:0]
	for k := range s.top {
		for _, d := range s.top[k][:min(routeTop, len(s.top[k]))] {
			if d != e && d != x && !s.mark[d] && !st.excluded(d) {
				s.mark[d] = true
				t = append(t, d)
			}
		}
	}
	for _, d := range t {
		s.mark[d] = false
	}
	s.tset = t
	for _, a := range t {
		for _, b := range t {
			if a != b {
				try(append(s.route[:0], e, a, b, x))
			}
		}
	}
	return n
}
