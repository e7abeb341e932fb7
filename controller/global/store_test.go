package global

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/ims-orch/ims-orch/controller/fsm"
)

// The raft store translates raft's leadership errors to ErrNotLeader and
// keeps the raft error in the chain; other errors pass unchanged.
func TestRaftErrorTranslation(t *testing.T) {
	for _, e := range []error{raft.ErrNotLeader, raft.ErrLeadershipLost, raft.ErrRaftShutdown} {
		got := raftError(fmt.Errorf("apply: %w", e))
		if !errors.Is(got, ErrNotLeader) || !errors.Is(got, e) {
			t.Errorf("%v → %v: want ErrNotLeader wrapping it", e, got)
		}
	}
	other := errors.New("disk full")
	if got := raftError(other); got != other {
		t.Errorf("other error changed: %v", got)
	}
	if raftError(nil) != nil {
		t.Error("nil changed")
	}
}

// notLeaderStore refuses every command once lost is set, as a store whose
// node lost leadership does.
type notLeaderStore struct {
	*MemStore
	lost bool
}

func (s *notLeaderStore) Apply(c fsm.Command) error {
	if s.lost {
		return fmt.Errorf("%w: leadership lost", ErrNotLeader)
	}
	return s.MemStore.Apply(c)
}

// The engine stops when its store says it is not the leader (it matches
// the store's ErrNotLeader, not raft's values).
func TestEngineStopsOnNotLeader(t *testing.T) {
	h := newHarness(t, 2, transportCfgNone, Hooks{}, nil)
	st := &notLeaderStore{MemStore: h.store}
	eng, err := New(h.cfg, Deps{Clock: h.clk, Transport: h.mem, Forecaster: newAR1(), Store: st})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(); err != nil {
		t.Fatal(err)
	}
	st.lost = true
	eng.Trigger()
	h.clk.Advance(10 * time.Second)
	if eng.Running() {
		t.Fatal("engine still running after its store refused as not leader")
	}
}
