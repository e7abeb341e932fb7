package global

import (
	"slices"
	"testing"

	"github.com/ims-orch/ims-orch/controller/fsm"
	"github.com/ims-orch/ims-orch/controller/protocol"
	"github.com/ims-orch/ims-orch/controller/transport"
)

// The planner's headroom is the smaller of the policy's max − working and
// buffered + the quota the DC reported last (this round's report, else the
// last one kept for a DC that did not answer); no quota reported, or a
// negative one, limits nothing.
func TestHeadroomFromReportedQuota(t *testing.T) {
	topo := testTopology(4)
	st := &fsm.State{Topology: &topo, Policy: fsm.Policy{DelayBoundMs: 250,
		Limits: []fsm.Limit{{DC: "dc1", VNF: "firewall", Max: 3}}}}
	st.Round = &fsm.Round{Provisions: map[string]protocol.ProvisionReport{
		"dc0": {DC: "dc0", VNFs: []protocol.VNFProvision{{VNF: "firewall", Working: 1, Buffered: 2, QuotaLeft: new(1)}, {VNF: "ids", QuotaLeft: new(-1)}}},
		"dc1": {DC: "dc1", VNFs: []protocol.VNFProvision{{VNF: "firewall", Working: 1, QuotaLeft: new(7)}, {VNF: "ids"}}},
	}}
	// dc2 did not answer this round: its last report's quota holds
	st.LastProvision = map[string]protocol.ProvisionReport{
		"dc2": {DC: "dc2", VNFs: []protocol.VNFProvision{{VNF: "transcoder", Working: 4, QuotaLeft: new(0)}}},
	}
	s, err := buildSnapshot(st)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]int{
		{3, -1, -1}, // dc0 firewall: 2 buffered + quota 1; ids: quota unlimited
		{2, -1, -1}, // dc1 firewall: policy max 3 − 1 working < 0 buffered + quota 7
		{-1, -1, 0}, // dc2 transcoder: last reported quota 0
		{-1, -1, -1},
	}
	for d := range want {
		for k := range want[d] {
			if s.Headroom[d][k] != want[d][k] {
				t.Fatalf("headroom %v, want %v", s.Headroom, want)
			}
		}
	}
	st.Policy.Limits, st.Round.Provisions, st.LastProvision = nil, nil, nil
	if s, err = buildSnapshot(st); err != nil || s.Headroom != nil {
		t.Fatalf("no limit, no quota: headroom %v (err %v), want nil", s.Headroom, err)
	}
}

// Through the report path: a DC whose cloud reports no quota left is not
// given new instances; the pair that needed them is routed around it.
func TestRoundRoutesAroundExhaustedQuota(t *testing.T) {
	rate := func(i, j int) float64 {
		if i == 0 && j == 3 {
			return 60000 // needs 2 firewall, 3 ids, 4 transcoder instances
		}
		return 0
	}
	stageDCs := func(quota map[string]int) (hops []string, grew map[string]int) {
		t.Helper()
		h := newHarness(t, 4, transport.MemConfig{}, Hooks{}, rate)
		for dc, q := range quota {
			for _, v := range h.parts[dc].vnfs {
				v.QuotaLeft = new(q)
			}
		}
		if err := h.eng.Start(); err != nil {
			t.Fatal(err)
		}
		h.runRounds(t, 1)
		rec := h.eng.Records()[0]
		if rec.PlanError != "" {
			t.Fatalf("plan error: %s", rec.PlanError)
		}
		for _, p := range rec.Paths {
			if p.Entry == "dc0" && p.Exit == "dc3" {
				hops = p.Hops
			}
		}
		grew = map[string]int{}
		for _, d := range rec.Decision {
			for _, tg := range d.Targets {
				if tg.VNF != "pcscf" && tg.VNF != "scscf" {
					grew[d.DC] += tg.Reuse + tg.Create
				}
			}
		}
		return hops, grew
	}
	free, grewFree := stageDCs(nil)
	// the DC that grew most without a quota reports none left
	full := ""
	for _, dc := range topoDCs(4) {
		if full == "" || grewFree[dc] > grewFree[full] {
			full = dc
		}
	}
	if grewFree[full] == 0 {
		t.Fatalf("no DC grew without a quota: %v", grewFree)
	}
	routed, grew := stageDCs(map[string]int{full: 0})
	if grew[full] != 0 {
		t.Fatalf("%s reported no quota left but gets %d new DP instances (path %v)", full, grew[full], routed)
	}
	if slices.Equal(free, routed) {
		t.Fatalf("path %v unchanged although %s cannot grow", routed, full)
	}
	t.Logf("without quotas: path %v, new DP instances %v; %s at quota 0: path %v, new %v", free, grewFree, full, routed, grew)
}

func topoDCs(n int) []string { return testTopology(n).DCs }
