package dcroute

import (
	"context"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/controller/local"
	"github.com/ims-orch/ims-orch/controller/protocol"
	"github.com/ims-orch/ims-orch/controller/routing"
	"github.com/ims-orch/ims-orch/drivers/fake"
)

// A local controller on the fake driver applies a decision through the
// protocol; its routable instances and path sets reach the routing table
// through the Router, and a new flow is routed over the stored path only
// after "enter new interval".
func TestLocalControllerDrivesRouting(t *testing.T) {
	clk := clock.NewVirtual(time.Unix(0, 0))
	drv, err := fake.New(clk, fake.Options{BootDelay: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	dcs := []string{"a", "b"}
	stages := []string{"firewall", "ids"}
	var errs []error
	r, err := New("a", dcs, stages, 0, func(e error) { errs = append(errs, e) })
	if err != nil {
		t.Fatal(err)
	}
	lc, err := local.New(local.Config{DC: "a", VNFs: []local.VNFConfig{{Name: "firewall", Capacity: 100}, {Name: "ids", Capacity: 100}},
		StatsTimeout: -1, Paths: r, Sink: r}, drv, clk, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := lc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	hdr := func(step protocol.Step) protocol.Header {
		return protocol.Header{Round: 0, Step: step, Seq: uint64(step), DC: "a"}
	}
	lc.Handle(protocol.Request{Header: hdr(protocol.StepAcquire)})
	resp := lc.Handle(protocol.Request{Header: hdr(protocol.StepBroadcast), Decision: &protocol.DCDecision{DC: "a", Interval: 1,
		Targets: []protocol.VNFTarget{{VNF: "firewall", Working: 2, Create: 2}, {VNF: "ids", Working: 1, Create: 1}},
		Paths:   []protocol.PathEntry{{Entry: "a", Exit: "b", Hops: []string{"a", "a", "a", "b"}}}}})
	if resp.Error != "" {
		t.Fatal(resp.Error)
	}
	clk.Advance(2 * time.Second) // instances boot
	call := routing.Call{CallerDC: 0, CalleeDC: 1, CallerIP: 0x0a000001, CalleeIP: 0x0a000002, CallerSendPort: 4000, CallerRecvPort: 4002,
		CalleeSendPort: 5000, CalleeRecvPort: 5002, CallerEntryIP: 0x0b000001, CalleeEntryIP: 0x0b000002}
	if err := r.AddCall(call); err != nil {
		t.Fatal(err)
	}
	pkt := routing.Packet{From: routing.FromUser, Proto: 17, SrcIP: call.CallerIP, SrcPort: 4000, DstIP: call.CallerEntryIP, DstPort: 5004}
	if d := r.Route(pkt); d.Verdict != routing.Drop {
		t.Fatalf("before enter the pair has no path yet, got %v", d)
	}
	lc.Handle(protocol.Request{Header: hdr(protocol.StepEnter)})
	var ids []string
	for i := 0; i < 4; i++ {
		d := r.Route(pkt)
		if d.Verdict == routing.Drop || d.Next != 1 || d.First != 1 || d.Last != 2 {
			t.Fatalf("flow %d: %v", i, d)
		}
		ids = append(ids, r.InstanceID(1, d.Instances[0]))
	}
	// smallest-load-first spreads the 4 flows over the 2 firewalls
	if ids[0] == "" || ids[0] == ids[1] || ids[0] != ids[2] {
		t.Fatalf("firewall choice %v", ids)
	}
	if len(errs) != 0 {
		t.Fatalf("router errors: %v", errs)
	}
}
