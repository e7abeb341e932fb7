package placement

import "math"

func add(a, b cost) cost {
	if a.inf() || b.inf() {
		return infCost
	}
	return a.plus(b)
}

// hopSP holds hop-limited shortest-delay walks from one source: dist[h][v] is
// the least delay from the source to v in at most h hops, par[h][v] the DC
// before v on that walk, or −1 when the walk has fewer than h hops.
type hopSP struct {
	dist [][]float64
	par  [][]int
}

// shortestFrom runs a hop-limited Bellman-Ford from src with at most maxHops
// hops. A path of m stages can visit at most m DCs besides entry and exit
// (restriction 1 of 5.2), so maxHops = m+1 finds the least delay any valid
// service-chain path can have. Strict improvement only, so ties keep fewer
// hops and zero-delay cycles are never taken: the walks are simple paths. A
// drained DC (excl, nil: none) other than src is never an intermediate DC of a
// walk: it would have to host a stage.
func shortestFrom(delay [][]float64, excl []bool, src, maxHops int) *hopSP {
	n := len(delay)
	sp := &hopSP{dist: make([][]float64, maxHops+1), par: make([][]int, maxHops+1)}
	for h := range sp.dist {
		sp.dist[h] = make([]float64, n)
		sp.par[h] = make([]int, n)
		for v := range sp.dist[h] {
			sp.dist[h][v] = math.Inf(1)
			sp.par[h][v] = -1
		}
	}
	sp.dist[0][src] = 0
	for h := 1; h <= maxHops; h++ {
		prev, cur, par := sp.dist[h-1], sp.dist[h], sp.par[h]
		copy(cur, prev)
		for u := 0; u < n; u++ {
			du := prev[u]
			if math.IsInf(du, 1) || (excl != nil && excl[u] && u != src) {
				continue
			}
			row := delay[u]
			for v := 0; v < n; v++ {
				if v != u && du+row[v] < cur[v] {
					cur[v] = du + row[v]
					par[v] = u
				}
			}
		}
	}
	return sp
}

// route returns the DC route (entry … exit, no repeats) of the shortest walk
// of at most h hops.
func (sp *hopSP) route(src, dst, h int) []int {
	var rev []int
	v := dst
	for h > 0 {
		if u := sp.par[h][v]; u >= 0 {
			rev = append(rev, v)
			v = u
		}
		h--
	}
	rev = append(rev, src)
	out := make([]int, len(rev))
	for i := range rev {
		out[i] = rev[len(rev)-1-i]
	}
	return out
}

// shortestDP is Alg. 2 lines 18-20: the shortest-delay DC route between the
// pair, then the stage-placement DP on it.
func (s *search) shortestDP(pr Pair, q float64) result {
	sp := s.sp[pr.Entry]
	if sp == nil {
		sp = shortestFrom(s.st.s.Delay, s.st.excl, pr.Entry, s.st.m+1)
		s.sp[pr.Entry] = sp
	}
	var route []int
	if s.st.excluded(pr.Entry) && s.st.excluded(pr.Exit) {
		route = s.drainedRoute(sp, pr)
	} else {
		route = sp.route(pr.Entry, pr.Exit, s.st.m+1)
	}
	s.prepare(pr.Entry, pr.Exit, q)
	path := make(Path, s.st.m+2)
	c := s.dp.place(route, s.st.m, s, path)
	return result{path: path, cost: c, delay: DelayOf(s.st.s.Delay, path), method: MethodShortest, candidates: 1}
}

// drainedRoute is the shortest-delay route between two drained DCs (or from
// a drained DC back to itself): neither end may host a stage, so the route
// needs 1..m DCs between them, all in service: the least delay to some DC a
// in at most m hops, then a → exit. Ties go to the lower a.
func (s *search) drainedRoute(sp *hopSP, pr Pair) []int {
	m, delay := s.st.m, s.st.s.Delay
	best, bestD := -1, math.Inf(1)
	for a := 0; a < s.st.n; a++ {
		if s.st.excluded(a) {
			continue
		}
		if d := sp.dist[m][a] + delay[a][pr.Exit]; d < bestD {
			best, bestD = a, d
		}
	}
	return append(sp.route(pr.Entry, best, m), pr.Exit)
}

// stagePlacement is the dynamic program of Eq. (2)–(3): it places m stages on
// the route (k DCs, route[0] the entry, route[k−1] the exit) so that every DC
// between entry and exit hosts at least one stage, stages never go back, and
// the cost num(i, j) summed over the stages is least. N(i, j) is the least
// cost of stages 1..j with stage j on the i-th DC:
//
//	N(1,1) = num(1,1), N(2,1) = num(2,1), N(i,1) = +∞ for i ≥ 3
//	N(1,j) = N(1,j−1) + num(1,j)
//	N(i,j) = min{N(i−1,j−1), N(i,j−1)} + num(i,j)
//	num(i,j) = +∞ when m−j+1 < k−i (too few stages left for the DCs left)
//
// The answer is the smaller of N(k,m) and N(k−1,m), traced back to N(1,1) or
// N(2,1). It returns the m+2 path (entry, stage DCs, exit) and its cost.
func stagePlacement(route []int, m int, num func(dc, stage int) cost) (Path, cost) {
	maxDC := 0
	for _, d := range route {
		maxDC = max(maxDC, d)
	}
	tab := make(table, (maxDC+1)*m)
	for _, d := range route {
		for k := 0; k < m; k++ {
			tab[d*m+k] = num(d, k)
		}
	}
	var sc dpScratch
	p := make(Path, m+2)
	c := sc.place(route, m, tabCoster{tab, m}, p)
	return p, c
}

// coster gives num(d, k) of Eq. (3).
type coster interface{ c(d, k int) cost }

type table []cost

type tabCoster struct {
	t table
	m int
}

func (t tabCoster) c(d, k int) cost { return t.t[d*t.m+k] }

// dpScratch holds the DP tables so repeated placements do not allocate.
type dpScratch struct {
	n    []cost // N(i, j) at [i*m+j], 0-based
	from []bool // stage j−1 on DC i−1 (a move) rather than on DC i
}

// place runs the DP with num(d, k) = num.c(d, k) and writes the path into
// dst (len m+2).
func (sc *dpScratch) place(route []int, m int, num coster, dst Path) cost {
	k := len(route)
	if cap(sc.n) < k*m {
		sc.n = make([]cost, k*m)
		sc.from = make([]bool, k*m)
	}
	N, from := sc.n[:k*m], sc.from[:k*m]
	for i := range N {
		N[i] = infCost
		from[i] = false
	}
	cell := func(i, j int) cost { // num(i+1, j+1) of Eq. (3)
		if m-j < k-1-i {
			return infCost
		}
		return num.c(route[i], j)
	}
	N[0] = cell(0, 0)
	if k > 1 {
		N[m] = cell(1, 0)
	}
	for j := 1; j < m; j++ {
		N[j] = add(N[j-1], cell(0, j))
		for i := 1; i < k; i++ {
			stay, move := N[i*m+j-1], N[(i-1)*m+j-1]
			if move.less(stay) {
				N[i*m+j], from[i*m+j] = add(move, cell(i, j)), true
			} else {
				N[i*m+j] = add(stay, cell(i, j))
			}
		}
	}
	last := k - 1
	if k > 1 && N[(k-2)*m+m-1].less(N[(k-1)*m+m-1]) {
		last = k - 2
	}
	dst[0], dst[m+1] = route[0], route[k-1]
	i := last
	for j := m - 1; j >= 0; j-- {
		dst[j+1] = route[i]
		if j > 0 && from[i*m+j] {
			i--
		}
	}
	return N[last*m+m-1]
}
