// Package driverstest is the conformance suite of drivers.Driver: the same
// checks (idempotent launch, events, list, terminate, refused specs) run
// against every backend — fake and sim in virtual time, local when Kamailio
// is installed, openstack when the stack is up — from each backend's tests.
package driverstest

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/drivers"
)

// Env is one backend under test.
type Env struct {
	Driver drivers.Driver
	// Await lets the backend make progress until cond holds (advance a
	// virtual clock; poll a real backend with a deadline) and fails the
	// test, naming what, if it does not.
	Await func(t *testing.T, what string, cond func() bool)
	// Spec returns a launchable spec with the given ID in the backend's
	// first datacenter (VNF, image, flavor as the backend needs).
	Spec func(id string) drivers.Spec
	// OtherDC is a second datacenter of the backend ("" skips the check
	// that List(dc) holds only that DC's instances).
	OtherDC string
}

// VirtualAwait is an Env.Await for a backend on a virtual clock: it advances
// clk a second at a time, at most a virtual hour.
func VirtualAwait(clk *clock.Virtual) func(t *testing.T, what string, cond func() bool) {
	return func(t *testing.T, what string, cond func() bool) {
		t.Helper()
		for i := 0; !cond(); i++ {
			if i > 3600 {
				t.Fatalf("%s: not after a virtual hour", what)
			}
			clk.Advance(time.Second)
		}
	}
}

// Run runs every check, each on a fresh Env from newEnv.
func Run(t *testing.T, newEnv func(t *testing.T) Env) {
	t.Run("IdempotentLaunch", func(t *testing.T) { idempotentLaunch(t, newEnv(t)) })
	t.Run("EventsAndTerminate", func(t *testing.T) { eventsAndTerminate(t, newEnv(t)) })
	t.Run("ListByDC", func(t *testing.T) { listByDC(t, newEnv(t)) })
	t.Run("RefusedSpec", func(t *testing.T) { refusedSpec(t, newEnv(t)) })
}

func list(t *testing.T, e Env, dc string) []drivers.Instance {
	t.Helper()
	l, err := e.Driver.List(context.Background(), dc)
	if err != nil {
		t.Fatalf("List(%q): %v", dc, err)
	}
	return l
}

func find(l []drivers.Instance, id string) (drivers.Instance, bool) {
	i := slices.IndexFunc(l, func(in drivers.Instance) bool { return in.ID == id })
	if i < 0 {
		return drivers.Instance{}, false
	}
	return l[i], true
}

// A Launch retried with the same ID makes no second instance.
func idempotentLaunch(t *testing.T, e Env) {
	ctx := context.Background()
	spec := e.Spec("conf-idem-1")
	a, err := e.Driver.Launch(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Driver.Terminate(context.Background(), spec.DC, spec.ID) })
	b, err := e.Driver.Launch(ctx, spec)
	if err != nil {
		t.Fatalf("second Launch of %s: %v", spec.ID, err)
	}
	if a.ID != spec.ID || b.ID != spec.ID || (a.CloudID != "" && b.CloudID != a.CloudID) {
		t.Fatalf("launches %+v and %+v of one ID", a, b)
	}
	n := 0
	for _, in := range list(t, e, "") {
		if in.ID == spec.ID {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d instances with ID %s, want 1", n, spec.ID)
	}
}

// Launch reports booting then active through Subscribe; Terminate removes
// the instance (gone), and terminating it again is not an error; a
// cancelled subscription gets nothing more.
func eventsAndTerminate(t *testing.T, e Env) {
	ctx := context.Background()
	var mu sync.Mutex
	var evs []drivers.Event
	cancel := e.Driver.Subscribe(func(ev drivers.Event) { mu.Lock(); evs = append(evs, ev); mu.Unlock() })
	spec := e.Spec("conf-ev-1")
	if _, err := e.Driver.Launch(ctx, spec); err != nil {
		t.Fatal(err)
	}
	seen := func(st drivers.State) bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.ContainsFunc(evs, func(ev drivers.Event) bool { return ev.ID == spec.ID && ev.State == st })
	}
	e.Await(t, spec.ID+" active event", func() bool { return seen(drivers.StateActive) })
	in, ok := find(list(t, e, spec.DC), spec.ID)
	if !ok || in.State != drivers.StateActive || in.DC != spec.DC || in.VNF != spec.VNF {
		t.Fatalf("List after the active event: %+v %v", in, ok)
	}
	mu.Lock()
	for _, ev := range evs {
		if ev.ID == spec.ID && (ev.DC != spec.DC || ev.VNF != spec.VNF) {
			t.Errorf("event %+v names another DC or VNF than %+v", ev, spec)
		}
	}
	mu.Unlock()
	if err := e.Driver.Terminate(ctx, spec.DC, spec.ID); err != nil {
		t.Fatal(err)
	}
	e.Await(t, spec.ID+" gone from List", func() bool { _, ok := find(list(t, e, ""), spec.ID); return !ok })
	e.Await(t, spec.ID+" gone event", func() bool { return seen(drivers.StateGone) })
	if err := e.Driver.Terminate(ctx, spec.DC, spec.ID); err != nil {
		t.Fatalf("terminating a gone instance: %v", err)
	}
	cancel()
	mu.Lock()
	n := len(evs)
	mu.Unlock()
	spec2 := e.Spec("conf-ev-2")
	if _, err := e.Driver.Launch(ctx, spec2); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Driver.Terminate(context.Background(), spec2.DC, spec2.ID) })
	e.Await(t, spec2.ID+" listed", func() bool { _, ok := find(list(t, e, ""), spec2.ID); return ok })
	mu.Lock()
	defer mu.Unlock()
	for _, ev := range evs[n:] {
		if ev.ID == spec2.ID {
			t.Fatalf("event %+v after cancel", ev)
		}
	}
}

// List(dc) holds that DC's instances only; List("") holds every DC's.
func listByDC(t *testing.T, e Env) {
	if e.OtherDC == "" {
		t.Skip("the backend has one datacenter here")
	}
	ctx := context.Background()
	a := e.Spec("conf-dc-1")
	b := e.Spec("conf-dc-2")
	b.DC = e.OtherDC
	for _, s := range []drivers.Spec{a, b} {
		if _, err := e.Driver.Launch(ctx, s); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = e.Driver.Terminate(context.Background(), s.DC, s.ID) })
	}
	_, inA := find(list(t, e, a.DC), b.ID)
	_, aInA := find(list(t, e, a.DC), a.ID)
	_, inB := find(list(t, e, b.DC), b.ID)
	all := list(t, e, "")
	_, aAll := find(all, a.ID)
	_, bAll := find(all, b.ID)
	if inA || !aInA || !inB || !aAll || !bAll {
		t.Fatalf("List by DC: b in %s %v, a in %s %v, b in %s %v, both in all %v %v", a.DC, inA, a.DC, aInA, b.DC, inB, aAll, bAll)
	}
}

// A spec without an ID is refused with drivers.ErrInvalid and launches
// nothing: no instance is listed after it that was not listed before
// (instances of earlier cases may still be going away, as a real cloud
// deletes asynchronously, so counts would not do). An instance an earlier
// case terminated must not come back either: the real Nova can list a
// server deleted while it was still building again, not deleting, for a
// few seconds, and the openstack driver hides it (drivers/openstack
// tombstone.go).
func refusedSpec(t *testing.T, e Env) {
	spec := e.Spec("")
	before := list(t, e, "")
	if _, err := e.Driver.Launch(context.Background(), spec); !errors.Is(err, drivers.ErrInvalid) {
		t.Fatalf("Launch without ID: %v, want drivers.ErrInvalid", err)
	}
	for _, in := range list(t, e, "") {
		if _, ok := find(before, in.ID); !ok {
			t.Fatalf("a refused launch left instance %q (%s in %s)", in.ID, in.VNF, in.DC)
		}
	}
}
