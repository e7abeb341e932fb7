// Package fsm owns the global controller's replicated state: the interval
// index, the round in progress (step by step), the committed decisions and
// path sets, the policy, the topology and the prediction history. It is a
// hashicorp/raft FSM in the Consul style: every command is a type byte
// followed by a JSON body, a registration table maps each type to its
// handler, Apply is deterministic (no clock, no randomness, no I/O), Snapshot
// only grabs a copy and Persist writes typed JSON-lines records. Type numbers
// are never reused. NewNode sets up a raft node (raft-wal + file snapshots on
// disk, or raft's in-memory stores for tests).
//
// Round progress inside the state:
//
//	            RoundStarted{t}
//	(no round) ───────────────▶ Done=0 ──StepDone{1}──▶ 1 ──StepDone{2}──▶ 2
//	     ▲                                                                   │
//	     │ IntervalEntered{t}: Interval=t+1, Paths=decision paths   DecisionCommitted{t}
//	     │                                                                   ▼
//	     └────────────────── 4 ◀──StepDone{4}────────────────────────────── 3
//
// A command that does not follow this order (a re-sent or late command from a
// deposed leader) is rejected with ErrStale and changes nothing, so no step is
// applied twice.
//
// Besides the rounds the state holds what operators write through the API:
// the policy's instance limits (SetPolicy), the drained datacenters
// (SetDrain) and documents the controllers do not interpret (PutDoc,
// DeleteDoc: saved policies, datacenter labels, operation records).
package fsm

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/ims-orch/ims-orch/controller/protocol"
	"github.com/ims-orch/ims-orch/placement/vnf"
)

// MaxHistory is how many prediction records (one per round) the state keeps.
const MaxHistory = 64

// ErrStale rejects a command that does not follow the round order (already
// applied, from an older round, or out of order).
var ErrStale = errors.New("fsm: stale or out-of-order round command")

// VNF is one VNF of the catalog with the capacity of one instance
// (transactions/s for CP, packets/s for DP). It stays a struct of its own
// because it is the replicated topology's form: only what the planner
// needs (no thresholds: those are the local controllers'), plus the
// minimum per DC; NewVNF converts from the catalog's vnf.Type.
type VNF struct {
	Name     string  `json:"name"`
	Capacity float64 `json:"capacity"`
	// Min working instances per hosting DC (CP only).
	Min int `json:"min,omitempty"`
}

// NewVNF is the replicated form of a catalog type with its minimum.
func NewVNF(t vnf.Type, min int) VNF { return VNF{Name: t.Name, Capacity: t.Capacity, Min: min} }

// Topology is the static description of the system.
type Topology struct {
	// DCs names every datacenter; its order is the DC index of the plan.
	DCs []string `json:"dcs"`
	// SCSCFDC is the datacenter that hosts every S-CSCF.
	SCSCFDC string `json:"scscfDC"`
	PCSCF   VNF    `json:"pcscf"`
	SCSCF   VNF    `json:"scscf"`
	// Stages is the DP chain in order.
	Stages []VNF `json:"stages"`
	// DelayMs is the static one-way delay matrix used for links with no
	// delay report yet.
	DelayMs [][]float64 `json:"delayMs"`
}

// Index returns the DC index of name, or -1.
func (t *Topology) Index(name string) int {
	for i, d := range t.DCs {
		if d == name {
			return i
		}
	}
	return -1
}

// Validate checks a topology; the error names the field.
func (t *Topology) Validate() error {
	if len(t.DCs) == 0 {
		return errors.New("topology.dcs: at least one datacenter is needed")
	}
	seen := map[string]bool{}
	for i, d := range t.DCs {
		if d == "" || strings.ContainsAny(d, "/ \t\n") {
			return fmt.Errorf("topology.dcs[%d]: %q is not a valid name (empty, or holds '/' or white space)", i, d)
		}
		if seen[d] {
			return fmt.Errorf("topology.dcs[%d]: duplicate datacenter %q", i, d)
		}
		seen[d] = true
	}
	if !seen[t.SCSCFDC] {
		return fmt.Errorf("topology.scscfDC: %q is not one of the datacenters", t.SCSCFDC)
	}
	vnfs := append([]VNF{t.PCSCF, t.SCSCF}, t.Stages...)
	names := map[string]bool{}
	for i, v := range vnfs {
		if v.Name == "" {
			return fmt.Errorf("topology vnf %d: empty name", i)
		}
		if names[v.Name] {
			return fmt.Errorf("topology vnf %q: duplicate name", v.Name)
		}
		names[v.Name] = true
		if math.IsNaN(v.Capacity) || math.IsInf(v.Capacity, 0) || v.Capacity <= 0 {
			return fmt.Errorf("topology vnf %q capacity: must be positive, got %g", v.Name, v.Capacity)
		}
		if v.Min < 0 {
			return fmt.Errorf("topology vnf %q min: must not be negative, got %d", v.Name, v.Min)
		}
	}
	if len(t.Stages) == 0 {
		return errors.New("topology.stages: the DP chain needs at least one stage")
	}
	if len(t.DelayMs) != len(t.DCs) {
		return fmt.Errorf("topology.delayMs: %d rows, want %d", len(t.DelayMs), len(t.DCs))
	}
	for i, row := range t.DelayMs {
		if len(row) != len(t.DCs) {
			return fmt.Errorf("topology.delayMs[%d]: %d columns, want %d", i, len(row), len(t.DCs))
		}
		for j, v := range row {
			if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 || (i == j && v != 0) {
				return fmt.Errorf("topology.delayMs[%d][%d]: must be finite, non-negative and 0 on the diagonal, got %g", i, j, v)
			}
		}
	}
	return nil
}

// Policy tunes planning.
type Policy struct {
	DelayBoundMs float64 `json:"delayBoundMs"`
	Exact        bool    `json:"exact,omitempty"`
	IgnoreBuffer bool    `json:"ignoreBuffer,omitempty"`
	// LocalFirst plans the entry = exit pairs before the others
	// (placement.Options.LocalFirst); the paper plans them last.
	LocalFirst bool `json:"localFirst,omitempty"`
	// ImproveBudget is the joint improvement phase's budget in pair
	// searches (placement.ImproveOptions.Budget); 0: the phase is off.
	ImproveBudget int `json:"improveBudget,omitempty"`
	// TargetUtilization plans every VNF at this fraction of its capacity
	// (0 < u ≤ 1; 0 means 1, the paper's sizing at full capacity). Below the
	// overload thresholds it leaves room for the load's fluctuation within
	// an interval, so a round does not size instances that overload at once.
	TargetUtilization float64 `json:"targetUtilization,omitempty"`
	// DPTargetUtilization plans the data-plane stages at this fraction of
	// their capacity instead of TargetUtilization (0 < u ≤ 1; 0 means
	// TargetUtilization: one target for every VNF). The DP stages lose
	// packets only above their capacity and a round plans them for the
	// interval's largest load, while the control plane's overload starts
	// far below its capacity (ρ 0.7): a per-plane target lets a round
	// plan the DP closer to capacity and keep the CP's headroom
	// (docs/reproduction.md "Session 7: DP target").
	DPTargetUtilization float64 `json:"dpTargetUtilization,omitempty"`
	// Targets plan the DP stages they name at their own utilisation,
	// overriding DPTargetUtilization for them (a stage not in the topology
	// is ignored: the defaults name Table 2's). The transcoder, the
	// stage with the fewest flows per instance (300 of 50 packets/s),
	// keeps the headroom the others give up (docs/reproduction.md
	// "Session 7: DP target").
	Targets []Target `json:"targets,omitempty"`
	// Limits bound the working instances of a VNF in one DC (DC set) or in
	// every DC (DC empty; a per-DC limit wins). Sent to the local
	// controllers with each decision.
	Limits []Limit `json:"limits,omitempty"`
}

// Target is one DP stage's planning utilisation (0 < Utilization ≤ 1).
type Target struct {
	VNF         string  `json:"vnf"`
	Utilization float64 `json:"utilization"`
}

// Limit bounds the working instances of one VNF (Max 0 = no upper bound).
type Limit struct {
	DC  string `json:"dc,omitempty"`
	VNF string `json:"vnf"`
	Min int    `json:"min"`
	Max int    `json:"max"`
}

// Utilization returns the planning utilisation (1 when unset).
func (p Policy) Utilization() float64 {
	if p.TargetUtilization == 0 {
		return 1
	}
	return p.TargetUtilization
}

// DPUtilization returns the data-plane stages' planning utilisation:
// DPTargetUtilization, or Utilization when it is unset.
func (p Policy) DPUtilization() float64 {
	if p.DPTargetUtilization == 0 {
		return p.Utilization()
	}
	return p.DPTargetUtilization
}

// StageUtilization returns DP stage name's planning utilisation: its
// Targets entry (names compared with vnf.Same), else DPUtilization.
func (p Policy) StageUtilization(name string) float64 {
	for _, t := range p.Targets {
		if vnf.Same(t.VNF, name) {
			return t.Utilization
		}
	}
	return p.DPUtilization()
}

// Validate checks a policy.
func (p *Policy) Validate() error {
	if math.IsNaN(p.DelayBoundMs) || math.IsInf(p.DelayBoundMs, 0) || p.DelayBoundMs <= 0 {
		return fmt.Errorf("policy.delayBoundMs: must be a positive number of ms, got %g", p.DelayBoundMs)
	}
	if err := CheckUtilization("policy.targetUtilization", p.TargetUtilization, "1"); err != nil {
		return err
	}
	if err := CheckUtilization("policy.dpTargetUtilization", p.DPTargetUtilization, "targetUtilization"); err != nil {
		return err
	}
	return CheckTargets("policy.targets", p.Targets)
}

// CheckUtilization checks a planning utilisation given as field (the name
// the user wrote: a config key, a YAML key, a command-line flag): a
// fraction of the capacity in (0, 1]. With zero set, 0 is allowed too and
// stands for zero (the value used instead, e.g. "targetUtilization"). The
// error names field, the rule and the value.
func CheckUtilization(field string, u float64, zero string) error {
	if u > 0 && u <= 1 || u == 0 && zero != "" {
		return nil
	}
	if zero != "" {
		return fmt.Errorf("%s: must be in (0, 1] (the fraction of the capacity a round plans for; 0: %s), got %g", field, zero, u)
	}
	return fmt.Errorf("%s: must be in (0, 1] (the fraction of the capacity a round plans for), got %g", field, u)
}

// CheckTargets checks the DP stages' own planning targets given as field
// (e.g. "policy.targets"): each names a stage, once (names compared with
// vnf.Same), with a utilisation in (0, 1]. The error names the entry's
// field (field[i].vnf, field[i].utilization).
func CheckTargets(field string, ts []Target) error {
	for i, t := range ts {
		if strings.TrimSpace(t.VNF) == "" {
			return fmt.Errorf("%s[%d].vnf: must name a DP stage", field, i)
		}
		if err := CheckUtilization(fmt.Sprintf("%s[%d].utilization (%s)", field, i, t.VNF), t.Utilization, ""); err != nil {
			return err
		}
		for _, o := range ts[:i] {
			if vnf.Same(o.VNF, t.VNF) {
				return fmt.Errorf("%s[%d].vnf %q: repeated", field, i, t.VNF)
			}
		}
	}
	return nil
}

// Prediction is step 1's output: the averages measured over interval Round
// (keys "cp/A/B", "dp/A/B", "delay/A/B") and the forecasts for Round+1.
type Prediction struct {
	Round     uint64             `json:"round"`
	Actual    map[string]float64 `json:"actual"`
	Predicted map[string]float64 `json:"predicted"`
	// ClosedBy is an opaque token of the round engine whose intake gave
	// Actual (empty: not said). An engine that closed the interval in
	// memory and stopped leading before it saw its step-1 commit tells
	// from it, leading again, whether that commit is the one in the log or
	// another leader redid the step with its own intake (controller/global).
	ClosedBy string `json:"closedBy,omitempty"`
	// Peak holds the workload series' loads at a declared profile's full
	// rise (global.Forecast.Peak; only series that have one), read by the
	// round's stage floor (Round.Prediction, also when a new leader resumes
	// the round). History does not keep it (forHistory): nothing reads it
	// there, and it is up to N² values a round (docs/benchmarks.md
	// "Prediction history").
	Peak map[string]float64 `json:"peak,omitempty"`
	// Rise holds the DP series' declared-profile rise (global.Forecast.Rise;
	// only series that have a declared profile), read by the round's NoRise
	// and Fast flags (controller/global norise.go). Round-only, as Peak.
	Rise map[string]float64 `json:"rise,omitempty"`
}

// historyFields are the fields of a Prediction that State.History keeps:
// what reads the history needs them (the forecaster's replay, delays, the
// dry run and metrics read Actual and Predicted; a returning leader reads
// ClosedBy). Every other field is the round's own (Peak and any per-pair
// map added for the round in progress): read from Round.Prediction only,
// and dropped from the history.
var historyFields = []string{"Round", "Actual", "Predicted", "ClosedBy"}

// forHistory is p as State.History keeps it: the historyFields only. An
// older node's history entries may carry more (its log and snapshots):
// they lose it when applied or restored here.
func (p Prediction) forHistory() Prediction {
	return Prediction{Round: p.Round, Actual: p.Actual, Predicted: p.Predicted, ClosedBy: p.ClosedBy}
}

// Round is the round in progress. Round t closes interval t; its decision
// applies to interval t+1.
type Round struct {
	Round uint64 `json:"round"`
	// Done is the last completed step (0 = started, nothing done).
	Done       protocol.Step                       `json:"done"`
	Prediction *Prediction                         `json:"prediction,omitempty"`
	Provisions map[string]protocol.ProvisionReport `json:"provisions,omitempty"`
	Decision   []protocol.DCDecision               `json:"decision,omitempty"`
	// Paths is the next interval's full path set (step 3).
	Paths []protocol.PathEntry `json:"paths,omitempty"`
	// Unreachable maps a DC that stopped answering to the step at which it
	// was given up; it is not contacted again in this round.
	Unreachable map[string]protocol.Step `json:"unreachable,omitempty"`
}

// State is the whole replicated state.
type State struct {
	// Interval is the current interval index; the next round closes it.
	Interval uint64    `json:"interval"`
	Topology *Topology `json:"topology,omitempty"`
	Policy   Policy    `json:"policy"`
	Round    *Round    `json:"round,omitempty"`
	// Paths is the path set in force (entered at the last step 5).
	Paths []protocol.PathEntry `json:"paths,omitempty"`
	// LastProvision is each DC's last answered step-2 report.
	LastProvision map[string]protocol.ProvisionReport `json:"lastProvision,omitempty"`
	// Stale maps a DC that missed step 4 or 5 to the round it missed; it is
	// cleared when the DC completes a later round's step 5.
	Stale map[string]uint64 `json:"stale,omitempty"`
	// History holds the last MaxHistory predictions, oldest first, with
	// only their historyFields (Prediction.forHistory: not Peak).
	History []Prediction `json:"history,omitempty"`
	// RoundStartedAt is when the last round started: the current interval's
	// measurement began then, and a new leader starts the next round one
	// interval after it.
	RoundStartedAt time.Time `json:"roundStartedAt,omitzero"`
	// Drained lists, sorted, the DCs an operator is draining: the planner
	// keeps DP stages and P-CSCF load out of them.
	Drained []string `json:"drained,omitempty"`
	// Docs holds replicated documents the controllers do not interpret,
	// by key: "policy/NAME" (saved scaling policies as the API shows them),
	// "labels/DC" (a datacenter's group, region and AZ), "op/ID" (drain
	// and undrain operation records). Each is a compacted JSON object
	// (PutDoc normalizes it); the byte slices are shared by the state's
	// copies and never edited: read only.
	Docs map[string]json.RawMessage `json:"docs,omitempty"`
	// Outcomes is the decision history derived from the log (outcomes.go):
	// the last MaxOutcomes rounds, oldest first. State() leaves it out (see
	// FSM.Outcomes); snapshots carry it.
	Outcomes []RoundOutcome `json:"outcomes,omitempty"`
}
