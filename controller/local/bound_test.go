package local

import (
	"strings"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/controller/protocol"
	"github.com/ims-orch/ims-orch/drivers/fake"
)

// A large shortfall is launched in batches of LaunchBatch per tick, not all
// at once.
func TestLaunchesInBatches(t *testing.T) {
	cfg := fwConfig(0)
	cfg.LaunchBatch = 10
	e := newEnv(t, cfg, fake.Options{BootDelay: 5e9})
	e.round(1, map[string]int{"firewall": 35})
	if n := len(e.drv.Launches()); n != 10 {
		t.Fatalf("%d launches right after the decision, want a batch of 10", n)
	}
	e.seconds(1)
	if n := len(e.drv.Launches()); n != 20 {
		t.Fatalf("%d launches after one tick, want 20", n)
	}
	e.seconds(2)
	if n := len(e.drv.Launches()); n != 35 {
		t.Fatalf("%d launches after three ticks, want all 35", n)
	}
	e.seconds(10)
	if w := e.working("firewall"); w != 35 {
		t.Fatalf("working %d, want 35", w)
	}
}

// A target or a limit above the VNF's bound is refused and launches nothing.
func TestBoundRefusesTargetsAndLimits(t *testing.T) {
	cfg := fwConfig(1)
	cfg.VNFs[0].Bound = 252
	e := newEnv(t, cfg, fake.Options{})
	before := len(e.drv.Launches())
	e.req(1, protocol.StepAcquire, nil)
	d := decision(1, map[string]int{"firewall": 253})
	d.Limits = []protocol.VNFLimit{{VNF: "firewall", Min: 12000, Max: 12000}}
	resp := e.req(1, protocol.StepBroadcast, d)
	if !strings.Contains(resp.Error, "working 253: refused, above the bound 252") || !strings.Contains(resp.Error, "min 12000 or max 12000 above the bound 252") {
		t.Fatalf("response error %q", resp.Error)
	}
	e.seconds(2)
	if n := len(e.drv.Launches()) - before; n != 0 {
		t.Fatalf("%d launches after a refused target", n)
	}
	if _, err := e.c.Scale("firewall", 300, ""); err == nil || !strings.Contains(err.Error(), "above the bound 252") {
		t.Fatalf("manual scale above the bound: %v", err)
	}
	if _, err := New(Config{DC: "x", VNFs: []VNFConfig{{Name: "firewall", Min: 300, Bound: 252}}}, e.drv, e.clk, nil); err == nil {
		t.Fatal("a min above the bound was accepted")
	}
}

// An acquire or broadcast of a closed round (queued while the process was
// stopped) is dropped: it neither pauses reactive scaling nor applies.
func TestClosedRoundRequestsDropped(t *testing.T) {
	e := newEnv(t, fwConfig(1), fake.Options{})
	e.round(5, map[string]int{"firewall": 1}) // entered interval 6
	e.seq++
	resp := e.c.Handle(protocol.Request{Header: protocol.Header{Round: 5, Step: protocol.StepAcquire, Seq: e.seq, DC: "dc0"}})
	if !strings.Contains(resp.Error, "round 5 is closed here") || e.c.Paused() {
		t.Fatalf("late acquire: %q, paused %v", resp.Error, e.c.Paused())
	}
	// round 6's acquire whose step deadline passed 3 s ago
	e.seq++
	resp = e.c.Handle(protocol.Request{Header: protocol.Header{Round: 6, Step: protocol.StepAcquire, Seq: e.seq, DC: "dc0"},
		Expires: e.clk.Now().Add(-3 * time.Second)})
	if !strings.Contains(resp.Error, "expired") || e.c.Paused() {
		t.Fatalf("expired acquire: %q, paused %v", resp.Error, e.c.Paused())
	}
	// within the skew allowance it is handled
	e.seq++
	resp = e.c.Handle(protocol.Request{Header: protocol.Header{Round: 6, Step: protocol.StepAcquire, Seq: e.seq, DC: "dc0"},
		Expires: e.clk.Now().Add(-time.Second)})
	if resp.Error != "" || !e.c.Paused() {
		t.Fatalf("timely acquire: %q, paused %v", resp.Error, e.c.Paused())
	}
}
