package dcroute

import (
	"github.com/ims-orch/ims-orch/controller/protocol"
	"github.com/ims-orch/ims-orch/placement"
)

// Committed is the committed routing state of the cluster (the replicated
// FSM): the interval in force with its path set, and the path set of the
// next interval when its round has committed a decision (nil otherwise).
// ok is false when nothing is committed yet.
type Committed struct {
	Interval uint64
	Current  []protocol.PathEntry
	Next     []protocol.PathEntry
	HasNext  bool
}

// CommittedFunc reads the committed state; it must not call the Router.
type CommittedFunc func() (Committed, bool)

// SetCommitted gives the router its source of committed state: a router
// that is behind it (a restarted node starts at interval 0; a stopped one
// misses rounds) resyncs from it instead of refusing the next StoreNext and
// Enter. onResync (nil: ignored) hears each resync (for the log).
func (r *Router) SetCommitted(f CommittedFunc, onResync func(from, to uint64)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.committed, r.onResync = f, onResync
}

// Sync resyncs the router from the committed state when it is behind it
// (called at start, once the node's state has caught up). It reports
// whether it moved.
func (r *Router) Sync() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.committed == nil {
		return false
	}
	c, ok := r.committed()
	if !ok || c.Interval <= r.t.Interval() {
		return false
	}
	return r.resyncLocked(c.Interval, c)
}

// Behind reports whether the router is behind the committed state (it then
// routes with a path set that is no longer in force): GET state says the
// node is catching up.
func (r *Router) Behind() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.committed == nil {
		return false
	}
	c, ok := r.committed()
	return ok && c.Interval > r.t.Interval()
}

// resyncLocked jumps the table to interval cur, taking the current and next
// path sets from c when c is at that interval. It reports success.
func (r *Router) resyncLocked(cur uint64, c Committed) bool {
	var curPS, nextPS map[placement.Pair]placement.Path
	if c.Interval+1 == cur && c.HasNext { // the committed next set is the one entered
		if ps, err := r.Paths(c.Next); err == nil {
			curPS = ps
		}
	}
	if c.Interval == cur {
		if ps, err := r.Paths(c.Current); err == nil && len(c.Current) > 0 {
			curPS = ps
		}
		if c.HasNext {
			if ps, err := r.Paths(c.Next); err == nil {
				nextPS = ps
			}
		}
	}
	from := r.t.Interval()
	if err := r.t.Resync(cur, curPS, nextPS); err != nil {
		r.fail(err)
		return false
	}
	if r.onResync != nil {
		r.onResync(from, cur)
	}
	return true
}

// catchUpStoreLocked handles a step 4 for an interval beyond the next one:
// the table jumps to interval−1 (its set from the committed state when it
// has it) so the new set can be stored.
func (r *Router) catchUpStoreLocked(interval uint64) {
	if interval <= r.t.Interval()+1 || interval == 0 {
		return
	}
	c := Committed{}
	ok := false
	if r.committed != nil {
		c, ok = r.committed()
	}
	if !ok {
		c = Committed{Interval: interval - 1}
	}
	c.HasNext = false // the set being stored is the next one
	r.resyncLocked(interval-1, c)
}

// catchUpEnterLocked handles a step 5 the table cannot follow (an interval
// beyond the next one, or the next one without its stored set): the table
// jumps to interval with its set from the committed state.
func (r *Router) catchUpEnterLocked(interval uint64) {
	cur := r.t.Interval()
	if interval <= cur || (interval == cur+1 && r.t.HoldsNext()) {
		return
	}
	c := Committed{Interval: interval}
	if r.committed != nil {
		if cc, ok := r.committed(); ok {
			c = cc
		}
	}
	r.resyncLocked(interval, c)
}
