package fsm

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ims-orch/ims-orch/controller/protocol"
)

// MessageType is the first byte of every raft log entry. Numbers are never
// reused: a retired command keeps its number reserved.
type MessageType uint8

// The command types.
const (
	SetTopologyType       MessageType = 1
	SetPolicyType         MessageType = 2
	RoundStartedType      MessageType = 3
	RoundStepDoneType     MessageType = 4
	DecisionCommittedType MessageType = 5
	IntervalEnteredType   MessageType = 6
	PutDocType            MessageType = 7
	DeleteDocType         MessageType = 8
	SetDrainType          MessageType = 9
	DrainOperationType    MessageType = 10
)

// IgnoreUnknownFlag is the bit of a command type that a node which does not
// know the type may skip (Consul's IgnoreUnknownTypeFlag): set it only on a
// command whose effect older nodes can do without and whose absence never
// changes how they apply later commands. No command of this version
// carries it.
const IgnoreUnknownFlag MessageType = 0x80

// ErrUnknownCommand is wrapped by Decode for a type byte this version has
// no handler for.
var ErrUnknownCommand = errors.New("fsm: unknown command type")

// Command is one replicated state change.
type Command interface {
	Type() MessageType
}

// SetTopology replaces the topology.
type SetTopology struct {
	Topology Topology `json:"topology"`
}

// SetPolicy replaces the policy.
type SetPolicy struct {
	Policy Policy `json:"policy"`
}

// RoundStarted opens round Round (it must equal the current interval).
type RoundStarted struct {
	Round uint64 `json:"round"`
	// At is when the leader started the round (the interval boundary a new
	// leader keeps; zero in entries written before it existed).
	At time.Time `json:"at,omitzero"`
}

// RoundStepDone closes step 1 (Prediction set, appended to the history),
// step 2 (Provisions: every answered DC's report) or step 4.
type RoundStepDone struct {
	Round      uint64                              `json:"round"`
	Step       protocol.Step                       `json:"step"`
	Prediction *Prediction                         `json:"prediction,omitempty"`
	Provisions map[string]protocol.ProvisionReport `json:"provisions,omitempty"`
	// Unreachable lists the DCs given up at this step.
	Unreachable []string `json:"unreachable,omitempty"`
	// Answers are the DCs' step-4 answers (the decision history, outcomes.go).
	Answers map[string]DCAnswer `json:"answers,omitempty"`
}

// DecisionCommitted closes step 3 with the per-DC decisions and the next
// interval's path set.
type DecisionCommitted struct {
	Round    uint64                `json:"round"`
	Decision []protocol.DCDecision `json:"decision"`
	Paths    []protocol.PathEntry  `json:"paths"`
}

// IntervalEntered closes step 5 and the round: the interval index becomes
// Round+1 and the decision's paths are in force.
type IntervalEntered struct {
	Round       uint64   `json:"round"`
	Unreachable []string `json:"unreachable,omitempty"`
	// At is the leader's clock when the round closed (the decision history's
	// time, the same on every node).
	At time.Time `json:"at,omitzero"`
}

// PutDoc creates or replaces the replicated document Key (see State.Docs
// for the key prefixes). Doc must be a JSON object of at most MaxDocBytes;
// it is stored compacted.
type PutDoc struct {
	Key string          `json:"key"`
	Doc json.RawMessage `json:"doc"`
}

// DeleteDoc removes the document Key; removing a missing document is a
// no-op (a re-sent delete changes nothing).
type DeleteDoc struct {
	Key string `json:"key"`
}

// SetDrain starts (Drain true) or ends the drain of datacenter DC. The DC
// must be in the topology; the S-CSCF DC and the last undrained DC cannot be
// drained. Setting the state a DC already has is a no-op.
type SetDrain struct {
	DC    string `json:"dc"`
	Drain bool   `json:"drain"`
}

// DrainOperation drains or undrains DC together with its operation records,
// as one entry: SetDrain's rule on DC (refused with *DrainRefusedError), then
// every record written as PutDoc would (keys under DocOp), then the oldest
// DocOp records beyond KeepOps deleted (ordered by OpSeq; 0 keeps all).
// Atomic: a refusal leaves the state unchanged.
type DrainOperation struct {
	DC      string                     `json:"dc"`
	Drain   bool                       `json:"drain"`
	Records map[string]json.RawMessage `json:"records"`
	KeepOps int                        `json:"keepOps,omitempty"`
}

// Type implementations.
func (SetTopology) Type() MessageType       { return SetTopologyType }
func (SetPolicy) Type() MessageType         { return SetPolicyType }
func (RoundStarted) Type() MessageType      { return RoundStartedType }
func (RoundStepDone) Type() MessageType     { return RoundStepDoneType }
func (DecisionCommitted) Type() MessageType { return DecisionCommittedType }
func (IntervalEntered) Type() MessageType   { return IntervalEnteredType }
func (PutDoc) Type() MessageType            { return PutDocType }
func (DeleteDoc) Type() MessageType         { return DeleteDocType }
func (SetDrain) Type() MessageType          { return SetDrainType }
func (DrainOperation) Type() MessageType    { return DrainOperationType }

type handler struct {
	decode func([]byte) (Command, error)
	apply  func(*State, Command) error
}

func dec[T Command](b []byte) (Command, error) {
	var c T
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, err
	}
	return c, nil
}

// registry is the command table: type byte → decoder and handler.
var registry = map[MessageType]handler{
	SetTopologyType:       {dec[SetTopology], applySetTopology},
	SetPolicyType:         {dec[SetPolicy], applySetPolicy},
	RoundStartedType:      {dec[RoundStarted], applyRoundStarted},
	RoundStepDoneType:     {dec[RoundStepDone], applyRoundStepDone},
	DecisionCommittedType: {dec[DecisionCommitted], applyDecisionCommitted},
	IntervalEnteredType:   {dec[IntervalEntered], applyIntervalEntered},
	PutDocType:            {dec[PutDoc], applyPutDoc},
	DeleteDocType:         {dec[DeleteDoc], applyDeleteDoc},
	SetDrainType:          {dec[SetDrain], applySetDrain},
	DrainOperationType:    {dec[DrainOperation], applyDrainOperation},
}

// Encode turns a command into a raft log entry: type byte + JSON.
func Encode(c Command) ([]byte, error) {
	if _, ok := registry[c.Type()]; !ok {
		return nil, fmt.Errorf("fsm: unknown command type %d", c.Type())
	}
	body, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	return append([]byte{byte(c.Type())}, body...), nil
}

// Decode parses a raft log entry.
func Decode(b []byte) (Command, error) {
	if len(b) == 0 {
		return nil, errors.New("fsm: empty log entry")
	}
	h, ok := registry[MessageType(b[0])]
	if !ok {
		return nil, fmt.Errorf("%w %d", ErrUnknownCommand, b[0])
	}
	c, err := h.decode(b[1:])
	if err != nil {
		return nil, fmt.Errorf("fsm: command type %d: %w", b[0], err)
	}
	return c, nil
}

// ApplyTo applies a command to a state (the deterministic core of Apply).
// On error the state is unchanged.
func ApplyTo(s *State, c Command) error {
	h, ok := registry[c.Type()]
	if !ok {
		return fmt.Errorf("fsm: unknown command type %d", c.Type())
	}
	return h.apply(s, c)
}

func applySetTopology(s *State, c Command) error {
	t := c.(SetTopology).Topology
	if err := t.Validate(); err != nil {
		return err
	}
	// the policy's limits and the drained DCs must still name parts of it
	if err := s.Policy.ValidateLimits(&t); err != nil {
		return fmt.Errorf("topology: the policy in force no longer fits: %w", err)
	}
	if err := checkDrained(&t, s.Drained); err != nil {
		return err
	}
	s.Topology = &t
	return nil
}

func applySetPolicy(s *State, c Command) error {
	p := c.(SetPolicy).Policy
	if err := p.Validate(); err != nil {
		return err
	}
	if err := p.ValidateLimits(s.Topology); err != nil {
		return err
	}
	s.Policy = p
	return nil
}

func stale(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrStale}, a...)...)
}

func applyRoundStarted(s *State, c Command) error {
	r := c.(RoundStarted).Round
	if r != s.Interval {
		return stale("round %d started, current interval is %d", r, s.Interval)
	}
	if s.Round != nil {
		return stale("round %d already in progress", s.Round.Round)
	}
	s.Round = &Round{Round: r}
	if at := c.(RoundStarted).At; !at.IsZero() {
		s.RoundStartedAt = at
	}
	return nil
}

func current(s *State, round uint64, done protocol.Step) error {
	if s.Round == nil || s.Round.Round != round {
		return stale("round %d is not in progress", round)
	}
	if s.Round.Done != done {
		return stale("round %d: last done step is %d, want %d", round, s.Round.Done, done)
	}
	return nil
}

func markUnreachable(r *Round, dcs []string, step protocol.Step) {
	for _, dc := range dcs {
		if r.Unreachable == nil {
			r.Unreachable = map[string]protocol.Step{}
		}
		if _, ok := r.Unreachable[dc]; !ok {
			r.Unreachable[dc] = step
		}
	}
}

func applyRoundStepDone(s *State, c Command) error {
	cmd := c.(RoundStepDone)
	switch cmd.Step {
	case protocol.StepPredict, protocol.StepAcquire, protocol.StepBroadcast:
	default:
		return fmt.Errorf("fsm: RoundStepDone step %d: only steps 1, 2 and 4 are closed by RoundStepDone", cmd.Step)
	}
	if err := current(s, cmd.Round, cmd.Step-1); err != nil {
		return err
	}
	switch cmd.Step {
	case protocol.StepPredict:
		if cmd.Prediction == nil {
			return errors.New("fsm: RoundStepDone step 1: prediction is missing")
		}
		p := *cmd.Prediction
		p.Round = cmd.Round
		s.Round.Prediction = &p
		s.History = append(s.History, p.forHistory())
		if len(s.History) > MaxHistory {
			s.History = append([]Prediction(nil), s.History[len(s.History)-MaxHistory:]...)
		}
	case protocol.StepAcquire:
		s.Round.Provisions = cmd.Provisions
		for dc, rep := range cmd.Provisions {
			if s.LastProvision == nil {
				s.LastProvision = map[string]protocol.ProvisionReport{}
			}
			s.LastProvision[dc] = rep
		}
	}
	markUnreachable(s.Round, cmd.Unreachable, cmd.Step)
	s.Round.Done = cmd.Step
	if cmd.Step == protocol.StepBroadcast {
		s.recordAcked(cmd.Round, cmd.Answers, cmd.Unreachable)
	}
	return nil
}

func applyDecisionCommitted(s *State, c Command) error {
	cmd := c.(DecisionCommitted)
	if err := current(s, cmd.Round, protocol.StepAcquire); err != nil {
		return err
	}
	s.Round.Decision = cmd.Decision
	s.Round.Paths = cmd.Paths
	s.Round.Done = protocol.StepCompute
	s.recordDecided(cmd.Round, cmd.Decision, s.Round.Unreachable)
	return nil
}

func applyIntervalEntered(s *State, c Command) error {
	cmd := c.(IntervalEntered)
	if err := current(s, cmd.Round, protocol.StepBroadcast); err != nil {
		return err
	}
	markUnreachable(s.Round, cmd.Unreachable, protocol.StepEnter)
	s.recordEntered(cmd.Round, cmd.Unreachable, cmd.At)
	if s.Stale == nil {
		s.Stale = map[string]uint64{}
	}
	if s.Topology != nil {
		for dc := range s.Stale {
			if s.Topology.Index(dc) < 0 {
				delete(s.Stale, dc) // removed from the topology
			}
		}
		for _, dc := range s.Topology.DCs {
			if step, gone := s.Round.Unreachable[dc]; gone && step >= protocol.StepAcquire {
				// A DC given up at any step missed this round's decision or
				// its entry: it is re-synced by the next round it answers.
				s.Stale[dc] = cmd.Round
			} else if !gone {
				delete(s.Stale, dc)
			}
		}
	}
	if len(s.Stale) == 0 {
		s.Stale = nil
	}
	s.Paths = s.Round.Paths
	s.Interval = cmd.Round + 1
	s.Round = nil
	return nil
}
