package dataplane

import (
	"errors"
	"fmt"

	"github.com/ims-orch/ims-orch/controller/dpmeter"
	"github.com/ims-orch/ims-orch/drivers/ovs"
)

// errNotAttached: the plane is not built yet (the meters start with the
// local controllers; the plane is Set right after).
var errNotAttached = errors.New("the data plane is not attached yet")

// Counters returns the DP workload meter's view of datacenter dc's switch
// (controller/dpmeter): the packets that entered the chain there per
// entry→exit pair, read from the pair counter rules' counters (ovs.Switch
// PairPackets), by DC index. Nil for a name that is not a datacenter.
func (l *Lazy) Counters(dc string) dpmeter.Counters {
	k, ok := l.idx[dc]
	if !ok {
		return nil
	}
	return func() (map[dpmeter.Pair]uint64, error) {
		l.mu.RLock()
		p := l.p
		l.mu.RUnlock()
		if p == nil {
			return nil, errNotAttached
		}
		sw := p.Switch(k)
		if sw == nil {
			return nil, fmt.Errorf("datacenter %d: not one of this node's (no switch here)", k)
		}
		return pairCounts(k, sw.PairPackets)
	}
}

// pairCounts is read's counts (a switch's PairPackets) by dpmeter pair. Counts
// that come with ovs.ErrCountsLost are passed on with dpmeter.ErrCountsLost:
// good counts, a bad increase (the meter starts over from them).
func pairCounts(k int, read func() (map[ovs.Pair]uint64, error)) (map[dpmeter.Pair]uint64, error) {
	c, err := read()
	if err != nil && !errors.Is(err, ovs.ErrCountsLost) {
		return nil, fmt.Errorf("datacenter %d's switch: %w", k, err)
	}
	out := make(map[dpmeter.Pair]uint64, len(c))
	for pr, n := range c {
		out[dpmeter.Pair{Entry: pr.Entry, Exit: pr.Exit}] = n
	}
	if err != nil {
		return out, fmt.Errorf("datacenter %d's switch: %w: %w", k, dpmeter.ErrCountsLost, err)
	}
	return out, nil
}

// noteCountsUnread counts a rule update of DC k that ended pair counter
// rules unread (c.CountsUnread) and reports it to OnError thinned: the
// 1st, 2nd, 4th, 8th… of a run of such updates (a switch whose reads keep
// failing would log on every rule update), each naming the run's length
// and the total. Only an update whose read ran and succeeded
// (c.CountsRead) ends the run: the updates between that read nothing do
// not (revO L1: under churn every failure was the 1st of a run).
func (p *Plane) noteCountsUnread(k int, st *dcState, c ovs.Changes) {
	unread := c.CountsUnread
	if unread == nil {
		if c.CountsRead {
			st.lostRun = 0
		}
		return
	}
	st.countsLost++
	st.lostRun++
	if p.cfg.OnError != nil && st.lostRun&(st.lostRun-1) == 0 {
		p.cfg.OnError(fmt.Errorf("dc%d: rules applied, but %d rule update(s) in a row (%d in all) ended pair counter rules unread: "+
			"the DP workload of the interval is reported missing: %w", k, st.lostRun, st.countsLost, unread))
	}
}

// PairCountsLostByDC returns, per datacenter this plane runs (by its name,
// as SkippedLearnedByDC), how many rule updates ended entry rules' packet
// counters without reading them (the read failed; the rules were applied):
// the counter ims_orch_dataplane_pair_counts_lost_total.
func (p *Plane) PairCountsLostByDC() map[string]int {
	return perDC(p, func(st *dcState) (int, bool) { return st.countsLost, true })
}
