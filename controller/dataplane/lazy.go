package dataplane

import (
	"context"
	"sync"

	"github.com/ims-orch/ims-orch/controller/local"
	"github.com/ims-orch/ims-orch/controller/protocol"
)

// Lazy gives the local controllers their PathStore and InstanceSink before
// the Plane exists (the Plane needs the routers the controllers are built
// with). Until Set, the wrappers only pass calls on; after it, every call
// is followed by a rule update of the DC.
type Lazy struct {
	mu  sync.RWMutex
	p   *Plane
	idx map[string]int
}

// NewLazy returns hooks for the datacenters names (index order).
func NewLazy(names []string) *Lazy {
	l := &Lazy{idx: map[string]int{}}
	for i, n := range names {
		l.idx[n] = i
	}
	return l
}

// Set attaches the plane.
func (l *Lazy) Set(p *Plane) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.p = p
}

// byDC returns f of the plane, nil before Set.
func byDC[V any](l *Lazy, f func(*Plane) map[string]V) map[string]V {
	l.mu.RLock()
	p := l.p
	l.mu.RUnlock()
	if p == nil {
		return nil
	}
	return f(p)
}

// SkippedLearned is the plane's SkippedLearnedByDC, nil before Set.
func (l *Lazy) SkippedLearned() map[string]int { return byDC(l, (*Plane).SkippedLearnedByDC) }

// MonitorRestarts is the plane's MonitorRestartsByDC, nil before Set.
func (l *Lazy) MonitorRestarts() map[string]MonitorRestarts {
	return byDC(l, (*Plane).MonitorRestartsByDC)
}

// FlowTakeovers is the plane's FlowTakeoversByDC, nil before Set.
func (l *Lazy) FlowTakeovers() map[string]FlowTakeovers {
	return byDC(l, (*Plane).FlowTakeoversByDC)
}

// PairCountsLost is the plane's PairCountsLostByDC, nil before Set.
func (l *Lazy) PairCountsLost() map[string]int { return byDC(l, (*Plane).PairCountsLostByDC) }

func (l *Lazy) sync(dc string) { l.update(dc, (*Plane).Sync) }

// update runs a rule update of dc once the plane is set.
func (l *Lazy) update(dc string, fn func(*Plane, context.Context, int) error) {
	l.mu.RLock()
	p := l.p
	k, ok := l.idx[dc]
	l.mu.RUnlock()
	if p != nil && ok {
		p.update(k, fn)
	}
}

var (
	_ local.InstanceSink      = lazySink{}
	_ local.InstanceForgetter = lazySink{} // Forget must reach the router (ForgetIn is a silent assertion)
)

type lazySink struct {
	l    *Lazy
	dc   string
	next local.InstanceSink
}

func (s lazySink) SetInstances(vnf string, insts []local.RoutableInstance) {
	s.next.SetInstances(vnf, insts)
	s.l.sync(s.dc)
}

// Forget implements local.InstanceForgetter: next learns it first (the
// router frees the index), then the DC's rules are brought in line if they
// still send to the gone instance's port.
func (s lazySink) Forget(vnf, id string) {
	local.ForgetIn(s.next, vnf, id)
	s.l.update(s.dc, departedFn(vnf, id))
}

type lazyPaths struct {
	l    *Lazy
	dc   string
	next local.PathStore
}

func (s lazyPaths) StoreNext(interval uint64, paths []protocol.PathEntry) {
	s.next.StoreNext(interval, paths)
	s.l.sync(s.dc)
}

func (s lazyPaths) Enter(interval uint64) {
	s.next.Enter(interval)
	s.l.sync(s.dc)
}

// Sink wraps dc's instance sink.
func (l *Lazy) Sink(dc string, next local.InstanceSink) local.InstanceSink {
	return lazySink{l: l, dc: dc, next: next}
}

// Paths wraps dc's path store.
func (l *Lazy) Paths(dc string, next local.PathStore) local.PathStore {
	return lazyPaths{l: l, dc: dc, next: next}
}
