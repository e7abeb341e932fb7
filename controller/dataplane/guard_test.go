package dataplane

import (
	"context"
	"strings"
	"testing"

	"github.com/ims-orch/ims-orch/controller/dcroute"
	"github.com/ims-orch/ims-orch/controller/routing"
	"github.com/ims-orch/ims-orch/drivers/netns"
)

// guardPlane is a plane of three datacenters without Open vSwitch: dc0 is
// standalone (its own table), dc1 another node's (nil), dc2 attached (a
// router, no table of its own): only the bookkeeping up to the first rule
// update runs.
func guardPlane(t *testing.T) *Plane {
	t.Helper()
	tb, err := routing.NewTable(routing.Config{DC: 0, N: 2, Stages: 2})
	if err != nil {
		t.Fatal(err)
	}
	st := &dcState{t: tb, flows: map[uint32]Flow{}, byCall: map[routing.Call][]uint32{}}
	for s := range st.live {
		st.live[s] = map[uint8]Ports{}
		st.insts[s] = map[uint8]*netns.Instance{}
	}
	attached := &dcState{router: &dcroute.Router{}, flows: map[uint32]Flow{}, byCall: map[routing.Call][]uint32{}}
	return &Plane{dcs: []*dcState{st, nil, attached}}
}

// The exported calls that take a datacenter index answer an unknown one
// (out of range) or another node's one (nil here) with an error naming the
// field, never a panic; the stage of RemoveInstance likewise.
func TestUnknownDatacenterIsAnError(t *testing.T) {
	ctx := context.Background()
	call := func(caller, callee int) routing.Call {
		return routing.Call{CallerDC: caller, CalleeDC: callee, CallerIP: 1, CalleeIP: 2,
			CallerSendPort: 10, CallerRecvPort: 10, CalleeSendPort: 20, CalleeRecvPort: 20}
	}
	for _, tc := range []struct {
		name, field string
		run         func(p *Plane) error
	}{
		{"Hooks(out of range)", "dc", func(p *Plane) error { _, err := p.Hooks(7); return err }},
		{"Hooks(other node's)", "dc", func(p *Plane) error { _, err := p.Hooks(1); return err }},
		{"Hooks(standalone)", "dc", func(p *Plane) error { _, err := p.Hooks(0); return err }},
		{"AddCall(callee out of range)", "call.calleeDC", func(p *Plane) error { return p.AddCall(ctx, call(1, 7)) }},
		{"AddCall(caller out of range)", "call.callerDC", func(p *Plane) error { return p.AddCall(ctx, call(5, 0)) }},
		{"StartCall(both out of range)", "call.callerDC", func(p *Plane) error { _, err := p.StartCall(ctx, call(5, 6)); return err }},
		{"OpenCall(callee out of range)", "call.calleeDC", func(p *Plane) error { return p.OpenCall(ctx, call(1, -1)) }},
		{"EndCall(caller out of range)", "call.callerDC", func(p *Plane) error { return p.EndCall(ctx, call(9, 1)) }},
		{"RemoveInstance(stage 0)", "stage", func(p *Plane) error { return p.RemoveInstance(ctx, 0, 0, 2) }},
		{"RemoveInstance(other node's)", "dc", func(p *Plane) error { return p.RemoveInstance(ctx, 1, 1, 2) }},
		{"Buffer(stage 9)", "stage", func(p *Plane) error { return p.Buffer(ctx, 0, 9, 2) }},
		{"StartFlow(out of range)", "dc", func(p *Plane) error { _, err := p.StartFlow(ctx, -1, routing.Packet{}); return err }},
		{"Enter(other node's)", "dc", func(p *Plane) error { return p.Enter(ctx, 1, 2) }},
		{"Sync(out of range)", "dc", func(p *Plane) error { return p.Sync(ctx, 3) }},
		{"AddInstance(attached)", "dc", func(p *Plane) error { _, err := p.AddInstance(ctx, 2, 1, 2, netns.Firewall); return err }},
		{"Buffer(attached)", "dc", func(p *Plane) error { return p.Buffer(ctx, 2, 1, 2) }},
		{"RemoveInstance(attached)", "dc", func(p *Plane) error { return p.RemoveInstance(ctx, 2, 1, 2) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Fatalf("panic: %v", r)
					}
				}()
				err = tc.run(guardPlane(t))
			}()
			if err == nil || !strings.HasPrefix(err.Error(), tc.field+":") {
				t.Fatalf("error %v, want one naming %s", err, tc.field)
			}
		})
	}
	p := guardPlane(t)
	if _, err := p.Hooks(2); err != nil {
		t.Fatalf("hooks of an attached datacenter: %v", err)
	}
	if p.Switch(7) != nil || p.Calls(1) != nil || p.Calls(-1) != nil {
		t.Fatal("a switch or calls of an unknown datacenter")
	}
}
