package global

import (
	"context"
	"fmt"
	"testing"

	"github.com/ims-orch/ims-orch/controller/fsm"
	"github.com/ims-orch/ims-orch/controller/protocol"
	"github.com/ims-orch/ims-orch/placement"
)

// floorRoundState is a committed state at step 2 of a round over n DCs
// (testTopology): every DC sends to the next one (BenchmarkRound50HTTP's
// traffic), each DC runs one working and one buffered instance of every
// VNF and advertises keepBuffered, and a declared profile's rise doubles
// every dp pair (Peak: the stage floor's worst case, every pair raised).
func floorRoundState(n int) fsm.State {
	topo := testTopology(n)
	p := &fsm.Prediction{Round: 1, Actual: map[string]float64{}, Predicted: map[string]float64{}, Peak: map[string]float64{}}
	prov := map[string]protocol.ProvisionReport{}
	for i, a := range topo.DCs {
		b := topo.DCs[(i+1)%n]
		rate := float64(10000 + 1000*(i%7))
		p.Actual[SeriesKey(KindDP, a, b)], p.Predicted[SeriesKey(KindDP, a, b)] = rate, rate
		p.Actual[SeriesKey(KindCP, a, b)], p.Predicted[SeriesKey(KindCP, a, b)] = rate/100, rate/100
		p.Peak[SeriesKey(KindDP, a, b)] = 2 * rate
		rep := protocol.ProvisionReport{DC: a, Features: []string{protocol.FeatureKeepBuffered}}
		for _, v := range vnfNames(topo) {
			rep.VNFs = append(rep.VNFs, protocol.VNFProvision{VNF: v, Working: 1, Buffered: 1})
		}
		prov[a] = rep
	}
	return fsm.State{Interval: 1, Topology: &topo, Policy: fsm.Policy{DelayBoundMs: 250, ImproveBudget: 1000},
		Round: &fsm.Round{Round: 1, Done: protocol.StepAcquire, Prediction: p, Provisions: prov}}
}

// BenchmarkPlannerRoundStageFloor is step 3 of a round (the snapshot, the
// plan, the decisions: compute and decide without the commit) at 10 and 50
// DCs without the stage floor (off: what stageFloor: 1 does) and with it
// in hold and launch mode ("raised-stages": the stages the floor raised).
// The floor's own part is BenchmarkStageFloorOnly: timed inside the whole
// step it mostly measures the plan's garbage-collection debt.
// docs/benchmarks.md "Stage floor in the planner round".
func BenchmarkPlannerRoundStageFloor(b *testing.B) {
	for _, n := range []int{10, 50} {
		st := floorRoundState(n)
		for _, mode := range []string{"off", StageFloorHold, StageFloorLaunch} {
			b.Run(fmt.Sprintf("dcs=%d/floor=%s", n, mode), func(b *testing.B) {
				raisedStages := 0
				for i := 0; i < b.N; i++ {
					snap, err := buildSnapshot(&st)
					if err != nil {
						b.Fatal(err)
					}
					dec, err := placement.PlanContext(context.Background(), snap, placement.Options{Improve: placement.ImproveOptions{Budget: st.Policy.ImproveBudget}})
					if err != nil {
						b.Fatal(err)
					}
					var raised map[[2]int]stageRaise
					if mode != "off" {
						raised = stageFloor(st.Topology, snap, dec, st.Round.Prediction.Peak, mode)
					}
					dcs, _ := toDecisions(st.Topology, snap, dec, st.Round.Round, "")
					if mode != "off" {
						noteStageFloor(st.Topology, dcs, raised, st.Round.Provisions)
					}
					addControls(&st, dcs)
					raisedStages = len(raised)
				}
				if mode != "off" && raisedStages == 0 {
					b.Fatal("the stage floor raised no stage: the case does not measure it")
				}
				b.ReportMetric(float64(raisedStages), "raised-stages")
			})
		}
	}
}

// BenchmarkStageFloorOnly is the stage floor's own part of step 3
// (stageFloor and noteStageFloor) on one planned round of
// BenchmarkPlannerRoundStageFloor's case, each iteration on a fresh copy
// of the plan's counts and targets: less noisy than the difference of two whole steps.
func BenchmarkStageFloorOnly(b *testing.B) {
	for _, n := range []int{10, 50, 100} {
		st := floorRoundState(n)
		snap, err := buildSnapshot(&st)
		if err != nil {
			b.Fatal(err)
		}
		dec, err := placement.Plan(snap, placement.Options{})
		if err != nil {
			b.Fatal(err)
		}
		orig, _ := toDecisions(st.Topology, snap, dec, st.Round.Round, "")
		for _, mode := range []string{StageFloorHold, StageFloorLaunch} {
			b.Run(fmt.Sprintf("dcs=%d/floor=%s", n, mode), func(b *testing.B) {
				// fresh copies of the plan's counts and the targets' reasons,
				// made a batch at a time outside the timer (StopTimer reads
				// the memory statistics: not once an iteration)
				const batch = 64
				ds := make([]placement.Decision, batch)
				dcss := make([][]protocol.DCDecision, batch)
				for i := 0; i < b.N; i++ {
					k := i % batch
					if k == 0 {
						b.StopTimer()
						for c := range batch {
							ds[c] = *dec
							ds[c].DP = make([][]placement.Count, len(dec.DP))
							for j := range dec.DP {
								ds[c].DP[j] = append([]placement.Count(nil), dec.DP[j]...)
							}
							dcss[c] = make([]protocol.DCDecision, len(orig))
							for j := range orig {
								dcss[c][j] = orig[j]
								dcss[c][j].Targets = append([]protocol.VNFTarget(nil), orig[j].Targets...)
							}
						}
						b.StartTimer()
					}
					raised := stageFloor(st.Topology, snap, &ds[k], st.Round.Prediction.Peak, mode)
					if len(raised) == 0 {
						b.Fatal("nothing raised")
					}
					noteStageFloor(st.Topology, dcss[k], raised, st.Round.Provisions)
				}
			})
		}
	}
}
