package fsm

import (
	"slices"
	"time"

	"github.com/ims-orch/ims-orch/controller/protocol"
)

// Round outcomes (issue 19): the decision history every node derives from
// the replicated log alone, so it is the same on every node and right for
// a round a new leader resumed at any step. DecisionCommitted records what
// was decided for each DC; RoundStepDone of step 4 what each DC
// acknowledged (instances created and reused) or refused (the local
// controller's error, e.g. a target above its bound); IntervalEntered which
// DCs entered the interval (applied). A DC given up at a step is recorded
// as given up there, never as applied. State.Outcomes keeps the last
// MaxOutcomes rounds, oldest first.

// MaxOutcomes is how many round outcomes the state keeps.
const MaxOutcomes = 64

// Outcome states of a DC in a round.
const (
	OutcomeDecided  = "decided" // decision committed, step 4 not done yet
	OutcomeAcked    = "acknowledged"
	OutcomeRefused  = "refused"  // acknowledged with an error: (part of) the decision not applied
	OutcomeApplied  = "applied"  // entered the interval with the decision
	OutcomeGivenUp  = "given-up" // stopped answering: GivenUpAt says at which step
	OutcomeNoAnswer = ""
)

// DCAnswer is what a DC answered at step 4.
type DCAnswer struct {
	Created int    `json:"created,omitempty"`
	Reused  int    `json:"reused,omitempty"`
	Error   string `json:"error,omitempty"`
	// KeepRefused: the local controller refused the decision's
	// keepBuffered (rolled back since its step-2 report advertised it) and
	// got it again without the field: the round's hold was not applied.
	KeepRefused bool `json:"keepRefused,omitempty"`
}

// DCOutcome is one DC's part of a round.
type DCOutcome struct {
	DC      string               `json:"dc"`
	Targets []protocol.VNFTarget `json:"targets,omitempty"`
	State   string               `json:"state"`
	// Refused is the local controller's error at step 4 (its refusals).
	Refused   string        `json:"refused,omitempty"`
	Created   int           `json:"created,omitempty"`
	Reused    int           `json:"reused,omitempty"`
	GivenUpAt protocol.Step `json:"givenUpAt,omitempty"`
	// KeepRefused: the targets' KeepBuffered was not applied (DCAnswer).
	KeepRefused bool `json:"keepRefused,omitempty"`
}

// RoundOutcome is one round's decisions and what became of them.
type RoundOutcome struct {
	Round uint64      `json:"round"`
	DCs   []DCOutcome `json:"dcs"`
	// Entered is true once the round's interval was entered (step 5), at
	// EnteredAt (the leader's clock).
	Entered   bool      `json:"entered,omitempty"`
	EnteredAt time.Time `json:"enteredAt,omitzero"`
}

func (s *State) outcome(round uint64) *RoundOutcome {
	for i := len(s.Outcomes) - 1; i >= 0; i-- {
		if s.Outcomes[i].Round == round {
			return &s.Outcomes[i]
		}
	}
	return nil
}

// recordDecided opens the outcome of a round at DecisionCommitted.
func (s *State) recordDecided(round uint64, ds []protocol.DCDecision, unreachable map[string]protocol.Step) {
	o := RoundOutcome{Round: round}
	for _, d := range ds {
		do := DCOutcome{DC: d.DC, Targets: slices.Clone(d.Targets), State: OutcomeDecided}
		if step, gone := unreachable[d.DC]; gone {
			do.State, do.GivenUpAt = OutcomeGivenUp, step
		}
		o.DCs = append(o.DCs, do)
	}
	slices.SortFunc(o.DCs, func(a, b DCOutcome) int {
		if a.DC < b.DC {
			return -1
		}
		if a.DC > b.DC {
			return 1
		}
		return 0
	})
	s.Outcomes = append(s.Outcomes, o)
	if len(s.Outcomes) > MaxOutcomes {
		s.Outcomes = slices.Clone(s.Outcomes[len(s.Outcomes)-MaxOutcomes:])
	}
}

// recordAcked applies step 4's answers and given-up DCs.
func (s *State) recordAcked(round uint64, answers map[string]DCAnswer, gaveUp []string) {
	o := s.outcome(round)
	if o == nil {
		return
	}
	for i := range o.DCs {
		d := &o.DCs[i]
		if d.State == OutcomeGivenUp {
			continue
		}
		if slices.Contains(gaveUp, d.DC) {
			d.State, d.GivenUpAt = OutcomeGivenUp, protocol.StepBroadcast
			continue
		}
		a, ok := answers[d.DC]
		if !ok {
			continue // a leader of an older version: no answers recorded
		}
		d.Created, d.Reused, d.Refused, d.KeepRefused = a.Created, a.Reused, a.Error, a.KeepRefused
		d.State = OutcomeAcked
		if a.Error != "" {
			d.State = OutcomeRefused
		}
	}
}

// recordEntered closes the outcome at IntervalEntered.
func (s *State) recordEntered(round uint64, gaveUp []string, at time.Time) {
	o := s.outcome(round)
	if o == nil {
		return
	}
	o.Entered, o.EnteredAt = true, at
	for i := range o.DCs {
		d := &o.DCs[i]
		switch {
		case d.State == OutcomeGivenUp:
		case slices.Contains(gaveUp, d.DC):
			d.State, d.GivenUpAt = OutcomeGivenUp, protocol.StepEnter
		case d.State == OutcomeAcked || d.State == OutcomeDecided:
			d.State = OutcomeApplied
		}
	}
}

func cloneOutcomes(os []RoundOutcome) []RoundOutcome {
	if os == nil {
		return nil
	}
	out := make([]RoundOutcome, len(os))
	for i, o := range os {
		out[i] = o
		out[i].DCs = make([]DCOutcome, len(o.DCs))
		for j, d := range o.DCs {
			out[i].DCs[j] = d
			out[i].DCs[j].Targets = slices.Clone(d.Targets)
		}
	}
	return out
}

// Outcomes returns a copy of the round outcomes, oldest first.
func (f *FSM) Outcomes() []RoundOutcome {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return cloneOutcomes(f.s.Outcomes)
}
