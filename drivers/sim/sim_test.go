package sim

import (
	"context"
	"errors"
	"math"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/ims-orch/ims-orch/clock"
	"github.com/ims-orch/ims-orch/drivers"
	"github.com/ims-orch/ims-orch/placement/vnf"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

type sinkRec struct {
	got map[string][]Sample
	err error
}

func (s *sinkRec) ReportStats(id string, x Sample) error {
	if s.got == nil {
		s.got = map[string][]Sample{}
	}
	s.got[id] = append(s.got[id], x)
	return s.err
}

func newCloud(t *testing.T, opts Options) (*clock.Virtual, *Cloud) {
	t.Helper()
	clk := clock.NewVirtual(t0)
	if opts.DCs == nil {
		opts.DCs = []string{"dc0", "dc1"}
	}
	c, err := New(clk, opts)
	if err != nil {
		t.Fatal(err)
	}
	return clk, c
}

func launch(t *testing.T, c *Cloud, id, dc, vnf string) drivers.Instance {
	t.Helper()
	in, err := c.Launch(context.Background(), drivers.Spec{ID: id, DC: dc, VNF: vnf})
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func TestBootDelayInVirtualTime(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  time.Duration
		want time.Duration
	}{
		{"default 30 s", 0, 30 * time.Second},
		{"configured 45 s", 45 * time.Second, 45 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk, c := newCloud(t, Options{BootDelay: tc.opt})
			var evs []drivers.Event
			c.Subscribe(func(e drivers.Event) { evs = append(evs, e) })
			in := launch(t, c, "fw-1", "dc0", "firewall")
			if in.State != drivers.StateBooting || in.Metadata[drivers.MetaVNF] != "firewall" || in.Metadata[drivers.MetaManagedBy] != "ims-orch" {
				t.Fatalf("launch returned %+v", in)
			}
			clk.Advance(tc.want - time.Nanosecond)
			u, _ := c.Unit("fw-1")
			if u.State() != drivers.StateBooting {
				t.Fatalf("state before the boot delay: %s", u.State())
			}
			if len(evs) != 1 || evs[0].State != drivers.StateBooting {
				t.Fatalf("events before boot: %+v", evs)
			}
			clk.Advance(time.Nanosecond)
			if u.State() != drivers.StateActive {
				t.Fatalf("state after the boot delay: %s", u.State())
			}
			if len(evs) != 2 || evs[1].State != drivers.StateActive || !evs[1].At.Equal(t0.Add(tc.want)) {
				t.Fatalf("events after boot: %+v", evs)
			}
			if err := c.Terminate(context.Background(), "dc0", "fw-1"); err != nil {
				t.Fatal(err)
			}
			clk.Advance(0)
			if len(evs) != 3 || evs[2].State != drivers.StateGone {
				t.Fatalf("events after terminate: %+v", evs)
			}
			if l, _ := c.List(context.Background(), ""); len(l) != 0 {
				t.Fatalf("list after terminate: %+v", l)
			}
		})
	}
}

func TestTerminateWhileBootingNeverActivates(t *testing.T) {
	clk, c := newCloud(t, Options{})
	var states []drivers.State
	c.Subscribe(func(e drivers.Event) { states = append(states, e.State) })
	launch(t, c, "a", "dc1", "P-CSCF")
	clk.Advance(10 * time.Second)
	if err := c.Terminate(context.Background(), "dc1", "a"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	if len(states) != 2 || states[0] != drivers.StateBooting || states[1] != drivers.StateGone {
		t.Fatalf("states %v", states)
	}
	if err := c.Terminate(context.Background(), "dc1", "a"); err != nil {
		t.Fatalf("terminate of a gone instance: %v", err)
	}
}

func TestLaunchErrorsAndIdempotence(t *testing.T) {
	_, c := newCloud(t, Options{MaxPerDC: map[string]int{"dc0": 2}})
	ctx := context.Background()
	a := launch(t, c, "a", "dc0", "ids")
	again := launch(t, c, "a", "dc0", "ids")
	if again.CloudID != a.CloudID {
		t.Fatalf("relaunch made a new instance: %s vs %s", again.CloudID, a.CloudID)
	}
	launch(t, c, "b", "dc0", "ids")
	for _, tc := range []struct {
		name string
		spec drivers.Spec
		want error
	}{
		{"over the DC limit", drivers.Spec{ID: "c", DC: "dc0", VNF: "ids"}, drivers.ErrCapacity},
		{"unknown DC", drivers.Spec{ID: "c", DC: "dc9", VNF: "ids"}, drivers.ErrInvalid},
		{"unknown VNF", drivers.Spec{ID: "c", DC: "dc1", VNF: "dpi"}, drivers.ErrInvalid},
		{"empty id", drivers.Spec{DC: "dc1", VNF: "ids"}, drivers.ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := c.Launch(ctx, tc.spec); !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}
	launch(t, c, "c", "dc1", "ids") // another DC has no limit
}

func TestQuotaLeftAndQuotaErrors(t *testing.T) {
	_, c := newCloud(t, Options{QuotaPerDC: map[string]int{"dc0": 2}})
	ctx := context.Background()
	specs := []drivers.Spec{{DC: "dc0", VNF: "ids"}, {DC: "dc0", VNF: "firewall"}}
	left := func(dc string) []int {
		t.Helper()
		l, err := c.QuotaLeft(ctx, dc, specs)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	if got := left("dc0"); !slices.Equal(got, []int{2, 2}) {
		t.Fatalf("fresh quota left %v, want [2 2]", got)
	}
	launch(t, c, "a", "dc0", "ids")
	launch(t, c, "b", "dc0", "firewall")
	if got := left("dc0"); !slices.Equal(got, []int{0, 0}) {
		t.Fatalf("quota left %v after 2 launches, want [0 0]", got)
	}
	if _, err := c.Launch(ctx, drivers.Spec{ID: "c", DC: "dc0", VNF: "ids"}); !errors.Is(err, drivers.ErrQuota) {
		t.Fatalf("launch past the quota: err %v, want ErrQuota", err)
	}
	if got := left("dc1"); !slices.Equal(got, []int{drivers.Unlimited, drivers.Unlimited}) {
		t.Fatalf("dc1 without a quota: %v", got)
	}
	if err := c.Terminate(ctx, "dc0", "a"); err != nil {
		t.Fatal(err)
	}
	if got := left("dc0"); !slices.Equal(got, []int{1, 1}) {
		t.Fatalf("quota left %v after a termination, want [1 1]", got)
	}
	if _, err := c.QuotaLeft(ctx, "dc9", specs); !errors.Is(err, drivers.ErrInvalid) {
		t.Fatalf("unknown DC: err %v", err)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	clk := clock.NewVirtual(t0)
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"no DCs", Options{}},
		{"duplicate DC", Options{DCs: []string{"a", "a"}}},
		{"empty DC", Options{DCs: []string{""}}},
		{"negative boot", Options{DCs: []string{"a"}, BootDelay: -time.Second}},
		{"limit of unknown DC", Options{DCs: []string{"a"}, MaxPerDC: map[string]int{"b": 1}}},
		{"negative limit", Options{DCs: []string{"a"}, MaxPerDC: map[string]int{"a": -1}}},
		{"quota of unknown DC", Options{DCs: []string{"a"}, QuotaPerDC: map[string]int{"b": 1}}},
		{"negative quota", Options{DCs: []string{"a"}, QuotaPerDC: map[string]int{"a": -1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(clk, tc.opts); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestServeHandComputed(t *testing.T) {
	cat := DefaultCatalog()
	fw, _ := cat.Lookup("firewall")
	sc, _ := cat.Lookup("S-CSCF")
	for _, tc := range []struct {
		name                string
		typ                 VNFType
		offered             float64
		served, loss, queue float64
	}{
		{"idle firewall", fw, 0, 0, 0, 1000.0 / 35000},
		{"firewall at 34000 pkt/s: W = 1000/(35000-34000) = 1 ms", fw, 34000, 34000, 0, 1},
		{"firewall at 42000 pkt/s: loss 1/6, buffer full 20 ms", fw, 42000, 35000, 1.0 / 6, 20},
		{"S-CSCF at 150 tx/s: W = 1000/50 = 20 ms", sc, 150, 150, 0, 20},
		{"S-CSCF at 199.9 tx/s: W capped at 500 ms", sc, 199.9, 199.9, 0, 500},
		{"S-CSCF at 400 tx/s: loss 1/2", sc, 400, 200, 0.5, 500},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := Serve(tc.typ, tc.offered)
			if !near(p.Served, tc.served) || !near(p.Loss, tc.loss) || !near(p.QueueMs, tc.queue) {
				t.Fatalf("Serve = %+v, want served %v loss %v queue %v", p, tc.served, tc.loss, tc.queue)
			}
		})
	}
}

func TestServeProperties(t *testing.T) {
	types := DefaultTypes()
	rapid.Check(t, func(t *rapid.T) {
		typ := types[rapid.IntRange(0, len(types)-1).Draw(t, "type")]
		a := rapid.Float64Range(0, 5*typ.Capacity).Draw(t, "a")
		b := rapid.Float64Range(0, 5*typ.Capacity).Draw(t, "b")
		if a > b {
			a, b = b, a
		}
		pa, pb := Serve(typ, a), Serve(typ, b)
		for _, p := range []Perf{pa, pb} {
			if p.Served > p.Offered+1e-9 || p.Served > typ.Capacity+1e-9 || p.Loss < 0 || p.Loss > 1 {
				t.Fatalf("bad perf %+v", p)
			}
			if math.Abs(p.Served+p.Loss*p.Offered-p.Offered) > 1e-6*(1+p.Offered) {
				t.Fatalf("served + lost ≠ offered: %+v", p)
			}
			if p.QueueMs < 0 || p.QueueMs > 1000*typ.BufferSec+1e-9 {
				t.Fatalf("queue out of range: %+v", p)
			}
		}
		if pb.Loss < pa.Loss-1e-12 || pb.QueueMs < pa.QueueMs-1e-9 || pb.Served < pa.Served-1e-9 {
			t.Fatalf("not monotone: %+v then %+v", pa, pb)
		}
	})
}

func TestStatsCrossThresholdsAtTriggerUtil(t *testing.T) {
	for _, typ := range DefaultTypes() {
		t.Run(typ.Name, func(t *testing.T) {
			want := map[vnf.Plane]float64{vnf.DataPlane: 0.9, vnf.ControlPlane: 0.7}[typ.Plane]
			if typ.TriggerUtil != want {
				t.Fatalf("trigger %v, want %v", typ.TriggerUtil, want)
			}
			below := Serve(typ, (want-0.01)*typ.Capacity)
			above := Serve(typ, (want+0.01)*typ.Capacity)
			cpu, mem, _ := Stats(typ, below)
			if cpu > typ.Thresholds.CPU || mem > typ.Thresholds.Mem {
				t.Fatalf("at ρ=%.2f: cpu %.2f mem %.2f already over %v/%v", want-0.01, cpu, mem, typ.Thresholds.CPU, typ.Thresholds.Mem)
			}
			cpu, mem, _ = Stats(typ, above)
			if cpu <= typ.Thresholds.CPU || mem <= typ.Thresholds.Mem {
				t.Fatalf("at ρ=%.2f: cpu %.2f mem %.2f not over %v/%v", want+0.01, cpu, mem, typ.Thresholds.CPU, typ.Thresholds.Mem)
			}
			_, _, pkt := Stats(typ, Serve(typ, typ.Capacity))
			if !near(pkt, typ.Capacity*typ.PktPerUnit) {
				t.Fatalf("pkt/s at capacity %v", pkt)
			}
			cpu, mem, _ = Stats(typ, Serve(typ, 10*typ.Capacity))
			if cpu != 100 || mem > 100 {
				t.Fatalf("overloaded: cpu %v mem %v", cpu, mem)
			}
		})
	}
}

func TestCatalogRejectsBadTypes(t *testing.T) {
	good := DefaultTypes()[0]
	for _, tc := range []struct {
		name string
		mod  func(*VNFType)
	}{
		{"empty name", func(v *VNFType) { v.Name = " " }},
		{"bad plane", func(v *VNFType) { v.Plane = "xp" }},
		{"zero capacity", func(v *VNFType) { v.Capacity = 0 }},
		{"NaN trigger", func(v *VNFType) { v.TriggerUtil = math.NaN() }},
		{"cpu over 100", func(v *VNFType) { v.Thresholds.CPU = 120 }},
		{"mem base over threshold", func(v *VNFType) { v.MemBase = 60 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := good
			tc.mod(&v)
			if _, err := NewCatalog(v); err == nil {
				t.Fatal("no error")
			}
		})
	}
	if _, err := NewCatalog(good, good); err == nil {
		t.Fatal("duplicate accepted")
	}
}

func TestReportOnlyActiveInstances(t *testing.T) {
	sink := &sinkRec{}
	clk, c := newCloud(t, Options{Sink: sink, BootDelay: 10 * time.Second})
	launch(t, c, "fw-a", "dc0", "firewall")
	launch(t, c, "fw-b", "dc0", "firewall")
	// Booting: nothing reported, counted as booting.
	tot, _ := c.Report(clk.Now())
	if len(sink.got) != 0 {
		t.Fatalf("booting instances reported %v", sink.got)
	}
	if got := find(tot, 0, "firewall"); got.Booting != 2 || got.Created != 2 {
		t.Fatalf("totals while booting %+v", got)
	}
	clk.Advance(10 * time.Second)
	a, _ := c.Unit("fw-a")
	if p := c.SetLoad(a, 0.95*35000, 7); p.Loss != 0 {
		t.Fatalf("perf %+v", p)
	}
	tot, errs := c.Report(clk.Now())
	if errs != 0 {
		t.Fatalf("sink errors %d", errs)
	}
	sa, sb := sink.got["fw-a"], sink.got["fw-b"]
	if len(sa) != 1 || len(sb) != 1 {
		t.Fatalf("samples %v", sink.got)
	}
	if !near(sa[0].CPU, 95) || !near(sa[0].PktRate, 33250) || sa[0].Flows != 7 || !sa[0].At.Equal(clk.Now()) {
		t.Fatalf("loaded sample %+v", sa[0])
	}
	if sb[0].CPU != 0 || sb[0].Mem != DefaultMemBase || sb[0].PktRate != 0 {
		t.Fatalf("idle sample %+v", sb[0])
	}
	if got := find(tot, 0, "firewall"); got.Active != 2 || !near(got.Offered, 33250) || !near(got.MeanCPU, 47.5) {
		t.Fatalf("totals %+v", got)
	}
	// The load is per second: the next report is idle again.
	c.Report(clk.Now())
	if s := sink.got["fw-a"]; s[1].CPU != 0 {
		t.Fatalf("load leaked into the next second: %+v", s[1])
	}
	// A killed instance stops reporting and carries nothing.
	if !c.Kill("fw-a") {
		t.Fatal("kill failed")
	}
	if p := c.SetLoad(a, 100, 1); p.Loss != 1 {
		t.Fatalf("gone instance served: %+v", p)
	}
	if !c.Fail("fw-b", "test") {
		t.Fatal("fail failed")
	}
	tot, _ = c.Report(clk.Now())
	if len(sink.got["fw-a"]) != 2 || len(sink.got["fw-b"]) != 2 {
		t.Fatalf("killed/failed instances reported: %v", sink.got)
	}
	if got := find(tot, 0, "firewall"); got.Active != 0 || got.Error != 1 || got.Created != 2 {
		t.Fatalf("totals after kill/fail %+v", got)
	}
	sink.err = errors.New("unknown instance")
	launch(t, c, "p", "dc1", "pcscf")
	clk.Advance(10 * time.Second)
	if _, errs := c.Report(clk.Now()); errs != 1 {
		t.Fatalf("sink errors %d, want 1", errs)
	}
}

func find(tot []Totals, dc int, vnf string) Totals {
	for _, x := range tot {
		if x.DC == dc && x.VNF == vnf {
			return x
		}
	}
	return Totals{}
}

func TestActiveListsActiveInLaunchOrder(t *testing.T) {
	clk, c := newCloud(t, Options{BootDelay: time.Second})
	launch(t, c, "z", "dc1", "P-CSCF")
	launch(t, c, "a", "dc1", "pcscf")
	launch(t, c, "m", "dc0", "pcscf")
	if n := len(c.Active(1, "P-CSCF")); n != 0 {
		t.Fatalf("%d active while booting", n)
	}
	clk.Advance(time.Second)
	got := c.Active(1, "p_cscf")
	if len(got) != 2 || got[0].ID() != "z" || got[1].ID() != "a" || got[0].Index() != 0 || got[1].Index() != 1 {
		t.Fatalf("active %v", got)
	}
}

func TestDelaysScheduledChange(t *testing.T) {
	d, err := NewDelays(t0, PaperDelays8(), []DelayChange{PaperHighDelayChange()})
	if err != nil {
		t.Fatal(err)
	}
	before, after := t0.Add(349*time.Second), t0.Add(350*time.Second)
	for _, tc := range []struct {
		name      string
		i, j      int
		at        time.Time
		want      float64
		wantAfter float64
	}{
		{"g1–g3", 2, 7, before, 17, 65},
		{"g3–g1", 6, 3, before, 17, 65},
		{"g0–g3 unchanged", 0, 6, before, 50, 50},
		{"intra g1", 2, 3, before, 5, 5},
		{"self", 4, 4, before, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := d.Delay(tc.i, tc.j, tc.at); got != tc.want {
				t.Fatalf("before: %v want %v", got, tc.want)
			}
			if got := d.Delay(tc.i, tc.j, after); got != tc.wantAfter {
				t.Fatalf("after: %v want %v", got, tc.wantAfter)
			}
		})
	}
	if got := d.Delay(2, 6, t0.Add(-time.Hour)); got != 17 {
		t.Fatalf("before the start: %v", got)
	}
}

func TestNewDelaysRejects(t *testing.T) {
	base := [][]float64{{0, 1}, {1, 0}}
	for _, tc := range []struct {
		name    string
		base    [][]float64
		changes []DelayChange
	}{
		{"empty", nil, nil},
		{"ragged", [][]float64{{0, 1}, {1}}, nil},
		{"diagonal", [][]float64{{1, 1}, {1, 0}}, nil},
		{"negative", [][]float64{{0, -1}, {1, 0}}, nil},
		{"NaN", [][]float64{{0, math.NaN()}, {1, 0}}, nil},
		{"change to unknown DC", base, []DelayChange{{From: []int{0}, To: []int{2}, Ms: 3}}},
		{"change from = to", base, []DelayChange{{From: []int{0}, To: []int{0}, Ms: 3}}},
		{"negative change", base, []DelayChange{{From: []int{0}, To: []int{1}, Ms: -3}}},
		{"negative offset", base, []DelayChange{{After: -time.Second, From: []int{0}, To: []int{1}, Ms: 3}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewDelays(t0, tc.base, tc.changes); err == nil {
				t.Fatal("no error")
			}
		})
	}
}
