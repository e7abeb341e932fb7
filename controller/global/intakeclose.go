package global

import (
	"github.com/ims-orch/ims-orch/controller/fsm"
)

// An engine closes an interval in memory (predict: its intake becomes
// closing, a new one takes the next interval's reports) before the log
// has the close. When it stops leading with that commit in flight, the
// log may get its close (a commit whose answer came too late) or not
// (raft lost the entry; the next leader resumes the round and closes the
// interval with its own intake, which has the reports the reporters
// re-sent to it: those this engine counted in the next interval among
// them, since a reporter re-sends every report not counted in an interval
// before the new leader's). Once the log shows the interval closed,
// closeSettled tells the two apart by the close's token
// (fsm.Prediction.ClosedBy): only after this engine's own close is its
// intake of the next interval that interval's. After another leader's it
// is dropped, so that an engine leading again in that interval (A→B→A)
// does not count a report B counted in the interval before a second time.

// closeSettled forgets the closing intake once the committed state st
// shows its interval closed, and tells whether it dropped the intake of
// the next interval with it: when the close in the log is another
// leader's, in (reports this engine took after a close that never
// happened) is replaced by an empty intake of the interval st measures,
// begun at the committed round start, and the duplicate memory names the
// interval closed as the one its reports were counted in (the other
// leader counted those re-sent to it there; a copy is answered as that
// interval's duplicate, and no leader measuring the next interval gets
// it again: transport.Reporter's skip rule).
func (e *Engine) closeSettled(st *fsm.State) (dropped bool) {
	if e.closing == nil || e.closingFor == measuring(st) {
		return false
	}
	closed := e.closingFor
	e.closing = nil
	if closedBy(st, e.d.Store.History, closed) == e.token {
		return false
	}
	n := 0
	for _, k := range e.in.reports {
		n += k
	}
	e.log.Warn("another leader closed the interval this engine had closed in memory: the reports it took since are that interval's, dropped",
		"interval", closed, "reports", n)
	e.stats.DroppedOnLostClose += n
	e.seen.relabel(closed+1, closed)
	e.in, e.inFor = newIntake(), measuring(st)
	e.inSince, e.inSinceStored = intervalBegan(st), true
	return true
}

// closedBy is the token of the committed close of interval round
// (fsm.Prediction.ClosedBy): from the round in progress, else from the
// history (hist is read only when needed); "" when the log does not say.
func closedBy(st *fsm.State, hist func() []fsm.Prediction, round uint64) string {
	if r := st.Round; r != nil && r.Round == round {
		if r.Prediction != nil && r.Prediction.Round == round {
			return r.Prediction.ClosedBy
		}
		return ""
	}
	h := hist()
	for i := len(h) - 1; i >= 0; i-- {
		if h[i].Round == round {
			return h[i].ClosedBy
		}
	}
	return ""
}
