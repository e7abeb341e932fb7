package local

import (
	"strings"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/controller/protocol"
)

// scaleOuts is the controller's reactive creates and reuses (anticipated
// ones included).
func (e *env) scaleOuts() []Action {
	return append(e.actions(KindCreate, ReasonReactive), e.actions(KindReuse, ReasonReactive)...)
}

// The guards of anticipated scale-out: on the ramp that anticipates at 84 %
// (TestAnticipateScalesOutBeforeTheOverload), run up to 86 % (never over
// the CPU threshold), no instance is added when the VNF is at its Max,
// under an operator's ceiling, or while a round paused reactive scaling,
// and none of these leaves a scale-out owed for later.
func TestAnticipateGuards(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T) *env
	}{
		{"max 1", func(t *testing.T) *env {
			return anticipateEnv(t, 1, 10*time.Second, func(c *Config) { c.VNFs[0].Max = 1 })
		}},
		{"operator ceiling", func(t *testing.T) *env {
			e := rampEnv(t, true, true, 1)
			e.round(1, map[string]int{"firewall": 2})
			e.seconds(11)
			if got, err := e.c.ScaleHold("firewall", -1, "test", time.Time{}); err != nil || got != 1 {
				t.Fatalf("ScaleHold -1: %d, %v", got, err)
			}
			e.seconds(1)
			return e
		}},
		{"paused by a round", func(t *testing.T) *env {
			e := rampEnv(t, true, true, 1)
			e.req(1, protocol.StepAcquire, nil) // acquire: paused until enter (MaxPause 60 s)
			return e
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := tc.setup(t)
			ids := e.ids(StateNormal)
			if len(ids) != 1 {
				t.Fatalf("working %v, want one", ids)
			}
			before := len(e.scaleOuts())
			e.ramp(ids, 24, func(int, float64) {})
			if so := e.scaleOuts(); len(so) != before {
				t.Fatalf("%d scale-outs on the ramp: %+v", len(so)-before, so[before:])
			}
			if vs := e.c.vnfs["firewall"]; vs.target > 1 || !vs.lastReactive.IsZero() {
				t.Fatalf("target %d, last reactive %v: an anticipated scale-out was taken", vs.target, vs.lastReactive)
			}
		})
	}
}

// Anticipated and reactive scale-out share ReactiveCooldown: an overload
// that follows an anticipated scale-out within the cooldown adds no second
// instance for the same rise.
func TestAnticipateSharesTheReactiveCooldown(t *testing.T) {
	e := anticipateEnv(t, 2, 10*time.Second, func(c *Config) { c.ReactiveCooldown = 30 * time.Second })
	ids := e.ids(StateNormal)
	e.ramp(ids, 23, func(int, float64) {})
	so := e.scaleOuts()
	if len(so) != 1 || !strings.Contains(so[0].Detail, "anticipated") {
		t.Fatalf("scale-outs %+v, want one anticipated", so)
	}
	// both loaded instances go over the threshold at once and stay there:
	// 2 of 3 working (the new one boots) overloaded, which alone is a
	// reactive scale-out
	for _, id := range ids {
		e.load[id] = Stats{CPU: 99, Mem: 60, PktRate: 100, Flows: 100}
	}
	e.seconds(9)
	for _, id := range ids {
		if e.state(id) != StateOverload {
			t.Fatalf("%s is %s, want overload", id, e.state(id))
		}
	}
	if so := e.scaleOuts(); len(so) != 1 {
		t.Fatalf("%d scale-outs within the cooldown of the anticipated one: %+v", len(so), so)
	}
}

// ... and anticipate itself waits for the cooldown of the last scale-out:
// a rise that would anticipate adds nothing within it.
func TestAnticipateWaitsForTheReactiveCooldown(t *testing.T) {
	e := anticipateEnv(t, 1, 10*time.Second, func(c *Config) { c.ReactiveCooldown = 90 * time.Second })
	first := e.ids(StateNormal)[0]
	e.load[first] = Stats{CPU: 95, Mem: 60, PktRate: 100, Flows: 100} // a step from idle: one scale-out
	e.seconds(7)
	if so := e.scaleOuts(); len(so) != 1 {
		t.Fatalf("scale-outs %+v, want one", so)
	}
	e.seconds(11) // the new one boots
	ids := append(e.ids(StateNormal), e.ids(StateOverload)...)
	if len(ids) != 2 {
		t.Fatalf("working %v, want two", ids)
	}
	e.ramp(ids, 24, func(int, float64) {}) // 40 → 86 % on both: anticipates at ≈ 80 % without the cooldown
	if so := e.scaleOuts(); len(so) != 1 {
		t.Fatalf("%d scale-outs within the cooldown of the first: %+v", len(so), so)
	}
}
