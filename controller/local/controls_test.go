package local

import (
	"strings"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/controller/protocol"
	"github.com/ims-orch/ims-orch/drivers/fake"
)

// broadcast runs steps 2, 4 and 5 of round r with a decision d and returns
// the broadcast's response.
func (e *env) broadcast(r uint64, d *protocol.DCDecision) protocol.Response {
	e.t.Helper()
	e.req(r, protocol.StepAcquire, nil)
	resp := e.req(r, protocol.StepBroadcast, d)
	e.req(r, protocol.StepEnter, nil)
	e.clk.Advance(0)
	return resp
}

func TestDecisionLimits(t *testing.T) {
	e := newEnv(t, fwConfig(1), fake.Options{})
	// a minimum raised by the policy fills up at once, whatever the target
	d := decision(1, map[string]int{"firewall": 1})
	d.Limits = []protocol.VNFLimit{{VNF: "firewall", Min: 3, Max: 4}, {VNF: "transcoder", Min: 9}}
	if resp := e.broadcast(1, d); resp.Error != "" {
		t.Fatalf("broadcast: %s", resp.Error)
	}
	e.seconds(1)
	if w := e.working("firewall"); w != 3 {
		t.Fatalf("working %d after min 3, want 3", w)
	}
	// a target above the new max is capped and said so
	d = decision(2, map[string]int{"firewall": 7})
	d.Limits = []protocol.VNFLimit{{VNF: "firewall", Min: 3, Max: 4}}
	resp := e.broadcast(2, d)
	if !strings.Contains(resp.Error, "capped at max 4") {
		t.Fatalf("response error %q, want the cap reported", resp.Error)
	}
	e.seconds(1)
	if w := e.working("firewall"); w != 4 {
		t.Fatalf("working %d, want capped at 4", w)
	}
	// no limits any more: the configured min 1 and no max apply again
	if resp := e.broadcast(3, decision(3, map[string]int{"firewall": 1})); resp.Error != "" {
		t.Fatalf("broadcast: %s", resp.Error)
	}
	if w := e.working("firewall"); w != 1 {
		t.Fatalf("working %d after limits removed and target 1, want 1", w)
	}
	// an invalid limit is reported and ignored
	d = decision(4, map[string]int{"firewall": 2})
	d.Limits = []protocol.VNFLimit{{VNF: "firewall", Min: 5, Max: 2}}
	resp = e.broadcast(4, d)
	if !strings.Contains(resp.Error, "decision.limits[0] firewall: min 5 above max 2") {
		t.Fatalf("response error %q, want the bad limit named", resp.Error)
	}
	e.seconds(1)
	if w := e.working("firewall"); w != 2 {
		t.Fatalf("working %d, want the target 2 (bad limit ignored)", w)
	}
}

func TestDecisionDrain(t *testing.T) {
	cfg := fwConfig(2)
	cfg.Reactive = true
	e := newEnv(t, cfg, fake.Options{})
	e.seconds(1)
	d := decision(1, map[string]int{"firewall": 0})
	d.Drain = true
	if resp := e.broadcast(1, d); resp.Error != "" {
		t.Fatalf("broadcast: %s", resp.Error)
	}
	if !e.c.Draining() {
		t.Fatal("not draining after a drain decision")
	}
	if w, b := e.working("firewall"), len(e.c.Buffer("firewall")); w != 0 || b != 2 {
		t.Fatalf("working %d, buffered %d; want 0 and 2 (min does not apply while draining)", w, b)
	}
	if _, err := e.c.Scale("firewall", 1, ""); err == nil || !strings.Contains(err.Error(), "drained") {
		t.Fatalf("manual scale-out while draining: %v, want refused", err)
	}
	if _, err := e.c.Scale("firewall", -1, ""); err != nil {
		t.Fatalf("manual scale-in while draining: %v", err)
	}
	// an overloaded instance does not bring reactive scale-out back
	e2 := newEnv(t, cfg, fake.Options{})
	e2.seconds(1)
	d = decision(1, map[string]int{"firewall": 2})
	d.Drain = true
	d.Limits = []protocol.VNFLimit{{VNF: "firewall", Min: 2}}
	e2.broadcast(1, d)
	for _, id := range e2.ids(StateNormal) {
		e2.load[id] = hot2
	}
	e2.seconds(12)
	if n := len(e2.actions(KindCreate, ReasonReactive)); n != 0 {
		t.Fatalf("%d reactive creates while draining, want 0", n)
	}
	if w := e2.working("firewall"); w != 2 {
		t.Fatalf("working %d, want the target 2 kept", w)
	}
	// undrained: the minimum and reactive scaling apply again
	e.clk.Advance(time.Second)
	if resp := e.broadcast(2, decision(2, map[string]int{"firewall": 0})); resp.Error != "" {
		t.Fatalf("broadcast: %s", resp.Error)
	}
	if e.c.Draining() || e.working("firewall") != 2 {
		t.Fatalf("draining %v, working %d after undrain; want false and the minimum 2", e.c.Draining(), e.working("firewall"))
	}
}

// The scale-in guard keeps instances the measured load needs, but not in a
// drained DC: a drain moves everything to the buffer, flows finish there.
func TestDrainOverridesScaleInGuard(t *testing.T) {
	cfg := fwConfig(3)
	cfg.ScaleInGuard = true
	e := newEnv(t, cfg, fake.Options{})
	for _, in := range e.c.Instances() {
		e.load[in.ID] = Stats{CPU: 80, Mem: 30, PktRate: 100}
	}
	e.seconds(2)
	d := decision(1, map[string]int{"firewall": 0})
	d.Drain = true
	e.broadcast(1, d)
	if w := e.working("firewall"); w != 0 {
		t.Fatalf("working %d in a drained DC with the guard on, want 0", w)
	}
}

func TestFingerprintFollowsInstances(t *testing.T) {
	e := newEnv(t, fwConfig(1), fake.Options{BootDelay: 5 * time.Second})
	f0 := e.c.Fingerprint()
	if e.c.Fingerprint() != f0 {
		t.Fatal("fingerprint moved without a change")
	}
	e.clk.Advance(5 * time.Second) // booting → normal
	e.report()
	f1 := e.c.Fingerprint()
	if f1 == f0 {
		t.Fatal("fingerprint unchanged after an instance became active")
	}
	if _, err := e.c.Scale("firewall", 1, ""); err != nil {
		t.Fatal(err)
	}
	if e.c.Fingerprint() == f1 {
		t.Fatal("fingerprint unchanged after a launch")
	}
}
