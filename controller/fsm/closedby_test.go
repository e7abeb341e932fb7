package fsm

import (
	"bytes"
	"io"
	"reflect"
	"slices"
	"testing"

	"github.com/ims-orch/ims-orch/controller/protocol"
)

// A step-1 commit's ClosedBy (the round engine's token: whose intake the
// averages came from) and Peak (the declared profile's loads at full rise)
// survive the log's encoding and a snapshot in the round in progress: an
// engine leading again reads ClosedBy to tell its own close from another
// leader's, and a resumed round's stage floor reads Peak there
// (controller/global). The history keeps ClosedBy but not Peak, which
// nothing reads there (up to N² values a round): not after an apply, not
// after a snapshot, not from an older node's snapshot whose history
// entries carry it.
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
			len(s.History) != 1 || s.History[0].ClosedBy != "engine-a" || s.History[0].Peak != nil || s.History[0].Actual["dp/a/b"] != 1 {
			t.Fatalf("%s: round %+v, history %+v; want ClosedBy engine-a in both, Peak dp/a/b 2 in the round only", what, s.Round, s.History)
		}
	}
	check("applied", f.full())
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	g, _ := restored(t, snap)
	check("restored from a snapshot", g.full())

	// an older node's snapshot: its history entry carries Peak
	old := f.full()
	old.History[0].Peak = map[string]float64{"dp/a/b": 2}
	var buf bytes.Buffer
	if err := WriteSnapshot(&buf, old); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(buf.Bytes(), []byte(`"history":{"round":0,"actual":{"dp/a/b":1},"predicted":{"dp/a/b":1},"closedBy":"engine-a","peak":{"dp/a/b":2}}`)) {
		t.Fatalf("the older snapshot's history record has no peak: %s", buf.Bytes())
	}
	h := New()
	if err := h.Restore(io.NopCloser(&buf)); err != nil {
		t.Fatal(err)
	}
	check("restored from an older node's snapshot", h.full())
}

// forHistory keeps exactly historyFields, whatever fields Prediction
// gains: a new round-only field (a per-pair map like Peak) is out of the
// history without a change here, and a field the history must keep is
// added to historyFields and to forHistory together, or this fails.
func TestForHistoryKeepsHistoryFieldsOnly(t *testing.T) {
	var p Prediction
	v := reflect.ValueOf(&p).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.Uint64:
			f.SetUint(uint64(i + 1))
		case reflect.String:
			f.SetString(v.Type().Field(i).Name)
		case reflect.Map:
			m := reflect.MakeMap(f.Type())
			m.SetMapIndex(reflect.New(f.Type().Key()).Elem(), reflect.New(f.Type().Elem()).Elem())
			f.Set(m)
		default:
			t.Fatalf("Prediction.%s: a %s; give this test a non-zero value of it", v.Type().Field(i).Name, f.Kind())
		}
	}
	h := reflect.ValueOf(p.forHistory())
	for i := range v.NumField() {
		name := v.Type().Field(i).Name
		kept := !h.Field(i).IsZero()
		if want := slices.Contains(historyFields, name); kept != want {
			t.Errorf("Prediction.%s in the history: %v, want %v (historyFields %v)", name, kept, want, historyFields)
		}
	}
}
