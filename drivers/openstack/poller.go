package openstack

import (
	"context"
	"slices"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/drivers"
)

// Nova pushes no events to a client, so Subscribe polls: every
// Config.PollInterval (on the driver's clock) the poller lists our servers in
// every DC, diffs their states against the previous list and emits one Event
// per change. A server missing from a list is reported gone once. The first
// list only records the states (it is the baseline, not a change).
type poller struct {
	d     *Driver
	rep   *clock.Repeater
	last  map[string]drivers.Instance // key: DC/instance id
	ready bool                        // a baseline list was taken
}

// Subscribe registers h for every later state change and starts the poller
// on the first subscription. The returned function unregisters h.
func (d *Driver) Subscribe(h drivers.EventHandler) (cancel func()) {
	d.mu.Lock()
	defer d.mu.Unlock()
	id := d.nextH
	d.nextH++
	d.handlers[id] = h
	if d.poller == nil && !d.closed {
		d.poller = &poller{d: d}
		p := d.poller
		p.rep = clock.Every(d.clk, time.Duration(d.cfg.PollInterval), func() bool { p.poll(); return true })
	}
	return func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		delete(d.handlers, id)
	}
}

// Close stops the poller; no handler is called after Close returns, except
// by a poll already running, which finishes.
func (d *Driver) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	if d.poller != nil {
		d.poller.rep.Stop()
	}
	d.handlers = map[int]drivers.EventHandler{}
	return nil
}

// poll lists once and emits the changes. A failed list emits nothing: an
// outage of the API must not look like every server vanishing.
func (p *poller) poll() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(p.d.cfg.RequestTimeout))
	defer cancel()
	list, err := p.d.list(ctx, "", 0)
	if err != nil {
		return
	}
	now := p.d.clk.Now()
	cur := newestByKey(list) // of several servers with one id, the instance
	var events []drivers.Event
	if p.ready {
		events = diff(p.last, cur, now)
	}
	p.last, p.ready = cur, true
	p.d.mu.Lock()
	hs := make([]drivers.EventHandler, 0, len(p.d.handlers))
	for _, k := range sortedIntKeys(p.d.handlers) {
		hs = append(hs, p.d.handlers[k])
	}
	closed := p.d.closed
	p.d.mu.Unlock()
	if closed {
		return
	}
	for _, e := range events {
		for _, h := range hs {
			h(e)
		}
	}
}

// diff returns the events that turn prev into cur, in key order.
func diff(prev, cur map[string]drivers.Instance, now time.Time) []drivers.Event {
	var out []drivers.Event
	for _, k := range sortedKeys(cur) {
		in := cur[k]
		if old, ok := prev[k]; ok && old.State == in.State {
			continue
		}
		reason := "state " + string(in.State)
		if _, ok := prev[k]; !ok {
			reason = "appeared"
		}
		out = append(out, drivers.Event{ID: in.ID, DC: in.DC, VNF: in.VNF, State: in.State, Reason: reason, At: now})
	}
	for _, k := range sortedKeys(prev) {
		if _, ok := cur[k]; !ok {
			old := prev[k]
			out = append(out, drivers.Event{ID: old.ID, DC: old.DC, VNF: old.VNF, State: drivers.StateGone, Reason: "vanished", At: now})
		}
	}
	return out
}

func sortedIntKeys[V any](m map[int]V) []int {
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
