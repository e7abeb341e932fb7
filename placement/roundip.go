package placement

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// The exact whole-round reference (docs/algorithms.md "Exact whole-round
// reference"): the integer program of a round, written in the CPLEX LP format
// for an outside MILP solver (the adapter solver/exactround runs CBC), and the
// decision built from the paths the solver picks. This file is pure: it
// writes text and reads values, the solver process lives outside.
//
//	min   Σ created_{d,k}·M + Σ added_{d,k}   (IgnoreBuffer: Σ added_{d,k})
//	s.t.  Σ_j x_{p,j} = 1                                  every searched pair p
//	      Σ_{p,j through (d,k)} Q_p·x_{p,j} − C_k·added_{d,k} ≤ W·C_k − R − fixed_{d,k}
//	      created_{d,k} ≥ added_{d,k} − buffered_{d,k}
//	      added_{d,k} ≤ headroom_{d,k}                     (Snapshot.Headroom)
//	      x binary, added integer ≥ 0, created ≥ 0
//
// The paths j of pair p are every loopless stage assignment within the delay
// bound with no stage in a drained DC (the exhaustive solver's set). A pair
// with no such path, a pair with no workload and an entry = exit pair of a DC
// in service keep the path Alg. 1 gives them; their load is fixed_{d,k}.

// ExactRoundLimit bounds the path variables of the whole-round program.
const ExactRoundLimit = 60_000

// RoundIP is the integer program of one round.
type RoundIP struct {
	// LP is the program in the CPLEX LP format.
	LP string
	// Vars is the number of path variables.
	Vars int
	s    *Snapshot
	opt  Options
	// base is Alg. 1's decision: the fixed pairs' paths come from it.
	base  *Decision
	pairs []Pair
	cands [][]Path // [pair index in pairs] candidate paths, x<i>_<j>
}

// NewRoundIP builds the program of the round s (Options: IgnoreBuffer picks
// the objective, LocalFirst and the rest only matter for the fixed pairs). It
// refuses a program with more than ExactRoundLimit path variables.
func NewRoundIP(s *Snapshot, opt Options) (*RoundIP, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	m := len(s.Stages)
	if math.Pow(float64(s.N), float64(m))*float64(len(s.DPWorkload)+len(s.CurrentPaths)) > 50*ExactRoundLimit {
		return nil, ferr("options.exactRound", "a round of %d datacenters and %d stages has up to %d^%d paths per pair; the whole-round program is for small networks (at most %d path variables)", s.N, m, s.N, m, ExactRoundLimit)
	}
	base := plan(s, Options{IgnoreBuffer: opt.IgnoreBuffer, LocalFirst: opt.LocalFirst, PaperOnly: opt.PaperOnly}, nil)
	ip := &RoundIP{s: s, opt: opt, base: base}
	excl := excludedSet(s)
	fixed := make([][]float64, s.N)
	for d := range fixed {
		fixed[d] = make([]float64, m)
	}
	path := make(Path, m+2)
	for _, pp := range base.Pairs {
		pr, q := pp.Pair, pp.Workload
		var cands []Path
		if q > 0 && (pr.Entry != pr.Exit || (excl != nil && excl[pr.Entry])) {
			path[0], path[m+1] = pr.Entry, pr.Exit
			var walk func(k int)
			walk = func(k int) {
				if k == m {
					if path.LooplessFor(excl) && DelayOf(s.Delay, path) <= s.DelayBound+eps {
						cands = append(cands, append(Path(nil), path...))
					}
					return
				}
				for d := 0; d < s.N; d++ {
					if excl == nil || !excl[d] {
						path[k+1] = d
						walk(k + 1)
					}
				}
			}
			walk(0)
			ip.Vars += len(cands)
			if ip.Vars > ExactRoundLimit {
				return nil, ferr("options.exactRound", "the whole-round program has more than %d path variables (%d datacenters, %d stages, %d pairs); it is for small networks", ExactRoundLimit, s.N, m, len(base.Pairs))
			}
		}
		if len(cands) == 0 {
			for k := 0; k < m; k++ {
				fixed[pp.Path[k+1]][k] += q
			}
			continue
		}
		ip.pairs = append(ip.pairs, pr)
		ip.cands = append(ip.cands, cands)
	}
	ip.LP = ip.write(fixed)
	return ip, nil
}

func xName(i, j int) string { return "x" + strconv.Itoa(i) + "_" + strconv.Itoa(j) }

// write renders the program; fixed is the load of the pairs without
// variables.
func (ip *RoundIP) write(fixed [][]float64) string {
	s, m := ip.s, len(ip.s.Stages)
	terms := make([][]string, s.N*m) // load terms per cell
	for i, cs := range ip.cands {
		q := strconv.FormatFloat(ip.s.DPWorkload[ip.pairs[i]], 'g', -1, 64)
		for j, p := range cs {
			for k := 0; k < m; k++ {
				c := p[k+1]*m + k
				terms[c] = append(terms[c], q+" "+xName(i, j))
			}
		}
	}
	var b strings.Builder
	line := func(parts []string) {
		for i := 0; i < len(parts); i += 8 {
			b.WriteString("  " + strings.Join(parts[i:min(i+8, len(parts))], " ") + "\n")
		}
	}
	// M: more than any Σ added an optimum can have (no cell adds more than
	// the whole DP load needs), so one created instance outweighs them all
	total := 0.0
	for _, q := range s.DPWorkload {
		total += q
	}
	maxAdded := 1
	for k := 0; k < m; k++ {
		maxAdded += s.N * (int(math.Ceil(total/s.Stages[k].Capacity)) + 1)
	}
	b.WriteString("Minimize\n obj:")
	var obj []string
	for d := 0; d < s.N; d++ {
		for k := 0; k < m; k++ {
			if !ip.opt.IgnoreBuffer {
				obj = append(obj, "+ "+strconv.Itoa(maxAdded)+" z"+cellName(d, k))
			}
			obj = append(obj, "+ y"+cellName(d, k))
		}
	}
	line(obj)
	b.WriteString("Subject To\n")
	for i, cs := range ip.cands {
		parts := make([]string, 0, len(cs))
		for j := range cs {
			parts = append(parts, "+ "+xName(i, j))
		}
		fmt.Fprintf(&b, " one%d:\n", i)
		line(parts)
		b.WriteString("  = 1\n")
	}
	room := headroomOf(s)
	for d := 0; d < s.N; d++ {
		for k := 0; k < m; k++ {
			c := d*m + k
			cp := s.Stages[k].Capacity
			prov := s.DP[d][k]
			rhs := float64(prov.Working)*cp - prov.Reserved - fixed[d][k] + 1e-6*cp
			parts := make([]string, 0, len(terms[c])+1)
			for _, t := range terms[c] {
				parts = append(parts, "+ "+t)
			}
			parts = append(parts, "- "+strconv.FormatFloat(cp, 'g', -1, 64)+" y"+cellName(d, k))
			fmt.Fprintf(&b, " cap%s:\n", cellName(d, k))
			line(parts)
			fmt.Fprintf(&b, "  <= %s\n", strconv.FormatFloat(rhs, 'g', -1, 64))
			if !ip.opt.IgnoreBuffer {
				fmt.Fprintf(&b, " buf%s: z%s - y%s >= -%d\n", cellName(d, k), cellName(d, k), cellName(d, k), prov.Buffered)
			}
		}
	}
	b.WriteString("Bounds\n")
	for d := 0; d < s.N; d++ {
		for k := 0; k < m; k++ {
			hi := "+inf"
			if room != nil && room[d][k] < math.MaxInt32 {
				hi = strconv.Itoa(max(0, room[d][k]))
			}
			fmt.Fprintf(&b, " 0 <= y%s <= %s\n", cellName(d, k), hi)
			if !ip.opt.IgnoreBuffer {
				fmt.Fprintf(&b, " z%s >= 0\n", cellName(d, k))
			}
		}
	}
	b.WriteString("Binaries\n")
	for i, cs := range ip.cands {
		parts := make([]string, len(cs))
		for j := range cs {
			parts[j] = xName(i, j)
		}
		line(parts)
	}
	b.WriteString("Generals\n")
	var ys []string
	for d := 0; d < s.N; d++ {
		for k := 0; k < m; k++ {
			ys = append(ys, "y"+cellName(d, k))
		}
	}
	line(ys)
	b.WriteString("End\n")
	return b.String()
}

func cellName(d, k int) string { return strconv.Itoa(d) + "_" + strconv.Itoa(k) }

// Decision builds the round's decision from the solver's variable values
// (name → value; names it does not list are 0): each searched pair takes the
// path whose variable is largest (the solver sets exactly one to 1), the
// others keep Alg. 1's; the counts are those of committing the paths, so they
// do not depend on the solver's rounding.
func (ip *RoundIP) Decision(values map[string]float64) (*Decision, error) {
	paths := map[Pair]Path{}
	for i, cs := range ip.cands {
		best, bv := -1, 0.5
		for j := range cs {
			if v := values[xName(i, j)]; v > bv {
				best, bv = j, v
			}
		}
		if best < 0 {
			return nil, fmt.Errorf("exact round: the solver chose no path for pair %d→%d", ip.pairs[i].Entry, ip.pairs[i].Exit)
		}
		paths[ip.pairs[i]] = cs[best]
	}
	return applyPaths(ip.s, ip.opt, ip.base, paths), nil
}

// applyPaths commits every pair of base on a fresh state, on the path of
// paths when it has one (method exact-round), else on base's, in base's
// order.
func applyPaths(s *Snapshot, opt Options, base *Decision, paths map[Pair]Path) *Decision {
	st := newState(s, opt.IgnoreBuffer)
	plans := make([]PairPlan, len(base.Pairs))
	pairs := make([]Pair, len(base.Pairs))
	order := make([]int, len(base.Pairs))
	for i, pp := range base.Pairs {
		pairs[i], order[i] = pp.Pair, i
		if p, ok := paths[pp.Pair]; ok && !p.Equal(pp.Path) {
			pp.Path = p
			pp.Delay = DelayOf(s.Delay, p)
			pp.Method = MethodRound
			pp.DelayViolated = pp.Delay > s.DelayBound+eps
		}
		plans[i] = pp
	}
	if opt.LocalFirst {
		sort.SliceStable(order, func(a, b int) bool {
			return pairs[order[a]].Entry == pairs[order[a]].Exit && pairs[order[b]].Entry != pairs[order[b]].Exit
		})
	}
	for _, i := range order {
		p := &plans[i]
		p.OverLimit = st.overLimit(p.Path, p.Workload)
		p.NewInstances, p.Created = st.commit(p.Path, p.Workload)
	}
	return assemble(st, pairs, plans)
}
