package fake

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/drivers"
)

var t0 = time.Unix(1_000_000, 0).UTC()

type rec struct {
	clk *clock.Virtual
	evs []drivers.Event
}

func newDriver(t *testing.T, opts Options) (*Driver, *rec) {
	t.Helper()
	clk := clock.NewVirtual(t0)
	d, err := New(clk, opts)
	if err != nil {
		t.Fatal(err)
	}
	r := &rec{clk: clk}
	d.Subscribe(func(ev drivers.Event) { r.evs = append(r.evs, ev) })
	return d, r
}

func spec(id, dc, vnf string) drivers.Spec {
	return drivers.Spec{ID: id, DC: dc, VNF: vnf, Image: "img", Flavor: "m1"}
}

func (r *rec) states(id string) []drivers.State {
	var out []drivers.State
	for _, ev := range r.evs {
		if ev.ID == id {
			out = append(out, ev.State)
		}
	}
	return out
}

func eqStates(a, b []drivers.State) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestBootDelayAndEventsInVirtualTime(t *testing.T) {
	d, r := newDriver(t, Options{BootDelay: 30 * time.Second})
	ctx := context.Background()
	inst, err := d.Launch(ctx, spec("a", "dc0", "firewall"))
	if err != nil {
		t.Fatal(err)
	}
	if inst.State != drivers.StateBooting {
		t.Fatalf("state = %s, want booting", inst.State)
	}
	for _, k := range []string{drivers.MetaManagedBy, drivers.MetaDC, drivers.MetaVNF, drivers.MetaPool, drivers.MetaID} {
		if inst.Metadata[k] == "" {
			t.Errorf("metadata %s missing", k)
		}
	}
	if inst.Pool != "dc0/firewall" {
		t.Errorf("pool = %q", inst.Pool)
	}
	if len(r.evs) != 0 {
		t.Fatalf("events delivered before the clock ran: %v", r.evs)
	}
	r.clk.Advance(29 * time.Second)
	if got := r.states("a"); !eqStates(got, []drivers.State{drivers.StateBooting}) {
		t.Fatalf("at 29s events %v", got)
	}
	r.clk.Advance(time.Second)
	if got := r.states("a"); !eqStates(got, []drivers.State{drivers.StateBooting, drivers.StateActive}) {
		t.Fatalf("at 30s events %v", got)
	}
	if at := r.evs[1].At; !at.Equal(t0.Add(30 * time.Second)) {
		t.Fatalf("active at %v", at)
	}
	got, _ := d.Get("a")
	if got.State != drivers.StateActive {
		t.Fatalf("Get state %s", got.State)
	}
}

func TestLaunchIdempotent(t *testing.T) {
	var launched int
	d, r := newDriver(t, Options{BootDelay: time.Second, OnLaunch: func(drivers.Instance) { launched++ }})
	ctx := context.Background()
	a, err := d.Launch(ctx, spec("a", "dc0", "ids"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := d.Launch(ctx, spec("a", "dc0", "ids"))
	if err != nil {
		t.Fatal(err)
	}
	if a.CloudID != b.CloudID || launched != 1 || len(d.Launches()) != 1 {
		t.Fatalf("second launch made a new instance: %s %s launched=%d", a.CloudID, b.CloudID, launched)
	}
	r.clk.Advance(time.Minute)
	l, _ := d.List(ctx, "")
	if len(l) != 1 {
		t.Fatalf("list %d instances", len(l))
	}
}

func TestQuota(t *testing.T) {
	tests := []struct {
		name  string
		quota Quota
		specs []drivers.Spec
		okN   int // the first okN launches succeed, the rest fail
	}{
		{"total", Quota{Total: 2}, []drivers.Spec{spec("a", "dc0", "x"), spec("b", "dc1", "y"), spec("c", "dc2", "z")}, 2},
		{"per dc", Quota{PerDC: map[string]int{"dc0": 1}}, []drivers.Spec{spec("a", "dc0", "x"), spec("b", "dc0", "y")}, 1},
		{"per dc other dc free", Quota{PerDC: map[string]int{"dc0": 1}}, []drivers.Spec{spec("a", "dc0", "x"), spec("b", "dc1", "y")}, 2},
		{"per vnf", Quota{PerVNF: map[string]int{"dc0/x": 1}}, []drivers.Spec{spec("a", "dc0", "x"), spec("b", "dc0", "x")}, 1},
		{"per vnf other vnf free", Quota{PerVNF: map[string]int{"dc0/x": 1}}, []drivers.Spec{spec("a", "dc0", "x"), spec("b", "dc0", "y")}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, _ := newDriver(t, Options{Quota: tc.quota})
			for i, s := range tc.specs {
				_, err := d.Launch(context.Background(), s)
				if i < tc.okN && err != nil {
					t.Fatalf("launch %d: %v", i, err)
				}
				if i >= tc.okN && !errors.Is(err, drivers.ErrQuota) {
					t.Fatalf("launch %d: err %v, want ErrQuota", i, err)
				}
			}
		})
	}
}

func TestQuotaFreedByTerminateNotByError(t *testing.T) {
	d, r := newDriver(t, Options{Quota: Quota{Total: 1}, FailNext: 1})
	ctx := context.Background()
	if _, err := d.Launch(ctx, spec("a", "dc0", "x")); err != nil {
		t.Fatal(err)
	}
	r.clk.Advance(time.Second)
	if got := r.states("a"); !eqStates(got, []drivers.State{drivers.StateBooting, drivers.StateError}) {
		t.Fatalf("events %v, want booting, error", got)
	}
	if _, err := d.Launch(ctx, spec("b", "dc0", "x")); !errors.Is(err, drivers.ErrQuota) {
		t.Fatalf("an error instance must still count against quota, got %v", err)
	}
	if err := d.Terminate(ctx, "dc0", "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Launch(ctx, spec("b", "dc0", "x")); err != nil {
		t.Fatalf("after terminate: %v", err)
	}
}

func TestFailNextThenHealthy(t *testing.T) {
	d, r := newDriver(t, Options{BootDelay: time.Second, FailNext: 2})
	ctx := context.Background()
	for _, id := range []string{"a", "b", "c"} {
		if _, err := d.Launch(ctx, spec(id, "dc0", "x")); err != nil {
			t.Fatal(err)
		}
	}
	r.clk.Advance(time.Second)
	want := map[string]drivers.State{"a": drivers.StateError, "b": drivers.StateError, "c": drivers.StateActive}
	for id, st := range want {
		s := r.states(id)
		if len(s) != 2 || s[1] != st {
			t.Errorf("%s: events %v, want …%s", id, s, st)
		}
	}
	d.SetFailNext(1)
	if _, err := d.Launch(ctx, spec("d", "dc0", "x")); err != nil {
		t.Fatal(err)
	}
	r.clk.Advance(time.Second)
	if s := r.states("d"); s[len(s)-1] != drivers.StateError {
		t.Fatalf("SetFailNext: d events %v", s)
	}
}

func TestFailRateSeededDeterministic(t *testing.T) {
	run := func() (fails int, pattern string) {
		d, r := newDriver(t, Options{FailRate: 0.3, Rand: rand.New(rand.NewPCG(7, 7))})
		for i := 0; i < 200; i++ {
			id := string(rune('A'+i%26)) + string(rune('0'+i/26))
			if _, err := d.Launch(context.Background(), spec(id, "dc0", "x")); err != nil {
				t.Fatal(err)
			}
		}
		r.clk.Advance(time.Second)
		for _, ev := range r.evs {
			if ev.State == drivers.StateError {
				fails++
				pattern += ev.ID
			}
		}
		return fails, pattern
	}
	f1, p1 := run()
	f2, p2 := run()
	if f1 != f2 || p1 != p2 {
		t.Fatalf("same seed, different failures: %d vs %d", f1, f2)
	}
	if f1 < 30 || f1 > 90 {
		t.Fatalf("%d of 200 failed at rate 0.3", f1)
	}
}

func TestTerminateAndKill(t *testing.T) {
	var terminated []string
	d, r := newDriver(t, Options{BootDelay: 10 * time.Second, OnTerminate: func(dc, id string) { terminated = append(terminated, dc+"/"+id) }})
	ctx := context.Background()
	for _, id := range []string{"a", "b", "c"} {
		if _, err := d.Launch(ctx, spec(id, "dc0", "x")); err != nil {
			t.Fatal(err)
		}
	}
	r.clk.Advance(time.Second)
	// Terminate while booting: no active event ever follows.
	if err := d.Terminate(ctx, "dc0", "a"); err != nil {
		t.Fatal(err)
	}
	if err := d.Terminate(ctx, "dc0", "a"); err != nil {
		t.Fatalf("terminating a gone instance: %v", err)
	}
	if err := d.Terminate(ctx, "dc0", "nope"); err != nil {
		t.Fatalf("terminating an unknown instance: %v", err)
	}
	r.clk.Advance(time.Minute)
	if s := r.states("a"); !eqStates(s, []drivers.State{drivers.StateBooting, drivers.StateGone}) {
		t.Fatalf("a events %v", s)
	}
	if len(terminated) != 1 || terminated[0] != "dc0/a" || len(d.Terminated()) != 1 {
		t.Fatalf("OnTerminate recorded %v", terminated)
	}
	if !d.Kill("b") || d.Kill("b") {
		t.Fatal("Kill must report true once")
	}
	if !d.Fail("c") || d.Fail("c") {
		t.Fatal("Fail must report true once")
	}
	r.clk.Advance(0)
	if s := r.states("b"); s[len(s)-1] != drivers.StateGone {
		t.Fatalf("b events %v", s)
	}
	if s := r.states("c"); s[len(s)-1] != drivers.StateError {
		t.Fatalf("c events %v", s)
	}
	l, _ := d.List(ctx, "dc0")
	if len(l) != 1 || l[0].ID != "c" || l[0].State != drivers.StateError {
		t.Fatalf("list %+v", l)
	}
}

func TestListFiltersByDC(t *testing.T) {
	d, _ := newDriver(t, Options{})
	ctx := context.Background()
	for _, s := range []drivers.Spec{spec("b", "dc1", "x"), spec("a", "dc0", "x"), spec("c", "dc0", "y")} {
		if _, err := d.Launch(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	l, _ := d.List(ctx, "dc0")
	if len(l) != 2 || l[0].ID != "a" || l[1].ID != "c" {
		t.Fatalf("dc0 list %+v", l)
	}
	all, _ := d.List(ctx, "")
	if len(all) != 3 {
		t.Fatalf("all %d", len(all))
	}
}

func TestUnsubscribe(t *testing.T) {
	clk := clock.NewVirtual(t0)
	d, _ := New(clk, Options{})
	n := 0
	cancel := d.Subscribe(func(drivers.Event) { n++ })
	_, _ = d.Launch(context.Background(), spec("a", "dc0", "x"))
	clk.Advance(0)
	cancel()
	_, _ = d.Launch(context.Background(), spec("b", "dc0", "x"))
	clk.Advance(time.Second)
	if n != 2 { // booting + active of a
		t.Fatalf("got %d events, want 2", n)
	}
}

func TestBadInput(t *testing.T) {
	clk := clock.NewVirtual(t0)
	bad := []struct {
		name string
		opts Options
	}{
		{"negative delay", Options{BootDelay: -1}},
		{"rate above 1", Options{FailRate: 2, Rand: rand.New(rand.NewPCG(1, 1))}},
		{"rate without rand", Options{FailRate: 0.5}},
		{"negative failnext", Options{FailNext: -1}},
		{"negative quota", Options{Quota: Quota{PerDC: map[string]int{"x": -1}}}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(clk, tc.opts); err == nil {
				t.Fatal("want error")
			}
		})
	}
	if _, err := New(nil, Options{}); err == nil {
		t.Fatal("nil clock accepted")
	}
	d, _ := New(clk, Options{})
	for _, s := range []drivers.Spec{{DC: "d", VNF: "v"}, {ID: "i", VNF: "v"}, {ID: "i", DC: "d"}} {
		if _, err := d.Launch(context.Background(), s); !errors.Is(err, drivers.ErrInvalid) {
			t.Errorf("spec %+v: err %v, want ErrInvalid", s, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := d.Launch(ctx, spec("a", "d", "v")); err == nil {
		t.Error("cancelled context accepted")
	}
}

func TestReject(t *testing.T) {
	d, _ := newDriver(t, Options{Reject: func(s drivers.Spec) error {
		if s.VNF == "ids" {
			return fmt.Errorf("no valid host: %w", drivers.ErrCapacity)
		}
		return nil
	}})
	if _, err := d.Launch(context.Background(), spec("a", "dc0", "ids")); !errors.Is(err, drivers.ErrCapacity) {
		t.Fatalf("err %v, want ErrCapacity", err)
	}
	if _, err := d.Launch(context.Background(), spec("b", "dc0", "firewall")); err != nil {
		t.Fatal(err)
	}
	if n := len(d.Launches()); n != 1 {
		t.Fatalf("%d launches recorded, want 1", n)
	}
}

func TestQuotaLeft(t *testing.T) {
	ctx := context.Background()
	reject := false
	d, _ := newDriver(t, Options{
		Quota: Quota{Total: 5, PerDC: map[string]int{"dc0": 3}, PerVNF: map[string]int{"dc0/fw": 1}},
		Reject: func(drivers.Spec) error {
			if reject {
				return drivers.ErrQuota
			}
			return nil
		},
	})
	specs := []drivers.Spec{spec("", "dc0", "fw"), spec("", "dc0", "ids")}
	left := func(dc string) []int {
		t.Helper()
		l, err := d.QuotaLeft(ctx, dc, specs)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	if got := left("dc0"); fmt.Sprint(got) != "[1 3]" {
		t.Fatalf("fresh: %v, want [1 3]", got)
	}
	for i, s := range []drivers.Spec{spec("a", "dc0", "fw"), spec("b", "dc0", "ids"), spec("c", "dc1", "ids")} {
		if _, err := d.Launch(ctx, s); err != nil {
			t.Fatalf("launch %d: %v", i, err)
		}
	}
	if got := left("dc0"); fmt.Sprint(got) != "[0 1]" {
		t.Fatalf("after launches: %v, want [0 1]", got)
	}
	if got := left("dc1"); fmt.Sprint(got) != "[2 2]" { // only the total (5 − 3) limits dc1
		t.Fatalf("dc1: %v, want [2 2]", got)
	}
	// a launch the cloud refuses for quota although the counters show room:
	// the flavor counts 0 until an instance of the DC is gone
	reject = true
	if _, err := d.Launch(ctx, spec("d", "dc1", "ids")); !errors.Is(err, drivers.ErrQuota) {
		t.Fatalf("rejected launch: %v", err)
	}
	if got := left("dc1"); fmt.Sprint(got) != "[0 0]" {
		t.Fatalf("dc1 after a quota error: %v, want [0 0]", got)
	}
	reject = false
	if err := d.Terminate(ctx, "dc1", "c"); err != nil {
		t.Fatal(err)
	}
	if got := left("dc1"); fmt.Sprint(got) != "[3 3]" {
		t.Fatalf("dc1 after a termination: %v, want [3 3]", got)
	}
	d.SetQuota(Quota{})
	if got := left("dc0"); fmt.Sprint(got) != "[-1 -1]" {
		t.Fatalf("no quota: %v, want unlimited", got)
	}
}
