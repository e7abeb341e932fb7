package fsm

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/controller/protocol"
)

// The decision history derived from the log: decided, refused, given up at
// step 2, 4 or 5, applied — the same for any replica that applies the same
// log (a new leader resuming at step 4 or 5 only adds the later commands),
// and carried by snapshots.
func TestRoundOutcomes(t *testing.T) {
	f := New()
	top := topo3()
	if err := apply(f, SetTopology{Topology: top}); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 1, 1, 0, 0, 30, 0, time.UTC)
	tg := func(vnf string, w int) []protocol.VNFTarget {
		return []protocol.VNFTarget{{VNF: vnf, Working: w, Create: w}}
	}
	log := []Command{
		RoundStarted{Round: 0},
		RoundStepDone{Round: 0, Step: protocol.StepPredict, Prediction: &Prediction{}},
		RoundStepDone{Round: 0, Step: protocol.StepAcquire, Unreachable: []string{"c"}},
		DecisionCommitted{Round: 0, Decision: []protocol.DCDecision{
			{DC: "a", Interval: 1, Targets: tg("fw", 2)}, {DC: "b", Interval: 1, Targets: tg("fw", 300)}, {DC: "c", Interval: 1, Targets: tg("fw", 1)}}},
		RoundStepDone{Round: 0, Step: protocol.StepBroadcast, Answers: map[string]DCAnswer{
			"a": {Created: 2, KeepRefused: true}, "b": {Error: "decision.targets[0].working 300: refused, above the bound 253"}}},
		IntervalEntered{Round: 0, At: at},
	}
	for _, c := range log {
		if err := apply(f, c); err != nil {
			t.Fatalf("%T: %v", c, err)
		}
	}
	got := f.Outcomes()
	want := []RoundOutcome{{Round: 0, Entered: true, EnteredAt: at, DCs: []DCOutcome{
		{DC: "a", Targets: tg("fw", 2), State: OutcomeApplied, Created: 2, KeepRefused: true}, // its hold refused (step 4)
		{DC: "b", Targets: tg("fw", 300), State: OutcomeRefused, Refused: "decision.targets[0].working 300: refused, above the bound 253"},
		{DC: "c", Targets: tg("fw", 1), State: OutcomeGivenUp, GivenUpAt: protocol.StepAcquire},
	}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("outcomes\n got %+v\nwant %+v", got, want)
	}
	// round 1: b given up at step 4, a at step 5
	r1 := []Command{
		RoundStarted{Round: 1},
		RoundStepDone{Round: 1, Step: protocol.StepPredict, Prediction: &Prediction{}},
		RoundStepDone{Round: 1, Step: protocol.StepAcquire},
		DecisionCommitted{Round: 1, Decision: []protocol.DCDecision{{DC: "a", Interval: 2, Targets: tg("fw", 3)}, {DC: "b", Interval: 2, Targets: tg("fw", 1)}}},
		RoundStepDone{Round: 1, Step: protocol.StepBroadcast, Unreachable: []string{"b"}, Answers: map[string]DCAnswer{"a": {Created: 1}}},
		IntervalEntered{Round: 1, Unreachable: []string{"a"}, At: at.Add(time.Minute)},
	}
	for _, c := range r1 {
		if err := apply(f, c); err != nil {
			t.Fatalf("%T: %v", c, err)
		}
	}
	o := f.Outcomes()[1]
	if o.DCs[0].State != OutcomeGivenUp || o.DCs[0].GivenUpAt != protocol.StepEnter || o.DCs[1].State != OutcomeGivenUp || o.DCs[1].GivenUpAt != protocol.StepBroadcast {
		t.Fatalf("round 1 outcome %+v", o)
	}
	// a replica that restores a snapshot has the same history
	var buf bytes.Buffer
	if err := WriteSnapshot(&buf, f.full()); err != nil {
		t.Fatal(err)
	}
	g := New()
	if err := g.Restore(nopCloser{&buf}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g.Outcomes(), f.Outcomes()) {
		t.Fatalf("restored outcomes differ:\n%+v\n%+v", g.Outcomes(), f.Outcomes())
	}
	if s := f.State(); s.Outcomes != nil {
		t.Fatal("State() carries the outcomes")
	}
}

type nopCloser struct{ *bytes.Buffer }

func (nopCloser) Close() error { return nil }
