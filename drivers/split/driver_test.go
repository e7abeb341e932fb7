package split

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/drivers"
	"github.com/ims-orch/ims-orch/drivers/fake"
)

// fakeDrainer is drivers/fake plus a Drain that records its calls.
type fakeDrainer struct {
	*fake.Driver
	mu     sync.Mutex
	drains []string
	res    drivers.DrainResult
	err    error
}

func (f *fakeDrainer) Drain(ctx context.Context, dc, id string, timeout time.Duration) (drivers.DrainResult, error) {
	f.mu.Lock()
	f.drains = append(f.drains, id+"/"+timeout.String())
	f.mu.Unlock()
	if f.err != nil {
		return f.res, f.err
	}
	return f.res, f.Driver.Terminate(ctx, dc, id)
}

func TestDriverRoutesAndDrains(t *testing.T) {
	clk := clock.NewVirtual(time.Unix(0, 0))
	cpf, err := fake.New(clk, fake.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dpf, _ := fake.New(clk, fake.Options{})
	cp := &fakeDrainer{Driver: cpf, res: drivers.DrainResult{Idle: true, Finished: true}}
	d, err := NewDriver(DriverConfig{CP: cp, CPVNFs: []string{"pcscf", "scscf"}, Other: dpf, DrainTimeout: 7 * time.Second,
		Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	var events []string
	cancel := d.Subscribe(func(ev drivers.Event) { events = append(events, ev.ID+":"+string(ev.State)) })
	defer cancel()
	ctx := context.Background()
	for _, s := range []drivers.Spec{{ID: "p1", DC: "dc0", VNF: "pcscf"}, {ID: "s1", DC: "dc0", VNF: "scscf"}, {ID: "f1", DC: "dc0", VNF: "firewall"}} {
		if _, err := d.Launch(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(time.Second)
	cpl, _ := cpf.List(ctx, "")
	dpl, _ := dpf.List(ctx, "")
	if len(cpl) != 2 || len(dpl) != 1 || dpl[0].ID != "f1" {
		t.Fatalf("routing: cp %v dp %v", cpl, dpl)
	}
	all, _ := d.List(ctx, "dc0")
	ids := []string{}
	for _, in := range all {
		ids = append(ids, in.ID)
	}
	if !slices.Equal(ids, []string{"f1", "p1", "s1"}) {
		t.Fatalf("List %v", ids)
	}
	if err := d.Terminate(ctx, "dc0", "s1"); err != nil {
		t.Fatal(err)
	}
	if err := d.Terminate(ctx, "dc0", "f1"); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cp.drains, []string{"s1/7s"}) {
		t.Fatalf("drains %v: the CP instance must be drained with the timeout, the DP one not", cp.drains)
	}
	rec := d.Drains()
	if len(rec) != 1 || rec[0].ID != "s1" || !rec[0].Result.Idle || rec[0].Err != nil {
		t.Fatalf("drain records %+v", rec)
	}
	if err := d.Terminate(ctx, "dc0", "nobody"); err != nil {
		t.Fatalf("unknown instance: %v", err)
	}
	cp.err = errors.New("rpc down")
	if err := d.Terminate(ctx, "dc0", "p1"); err == nil || len(d.Drains()) != 2 {
		t.Fatalf("drain error lost: %v", err)
	}
	if !slices.Contains(events, "f1:active") || !slices.Contains(events, "p1:active") {
		t.Fatalf("events of both backends expected: %v", events)
	}
	d2, _ := NewDriver(DriverConfig{CP: cp, CPVNFs: []string{"pcscf"}})
	if _, err := d2.Launch(ctx, drivers.Spec{ID: "f2", DC: "dc0", VNF: "firewall"}); !errors.Is(err, drivers.ErrInvalid) {
		t.Fatalf("no DP backend: %v", err)
	}
	for _, c := range []DriverConfig{{}, {CP: cp}, {CP: cp, CPVNFs: []string{"x"}, DrainTimeout: -1}} {
		if _, err := NewDriver(c); err == nil {
			t.Fatalf("config %+v accepted", c)
		}
	}
}

// TestDriverWithoutDrainer: a CP backend without the drivers.Drainer
// capability is terminated directly and leaves no drain record.
func TestDriverWithoutDrainer(t *testing.T) {
	clk := clock.NewVirtual(time.Unix(0, 0))
	cpf, _ := fake.New(clk, fake.Options{})
	if _, ok := any(cpf).(drivers.Drainer); ok {
		t.Fatal("the fake driver is expected to lack Drain for this test")
	}
	d, err := NewDriver(DriverConfig{CP: cpf, CPVNFs: []string{"pcscf"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := d.Launch(ctx, drivers.Spec{ID: "p1", DC: "dc0", VNF: "pcscf"}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	if err := d.Terminate(ctx, "dc0", "p1"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	if l, _ := cpf.List(ctx, ""); len(l) != 0 || len(d.Drains()) != 0 {
		t.Fatalf("after Terminate: instances %v, drains %v", l, d.Drains())
	}
}

// killDrainer is a fakeDrainer that can also Kill.
type killDrainer struct {
	*fakeDrainer
	kills []string
}

func (k *killDrainer) Kill(ctx context.Context, dc, id string) error {
	k.kills = append(k.kills, id)
	return k.Driver.Terminate(ctx, dc, id)
}

// TestKillNeverDrains: Kill (a failed instance) goes to the CP backend's Kill
// without a drain; a DP instance is terminated by its backend.
func TestKillNeverDrains(t *testing.T) {
	clk := clock.NewVirtual(time.Unix(0, 0))
	cpf, _ := fake.New(clk, fake.Options{})
	dpf, _ := fake.New(clk, fake.Options{})
	cp := &killDrainer{fakeDrainer: &fakeDrainer{Driver: cpf}}
	d, err := NewDriver(DriverConfig{CP: cp, CPVNFs: []string{"scscf"}, Other: dpf})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, s := range []drivers.Spec{{ID: "s1", DC: "dc0", VNF: "scscf"}, {ID: "f1", DC: "dc0", VNF: "firewall"}} {
		if _, err := d.Launch(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(time.Second)
	for _, id := range []string{"s1", "f1", "nobody"} {
		if err := d.Kill(ctx, "dc0", id); err != nil {
			t.Fatalf("Kill(%s): %v", id, err)
		}
	}
	if !slices.Equal(cp.kills, []string{"s1"}) || len(cp.drains) != 0 || len(d.Drains()) != 0 {
		t.Fatalf("kills %v drains %v records %v: want s1 killed by the CP backend, nothing drained", cp.kills, cp.drains, d.Drains())
	}
	if l, _ := dpf.List(ctx, ""); len(l) != 0 {
		t.Fatalf("DP instance left: %v", l)
	}
}

// plain hides a backend's optional capabilities.
type plain struct{ drivers.Driver }

// QuotaLeft asks each spec of the backend that runs its VNF; a backend that
// cannot tell answers Unlimited.
func TestQuotaLeftPerBackend(t *testing.T) {
	clk := clock.NewVirtual(time.Unix(0, 0))
	cpf, _ := fake.New(clk, fake.Options{Quota: fake.Quota{PerDC: map[string]int{"dc0": 2}}})
	dpf, _ := fake.New(clk, fake.Options{Quota: fake.Quota{PerVNF: map[string]int{"dc0/firewall": 5}}})
	specs := []drivers.Spec{{DC: "dc0", VNF: "firewall"}, {DC: "dc0", VNF: "pcscf"}, {DC: "dc0", VNF: "ids"}}
	for _, tc := range []struct {
		name   string
		cp, dp drivers.Driver
		want   []int
	}{
		{"both report", cpf, dpf, []int{5, 2, drivers.Unlimited}},
		{"DP backend cannot tell", cpf, plain{dpf}, []int{drivers.Unlimited, 2, drivers.Unlimited}},
		{"no DP backend", plain{cpf}, nil, []int{drivers.Unlimited, drivers.Unlimited, drivers.Unlimited}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := NewDriver(DriverConfig{CP: tc.cp, CPVNFs: []string{"pcscf"}, Other: tc.dp})
			if err != nil {
				t.Fatal(err)
			}
			got, err := d.QuotaLeft(context.Background(), "dc0", specs)
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("QuotaLeft = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}
