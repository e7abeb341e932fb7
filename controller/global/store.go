package global

import (
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/ims-orch/ims-orch/controller/fsm"
)

// ErrNotLeader is what a Store's Apply or Sync wraps when this node cannot
// commit because it is not (or no longer) the leader, or its replication
// has shut down: the round engine stops on it. Stores translate their own
// errors to it (RaftStore: raft's ErrNotLeader, ErrLeadershipLost and
// ErrRaftShutdown), so the engine never matches a replication library's
// error values.
var ErrNotLeader = errors.New("global: not the leader")

// Store holds the committed global state. The round engine writes every step
// through it, so a new leader resumes from the last committed step.
type Store interface {
	// Apply commits a command; it returns the FSM's rejection (wrapping
	// fsm.ErrStale for a step already applied) or the replication error
	// (wrapping ErrNotLeader when this node cannot commit as leader).
	Apply(fsm.Command) error
	// Sync makes State reflect every command committed so far (raft Barrier).
	Sync() error
	// State is a copy of the state without its history (prediction maps
	// are shared: read only).
	State() fsm.State
	// History is a copy of the prediction history (maps read only).
	History() []fsm.Prediction
	// Changes moves whenever State or History may have changed
	// (fsm.FSM.Changes).
	Changes() uint64
}

// MemStore is a single-node store without raft (simulator, single process).
// It runs the same FSM handlers as raft, without the encoding round trip.
type MemStore struct{ f *fsm.FSM }

var _ Store = (*MemStore)(nil)

// NewMemStore returns an empty in-memory store.
func NewMemStore() *MemStore { return &MemStore{f: fsm.New()} }

// Apply implements Store.
func (m *MemStore) Apply(c fsm.Command) error { return m.f.ApplyCommand(c) }

// Sync implements Store (nothing to wait for).
func (m *MemStore) Sync() error { return nil }

// State implements Store.
func (m *MemStore) State() fsm.State { return m.f.State() }

// History implements Store.
func (m *MemStore) History() []fsm.Prediction { return m.f.History() }

// Changes implements Store.
func (m *MemStore) Changes() uint64 { return m.f.Changes() }

// RaftStore is a Store over a raft node: Apply replicates through the
// leader, reads come from the local FSM.
type RaftStore struct {
	n       *fsm.Node
	timeout time.Duration
}

var _ Store = (*RaftStore)(nil)

// NewRaftStore wraps a node; timeout bounds each Apply and Barrier (default 5 s).
func NewRaftStore(n *fsm.Node, timeout time.Duration) *RaftStore {
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	return &RaftStore{n: n, timeout: timeout}
}

// Apply implements Store.
func (r *RaftStore) Apply(c fsm.Command) error { return raftError(r.n.Apply(c, r.timeout)) }

// Sync implements Store.
func (r *RaftStore) Sync() error { return raftError(r.n.Barrier(r.timeout)) }

// raftError wraps ErrNotLeader around raft's leadership errors (the raft
// error stays in the chain for callers that log it).
func raftError(err error) error {
	if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) || errors.Is(err, raft.ErrRaftShutdown) {
		return fmt.Errorf("%w: %w", ErrNotLeader, err)
	}
	return err
}

// State implements Store.
func (r *RaftStore) State() fsm.State { return r.n.FSM.State() }

// History implements Store.
func (r *RaftStore) History() []fsm.Prediction { return r.n.FSM.History() }

// Changes implements Store.
func (r *RaftStore) Changes() uint64 { return r.n.FSM.Changes() }

// Outcomes returns the committed round outcomes (fsm.FSM.Outcomes): the
// decision history every node derives alike from the log.
func (m *MemStore) Outcomes() []fsm.RoundOutcome { return m.f.Outcomes() }

// Outcomes returns the committed round outcomes (fsm.FSM.Outcomes).
func (r *RaftStore) Outcomes() []fsm.RoundOutcome { return r.n.FSM.Outcomes() }
