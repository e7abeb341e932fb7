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
}

func newSearch(st *state) *search {
	k := min(st.m+3, st.n)
	s := &search{st: st, topK: k, top: make([][]int, st.m), rec: make(Path, st.m+2), alt: make(Path, st.m+2), sp: map[int]*hopSP{}}
	for i := range s.top {
		s.top[i] = make([]int, 0, k)
	}
	return s
}

// rank fills top[k] for every stage for a pair whose exit is exit.
func (s *search) rank(exit int) {
	st := s.st
	for k := 0; k < st.m; k++ {
		t := s.top[k][:0]
		for d := 0; d < st.n; d++ {
			if d == exit {
				continue
			}
			key := st.rankKey(d, k)
			if len(t) == s.topK && key <= st.rankKey(t[len(t)-1], k) {
				continue
			}
			// insertion into the small sorted list; equal keys keep the lower index first
			pos := len(t)
			for pos > 0 && st.rankKey(t[pos-1], k) < key {
				pos--
			}
			if len(t) < s.topK {
				t = append(t, 0)
			}
			copy(t[pos+1:], t[pos:len(t)-1])
			t[pos] = d
		}
		s.top[k] = t
	}
}

// candidate keeps the best delay-feasible candidate seen so far (Alg. 2
// lines 11-12): fewer instances to create wins; ties go to fewer instances
// added in all, then to the lower delay, then to the first found.
type candidate struct {
	ok    bool
	path  Path
	cost  cost
	delay float64
	m     Method
}

func (c *candidate) offer(p Path, co cost, delay, bound float64, m Method) bool {
	if delay > bound+eps {
		return false
	}
	if c.ok && !co.less(c.cost) && !(co == c.cost && delay < c.delay-eps) {
		return false
	}
	c.ok = true
	c.path = append(c.path[:0], p...)
	c.cost = co
	c.delay = delay
	c.m = m
	return true
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
	s.rank(exit)
	var best candidate
	var r result
	path := make(Path, m+2)
	for v := 0; v < st.n; v++ { // line 2
		if v == exit {
			continue
		}
		rec := s.rec
		rec[0], rec[1], rec[m+1] = entry, v, exit // line 3
		for x := 2; x <= m; x++ {                 // line 4
			k := x - 1                       // 0-based stage index of paper stage x
			rec[x] = s.top[k][0]             // lines 5-6: largest available capacity, not the exit
			if j := loopAt(rec, x); j >= 0 { // lines 7-8: loop elimination
				r.loops++
				if s.eliminate(rec, x, j, k, q, exit) {
					r.merged++
				}
			}
			fill(path, rec, x, exit) // lines 9-10
			r.candidates++
			best.offer(path, st.pathCost(path, q), DelayOf(delay, path), bound, MethodAlg2) // lines 11-12
		}
		// line 13-14: (entry, v, exit, ..., exit)
		fill(path, rec, 1, exit)
		r.candidates++
		best.offer(path, st.pathCost(path, q), DelayOf(delay, path), bound, MethodAlg2Extra)
	}
	// lines 15-17: every stage at the exit, every stage at the entry.
	fill(path, Path{entry}, 0, exit)
	r.candidates++
	best.offer(path, st.pathCost(path, q), DelayOf(delay, path), bound, MethodAlg2Extra)
	for i := 0; i <= m; i++ {
		path[i] = entry
	}
	path[m+1] = exit
	r.candidates++
	best.offer(path, st.pathCost(path, q), DelayOf(delay, path), bound, MethodAlg2Extra)

	if !best.ok { // lines 18-20
		sr := s.shortestDP(pr, q)
		sr.candidates += r.candidates
		sr.loops, sr.merged = r.loops, r.merged
		return sr
	}
	r.path, r.cost, r.delay, r.method = append(Path(nil), best.path...), best.cost, best.delay, best.m
	return r
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
	p1 := fill(make(Path, len(rec)), rec, x, exit)
	p2 := fill(make(Path, len(rec)), alt, x, exit)
	c1, c2 := st.pathCost(p1, q), st.pathCost(p2, q)
	d1, d2 := DelayOf(st.s.Delay, p1), DelayOf(st.s.Delay, p2)
	if c2.less(c1) || (c2 == c1 && d2 < d1-eps) {
		copy(rec[:x+1], alt[:x+1])
		return false
	}
	return true
}
