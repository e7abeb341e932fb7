package daemon

import (
	"fmt"

	"github.com/ims-orch/ims-orch/api"
	"github.com/ims-orch/ims-orch/controller/fsm"
	"github.com/ims-orch/ims-orch/controller/local"
)

// The proactive part of the decision history (issue 19) comes from the
// replicated round outcomes (fsm outcomes.go), not from this node's round
// engine: every node records the same proactive decisions, rounds a new
// leader resumed at step 4 or 5 included, each with what became of it —
// applied, refused by the DC's local controller (its error), or not applied
// because the DC was given up (at which step). A round's decisions are
// recorded once its interval is entered.

// outcomeSource is a store that keeps the round outcomes.
type outcomeSource interface {
	Outcomes() []fsm.RoundOutcome
}

// outcomeDecisions returns the decisions of rounds entered since the last
// call. The caller holds w.mu.
func (w *watcher) outcomeDecisions(mins map[string]local.VNFConfig) []api.Decision {
	src, ok := w.d.store.(outcomeSource)
	if !ok {
		return nil
	}
	var out []api.Decision
	for _, o := range src.Outcomes() {
		if !o.Entered || int64(o.Round) <= w.lastOutcome {
			continue
		}
		w.lastOutcome = int64(o.Round)
		for _, d := range o.DCs {
			for _, t := range d.Targets {
				// the local controller keeps a VNF's minimum whatever the plan says
				before := t.Working - t.Create - t.Reuse + t.ToBuffer
				delta := max(t.Working, mins[t.VNF].Min) - before
				if delta == 0 && t.KeepBuffered == 0 && d.State == fsm.OutcomeApplied {
					continue
				}
				reason := t.Reason
				switch d.State {
				case fsm.OutcomeRefused:
					reason = "refused by the local controller (" + d.Refused + "): " + reason
				case fsm.OutcomeGivenUp:
					reason = fmt.Sprintf("not applied: %s was given up at step %d (%s): %s", d.DC, d.GivenUpAt, d.GivenUpAt, reason)
				}
				detail := map[string]any{"interval": o.Round + 1, "working": t.Working, "create": t.Create,
					"reuse": t.Reuse, "toBuffer": t.ToBuffer, "outcome": d.State}
				switch {
				case t.KeepBuffered > 0 && d.KeepRefused:
					// the local controller was rolled back: sent without the hold
					detail["keepRefused"] = t.KeepBuffered
					reason = fmt.Sprintf("hold of %d buffered refused: the local controller does not know keepBuffered any more (rolled back), the decision was applied without it: %s",
						t.KeepBuffered, reason)
				case t.KeepBuffered > 0: // the round's hold (a hold-only target has delta 0)
					detail["keepBuffered"] = t.KeepBuffered
				}
				if d.Refused != "" {
					detail["refused"] = d.Refused
				}
				if d.State == fsm.OutcomeGivenUp {
					detail["givenUpAtStep"] = int(d.GivenUpAt)
				}
				out = append(out, api.Decision{Round: int64(o.Round), At: o.EnteredAt, Kind: api.DecisionProactive,
					DC: d.DC, VNF: t.VNF, Delta: delta, Reason: reason, Detail: detail})
			}
		}
	}
	return out
}
