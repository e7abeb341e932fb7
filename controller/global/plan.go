package global

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/ims-orch/ims-orch/controller/fsm"
	"github.com/ims-orch/ims-orch/controller/protocol"
	"github.com/ims-orch/ims-orch/placement"
)

// provisionOf returns a VNF's provisioning from a report (Booting counts as
// working: the plan must not launch them twice).
func provisionOf(rep protocol.ProvisionReport, vnf string, capacity float64, keepBuffer bool) placement.Provision {
	for _, v := range rep.VNFs {
		if v.VNF != vnf {
			continue
		}
		p := placement.Provision{Working: max(0, v.Working+v.Booting), Reserved: v.ReservedCapacity}
		if keepBuffer {
			p.Buffered = max(0, v.Buffered)
		}
		if !validRate(p.Reserved) {
			p.Reserved = 0
		}
		p.Reserved = min(p.Reserved, float64(p.Working)*capacity)
		return p
	}
	return placement.Provision{}
}

// buildSnapshot turns the committed state of a round at step 3 into the
// planner's input. Provisioning: the DC's step-2 report of this round; for a
// DC given up at step 2, its last known report with an empty buffer (its
// buffered instances may have expired meanwhile) or nothing if it never
// answered. Delays: the predicted delay of a link that was measured in the
// interval just closed, else the static matrix.
// provisionFor is datacenter dc's provision report of this round (answered
// true), else the last one it sent.
func provisionFor(st *fsm.State, dc string) (rep protocol.ProvisionReport, answered bool) {
	if rep, ok := st.Round.Provisions[dc]; ok {
		return rep, true
	}
	return st.LastProvision[dc], false
}

func buildSnapshot(st *fsm.State) (*placement.Snapshot, error) {
	t := st.Topology
	r := st.Round
	if t == nil {
		return nil, fmt.Errorf("no topology committed")
	}
	n := len(t.DCs)
	pred, actual := map[string]float64{}, map[string]float64{}
	if r.Prediction != nil {
		pred, actual = r.Prediction.Predicted, r.Prediction.Actual
	}
	// plan every VNF at the policy's target utilisation of its capacity,
	// the data-plane stages at their DP target (fsm.Policy.StageUtilization)
	u := st.Policy.Utilization()
	s := &placement.Snapshot{
		N:          n,
		Delay:      make([][]float64, n),
		DelayBound: st.Policy.DelayBoundMs,
		PCSCF:      placement.CPVNF{Name: t.PCSCF.Name, Capacity: u * t.PCSCF.Capacity, Min: t.PCSCF.Min},
		SCSCF:      placement.CPVNF{Name: t.SCSCF.Name, Capacity: u * t.SCSCF.Capacity, Min: t.SCSCF.Min},
		SCSCFDC:    t.Index(t.SCSCFDC),
		DP:         make([][]placement.Provision, n),
		PCSCFProv:  make([]placement.Provision, n),
		DPWorkload: map[placement.Pair]float64{},
		CPWorkload: map[placement.Pair]float64{},
	}
	for _, stg := range t.Stages {
		s.Stages = append(s.Stages, placement.Stage{Name: stg.Name, Capacity: st.Policy.StageUtilization(stg.Name) * stg.Capacity})
	}
	for i, a := range t.DCs {
		s.Delay[i] = make([]float64, n)
		for j, b := range t.DCs {
			if i == j {
				continue
			}
			// the predicted delay only while the link has a fresh sample
			// (measured in the interval just closed), else the static matrix
			_, fresh := actual[SeriesKey(KindDelay, a, b)]
			d, ok := pred[SeriesKey(KindDelay, a, b)]
			if !fresh || !ok || !validRate(d) {
				d = t.DelayMs[i][j]
			}
			s.Delay[i][j] = d
		}
	}
	for i, dc := range t.DCs {
		rep, keepBuffer := provisionFor(st, dc)
		s.DP[i] = make([]placement.Provision, len(t.Stages))
		for k, stg := range t.Stages {
			s.DP[i][k] = provisionOf(rep, stg.Name, s.Stages[k].Capacity, keepBuffer)
		}
		s.PCSCFProv[i] = provisionOf(rep, t.PCSCF.Name, u*t.PCSCF.Capacity, keepBuffer)
		if i == s.SCSCFDC {
			s.SCSCFProv = provisionOf(rep, t.SCSCF.Name, u*t.SCSCF.Capacity, keepBuffer)
		}
	}
	for k, v := range pred {
		kind, a, b, ok := ParseSeriesKey(k)
		ia, ib := t.Index(a), t.Index(b)
		if !ok || ia < 0 || ib < 0 || !validRate(v) {
			continue
		}
		switch kind {
		case KindCP:
			s.CPWorkload[placement.Pair{Entry: ia, Exit: ib}] = v
		case KindDP:
			s.DPWorkload[placement.Pair{Entry: ia, Exit: ib}] = v
		}
	}
	// Every pair is planned, so new flows of a pair nobody predicted yet
	// (the first round, a new DC) still find a path.
	for ia := range t.DCs {
		for ib := range t.DCs {
			pr := placement.Pair{Entry: ia, Exit: ib}
			if _, ok := s.DPWorkload[pr]; !ok {
				s.DPWorkload[pr] = 0
			}
		}
	}
	s.Headroom = headroom(st, s)
	if len(st.Drained) > 0 {
		s.Excluded = make([]bool, n)
		for _, dc := range st.Drained {
			if i := t.Index(dc); i >= 0 {
				s.Excluded[i] = true
			}
		}
	}
	m := len(t.Stages)
	for _, p := range st.Paths {
		ia, ib := t.Index(p.Entry), t.Index(p.Exit)
		if ia < 0 || ib < 0 || len(p.Hops) != m+2 {
			continue // topology changed: the pair gets a new path
		}
		path := make(placement.Path, len(p.Hops))
		ok := true
		for i, h := range p.Hops {
			path[i] = t.Index(h)
			ok = ok && path[i] >= 0
		}
		if ok && path[0] == ia && path[m+1] == ib {
			if s.CurrentPaths == nil {
				s.CurrentPaths = map[placement.Pair]placement.Path{}
			}
			s.CurrentPaths[placement.Pair{Entry: ia, Exit: ib}] = path
		}
	}
	return s, nil
}

// headroom gives the planner each DC's DP headroom (nil when nothing limits
// a DP VNF anywhere), the smaller of two limits:
//   - the policy's: a VNF with a max working count (per DC, else for every
//     DC) may add at most max − working instances there;
//   - the cloud's: the buffered instances (reused without launching) plus
//     the quota the DC's driver reported last (protocol.VNFProvision.QuotaLeft:
//     this round's report, else the last one kept; unknown or negative: no
//     limit).
func headroom(st *fsm.State, s *placement.Snapshot) [][]int {
	var h [][]int
	lower := func(i, k, v int) {
		if h == nil {
			h = make([][]int, s.N)
			for d := range h {
				h[d] = make([]int, len(s.Stages))
				for kk := range h[d] {
					h[d][kk] = -1
				}
			}
		}
		if v = max(0, v); h[i][k] < 0 || v < h[i][k] {
			h[i][k] = v
		}
	}
	for i, dc := range st.Topology.DCs {
		rep, _ := provisionFor(st, dc)
		for k, stg := range s.Stages {
			limit := 0
			for _, pass := range []string{"", dc} {
				for _, l := range st.Policy.Limits {
					if l.DC == pass && l.VNF == stg.Name {
						limit = l.Max
					}
				}
			}
			if limit > 0 {
				lower(i, k, limit-s.DP[i][k].Working)
			}
			if q := quotaLeft(rep, stg.Name); q >= 0 {
				lower(i, k, s.DP[i][k].Buffered+q)
			}
		}
	}
	return h
}

// quotaLeft is the quota a report gives a VNF (−1: unknown or no limit).
func quotaLeft(rep protocol.ProvisionReport, vnf string) int {
	for _, v := range rep.VNFs {
		if v.VNF == vnf && v.QuotaLeft != nil {
			return max(-1, *v.QuotaLeft)
		}
	}
	return -1
}

// addControls puts the operator's controls into each DC's decision: the
// drain flag and the policy's instance limits for the DC (a per-DC limit
// wins over one for every DC).
func addControls(st *fsm.State, dcs []protocol.DCDecision) {
	for i := range dcs {
		dc := dcs[i].DC
		dcs[i].Drain = slices.Contains(st.Drained, dc)
		if dcs[i].Drain {
			for k := range dcs[i].Targets {
				dcs[i].Targets[k].Reason = "datacenter drained by the operator: " + dcs[i].Targets[k].Reason
			}
		}
		byVNF := map[string]protocol.VNFLimit{}
		var order []string
		for _, pass := range []string{"", dc} {
			for _, l := range st.Policy.Limits {
				if l.DC != pass {
					continue
				}
				if _, ok := byVNF[l.VNF]; !ok {
					order = append(order, l.VNF)
				}
				byVNF[l.VNF] = protocol.VNFLimit{VNF: l.VNF, Min: l.Min, Max: l.Max}
			}
		}
		dcs[i].Limits = nil
		for _, v := range order {
			dcs[i].Limits = append(dcs[i].Limits, byVNF[v])
		}
	}
}

// NextSnapshot is the planner's input the next round would build from the
// committed state if every DC answered step 2 as in its last report and pred
// were the forecasts (a dry run: nothing is committed). It applies the same
// policy (target utilisation, drained DCs) as a round.
func NextSnapshot(st fsm.State, pred map[string]float64) (*placement.Snapshot, error) {
	st.Round = &fsm.Round{Round: st.Interval, Prediction: &fsm.Prediction{Round: st.Interval, Predicted: pred},
		Provisions: st.LastProvision}
	return buildSnapshot(&st)
}

// decisionShapeOK reports whether a decision has a row per DC and stage.
func decisionShapeOK(d *placement.Decision, n, m int) bool {
	if len(d.PCSCF) != n || len(d.DP) != n {
		return false
	}
	for _, row := range d.DP {
		if len(row) != m {
			return false
		}
	}
	for _, p := range d.Pairs {
		if len(p.Path) != m+2 {
			return false
		}
	}
	return true
}

// keepDecision is the fallback when planning fails: every DC keeps its
// current working counts and the current paths stay.
func keepDecision(s *placement.Snapshot) *placement.Decision {
	d := &placement.Decision{DP: make([][]placement.Count, s.N), PCSCF: make([]placement.Count, s.N)}
	keep := func(p placement.Provision) placement.Count {
		return placement.Count{Before: p.Working, Working: p.Working, BufferedAfter: p.Buffered}
	}
	for i := 0; i < s.N; i++ {
		d.DP[i] = make([]placement.Count, len(s.Stages))
		for k := range s.Stages {
			d.DP[i][k] = keep(s.DP[i][k])
		}
		d.PCSCF[i] = keep(s.PCSCFProv[i])
	}
	d.SCSCF = keep(s.SCSCFProv)
	for pr, p := range s.CurrentPaths {
		d.Pairs = append(d.Pairs, placement.PairPlan{Pair: pr, Path: p, Delay: placement.DelayOf(s.Delay, p), Method: placement.MethodKept})
	}
	slices.SortFunc(d.Pairs, func(a, b placement.PairPlan) int {
		return cmp.Or(cmp.Compare(a.Pair.Entry, b.Pair.Entry), cmp.Compare(a.Pair.Exit, b.Pair.Exit))
	})
	return d
}

type pairLoad struct {
	name string
	q    float64
	note string
}

func topLoads(ls []pairLoad, k int) string {
	slices.SortFunc(ls, func(a, b pairLoad) int {
		return cmp.Or(cmp.Compare(b.q, a.q), cmp.Compare(a.name, b.name))
	})
	var sb strings.Builder
	for i, l := range ls {
		if i == k {
			fmt.Fprintf(&sb, ", +%d more", len(ls)-k)
			break
		}
		if i > 0 {
			sb.WriteString(", ")
		}
		fmt.Fprintf(&sb, "%s %.1f%s", l.name, l.q, l.note)
	}
	if len(ls) == 0 {
		return "none"
	}
	return sb.String()
}

func countText(c placement.Count) string {
	return fmt.Sprintf("%d working (was %d): create %d, reuse %d, to buffer %d", c.Working, c.Before, c.Created, c.Reused, c.ToBuffer)
}

func target(name string, c placement.Count, reason string) protocol.VNFTarget {
	return protocol.VNFTarget{VNF: name, Working: c.Working, Reuse: c.Reused, Create: c.Created, ToBuffer: c.ToBuffer, Reason: reason}
}

// toDecisions turns a plan into one decision per DC (without the path set,
// which is stored once and attached when sending) and the next path set.
func toDecisions(t *fsm.Topology, s *placement.Snapshot, d *placement.Decision, round uint64, planNote string) ([]protocol.DCDecision, []protocol.PathEntry) {
	n := len(t.DCs)
	pairName := func(p placement.Pair) string { return t.DCs[p.Entry] + "→" + t.DCs[p.Exit] }

	cpPerDC := make([][]pairLoad, n)
	var cpAll []pairLoad
	cpTotal := 0.0
	for p, q := range s.CPWorkload {
		l := pairLoad{name: pairName(p), q: q}
		cpAll = append(cpAll, l)
		cpTotal += q
		cpPerDC[p.Entry] = append(cpPerDC[p.Entry], l)
		if p.Exit != p.Entry {
			cpPerDC[p.Exit] = append(cpPerDC[p.Exit], l)
		}
	}
	dpAt := make([][][]pairLoad, n) // [dc][stage]
	for i := range dpAt {
		dpAt[i] = make([][]pairLoad, len(t.Stages))
	}
	paths := make([]protocol.PathEntry, 0, len(d.Pairs))
	for _, pp := range d.Pairs {
		hops := make([]string, len(pp.Path))
		for i, h := range pp.Path {
			hops[i] = t.DCs[h]
		}
		paths = append(paths, protocol.PathEntry{Entry: t.DCs[pp.Pair.Entry], Exit: t.DCs[pp.Pair.Exit], Hops: hops})
		for k := range t.Stages {
			dc := pp.Path[k+1]
			dpAt[dc][k] = append(dpAt[dc][k], pairLoad{name: pairName(pp.Pair), q: pp.Workload,
				note: fmt.Sprintf(" (%s, %.0f ms)", pp.Method, pp.Delay)})
		}
	}
	slices.SortFunc(paths, func(a, b protocol.PathEntry) int {
		return cmp.Or(cmp.Compare(t.Index(a.Entry), t.Index(b.Entry)), cmp.Compare(t.Index(a.Exit), t.Index(b.Exit)))
	})

	out := make([]protocol.DCDecision, n)
	for i, dc := range t.DCs {
		dd := protocol.DCDecision{DC: dc, Interval: round + 1}
		c := d.PCSCF[i]
		dd.Targets = append(dd.Targets, target(t.PCSCF.Name, c, fmt.Sprintf(
			"%spredicted CP %.1f tx/s on pairs entering or leaving %s (%s) / %g tx/s planned per instance → %s",
			planNote, c.Load, dc, topLoads(cpPerDC[i], 5), s.PCSCF.Capacity, countText(c))))
		if i == s.SCSCFDC {
			c := d.SCSCF
			dd.Targets = append(dd.Targets, target(t.SCSCF.Name, c, fmt.Sprintf(
				"%spredicted CP %.1f tx/s over all pairs (%s) / %g tx/s planned per instance → %s",
				planNote, cpTotal, topLoads(slices.Clone(cpAll), 5), s.SCSCF.Capacity, countText(c))))
		}
		for k, stg := range t.Stages {
			c := d.DP[i][k]
			dd.Targets = append(dd.Targets, target(stg.Name, c, fmt.Sprintf(
				"%spredicted DP %.1f pkt/s placed by paths through %s (%s) / %g pkt/s planned per instance → %s",
				planNote, c.Load, dc, topLoads(dpAt[i][k], 5), s.Stages[k].Capacity, countText(c))))
		}
		out[i] = dd
	}
	return out, paths
}
