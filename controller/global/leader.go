package global

import (
	"context"

	"github.com/hashicorp/raft"

	"github.com/ims-orch/ims-orch/controller/fsm"
)

// FollowLeadership runs the engine only while node is the raft leader: it
// starts the engine on becoming leader (after a barrier, so the engine reads
// every committed step) and stops it on losing leadership. It returns when
// ctx is done, with the engine stopped.
func FollowLeadership(ctx context.Context, node *fsm.Node, e *Engine) {
	defer e.Stop()
	apply := func(leader bool) {
		if !leader {
			e.Stop()
			return
		}
		if err := e.Start(); err != nil {
			e.log.Error("became leader but cannot start the round engine", "err", err)
		}
	}
	if node.Raft.State() == raft.Leader {
		apply(true)
	}
	ch := node.Raft.LeaderCh()
	for {
		select {
		case <-ctx.Done():
			return
		case leader := <-ch:
			apply(leader && node.Raft.State() == raft.Leader)
		}
	}
}
