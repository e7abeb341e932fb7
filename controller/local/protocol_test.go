package local

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/controller/protocol"
	"github.com/ims-orch/ims-orch/drivers"
	"github.com/ims-orch/ims-orch/drivers/fake"
)

func twoVNFConfig() Config {
	return Config{DC: "dc0", VNFs: []VNFConfig{
		{Name: "firewall", Image: "fw", Flavor: "m1"},
		{Name: "ids", Image: "ids", Flavor: "m1"},
	}}
}

func TestAcquireReportsProvision(t *testing.T) {
	e := newEnv(t, twoVNFConfig(), fake.Options{BootDelay: 10 * time.Second})
	e.round(0, map[string]int{"firewall": 3, "ids": 1})
	e.clk.Advance(10 * time.Second)
	e.report()
	e.round(1, map[string]int{"firewall": 5, "ids": 0}) // 2 booting firewalls, 1 buffered ids
	e.load[e.ids(StateNormal)[0]] = hot2
	e.seconds(5)
	r := e.req(2, protocol.StepAcquire, nil)
	if r.Provision == nil || r.Error != "" {
		t.Fatalf("acquire response %+v", r)
	}
	want := map[string]protocol.VNFProvision{ // the fake sets no quota: no limit
		"firewall": {VNF: "firewall", Working: 3, Overloaded: 1, Booting: 2, Buffered: 0, QuotaLeft: new(drivers.Unlimited)},
		"ids":      {VNF: "ids", Working: 0, Overloaded: 0, Booting: 0, Buffered: 1, QuotaLeft: new(drivers.Unlimited)},
	}
	if len(r.Provision.VNFs) != 2 {
		t.Fatalf("provision %+v", r.Provision)
	}
	if !r.Provision.Has(protocol.FeatureKeepBuffered) { // the global sends keepBuffered only then
		t.Errorf("provision features %v: keepBuffered not advertised", r.Provision.Features)
	}
	for _, p := range r.Provision.VNFs {
		if !reflect.DeepEqual(p, want[p.VNF]) {
			t.Errorf("%s: got %+v, want %+v", p.VNF, p, want[p.VNF])
		}
	}
	if r.Round != 2 || r.Step != protocol.StepAcquire || r.DC != "dc0" {
		t.Fatalf("header not echoed: %+v", r.Header)
	}
}

// The acquire report carries the quota the driver reports: the room left
// after the instances that exist (buffered ones included), 0 once the
// cloud refused a launch for quota; nothing when the driver cannot tell.
func TestAcquireReportsQuota(t *testing.T) {
	e := newEnv(t, twoVNFConfig(), fake.Options{Quota: fake.Quota{PerVNF: map[string]int{"dc0/firewall": 4}, PerDC: map[string]int{"dc0": 6}}})
	e.round(0, map[string]int{"firewall": 3, "ids": 2})
	e.round(1, map[string]int{"firewall": 3, "ids": 1}) // one ids to the buffer: still counts
	quota := func(r protocol.Response) map[string]int {
		t.Helper()
		out := map[string]int{}
		for _, p := range r.Provision.VNFs {
			if p.QuotaLeft == nil {
				t.Fatalf("%s: no quota reported", p.VNF)
			}
			out[p.VNF] = *p.QuotaLeft
		}
		return out
	}
	if got := quota(e.req(2, protocol.StepAcquire, nil)); got["firewall"] != 1 || got["ids"] != 1 {
		t.Fatalf("quota %v, want firewall 1 (4 − 3), ids 1 (6 − 5 in the DC)", got)
	}
	e.req(2, protocol.StepEnter, nil)
	r := e.req(3, protocol.StepBroadcast, decision(3, map[string]int{"firewall": 5, "ids": 1})) // one firewall fits, the next is refused
	e.req(3, protocol.StepEnter, nil)
	if r.Created != 1 || !strings.Contains(r.Error, "quota") {
		t.Fatalf("round 3: %+v", r)
	}
	if got := quota(e.req(4, protocol.StepAcquire, nil)); got["firewall"] != 0 || got["ids"] != 0 {
		t.Fatalf("quota %v after the refused launch, want 0 and 0", got)
	}

	// a driver without the capability: the report says nothing of the quota
	e2 := newEnv(t, twoVNFConfig(), fake.Options{})
	e2.c.drv = plainDriver{e2.drv}
	for _, p := range e2.req(0, protocol.StepAcquire, nil).Provision.VNFs {
		if p.QuotaLeft != nil {
			t.Fatalf("%s: quota %d reported by a driver that cannot tell", p.VNF, *p.QuotaLeft)
		}
	}
}

// plainDriver hides the fake's optional capabilities.
type plainDriver struct{ drivers.Driver }

func TestBroadcastScalesOutAndIn(t *testing.T) {
	e := newEnv(t, fwConfig(0), fake.Options{})
	r := e.round(0, map[string]int{"firewall": 4})
	if r.Created != 4 || r.Reused != 0 || e.working("firewall") != 4 {
		t.Fatalf("round 0: %+v working %d", r, e.working("firewall"))
	}
	ids := e.ids(StateNormal)
	flows := map[string]int{ids[0]: 7, ids[1]: 0, ids[2]: 3, ids[3]: 1}
	for id, f := range flows {
		s := idle
		s.Flows = f
		e.load[id] = s
	}
	e.second()
	e.round(1, map[string]int{"firewall": 2})
	buf := e.c.Buffer("firewall")
	// least-loaded first: ids[1] (0 flows), then ids[3] (1 flow)
	if len(buf) != 2 || buf[0].ID != ids[1] || buf[1].ID != ids[3] {
		t.Fatalf("buffer %+v, want [%s %s]", buf, ids[1], ids[3])
	}
	if len(e.drv.Terminated()) != 0 {
		t.Fatal("scale-in destroyed instances instead of buffering")
	}
	r = e.round(2, map[string]int{"firewall": 5})
	// reuse both from the tail (ids[3] first), then launch one
	if r.Reused != 2 || r.Created != 1 {
		t.Fatalf("round 2: %+v", r)
	}
	reuse := e.actions(KindReuse, ReasonProactive)
	if len(reuse) != 2 || reuse[0].InstanceID != ids[3] || reuse[1].InstanceID != ids[1] {
		t.Fatalf("reuse order %+v, want tail first", reuse)
	}
	if len(e.drv.Launches()) != 5 {
		t.Fatalf("%d launches, want 5", len(e.drv.Launches()))
	}
	if got := e.paths.log; len(got) != 6 || got[0] != "next 1 (1 paths)" || got[1] != "enter 1" || got[5] != "enter 3" {
		t.Fatalf("path store calls %v", got)
	}
	if e.c.Interval() != 3 {
		t.Fatalf("interval %d", e.c.Interval())
	}
}

func TestBufferExpiryAfterTau(t *testing.T) {
	cfg := fwConfig(0)
	cfg.Tau = 3
	e := newEnv(t, cfg, fake.Options{})
	e.round(0, map[string]int{"firewall": 3}) // interval 1
	ids := e.ids(StateNormal)
	e.load[ids[0]] = Stats{CPU: 1, Flows: 0}
	e.load[ids[1]] = Stats{CPU: 2, Flows: 2}
	e.load[ids[2]] = Stats{CPU: 2, Flows: 5}
	e.second()
	e.round(1, map[string]int{"firewall": 1}) // ids[0], ids[1] buffered in interval 1; now interval 2
	e.round(2, map[string]int{"firewall": 1}) // interval 3
	if len(e.c.Buffer("firewall")) != 2 {
		t.Fatalf("expired too early: %+v", e.c.Buffer("firewall"))
	}
	e.round(3, map[string]int{"firewall": 1}) // interval 4: 4−1 ≥ τ=3, both leave the head
	if len(e.c.Buffer("firewall")) != 0 {
		t.Fatalf("buffer %+v, want empty", e.c.Buffer("firewall"))
	}
	term := e.drv.Terminated()
	if len(term) != 1 || term[0] != ids[0] {
		t.Fatalf("terminated %v, want only the idle %s", term, ids[0])
	}
	if e.state(ids[1]) != StateDraining {
		t.Fatalf("%s state %s, want draining (2 active flows)", ids[1], e.state(ids[1]))
	}
	e.seconds(10)
	if e.state(ids[1]) != StateDraining {
		t.Fatal("destroyed while flows were active")
	}
	e.load[ids[1]] = Stats{CPU: 1, Flows: 0}
	e.second()
	if e.state(ids[1]) != "" {
		t.Fatalf("%s still present (%s) after its flows reached 0", ids[1], e.state(ids[1]))
	}
	exp := e.actions(KindDestroy, ReasonExpiry)
	if len(exp) != 2 || exp[0].InstanceID != ids[0] || exp[1].InstanceID != ids[1] {
		t.Fatalf("expiry actions %+v", exp)
	}
}

func TestDefaultTauTen(t *testing.T) {
	e := newEnv(t, fwConfig(0), fake.Options{})
	e.round(0, map[string]int{"firewall": 2})
	e.round(1, map[string]int{"firewall": 1}) // buffered in interval 1
	for r := uint64(2); r < 10; r++ {
		e.round(r, map[string]int{"firewall": 1})
	}
	if e.c.Interval() != 10 || len(e.c.Buffer("firewall")) != 1 {
		t.Fatalf("interval %d buffer %+v", e.c.Interval(), e.c.Buffer("firewall"))
	}
	e.round(10, map[string]int{"firewall": 1}) // interval 11 = 1 + τ
	if len(e.c.Buffer("firewall")) != 0 || len(e.drv.Terminated()) != 1 {
		t.Fatalf("not expired at interval 11: %+v", e.c.Buffer("firewall"))
	}
}

func TestDuplicateAndOldRequests(t *testing.T) {
	e := newEnv(t, fwConfig(0), fake.Options{})
	bc := protocol.Request{Header: protocol.Header{Round: 5, Step: protocol.StepBroadcast, Seq: 42, DC: "dc0"},
		Decision: decision(5, map[string]int{"firewall": 3})}
	r1 := e.c.Handle(bc)
	r2 := e.c.Handle(bc)
	if r1 != r2 || r1.Created != 3 || len(e.drv.Launches()) != 3 {
		t.Fatalf("duplicate broadcast acted twice: %+v %+v launches %d", r1, r2, len(e.drv.Launches()))
	}
	en := protocol.Request{Header: protocol.Header{Round: 5, Step: protocol.StepEnter, Seq: 43, DC: "dc0"}}
	e.c.Handle(en)
	e.c.Handle(en)
	if e.c.Interval() != 6 {
		t.Fatalf("interval %d after duplicate enter, want 6", e.c.Interval())
	}
	// Same round and step, new seq (global re-ran the step): targets are
	// absolute, so nothing more happens.
	bc.Seq = 44
	if r := e.c.Handle(bc); r.Created != 0 || len(e.drv.Launches()) != 3 {
		t.Fatalf("re-run broadcast: %+v", r)
	}
	// Next round starts; an old-round request is answered but ignored.
	e.req(6, protocol.StepAcquire, nil)
	old := protocol.Request{Header: protocol.Header{Round: 4, Step: protocol.StepBroadcast, Seq: 1, DC: "dc0"},
		Decision: decision(4, map[string]int{"firewall": 9})}
	r := e.c.Handle(old)
	if !strings.Contains(r.Error, "stale round 4") || r.Round != 4 || len(e.drv.Launches()) != 3 {
		t.Fatalf("old round: %+v launches %d", r, len(e.drv.Launches()))
	}
	// A late re-send of the previous round's enter gets its stored answer.
	if r := e.c.Handle(en); r.Error != "" || e.c.Interval() != 6 {
		t.Fatalf("late re-send of enter: %+v interval %d", r, e.c.Interval())
	}
	oldEnter := protocol.Request{Header: protocol.Header{Round: 2, Step: protocol.StepEnter, Seq: 9, DC: "dc0"}}
	if r := e.c.Handle(oldEnter); r.Error == "" || e.c.Interval() != 6 {
		t.Fatalf("old enter moved the interval: %+v %d", r, e.c.Interval())
	}
}

func TestBadRequests(t *testing.T) {
	e := newEnv(t, fwConfig(0), fake.Options{})
	tests := []struct {
		name string
		req  protocol.Request
		want string
	}{
		{"other dc", protocol.Request{Header: protocol.Header{Round: 1, Step: protocol.StepAcquire, Seq: 1, DC: "dc9"}}, "header dc"},
		{"missing decision", protocol.Request{Header: protocol.Header{Round: 1, Step: protocol.StepBroadcast, Seq: 2}}, "decision: missing"},
		{"decision for another dc", protocol.Request{Header: protocol.Header{Round: 1, Step: protocol.StepBroadcast, Seq: 3},
			Decision: &protocol.DCDecision{DC: "dc1", Interval: 2}}, "decision.dc"},
		{"wrong interval", protocol.Request{Header: protocol.Header{Round: 1, Step: protocol.StepBroadcast, Seq: 4},
			Decision: &protocol.DCDecision{DC: "dc0", Interval: 7}}, "decision.interval"},
		{"unknown vnf", protocol.Request{Header: protocol.Header{Round: 1, Step: protocol.StepBroadcast, Seq: 5},
			Decision: &protocol.DCDecision{DC: "dc0", Interval: 2, Targets: []protocol.VNFTarget{{VNF: "nat", Working: 1}}}}, "decision.targets[0].vnf"},
		{"negative target", protocol.Request{Header: protocol.Header{Round: 1, Step: protocol.StepBroadcast, Seq: 6},
			Decision: &protocol.DCDecision{DC: "dc0", Interval: 2, Targets: []protocol.VNFTarget{{VNF: "firewall", Working: -1}}}}, "working -1"},
		{"predict step", protocol.Request{Header: protocol.Header{Round: 1, Step: protocol.StepPredict, Seq: 7}}, "not handled"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.c.Handle(tc.req)
			if !strings.Contains(r.Error, tc.want) {
				t.Fatalf("error %q, want it to mention %q", r.Error, tc.want)
			}
		})
	}
	if len(e.drv.Launches()) != 0 {
		t.Fatal("a bad request launched instances")
	}
}

func TestQuotaPartialFill(t *testing.T) {
	e := newEnv(t, twoVNFConfig(), fake.Options{Quota: fake.Quota{PerVNF: map[string]int{"dc0/firewall": 2}}})
	e.req(0, protocol.StepAcquire, nil)
	r := e.req(0, protocol.StepBroadcast, decision(0, map[string]int{"firewall": 4, "ids": 2}))
	if r.Created != 4 || !strings.Contains(r.Error, "quota") {
		t.Fatalf("response %+v: want 4 created (2 firewall + 2 ids) and a quota error", r)
	}
	c := e.c.Counts()
	if c["firewall"].Working() != 2 || c["ids"].Working() != 2 || c["firewall"].Target != 4 {
		t.Fatalf("counts %+v", c)
	}
	e.req(0, protocol.StepEnter, nil)
	// The tick retries after RetryBackoff (10 s) once quota allows.
	e.drv.SetQuota(fake.Quota{})
	e.seconds(9)
	if got := e.working("firewall"); got != 2 {
		t.Fatalf("retried before the backoff: working %d", got)
	}
	e.seconds(2)
	if got := e.working("firewall"); got != 4 {
		t.Fatalf("working %d after quota freed, want 4", got)
	}
	if n := len(e.actions(KindCreate, ReasonProactive)); n != 6 {
		t.Fatalf("%d proactive creates recorded, want 6", n)
	}
}

func TestMaxCapsProactiveTarget(t *testing.T) {
	cfg := fwConfig(1)
	cfg.VNFs[0].Max = 3
	e := newEnv(t, cfg, fake.Options{})
	e.req(0, protocol.StepAcquire, nil)
	r := e.req(0, protocol.StepBroadcast, decision(0, map[string]int{"firewall": 5}))
	if !strings.Contains(r.Error, "capped at max 3") || e.working("firewall") != 3 {
		t.Fatalf("response %+v working %d", r, e.working("firewall"))
	}
	r = e.req(0, protocol.StepBroadcast, decision(0, map[string]int{"firewall": 0}))
	if e.working("firewall") != 1 {
		t.Fatalf("min not kept: %d", e.working("firewall"))
	}
	_ = r
}

func TestScaleInBuffersBootingFirstAndReusesThemBooting(t *testing.T) {
	e := newEnv(t, fwConfig(0), fake.Options{BootDelay: 30 * time.Second})
	e.round(0, map[string]int{"firewall": 2})
	e.clk.Advance(30 * time.Second)
	e.report()
	e.round(1, map[string]int{"firewall": 4}) // two more, booting
	booting := e.ids(StateBooting)
	e.round(2, map[string]int{"firewall": 2})
	buf := e.c.Buffer("firewall")
	if len(buf) != 2 || buf[0].ID != booting[0] || buf[1].ID != booting[1] {
		t.Fatalf("buffer %+v, want the booting %v", buf, booting)
	}
	if n := len(e.ids(StateNormal)); n != 2 {
		t.Fatalf("%d normal, want the 2 active ones kept", n)
	}
	r := e.round(3, map[string]int{"firewall": 3})
	if r.Reused != 1 || e.state(booting[1]) != StateBooting {
		t.Fatalf("reuse %+v, %s state %s (still booting in the cloud)", r, booting[1], e.state(booting[1]))
	}
	e.seconds(30)
	if e.state(booting[1]) != StateNormal || e.state(booting[0]) != StateBuffered {
		t.Fatalf("after boot: %s %s, %s %s", booting[1], e.state(booting[1]), booting[0], e.state(booting[0]))
	}
}

func TestIntervalCatchesUpWithGlobalRounds(t *testing.T) {
	e := newEnv(t, fwConfig(0), fake.Options{})
	e.round(100, map[string]int{"firewall": 2})
	e.round(101, map[string]int{"firewall": 1})
	buf := e.c.Buffer("firewall")
	if e.c.Interval() != 102 || len(buf) != 1 || buf[0].Interval != 101 {
		t.Fatalf("interval %d buffer %+v, want 102 and a tag of 101", e.c.Interval(), buf)
	}
}

// A draining instance whose flows never end is destroyed after DrainTimeout,
// and not before.
func TestDrainTimeout(t *testing.T) {
	cfg := fwConfig(0)
	cfg.Tau = 1
	cfg.DrainTimeout = time.Minute
	e := newEnv(t, cfg, fake.Options{})
	e.round(0, map[string]int{"firewall": 2}) // interval 1
	ids := e.ids(StateNormal)
	for _, id := range ids {
		e.load[id] = Stats{CPU: 2, Flows: 3} // calls that never end
	}
	e.second()
	e.round(1, map[string]int{"firewall": 1}) // one buffered in interval 1, expires at once (τ=1): draining
	var draining string
	for _, id := range ids {
		if e.state(id) == StateDraining {
			draining = id
		}
	}
	if draining == "" {
		t.Fatal("no instance draining")
	}
	e.seconds(58)
	if e.state(draining) != StateDraining {
		t.Fatalf("destroyed before the drain timeout: %s", e.state(draining))
	}
	e.seconds(3)
	if e.state(draining) != "" {
		t.Fatalf("%s still %s after the drain timeout", draining, e.state(draining))
	}
	exp := e.actions(KindDestroy, ReasonExpiry)
	if len(exp) != 1 || !strings.Contains(exp[0].Detail, "drain timeout") {
		t.Fatalf("expiry actions %+v", exp)
	}
}
