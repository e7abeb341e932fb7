package daemon

import (
	"strings"
	"testing"

	"github.com/ims-orch/ims-orch/controller/fsm"
	"github.com/ims-orch/ims-orch/controller/global"
	"github.com/ims-orch/ims-orch/controller/local"
	"github.com/ims-orch/ims-orch/controller/protocol"
)

// outcomeStore is a store whose only method used here is Outcomes.
type outcomeStore struct {
	global.Store
	outs []fsm.RoundOutcome
}

func (s outcomeStore) Outcomes() []fsm.RoundOutcome { return s.outs }

// GET /decisions' proactive entries: a target that leaves the counts
// unchanged is skipped, unless it carries the round's hold (keepBuffered),
// which the entry's detail shows.
func TestDecisionHistoryShowsKeepBuffered(t *testing.T) {
	st := outcomeStore{outs: []fsm.RoundOutcome{{Round: 4, Entered: true, DCs: []fsm.DCOutcome{{DC: "tokyo", State: fsm.OutcomeApplied,
		Targets: []protocol.VNFTarget{
			{VNF: "transcoder", Working: 3, Reason: "plan; stage floor", KeepBuffered: 1},
			{VNF: "ids", Working: 2, Reason: "plan"},
		}}}}}}
	w := newWatcher(&Daemon{store: st})
	ds := w.outcomeDecisions(map[string]local.VNFConfig{})
	if len(ds) != 1 || ds[0].VNF != "transcoder" || ds[0].Delta != 0 || ds[0].Detail["keepBuffered"] != 1 {
		t.Fatalf("decisions %+v, want the transcoder's hold only, with keepBuffered 1", ds)
	}
}

// A hold the DC's local controller refused at step 4 (rolled back since
// step 2; the engine sent the decision again without it, DCOutcome's
// KeepRefused) is not shown as applied: the entry names the refusal
// (detail keepRefused) and carries no keepBuffered.
func TestDecisionHistoryShowsKeepRefused(t *testing.T) {
	st := outcomeStore{outs: []fsm.RoundOutcome{{Round: 4, Entered: true, DCs: []fsm.DCOutcome{{DC: "tokyo", State: fsm.OutcomeApplied,
		KeepRefused: true, Targets: []protocol.VNFTarget{{VNF: "transcoder", Working: 3, Reason: "plan; stage floor", KeepBuffered: 1}}}}}}}
	ds := newWatcher(&Daemon{store: st}).outcomeDecisions(map[string]local.VNFConfig{})
	if len(ds) != 1 {
		t.Fatalf("decisions %+v, want the transcoder's refused hold", ds)
	}
	if _, ok := ds[0].Detail["keepBuffered"]; ok || ds[0].Detail["keepRefused"] != 1 ||
		!strings.Contains(ds[0].Reason, "hold of 1 buffered refused") {
		t.Fatalf("decision %+v: want keepRefused 1, no keepBuffered, a reason naming the refusal", ds[0])
	}
}
