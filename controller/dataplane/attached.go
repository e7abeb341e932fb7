package dataplane

import (
	"context"
	"fmt"
	"time"

	"github.com/ims-orch/ims-orch/controller/local"
	"github.com/ims-orch/ims-orch/controller/protocol"
)

// Hooks are the local.PathStore and local.InstanceSink of an attached
// datacenter: each call goes to the DC's router first, then the DC's rules
// are recompiled and applied, so step 4 has installed the next interval's
// rules and step 5 switched to them when the calls return.
type Hooks struct {
	p  *Plane
	dc int
}

var (
	_ local.PathStore         = Hooks{}
	_ local.InstanceSink      = Hooks{}
	_ local.InstanceForgetter = Hooks{}
)

// Hooks returns the hooks of attached datacenter dc; give them to the
// local controller as Config.Paths and Config.Sink. A datacenter that is
// not one of this plane's, or has no router (standalone tables), is an error.
func (p *Plane) Hooks(dc int) (Hooks, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	st, err := p.dc(dc)
	if err != nil {
		return Hooks{}, err
	}
	if st.router == nil {
		return Hooks{}, fmt.Errorf("dc: %d has a standalone table, no router to hook (Config.Routers)", dc)
	}
	return Hooks{p: p, dc: dc}, nil
}

// update runs a rule update fn of DC k (Sync, departed) for a hook, which
// has no error return: its own timeout, its error to OnError.
func (p *Plane) update(k int, fn func(*Plane, context.Context, int) error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := fn(p, ctx, k); err != nil && p.cfg.OnError != nil {
		p.cfg.OnError(err)
	}
}

// departedFn is the rule update after instance id of vnf is gone.
func departedFn(vnf, id string) func(*Plane, context.Context, int) error {
	return func(p *Plane, ctx context.Context, k int) error { return p.departed(ctx, k, vnf, id) }
}

func (h Hooks) sync() { h.p.update(h.dc, (*Plane).Sync) }

// StoreNext implements local.PathStore (step 4).
func (h Hooks) StoreNext(interval uint64, paths []protocol.PathEntry) {
	h.p.dcs[h.dc].router.StoreNext(interval, paths)
	h.sync()
}

// Enter implements local.PathStore (step 5).
func (h Hooks) Enter(interval uint64) {
	h.p.dcs[h.dc].router.Enter(interval)
	h.sync()
}

// SetInstances implements local.InstanceSink.
func (h Hooks) SetInstances(vnf string, insts []local.RoutableInstance) {
	h.p.dcs[h.dc].router.SetInstances(vnf, insts)
	h.sync()
}

// Forget implements local.InstanceForgetter: the router frees the gone
// instance's index, and the DC's rules are brought in line if they still
// send to its port (flows pinned to it move on).
func (h Hooks) Forget(vnf, id string) {
	h.p.dcs[h.dc].router.Forget(vnf, id)
	h.p.update(h.dc, departedFn(vnf, id))
}
