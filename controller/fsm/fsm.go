package fsm

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/hashicorp/raft"
)

// FSM is the raft state machine over State. It is safe for concurrent use:
// raft applies, readers take copies.
type FSM struct {
	mu sync.RWMutex
	s  State
	// changes counts the applied commands and restores: it moves whenever
	// the state may have changed (Changes).
	changes uint64
}

var _ raft.FSM = (*FSM)(nil)

// New returns an empty FSM (interval 0, no topology).
func New() *FSM { return &FSM{} }

// Apply decodes and applies one raft log entry. It returns nil or the error
// that rejected the command (raft hands it back as the ApplyFuture response).
//
// Unknown command policy: a committed entry whose type this version does
// not know is applied by the nodes that know it, so skipping it would let
// this node's state diverge silently. Apply therefore stops loudly, as
// Consul's FSM does: it panics, naming the log index and the type, and the
// node must be upgraded before it applies further (raft replays the entry
// after the restart). A type with IgnoreUnknownFlag set is skipped instead
// (the flag is the writer's promise that older nodes can do without it).
// Roll a new command type out only once every node runs a version that
// knows it.
func (f *FSM) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	if len(l.Data) > 0 {
		if _, known := registry[MessageType(l.Data[0])]; !known {
			if MessageType(l.Data[0])&IgnoreUnknownFlag != 0 {
				return nil
			}
			panic(fmt.Sprintf("fsm: raft log index %d holds command type %d, which this version does not know; "+
				"stopping instead of diverging from the nodes that apply it (upgrade this node)", l.Index, l.Data[0]))
		}
	}
	return f.ApplyBytes(l.Data)
}

// ApplyBytes applies an encoded command (used by Apply and by single-node
// stores that bypass raft).
func (f *FSM) ApplyBytes(b []byte) error {
	c, err := Decode(b)
	if err != nil {
		return err
	}
	return f.ApplyCommand(c)
}

// ApplyCommand applies a command without encoding it (single-node stores).
// The FSM keeps the command's maps and slices: the caller must not modify
// them afterwards.
func (f *FSM) ApplyCommand(c Command) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	err := ApplyTo(&f.s, c)
	if err == nil {
		f.changes++
	}
	return err
}

// Changes is a counter that moves with every applied command and restore:
// equal values mean State and History are unchanged (cheap, for caches and
// ETags).
func (f *FSM) Changes() uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.changes
}

// State returns a deep copy of the state without its history (see History);
// prediction maps are shared and read-only.
func (f *FSM) State() State {
	f.mu.RLock()
	defer f.mu.RUnlock()
	s := f.s
	s.History, s.Outcomes = nil, nil
	return s.Clone()
}

// History returns a copy of the prediction history, oldest first (the maps
// are shared and read-only).
func (f *FSM) History() []Prediction {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make([]Prediction, len(f.s.History))
	for i, p := range f.s.History {
		out[i] = p.clone()
	}
	return out
}

func (f *FSM) full() State {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.s.Clone()
}

// Snapshot grabs a copy of the state; Persist writes it later.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	return &snapshot{s: f.full()}, nil
}

// Restore replaces the state with a persisted snapshot.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	s, err := ReadSnapshot(rc)
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.s = s
	f.changes++
	f.mu.Unlock()
	return nil
}

type snapshot struct{ s State }

// Snapshot record types (the "t" field of each JSON line). Never reuse a name
// for a different content.
const (
	recMeta    = "meta"
	recState   = "state"
	recHistory = "history"
)

const snapshotVersion = 1

type record struct {
	T       string      `json:"t"`
	Version int         `json:"v,omitempty"`
	State   *State      `json:"state,omitempty"`
	History *Prediction `json:"history,omitempty"`
}

// Persist writes the snapshot as JSON lines: a meta record, the state
// without its history, then one record per history entry.
func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	if err := WriteSnapshot(sink, s.s); err != nil {
		_ = sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *snapshot) Release() {}

// WriteSnapshot writes a state in the snapshot format.
func WriteSnapshot(w io.Writer, s State) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	hist := s.History
	s.History = nil
	if err := enc.Encode(record{T: recMeta, Version: snapshotVersion}); err != nil {
		return err
	}
	if err := enc.Encode(record{T: recState, State: &s}); err != nil {
		return err
	}
	for i := range hist {
		if err := enc.Encode(record{T: recHistory, History: &hist[i]}); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// ReadSnapshot parses the snapshot format; unknown record types and versions
// are errors.
func ReadSnapshot(r io.Reader) (State, error) {
	dec := json.NewDecoder(r)
	var s State
	gotMeta, gotState := false, false
	for n := 1; ; n++ {
		var rec record
		err := dec.Decode(&rec)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return State{}, fmt.Errorf("fsm snapshot record %d: %w", n, err)
		}
		switch rec.T {
		case recMeta:
			if rec.Version != snapshotVersion {
				return State{}, fmt.Errorf("fsm snapshot record %d: version %d, want %d", n, rec.Version, snapshotVersion)
			}
			gotMeta = true
		case recState:
			if !gotMeta || rec.State == nil {
				return State{}, fmt.Errorf("fsm snapshot record %d: state record before meta or empty", n)
			}
			s = *rec.State
			s.History = nil
			gotState = true
		case recHistory:
			if !gotState || rec.History == nil {
				return State{}, fmt.Errorf("fsm snapshot record %d: history record before state or empty", n)
			}
			s.History = append(s.History, rec.History.forHistory()) // an older node's snapshot may carry Peak
		default:
			return State{}, fmt.Errorf("fsm snapshot record %d: unknown record type %q", n, rec.T)
		}
	}
	if !gotState {
		return State{}, errors.New("fsm snapshot: no state record")
	}
	if s.Topology != nil {
		if err := s.Topology.Validate(); err != nil {
			return State{}, fmt.Errorf("fsm snapshot: %w", err)
		}
		if err := checkDrained(s.Topology, s.Drained); err != nil {
			return State{}, fmt.Errorf("fsm snapshot: %w", err)
		}
	} else if len(s.Drained) > 0 {
		return State{}, errors.New("fsm snapshot: drained datacenters without a topology")
	}
	if err := s.Policy.validateLimits(s.Topology, false); err != nil {
		return State{}, fmt.Errorf("fsm snapshot: %w", err)
	}
	for k := range s.Docs {
		if err := ValidateDocKey(k); err != nil {
			return State{}, fmt.Errorf("fsm snapshot: %w", err)
		}
	}
	return s, nil
}
