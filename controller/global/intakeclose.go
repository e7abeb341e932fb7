package global

import (
	"maps"
	"slices"

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
// (fsm.Prediction.ClosedBy; a close without one by its averages: ownClose):
// only after this engine's own close is its
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
	closed, proposed := e.closingFor, e.closingActual
	e.closing, e.closingActual = nil, nil
	n := 0
	for _, k := range e.in.reports {
		n += k
	}
	p := committedClose(st, e.d.Store.History, closed)
	switch own, byAverages := ownClose(p, e.token, proposed); {
	case own && byAverages:
		// a rolling upgrade from session 12 only (a close without a
		// token): another node's redo with the same averages is taken for
		// this engine's too (ownClose), so operators see each such keep
		e.stats.KeptOnMatchingAverages++
		e.log.Info("a close without a token matched this engine's proposal: intake kept because the averages matched "+
			"(another node's redo with the same averages would count the reports re-sent to it twice)",
			"interval", closed, "reports", n)
		return false
	case own:
		return false
	}
	e.log.Warn("another leader closed the interval this engine had closed in memory: the reports it took since are that interval's, dropped",
		"interval", closed, "reports", n)
	e.stats.DroppedOnLostClose += n
	e.seen.relabel(closed+1, closed)
	if p != nil && p.ClosedBy != "" {
		e.noteDropped(closed, EngineID(p.ClosedBy))
	}
	e.in, e.inFor = newIntake(), measuring(st)
	e.inSince, e.inSinceStored = intervalBegan(st), true
	return true
}

// ownClose tells whether the committed close p (nil: the log has none)
// is this engine's (own), and whether only its averages said so
// (byAverages): it names this engine's token, or it names none and its
// averages are exactly those of one of this engine's proposals of the
// close (proposed). A close without a token was committed by an older
// node, or is a close committed with a token (this engine's or another
// node's) read from a snapshot an older leader took: that older leader's
// FSM dropped the field it does not know when it applied the entry (a
// rolling upgrade from session 12; the entry itself carried the token).
// The averages tell this engine's close from another node's redo only
// when they differ: equal averages do not prove equal report sets. Each
// series' average is the sum over DCs of the mean of the DC's reports,
// so another node's redo that counted the reports re-sent to it besides
// this engine's has the same averages when those reports' rates average
// the DC's mean (steady load; rates that cancel out, as 150 and 50 about
// 100). Then this engine keeps its intake of the next interval, and the
// reports re-sent to the other node count in both intervals (changing
// the closed interval's averages by nothing): a limitation of a 12→14
// upgrade, counted in Stats.KeptOnMatchingAverages and logged.
func ownClose(p *fsm.Prediction, token string, proposed []map[string]float64) (own, byAverages bool) {
	switch {
	case p == nil:
		return false, false
	case p.ClosedBy != "":
		return p.ClosedBy == token, false
	}
	own = slices.ContainsFunc(proposed, func(a map[string]float64) bool { return maps.Equal(a, p.Actual) })
	return own, own
}

// committedClose is the committed close of interval round (step 1's
// fsm.Prediction): from the round in progress, else from the history
// (hist is read only when needed); nil when the log does not have it.
func committedClose(st *fsm.State, hist func() []fsm.Prediction, round uint64) *fsm.Prediction {
	if r := st.Round; r != nil && r.Round == round {
		if r.Prediction != nil && r.Prediction.Round == round {
			return r.Prediction
		}
		return nil
	}
	h := hist()
	for i := len(h) - 1; i >= 0; i-- {
		if h[i].Round == round {
			return &h[i]
		}
	}
	return nil
}
