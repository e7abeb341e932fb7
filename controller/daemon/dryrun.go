package daemon

import (
	"errors"
	"fmt"
	"time"

	"github.com/ims-orch/ims-orch/api"
	"github.com/ims-orch/ims-orch/controller/fsm"
	"github.com/ims-orch/ims-orch/controller/global"
	"github.com/ims-orch/ims-orch/placement"
)

// dryRun plans the next proactive round under delayBound from the committed
// state (global.NextSnapshot: each DC's last provisioning report, the latest
// predictions, the paths in force, the drained DCs). It commits nothing.
func dryRun(st fsm.State, hist []fsm.Prediction, delayBound float64, now time.Time) ([]api.Decision, error) {
	t := st.Topology
	if t == nil {
		return nil, errors.New("dry run: no topology committed yet")
	}
	pred := map[string]float64{}
	if len(hist) > 0 {
		pred = hist[len(hist)-1].Predicted
	}
	s, err := global.NextSnapshot(st, pred)
	if err != nil {
		return nil, fmt.Errorf("dry run: %w", err)
	}
	s.DelayBound = delayBound
	dec, err := placement.Plan(s, placement.Options{Exact: st.Policy.Exact, IgnoreBuffer: st.Policy.IgnoreBuffer, LocalFirst: st.Policy.LocalFirst,
		Improve: placement.ImproveOptions{Budget: st.Policy.ImproveBudget}})
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
