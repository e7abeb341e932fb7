package local

import (
	"strings"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/drivers/fake"
)

func TestManualScale(t *testing.T) {
	e := newEnv(t, fwConfig(2), fake.Options{})
	if got, err := e.c.Scale("firewall", -1, "maintenance"); err != nil || got != 2 {
		t.Fatalf("scale in below min: target %d, err %v; want kept at min 2", got, err)
	}
	if got, err := e.c.Scale("firewall", 3, ""); err != nil || got != 5 {
		t.Fatalf("scale out: %d %v", got, err)
	}
	e.seconds(1)
	if w := e.working("firewall"); w != 5 {
		t.Fatalf("working %d, want 5", w)
	}
	if n := len(e.actions(KindCreate, ReasonManual)); n != 3 {
		t.Fatalf("%d manual creates, want 3", n)
	}
	if _, err := e.c.Scale("firewall", -2, "less traffic"); err != nil {
		t.Fatal(err)
	}
	if b := len(e.c.Buffer("firewall")); b != 2 || len(e.actions(KindBuffer, ReasonManual)) != 2 {
		t.Fatalf("buffered %d, manual buffer actions %d, want 2 and 2", b, len(e.actions(KindBuffer, ReasonManual)))
	}
	// scaling out again takes the buffer tail before launching
	launches := len(e.drv.Launches())
	if _, err := e.c.Scale("firewall", 3, ""); err != nil {
		t.Fatal(err)
	}
	e.seconds(1)
	if w := e.working("firewall"); w != 6 || len(e.actions(KindReuse, ReasonManual)) != 2 || len(e.drv.Launches()) != launches+1 {
		t.Fatalf("working %d, manual reuses %d, launches +%d; want 6, 2, +1", w, len(e.actions(KindReuse, ReasonManual)), len(e.drv.Launches())-launches)
	}
	if _, err := e.c.Scale("nope", 1, ""); err == nil {
		t.Fatal("unknown VNF accepted")
	}
}

// A manual scale sticks: the operator's +2 becomes a floor the next rounds
// honour (the issue's "two firewalls added, the next round 4 s later moved
// both to the buffer"), visible in Counts and in the round's action
// details, until released; a scale-in sets a ceiling that rounds and
// reactive scale-out honour; an expiring hold ends by itself.
func TestManualScaleSticks(t *testing.T) {
	e := newEnv(t, fwConfig(1), fake.Options{})
	e.seconds(1)
	if got, err := e.c.Scale("firewall", 2, "operator scale_out by 2"); err != nil || got != 3 {
		t.Fatalf("scale out: %d %v", got, err)
	}
	e.seconds(4)
	e.round(1, map[string]int{"firewall": 1})
	if w := e.working("firewall"); w != 3 {
		t.Fatalf("working %d after a round asking 1, want the manual floor 3", w)
	}
	h := e.c.Counts()["firewall"].Hold
	if h == nil || h.Floor != 3 || h.Ceiling != 0 || !h.Until.IsZero() {
		t.Fatalf("hold %+v, want floor 3 until released", h)
	}
	if n := len(e.actions(KindBuffer, ReasonProactive)); n != 0 {
		t.Fatalf("the round buffered %d instances under a manual floor", n)
	}
	// a round asking more than the floor gets it: a floor is not a cap
	e.round(2, map[string]int{"firewall": 4})
	if w := e.working("firewall"); w != 4 {
		t.Fatalf("working %d, want the round's 4", w)
	}
	if ok, err := e.c.Release("firewall", "done"); !ok || err != nil {
		t.Fatalf("release: %v %v", ok, err)
	}
	e.round(3, map[string]int{"firewall": 1})
	if w := e.working("firewall"); w != 1 || e.c.Counts()["firewall"].Hold != nil {
		t.Fatalf("after release: working %d, hold %+v; want 1, none", w, e.c.Counts()["firewall"].Hold)
	}

	// a ceiling with an expiry: rounds are capped until it passes
	until := e.clk.Now().Add(60 * time.Second)
	if _, err := e.c.ScaleHold("firewall", 0, "freeze", until); err != nil {
		t.Fatal(err)
	}
	e.round(4, map[string]int{"firewall": 5})
	if w := e.working("firewall"); w != 1 {
		t.Fatalf("working %d under a hold at 1, want 1", w)
	}
	var capped bool
	for _, a := range e.c.Actions() {
		capped = capped || strings.Contains(a.Detail, "manual ceiling 1")
	}
	if !capped {
		t.Fatal("no action says the round was lowered to the manual ceiling")
	}
	if d := e.c.Counts()["firewall"]; d.Target != 1 || d.Hold == nil || d.Hold.Ceiling != 1 {
		t.Fatalf("counts %+v", d)
	}
	e.seconds(61)
	e.round(5, map[string]int{"firewall": 5})
	if w := e.working("firewall"); w != 5 || e.c.Counts()["firewall"].Hold != nil {
		t.Fatalf("after the hold expired: working %d, hold %+v; want 5, none", w, e.c.Counts()["firewall"].Hold)
	}
	if _, err := e.c.ScaleHold("firewall", 1, "", e.clk.Now()); err == nil {
		t.Fatal("a hold expiring now was accepted")
	}
	if ok, err := e.c.Release("firewall", ""); ok || err != nil {
		t.Fatalf("release without a hold: %v %v", ok, err)
	}
	if _, err := e.c.Release("nope", ""); err == nil {
		t.Fatal("release of an unknown VNF accepted")
	}
}

// A manual ceiling stops reactive scale-out at it.
func TestManualCeilingStopsReactive(t *testing.T) {
	cfg := fwConfig(2)
	cfg.Reactive = true
	e := newEnv(t, cfg, fake.Options{})
	e.seconds(1)
	if _, err := e.c.Scale("firewall", 0, "freeze at 2"); err != nil {
		t.Fatal(err)
	}
	for _, in := range e.c.Instances() {
		e.load[in.ID] = Stats{CPU: 99, Mem: 60, PktRate: 40000}
	}
	e.seconds(20)
	if w := e.working("firewall"); w != 2 || len(e.actions(KindCreate, ReasonReactive)) != 0 {
		t.Fatalf("working %d, reactive creates %d under a ceiling of 2", w, len(e.actions(KindCreate, ReasonReactive)))
	}
	e.c.Release("firewall", "")
	e.seconds(10)
	if len(e.actions(KindCreate, ReasonReactive)) == 0 {
		t.Fatal("no reactive scale-out after the release")
	}
}
