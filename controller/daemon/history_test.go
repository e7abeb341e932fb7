package daemon

import (
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
