package api

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Backend is what the API needs from the rest of the system. The daemon
// implements it over the Raft FSM and the controllers; api/apitest holds an
// in-memory implementation.
//
// Errors: write methods return *NotLeaderError on a follower (the server then
// forwards or redirects), *ValidationError when the input is well-formed but
// does not fit the rest of the configuration (an unknown DC, a chain naming an
// unknown VNF type, an unknown predictor model), an error wrapping ErrNotFound
// or ErrConflict, or ErrNoLeader while no leader is known. Any other error is
// a 500 whose text is logged, not shown to the client.
type Backend interface {
	Datacenters(ctx context.Context) ([]Datacenter, error)
	// SetDatacenters replaces the datacenters and returns the previous list.
	SetDatacenters(ctx context.Context, dcs []Datacenter) (prev []Datacenter, err error)
	Delays(ctx context.Context) (DelayMatrix, error)
	SetDelays(ctx context.Context, m DelayMatrix) (prev DelayMatrix, err error)
	VNFTypes(ctx context.Context) ([]VNFType, error)
	SetVNFTypes(ctx context.Context, types []VNFType) (prev []VNFType, err error)
	Chains(ctx context.Context) ([]Chain, error)
	SetChains(ctx context.Context, chains []Chain) (prev []Chain, err error)

	Policies(ctx context.Context) ([]Policy, error)
	// Policy returns the named policy or an error wrapping ErrNotFound.
	Policy(ctx context.Context, name string) (Policy, error)
	// PutPolicy creates or replaces a policy and returns the previous one
	// (nil when it is new), read and written in one step.
	PutPolicy(ctx context.Context, p Policy) (prev *Policy, err error)
	// DeletePolicy removes a policy; ErrNotFound when there is none,
	// ErrConflict when it is in use and cannot be removed.
	DeletePolicy(ctx context.Context, name string) error
	// DryRunPolicy returns what the next proactive round would decide under
	// p, without committing anything.
	DryRunPolicy(ctx context.Context, p Policy) ([]Decision, error)

	State(ctx context.Context) (State, error)
	// Decisions returns one page of the decision history: the decisions
	// whose Seq is above q.After and whose round is ≥ q.Since, by
	// increasing Seq, at most q.Limit of them (PageDecisions does this over
	// a Seq-ordered slice). Every recorded decision carries a Seq that no
	// earlier decision of this history had, so a client that passes the
	// last Seq it saw as After sees every decision once.
	Decisions(ctx context.Context, q DecisionQuery) (DecisionPage, error)

	// Scale and Drain start a manual operation and return it (usually
	// STARTING or PROCESSING); Operation reports it later.
	Scale(ctx context.Context, req ScaleRequest) (Operation, error)
	Drain(ctx context.Context, req DrainRequest) (Operation, error)
	// Undrain ends a drain: the DC takes paths and instances again from the
	// next round. ErrNotFound wraps the error when the DC is not drained.
	Undrain(ctx context.Context, req DrainRequest) (Operation, error)
	Operation(ctx context.Context, id string) (Operation, error)

	// Ready returns nil when the node can serve (Raft has a leader, the
	// state is loaded); its error text is shown by /readyz.
	Ready(ctx context.Context) error
}

// Sentinel errors a Backend wraps.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
	ErrNoLeader = errors.New("no leader known")
)

// NotLeaderError is returned by a Backend write method on a follower.
// LeaderAddr is the leader's API base URL (e.g. "https://10.0.0.1:8443"),
// empty when no leader is known.
type NotLeaderError struct {
	LeaderID   string
	LeaderAddr string
}

func (e *NotLeaderError) Error() string {
	if e.LeaderAddr == "" {
		return "not the leader, no leader known"
	}
	return fmt.Sprintf("not the leader; leader %s at %s", e.LeaderID, e.LeaderAddr)
}

// FieldError names one invalid field (a JSON path such as
// "datacenters[2].name") and the reason.
type FieldError struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

// ValidationError lists the invalid fields of a request.
type ValidationError struct {
	Errors []FieldError
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Errors))
	for i, f := range e.Errors {
		parts[i] = f.Field + ": " + f.Reason
	}
	return "invalid: " + strings.Join(parts, "; ")
}

// Add records one invalid field.
func (e *ValidationError) Add(field, format string, args ...any) {
	e.Errors = append(e.Errors, FieldError{Field: field, Reason: fmt.Sprintf(format, args...)})
}

// Err returns e, or nil when no field was recorded.
func (e *ValidationError) Err() error {
	if e == nil || len(e.Errors) == 0 {
		return nil
	}
	return e
}

// DecisionQuery selects a page of the decision history.
type DecisionQuery struct {
	// Since keeps the decisions of rounds ≥ Since (0: every round).
	Since int64
	// After is the cursor: only decisions with Seq > After (0: from the
	// oldest decision kept).
	After int64
	// Limit bounds the page (the server passes 1..MaxDecisionsLimit; < 1
	// means no bound).
	Limit int
}

// DecisionPage is one page of the decision history.
type DecisionPage struct {
	// Decisions match the query, by increasing Seq.
	Decisions []Decision
	// More is true when further decisions matched the query beyond the
	// page when it was read.
	More bool
	// Newest is the Seq of the newest decision recorded (0 when none):
	// a cursor above it did not come from this history.
	Newest int64
}

// PageDecisions answers q over hist, a decision history ordered by
// increasing Seq (as a Backend records it).
func PageDecisions(hist []Decision, q DecisionQuery) DecisionPage {
	page := DecisionPage{Decisions: []Decision{}}
	if n := len(hist); n > 0 {
		page.Newest = hist[n-1].Seq
	}
	i := sort.Search(len(hist), func(i int) bool { return hist[i].Seq > q.After })
	for ; i < len(hist); i++ {
		d := hist[i]
		if d.Round < q.Since {
			continue
		}
		if q.Limit > 0 && len(page.Decisions) == q.Limit {
			page.More = true
			break
		}
		page.Decisions = append(page.Decisions, d)
	}
	return page
}
