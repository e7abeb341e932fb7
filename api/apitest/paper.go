package apitest

import (
	"fmt"
	"time"

	"github.com/ims-orch/ims-orch/api"
	"github.com/ims-orch/ims-orch/controller/strategy"
	"github.com/ims-orch/ims-orch/placement/vnf"
)

// PaperDatacenters are the paper's 8 datacenters in 4 delay groups
// (group i = DCs 2i, 2i+1).
func PaperDatacenters() []api.Datacenter {
	out := make([]api.Datacenter, 8)
	for i := range out {
		out[i] = api.Datacenter{Name: fmt.Sprintf("dc%d", i), Group: fmt.Sprintf("g%d", i/2)}
	}
	return out
}

// PaperDelays is the paper's delay matrix: 5 ms inside a group, g0–g1 10,
// g0–g2 15, g0–g3 50, g1–g2 20, g1–g3 17, g2–g3 15 ms.
func PaperDelays() api.DelayMatrix {
	g := [4][4]float64{{5, 10, 15, 50}, {10, 5, 20, 17}, {15, 20, 5, 15}, {50, 17, 15, 5}}
	m := api.DelayMatrix{}
	for i := range 8 {
		m.Datacenters = append(m.Datacenters, fmt.Sprintf("dc%d", i))
		row := make([]float64, 8)
		for j := range 8 {
			if i != j {
				row[j] = g[i/2][j/2]
			}
		}
		m.DelaysMs = append(m.DelaysMs, row)
	}
	return m
}

// The CP VNFs' normalised names, as the fixture writes every VNF.
var pcscf, scscf = vnf.Normalize(vnf.PCSCF), vnf.Normalize(vnf.SCSCF)

// PaperVNFTypes is the paper's Table 2 (the catalog, placement/vnf) under
// the normalised names ("pcscf", ...).
func PaperVNFTypes() []api.VNFType {
	var out []api.VNFType
	for _, t := range vnf.Table2() {
		name := t.Key()
		t.Name = name
		out = append(out, api.NewVNFType(t, "ims/"+name+":1", "m1.small"))
	}
	return out
}

// PaperChains are the control-plane and data-plane chains.
func PaperChains() []api.Chain {
	return []api.Chain{
		{Name: "cp", Stages: []string{pcscf, scscf}},
		{Name: "dp", Stages: vnf.DataPlaneChain()},
	}
}

// PaperPolicy is the paper's hybrid policy: 50 s intervals, τ = 10, a
// 250 ms delay bound, AR(1).
func PaperPolicy() api.Policy {
	return api.Policy{Name: "default", IntervalSeconds: 50, Tau: 10, DelayBoundMs: 250,
		Predictor: "ar1", Strategy: strategy.Hybrid.Name(),
		Limits: []api.Limit{{VNF: pcscf, Min: 1, Max: 20}, {VNF: scscf, DC: "dc0", Min: 1, Max: 20}}}
}

// PaperState is a plausible live state of the paper's deployment at
// interval 42: perDC working instances of every DP VNF and one P-CSCF per
// DC, a path and two predictions per ordered DC pair.
func PaperState(at time.Time, perDC int) api.State {
	s := api.State{Interval: 42, Step: "enter-new-interval", Leader: "node-1"}
	dps := vnf.DataPlaneChain()
	for d := range 8 {
		dc := fmt.Sprintf("dc%d", d)
		s.Instances = append(s.Instances, api.Instance{ID: dc + "-" + pcscf + "-1", DC: dc, VNF: pcscf,
			State: "working", Reason: "policy min 1", Since: at, Address: fmt.Sprintf("127.%d.1.1:5060", 10+d)})
		for _, v := range dps {
			for k := range perDC {
				s.Instances = append(s.Instances, api.Instance{ID: fmt.Sprintf("%s-%s-%d", dc, v, k+1), DC: dc, VNF: v,
					State: "working", Reason: fmt.Sprintf("proactive round %d", 40+k%3), Since: at})
			}
		}
	}
	delays := PaperDelays()
	for i := range 8 {
		for j := range 8 {
			e, x := fmt.Sprintf("dc%d", i), fmt.Sprintf("dc%d", j)
			method := "alg2"
			if i == j {
				method = "local"
			}
			s.Paths = append(s.Paths, api.Path{Entry: e, Exit: x, Hops: []string{e, e, x},
				DelayMs: delays.DelaysMs[i][j], Method: method})
			actual := 1000.0 + float64(10*i+j)
			s.Predictions = append(s.Predictions,
				api.Prediction{Entry: e, Exit: x, Kind: api.PlaneDP, Predicted: 1100 + float64(i), Actual: &actual},
				api.Prediction{Entry: e, Exit: x, Kind: api.PlaneCP, Predicted: 12.5})
		}
	}
	return s
}

// Paper returns a backend holding the paper's deployment: datacenters,
// delays, Table 2, both chains, the default policy, PaperState(perDC = 2)
// and one proactive decision.
func Paper(now func() time.Time) *Backend {
	b := New(now)
	b.dcs = PaperDatacenters()
	b.delays = PaperDelays()
	b.types = PaperVNFTypes()
	b.chains = PaperChains()
	p := PaperPolicy()
	b.policies[p.Name] = p
	b.state = PaperState(now(), 2)
	b.record(api.Decision{Round: 42, At: now(), Kind: api.DecisionProactive, DC: "dc1", VNF: vnf.IDS, Delta: 1,
		Reason: "predicted dc0→dc3 DP load 41000 pkt/s exceeds 2×20000",
		Detail: map[string]any{"pair": "dc0→dc3", "predicted": 41000.0, "candidates": 3.0, "method": "alg2"}})
	return b
}
