package fsm

import (
	"testing"

	"github.com/ims-orch/ims-orch/controller/protocol"
)

// A step-1 commit's ClosedBy (the round engine's token: whose intake the
// averages came from) and Peak (the declared profile's loads at full rise)
// survive the log's encoding and a snapshot, in the round in progress and in
// the history: an engine leading again reads ClosedBy there to tell its own
// close from another leader's, and a resumed round's stage floor reads Peak
// (controller/global).
func TestPredictionKeepsClosedByAndPeak(t *testing.T) {
	f := New()
	cmds := []Command{SetTopology{Topology: topo()}, RoundStarted{Round: 0},
		RoundStepDone{Round: 0, Step: protocol.StepPredict, Prediction: &Prediction{Actual: map[string]float64{"dp/a/b": 1},
			Predicted: map[string]float64{"dp/a/b": 1}, ClosedBy: "engine-a",
			Peak: map[string]float64{"dp/a/b": 2}}}}
	for _, c := range cmds {
		if err := apply(f, c); err != nil {
			t.Fatalf("%T: %v", c, err)
		}
	}
	check := func(what string, s State) {
		t.Helper()
		if s.Round == nil || s.Round.Prediction == nil || s.Round.Prediction.ClosedBy != "engine-a" ||
			s.Round.Prediction.Peak["dp/a/b"] != 2 ||
			len(s.History) != 1 || s.History[0].ClosedBy != "engine-a" || s.History[0].Peak["dp/a/b"] != 2 {
			t.Fatalf("%s: round %+v, history %+v; want ClosedBy engine-a and Peak dp/a/b 2 in both", what, s.Round, s.History)
		}
	}
	check("applied", f.full())
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	g, _ := restored(t, snap)
	check("restored from a snapshot", g.full())
}
