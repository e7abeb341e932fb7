package dataplane

import (
	"errors"
	"fmt"

	"github.com/ims-orch/ims-orch/controller/dpmeter"
)

// errNotAttached: the plane is not built yet (the meters start with the
// local controllers; the plane is Set right after).
var errNotAttached = errors.New("the data plane is not attached yet")

// Counters returns the DP workload meter's view of datacenter dc's switch
// (controller/dpmeter): the packets that entered the chain there per
// entry→exit pair, read from the entry rules' counters (ovs.Switch
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
		c, err := p.Switch(k).PairPackets()
		if err != nil {
			return nil, fmt.Errorf("datacenter %d's switch: %w", k, err)
		}
		out := make(map[dpmeter.Pair]uint64, len(c))
		for pr, n := range c {
			out[dpmeter.Pair{Entry: pr.Entry, Exit: pr.Exit}] = n
		}
		return out, nil
	}
}
