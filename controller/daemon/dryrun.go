package daemon

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/ims-orch/ims-orch/api"
	"github.com/ims-orch/ims-orch/controller/fsm"
	"github.com/ims-orch/ims-orch/controller/global"
	"github.com/ims-orch/ims-orch/controller/protocol"
	"github.com/ims-orch/ims-orch/placement"
)

// dryRun plans the next proactive round under delayBound from the committed
// state: each DC's last provisioning report, the latest predictions and the
// paths in force. It commits nothing.
func dryRun(st fsm.State, hist []fsm.Prediction, delayBound float64, now time.Time) ([]api.Decision, error) {
	t := st.Topology
	if t == nil {
		return nil, errors.New("dry run: no topology committed yet")
	}
	n := len(t.DCs)
	s := &placement.Snapshot{N: n, DelayBound: delayBound, Delay: make([][]float64, n),
		PCSCF:   placement.CPVNF{Name: t.PCSCF.Name, Capacity: t.PCSCF.Capacity, Min: t.PCSCF.Min},
		SCSCF:   placement.CPVNF{Name: t.SCSCF.Name, Capacity: t.SCSCF.Capacity, Min: t.SCSCF.Min},
		SCSCFDC: t.Index(t.SCSCFDC), DP: make([][]placement.Provision, n), PCSCFProv: make([]placement.Provision, n),
		DPWorkload: map[placement.Pair]float64{}, CPWorkload: map[placement.Pair]float64{}}
	for _, stg := range t.Stages {
		s.Stages = append(s.Stages, placement.Stage{Name: stg.Name, Capacity: stg.Capacity})
	}
	pred := map[string]float64{}
	if len(hist) > 0 {
		pred = hist[len(hist)-1].Predicted
	}
	for i, dc := range t.DCs {
		s.Delay[i] = make([]float64, n)
		for j, other := range t.DCs {
			s.Delay[i][j] = t.DelayMs[i][j]
			if v, ok := pred[global.SeriesKey(global.KindDelay, dc, other)]; ok && i != j && v >= 0 && !math.IsInf(v, 0) {
				s.Delay[i][j] = v
			}
		}
		rep := st.LastProvision[dc]
		s.DP[i] = make([]placement.Provision, len(t.Stages))
		for k, stg := range t.Stages {
			s.DP[i][k] = provision(rep, stg.Name, stg.Capacity)
		}
		s.PCSCFProv[i] = provision(rep, t.PCSCF.Name, t.PCSCF.Capacity)
		if i == s.SCSCFDC {
			s.SCSCFProv = provision(rep, t.SCSCF.Name, t.SCSCF.Capacity)
		}
	}
	for k, v := range pred {
		kind, a, b, ok := global.ParseSeriesKey(k)
		ia, ib := t.Index(a), t.Index(b)
		if !ok || ia < 0 || ib < 0 || !(v >= 0) || math.IsInf(v, 0) {
			continue
		}
		switch kind {
		case global.KindCP:
			s.CPWorkload[placement.Pair{Entry: ia, Exit: ib}] = v
		case global.KindDP:
			s.DPWorkload[placement.Pair{Entry: ia, Exit: ib}] = v
		}
	}
	for ia := range n {
		for ib := range n {
			if _, ok := s.DPWorkload[placement.Pair{Entry: ia, Exit: ib}]; !ok {
				s.DPWorkload[placement.Pair{Entry: ia, Exit: ib}] = 0
			}
		}
	}
	m := len(t.Stages)
	for _, p := range st.Paths {
		ia, ib := t.Index(p.Entry), t.Index(p.Exit)
		if ia < 0 || ib < 0 || len(p.Hops) != m+2 {
			continue
		}
		path := make(placement.Path, len(p.Hops))
		ok := true
		for i, h := range p.Hops {
			path[i] = t.Index(h)
			ok = ok && path[i] >= 0
		}
		if ok {
			if s.CurrentPaths == nil {
				s.CurrentPaths = map[placement.Pair]placement.Path{}
			}
			s.CurrentPaths[placement.Pair{Entry: ia, Exit: ib}] = path
		}
	}
	dec, err := placement.Plan(s, placement.Options{Exact: st.Policy.Exact, IgnoreBuffer: st.Policy.IgnoreBuffer})
	if err != nil {
		return nil, fmt.Errorf("dry run: plan: %w", err)
	}
	round := int64(st.Interval)
	out := []api.Decision{}
	add := func(dc, vnf string, c placement.Count) {
		delta := c.Working - c.Before
		if delta == 0 && c.Created == 0 && c.Reused == 0 && c.ToBuffer == 0 {
			return
		}
		out = append(out, api.Decision{Round: round, At: now, Kind: api.DecisionProactive, DC: dc, VNF: vnf, Delta: delta,
			Reason: fmt.Sprintf("dry run, delay bound %g ms: %d → %d working for a load of %.0f (create %d, reuse %d, to buffer %d)",
				delayBound, c.Before, c.Working, c.Load, c.Created, c.Reused, c.ToBuffer),
			Detail: map[string]any{"dryRun": true, "working": c.Working, "created": c.Created, "reused": c.Reused,
				"toBuffer": c.ToBuffer, "load": c.Load}})
	}
	for i, dc := range t.DCs {
		add(dc, t.PCSCF.Name, dec.PCSCF[i])
		if i == s.SCSCFDC {
			add(dc, t.SCSCF.Name, dec.SCSCF)
		}
		for k, stg := range t.Stages {
			add(dc, stg.Name, dec.DP[i][k])
		}
	}
	return out, nil
}

// provision reads a VNF's provisioning from a DC's report (booting counts as
// working, as the round engine does).
func provision(rep protocol.ProvisionReport, vnf string, capacity float64) placement.Provision {
	for _, v := range rep.VNFs {
		if v.VNF == vnf {
			p := placement.Provision{Working: max(0, v.Working+v.Booting), Buffered: max(0, v.Buffered), Reserved: v.ReservedCapacity}
			if !(p.Reserved >= 0) || math.IsInf(p.Reserved, 0) {
				p.Reserved = 0
			}
			p.Reserved = min(p.Reserved, float64(p.Working)*capacity)
			return p
		}
	}
	return placement.Provision{}
}
