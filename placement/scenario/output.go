package scenario

import (
	"fmt"
	"math"

	"github.com/ims-orch/ims-orch/placement"
)

// OutputVersion is the version of the plan output document.
const OutputVersion = 1

// PlanOutput is the result of one proactive round by names: the stable JSON
// document of `ims-orch plan --output json` (docs/schemas/plan-output.schema.json).
type PlanOutput struct {
	Version  int    `json:"version"`
	Scenario string `json:"scenario,omitempty"`
	// Datacenters in scenario order; Chain is the DP stages in chain order.
	Datacenters     []string `json:"datacenters"`
	Chain           []string `json:"chain"`
	PCSCF           string   `json:"pcscf"`
	SCSCF           string   `json:"scscf"`
	SCSCFDatacenter string   `json:"scscfDatacenter"`
	DelayBoundMs    float64  `json:"delayBoundMs"`
	Exact           bool     `json:"exact"`
	// Drained lists the drained datacenters in scenario order (absent when
	// none is drained).
	Drained []string `json:"drained,omitempty"`
	// Pairs are in the algorithm's processing order (entry≠exit pairs first).
	Pairs []PairOutput `json:"pairs"`
	// Instances has one row per datacenter per VNF: the DP stages in chain
	// order, then P-CSCF, then S-CSCF (in its datacenter only); datacenters
	// in scenario order.
	Instances []InstanceOutput `json:"instances"`
	Totals    TotalsOutput     `json:"totals"`
}

// PairOutput is the decision for one entry→exit pair.
type PairOutput struct {
	Entry string `json:"entry"`
	Exit  string `json:"exit"`
	// Path is entry, the datacenter of each stage, exit.
	Path []string `json:"path"`
	// DelayMs is the path's end-to-end delay, rounded to 6 decimals.
	DelayMs float64 `json:"delayMs"`
	// Workload is the predicted DP workload (packets/s).
	Workload float64 `json:"workload"`
	// Method says how the path was found: kept, alg2, alg2-extra,
	// shortest-path-dp, local or exact.
	Method        string `json:"method"`
	NewInstances  int    `json:"newInstances"`
	Created       int    `json:"created"`
	DelayViolated bool   `json:"delayViolated"`
	Candidates    int    `json:"candidates"`
	// LoopsEliminated counts the loops Alg. 2 removed for this pair,
	// LoopMerged those removed by merging stages (approach 1).
	LoopsEliminated int `json:"loopsEliminated"`
	LoopMerged      int `json:"loopMerged"`
}

// Planes of a VNF.
const (
	PlaneDP = "dp"
	PlaneCP = "cp"
)

// InstanceOutput is the decision for one VNF in one datacenter.
type InstanceOutput struct {
	Datacenter string `json:"datacenter"`
	VNF        string `json:"vnf"`
	Plane      string `json:"plane"`
	// Capacity is the capacity of one instance (packets/s or transactions/s).
	Capacity      float64 `json:"capacity"`
	Before        int     `json:"before"`
	Working       int     `json:"working"`
	Created       int     `json:"created"`
	Reused        int     `json:"reused"`
	ToBuffer      int     `json:"toBuffer"`
	BufferedAfter int     `json:"bufferedAfter"`
	// Load is the workload placed on the VNF in the datacenter, reserved
	// capacity included, rounded to 6 decimals.
	Load float64 `json:"load"`
}

// TotalsOutput sums the decision.
type TotalsOutput struct {
	Working  int `json:"working"`
	Created  int `json:"created"`
	Reused   int `json:"reused"`
	ToBuffer int `json:"toBuffer"`
	// Pairs per method, and pairs whose path cannot meet the delay bound.
	Pairs          int `json:"pairs"`
	Kept           int `json:"kept"`
	Alg2           int `json:"alg2"`
	Alg2Extra      int `json:"alg2Extra"`
	ShortestPathDP int `json:"shortestPathDP"`
	Local          int `json:"local"`
	Exact          int `json:"exactSolver"`
	DelayViolated  int `json:"delayViolated"`
	// Joint: pairs the improvement phase moved (method joint); ExactRound:
	// pairs the whole-round program moved off Alg. 1's path; OverLimit:
	// pairs whose path adds instances past a headroom.
	Joint      int `json:"joint,omitempty"`
	ExactRound int `json:"exactRound,omitempty"`
	OverLimit  int `json:"overLimit,omitempty"`
	// Improvement is the improvement phase's report (--improve-budget).
	Improvement *placement.ImproveReport `json:"improvement,omitempty"`
}

// round6 rounds to 6 decimals: loads and delays are sums of floats, and the
// last bits of a sum depend on its order, which must not show in a stable
// document.
func round6(x float64) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) || math.Abs(x) > 1e15 {
		return x
	}
	return math.Round(x*1e6) / 1e6
}

// NewPlanOutput turns a decision over snap (built by sc.Snapshot) into names.
// Empty decision slices give empty lists; a decision that refers to a
// datacenter or stage the snapshot does not have is an error (a planner bug).
func NewPlanOutput(sc *Scenario, snap *placement.Snapshot, d *placement.Decision, opt placement.Options) (*PlanOutput, error) {
	dcName := func(i int) (string, error) {
		if i < 0 || i >= len(sc.Datacenters) {
			return "", fmt.Errorf("decision refers to datacenter index %d, the scenario has %d", i, len(sc.Datacenters))
		}
		return sc.Datacenters[i].Name, nil
	}
	o := &PlanOutput{
		Version:      OutputVersion,
		Scenario:     sc.Name,
		DelayBoundMs: snap.DelayBound,
		Exact:        opt.Exact,
		PCSCF:        snap.PCSCF.Name,
		SCSCF:        snap.SCSCF.Name,
		Datacenters:  make([]string, len(sc.Datacenters)),
		Chain:        make([]string, len(snap.Stages)),
		Pairs:        []PairOutput{},
		Instances:    []InstanceOutput{},
	}
	for i, dc := range sc.Datacenters {
		o.Datacenters[i] = dc.Name
		if i < len(snap.Excluded) && snap.Excluded[i] {
			o.Drained = append(o.Drained, dc.Name)
		}
	}
	for i, st := range snap.Stages {
		o.Chain[i] = st.Name
	}
	var err error
	if o.SCSCFDatacenter, err = dcName(snap.SCSCFDC); err != nil {
		return nil, err
	}

	for _, p := range d.Pairs {
		po := PairOutput{
			Path:            make([]string, len(p.Path)),
			DelayMs:         round6(p.Delay),
			Workload:        round6(p.Workload),
			Method:          string(p.Method),
			NewInstances:    p.NewInstances,
			Created:         p.Created,
			DelayViolated:   p.DelayViolated,
			Candidates:      p.Candidates,
			LoopsEliminated: p.LoopsEliminated,
			LoopMerged:      p.LoopMerged,
		}
		if po.Entry, err = dcName(p.Pair.Entry); err != nil {
			return nil, err
		}
		if po.Exit, err = dcName(p.Pair.Exit); err != nil {
			return nil, err
		}
		for i, dc := range p.Path {
			if po.Path[i], err = dcName(dc); err != nil {
				return nil, fmt.Errorf("pair %s→%s: %w", po.Entry, po.Exit, err)
			}
		}
		o.Pairs = append(o.Pairs, po)
		switch p.Method {
		case placement.MethodExact:
			o.Totals.Exact++
		case placement.MethodRound:
			o.Totals.ExactRound++
		}
	}

	if len(d.DP) > len(sc.Datacenters) {
		return nil, fmt.Errorf("decision has DP counts for %d datacenters, the scenario has %d", len(d.DP), len(sc.Datacenters))
	}
	if len(d.PCSCF) > len(sc.Datacenters) {
		return nil, fmt.Errorf("decision has P-CSCF counts for %d datacenters, the scenario has %d", len(d.PCSCF), len(sc.Datacenters))
	}
	row := func(dc int, vnf, plane string, capacity float64, c placement.Count) InstanceOutput {
		return InstanceOutput{
			Datacenter: sc.Datacenters[dc].Name, VNF: vnf, Plane: plane, Capacity: capacity,
			Before: c.Before, Working: c.Working, Created: c.Created, Reused: c.Reused,
			ToBuffer: c.ToBuffer, BufferedAfter: c.BufferedAfter, Load: round6(c.Load),
		}
	}
	// A decision without any CP counts (an empty decision) gets no S-CSCF
	// row either: rows come from the decision, never invented here.
	hasCP := len(d.PCSCF) > 0 || d.SCSCF != (placement.Count{})
	for dc := range sc.Datacenters {
		if dc < len(d.DP) {
			if len(d.DP[dc]) > len(snap.Stages) {
				return nil, fmt.Errorf("decision has %d DP stages for datacenter %q, the chain has %d", len(d.DP[dc]), sc.Datacenters[dc].Name, len(snap.Stages))
			}
			for st, c := range d.DP[dc] {
				o.Instances = append(o.Instances, row(dc, snap.Stages[st].Name, PlaneDP, snap.Stages[st].Capacity, c))
			}
		}
		if dc < len(d.PCSCF) {
			o.Instances = append(o.Instances, row(dc, snap.PCSCF.Name, PlaneCP, snap.PCSCF.Capacity, d.PCSCF[dc]))
		}
		if dc == snap.SCSCFDC && hasCP {
			o.Instances = append(o.Instances, row(dc, snap.SCSCF.Name, PlaneCP, snap.SCSCF.Capacity, d.SCSCF))
		}
	}

	t := d.Totals()
	o.Totals.Working, o.Totals.Created, o.Totals.Reused, o.Totals.ToBuffer = t.Working, t.Created, t.Reused, t.ToBuffer
	o.Totals.Pairs = len(d.Pairs)
	o.Totals.Kept, o.Totals.Alg2, o.Totals.Alg2Extra = t.Kept, t.Alg2, t.Alg2Extra
	o.Totals.ShortestPathDP, o.Totals.Local, o.Totals.DelayViolated = t.Shortest, t.Local, t.DelayViolated
	o.Totals.Joint, o.Totals.OverLimit, o.Totals.Improvement = t.Joint, t.OverLimit, d.Improvement
	return o, nil
}
