package placement

import (
	"fmt"
	"math"
)

// Pair is an ordered entry→exit datacenter pair (DC indices).
type Pair struct {
	Entry int `json:"entry"`
	Exit  int `json:"exit"`
}

// Stage is one VNF of the data-plane chain (stage i of m, 1-based in the paper,
// 0-based here) with the processing capacity of one instance (packets/s).
type Stage struct {
	Name     string  `json:"name"`
	Capacity float64 `json:"capacity"`
}

// Provision is the state of one VNF in one datacenter when the round starts.
type Provision struct {
	// Working instances (routable, counted as capacity).
	Working int `json:"working"`
	// Buffered instances (idle, in the buffer queue, reusable without a boot).
	Buffered int `json:"buffered"`
	// Reserved capacity of the working instances already used by traffic this
	// plan does not place (another chain, pinned flows). Available capacity is
	// Working·C − Reserved.
	Reserved float64 `json:"reserved"`
}

// CPVNF describes one control-plane VNF (P-CSCF or S-CSCF).
type CPVNF struct {
	Name     string  `json:"name"`
	Capacity float64 `json:"capacity"` // SIP transactions/s per instance
	// Min is the smallest number of working instances kept per datacenter that
	// hosts this VNF (P-CSCF: every DC; S-CSCF: the S-CSCF DC).
	Min int `json:"min"`
}

// Snapshot is the immutable input of one proactive round (paper 4.2 step 3).
// All slices are indexed by DC index (and stage index for DP).
type Snapshot struct {
	// N is the number of datacenters.
	N int
	// Delay[i][j] is the predicted one-way delay from DC i to DC j in ms.
	// The diagonal is 0; the matrix need not be symmetric.
	Delay [][]float64
	// DelayBound is the end-to-end delay bound of a DP path in ms.
	DelayBound float64

	// Stages is the DP chain (firewall → IDS → transcoder in the paper).
	Stages []Stage
	// DP[dc][stage] is the current DP provisioning.
	DP [][]Provision
	// CurrentPaths maps a pair to its path in the current interval (may be nil).
	CurrentPaths map[Pair]Path
	// DPWorkload is the predicted DP workload (packets/s) per pair.
	DPWorkload map[Pair]float64

	// PCSCF and SCSCF are the CP VNFs; SCSCFDC is the fixed S-CSCF datacenter.
	PCSCF, SCSCF CPVNF
	SCSCFDC      int
	// PCSCFProv[dc] and SCSCFProv are the current CP provisioning.
	PCSCFProv []Provision
	SCSCFProv Provision
	// CPWorkload is the predicted CP workload (SIP transactions/s) per pair.
	CPWorkload map[Pair]float64

	// Excluded[dc] marks a datacenter being drained (nil: none). No DP stage
	// of any path is placed in it and its P-CSCF load is planned in the
	// nearest non-excluded DC; it stays an entry or exit of its users' pairs
	// (its entry = exit pairs get a path through other DCs, see LooplessFor).
	// Every instance in it goes to the buffer queue. The S-CSCF DC cannot be
	// excluded, nor every DC (Validate).
	Excluded []bool

	// Headroom[dc][stage] is how many DP instances the stage may add in the
	// DC this round, reused from the buffer or created (nil: no limits; a
	// negative entry: that VNF is not limited there). The caller folds
	// every limit into it: the policy's max working instances (for every DC
	// and per DC) minus the working ones, and the buffered instances plus
	// the instances the cloud's last reported quota still allows. The
	// planner routes around a stage that cannot grow (docs/algorithms.md
	// "Limits"); a pair no path inside the limits can serve exceeds them
	// and is flagged OverLimit.
	Headroom [][]int
}

// Path is a DP service-chain path of m+2 DC indices: entry, the DC of stage
// 1..m, exit. Path (0,0,1,1,2) places stage 1 in DC 0, stages 2 and 3 in DC 1.
type Path []int

// Equal reports whether two paths are the same.
func (p Path) Equal(q Path) bool {
	if len(p) != len(q) {
		return false
	}
	for i := range p {
		if p[i] != q[i] {
			return false
		}
	}
	return true
}

// Loopless reports whether the path meets restriction (2) of paper 5.2: once
// the path leaves a DC it never comes back to it.
func (p Path) Loopless() bool {
	for i := 1; i < len(p); i++ {
		if p[i] == p[i-1] {
			continue
		}
		for j := 0; j < i-1; j++ {
			if p[j] == p[i] {
				return false
			}
		}
	}
	return true
}

// LooplessFor is Loopless for a round in which the datacenters marked in
// excluded are drained (nil: none, and then it is exactly Loopless). It
// accepts one path Loopless refuses: the path of an entry = exit pair of an
// excluded DC, which cannot host the chain, so its stages go elsewhere and the
// path comes back to the entry as the exit, e.g. (3,1,1,2,3) with DC 3
// drained. Restriction (2) of paper 5.2 is about the DCs that host stages;
// such a path is accepted when no stage is in the entry DC and the stage DCs
// alone are loopless. Any other repeated DC is still a loop.
func (p Path) LooplessFor(excluded []bool) bool {
	if p.Loopless() {
		return true
	}
	return len(p) > 0 && p[0] >= 0 && p[0] < len(excluded) && excluded[p[0]] && p.ReturnsOnlyAsExit()
}

// ReturnsOnlyAsExit reports whether p is the path of an entry = exit pair
// whose DC hosts no stage, the stage DCs alone being loopless, e.g.
// (3,1,1,2,3): it leaves the entry and comes back to it only as the exit.
func (p Path) ReturnsOnlyAsExit() bool {
	n := len(p)
	if n < 3 || p[0] != p[n-1] {
		return false
	}
	for _, d := range p[1 : n-1] {
		if d == p[0] {
			return false
		}
	}
	return p[1 : n-1].Loopless()
}

// DelayOf returns the end-to-end delay of a path: the sum of the delays of the
// hops between consecutive different DCs.
func DelayOf(delay [][]float64, p Path) float64 {
	d := 0.0
	for i := 1; i < len(p); i++ {
		if p[i] != p[i-1] {
			d += delay[p[i-1]][p[i]]
		}
	}
	return d
}

// Method says how a pair's path was chosen.
type Method string

// Path selection methods, reported per pair.
const (
	MethodKept      Method = "kept"             // Alg. 1 lines 2-4: current path still fits
	MethodAlg2      Method = "alg2"             // Alg. 2 search candidate (lines 2-12)
	MethodAlg2Extra Method = "alg2-extra"       // Alg. 2 lines 13-17 candidates
	MethodShortest  Method = "shortest-path-dp" // Alg. 2 lines 18-20 fallback
	MethodLocal     Method = "local"            // entry = exit: all stages in the DC
	MethodExact     Method = "exact"            // exhaustive reference solver
	MethodJoint     Method = "joint"            // improvement phase: re-routed after Alg. 1
	MethodRound     Method = "exact-round"      // whole-round integer program (ApplyPaths)
)

// PairPlan is the decision for one entry→exit pair.
type PairPlan struct {
	Pair     Pair
	Workload float64 // predicted DP packets/s
	Path     Path
	Delay    float64 // ms
	Method   Method
	// NewInstances is how many instances this pair's path added (reused from a
	// buffer or created), Created how many of those must boot.
	NewInstances int
	Created      int
	// DelayViolated is set when no path between the pair can meet the bound;
	// the path is then the shortest-delay one.
	DelayViolated bool
	// OverLimit is set when no path inside Snapshot.Headroom could serve the
	// pair: its path adds instances past a limit (the local controller
	// clamps them, as it did before the planner knew the limits).
	OverLimit bool
	// Rerouted is set when the improvement phase changed the path Alg. 1
	// gave the pair (Method is then MethodJoint, or MethodKept when the
	// phase moved it back to its current path).
	Rerouted bool
	// Candidates is how many candidate paths Alg. 2 evaluated for the pair.
	Candidates int
	// LoopsEliminated counts loops Alg. 2 removed; LoopMerged of them were
	// removed by merging stages (approach 1), the rest by re-choosing a DC
	// (approach 2).
	LoopsEliminated, LoopMerged int
}

// Count is the decision for one VNF in one datacenter.
type Count struct {
	Before   int // working instances when the round started
	Working  int // working instances in the next interval
	Created  int // new instances to boot
	Reused   int // instances taken from the buffer queue (tail)
	ToBuffer int // working instances moved to the buffer queue (tail)
	// BufferedAfter is the buffer queue length after the round (τ expiry is
	// the local controller's business, not the plan's).
	BufferedAfter int
	// Load is the workload placed on the VNF in the DC (pkt/s or tx/s),
	// reserved capacity included.
	Load float64
}

// Decision is the output of one proactive round.
type Decision struct {
	Pairs []PairPlan // DP, entry≠exit pairs first in processing order, then entry=exit pairs
	DP    [][]Count  // [dc][stage]
	PCSCF []Count    // [dc]
	SCSCF Count      // at Snapshot.SCSCFDC
	// Improvement reports the joint improvement phase (nil when it is off).
	Improvement *ImproveReport
}

// Totals sums a decision.
type Totals struct {
	Created, Reused, ToBuffer, Working                    int
	Kept, Alg2, Alg2Extra, Shortest, Local, DelayViolated int
	// Joint: pairs the improvement phase re-routed to a new path;
	// OverLimit: pairs whose path exceeds a limit (PairPlan.OverLimit).
	Joint, OverLimit int
}

// Totals returns the decision's totals over every VNF and pair.
func (d *Decision) Totals() Totals {
	var t Totals
	add := func(c Count) {
		t.Created += c.Created
		t.Reused += c.Reused
		t.ToBuffer += c.ToBuffer
		t.Working += c.Working
	}
	for _, row := range d.DP {
		for _, c := range row {
			add(c)
		}
	}
	for _, c := range d.PCSCF {
		add(c)
	}
	add(d.SCSCF)
	for _, p := range d.Pairs {
		switch p.Method {
		case MethodKept:
			t.Kept++
		case MethodAlg2:
			t.Alg2++
		case MethodAlg2Extra:
			t.Alg2Extra++
		case MethodShortest:
			t.Shortest++
		case MethodLocal:
			t.Local++
		case MethodJoint:
			t.Joint++
		}
		if p.DelayViolated {
			t.DelayViolated++
		}
		if p.OverLimit {
			t.OverLimit++
		}
	}
	return t
}

// FieldError names the field of a snapshot that is wrong and why.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

func ferr(field, format string, a ...any) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, a...)}
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// Bounds that keep instance counts far from integer overflow.
const (
	// MaxInstances bounds working and buffered counts per VNF per DC.
	MaxInstances = 1_000_000
	// MaxInstancesNeeded bounds workload / capacity per VNF.
	MaxInstancesNeeded = 1_000_000
)

// Validate checks a snapshot and returns the first problem as a *FieldError.
func (s *Snapshot) Validate() error {
	if s.N <= 0 {
		return ferr("datacenters", "at least one datacenter is needed")
	}
	if len(s.Delay) != s.N {
		return ferr("delays", "has %d rows, want one per datacenter (%d)", len(s.Delay), s.N)
	}
	for i, row := range s.Delay {
		if len(row) != s.N {
			return ferr(fmt.Sprintf("delays[%d]", i), "has %d columns, want %d (the matrix must be square)", len(row), s.N)
		}
		for j, v := range row {
			switch {
			case !finite(v):
				return ferr(fmt.Sprintf("delays[%d][%d]", i, j), "is not a finite number")
			case v < 0:
				return ferr(fmt.Sprintf("delays[%d][%d]", i, j), "is negative (%g ms)", v)
			case i == j && v != 0:
				return ferr(fmt.Sprintf("delays[%d][%d]", i, j), "a datacenter's delay to itself must be 0, got %g", v)
			}
		}
	}
	if !finite(s.DelayBound) || s.DelayBound <= 0 {
		return ferr("delayBoundMs", "must be a positive number of milliseconds, got %g", s.DelayBound)
	}
	if len(s.Stages) == 0 {
		return ferr("dataPlane.stages", "the data-plane chain needs at least one stage")
	}
	for i, st := range s.Stages {
		if !finite(st.Capacity) || st.Capacity <= 0 {
			return ferr(fmt.Sprintf("dataPlane.stages[%d].capacity", i), "must be positive, got %g", st.Capacity)
		}
	}
	if len(s.DP) != s.N {
		return ferr("instances", "DP provisioning has %d datacenter rows, want %d", len(s.DP), s.N)
	}
	for d, row := range s.DP {
		if len(row) != len(s.Stages) {
			return ferr(fmt.Sprintf("instances[dc %d]", d), "has %d stages, the chain has %d (stage count mismatch)", len(row), len(s.Stages))
		}
		for st, p := range row {
			if err := p.validate(fmt.Sprintf("instances[dc %d][%s]", d, s.Stages[st].Name), s.Stages[st].Capacity); err != nil {
				return err
			}
		}
	}
	for _, v := range []struct {
		f string
		c CPVNF
	}{{"controlPlane.pcscf", s.PCSCF}, {"controlPlane.scscf", s.SCSCF}} {
		if !finite(v.c.Capacity) || v.c.Capacity <= 0 {
			return ferr(v.f+".capacity", "must be positive, got %g", v.c.Capacity)
		}
		if v.c.Min < 0 {
			return ferr(v.f+".min", "must not be negative, got %d", v.c.Min)
		}
	}
	if s.SCSCFDC < 0 || s.SCSCFDC >= s.N {
		return ferr("controlPlane.scscfDatacenter", "DC index %d is not a datacenter", s.SCSCFDC)
	}
	if err := s.validateExcluded(); err != nil {
		return err
	}
	if err := s.validateHeadroom(); err != nil {
		return err
	}
	if len(s.PCSCFProv) != s.N {
		return ferr("instances", "P-CSCF provisioning has %d rows, want %d", len(s.PCSCFProv), s.N)
	}
	for d, p := range s.PCSCFProv {
		if err := p.validate(fmt.Sprintf("instances[dc %d][%s]", d, s.PCSCF.Name), s.PCSCF.Capacity); err != nil {
			return err
		}
	}
	if err := s.SCSCFProv.validate("instances["+s.SCSCF.Name+"]", s.SCSCF.Capacity); err != nil {
		return err
	}
	m := len(s.Stages)
	for pr, p := range s.CurrentPaths {
		// the field name is built only for an error: a round at 500 DCs has
		// 250 000 paths
		ok := pr.Entry >= 0 && pr.Entry < s.N && pr.Exit >= 0 && pr.Exit < s.N && len(p) == m+2 && p[0] == pr.Entry && p[m+1] == pr.Exit
		for _, d := range p {
			ok = ok && d >= 0 && d < s.N
		}
		if ok {
			continue
		}
		f := fmt.Sprintf("paths[%d→%d]", pr.Entry, pr.Exit)
		if err := s.checkPair(f, pr); err != nil {
			return err
		}
		if len(p) != m+2 {
			return ferr(f, "has %d datacenters, want m+2 = %d (stage count mismatch)", len(p), m+2)
		}
		for i, d := range p {
			if d < 0 || d >= s.N {
				return ferr(fmt.Sprintf("%s[%d]", f, i), "DC index %d is not a datacenter", d)
			}
		}
		return ferr(f, "path must start at the entry and end at the exit datacenter")
	}
	minDP := math.Inf(1)
	for _, st := range s.Stages {
		minDP = math.Min(minDP, st.Capacity)
	}
	for _, w := range []struct {
		f string
		m map[Pair]float64
		c float64 // smallest per-instance capacity the workload meets
	}{{"workload.dp", s.DPWorkload, minDP}, {"workload.cp", s.CPWorkload, math.Min(s.PCSCF.Capacity, s.SCSCF.Capacity)}} {
		for pr, q := range w.m {
			if pr.Entry >= 0 && pr.Entry < s.N && pr.Exit >= 0 && pr.Exit < s.N && finite(q) && q >= 0 && q/w.c <= MaxInstancesNeeded {
				continue
			}
			f := fmt.Sprintf("%s[%d→%d]", w.f, pr.Entry, pr.Exit)
			if err := s.checkPair(f, pr); err != nil {
				return err
			}
			if !finite(q) || q < 0 {
				return ferr(f, "workload must be a finite non-negative number, got %g", q)
			}
			if q/w.c > MaxInstancesNeeded {
				return ferr(f, "workload %g would need more than %d instances of one VNF", q, MaxInstancesNeeded)
			}
		}
	}
	return nil
}

// validateExcluded checks Excluded: nil, empty or one flag per DC; not every
// DC; never the S-CSCF DC.
func (s *Snapshot) validateExcluded() error {
	if len(s.Excluded) == 0 {
		return nil
	}
	if len(s.Excluded) != s.N {
		return ferr("excluded", "has %d entries, want one per datacenter (%d) or none", len(s.Excluded), s.N)
	}
	all := true
	for _, x := range s.Excluded {
		all = all && x
	}
	if all {
		return ferr("excluded", "excludes all %d datacenters; at least one must stay in service to host the data-plane stages and the P-CSCF load", s.N)
	}
	if s.Excluded[s.SCSCFDC] {
		return ferr(fmt.Sprintf("excluded[%d]", s.SCSCFDC), "DC %d is the S-CSCF datacenter (controlPlane.scscfDatacenter) and cannot be drained: the S-CSCF and the HSS run only there", s.SCSCFDC)
	}
	return nil
}

// validateHeadroom checks Headroom: nil, empty or one row per DC with one
// entry per stage, each at most MaxInstances.
func (s *Snapshot) validateHeadroom() error {
	if len(s.Headroom) == 0 {
		return nil
	}
	if len(s.Headroom) != s.N {
		return ferr("headroom", "has %d rows, want one per datacenter (%d) or none", len(s.Headroom), s.N)
	}
	for d, row := range s.Headroom {
		if len(row) != len(s.Stages) {
			return ferr(fmt.Sprintf("headroom[dc %d]", d), "has %d entries, the chain has %d stages", len(row), len(s.Stages))
		}
		for k, h := range row {
			if h > MaxInstances {
				return ferr(fmt.Sprintf("headroom[dc %d][%s]", d, s.Stages[k].Name), "must be at most %d (negative: no limit), got %d", MaxInstances, h)
			}
		}
	}
	return nil
}

// headroomOf is the state's room: a copy of Headroom with "no limit" as a
// count no round can reach, or nil when nothing is limited.
func headroomOf(s *Snapshot) [][]int {
	limited := false
	for _, row := range s.Headroom {
		for _, h := range row {
			limited = limited || h >= 0
		}
	}
	if !limited {
		return nil
	}
	room := make([][]int, s.N)
	for d, row := range s.Headroom {
		room[d] = make([]int, len(row))
		for k, h := range row {
			room[d][k] = h
			if h < 0 {
				room[d][k] = math.MaxInt32
			}
		}
	}
	return room
}

func (s *Snapshot) checkPair(f string, p Pair) error {
	if p.Entry < 0 || p.Entry >= s.N || p.Exit < 0 || p.Exit >= s.N {
		return ferr(f, "entry or exit is not a datacenter")
	}
	return nil
}

func (p Provision) validate(f string, capacity float64) error {
	if p.Working < 0 || p.Working > MaxInstances {
		return ferr(f+".working", "must be between 0 and %d, got %d", MaxInstances, p.Working)
	}
	if p.Buffered < 0 || p.Buffered > MaxInstances {
		return ferr(f+".buffered", "must be between 0 and %d, got %d", MaxInstances, p.Buffered)
	}
	if !finite(p.Reserved) || p.Reserved < 0 {
		return ferr(f+".reserved", "must be a finite non-negative capacity, got %g", p.Reserved)
	}
	if p.Reserved > float64(p.Working)*capacity+1e-9 {
		return ferr(f+".reserved", "%g exceeds the capacity of the %d working instances", p.Reserved, p.Working)
	}
	return nil
}
