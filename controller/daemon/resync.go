package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/ims-orch/ims-orch/controller/dcroute"
	"github.com/ims-orch/ims-orch/controller/fsm"
	"github.com/ims-orch/ims-orch/controller/protocol"
)

// Routing resync (issue 19): in cluster mode a node's routers start at
// interval 0 while the cluster is at interval t. Each router reads the
// committed state (the path set in force and, once a round committed its
// decision, the next one) and jumps to it: when it is more than one interval
// behind (checked every resyncPeriod, and at once at start), and when a
// step 4 or 5 names an interval it cannot follow. Until then GET state says
// the node is catching up instead of showing interval 0.

// resyncPeriod is how often the routers are compared with the committed state.
const resyncPeriod = time.Second

// committedRouting is the committed routing state of st.
func committedRouting(st fsm.State) (dcroute.Committed, bool) {
	if st.Topology == nil {
		return dcroute.Committed{}, false
	}
	c := dcroute.Committed{Interval: st.Interval, Current: st.Paths}
	if r := st.Round; r != nil && r.Round == st.Interval && r.Done >= protocol.StepCompute && len(r.Paths) > 0 {
		c.Next, c.HasNext = r.Paths, true
	}
	return c, true
}

// wireResync gives every router of this node the committed state.
func (d *Daemon) wireResync() {
	for dc, r := range d.routers {
		r.SetCommitted(func() (dcroute.Committed, bool) { return committedRouting(d.store.State()) },
			func(from, to uint64) {
				d.log.Info("routing table resynced from the committed state", "dc", dc, "from", from, "to", to)
			})
	}
}

// resyncLoop brings routers that are more than one interval behind the
// committed state up to it, now and every resyncPeriod, until ctx ends.
func (d *Daemon) resyncLoop(ctx context.Context) {
	t := time.NewTicker(resyncPeriod)
	defer t.Stop()
	for {
		if up, _ := d.catchingUpRaft(); !up {
			for _, r := range d.routers {
				if c, ok := committedRouting(d.store.State()); ok && c.Interval > r.Interval()+1 {
					r.Sync()
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// catchingUpRaft reports whether this node's replicated state is not yet
// the cluster's: no leader known, or committed entries not applied here.
func (d *Daemon) catchingUpRaft() (bool, string) {
	if d.node == nil {
		return false, ""
	}
	r := d.node.Raft
	if addr, _ := r.LeaderWithID(); addr == "" {
		return true, "no raft leader known yet"
	}
	if commit, applied := r.CommitIndex(), r.AppliedIndex(); applied < commit {
		return true, fmt.Sprintf("applying the replicated log (index %d of %d)", applied, commit)
	}
	return false, ""
}

// catchingUp reports whether GET state should say this node is catching
// up, and why: its replicated state is behind, or one of its routers is
// more than one interval behind the committed interval.
func (d *Daemon) catchingUp() (bool, string) {
	if up, why := d.catchingUpRaft(); up {
		return up, why
	}
	c, ok := committedRouting(d.store.State())
	if !ok {
		return false, ""
	}
	for dc, r := range d.routers {
		if ri := r.Interval(); c.Interval > ri+1 {
			return true, fmt.Sprintf("routing table of %s at interval %d, committed interval %d", dc, ri, c.Interval)
		}
	}
	return false, ""
}
